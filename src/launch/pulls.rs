//! Image pulls as the kubelet reports them — a `Pulling` event for a
//! container, then `Pulled` — so that a wait's progress line can say which
//! image a pod is pulling (`web: pulling python:3.12-slim`). Read from the
//! namespace's events where the user may watch them; where not, or once
//! the watch breaks, a wait simply shows no pulls.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::watcher;

use crate::cluster::connection::Connection;

/// The events of the namespace's pods, as they come (those already there
/// first); ends at the first error.
pub fn events(
    connection: &Connection,
    namespace: &str,
) -> Pin<Box<dyn Stream<Item = Event> + Send>> {
    let api: Api<Event> = Api::namespaced(connection.client.clone(), namespace);
    let config = watcher::Config::default().fields("involvedObject.kind=Pod");
    Box::pin(
        watcher(api, config)
            .take_while(|event| std::future::ready(event.is_ok()))
            .filter_map(|event| {
                std::future::ready(match event {
                    Ok(watcher::Event::Apply(event) | watcher::Event::InitApply(event)) => {
                        Some(event)
                    }
                    _ => None,
                })
            }),
    )
}

/// What the pull events say so far, for each pod's containers.
#[derive(Default)]
pub struct Pulls {
    /// (pod, container's field path) → the last word on its image: when,
    /// whether it was `Pulling`, and the image.
    last: BTreeMap<(String, String), (Option<Time>, bool, String)>,
}

impl Pulls {
    /// Takes in `event` if it is about the image of one of the pods
    /// `ours` accepts (by name); true if what is pulled changed.
    pub fn note(&mut self, event: &Event, ours: impl Fn(&str) -> bool) -> bool {
        let reason = event.reason.as_deref().unwrap_or("");
        let pulling = match reason {
            "Pulling" => true,
            "Pulled" => false,
            _ => return false,
        };
        let pod = event.involved_object.name.clone().unwrap_or_default();
        if !ours(&pod) {
            return false;
        }
        let container = event.involved_object.field_path.clone().unwrap_or_default();
        let image = event
            .message
            .as_deref()
            .and_then(|message| message.split('"').nth(1))
            .unwrap_or("")
            .to_string();
        let when = event
            .last_timestamp
            .clone()
            .or_else(|| event.first_timestamp.clone())
            .or_else(|| event.event_time.as_ref().map(|t| Time(t.0)));
        let key = (pod, container);
        // The later word wins, whatever order the events are listed in; in
        // the same second, `Pulled` (a pull that was quick).
        if let Some((before, was_pulling, _)) = self.last.get(&key)
            && (when.clone(), !pulling) < (before.clone(), !*was_pulling)
        {
            return false;
        }
        let before = self.pulling(&key.0).map(str::to_string);
        self.last.insert(key.clone(), (when, pulling, image));
        self.pulling(&key.0) != before.as_deref()
    }

    /// An image `pod` is pulling now, as far as its events say.
    pub fn pulling(&self, pod: &str) -> Option<&str> {
        self.last
            .iter()
            .find(|((name, _), (_, pulling, _))| name == pod && *pulling)
            .map(|(_, (_, _, image))| image.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn event(pod: &str, reason: &str, second: i64, message: &str) -> Event {
        Event {
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.to_string()),
                field_path: Some("spec.initContainers{unpack}".into()),
                ..ObjectReference::default()
            },
            last_timestamp: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + second).unwrap(),
            )),
            ..Event::default()
        }
    }

    #[test]
    fn a_pull_lasts_from_pulling_to_pulled_in_whatever_order_they_are_listed() {
        let pulling = event("web-1", "Pulling", 0, "Pulling image \"python:3.12-slim\"");
        let pulled = event(
            "web-1",
            "Pulled",
            4,
            "Successfully pulled image \"python:3.12-slim\" in 4s (4s including waiting). Image size: 1 bytes.",
        );
        let all = |_: &str| true;
        let mut pulls = Pulls::default();
        assert!(pulls.note(&pulling, all));
        assert_eq!(pulls.pulling("web-1"), Some("python:3.12-slim"));
        assert_eq!(pulls.pulling("web-2"), None);
        assert!(pulls.note(&pulled, all));
        assert_eq!(pulls.pulling("web-1"), None);

        // Listed the other way round, or both in one second: pulled.
        let mut pulls = Pulls::default();
        pulls.note(&pulled, all);
        assert!(!pulls.note(&pulling, all));
        assert_eq!(pulls.pulling("web-1"), None);
        let quick = event(
            "web-1",
            "Pulled",
            0,
            "Successfully pulled image \"x\" in 2ms",
        );
        let mut pulls = Pulls::default();
        pulls.note(&quick, all);
        pulls.note(&pulling, all);
        assert_eq!(pulls.pulling("web-1"), None);

        // Another dproc's pods, and other events, are not taken in.
        let mut pulls = Pulls::default();
        assert!(!pulls.note(&pulling, |pod| pod == "api-1"));
        let started = event("web-1", "Started", 1, "Started container unpack");
        assert!(!pulls.note(&started, all));
        assert_eq!(pulls.pulling("web-1"), None);
    }
}
