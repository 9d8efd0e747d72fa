//! The cluster env: for every background dproc of the current environment,
//! `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` and `<NAME>_URL`, so that
//! programs launched afterwards find each other without a manifest.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};

use super::connection::{ClusterError, Connection};
use crate::labels::{LABEL_ENVIRONMENT, owned_selector};

/// Reads the Services of the environment's background dprocs.
pub fn read(
    connection: &Connection,
    namespace: &str,
    environment: &str,
) -> Result<Vec<(String, String)>, ClusterError> {
    let services: Api<Service> = Api::namespaced(connection.client.clone(), namespace);
    let selector = format!("{},{LABEL_ENVIRONMENT}={environment}", owned_selector());
    let list = connection
        .block_on(services.list(&ListParams::default().labels(&selector)))
        .map_err(|e| connection.explain(e))?;
    Ok(variables(&list.items))
}

/// The variables for some Services: the host is the ClusterIP, as the
/// kubelet's own `<NAME>_SERVICE_HOST`; the URL uses the Service's name.
pub fn variables(services: &[Service]) -> Vec<(String, String)> {
    let mut variables = Vec::new();
    for service in services {
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let spec = service.spec.as_ref();
        let Some(port) = spec
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .map(|p| p.port)
        else {
            continue;
        };
        let host = spec
            .and_then(|s| s.cluster_ip.clone())
            .filter(|ip| !ip.is_empty() && ip != "None")
            .unwrap_or_else(|| name.to_string());
        let prefix = name.to_uppercase().replace('-', "_");
        variables.push((format!("{prefix}_SERVICE_HOST"), host));
        variables.push((format!("{prefix}_SERVICE_PORT"), port.to_string()));
        variables.push((format!("{prefix}_URL"), format!("http://{name}:{port}")));
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_variable_prefixes() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "stock-gen"},
            "spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 9999}]}
        }))
        .unwrap();
        assert_eq!(
            variables(&[service]),
            [
                ("STOCK_GEN_SERVICE_HOST".to_string(), "10.0.0.7".to_string()),
                ("STOCK_GEN_SERVICE_PORT".to_string(), "9999".to_string()),
                (
                    "STOCK_GEN_URL".to_string(),
                    "http://stock-gen:9999".to_string()
                ),
            ]
        );
    }
}
