//! The cluster's one node, `kubesh-local`: this machine, as `kubectl get
//! nodes` and clients that pick an architecture or a node see it, and the
//! scheduler's check of a pod's `nodeSelector` against it.

use serde_json::{Value, json};

use super::network::NODE_IP;
use crate::NODE_NAME;

/// The version the node's kubelet reports (that of the API server).
const KUBELET_VERSION: &str = "v1.32.0+kubesh-local";

/// This machine's architecture, in Kubernetes' terms.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The node's labels: those every kubelet sets.
fn labels() -> Value {
    json!({
        "beta.kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "kubernetes.io/hostname": NODE_NAME,
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
    })
}

/// The Node object, as the kubelet registers it.
pub fn object() -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|name| name.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".to_string());
    let resources = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{memory_kib}Ki"),
        "pods": "110",
        "ephemeral-storage": "0",
    });
    let now = crate::store::now();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": labels()},
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP.to_string()},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "architecture": arch(),
                "operatingSystem": "linux",
                "osImage": os_image,
                "kernelVersion": kernel,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "containerRuntimeVersion": "kubesh-local://processes",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

/// Whether the node's labels satisfy `pod`'s `nodeSelector`.
pub fn selects(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, wanted)| labels[key] == *wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_selector_is_matched_against_the_node_s_labels() {
        let node = object();
        let pod = |selector: Value| json!({"spec": {"nodeSelector": selector}});
        assert!(selects(&json!({"spec": {}}), &node));
        assert!(selects(&pod(json!({"kubernetes.io/arch": arch()})), &node));
        assert!(!selects(
            &pod(json!({"kubernetes.io/arch": "s390x-nowhere"})),
            &node
        ));
        assert!(!selects(&pod(json!({"disk": "ssd"})), &node));
    }
}
