//! Container environment: literal values, configMapKeyRef, secretKeyRef,
//! fieldRef, envFrom, and `$(VAR)` expansion as Kubernetes does it.

use serde_json::Value;

use crate::base64;
use crate::resources;
use crate::store::Store;

/// The value of a downward-API field of the pod.
pub fn field_value(pod: &Value, path: &str) -> Option<String> {
    let meta = &pod["metadata"];
    let text_of = |v: &Value| v.as_str().map(String::from);
    match path {
        "metadata.name" => text_of(&meta["name"]),
        "metadata.namespace" => text_of(&meta["namespace"]),
        "metadata.uid" => text_of(&meta["uid"]),
        "spec.nodeName" => Some(crate::NODE_NAME.to_string()),
        "spec.serviceAccountName" => Some(
            pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        ),
        "status.podIP" | "status.podIPs" => Some(
            pod["status"]["podIP"]
                .as_str()
                .unwrap_or("127.0.0.1")
                .to_string(),
        ),
        "status.hostIP" | "status.hostIPs" => Some(
            pod["status"]["hostIP"]
                .as_str()
                .unwrap_or("127.0.0.1")
                .to_string(),
        ),
        other => {
            if let Some(key) = other
                .strip_prefix("metadata.labels['")
                .and_then(|key| key.strip_suffix("']"))
            {
                return text_of(&meta["labels"][key]);
            }
            if let Some(key) = other
                .strip_prefix("metadata.annotations['")
                .and_then(|key| key.strip_suffix("']"))
            {
                return text_of(&meta["annotations"][key]);
            }
            if other == "metadata.labels" || other == "metadata.annotations" {
                let field = other.trim_start_matches("metadata.");
                let lines: Vec<String> = meta[field]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
                    .collect();
                return Some(lines.join("\n"));
            }
            None
        }
    }
}

fn key_of(store: &Store, secret: bool, ns: &str, name: &str, key: &str) -> Option<String> {
    let rt = if secret {
        resources::secrets()
    } else {
        resources::configmaps()
    };
    let obj = store.try_get(rt, ns, name)?;
    let value = obj["data"][key].as_str()?;
    if secret {
        base64::decode(value).map(|b| String::from_utf8_lossy(&b).into_owned())
    } else {
        Some(value.to_string())
    }
}

/// Expands `$(NAME)` from `vars`; `$$(NAME)` escapes.
pub fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The environment of a container; errors name a missing reference.
pub fn build(
    store: &Store,
    pod: &Value,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut vars: Vec<(String, String)> = Vec::new();
    for src in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = src["prefix"].as_str().unwrap_or("");
        let (secret, reference) = if src["secretRef"].is_object() {
            (true, &src["secretRef"])
        } else {
            (false, &src["configMapRef"])
        };
        let name = reference["name"].as_str().unwrap_or("");
        let rt = if secret {
            resources::secrets()
        } else {
            resources::configmaps()
        };
        match store.try_get(rt, ns, name) {
            Some(obj) => {
                for (key, value) in obj["data"].as_object().into_iter().flatten() {
                    let raw = value.as_str().unwrap_or("");
                    let val = if secret {
                        String::from_utf8_lossy(&base64::decode(raw).unwrap_or_default())
                            .into_owned()
                    } else {
                        raw.to_string()
                    };
                    vars.push((format!("{prefix}{key}"), val));
                }
            }
            None if reference["optional"] == true => {}
            None => {
                return Err(format!(
                    "{} \"{name}\" not found",
                    if secret { "secret" } else { "configmap" }
                ));
            }
        }
    }
    for entry in container["env"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        let value = if let Some(literal) = entry.get("value").and_then(Value::as_str) {
            expand(literal, &vars)
        } else if entry["valueFrom"].is_object() {
            let vf = &entry["valueFrom"];
            let got = if vf["configMapKeyRef"].is_object() || vf["secretKeyRef"].is_object() {
                let secret = vf["secretKeyRef"].is_object();
                let reference = if secret {
                    &vf["secretKeyRef"]
                } else {
                    &vf["configMapKeyRef"]
                };
                let (source_name, source_key) = (
                    reference["name"].as_str().unwrap_or(""),
                    reference["key"].as_str().unwrap_or(""),
                );
                match key_of(store, secret, ns, source_name, source_key) {
                    Some(value) => Some(value),
                    None if reference["optional"] == true => None,
                    None => {
                        return Err(format!(
                            "couldn't find key {source_key} in {} {ns}/{source_name}",
                            if secret { "Secret" } else { "ConfigMap" }
                        ));
                    }
                }
            } else if vf["fieldRef"].is_object() {
                field_value(pod, vf["fieldRef"]["fieldPath"].as_str().unwrap_or(""))
            } else {
                None
            };
            match got {
                Some(found) => found,
                None => continue,
            }
        } else {
            String::new()
        };
        vars.push((name.to_string(), value));
    }
    Ok(vars)
}

/// The variables the kubelet gives a pod for each service of its namespace
/// that exists when the container starts: `<SVC>_SERVICE_HOST`,
/// `<SVC>_SERVICE_PORT[_<NAME>]` and, with `enableServiceLinks` (the
/// default), the docker-link style `<SVC>_PORT*` ones. The `kubernetes`
/// service is left out: in-cluster clients would take it for their API
/// server.
pub fn service_env(store: &crate::Store, pod: &Value) -> Vec<(String, String)> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let links = pod["spec"]["enableServiceLinks"].as_bool().unwrap_or(true);
    let (svcs, _) = store.list(crate::resources::services(), Some(ns));
    let mut out = Vec::new();
    for service in &svcs {
        let name = service["metadata"]["name"].as_str().unwrap_or("");
        let Some(ip) = service["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        if name == "kubernetes" || name.is_empty() {
            continue;
        }
        let key = name.to_uppercase().replace('-', "_");
        let ports: Vec<&Value> = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{key}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{key}_SERVICE_PORT"), first["port"].to_string()));
        for service_port in &ports {
            if let Some(port_name) = service_port["name"].as_str().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{key}_SERVICE_PORT_{}",
                        port_name.to_uppercase().replace('-', "_")
                    ),
                    service_port["port"].to_string(),
                ));
            }
        }
        if !links {
            continue;
        }
        let proto = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_lowercase();
        out.push((
            format!("{key}_PORT"),
            format!("{}://{ip}:{}", proto(first), first["port"]),
        ));
        for service_port in &ports {
            let (protocol, port) = (proto(service_port), service_port["port"].to_string());
            let base = format!("{key}_PORT_{port}_{}", protocol.to_uppercase());
            out.push((base.clone(), format!("{protocol}://{ip}:{port}")));
            out.push((format!("{base}_PROTO"), protocol.clone()));
            out.push((format!("{base}_PORT"), port.clone()));
            out.push((format!("{base}_ADDR"), ip.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn expansion() {
        let vars = vec![("A".to_string(), "1".to_string())];
        assert_eq!(super::expand("x$(A)y$(B)$$(A)", &vars), "x1y$(B)$(A)");
    }
}
