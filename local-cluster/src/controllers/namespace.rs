//! The namespace controller: it deletes everything in a namespace being
//! deleted, reports what remains in its conditions as the real controller
//! does, and once it is empty removes the `kubernetes` finalizer, which
//! lets the namespace go.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Shared;
use crate::resources;
use crate::store::{DeleteOptions, now};

/// The condition types the namespace controller keeps, with the reason and
/// message of each when nothing is wrong.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The namespace's conditions for what remains in it (resource →
/// count, finalizer → count), keeping the transition time of those whose
/// status did not change.
fn conditions(
    old: &Value,
    remaining: &BTreeMap<String, usize>,
    finalizers: &BTreeMap<String, usize>,
) -> Value {
    let now = now();
    let list: Vec<Value> = CONDITIONS
        .iter()
        .map(|(type_, ok_reason, ok_message)| {
            let (status, reason, message) = match *type_ {
                "NamespaceContentRemaining" if !remaining.is_empty() => (
                    "True",
                    "SomeResourcesRemain".to_string(),
                    format!(
                        "Some resources are remaining: {}",
                        remaining
                            .iter()
                            .map(|(what, count)| format!("{what} has {count} resource instances"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                "NamespaceFinalizersRemaining" if !finalizers.is_empty() => (
                    "True",
                    "SomeFinalizersRemain".to_string(),
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        finalizers
                            .iter()
                            .map(|(what, count)| format!("{what} in {count} resource instances"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                _ => ("False", ok_reason.to_string(), ok_message.to_string()),
            };
            let since = old
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == *type_ && c["status"] == status)
                .map_or_else(|| json!(now), |c| c["lastTransitionTime"].clone());
            json!({"type": type_, "status": status, "lastTransitionTime": since,
                   "reason": reason, "message": message})
        })
        .collect();
    json!(list)
}

pub fn reconcile(shared: &Shared, ns: &str) {
    let Some(obj) = shared.store.try_get(resources::namespaces(), "", ns) else {
        return;
    };
    if !super::is_deleting(&obj) {
        return;
    }
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        ..DeleteOptions::default()
    };
    let mut remaining = BTreeMap::new();
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    let empty = shared.store.count_in_namespace(ns) == 0;
    for rt in resources::RESOURCES
        .iter()
        .filter(|r| r.namespaced && !empty)
    {
        for name in shared.store.names_in(rt, ns) {
            let _ = shared.store.delete(rt, ns, &name, &background);
        }
        let (left, _) = shared.store.list(rt, Some(ns));
        if !left.is_empty() {
            remaining.insert(format!("{}.{}", rt.plural, rt.group), left.len());
        }
        for object in &left {
            for finalizer in object["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(finalizer) = finalizer.as_str() {
                    *finalizers.entry(finalizer.to_string()).or_default() += 1;
                }
            }
        }
    }
    let _ = shared
        .store
        .modify(resources::namespaces(), "", ns, |namespace| {
            namespace["status"]["conditions"] =
                conditions(&namespace["status"]["conditions"], &remaining, &finalizers);
            if remaining.is_empty()
                && let Some(list) = namespace["spec"]["finalizers"].as_array_mut()
            {
                list.retain(|f| f != "kubernetes");
            }
            Ok(())
        });
    // Gone once no spec finalizer is left (also when a client finalized
    // it through `finalize` before its content was gone).
    if shared
        .store
        .try_get(resources::namespaces(), "", ns)
        .is_some_and(|namespace| {
            namespace["spec"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
        })
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_remains_as_the_namespace_controller_does() {
        let remaining = BTreeMap::from([("configmaps.".to_string(), 2)]);
        let finalizers = BTreeMap::from([("example.com/hold".to_string(), 1)]);
        let list = conditions(&Value::Null, &remaining, &finalizers);
        assert_eq!(
            list[3]["message"],
            "Some resources are remaining: configmaps. has 2 resource instances"
        );
        assert_eq!(list[3]["reason"], "SomeResourcesRemain");
        assert_eq!(
            list[4]["message"],
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
        assert_eq!(list[0]["status"], "False");
        // A condition whose status stays keeps its transition time.
        let mut old = list.clone();
        old[0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        let again = conditions(&old, &remaining, &finalizers);
        assert_eq!(again[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
