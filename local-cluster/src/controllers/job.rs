//! Job controller (batch/v1): runs a Job's pods to completion as the
//! Kubernetes Job controller does for a NonIndexed Job. At most
//! `parallelism` pods run at once, a pod per completion still needed (or,
//! without `completions`, until one succeeds); a failed pod is replaced
//! after the controller's back-off (10 s doubling, at most 6 min) until
//! more than `backoffLimit` have failed (for `restartPolicy: OnFailure`,
//! the restarts of its running pods count). The status carries the
//! counts, `startTime`, `completionTime` and the conditions
//! (`SuccessCriteriaMet` then `Complete`; `FailureTarget` then `Failed`
//! once its pods are gone, for `BackoffLimitExceeded` or
//! `DeadlineExceeded` after `activeDeadlineSeconds`; `Suspended` while
//! `suspend` holds, when no pod runs). A finished Job with
//! `ttlSecondsAfterFinished` is deleted when that has passed, its pods
//! with it.

use serde_json::{Value, json};

use super::{controller_of, is_deleting, owner_ref};
use crate::Shared;
use crate::events;
use crate::resources;
use crate::store::{DeleteOptions, epoch_now, now, parse_time};

const SOURCE: &str = "job-controller";

/// The first wait before a failed pod is replaced, doubled for each
/// further failure, at most [`BACKOFF_MAX`] seconds.
const BACKOFF_START: i64 = 10;
const BACKOFF_MAX: i64 = 360;

fn condition_holds(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// When a Job finished (Complete or Failed), in seconds since the epoch.
fn finished_at(job: &Value) -> Option<i64> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(parse_time)
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// When a pod ended, from its containers' `finishedAt` (else now).
fn ended_at(pod: &Value) -> i64 {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["state"]["terminated"]["finishedAt"].as_str())
        .filter_map(parse_time)
        .max()
        .unwrap_or_else(epoch_now)
}

fn restarts(pod: &Value) -> i64 {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|field| pod["status"][field].as_array().into_iter().flatten())
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum()
}

fn condition(kind: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": at,
        "lastTransitionTime": at,
    })
}

pub fn reconcile(shared: &Shared, ns: &str, name: &str) {
    let Some(job) = shared.store.try_get(resources::jobs(), ns, name) else {
        return;
    };
    if is_deleting(&job) {
        return;
    }
    if condition_holds(&job, "Complete") || condition_holds(&job, "Failed") {
        expire(shared, ns, name, &job);
        return;
    }
    let uid = job["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let spec = &job["spec"];
    let (all, _) = shared.store.list(resources::pods(), Some(ns));
    let pods: Vec<Value> = all
        .into_iter()
        .filter(|pod| {
            controller_of(pod).is_some_and(|(kind, _, owner)| kind == "Job" && owner == uid)
        })
        .collect();
    // Counted once: a finished pod deleted later still counts.
    let counted = |field: &str| job["status"][field].as_i64().unwrap_or(0);
    let succeeded =
        (pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64).max(counted("succeeded"));
    let failed_pods: Vec<&Value> = pods.iter().filter(|p| phase(p) == "Failed").collect();
    let failed = (failed_pods.len() as i64).max(counted("failed"));
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !is_deleting(p))
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && is_deleting(p))
        .count() as i64;
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let completions = spec["completions"].as_i64();
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let stamp = now();
    let mut conditions: Vec<Value> = job["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Suspended: no pod runs, and the clock of activeDeadlineSeconds
    // starts again on resuming.
    let suspended = spec["suspend"] == true;
    let was_suspended = conditions
        .iter()
        .any(|c| c["type"] == "Suspended" && c["status"] == "True");
    if suspended != was_suspended {
        let (status, reason, message, event) = if suspended {
            ("True", "JobSuspended", "Job suspended", "Suspended")
        } else {
            ("False", "JobResumed", "Job resumed", "Resumed")
        };
        conditions.retain(|c| c["type"] != "Suspended");
        let mut suspension = condition("Suspended", reason, message, &stamp);
        suspension["status"] = json!(status);
        conditions.push(suspension);
        events::record(&shared.store, &job, "Job", "Normal", event, message, SOURCE);
    }
    let start = job["status"]["startTime"]
        .as_str()
        .filter(|_| !was_suspended)
        .map(String::from)
        .unwrap_or_else(|| stamp.clone());
    let has = |conditions: &[Value], kind: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    };

    // Success: enough pods succeeded (or, without completions, one did).
    let success = match completions {
        Some(completions) => succeeded >= completions,
        None => succeeded > 0,
    };
    // Failure: too many failed pods (or restarts), or past the deadline.
    let restarted = if spec["template"]["spec"]["restartPolicy"] == "OnFailure" {
        let sum: i64 = active.iter().map(|p| restarts(p)).sum();
        if backoff_limit == 0 {
            sum > 0
        } else {
            sum >= backoff_limit
        }
    } else {
        false
    };
    let deadline_passed = spec["activeDeadlineSeconds"]
        .as_i64()
        .zip(parse_time(&start))
        .is_some_and(|(seconds, started)| !suspended && epoch_now() - started >= seconds);
    if !has(&conditions, "FailureTarget") && !has(&conditions, "SuccessCriteriaMet") {
        if success {
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &stamp,
            ));
        } else if failed > backoff_limit || restarted {
            conditions.push(condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                &stamp,
            ));
            events::record(
                &shared.store,
                &job,
                "Job",
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                SOURCE,
            );
        } else if deadline_passed {
            conditions.push(condition(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                &stamp,
            ));
            events::record(
                &shared.store,
                &job,
                "Job",
                "Warning",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                SOURCE,
            );
        }
    }
    let finishing = has(&conditions, "FailureTarget") || has(&conditions, "SuccessCriteriaMet");
    let mut active_count = active.len() as i64;
    if finishing || suspended {
        // Whatever still runs is stopped; the Job finishes once its pods
        // are gone.
        for pod in &active {
            delete_pod(shared, &job, ns, pod);
        }
        active_count = 0;
    } else {
        let wanted = match completions {
            Some(completions) => parallelism.min(completions - succeeded).max(0),
            None => parallelism,
        };
        if active_count < wanted && backoff_over(&failed_pods) {
            while active_count < wanted && create_pod(shared, &job, ns, name) {
                active_count += 1;
            }
        } else if active_count > wanted {
            for pod in active.iter().rev().take((active_count - wanted) as usize) {
                delete_pod(shared, &job, ns, pod);
            }
            active_count = wanted;
        }
    }
    let remaining = active_count + terminating;
    let mut completion_time = None;
    if finishing && remaining == 0 {
        if let Some(target) = conditions
            .iter()
            .find(|c| c["type"] == "FailureTarget" && c["status"] == "True")
            .cloned()
        {
            if !has(&conditions, "Failed") {
                let (reason, message) = (
                    target["reason"].as_str().unwrap_or("").to_string(),
                    target["message"].as_str().unwrap_or("").to_string(),
                );
                conditions.push(condition("Failed", &reason, &message, &stamp));
            }
        } else if !has(&conditions, "Complete") {
            conditions.push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &stamp,
            ));
            completion_time = Some(stamp.clone());
            events::record(
                &shared.store,
                &job,
                "Job",
                "Normal",
                "Completed",
                "Job completed",
                SOURCE,
            );
        }
    }
    let ready = active
        .iter()
        .filter(|p| super::replicaset::pod_ready(p))
        .count() as i64;
    let mut status = json!({
        "startTime": if suspended { Value::Null } else { json!(start) },
        "active": active_count,
        "ready": if finishing { 0 } else { ready },
        "terminating": terminating,
        "uncountedTerminatedPods": {},
    });
    if succeeded > 0 {
        status["succeeded"] = json!(succeeded);
    }
    if failed > 0 {
        status["failed"] = json!(failed);
    }
    if let Some(fields) = status.as_object_mut() {
        fields.retain(|_, value| !value.is_null());
        if active_count == 0 {
            fields.remove("active");
        }
    }
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    if let Some(time) =
        completion_time.or_else(|| job["status"]["completionTime"].as_str().map(String::from))
    {
        status["completionTime"] = json!(time);
    }
    if status != job["status"] {
        let _ = shared.store.modify(resources::jobs(), ns, name, |stored| {
            stored["status"] = status.clone();
            Ok(())
        });
    }
}

