//! ReplicaSet controller: keeps the number of live pods at spec.replicas
//! (creating from the template, deleting not-ready and newest first) and
//! reports replicas, ready and available counts.

use serde_json::{Value, json};

use super::{controller_of, is_deleting, owner_ref};
use crate::Shared;
use crate::events;
use crate::resources;
use crate::selectors::LabelSelector;
use crate::store::{DeleteOptions, epoch_now, parse_time};

pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Ready for at least `min_ready` seconds.
pub fn pod_available(pod: &Value, min_ready: i64) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| {
            condition["type"] == "Ready"
                && condition["status"] == "True"
                && (min_ready <= 0
                    || condition["lastTransitionTime"]
                        .as_str()
                        .and_then(parse_time)
                        .is_some_and(|t| epoch_now() - t >= min_ready))
        })
}

/// Live pods controlled by an owner uid.
pub fn owned_pods(shared: &Shared, ns: &str, uid: &str) -> Vec<Value> {
    let (pods, _) = shared.store.list(resources::pods(), Some(ns));
    pods.into_iter()
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        .filter(|pod| {
            let phase = pod["status"]["phase"].as_str().unwrap_or("");
            phase != "Succeeded" && phase != "Failed"
        })
        .collect()
}

pub fn reconcile(shared: &Shared, ns: &str, name: &str) {
    let Some(rs) = shared.store.try_get(resources::replicasets(), ns, name) else {
        return;
    };
    if is_deleting(&rs) {
        return;
    }
    let uid = rs["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let selector = LabelSelector::from_object(&rs["spec"]["selector"]);
    let all = owned_pods(shared, ns, &uid);
    let active: Vec<&Value> = all
        .iter()
        .filter(|p| !is_deleting(p) && selector.matches_object(p))
        .collect();
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    // Why the last pod could not be created, for the ReplicaFailure condition.
    let mut failure: Option<String> = None;
    if active.len() < want {
        for _ in active.len()..want {
            let tmpl = &rs["spec"]["template"];
            let mut meta = tmpl["metadata"].clone();
            if !meta.is_object() {
                meta = json!({});
            }
            meta["generateName"] = json!(format!("{name}-"));
            meta["namespace"] = json!(ns);
            meta["ownerReferences"] = json!([owner_ref(&rs, "ReplicaSet")]);
            if let Some(fields) = meta.as_object_mut() {
                fields.remove("creationTimestamp");
                fields.remove("name");
            }
            let mut pod =
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tmpl["spec"]});
            crate::defaults::apply(resources::pods(), &mut pod, &shared.store);
            let created =
                crate::namespace_lifecycle::admit(&shared.store, resources::pods(), ns, "")
                    .and_then(|()| crate::pod_security::admit(&shared.store, ns, &pod))
                    .and_then(|()| crate::quota::admit(&shared.store, ns, &pod))
                    .and_then(|()| shared.store.create(resources::pods(), ns, pod));
            match created {
                Ok(created) => events::record(
                    &shared.store,
                    &rs,
                    "ReplicaSet",
                    "Normal",
                    "SuccessfulCreate",
                    &format!(
                        "Created pod: {}",
                        created["metadata"]["name"].as_str().unwrap_or("")
                    ),
                    "replicaset-controller",
                ),
                Err(e) => {
                    let message = format!("Error creating: {}", e.message);
                    events::record(
                        &shared.store,
                        &rs,
                        "ReplicaSet",
                        "Warning",
                        "FailedCreate",
                        &message,
                        "replicaset-controller",
                    );
                    failure = Some(e.message);
                    break;
                }
            }
        }
    } else if active.len() > want {
        let mut victims = active.clone();
        // Not ready first, then the newest.
        victims.sort_by(|a, b| {
            pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
                b["metadata"]["creationTimestamp"]
                    .as_str()
                    .cmp(&a["metadata"]["creationTimestamp"].as_str())
            })
        });
        for pod in victims.into_iter().take(active.len() - want) {
            let pname = pod["metadata"]["name"].as_str().unwrap_or("");
            if shared
                .store
                .delete(resources::pods(), ns, pname, &DeleteOptions::default())
                .is_ok()
            {
                events::record(
                    &shared.store,
                    &rs,
                    "ReplicaSet",
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pname}"),
                    "replicaset-controller",
                );
            }
        }
    }
    let all = owned_pods(shared, ns, &uid);
    let live: Vec<&Value> = all.iter().filter(|p| !is_deleting(p)).collect();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let ready = live.iter().filter(|p| pod_ready(p)).count();
    let available = live.iter().filter(|p| pod_available(p, min_ready)).count();
    let labeled = live.iter().filter(|p| selector.matches_object(p)).count();
    let generation = rs["metadata"]["generation"].clone();
    let _ = shared
        .store
        .modify(resources::replicasets(), ns, name, |replicaset| {
            let mut status = json!({
                "replicas": live.len(),
                "fullyLabeledReplicas": labeled,
                "observedGeneration": generation,
            });
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
            }
            if available > 0 {
                status["availableReplicas"] = json!(available);
            }
            if let Some(message) = &failure {
                status["conditions"] = json!([replica_failure(&replicaset["status"], message)]);
            }
            replicaset["status"] = status;
            Ok(())
        });
}

/// The `ReplicaFailure` condition for a pod that could not be created,
/// keeping its transition time while it stays.
fn replica_failure(status: &Value, message: &str) -> Value {
    let since = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(crate::store::now()));
    json!({
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": message,
        "lastTransitionTime": since,
    })
}
