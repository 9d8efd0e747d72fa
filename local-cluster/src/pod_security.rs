//! Pod Security admission, as the API server enforces it: a namespace
//! labelled `pod-security.kubernetes.io/enforce: baseline` or `restricted`
//! refuses pods that break that level's rules, whoever creates them (a
//! user, or the ReplicaSet controller, which then records `FailedCreate`).
//! The checks and the words of the refusal follow the Pod Security
//! Standards; the `enforce-version` label is read as `latest`.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources;
use crate::store::Store;

/// The label that sets a namespace's enforced level.
const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// The levels stricter than `privileged` (which checks nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Baseline,
    Restricted,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// Capabilities the baseline level lets a container add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Volume types the restricted level allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Refuses `pod` (to be created in `namespace`) when it breaks the level
/// the namespace enforces, with the API server's words.
///
/// # Errors
/// 403 Forbidden naming every rule the pod breaks.
pub fn admit(store: &Store, namespace: &str, pod: &Value) -> ApiResult<()> {
    let Some(level) = enforced(store, namespace) else {
        return Ok(());
    };
    let broken = check(pod, level);
    if broken.is_empty() {
        return Ok(());
    }
    let name = pod["metadata"]["name"]
        .as_str()
        .or_else(|| pod["metadata"]["generateName"].as_str())
        .unwrap_or("");
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "pods \"{name}\" is forbidden: violates PodSecurity \"{}:latest\": {}",
            level.name(),
            broken.join(", ")
        ),
    ))
}

/// The level `namespace` enforces, when stricter than privileged.
fn enforced(store: &Store, namespace: &str) -> Option<Level> {
    let ns = store.try_get(resources::namespaces(), "", namespace)?;
    match ns["metadata"]["labels"][ENFORCE].as_str()? {
        "baseline" => Some(Level::Baseline),
        "restricted" => Some(Level::Restricted),
        _ => None,
    }
}

/// A rule and the containers (or volumes) that break it.
struct Breach {
    rule: String,
    who: Vec<String>,
    /// What they must (not) do, after `who`.
    must: String,
}

impl Breach {
    fn text(&self) -> String {
        let who = match self.who.as_slice() {
            [one] => one.clone(),
            many => {
                // `pod or containers "a", "b"`: the noun made plural once.
                let split = |w: &str| {
                    w.find('"').map_or((String::new(), w.to_string()), |at| {
                        (w[..at].to_string(), w[at..].to_string())
                    })
                };
                let (noun, _) = split(&many[0]);
                let names: Vec<String> = many.iter().map(|w| split(w).1).collect();
                format!("{}s {}", noun.trim_end(), names.join(", "))
            }
        };
        format!("{} ({who} {})", self.rule, self.must)
    }
}

