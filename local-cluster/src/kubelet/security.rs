//! Security settings of a pod, as far as the sandbox can honour them: the
//! user and group a container's program runs as (`runAsUser`,
//! `runAsGroup`, container settings over the pod's), where the node's user
//! namespace maps them; its capabilities (a container runtime's default
//! set, `capabilities.add` and `drop`, everything when `privileged`); a
//! read-only root file system. Every setting it cannot honour is named, so
//! it becomes a Warning event instead of being ignored in silence.

use serde_json::Value;

/// Linux capabilities by number, as `capabilities.add`/`drop` name them.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities containerd and Docker give a container by default.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The bits of the capabilities `names` lists (`ALL`, `NET_ADMIN`,
/// `CAP_NET_ADMIN`…), and the names it does not know.
fn capability_bits(names: &Value) -> (u64, Vec<String>) {
    let mut bits = 0;
    let mut unknown = Vec::new();
    for name in names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let bare = name.trim_start_matches("CAP_").to_ascii_uppercase();
        if bare == "ALL" {
            bits = u64::MAX;
        } else if let Some(i) = CAPABILITIES.iter().position(|c| *c == bare) {
            bits |= 1 << i;
        } else {
            unknown.push(name.to_string());
        }
    }
    (bits, unknown)
}

/// The capabilities a container's processes may have (a bounding set,
/// one bit per capability number): the default set, plus
/// `capabilities.add`, minus `capabilities.drop`; every one when
/// `privileged`.
pub fn capabilities(container: &Value) -> u64 {
    let sc = &container["securityContext"];
    if sc["privileged"] == true {
        return u64::MAX;
    }
    let (defaults, _) = capability_bits(&serde_json::json!(DEFAULT_CAPABILITIES));
    let (add, _) = capability_bits(&sc["capabilities"]["add"]);
    let (drop, _) = capability_bits(&sc["capabilities"]["drop"]);
    (defaults | add) & !drop
}

