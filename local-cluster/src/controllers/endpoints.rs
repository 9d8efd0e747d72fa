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
    if let Some(n) = tp.as_i64() {
        return Some(n);
    }
    let name = tp.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
}

pub fn reconcile(s: &Shared, ns: &str) {
    let (services, _) = s.store.list(resources::services(), Some(ns));
    let (pods, _) = s.store.list(resources::pods(), Some(ns));
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
        for p in pods
            .iter()
            .filter(|p| selector.matches_object(p) && !super::is_deleting(p))
        {
            let Some(ip) = p["status"]["podIP"].as_str() else {
                continue;
            };
            let ports: Vec<Value> = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|sp| {
                    let port = target_port(sp, p)?;
                    let mut e =
                        json!({"port": port, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
                    if let Some(n) = sp["name"].as_str() {
                        e["name"] = json!(n);
                    }
                    Some(e)
                })
                .collect();
            let addr = json!({
                "ip": ip,
                "nodeName": crate::NODE_NAME,
                "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]},
            });
            let key = if super::replicaset::pod_ready(p) {
                "addresses"
            } else {
                "notReadyAddresses"
            };
            subsets.push(json!({key: [addr], "ports": ports}));
        }
        match s.store.try_get(resources::endpoints(), ns, &name) {
            Some(_) => {
                let _ = s.store.modify(resources::endpoints(), ns, &name, |o| {
                    if subsets.is_empty() {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("subsets");
                        }
                    } else {
                        o["subsets"] = json!(subsets);
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
                let _ = s.store.create(resources::endpoints(), ns, ep);
            }
        }
    }
}
