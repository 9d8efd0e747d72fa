//! Controllers: the loops that make the cluster converge. One manager task
//! watches the store, marks affected objects dirty and reconciles them,
//! with a periodic resync for time-based conditions.

pub mod deployment;
pub mod endpoints;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod replicaset;
pub mod root_ca;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::Shared;
use crate::resources;
use crate::store::{Event, EventType};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Deployment(String, String),
    ReplicaSet(String, String),
    Job(String, String),
    Endpoints(String),
    /// The namespace's `kube-root-ca.crt`.
    RootCa(String),
}

/// The controller owner reference of an object, as (kind, name).
pub fn controller_of(obj: &Value) -> Option<(String, String, String)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|reference| reference["controller"] == true)
        .map(|reference| {
            (
                reference["kind"].as_str().unwrap_or("").to_string(),
                reference["name"].as_str().unwrap_or("").to_string(),
                reference["uid"].as_str().unwrap_or("").to_string(),
            )
        })
}

pub fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn classify(ev: &Event, work: &mut BTreeSet<Work>) {
    let ns = ev.namespace().to_string();
    let name = ev.name().to_string();
    match ev.res {
        "deployments.apps" => {
            work.insert(Work::Deployment(ns, name));
        }
        "replicasets.apps" => {
            if let Some((kind, owner, _)) = controller_of(&ev.obj)
                && kind == "Deployment"
            {
                work.insert(Work::Deployment(ns.clone(), owner));
            }
            work.insert(Work::ReplicaSet(ns, name));
        }
        "jobs.batch" => {
            work.insert(Work::Job(ns, name));
        }
        "pods" => {
            match controller_of(&ev.obj) {
                Some((kind, owner, _)) if kind == "ReplicaSet" => {
                    work.insert(Work::ReplicaSet(ns.clone(), owner));
                }
                Some((kind, owner, _)) if kind == "Job" => {
                    work.insert(Work::Job(ns.clone(), owner));
                }
                _ => {}
            }
            work.insert(Work::Endpoints(ns));
        }
        "services" => {
            work.insert(Work::Endpoints(ns));
        }
        "namespaces" => {
            work.insert(Work::RootCa(name));
        }
        "configmaps" if name == root_ca::CONFIG_MAP => {
            work.insert(Work::RootCa(ns));
        }
        _ => {}
    }
}

/// Gives freed heap back to the system (lists and watches allocate in
/// bursts; without this the resident size keeps their peak).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub async fn run(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_expiry = std::time::Instant::now();
    crate::events::expire(&shared.store, jiff::Timestamp::now().as_second());
    loop {
        let mut work = BTreeSet::new();
        let mut events: Vec<Arc<Event>> = Vec::new();
        let mut resync = false;
        tokio::select! {
            received = rx.recv() => match received {
                Ok(ev) => events.push(ev),
                Err(broadcast::error::RecvError::Lagged(_)) => resync = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => resync = true,
        }
        // Batch whatever else is queued.
        loop {
            match rx.try_recv() {
                Ok(ev) => events.push(ev),
                Err(broadcast::error::TryRecvError::Lagged(_)) => resync = true,
                Err(_) => break,
            }
        }
        for ev in &events {
            classify(ev, &mut work);
            if ev.kind == EventType::Deleted {
                gc::on_deleted(&shared, ev);
                if ev.res == "services" {
                    let _ = shared
                        .store
                        .remove(resources::endpoints(), ev.namespace(), ev.name());
                }
            } else if is_deleting(&ev.obj) {
                gc::on_deleting(&shared, ev.res, &ev.obj);
                if ev.res == "namespaces" {
                    namespace::reconcile(&shared, ev.name());
                }
            }
        }
        if resync {
            for rt in [
                resources::deployments(),
                resources::replicasets(),
                resources::jobs(),
            ] {
                let (items, _) = shared.store.list(rt, None);
                for object in items {
                    let ns = object["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let name = object["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    work.insert(match rt.plural {
                        "deployments" => Work::Deployment(ns, name),
                        "jobs" => Work::Job(ns, name),
                        _ => Work::ReplicaSet(ns, name),
                    });
                }
            }
            gc::resync(&shared);
            namespace::resync(&shared);
            root_ca::resync(&shared);
            // Events an hour old go, looked for once a minute.
            if last_expiry.elapsed() >= Duration::from_secs(60) {
                last_expiry = std::time::Instant::now();
                crate::events::expire(&shared.store, jiff::Timestamp::now().as_second());
            }
            release_memory();
        }
        // Replica sets first, so deployments see fresh status.
        for item in &work {
            if let Work::ReplicaSet(ns, name) = item {
                replicaset::reconcile(&shared, ns, name);
            }
        }
        for item in &work {
            match item {
                Work::Deployment(ns, name) => deployment::reconcile(&shared, ns, name),
                Work::Job(ns, name) => job::reconcile(&shared, ns, name),
                Work::Endpoints(ns) => endpoints::reconcile(&shared, ns),
                Work::RootCa(ns) => root_ca::reconcile(&shared, ns),
                Work::ReplicaSet(..) => {}
            }
        }
    }
}
