//! Container environment: literal values, configMapKeyRef, secretKeyRef,
//! fieldRef, envFrom, and `$(VAR)` expansion as Kubernetes does it.

use serde_json::Value;

use crate::base64;
use crate::resources;
use crate::store::Store;

/// The value of a downward-API field of the pod.
pub fn field_value(pod: &Value, path: &str) -> Option<String> {
    let m = &pod["metadata"];
    let s = |v: &Value| v.as_str().map(String::from);
    match path {
        "metadata.name" => s(&m["name"]),
        "metadata.namespace" => s(&m["namespace"]),
        "metadata.uid" => s(&m["uid"]),
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
        p => {
            if let Some(k) = p
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return s(&m["labels"][k]);
            }
            if let Some(k) = p
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return s(&m["annotations"][k]);
            }
            if p == "metadata.labels" || p == "metadata.annotations" {
                let field = p.trim_start_matches("metadata.");
                let lines: Vec<String> = m[field]
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
    let v = obj["data"][key].as_str()?;
    if secret {
        base64::decode(v).map(|b| String::from_utf8_lossy(&b).into_owned())
    } else {
        Some(v.to_string())
    }
}

/// Expands `$(NAME)` from `vars`; `$$(NAME)` escapes.
pub fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(a) = after.strip_prefix('(')
            && let Some(end) = a.find(')')
        {
            let name = &a[..end];
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &a[end + 1..];
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
        let (secret, r) = if src["secretRef"].is_object() {
            (true, &src["secretRef"])
        } else {
            (false, &src["configMapRef"])
        };
        let name = r["name"].as_str().unwrap_or("");
        let rt = if secret {
            resources::secrets()
        } else {
            resources::configmaps()
        };
        match store.try_get(rt, ns, name) {
            Some(obj) => {
                for (k, v) in obj["data"].as_object().into_iter().flatten() {
                    let raw = v.as_str().unwrap_or("");
                    let val = if secret {
                        String::from_utf8_lossy(&base64::decode(raw).unwrap_or_default())
                            .into_owned()
                    } else {
                        raw.to_string()
                    };
                    vars.push((format!("{prefix}{k}"), val));
                }
            }
            None if r["optional"] == true => {}
            None => {
                return Err(format!(
                    "{} \"{name}\" not found",
                    if secret { "secret" } else { "configmap" }
                ));
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            expand(v, &vars)
        } else if e["valueFrom"].is_object() {
            let vf = &e["valueFrom"];
            let got = if vf["configMapKeyRef"].is_object() || vf["secretKeyRef"].is_object() {
                let secret = vf["secretKeyRef"].is_object();
                let r = if secret {
                    &vf["secretKeyRef"]
                } else {
                    &vf["configMapKeyRef"]
                };
                let (n, k) = (
                    r["name"].as_str().unwrap_or(""),
                    r["key"].as_str().unwrap_or(""),
                );
                match key_of(store, secret, ns, n, k) {
                    Some(v) => Some(v),
                    None if r["optional"] == true => None,
                    None => {
                        return Err(format!(
                            "couldn't find key {k} in {} {ns}/{n}",
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
                Some(v) => v,
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
    for s in &svcs {
        let name = s["metadata"]["name"].as_str().unwrap_or("");
        let Some(ip) = s["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        if name == "kubernetes" || name.is_empty() {
            continue;
        }
        let key = name.to_uppercase().replace('-', "_");
        let ports: Vec<&Value> = s["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{key}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{key}_SERVICE_PORT"), first["port"].to_string()));
        for p in &ports {
            if let Some(pn) = p["name"].as_str().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{key}_SERVICE_PORT_{}", pn.to_uppercase().replace('-', "_")),
                    p["port"].to_string(),
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
        for p in &ports {
            let (pr, port) = (proto(p), p["port"].to_string());
            let base = format!("{key}_PORT_{port}_{}", pr.to_uppercase());
            out.push((base.clone(), format!("{pr}://{ip}:{port}")));
            out.push((format!("{base}_PROTO"), pr.clone()));
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
