//! Security settings of a pod, as far as the sandbox can honour them: the
//! user and group a container's program runs as (`runAsUser`,
//! `runAsGroup`, container settings over the pod's), where the node's user
//! namespace maps them; every setting it cannot honour is named, so it
//! becomes a Warning event instead of being ignored in silence.

use serde_json::Value;

/// The user and group a container's program runs as, when its settings
/// name one.
pub fn run_as(pod_spec: &Value, container: &Value) -> Option<(u32, u32)> {
    let setting = |key: &str| -> Option<u32> {
        container["securityContext"][key]
            .as_u64()
            .or_else(|| pod_spec["securityContext"][key].as_u64())
            .and_then(|n| u32::try_from(n).ok())
    };
    let user = setting("runAsUser");
    let group = setting("runAsGroup");
    match (user, group) {
        (None, None) => None,
        (user, group) => Some((user.unwrap_or(0), group.unwrap_or(0))),
    }
}

/// Every setting of the pod that the local cluster does not apply, each a
/// sentence naming the field. `every_id` says whether the node's user
/// namespace maps every user and group (the cluster runs as root), so
/// `runAsUser` and `runAsGroup` can be applied; `sandboxed` whether pods
/// have namespaces at all.
pub fn not_applied(pod_spec: &Value, every_id: bool, sandboxed: bool) -> Vec<String> {
    let mut out = Vec::new();
    for v in pod_spec["volumes"].as_array().into_iter().flatten() {
        if v.get("hostPath").is_some() {
            out.push(format!(
                "spec.volumes[{}].hostPath is not supported by the local cluster: the volume is an empty directory",
                v["name"].as_str().unwrap_or("")
            ));
        }
    }
    let containers = ["initContainers", "containers"]
        .into_iter()
        .flat_map(|list| {
            pod_spec[list]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (list, c))
        });
    for (list, c) in containers {
        let name = c["name"].as_str().unwrap_or("");
        let field = |key: &str| format!("spec.{list}{{{name}}}.securityContext.{key}");
        let sc = &c["securityContext"];
        if sc["readOnlyRootFilesystem"] == true {
            out.push(format!(
                "{} is not applied: the container's files are this machine's",
                field("readOnlyRootFilesystem")
            ));
        }
        if sc["privileged"] == true {
            out.push(format!(
                "{} is not applied: the container has the capabilities of the cluster's user namespace only",
                field("privileged")
            ));
        }
        if sc["capabilities"].is_object() {
            out.push(format!(
                "{} is not applied: the container has every capability of the cluster's user namespace",
                field("capabilities")
            ));
        }
        if run_as(pod_spec, c).is_some() && !(every_id && sandboxed) {
            out.push(format!(
                "{} is not applied: the local cluster runs programs as your own user, the only one its user namespace maps",
                field("runAsUser")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_s_user_wins_over_the_pod_s() {
        let spec = json!({"securityContext": {"runAsUser": 1000, "runAsGroup": 50}});
        let c = json!({"securityContext": {"runAsUser": 2000}});
        assert_eq!(run_as(&spec, &c), Some((2000, 50)));
        assert_eq!(run_as(&json!({}), &json!({})), None);
    }

    #[test]
    fn settings_that_are_not_applied_are_named() {
        let spec = json!({
            "volumes": [{"name": "host", "hostPath": {"path": "/var"}}],
            "containers": [{"name": "c", "securityContext": {
                "readOnlyRootFilesystem": true, "privileged": true,
                "capabilities": {"drop": ["ALL"]}, "runAsUser": 1000}}],
        });
        let said = not_applied(&spec, false, true).join("\n");
        assert!(said.contains("spec.volumes[host].hostPath"), "{said}");
        assert!(said.contains("spec.containers{c}.securityContext.readOnlyRootFilesystem"));
        assert!(said.contains("securityContext.privileged"));
        assert!(said.contains("securityContext.capabilities"));
        assert!(said.contains("securityContext.runAsUser is not applied"));
        // As root every id is mapped: runAsUser is applied.
        assert!(
            !not_applied(&spec, true, true)
                .join("\n")
                .contains("runAsUser")
        );
    }
}
