//! Defaulting as the real API server does it on every write, so objects read
//! back look like a real cluster's (restartPolicy, strategy, ports, ...).

use serde_json::{Value, json};

use crate::resources::{self, ResourceType};
use crate::store::Store;

/// Sets `key` when missing; does nothing on values that are not objects
/// (validation reports those).
fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(fields) = obj.as_object_mut()
        && fields.get(key).is_none_or(Value::is_null)
    {
        fields.insert(key.to_string(), value);
    }
}

/// The object at `path`, only through objects.
fn at<'a>(value: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut cur = value;
    for key in path {
        cur = cur.as_object_mut()?.get_mut(*key)?;
    }
    cur.is_object().then_some(cur)
}

#[allow(clippy::collapsible_if)]
pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for field in ["initContainers", "containers"] {
        if let Some(containers) = spec[field].as_array_mut() {
            for container in containers {
                if !container.is_object() {
                    continue;
                }
                let image = container["image"].as_str().unwrap_or("").to_string();
                let tag = image
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .split_once(':')
                    .map(|(_, t)| t.to_string());
                let policy = if image.contains('@') || tag.as_deref().is_some_and(|t| t != "latest")
                {
                    "IfNotPresent"
                } else {
                    "Always"
                };
                set_default(container, "imagePullPolicy", json!(policy));
                set_default(
                    container,
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
                set_default(container, "terminationMessagePolicy", json!("File"));
                set_default(container, "resources", json!({}));
                if let Some(ports) = container["ports"].as_array_mut() {
                    for port in ports {
                        if port.is_object() {
                            set_default(port, "protocol", json!("TCP"));
                        }
                    }
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let probe_spec = &mut container[probe];
                    if probe_spec.is_object() {
                        set_default(probe_spec, "timeoutSeconds", json!(1));
                        set_default(probe_spec, "periodSeconds", json!(10));
                        set_default(probe_spec, "successThreshold", json!(1));
                        set_default(probe_spec, "failureThreshold", json!(3));
                        if probe_spec["httpGet"].is_object() {
                            set_default(&mut probe_spec["httpGet"], "path", json!("/"));
                            set_default(&mut probe_spec["httpGet"], "scheme", json!("HTTP"));
                        }
                    } else if container
                        .as_object()
                        .is_some_and(|m| m.get(probe).is_some_and(Value::is_null))
                    {
                        if let Some(fields) = container.as_object_mut() {
                            fields.remove(probe);
                        }
                    }
                }
            }
        }
    }
    if let Some(vols) = spec["volumes"].as_array_mut() {
        for volume in vols {
            for kind in ["configMap", "secret", "projected"] {
                if volume[kind].is_object() {
                    set_default(&mut volume[kind], "defaultMode", json!(420));
                }
            }
        }
    }
}