/// Every rule of `level` that `pod` breaks, in the API server's order.
fn check(pod: &Value, level: Level) -> Vec<String> {
    let spec = &pod["spec"];
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect();
    let name = |c: &Value| format!("container \"{}\"", c["name"].as_str().unwrap_or(""));
    let security = |c: &Value, field: &str| c["securityContext"][field].clone();
    let mut breaches: Vec<Breach> = Vec::new();
    let mut add = |rule: &str, who: Vec<String>, must: &str| {
        if !who.is_empty() {
            breaches.push(Breach {
                rule: rule.to_string(),
                who,
                must: must.to_string(),
            });
        }
    };

    // Baseline.
    let host: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|field| spec[*field].as_bool() == Some(true))
        .collect();
    let mut simple: Vec<String> = Vec::new();
    if !host.is_empty() {
        let set: Vec<String> = host.iter().map(|f| format!("{f}=true")).collect();
        simple.push(format!("host namespaces ({})", set.join(", ")));
    }
    let privileged: Vec<String> = containers
        .iter()
        .filter(|c| security(c, "privileged").as_bool() == Some(true))
        .map(|c| name(c))
        .collect();
    add(
        "privileged",
        privileged,
        "must not set securityContext.privileged=true",
    );
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| !v["hostPath"].is_null())
        .map(|v| format!("\"{}\"", v["name"].as_str().unwrap_or("")))
        .collect();
    if !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        simple.push(format!(
            "hostPath volumes ({noun} {})",
            host_paths.join(", ")
        ));
    }
    let added = |c: &Value| -> Vec<String> {
        c["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|cap| cap.as_str().map(String::from))
            .collect()
    };
    for c in &containers {
        let extra: Vec<String> = added(c)
            .into_iter()
            .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
            .map(|cap| format!("\"{cap}\""))
            .collect();
        if !extra.is_empty() {
            add(
                "non-default capabilities",
                vec![name(c)],
                &format!(
                    "must not include {} in securityContext.capabilities.add",
                    extra.join(", ")
                ),
            );
        }
    }
    for c in &containers {
        let ports: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64().filter(|port| *port != 0))
            .map(|port| port.to_string())
            .collect();
        if !ports.is_empty() {
            simple.push(format!(
                "hostPort ({} uses hostPort {})",
                name(c),
                ports.join(", ")
            ));
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut flush = |breaches: &mut Vec<Breach>, simple: &mut Vec<String>| {
        out.append(simple);
        out.extend(breaches.drain(..).map(|b| b.text()));
    };
    if level == Level::Baseline {
        flush(&mut breaches, &mut simple);
        return out;
    }

    // Restricted.
    let escalates: Vec<String> = containers
        .iter()
        .filter(|c| security(c, "allowPrivilegeEscalation").as_bool() != Some(false))
        .map(|c| name(c))
        .collect();
    add(
        "allowPrivilegeEscalation != false",
        escalates,
        "must set securityContext.allowPrivilegeEscalation=false",
    );
    let undropped: Vec<String> = containers
        .iter()
        .filter(|c| {
            !c["securityContext"]["capabilities"]["drop"]
                .as_array()
                .is_some_and(|drop| drop.iter().any(|cap| cap == "ALL"))
        })
        .map(|c| name(c))
        .collect();
    add(
        "unrestricted capabilities",
        undropped,
        "must set securityContext.capabilities.drop=[\"ALL\"]",
    );
    let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool();
    let root_allowed: Vec<String> = containers
        .iter()
        .filter(|c| match security(c, "runAsNonRoot").as_bool() {
            Some(set) => !set,
            None => pod_non_root != Some(true),
        })
        .map(|c| name(c))
        .collect();
    if !root_allowed.is_empty() {
        let who: Vec<String> = root_allowed
            .iter()
            .map(|c| c.replacen("container ", "pod or container ", 1))
            .collect();
        add(
            "runAsNonRoot != true",
            who,
            "must set securityContext.runAsNonRoot=true",
        );
    }
    let as_root: Vec<String> = containers
        .iter()
        .filter(|c| security(c, "runAsUser").as_i64() == Some(0))
        .map(|c| name(c))
        .collect();
    add("runAsUser=0", as_root, "must not set runAsUser=0");
    let pod_seccomp = spec["securityContext"]["seccompProfile"]["type"].as_str();
    let allowed_seccomp = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let no_seccomp: Vec<String> = containers
        .iter()
        .filter(|c| {
            let own = c["securityContext"]["seccompProfile"]["type"].as_str();
            if own.is_some() {
                !allowed_seccomp(own)
            } else {
                !allowed_seccomp(pod_seccomp)
            }
        })
        .map(|c| name(c).replacen("container ", "pod or container ", 1))
        .collect();
    add(
        "seccompProfile",
        no_seccomp,
        "must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
    );
    let restricted_volumes: Vec<String> = volumes
        .iter()
        .filter_map(|v| {
            let kind = v
                .as_object()?
                .keys()
                .find(|key| key.as_str() != "name")?
                .clone();
            (!RESTRICTED_VOLUMES.contains(&kind.as_str())).then(|| {
                format!(
                    "volume \"{}\" uses restricted volume type \"{kind}\"",
                    v["name"].as_str().unwrap_or("")
                )
            })
        })
        .collect();
    if !restricted_volumes.is_empty() {
        simple.push(format!(
            "restricted volume types ({})",
            restricted_volumes.join(", ")
        ));
    }
    flush(&mut breaches, &mut simple);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plain() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "main", "image": "python"}]}})
    }

    #[test]
    fn restricted_names_every_rule_a_plain_pod_breaks() {
        assert_eq!(
            check(&plain(), Level::Restricted).join(", "),
            "allowPrivilegeEscalation != false (container \"main\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"main\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"main\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"main\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(check(&plain(), Level::Baseline).is_empty());
        let two = json!({"spec": {"initContainers": [{"name": "unpack"}], "containers": [{"name": "main"}]}});
        assert!(
            check(&two, Level::Restricted)[2].starts_with(
                "runAsNonRoot != true (pod or containers \"unpack\", \"main\" must set"
            )
        );
    }

    #[test]
    fn a_pod_made_for_restricted_passes() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "app", "emptyDir": {}}],
            "containers": [{"name": "main", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
        assert!(check(&pod, Level::Restricted).is_empty());
    }

    #[test]
    fn baseline_refuses_host_access_and_privilege() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "hostNetwork": true,
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "main", "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}}]}});
        assert_eq!(
            check(&pod, Level::Baseline),
            [
                "host namespaces (hostNetwork=true)",
                "hostPath volumes (volume \"root\")",
                "hostPort (container \"main\" uses hostPort 80)",
                "privileged (container \"main\" must not set securityContext.privileged=true)",
                "non-default capabilities (container \"main\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            ]
        );
    }
}
