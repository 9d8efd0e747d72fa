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
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_string(template).unwrap_or_default().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// An intOrString (`1`, `"25%"`) against a total.
fn resolve(v: &Value, total: i64, round_up: bool) -> i64 {
    if let Some(n) = v.as_i64() {
        return n.max(0);
    }
    let Some(p) = v
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return 0;
    };
    let x = p * total;
    if round_up { (x + 99) / 100 } else { x / 100 }
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

fn st(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

fn scale(s: &Shared, d: &Value, rs: &Value, to: i64) {
    let from = replicas(rs);
    if from == to {
        return;
    }
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or("");
    let name = rs["metadata"]["name"].as_str().unwrap_or("");
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    if s.store
        .modify(resources::replicasets(), ns, name, |o| {
            o["spec"]["replicas"] = json!(to);
            o["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(desired.to_string());
            Ok(())
        })
        .is_ok()
    {
        let dir = if to > from { "up" } else { "down" };
        events::record(
            &s.store,
            d,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled {dir} replica set {name} from {from} to {to}"),
            "deployment-controller",
        );
    }
}

fn template_without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(HASH);
    }
    t
}

pub fn reconcile(s: &Shared, ns: &str, name: &str) {
    let Some(d) = s.store.try_get(resources::deployments(), ns, name) else {
        return;
    };
    if is_deleting(&d) {
        return;
    }
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let (all_rs, _) = s.store.list(resources::replicasets(), Some(ns));
    let mut owned: Vec<Value> = all_rs
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid) && !is_deleting(rs))
        .collect();
    owned.sort_by_key(revision);
    let max_rev = owned.iter().map(revision).max().unwrap_or(0);
    let new_idx = owned.iter().position(|rs| {
        template_without_hash(&rs["spec"]["template"]) == template_without_hash(template)
    });
    let paused = d["spec"]["paused"] == true;
    let recreate = d["spec"]["strategy"]["type"] == "Recreate";
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
                &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                desired,
                true,
            );
            (desired + surge - old_total).clamp(0, desired)
        };
        let mut tmpl = template.clone();
        tmpl["metadata"]["labels"][HASH] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
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
                    "deployment.kubernetes.io/max-replicas": (desired + resolve(&d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], desired, true)).to_string(),
                },
                "ownerReferences": [owner_ref(&d, "Deployment")],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": tmpl,
            },
        });
        crate::defaults::apply(resources::replicasets(), &mut rs, &s.store);
        match s.store.create(resources::replicasets(), ns, rs) {
            Ok(created) => {
                if initial > 0 {
                    events::record(
                        &s.store,
                        &d,
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
        if let Ok(o) = s.store.modify(resources::replicasets(), ns, &rs_name, |o| {
            o["metadata"]["annotations"][REVISION] = json!((max_rev + 1).to_string());
            Ok(())
        }) {
            new_rs = Some(o);
        }
    }
    let Some(new_rs) = new_rs else { return };
    if !paused {
        if recreate {
            let old_active: i64 = old.iter().map(|rs| replicas(rs) + st(rs, "replicas")).sum();
            for rs in &old {
                scale(s, &d, rs, 0);
            }
            let old_pods: usize = old
                .iter()
                .map(|rs| {
                    super::replicaset::owned_pods(
                        s,
                        ns,
                        rs["metadata"]["uid"].as_str().unwrap_or(""),
                    )
                    .len()
                })
                .sum();
            if old_active == 0 || old_pods == 0 {
                scale(s, &d, &new_rs, desired);
            }
        } else {
            let surge = resolve(
                &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                desired,
                true,
            );
            let mut unavailable = resolve(
                &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
                desired,
                false,
            );
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            let old_total: i64 = old.iter().map(replicas).sum();
            if old_total == 0 {
                scale(s, &d, &new_rs, desired);
            } else {
                // Scale up the new replica set within the surge.
                let total = old_total + replicas(&new_rs);
                let room = desired + surge - total;
                if room > 0 && replicas(&new_rs) < desired {
                    scale(s, &d, &new_rs, (replicas(&new_rs) + room).min(desired));
                }
                // Scale down old ones while keeping the minimum available.
                let available: i64 = old
                    .iter()
                    .chain(std::iter::once(&new_rs))
                    .map(|rs| st(rs, "availableReplicas"))
                    .sum();
                let mut can_remove = available - (desired - unavailable);
                for rs in &old {
                    let r = replicas(rs);
                    if r == 0 {
                        continue;
                    }
                    // Unhealthy old pods go first, without counting.
                    let unhealthy = (r - st(rs, "availableReplicas")).max(0);
                    let mut down = unhealthy.min(r);
                    let extra = (r - down).min(can_remove.max(0));
                    down += extra;
                    can_remove -= extra;
                    if down > 0 {
                        scale(s, &d, rs, r - down);
                    }
                }
            }
        }
        // Old revisions beyond the history limit are removed.
        let limit = d["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0) as usize;
        let idle: Vec<&Value> = old
            .iter()
            .filter(|rs| replicas(rs) == 0 && st(rs, "replicas") == 0)
            .collect();
        if idle.len() > limit {
            for rs in &idle[..idle.len() - limit] {
                let _ = s.store.delete(
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
    update_status(s, &d, ns, name, &uid, desired);
}

fn update_status(s: &Shared, d: &Value, ns: &str, name: &str, uid: &str, desired: i64) {
    let (all_rs, _) = s.store.list(resources::replicasets(), Some(ns));
    let owned: Vec<Value> = all_rs
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid))
        .collect();
    let want = template_without_hash(&d["spec"]["template"]);
    let new_rs = owned
        .iter()
        .find(|rs| template_without_hash(&rs["spec"]["template"]) == want);
    let sum = |f: &str| -> i64 { owned.iter().map(|rs| st(rs, f)).sum() };
    let total = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let updated = new_rs.map(|rs| st(rs, "replicas")).unwrap_or(0);
    let unavailable_allowed = if d["spec"]["strategy"]["type"] == "Recreate" {
        0
    } else {
        resolve(
            &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
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
        && new_rs.is_some_and(|rs| st(rs, "availableReplicas") >= desired);
    let generation = d["metadata"]["generation"].clone();
    let now_s = now();
    let _ = s.store.modify(resources::deployments(), ns, name, |o| {
        let old_conds = o["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let cond = |t: &str, ok: bool, reason: &str, msg: String| {
            let prev = old_conds.iter().find(|c| c["type"] == t);
            let same_status = prev.is_some_and(|p| p["status"] == if ok { "True" } else { "False" });
            let same = same_status && prev.is_some_and(|p| p["reason"] == reason);
            json!({
                "type": t,
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
        let mut st = json!({
            "observedGeneration": generation,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [available_c, progressing],
        });
        let unavailable = (desired.max(total) - available).max(0);
        if unavailable > 0 {
            st["unavailableReplicas"] = json!(unavailable);
        }
        for f in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
            if st[f] == 0
                && let Some(m) = st.as_object_mut()
            {
                m.remove(f);
            }
        }
        if let Some(c) = o["status"].get("collisionCount") {
            st["collisionCount"] = c.clone();
        }
        o["status"] = st;
        Ok(())
    });
}
