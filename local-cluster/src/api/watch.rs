//! Watch streams: events after a resourceVersion (or the current state as
//! synthetic ADDED events), label/field filtering with objects entering and
//! leaving the selection, bookmarks, timeouts, 410 Gone for expired
//! versions, and Table rows for `kubectl get --watch`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::message::{Body, Query, channel_body};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType};
use crate::table;

/// Interval between BOOKMARK events when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

struct Filter {
    rt: &'static ResourceType,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: Option<String>,
    first_table: bool,
    selective: bool,
    seen: HashSet<(String, String)>,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    fn render(&mut self, obj: &Value) -> Value {
        match &self.table {
            None => obj.clone(),
            Some(include) => {
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                let rendered = table::table(self.rt, &[obj], meta, include, self.first_table);
                self.first_table = false;
                rendered
            }
        }
    }

    /// The line to send for an event, if any.
    fn line(&mut self, ev: &Event) -> Option<Bytes> {
        if ev.res != self.rt.key() {
            return None;
        }
        if let Some(ns) = &self.ns
            && ev.namespace() != ns
        {
            return None;
        }
        let key = (ev.namespace().to_string(), ev.name().to_string());
        let now = self.matches(&ev.obj);
        let kind = if !self.selective {
            if !now {
                return None;
            }
            ev.kind
        } else {
            let was = self.seen.contains(&key);
            match (ev.kind, was, now) {
                // A deleted object that matched (its last state, or as
                // this watch saw it) is reported; the client may have
                // listed it before this watch began.
                (EventType::Deleted, was, now) => {
                    self.seen.remove(&key);
                    if !was && !now {
                        return None;
                    }
                    EventType::Deleted
                }
                (_, false, true) => {
                    self.seen.insert(key);
                    EventType::Added
                }
                (_, true, true) => EventType::Modified,
                (_, true, false) => {
                    self.seen.remove(&key);
                    EventType::Deleted
                }
                (_, false, false) => return None,
            }
        };
        let obj = self.render(&ev.obj);
        Some(encode(kind.as_str(), &obj))
    }
}

fn encode(kind: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    encode(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

pub fn serve(
    shared: Arc<Shared>,
    rt: &'static ResourceType,
    ns: Option<String>,
    query: &Query,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields =
        FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let rv = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {text}")))?,
        ),
    };
    let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let selective = !labels.is_empty() || query.get("fieldSelector").is_some_and(|f| !f.is_empty());
    let mut filter = Filter {
        rt,
        ns,
        labels,
        fields,
        table: table::wants_table(accept).then(|| {
            query
                .get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".into())
        }),
        first_table: true,
        selective,
        seen: HashSet::new(),
    };
    let (tx, body_rx) = mpsc::channel::<Bytes>(256);
    let started = match shared.store.watch(rt, if send_initial { None } else { rv }) {
        Ok(watching) => Ok(watching),
        Err(e) if e.code == 410 => Err(e),
        Err(e) => return Err(e),
    };
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let (initial, start_rv, mut rx) = match started {
            Ok(watching) => watching,
            Err(e) => {
                let _ = tx.send(encode("ERROR", &e.to_status())).await;
                return;
            }
        };
        if selective && rv.is_some() && !send_initial {
            // Objects matching now are assumed known to the client.
            let (items, _) = shared.store.list(filter.rt, filter.ns.as_deref());
            let matching: Vec<&Value> = items.iter().filter(|o| filter.matches(o)).collect();
            for object in matching {
                let meta = &object["metadata"];
                filter.seen.insert((
                    meta["namespace"].as_str().unwrap_or("").to_string(),
                    meta["name"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        for ev in &initial {
            if let Some(line) = filter.line(ev)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        if send_initial && tx.send(bookmark(filter.rt, start_rv, true)).await.is_err() {
            return;
        }
        let mut last_rv = start_rv;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(ev) => {
                        if ev.rv <= start_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(line) = filter.line(&ev)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let rv = shared.store.current_rv().max(last_rv);
                    if tx.send(bookmark(filter.rt, rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let mut response = Response::new(channel_body(body_rx));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