/// A Job's defaults, and the selector and pod labels the API server
/// generates from its uid (unless `manualSelector`): the pods get
/// `batch.kubernetes.io/controller-uid` and `batch.kubernetes.io/job-name`
/// (and the older `controller-uid` and `job-name`), the selector matches
/// the first.
fn job_defaults(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    let uid = obj["metadata"]["uid"].clone();
    let spec = &mut obj["spec"];
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec["completions"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if spec["manualSelector"] == true || !uid.is_string() {
        return;
    }
    if spec["selector"].is_null() {
        spec["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid.clone()}});
    }
    if !spec["template"].is_object() {
        return;
    }
    if !spec["template"]["metadata"].is_object() {
        spec["template"]["metadata"] = json!({});
    }
    if !spec["template"]["metadata"]["labels"].is_object() {
        spec["template"]["metadata"]["labels"] = json!({});
    }
    let labels = &mut spec["template"]["metadata"]["labels"];
    set_default(labels, "batch.kubernetes.io/controller-uid", uid.clone());
    set_default(labels, "batch.kubernetes.io/job-name", name.clone());
    set_default(labels, "controller-uid", uid);
    set_default(labels, "job-name", name);
}

fn template_defaults(obj: &mut Value) {
    if let Some(spec) = at(obj, &["spec", "template", "spec"]) {
        pod_spec(spec);
    }
    if let Some(meta) = at(obj, &["spec", "template", "metadata"]) {
        set_default(meta, "creationTimestamp", Value::Null);
    }
}

/// Drops null fields, as decoding into the typed objects of a real server
/// does (pod templates keep their `creationTimestamp: null`).
pub fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|k, v| !v.is_null() || k == "creationTimestamp");
            for child in fields.values_mut() {
                prune_nulls(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Fills defaults in an object being written.
pub fn apply(rt: &ResourceType, obj: &mut Value, store: &Store) {
    if !obj.is_object() {
        return;
    }
    apply_defaults(rt, obj, store);
    prune_nulls(obj);
}

fn apply_defaults(rt: &ResourceType, obj: &mut Value, store: &Store) {
    match rt.plural {
        "pods" => {
            if !obj["spec"].is_object() {
                return;
            }
            pod_spec(&mut obj["spec"]);
            if obj["status"].is_null() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        "deployments" => {
            if !obj["spec"].is_object() {
                return;
            }
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            set_default(spec, "strategy", json!({}));
            if let Some(strategy) = at(spec, &["strategy"]) {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy["type"] == "RollingUpdate" {
                    set_default(strategy, "rollingUpdate", json!({}));
                    if let Some(rolling_update) = at(strategy, &["rollingUpdate"]) {
                        set_default(rolling_update, "maxSurge", json!("25%"));
                        set_default(rolling_update, "maxUnavailable", json!("25%"));
                    }
                }
            }
            template_defaults(obj);
            if obj["status"].is_null() {
                obj["status"] = json!({});
            }
        }
        "jobs" => {
            if !obj["spec"].is_object() {
                return;
            }
            job_defaults(obj);
            template_defaults(obj);
            if obj["status"].is_null() {
                obj["status"] = json!({});
            }
        }
        // What a quota limits, as the quota controller reports it.
        "resourcequotas" if obj["status"].is_null() && obj["spec"]["hard"].is_object() => {
            obj["status"] = json!({"hard": obj["spec"]["hard"].clone()});
        }
        "replicasets" => {
            if !obj["spec"].is_object() {
                return;
            }
            set_default(&mut obj["spec"], "replicas", json!(1));
            template_defaults(obj);
            if obj["status"].is_null() {
                obj["status"] = json!({"replicas": 0});
            }
        }
        "services" => {
            if !obj["spec"].is_object() {
                obj["spec"] = json!({});
            }
            let spec = &mut obj["spec"];
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            if let Some(ports) = spec["ports"].as_array_mut() {
                for service_port in ports {
                    if service_port.is_object() {
                        set_default(service_port, "protocol", json!("TCP"));
                        let port = service_port["port"].clone();
                        set_default(service_port, "targetPort", port);
                    }
                }
            }
            if spec["type"] != "ExternalName" {
                if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
                    let ip = allocate_cluster_ip(store);
                    spec["clusterIP"] = json!(ip);
                }
                let ip = spec["clusterIP"].clone();
                spec["clusterIPs"] = json!([ip]);
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            if obj["status"].is_null() {
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        "namespaces" => {
            // Every namespace has the `kubernetes` finalizer, which the
            // namespace controller removes once its content is gone.
            if !obj["spec"].is_object() {
                obj["spec"] = json!({});
            }
            if !obj["spec"]["finalizers"].is_array() {
                obj["spec"]["finalizers"] = json!([]);
            }
            if let Some(list) = obj["spec"]["finalizers"].as_array_mut()
                && !list.iter().any(|f| f == "kubernetes")
            {
                list.push(json!("kubernetes"));
            }
            if obj["status"].is_null() {
                obj["status"] = json!({"phase": "Active"});
            }
            let name = obj["metadata"]["name"].clone();
            if let Some(meta) = at(obj, &["metadata"])
                && name.is_string()
            {
                set_default(meta, "labels", json!({}));
                if let Some(labels) = at(meta, &["labels"]) {
                    labels["kubernetes.io/metadata.name"] = name;
                }
            }
        }
        "secrets" => {
            // As the API server: an empty type (what a protobuf body with
            // no type decodes to) is Opaque too.
            if obj["type"] == "" {
                obj["type"] = json!("Opaque");
            }
            set_default(obj, "type", json!("Opaque"));
            // stringData is write-only: merged into data as base64.
            if let Some(string_data) = obj.get("stringData").and_then(Value::as_object).cloned() {
                if !obj["data"].is_object() {
                    obj["data"] = json!({});
                }
                for (key, value) in string_data {
                    obj["data"][&key] = json!(crate::base64::encode(
                        value.as_str().unwrap_or("").as_bytes()
                    ));
                }
                if let Some(fields) = obj.as_object_mut() {
                    fields.remove("stringData");
                }
            }
        }
        _ => {}
    }
}

/// A free service address: in the Service range 10.96.0.0/12 (10.96.0.1
/// is the `kubernetes` Service's) when pods have a network of their own;
/// otherwise random on loopback, in 127.16.0.0–127.250.255.255, so that
/// clusters on one machine (each listens on its services' addresses) do
/// not pick the same ones.
fn allocate_cluster_ip(store: &Store) -> String {
    let (svcs, _) = store.list(resources::services(), None);
    let used: std::collections::HashSet<String> = svcs
        .iter()
        .filter_map(|s| s["spec"]["clusterIP"].as_str().map(String::from))
        .collect();
    loop {
        let random: u32 = rand::random();
        let ip = if store.uses_service_range() {
            // 10.96.0.0/12 without its first and last addresses.
            let host = 2 + random % ((1 << 20) - 3);
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)) + host)
                .to_string()
        } else {
            let second = 16 + (random >> 16) % 235;
            let (third, fourth) = ((random >> 8) & 0xff, random & 0xff);
            if fourth == 0 || fourth == 255 {
                continue;
            }
            format!("127.{second}.{third}.{fourth}")
        };
        if !used.contains(&ip) && ip != crate::kubelet::network::DNS_IP.to_string() {
            return ip;
        }
    }
}
