//! Endpoints controller: every Service with a selector gets an Endpoints
//! object listing its pods, ready ones as addresses and the others as
//! notReadyAddresses, with target ports resolved (named ports included).

use serde_json::{Value, json};

use crate::Shared;
use crate::resources;
use crate::selectors::LabelSelector;

fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    let tp = if port["targetPort"].is_null() {
        &port["port"]
    } else {
        &port["targetPort"]
    };
    if let Some(number) = tp.as_i64() {
        return Some(number);
    }
    let name = tp.as_str()?;
    if let Ok(number) = name.parse() {
        return Some(number);
    }
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
}

pub fn reconcile(shared: &Shared, ns: &str) {
    let (services, _) = shared.store.list(resources::services(), Some(ns));
    let (pods, _) = shared.store.list(resources::pods(), Some(ns));
    for svc in services {
        let Some(sel) = svc["spec"]["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        let selector = LabelSelector::from_object(&json!({"matchLabels": sel}));
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let mut subsets = Vec::new();
        for pod in pods
            .iter()
            .filter(|pod| selector.matches_object(pod) && !super::is_deleting(pod))
        {
            let Some(ip) = pod["status"]["podIP"].as_str() else {
                continue;
            };
            let ports: Vec<Value> = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|service_port| {
                    let port = target_port(service_port, pod)?;
                    let mut entry =
                        json!({"port": port, "protocol": service_port["protocol"].as_str().unwrap_or("TCP")});
                    if let Some(port_name) = service_port["name"].as_str() {
                        entry["name"] = json!(port_name);
                    }
                    Some(entry)
                })
                .collect();
            let addr = json!({
                "ip": ip,
                "nodeName": crate::NODE_NAME,
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
            });
            let key = if super::replicaset::pod_ready(pod) {
                "addresses"
            } else {
                "notReadyAddresses"
            };
            subsets.push(json!({key: [addr], "ports": ports}));
        }
        match shared.store.try_get(resources::endpoints(), ns, &name) {
            Some(_) => {
                let _ = shared
                    .store
                    .modify(resources::endpoints(), ns, &name, |endpoints| {
                        if subsets.is_empty() {
                            if let Some(fields) = endpoints.as_object_mut() {
                                fields.remove("subsets");
                            }
                        } else {
                            endpoints["subsets"] = json!(subsets);
                        }
                        Ok(())
                    });
            }
            None => {
                let mut ep = json!({
                    "apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"]["labels"].clone()},
                });
                if !subsets.is_empty() {
                    ep["subsets"] = json!(subsets);
                }
                if ep["metadata"]["labels"].is_null() {
                    ep["metadata"]["labels"] = json!({});
                }
                if crate::namespace_lifecycle::admit(
                    &shared.store,
                    resources::endpoints(),
                    ns,
                    &name,
                )
                .is_ok()
                {
                    let _ = shared.store.create(resources::endpoints(), ns, ep);
                }
            }
        }
    }
}
