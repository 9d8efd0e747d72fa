//! Pods found in the store when the cluster starts again: their containers
//! ran before and are gone, as on a node after a reboot. As the kubelet
//! does then, each container's last run is reported ended (reason
//! `Unknown`, exit code 255) and its restart counted, a `SandboxChanged`
//! event is recorded, and the pod starts afresh in a new sandbox, with its
//! old address where it is free. A pod whose restartPolicy is Never is not
//! started again: it fails, saying why.

use serde_json::{Value, json};

use crate::store::now;

/// The event the kubelet records for a pod whose sandbox is gone.
pub const SANDBOX_CHANGED: (&str, &str) = (
    "SandboxChanged",
    "Pod sandbox changed, it will be killed and re-created.",
);

/// Why a restartPolicy Never pod failed (status `reason` and `message`).
pub const NEVER_AGAIN: (&str, &str) = (
    "Terminated",
    "The pod's containers ended when the local cluster stopped; its restartPolicy Never keeps them from starting again.",
);

/// The container status lists of a pod.
pub const LISTS: [&str; 2] = ["initContainerStatuses", "containerStatuses"];

fn started(status: &Value) -> bool {
    status["state"]["running"].is_object()
        || status["state"]["terminated"].is_object()
        || status["lastState"]["terminated"].is_object()
        || status["restartCount"].as_i64().unwrap_or(0) > 0
}

/// Whether any container of `pod` had started: the pod comes from the
/// store of a cluster that stopped (a new pod's containers have not).
pub fn ran_before(pod: &Value) -> bool {
    LISTS.iter().any(|list| {
        pod["status"][list]
            .as_array()
            .is_some_and(|statuses| statuses.iter().any(started))
    })
}

fn previous<'a>(pod: &'a Value, list: &str, name: &Value) -> Option<&'a Value> {
    pod["status"][list]
        .as_array()
        .and_then(|statuses| statuses.iter().find(|s| &s["name"] == name))
}

/// How a run that was going on when the cluster stopped ended.
fn ended_by_stop(status: &Value) -> Value {
    json!({
        "exitCode": 255,
        "reason": "Unknown",
        "startedAt": status["state"]["running"]["startedAt"],
        "finishedAt": now(),
        "containerID": status["containerID"],
    })
}

/// A container's status as the pod starts again: `fresh` (waiting), with
/// the restart counted and the last run as its last state, when it had
/// started before.
pub fn restarted(pod: &Value, list: &str, fresh: Value) -> Value {
    let Some(before) = previous(pod, list, &fresh["name"]).filter(|s| started(s)) else {
        return fresh;
    };
    let mut status = fresh;
    let last = if before["state"]["running"].is_object() {
        ended_by_stop(before)
    } else if before["state"]["terminated"].is_object() {
        before["state"]["terminated"].clone()
    } else {
        before["lastState"]["terminated"].clone()
    };
    status["restartCount"] = json!(before["restartCount"].as_i64().unwrap_or(0) + 1);
    status["lastState"] = json!({ "terminated": last });
    status
}

/// A container's status in a pod that does not start again: its run, if
/// one was going on, ended; otherwise as it was.
pub fn ended(pod: &Value, list: &str, fresh: Value) -> Value {
    let Some(before) = previous(pod, list, &fresh["name"]) else {
        return fresh;
    };
    let mut status = before.clone();
    if before["state"]["running"].is_object() {
        status["state"] = json!({ "terminated": ended_by_stop(before) });
        status["ready"] = json!(false);
        status["started"] = json!(false);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(state: Value, restarts: i64) -> Value {
        json!({"status": {"containerStatuses": [{
            "name": "c", "restartCount": restarts, "state": state,
            "containerID": "kubesh://u-c-0", "lastState": {},
        }]}})
    }

    fn waiting(name: &str) -> Value {
        json!({"name": name, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}})
    }

    #[test]
    fn a_running_container_counts_a_restart_whose_last_run_ended_unknown() {
        let before = pod(json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}), 2);
        assert!(ran_before(&before));
        let status = restarted(&before, "containerStatuses", waiting("c"));
        assert_eq!(status["restartCount"], 3);
        assert_eq!(status["state"]["waiting"]["reason"], "ContainerCreating");
        let last = &status["lastState"]["terminated"];
        assert_eq!(
            (last["reason"].as_str(), last["exitCode"].as_i64()),
            (Some("Unknown"), Some(255))
        );
        assert_eq!(last["startedAt"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_new_pod_did_not_run_before() {
        let fresh = json!({"status": {"containerStatuses": [waiting("c")]}});
        assert!(!ran_before(&fresh));
        assert!(!ran_before(&json!({"status": {"phase": "Pending"}})));
        assert_eq!(
            restarted(&fresh, "containerStatuses", waiting("c"))["restartCount"],
            0
        );
    }

    #[test]
    fn a_pod_that_does_not_start_again_shows_its_run_ended() {
        let before = pod(json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}), 0);
        let status = ended(&before, "containerStatuses", waiting("c"));
        assert_eq!(status["state"]["terminated"]["exitCode"], 255);
        assert_eq!(status["restartCount"], 0);
        assert_eq!(status["ready"], false);
    }
}
