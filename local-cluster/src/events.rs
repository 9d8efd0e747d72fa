//! Recording core/v1 Events for the notable steps (Scheduled, Started,
//! Killing, BackOff, ScalingReplicaSet, ...), aggregating repeats by count;
//! and their expiry, an hour after they last happened, as the API server's
//! `--event-ttl`.

use serde_json::{Value, json};

use crate::resources;
use crate::store::{Store, now, now_micro, parse_time};

/// How long an event is kept after it last happened (the API server's
/// default `--event-ttl`).
pub const TTL_SECONDS: i64 = 3600;

/// Nanoseconds since the epoch, never the same twice: an event's name is
/// its object's name and this in hex, as client-go names events, so the
/// events of an object list in the order they happened, even within one
/// second.
fn unique_nanos() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Records an event about `obj` (any stored object).
pub fn record(
    store: &Store,
    obj: &Value,
    kind: &str,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    record_field(store, obj, kind, type_, reason, message, component, None);
}

#[allow(clippy::too_many_arguments)]
pub fn record_field(
    store: &Store,
    obj: &Value,
    kind: &str,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
    field_path: Option<&str>,
) {
    let meta = &obj["metadata"];
    let ns = meta["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let name = meta["name"].as_str().unwrap_or("");
    // Nothing new in a namespace being terminated, events included.
    if crate::namespace_lifecycle::admit(store, resources::events(), ns, name).is_err() {
        return;
    }
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let mut involved = json!({
        "kind": kind,
        "namespace": ns,
        "name": name,
        "uid": meta["uid"],
        "apiVersion": api_version,
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    // Repeats of the same event bump the count instead of adding a new one.
    let (events, _) = store.list(resources::events(), Some(ns));
    let same = events.iter().find(|event| {
        event["involvedObject"]["uid"] == meta["uid"]
            && event["reason"] == reason
            && event["message"] == message
            && event["involvedObject"]["fieldPath"] == involved["fieldPath"]
    });
    if let Some(existing) = same {
        let ename = existing["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let _ = store.modify(resources::events(), ns, &ename, |stored| {
            stored["count"] = json!(stored["count"].as_i64().unwrap_or(1) + 1);
            stored["lastTimestamp"] = json!(now());
            Ok(())
        });
        return;
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", unique_nanos()), "namespace": ns},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": component, "host": crate::NODE_NAME},
        "firstTimestamp": now(),
        "lastTimestamp": now(),
        "eventTime": null,
        "count": 1,
        "type": type_,
        "reportingComponent": component,
        "reportingInstance": crate::NODE_NAME,
    });
    let _ = now_micro;
    let _ = store.create(resources::events(), ns, ev);
}

/// Removes the events that last happened more than [`TTL_SECONDS`] before
/// `now` (seconds since the epoch); how many.
pub fn expire(store: &Store, now: i64) -> usize {
    let (events, _) = store.list_shared(resources::events(), None);
    let mut removed = 0;
    for event in events {
        // The newest of its times: a repeat or a series moves it on.
        let last = [
            &event["lastTimestamp"],
            &event["eventTime"],
            &event["series"]["lastObservedTime"],
            &event["metadata"]["creationTimestamp"],
        ]
        .iter()
        .filter_map(|time| time.as_str().and_then(parse_time))
        .max();
        if last.is_some_and(|last| now - last > TTL_SECONDS) {
            let meta = &event["metadata"];
            let (ns, name) = (
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap_or(""),
            );
            if store.remove(resources::events(), ns, name).is_some() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_an_hour_after_it_last_happened() {
        let store = Store::new();
        store
            .create(
                resources::namespaces(),
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        record(
            &store,
            &pod,
            "Pod",
            "Normal",
            "Started",
            "Started container main",
            "kubelet",
        );
        record(
            &store,
            &pod,
            "Pod",
            "Normal",
            "Pulled",
            "Container image recorded",
            "kubelet",
        );
        let now = jiff::Timestamp::now().as_second();
        assert_eq!(expire(&store, now), 0);
        assert_eq!(expire(&store, now + TTL_SECONDS - 5), 0);
        // The second one happens again later: only the first expires.
        let (events, _) = store.list(resources::events(), Some("default"));
        let pulled = events
            .iter()
            .find(|e| e["reason"] == "Pulled")
            .and_then(|e| e["metadata"]["name"].as_str())
            .unwrap()
            .to_string();
        let later = jiff::Timestamp::from_second(now + 1800)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        store
            .modify(resources::events(), "default", &pulled, |event| {
                event["lastTimestamp"] = json!(later);
                Ok(())
            })
            .unwrap();
        assert_eq!(expire(&store, now + TTL_SECONDS + 5), 1);
        let (left, _) = store.list(resources::events(), Some("default"));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["reason"], "Pulled");
        assert_eq!(expire(&store, now + 1800 + TTL_SECONDS + 5), 1);
        assert!(store.list(resources::events(), None).0.is_empty());
    }
}
