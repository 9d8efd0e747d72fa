//! Deployment controller: one ReplicaSet per pod template (named by the
//! pod-template-hash), rolling updates within maxSurge/maxUnavailable,
//! Recreate, revision history, and the status and conditions that
//! `kubectl rollout status` and `kubectl wait` read.

use serde_json::{Value, json};

use super::{controller_of, is_deleting, owner_ref};
use crate::Shared;
use crate::events;
use crate::resources;
use crate::store::{DeleteOptions, now};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// FNV-1a of the template, encoded as Kubernetes does (SafeEncodeString).
pub fn template_hash(template: &Value) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in serde_json::to_string(template).unwrap_or_default().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// An intOrString (`1`, `"25%"`) against a total.
fn resolve(value: &Value, total: i64, round_up: bool) -> i64 {
    if let Some(number) = value.as_i64() {
        return number.max(0);
    }
    let Some(percent) = value
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|percent| percent.parse::<i64>().ok())
    else {
        return 0;
    };
    let scaled = percent * total;
    if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    }
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn status_count(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

fn scale(shared: &Shared, deployment: &Value, rs: &Value, to: i64) {
    let from = replicas(rs);
    if from == to {
        return;
    }
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or("");
    let name = rs["metadata"]["name"].as_str().unwrap_or("");
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    if shared
        .store
        .modify(resources::replicasets(), ns, name, |replicaset| {
            replicaset["spec"]["replicas"] = json!(to);
            replicaset["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(desired.to_string());
            Ok(())
        })
        .is_ok()
    {
        let dir = if to > from { "up" } else { "down" };
        events::record(
            &shared.store,
            deployment,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled {dir} replica set {name} from {from} to {to}"),
            "deployment-controller",
        );
    }
}

fn template_without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH);
    }
    template
}

pub fn reconcile(shared: &Shared, ns: &str, name: &str) {
    let Some(deployment) = shared.store.try_get(resources::deployments(), ns, name) else {
        return;
    };
    if is_deleting(&deployment) {
        return;
    }
    let uid = deployment["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let template = &deployment["spec"]["template"];
    let hash = template_hash(template);
    let (all_rs, _) = shared.store.list(resources::replicasets(), Some(ns));
    let mut owned: Vec<Value> = all_rs
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid) && !is_deleting(rs))
        .collect();
    owned.sort_by_key(revision);
    let max_rev = owned.iter().map(revision).max().unwrap_or(0);
    let new_idx = owned.iter().position(|rs| {
        template_without_hash(&rs["spec"]["template"]) == template_without_hash(template)
    });
    let paused = deployment["spec"]["paused"] == true;
    let recreate = deployment["spec"]["strategy"]["type"] == "Recreate";
    let mut new_rs = new_idx.map(|i| owned.remove(i));
    let old: Vec<Value> = owned;
    if new_rs.is_none() && !paused {
        let old_total: i64 = old.iter().map(replicas).sum();
        let initial = if recreate {
            0
        } else if old_total == 0 {
            desired
        } else {
            let surge = resolve(
                &deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                desired,
                true,
            );
            (desired + surge - old_total).clamp(0, desired)
        };
        let mut tmpl = template.clone();
        tmpl["metadata"]["labels"][HASH] = json!(hash);
        let mut selector = deployment["spec"]["selector"].clone();
        selector["matchLabels"][HASH] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels[HASH] = json!(hash);
        let rs_name = format!("{name}-{hash}");
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    REVISION: (max_rev + 1).to_string(),
                    "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                    "deployment.kubernetes.io/max-replicas": (desired + resolve(&deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"], desired, true)).to_string(),
                },
                "ownerReferences": [owner_ref(&deployment, "Deployment")],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": tmpl,
            },
        });
        crate::defaults::apply(resources::replicasets(), &mut rs, &shared.store);
        let created = crate::namespace_lifecycle::admit(
            &shared.store,
            resources::replicasets(),
            ns,
            &rs_name,
        )
        .and_then(|()| shared.store.create(resources::replicasets(), ns, rs));
        match created {
            Ok(created) => {
                if initial > 0 {
                    events::record(
                        &shared.store,
                        &deployment,
                        "Deployment",
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} from 0 to {initial}"),
                        "deployment-controller",
                    );
                }
                new_rs = Some(created);
            }
            Err(_) => return,
        }
    } else if let Some(rs) = &new_rs
        && revision(rs) < max_rev
        && !paused
    {
        // Rolled back to an older template: it becomes the newest revision.
        let rs_name = rs["metadata"]["name"].as_str().unwrap_or("").to_string();
        if let Ok(updated) =
            shared
                .store
                .modify(resources::replicasets(), ns, &rs_name, |replicaset| {
                    replicaset["metadata"]["annotations"][REVISION] =
                        json!((max_rev + 1).to_string());
                    Ok(())
                })
        {
            new_rs = Some(updated);
        }
    }
    let Some(new_rs) = new_rs else { return };
    if !paused {
        if recreate {
            let old_active: i64 = old
                .iter()
                .map(|rs| replicas(rs) + status_count(rs, "replicas"))
                .sum();
            for rs in &old {
                scale(shared, &deployment, rs, 0);
            }
            let old_pods: usize = old
                .iter()
                .map(|rs| {
                    super::replicaset::owned_pods(
                        shared,
                        ns,
                        rs["metadata"]["uid"].as_str().unwrap_or(""),
                    )
                    .len()
                })
                .sum();
            if old_active == 0 || old_pods == 0 {
                scale(shared, &deployment, &new_rs, desired);
            }
        } else {
            let surge = resolve(
                &deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                desired,
                true,
            );
            let mut unavailable = resolve(
                &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
                desired,
                false,
            );
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            let old_total: i64 = old.iter().map(replicas).sum();
            if old_total == 0 {
                scale(shared, &deployment, &new_rs, desired);
            } else {
                // Scale up the new replica set within the surge.
                let total = old_total + replicas(&new_rs);
                let room = desired + surge - total;
                if room > 0 && replicas(&new_rs) < desired {
                    scale(
                        shared,
                        &deployment,
                        &new_rs,
                        (replicas(&new_rs) + room).min(desired),
                    );
                }
                // Scale down old ones while keeping the minimum available.
                let available: i64 = old
                    .iter()
                    .chain(std::iter::once(&new_rs))
                    .map(|rs| status_count(rs, "availableReplicas"))
                    .sum();
                let mut can_remove = available - (desired - unavailable);
                for rs in &old {
                    let current = replicas(rs);
                    if current == 0 {
                        continue;
                    }
                    // Unhealthy old pods go first, without counting.
                    let unhealthy = (current - status_count(rs, "availableReplicas")).max(0);
                    let mut down = unhealthy.min(current);
                    let extra = (current - down).min(can_remove.max(0));
                    down += extra;
                    can_remove -= extra;
                    if down > 0 {
                        scale(shared, &deployment, rs, current - down);
                    }
                }
            }
        }
        // Old revisions beyond the history limit are removed.
        let limit = deployment["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0) as usize;
        let idle: Vec<&Value> = old
            .iter()
            .filter(|rs| replicas(rs) == 0 && status_count(rs, "replicas") == 0)
            .collect();
        if idle.len() > limit {
            for rs in &idle[..idle.len() - limit] {
                let _ = shared.store.delete(
                    resources::replicasets(),
                    ns,
                    rs["metadata"]["name"].as_str().unwrap_or(""),
                    &DeleteOptions {
                        propagation: Some("Background".into()),
                        ..Default::default()
                    },
                );
            }
        }
    }
    update_status(shared, &deployment, ns, name, &uid, desired);
}

