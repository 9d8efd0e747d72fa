//! Namespace controller: a namespace being deleted has all its contents
//! deleted; once empty, the namespace itself is removed.

use serde_json::json;

use crate::Shared;
use crate::resources;
use crate::store::DeleteOptions;

pub fn reconcile(s: &Shared, ns: &str) {
    let Some(obj) = s.store.try_get(resources::namespaces(), "", ns) else {
        return;
    };
    if !super::is_deleting(&obj) {
        return;
    }
    for rt in resources::RESOURCES.iter().filter(|r| r.namespaced) {
        for name in s.store.names_in(rt, ns) {
            let _ = s.store.delete(rt, ns, &name, &DeleteOptions::default());
        }
    }
    if s.store.count_in_namespace(ns) == 0 {
        let _ = s.store.modify(resources::namespaces(), "", ns, |o| {
            o["spec"]["finalizers"] = json!([]);
            Ok(())
        });
        s.store.remove(resources::namespaces(), "", ns);
    }
}

pub fn resync(s: &Shared) {
    let (items, _) = s.store.list(resources::namespaces(), None);
    for n in items.iter().filter(|n| super::is_deleting(n)) {
        reconcile(s, n["metadata"]["name"].as_str().unwrap_or(""));
    }
}