/// Whether the back-off after the last failed pod has passed.
fn backoff_over(failed: &[&Value]) -> bool {
    let Some(last) = failed.iter().map(|p| ended_at(p)).max() else {
        return true;
    };
    let doublings = (failed.len() as u32).saturating_sub(1).min(6);
    let delay = (BACKOFF_START << doublings).min(BACKOFF_MAX);
    epoch_now() - last >= delay
}

/// Deletes a finished Job whose `ttlSecondsAfterFinished` has passed,
/// its pods with it.
fn expire(shared: &Shared, ns: &str, name: &str, job: &Value) {
    let (Some(ttl), Some(finished)) = (
        job["spec"]["ttlSecondsAfterFinished"].as_i64(),
        finished_at(job),
    ) else {
        return;
    };
    if epoch_now() - finished >= ttl {
        let opts = DeleteOptions {
            propagation: Some("Background".into()),
            ..Default::default()
        };
        let _ = shared.store.delete(resources::jobs(), ns, name, &opts);
    }
}

/// Creates one pod from the Job's template; false if it could not be.
fn create_pod(shared: &Shared, job: &Value, ns: &str, name: &str) -> bool {
    let template = &job["spec"]["template"];
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["generateName"] = json!(format!("{name}-"));
    meta["namespace"] = json!(ns);
    meta["ownerReferences"] = json!([owner_ref(job, "Job")]);
    if let Some(fields) = meta.as_object_mut() {
        fields.remove("creationTimestamp");
        fields.remove("name");
    }
    let mut pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]});
    crate::defaults::apply(resources::pods(), &mut pod, &shared.store);
    let created = crate::namespace_lifecycle::admit(&shared.store, resources::pods(), ns, "")
        .and_then(|()| crate::pod_security::admit(&shared.store, ns, &pod))
        .and_then(|()| crate::quota::admit(&shared.store, ns, &pod))
        .and_then(|()| shared.store.create(resources::pods(), ns, pod));
    match created {
        Ok(created) => {
            events::record(
                &shared.store,
                job,
                "Job",
                "Normal",
                "SuccessfulCreate",
                &format!(
                    "Created pod: {}",
                    created["metadata"]["name"].as_str().unwrap_or("")
                ),
                SOURCE,
            );
            true
        }
        Err(e) => {
            events::record(
                &shared.store,
                job,
                "Job",
                "Warning",
                "FailedCreate",
                &format!("Error creating: {}", e.message),
                SOURCE,
            );
            false
        }
    }
}

fn delete_pod(shared: &Shared, job: &Value, ns: &str, pod: &Value) {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    if shared
        .store
        .delete(resources::pods(), ns, pod_name, &DeleteOptions::default())
        .is_ok()
    {
        events::record(
            &shared.store,
            job,
            "Job",
            "Normal",
            "SuccessfulDelete",
            &format!("Deleted pod: {pod_name}"),
            SOURCE,
        );
    }
}
