//! Garbage collection through ownerReferences: dependents of a deleted
//! owner are deleted (background), foreground deletion waits for the
//! dependents before the owner goes, orphaning strips the references, and
//! objects whose owners no longer exist are collected on resync.

use serde_json::Value;

use crate::Shared;
use crate::resources::{self, ResourceType};
use crate::store::{DeleteOptions, Event, remove_finalizer};

fn delete_dependent(
    s: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    propagation: &str,
) {
    let opts = DeleteOptions {
        propagation: Some(propagation.into()),
        ..Default::default()
    };
    let _ = s.store.delete(rt, ns, name, &opts);
}

/// Whether any owner other than `gone_uid` still exists.
fn other_owner_exists(s: &Shared, ns: &str, obj: &Value, gone_uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| {
            let uid = r["uid"].as_str().unwrap_or("");
            uid != gone_uid && owner_exists(s, ns, r)
        })
}

fn owner_exists(s: &Shared, ns: &str, r: &Value) -> bool {
    let uid = r["uid"].as_str().unwrap_or("");
    match resources::by_kind(
        r["apiVersion"].as_str().unwrap_or(""),
        r["kind"].as_str().unwrap_or(""),
    ) {
        Some(rt) => s
            .store
            .uid_exists(rt, if rt.namespaced { ns } else { "" }, uid),
        // Owners of kinds this cluster does not serve are assumed to exist.
        None => true,
    }
}

pub fn on_deleted(s: &Shared, ev: &Event) {
    let uid = ev.obj["metadata"]["uid"].as_str().unwrap_or("");
    if uid.is_empty() {
        return;
    }
    for (rt, ns, name, dep) in s.store.dependents(uid) {
        if other_owner_exists(s, &ns, &dep, uid) {
            let _ = s.store.modify(rt, &ns, &name, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                Ok(())
            });
        } else {
            delete_dependent(s, rt, &ns, &name, "Background");
        }
    }
    // An owner waiting in foreground deletion may now be free to go.
    for r in ev.obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(rt) = resources::by_kind(
            r["apiVersion"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
        ) {
            let ns = if rt.namespaced { ev.namespace() } else { "" };
            if let Some(owner) = s.store.try_get(rt, ns, r["name"].as_str().unwrap_or("")) {
                on_deleting(s, rt.key(), &owner);
            }
        }
    }
}

/// An object being deleted with the foregroundDeletion or orphan finalizer.
pub fn on_deleting(s: &Shared, res: &str, obj: &Value) {
    let Some(rt) = resources::RESOURCES.iter().find(|r| r.key() == res) else {
        return;
    };
    let fins = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if fins.iter().any(|f| f == "orphan") {
        for (drt, dns, dname, _) in s.store.dependents(&uid) {
            let _ = s.store.modify(drt, &dns, &dname, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid.as_str());
                }
                Ok(())
            });
        }
        let _ = s.store.modify(rt, &ns, &name, |o| {
            remove_finalizer(o, "orphan");
            Ok(())
        });
    }
    if fins.iter().any(|f| f == "foregroundDeletion") {
        let deps = s.store.dependents(&uid);
        if deps.is_empty() {
            let _ = s.store.modify(rt, &ns, &name, |o| {
                remove_finalizer(o, "foregroundDeletion");
                Ok(())
            });
        } else {
            for (drt, dns, dname, dep) in deps {
                if !super::is_deleting(&dep) {
                    delete_dependent(s, drt, &dns, &dname, "Foreground");
                }
            }
        }
    }
}

/// Periodic pass: pending foreground/orphan deletions and dangling owners.
pub fn resync(s: &Shared) {
    for rt in resources::RESOURCES {
        if rt.plural == "events" {
            continue;
        }
        let (items, _) = s.store.list(rt, None);
        for o in &items {
            if super::is_deleting(o) {
                on_deleting(s, rt.key(), o);
                continue;
            }
            let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
            if !refs.iter().any(|r| owner_exists(s, ns, r)) {
                delete_dependent(
                    s,
                    rt,
                    ns,
                    o["metadata"]["name"].as_str().unwrap_or(""),
                    "Background",
                );
            }
        }
    }
}
