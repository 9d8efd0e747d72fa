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
    let seconds = secs.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return if seconds % 60 == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{}s", seconds % 60)
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return if minutes % 60 == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{}m", minutes % 60)
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return if hours % 24 == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, hours % 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

pub fn age(ts: &Value) -> String {
    match ts.as_str().and_then(parse_time) {
        Some(created) => human_duration(epoch_now() - created),
        None => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let column = |name| col(name, "string", 0);
    let wide = |name| col(name, "string", 1);
    match rt.plural {
        "pods" => vec![
            column("Name"),
            column("Ready"),
            column("Status"),
            col("Restarts", "string", 0),
            column("Age"),
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        "namespaces" => vec![column("Name"), column("Status"), column("Age")],
        "nodes" => vec![
            column("Name"),
            column("Status"),
            column("Roles"),
            column("Age"),
            column("Version"),
            wide("Internal-IP"),
            wide("External-IP"),
            wide("OS-Image"),
            wide("Kernel-Version"),
            wide("Container-Runtime"),
        ],
        "services" => vec![
            column("Name"),
            column("Type"),
            column("Cluster-IP"),
            column("External-IP"),
            column("Port(s)"),
            column("Age"),
            wide("Selector"),
        ],
        "endpoints" => vec![column("Name"), column("Endpoints"), column("Age")],
        "configmaps" => vec![column("Name"), col("Data", "integer", 0), column("Age")],
        "secrets" => vec![
            column("Name"),
            column("Type"),
            col("Data", "integer", 0),
            column("Age"),
        ],
        "events" => vec![
            column("Last Seen"),
            column("Type"),
            column("Reason"),
            column("Object"),
            wide("Subobject"),
            wide("Source"),
            column("Message"),
            wide("First Seen"),
            col("Count", "integer", 1),
            wide("Name"),
        ],
        "deployments" => vec![
            column("Name"),
            column("Ready"),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            column("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "replicasets" => vec![
            column("Name"),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            column("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "jobs" => vec![
            column("Name"),
            column("Status"),
            column("Completions"),
            column("Duration"),
            column("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        _ => vec![column("Name"), column("Age")],
    }
}

/// A Job's status as `kubectl get jobs` shows it.
fn job_status(obj: &Value) -> &'static str {
    let holds = |kind: &str| {
        obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == kind && c["status"] == "True")
    };
    if holds("Complete") {
        "Complete"
    } else if holds("Failed") {
        "Failed"
    } else if !obj["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if holds("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if holds("FailureTarget") {
        "FailureTarget"
    } else if holds("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = sel["matchLabels"].as_object() {
        for (key, value) in labels {
            parts.push(format!("{key}={}", value.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for expr in exprs {
            let key = expr["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = expr["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match expr["operator"].as_str().unwrap_or("") {
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

fn plain_selector(selector: &Value) -> String {
    match selector.as_object() {
        Some(labels) if !labels.is_empty() => labels
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn containers_images(spec: &Value) -> (String, String) {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    (names.join(","), images.join(","))
}

/// The STATUS column of a pod, as kubectl prints it.
pub fn pod_status(pod: &Value) -> String {
    let status = &pod["status"];
    let mut reason = status["reason"]
        .as_str()
        .or(status["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let mut initializing = false;
    for (i, init_status) in status["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let term = &init_status["state"]["terminated"];
        if term.is_object() && term["exitCode"] == 0 {
            continue;
        }
        initializing = true;
        if term.is_object() {
            reason = match term["reason"].as_str() {
                Some(why) if !why.is_empty() => format!("Init:{why}"),
                _ => format!("Init:ExitCode:{}", term["exitCode"]),
            };
        } else if let Some(waiting) = init_status["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| *r != "PodInitializing")
        {
            reason = format!("Init:{waiting}");
        } else {
            reason = format!("Init:{i}/{inits}");
        }
        break;
    }
    if !initializing {
        let mut has_running = false;
        for container_status in status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            if let Some(waiting) = container_status["state"]["waiting"]["reason"].as_str() {
                reason = waiting.to_string();
            } else if let Some(terminated) = container_status["state"]["terminated"].as_object() {
                reason = match terminated.get("reason").and_then(Value::as_str) {
                    Some(why) if !why.is_empty() => why.to_string(),
                    _ => match terminated.get("signal").and_then(Value::as_i64) {
                        Some(signal) if signal != 0 => format!("Signal:{signal}"),
                        _ => format!(
                            "ExitCode:{}",
                            terminated.get("exitCode").cloned().unwrap_or(json!(0))
                        ),
                    },
                };
            } else if container_status["ready"] == true
                && container_status["state"]["running"].is_object()
            {
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

fn row_cells(rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    let age_s = age(&obj["metadata"]["creationTimestamp"]);
    let spec = &obj["spec"];
    let status = &obj["status"];
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
                    .filter_map(|container_status| {
                        container_status["lastState"]["terminated"]["finishedAt"]
                            .as_str()
                            .and_then(parse_time)
                    })
                    .max();
                if let Some(finished) = last {
                    restarts_s = format!(
                        "{restarts} ({} ago)",
                        human_duration(epoch_now() - finished)
                    );
                }
            }
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
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
        "nodes" => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let roles: Vec<&str> = obj["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(key, _)| key.strip_prefix("node-role.kubernetes.io/"))
                .collect();
            let address = |kind: &str| {
                status["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == kind)
                    .and_then(|a| a["address"].as_str())
                    .unwrap_or("<none>")
                    .to_string()
            };
            let info = &status["nodeInfo"];
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                }),
                json!(age_s),
                json!(info["kubeletVersion"].as_str().unwrap_or("")),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(info["osImage"].as_str().unwrap_or("")),
                json!(info["kernelVersion"].as_str().unwrap_or("")),
                json!(info["containerRuntimeVersion"].as_str().unwrap_or("")),
            ]
        }
        "services" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|port| {
                    let proto = port["protocol"].as_str().unwrap_or("TCP");
                    match port["nodePort"].as_i64() {
                        Some(node_port) => format!("{}:{node_port}/{proto}", port["port"]),
                        None => format!("{}/{proto}", port["port"]),
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
            for subset in obj["subsets"].as_array().into_iter().flatten() {
                for address in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        eps.push(format!(
                            "{}:{}",
                            address["ip"].as_str().unwrap_or(""),
                            port["port"]
                        ));
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
            let count = obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(count), json!(age_s)]
        }
        "secrets" => {
            let count = obj["data"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![
                name,
                json!(obj["type"].as_str().unwrap_or("Opaque")),
                json!(count),
                json!(age_s),
            ]
        }
        "events" => {
            let involved = &obj["involvedObject"];
            let last = obj["lastTimestamp"]
                .as_str()
                .or(obj["eventTime"].as_str())
                .or(obj["metadata"]["creationTimestamp"].as_str())
                .map(|s| age(&json!(s)))
                .unwrap_or_else(|| "<unknown>".into());
            let first = obj["firstTimestamp"]
                .as_str()
                .map(|s| age(&json!(s)))
                .unwrap_or_else(|| last.clone());
            let kind = involved["kind"].as_str().unwrap_or("").to_lowercase();
            vec![
                json!(last),
                json!(obj["type"].as_str().unwrap_or("Normal")),
                json!(obj["reason"].as_str().unwrap_or("")),
                json!(format!(
                    "{kind}/{}",
                    involved["name"].as_str().unwrap_or("")
                )),
                json!(involved["fieldPath"].as_str().unwrap_or("")),
                json!(
                    obj["source"]["component"]
                        .as_str()
                        .or(obj["reportingComponent"].as_str())
                        .unwrap_or("")
                ),
                json!(obj["message"].as_str().unwrap_or("")),
                json!(first),
                json!(obj["count"].as_i64().unwrap_or(1)),
                name,
            ]
        }
        "deployments" => {
            let (containers, images) = containers_images(&spec["template"]["spec"]);
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
                json!(containers),
                json!(images),
                json!(selector_string(&spec["selector"])),
            ]
        }
        "replicasets" => {
            let (containers, images) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(spec["replicas"].as_i64().unwrap_or(0)),
                json!(status["replicas"].as_i64().unwrap_or(0)),
                json!(status["readyReplicas"].as_i64().unwrap_or(0)),
                json!(age_s),
                json!(containers),
                json!(images),
                json!(selector_string(&spec["selector"])),
            ]
        }
        "jobs" => {
            let (containers, images) = containers_images(&spec["template"]["spec"]);
            let succeeded = status["succeeded"].as_i64().unwrap_or(0);
            let completions = match (spec["completions"].as_i64(), spec["parallelism"].as_i64()) {
                (Some(completions), _) => format!("{succeeded}/{completions}"),
                (None, Some(parallelism)) if parallelism > 1 => {
                    format!("{succeeded}/1 of {parallelism}")
                }
                (None, _) => format!("{succeeded}/1"),
            };
            let started = status["startTime"].as_str().and_then(parse_time);
            let ended = status["completionTime"].as_str().and_then(parse_time);
            let duration = match (started, ended) {
                (Some(start), Some(end)) => human_duration(end - start),
                (Some(start), None) => human_duration(epoch_now() - start),
                (None, _) => String::new(),
            };
            vec![
                name,
                json!(job_status(obj)),
                json!(completions),
                json!(duration),
                json!(age_s),
                json!(containers),
                json!(images),
                json!(selector_string(&spec["selector"])),
            ]
        }
        _ => vec![name, json!(age_s)],
    }
}

fn row(rt: &ResourceType, obj: &Value, include: &str) -> Value {
    let object = match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        }
    };
    let mut entry = json!({"cells": row_cells(rt, obj)});
    if !object.is_null() {
        entry["object"] = object;
    }
    entry
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
    let mut document = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "rows": rows});
    if with_columns {
        document["columnDefinitions"] = json!(columns(rt));
    } else {
        document["columnDefinitions"] = Value::Null;
    }
    document
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
