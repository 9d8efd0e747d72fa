//! The root CA publisher, as kube-controller-manager's: every namespace
//! that is not being deleted holds a ConfigMap `kube-root-ca.crt` with the
//! cluster's CA certificate (`ca.crt`), made again when it is deleted and
//! put back when it is changed. Programs and service-account token
//! volumes read the API server's CA from it.

use serde_json::{Value, json};

use crate::Shared;
use crate::resources;

/// The ConfigMap's name in every namespace.
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its one key.
const KEY: &str = "ca.crt";
/// What the real publisher says the ConfigMap is for.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
     when using internal endpoints such as the internal service IP or kubernetes.default.svc. \
     No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Makes or puts back the ConfigMap of namespace `ns`, unless the
/// namespace is gone or being deleted.
pub fn reconcile(shared: &Shared, ns: &str) {
    let Some(namespace) = shared.store.try_get(resources::namespaces(), "", ns) else {
        return;
    };
    if super::is_deleting(&namespace) {
        return;
    }
    let ca = shared.tls.ca_pem.as_str();
    match shared
        .store
        .try_get(resources::configmaps(), ns, CONFIG_MAP)
    {
        Some(existing) if holds(&existing, ca) => {}
        Some(existing) if super::is_deleting(&existing) => {}
        Some(_) => {
            let _ = shared
                .store
                .modify(resources::configmaps(), ns, CONFIG_MAP, |config_map| {
                    config_map["data"] = json!({ KEY: ca });
                    if let Some(fields) = config_map.as_object_mut() {
                        fields.remove("binaryData");
                    }
                    Ok(())
                });
        }
        None => {
            let config_map = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": CONFIG_MAP,
                    "namespace": ns,
                    "annotations": {"kubernetes.io/description": DESCRIPTION},
                },
                "data": { KEY: ca },
            });
            if crate::namespace_lifecycle::admit(
                &shared.store,
                resources::configmaps(),
                ns,
                CONFIG_MAP,
            )
            .is_ok()
            {
                let _ = shared.store.create(resources::configmaps(), ns, config_map);
            }
        }
    }
}

/// Whether the ConfigMap holds exactly the CA and nothing else.
fn holds(config_map: &Value, ca: &str) -> bool {
    config_map["data"] == json!({ KEY: ca }) && config_map["binaryData"].is_null()
}

/// Every namespace's, for the periodic resync.
pub fn resync(shared: &Shared) {
    let (namespaces, _) = shared.store.list(resources::namespaces(), None);
    for namespace in &namespaces {
        reconcile(shared, namespace["metadata"]["name"].as_str().unwrap_or(""));
    }
}
