//! Server-side printing: the `meta.k8s.io/v1 Table` responses `kubectl get`
//! asks for, with the columns a real API server prints for each type.

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::store::{epoch_now, parse_time};

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .any(|p| p.replace(' ', "").contains("as=Table"))
}

/// Human duration as kubectl prints ages (`5s`, `2m3s`, `3h`, `4d`).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        return if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        return if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        return if h % 24 == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{}h", h / 24, h % 24)
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    format!("{}y", h / 24 / 365)
}

pub fn age(ts: &Value) -> String {
    match ts.as_str().and_then(parse_time) {
        Some(t) => human_duration(epoch_now() - t),
        None => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let s = |n| col(n, "string", 0);
    let w = |n| col(n, "string", 1);
    match rt.plural {
        "pods" => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            col("Restarts", "string", 0),
            s("Age"),
            w("IP"),
            w("Node"),
            w("Nominated Node"),
            w("Readiness Gates"),
        ],
        "namespaces" => vec![s("Name"), s("Status"), s("Age")],
        "services" => vec![
            s("Name"),
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            s("Age"),
            w("Selector"),
        ],
        "endpoints" => vec![s("Name"), s("Endpoints"), s("Age")],
        "configmaps" => vec![s("Name"), col("Data", "integer", 0), s("Age")],
        "secrets" => vec![s("Name"), s("Type"), col("Data", "integer", 0), s("Age")],
        "events" => vec![
            s("Last Seen"),
            s("Type"),
            s("Reason"),
            s("Object"),
            w("Subobject"),
            w("Source"),
            s("Message"),
            w("First Seen"),
            col("Count", "integer", 1),
            w("Name"),
        ],
        "deployments" => vec![
            s("Name"),
            s("Ready"),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "replicasets" => vec![
            s("Name"),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        _ => vec![s("Name"), s("Age")],
    }
}

fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn plain_selector(m: &Value) -> String {
    match m.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn containers_images(spec: &Value) -> (String, String) {
    let cs = spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

/// The STATUS column of a pod, as kubectl prints it.
pub fn pod_status(pod: &Value) -> String {
    let st = &pod["status"];
    let mut reason = st["reason"]
        .as_str()
        .or(st["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let mut initializing = false;
    for (i, c) in st["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"] == 0 {
            continue;
        }
        initializing = true;
        if term.is_object() {
            reason = match term["reason"].as_str() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => format!("Init:ExitCode:{}", term["exitCode"]),
            };
        } else if let Some(w) = c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| *r != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{inits}");
        }
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in st["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            if let Some(w) = c["state"]["waiting"]["reason"].as_str() {
                reason = w.to_string();
            } else if let Some(t) = c["state"]["terminated"].as_object() {
                reason = match t.get("reason").and_then(Value::as_str) {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => match t.get("signal").and_then(Value::as_i64) {
                        Some(s) if s != 0 => format!("Signal:{s}"),
                        _ => format!(
                            "ExitCode:{}",
                            t.get("exitCode").cloned().unwrap_or(json!(0))
                        ),
                    },
                };
            } else if c["ready"] == true && c["state"]["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        reason = "Terminating".into();
    }
    reason
}

fn row_cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let age_s = age(&o["metadata"]["creationTimestamp"]);
    let spec = &o["spec"];
    let status = &o["status"];
    match rt.plural {
        "pods" => {
            let total = spec["containers"].as_array().map(Vec::len).unwrap_or(0);
            let statuses = status["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let mut restarts_s = restarts.to_string();
            if restarts > 0 {
                let last = statuses
                    .iter()
                    .filter_map(|c| {
                        c["lastState"]["terminated"]["finishedAt"]
                            .as_str()
                            .and_then(parse_time)
                    })
                    .max();
                if let Some(t) = last {
                    restarts_s = format!("{restarts} ({} ago)", human_duration(epoch_now() - t));
                }
            }
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts_s),
                json!(age_s),
                json!(status["podIP"].as_str().unwrap_or("<none>")),
                json!(spec["nodeName"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "namespaces" => vec![
            name,
            json!(status["phase"].as_str().unwrap_or("Active")),
            json!(age_s),
        ],
        "services" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) => format!("{}:{np}/{proto}", p["port"]),
                        None => format!("{}/{proto}", p["port"]),
                    }
                })
                .collect();
            let ext = match spec["type"].as_str() {
                Some("ExternalName") => spec["externalName"]
                    .as_str()
                    .unwrap_or("<none>")
                    .to_string(),
                Some("LoadBalancer") => "<pending>".into(),
                _ => "<none>".into(),
            };
            vec![
                name,
                json!(spec["type"].as_str().unwrap_or("ClusterIP")),
                json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
                json!(ext),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                }),
                json!(age_s),
                json!(plain_selector(&spec["selector"])),
            ]
        }
        "endpoints" => {
            let mut eps = Vec::new();
            for s in o["subsets"].as_array().into_iter().flatten() {
                for a in s["addresses"].as_array().into_iter().flatten() {
                    for p in s["ports"].as_array().into_iter().flatten() {
                        eps.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
                    }
                }
            }
            let shown = if eps.is_empty() {
                "<none>".to_string()
            } else if eps.len() > 3 {
                format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
            } else {
                eps.join(",")
            };
            vec![name, json!(shown), json!(age_s)]
        }
        "configmaps" => {
            let n = o["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + o["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(n), json!(age_s)]
        }
        "secrets" => {
            let n = o["data"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![
                name,
                json!(o["type"].as_str().unwrap_or("Opaque")),
                json!(n),
                json!(age_s),
            ]
        }
        "events" => {
            let io = &o["involvedObject"];
            let last = o["lastTimestamp"]
                .as_str()
                .or(o["eventTime"].as_str())
                .or(o["metadata"]["creationTimestamp"].as_str())
                .map(|s| age(&json!(s)))
                .unwrap_or_else(|| "<unknown>".into());
            let first = o["firstTimestamp"]
                .as_str()
                .map(|s| age(&json!(s)))
                .unwrap_or_else(|| last.clone());
            let kind = io["kind"].as_str().unwrap_or("").to_lowercase();
            vec![
                json!(last),
                json!(o["type"].as_str().unwrap_or("Normal")),
                json!(o["reason"].as_str().unwrap_or("")),
                json!(format!("{kind}/{}", io["name"].as_str().unwrap_or(""))),
                json!(io["fieldPath"].as_str().unwrap_or("")),
                json!(
                    o["source"]["component"]
                        .as_str()
                        .or(o["reportingComponent"].as_str())
                        .unwrap_or("")
                ),
                json!(o["message"].as_str().unwrap_or("")),
                json!(first),
                json!(o["count"].as_i64().unwrap_or(1)),
                name,
            ]
        }
        "deployments" => {
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    status["readyReplicas"].as_i64().unwrap_or(0),
                    spec["replicas"].as_i64().unwrap_or(0)
                )),
                json!(status["updatedReplicas"].as_i64().unwrap_or(0)),
                json!(status["availableReplicas"].as_i64().unwrap_or(0)),
                json!(age_s),
                json!(c),
                json!(i),
                json!(selector_string(&spec["selector"])),
            ]
        }
        "replicasets" => {
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(spec["replicas"].as_i64().unwrap_or(0)),
                json!(status["replicas"].as_i64().unwrap_or(0)),
                json!(status["readyReplicas"].as_i64().unwrap_or(0)),
                json!(age_s),
                json!(c),
                json!(i),
                json!(selector_string(&spec["selector"])),
            ]
        }
        _ => vec![name, json!(age_s)],
    }
}

fn row(rt: &ResourceType, o: &Value, include: &str) -> Value {
    let object = match include {
        "None" => Value::Null,
        "Object" => o.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
        }
    };
    let mut r = json!({"cells": row_cells(rt, o)});
    if !object.is_null() {
        r["object"] = object;
    }
    r
}

/// A Table of objects; `list_meta` becomes the table's metadata.
pub fn table(
    rt: &ResourceType,
    items: &[&Value],
    list_meta: Value,
    include: &str,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = items.iter().map(|o| row(rt, o, include)).collect();
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "rows": rows});
    if with_columns {
        t["columnDefinitions"] = json!(columns(rt));
    } else {
        t["columnDefinitions"] = Value::Null;
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::human_duration(5), "5s");
        assert_eq!(super::human_duration(125), "2m5s");
        assert_eq!(super::human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(super::human_duration(86400 * 3), "3d");
    }
}
