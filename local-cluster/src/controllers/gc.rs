//! Garbage collection through ownerReferences: dependents of a deleted
//! owner are deleted (background), foreground deletion waits for the
//! dependents before the owner goes, orphaning strips the references, and
//! objects whose owners no longer exist are collected on resync.

use serde_json::Value;

use crate::Shared;
use crate::resources::{self, ResourceType};
use crate::store::{DeleteOptions, Event, remove_finalizer};

fn delete_dependent(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    propagation: &str,
) {
    let opts = DeleteOptions {
        propagation: Some(propagation.into()),
        ..Default::default()
    };
    let _ = shared.store.delete(rt, ns, name, &opts);
}

/// Whether any owner other than `gone_uid` still exists.
fn other_owner_exists(shared: &Shared, ns: &str, obj: &Value, gone_uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|reference| {
            let uid = reference["uid"].as_str().unwrap_or("");
            uid != gone_uid && owner_exists(shared, ns, reference)
        })
}

fn owner_exists(shared: &Shared, ns: &str, reference: &Value) -> bool {
    let uid = reference["uid"].as_str().unwrap_or("");
    match resources::by_kind(
        reference["apiVersion"].as_str().unwrap_or(""),
        reference["kind"].as_str().unwrap_or(""),
    ) {
        Some(rt) => shared
            .store
            .uid_exists(rt, if rt.namespaced { ns } else { "" }, uid),
        // Owners of kinds this cluster does not serve are assumed to exist.
        None => true,
    }
}

pub fn on_deleted(shared: &Shared, ev: &Event) {
    let uid = ev.obj["metadata"]["uid"].as_str().unwrap_or("");
    if uid.is_empty() {
        return;
    }
    for (rt, ns, name, dep) in shared.store.dependents(uid) {
        if other_owner_exists(shared, &ns, &dep, uid) {
            let _ = shared.store.modify(rt, &ns, &name, |dependent| {
                if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                Ok(())
            });
        } else {
            delete_dependent(shared, rt, &ns, &name, "Background");
        }
    }
    // An owner waiting in foreground deletion may now be free to go.
    for reference in ev.obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(rt) = resources::by_kind(
            reference["apiVersion"].as_str().unwrap_or(""),
            reference["kind"].as_str().unwrap_or(""),
        ) {
            let ns = if rt.namespaced { ev.namespace() } else { "" };
            if let Some(owner) =
                shared
                    .store
                    .try_get(rt, ns, reference["name"].as_str().unwrap_or(""))
            {
                on_deleting(shared, rt.key(), &owner);
            }
        }
    }
}

/// An object being deleted with the foregroundDeletion or orphan finalizer.
pub fn on_deleting(shared: &Shared, res: &str, obj: &Value) {
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
        for (drt, dns, dname, _) in shared.store.dependents(&uid) {
            let _ = shared.store.modify(drt, &dns, &dname, |dependent| {
                if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid.as_str());
                }
                Ok(())
            });
        }
        let _ = shared.store.modify(rt, &ns, &name, |object| {
            remove_finalizer(object, "orphan");
            Ok(())
        });
    }
    if fins.iter().any(|f| f == "foregroundDeletion") {
        let deps = shared.store.dependents(&uid);
        if deps.is_empty() {
            let _ = shared.store.modify(rt, &ns, &name, |object| {
                remove_finalizer(object, "foregroundDeletion");
                Ok(())
            });
        } else {
            for (drt, dns, dname, dep) in deps {
                if !super::is_deleting(&dep) {
                    delete_dependent(shared, drt, &dns, &dname, "Foreground");
                }
            }
        }
    }
}

/// Periodic pass: pending foreground/orphan deletions and dangling owners.
pub fn resync(shared: &Shared) {
    for rt in resources::RESOURCES {
        if rt.plural == "events" {
            continue;
        }
        let (items, _) = shared.store.list(rt, None);
        for object in &items {
            if super::is_deleting(object) {
                on_deleting(shared, rt.key(), object);
                continue;
            }
            let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
            if !refs.iter().any(|r| owner_exists(shared, ns, r)) {
                delete_dependent(
                    shared,
                    rt,
                    ns,
                    object["metadata"]["name"].as_str().unwrap_or(""),
                    "Background",
                );
            }
        }
    }
}
