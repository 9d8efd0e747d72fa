//! Namespace controller: a namespace being deleted has all its contents
//! deleted; once empty, the namespace itself is removed.

use serde_json::json;

use crate::Shared;
use crate::resources;
use crate::store::DeleteOptions;

pub fn reconcile(shared: &Shared, ns: &str) {
    let Some(obj) = shared.store.try_get(resources::namespaces(), "", ns) else {
        return;
    };
    if !super::is_deleting(&obj) {
        return;
    }
    for rt in resources::RESOURCES.iter().filter(|r| r.namespaced) {
        for name in shared.store.names_in(rt, ns) {
            let _ = shared
                .store
                .delete(rt, ns, &name, &DeleteOptions::default());
        }
    }
    if shared.store.count_in_namespace(ns) == 0 {
        let _ = shared
            .store
            .modify(resources::namespaces(), "", ns, |namespace| {
                namespace["spec"]["finalizers"] = json!([]);
                Ok(())
            });
        shared.store.remove(resources::namespaces(), "", ns);
    }
}

pub fn resync(shared: &Shared) {
    let (items, _) = shared.store.list(resources::namespaces(), None);
    for namespace in items
        .iter()
        .filter(|namespace| super::is_deleting(namespace))
    {
        reconcile(shared, namespace["metadata"]["name"].as_str().unwrap_or(""));
    }
}