fn update_status(
    shared: &Shared,
    deployment: &Value,
    ns: &str,
    name: &str,
    uid: &str,
    desired: i64,
) {
    let (all_rs, _) = shared.store.list(resources::replicasets(), Some(ns));
    let owned: Vec<Value> = all_rs
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid))
        .collect();
    let want = template_without_hash(&deployment["spec"]["template"]);
    let new_rs = owned
        .iter()
        .find(|rs| template_without_hash(&rs["spec"]["template"]) == want);
    let sum = |field: &str| -> i64 { owned.iter().map(|rs| status_count(rs, field)).sum() };
    let total = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let updated = new_rs.map(|rs| status_count(rs, "replicas")).unwrap_or(0);
    let unavailable_allowed = if deployment["spec"]["strategy"]["type"] == "Recreate" {
        0
    } else {
        resolve(
            &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            false,
        )
    };
    let new_name = new_rs
        .and_then(|rs| rs["metadata"]["name"].as_str())
        .unwrap_or("")
        .to_string();
    let complete = new_rs.is_some()
        && updated == desired
        && total == desired
        && available >= desired
        && new_rs.is_some_and(|rs| status_count(rs, "availableReplicas") >= desired);
    let generation = deployment["metadata"]["generation"].clone();
    let now_s = now();
    let _ = shared.store.modify(resources::deployments(), ns, name, |stored| {
        let old_conds = stored["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let cond = |type_: &str, ok: bool, reason: &str, msg: String| {
            let prev = old_conds.iter().find(|condition| condition["type"] == type_);
            let same_status = prev.is_some_and(|p| p["status"] == if ok { "True" } else { "False" });
            let same = same_status && prev.is_some_and(|p| p["reason"] == reason);
            json!({
                "type": type_,
                "status": if ok { "True" } else { "False" },
                "lastUpdateTime": if same { prev.map(|p| p["lastUpdateTime"].clone()).unwrap_or(json!(now_s)) } else { json!(now_s) },
                "lastTransitionTime": if same_status { prev.map(|p| p["lastTransitionTime"].clone()).unwrap_or(json!(now_s)) } else { json!(now_s) },
                "reason": reason,
                "message": msg,
            })
        };
        let avail_ok = available >= desired - unavailable_allowed;
        let available_c = if avail_ok {
            cond("Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.".into())
        } else {
            cond("Available", false, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into())
        };
        let progressing = if complete {
            cond("Progressing", true, "NewReplicaSetAvailable", format!("ReplicaSet \"{new_name}\" has successfully progressed."))
        } else {
            cond("Progressing", true, "ReplicaSetUpdated", format!("ReplicaSet \"{new_name}\" is progressing."))
        };
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [available_c, progressing],
        });
        let unavailable = (desired.max(total) - available).max(0);
        if unavailable > 0 {
            status["unavailableReplicas"] = json!(unavailable);
        }
        for field in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
            if status[field] == 0
                && let Some(fields) = status.as_object_mut()
            {
                fields.remove(field);
            }
        }
        if let Some(count) = stored["status"].get("collisionCount") {
            status["collisionCount"] = count.clone();
        }
        stored["status"] = status;
        Ok(())
    });
}