/// Whether a container's root file system is to be read-only.
pub fn read_only_root(container: &Value) -> bool {
    container["securityContext"]["readOnlyRootFilesystem"] == true
}

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
    for volume in pod_spec["volumes"].as_array().into_iter().flatten() {
        if volume.get("hostPath").is_some() {
            out.push(format!(
                "spec.volumes[{}].hostPath is not supported by the local cluster: the volume is an empty directory",
                volume["name"].as_str().unwrap_or("")
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
    for (list, container) in containers {
        let name = container["name"].as_str().unwrap_or("");
        let field = |key: &str| format!("spec.{list}{{{name}}}.securityContext.{key}");
        let sc = &container["securityContext"];
        if !sandboxed {
            for key in ["readOnlyRootFilesystem", "privileged", "capabilities"] {
                if sc.get(key).is_some_and(|v| !v.is_null() && *v != false) {
                    out.push(format!(
                        "{} is not applied: pods run directly on this machine",
                        field(key)
                    ));
                }
            }
        } else if sc["privileged"] == true {
            out.push(format!(
                "{} is applied within the cluster's user namespace only: no capability over this machine",
                field("privileged")
            ));
        }
        for list in ["add", "drop"] {
            let (_, unknown) = capability_bits(&sc["capabilities"][list]);
            if !unknown.is_empty() {
                out.push(format!(
                    "{}: unknown capabilities {}",
                    field(&format!("capabilities.{list}")),
                    unknown.join(", ")
                ));
            }
        }
        if run_as(pod_spec, container).is_some() && !(every_id && sandboxed) {
            out.push(format!(
                "{} is not applied: the local cluster runs programs as your own user, the only one its user namespace maps",
                field("runAsUser")
            ));
        }
    }
    out
}

/// The first of `words` that is a program of this machine on `path` (a
/// `PATH` value), or an absolute path to one, which user `uid` (group
/// `gid`) may not run, with the directory or file closed to it
/// (`/root/.pyenv/shims/python of this machine (/root is closed to it)`).
/// Images open their programs to every user; this machine may not (a
/// root user's tools under `/root`), and a container's command comes from
/// here.
pub fn closed_program(words: &[String], path: &str, uid: u32, gid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    let allows = |meta: &std::fs::Metadata, bit: u32| {
        let mode = meta.mode();
        if meta.uid() == uid {
            mode & (bit << 6) != 0
        } else if meta.gid() == gid {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    let found = |word: &str| -> Option<PathBuf> {
        if word.starts_with('/') {
            let candidate = PathBuf::from(word);
            return candidate.is_file().then_some(candidate);
        }
        if word.is_empty() || word.contains(['/', ' ', '\n', '=']) {
            return None;
        }
        path.split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| Path::new(dir).join(word))
            .find(|candidate| candidate.is_file())
    };
    words.iter().find_map(|word| {
        let program = found(word)?;
        let closed = program
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|dir| std::fs::metadata(dir).is_ok_and(|meta| !allows(&meta, 0o1)));
        match closed {
            Some(dir) => Some(format!(
                "{} of this machine ({} is closed to it)",
                program.display(),
                dir.display()
            )),
            None => std::fs::metadata(&program)
                .is_ok_and(|meta| !allows(&meta, 0o1))
                .then(|| {
                    format!(
                        "{} of this machine (it may not execute it)",
                        program.display()
                    )
                }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_s_user_wins_over_the_pod_s() {
        let spec = json!({"securityContext": {"runAsUser": 1000, "runAsGroup": 50}});
        let container = json!({"securityContext": {"runAsUser": 2000}});
        assert_eq!(run_as(&spec, &container), Some((2000, 50)));
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
        assert!(said.contains("securityContext.privileged is applied within"));
        assert!(said.contains("securityContext.runAsUser is not applied"));
        assert!(
            !said.contains("readOnlyRootFilesystem"),
            "applied in a sandbox"
        );
        // As root every id is mapped: runAsUser is applied.
        assert!(
            !not_applied(&spec, true, true)
                .join("\n")
                .contains("runAsUser")
        );
        // Without a sandbox, none of them is.
        let direct = not_applied(&spec, true, false).join("\n");
        assert!(
            direct.contains("readOnlyRootFilesystem is not applied"),
            "{direct}"
        );
        assert!(direct.contains("capabilities is not applied"), "{direct}");
    }

    #[test]
    fn a_program_in_a_directory_closed_to_the_user_is_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::write(closed.join("tool"), "").unwrap();
        std::fs::set_permissions(closed.join("tool"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = format!("/nowhere:{}", closed.display());
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let said = closed_program(&words(&["sh", "-c", "x", "tool"]), &path, 54321, 54321);
        assert_eq!(
            said,
            Some(format!(
                "{}/tool of this machine ({} is closed to it)",
                closed.display(),
                closed.display()
            ))
        );
        assert_eq!(
            closed_program(&words(&["ls"]), "/usr/bin:/bin", 54321, 54321),
            None
        );
        // Its owner may.
        let me = std::fs::metadata(&closed).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            closed_program(&words(&["tool"]), &path, me.uid(), me.gid()),
            None
        );
    }

    #[test]
    fn capabilities_start_from_a_runtime_s_default_set() {
        let bit = |name: &str| 1u64 << CAPABILITIES.iter().position(|c| *c == name).unwrap();
        let default = capabilities(&json!({}));
        assert_ne!(default & bit("NET_BIND_SERVICE"), 0);
        assert_eq!(default & bit("SYS_ADMIN"), 0);
        let container = json!({"securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["CAP_KILL"]}}});
        assert_ne!(capabilities(&container) & bit("NET_ADMIN"), 0);
        assert_eq!(capabilities(&container) & bit("KILL"), 0);
        let none = json!({"securityContext": {"capabilities": {"drop": ["ALL"]}}});
        assert_eq!(capabilities(&none), 0);
        let unknown = json!({"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["FLY"]}}}]});
        assert!(not_applied(&unknown, true, true)[0].contains("unknown capabilities FLY"));
    }
}
