//! The object store: every API object lives here as a JSON value (so fields
//! the local cluster does not know survive round trips), with resourceVersion,
//! uid, creationTimestamp, generation, finalizers and the watch history.
//! With a state directory every change is also written to the database on
//! disk (see [`crate::database`]) before it is applied here and answered;
//! the maps here stay the read path.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::database::{Database, Loaded};
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceType};

/// How many past events of each resource type a watch can resume from
/// (the API server's watch cache keeps a window per resource too).
const HISTORY: usize = 256;

/// How many events a watcher may fall behind before its watch ends (it
/// resumes from its last resourceVersion, as clients do).
const BACKLOG: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub res: &'static str,
    pub kind: EventType,
    pub obj: Arc<Value>,
}

impl Event {
    pub fn namespace(&self) -> &str {
        self.obj["metadata"]["namespace"].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.obj["metadata"]["name"].as_str().unwrap_or("")
    }
}

type Key = (String, String);

struct Inner {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<Key, Arc<Value>>>,
    /// The recent events of each resource type.
    history: HashMap<&'static str, History>,
    history_len: usize,
    /// The database every change is written to first, when there is one.
    disk: Option<Database>,
    /// Set once the cluster is stopping: changes are refused, so that what
    /// is stored is what was there when it was asked to stop (its pods
    /// come back on the next start, as after `kill -9`).
    closed: bool,
    /// Watches from before this version get 410 Gone: the events before a
    /// restart are not kept (0 on a new cluster).
    floor: u64,
}

/// The recent events of one resource type.
#[derive(Default)]
struct History {
    events: VecDeque<Arc<Event>>,
    /// The version of the last event let go: a watch from before it gets
    /// 410 Gone (0 while none has been).
    dropped: u64,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Services get addresses in the cluster's Service range (10.96.0.0/12)
    /// rather than on this machine's loopback (pods without a network of
    /// their own).
    service_range: std::sync::atomic::AtomicBool,
}

/// The current time as the API formats it.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The current time with microseconds (MicroTime fields).
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// Parses an RFC 3339 time into seconds since the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

pub fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A random name suffix as the real server makes it for generateName.
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

fn has_generation(rt: &ResourceType) -> bool {
    matches!(rt.plural, "deployments" | "replicasets" | "jobs")
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Self::with_history(HISTORY)
    }

    /// Services get addresses in the cluster's Service range from now on.
    pub fn use_service_range(&self) {
        self.service_range
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether Services get addresses in the cluster's Service range.
    pub fn uses_service_range(&self) -> bool {
        self.service_range
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A store that can replay the last `history_len` events of each
    /// resource type to watches.
    pub fn with_history(history_len: usize) -> Store {
        let (tx, _) = broadcast::channel(BACKLOG);
        Store {
            service_range: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(Inner {
                rv: 1,
                objects: HashMap::new(),
                history: HashMap::new(),
                history_len,
                disk: None,
                closed: false,
                floor: 0,
            }),
            tx,
        }
    }

    /// A store holding what `loaded` read from `disk`, writing every
    /// change there first. The resourceVersions continue from the last one
    /// given out; watches from before it get 410 Gone.
    pub fn restore(disk: Database, loaded: Loaded) -> Store {
        let store = Store::new();
        {
            let mut inner = store.lock();
            inner.rv = loaded.rv.max(1);
            inner.floor = if loaded.fresh { 0 } else { inner.rv };
            for (rt, ns, name, object) in loaded.objects {
                inner
                    .objects
                    .entry(rt.key())
                    .or_default()
                    .insert((ns, name), Arc::new(object));
            }
            inner.disk = Some(disk);
        }
        store
    }

    /// Refuses every change from now on (the cluster is stopping).
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Writes a change to the database (the object's new version, or None
    /// when it is removed) before it is applied in memory.
    fn write_through(
        inner: &mut Inner,
        rt: &ResourceType,
        key: &Key,
        object: Option<&Value>,
    ) -> ApiResult<()> {
        if inner.closed {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                "the local cluster is stopping; nothing was changed",
            ));
        }
        let rv = inner.rv;
        match inner.disk.as_mut() {
            None => Ok(()),
            Some(disk) => disk
                .write(rt.key(), &key.0, &key.1, object, rv)
                .map_err(|e| ApiError::internal(e.to_string())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written object
        // (every mutation is a single insert), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    fn emit(&self, inner: &mut Inner, res: &'static str, kind: EventType, obj: Arc<Value>) {
        let ev = Arc::new(Event {
            rv: inner.rv,
            res,
            kind,
            obj,
        });
        let limit = inner.history_len;
        let history = inner.history.entry(res).or_default();
        history.events.push_back(ev.clone());
        while history.events.len() > limit {
            if let Some(old) = history.events.pop_front() {
                history.dropped = old.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Stores the current version of an object and tells watchers.
    fn put(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: Key,
        obj: Value,
        kind: EventType,
    ) -> ApiResult<Value> {
        Self::write_through(inner, rt, &key, Some(&obj))?;
        let shared = Arc::new(obj);
        inner
            .objects
            .entry(rt.key())
            .or_default()
            .insert(key, shared.clone());
        let out = Value::clone(&shared);
        self.emit(inner, rt.key(), kind, shared);
        Ok(out)
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let inner = self.lock();
        inner
            .objects
            .get(rt.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .map(|v| Value::clone(v))
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    pub fn try_get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.get(rt, ns, name).ok()
    }

    /// All objects of a type (in one namespace, or all), sorted by namespace
    /// and name, with the list's resourceVersion.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = match inner.objects.get(rt.key()) {
            None => Vec::new(),
            Some(objects) => match ns {
                Some(ns) => objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| Value::clone(v))
                    .collect(),
                None => objects.values().map(|v| Value::clone(v)).collect(),
            },
        };
        (items, inner.rv)
    }

    /// Like [`Store::list`] without copying the objects.
    pub fn list_shared(&self, rt: &ResourceType, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.objects.get(rt.key()) {
            None => Vec::new(),
            Some(objects) => match ns {
                Some(ns) => objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
                None => objects.values().cloned().collect(),
            },
        };
        (items, inner.rv)
    }

    /// Objects of every namespaced type in one namespace (for owner lookups).
    pub fn count_in_namespace(&self, ns: &str) -> usize {
        let inner = self.lock();
        inner
            .objects
            .values()
            .map(|objects| {
                objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .count()
            })
            .sum()
    }

    pub fn create(&self, rt: &'static ResourceType, ns: &str, mut obj: Value) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let mut inner = self.lock();
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let map = inner.objects.entry(rt.key()).or_default();
        if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            // As the API server: the prefix cut to 58 characters, so that
            // prefix and suffix make a name of at most 63.
            let prefix: String = prefix.chars().take(58).collect();
            loop {
                name = format!("{prefix}{}", random_suffix(5));
                if !map.contains_key(&(ns.to_string(), name.clone())) {
                    break;
                }
            }
        }
        let key = (ns.to_string(), name.clone());
        if map.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.qualified(), &name));
        }
        meta.insert("name".into(), json!(name));
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        // A uid the API path gave already (a Job's selector is made from
        // it) is kept.
        if meta
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("selfLink");
        if has_generation(rt) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        obj["kind"] = json!(rt.kind);
        obj["apiVersion"] = json!(rt.api_version());
        self.put(&mut inner, rt, key, obj, EventType::Added)
    }

    /// Replaces an object (PUT). `subresource` is `Some("status")` for the
    /// status endpoint, which changes only the status.
    pub fn update(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        mut new: Value,
        subresource: Option<&str>,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let Some(old) = inner
            .objects
            .get(rt.key())
            .and_then(|m| m.get(&key))
            .map(|v| Value::clone(v))
        else {
            return Err(ApiError::not_found(&rt.qualified(), name));
        };
        let given_rv = meta_str(&new, "resourceVersion");
        if !given_rv.is_empty() && given_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(&rt.qualified(), name));
        }
        let given_uid = meta_str(&new, "uid");
        if !given_uid.is_empty() && given_uid != meta_str(&old, "uid") {
            return Err(ApiError::conflict(&rt.qualified(), name));
        }
        if subresource == Some("status") {
            let mut merged = old.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(json!({}));
            new = merged;
        } else {
            if !new["metadata"].is_object() {
                new["metadata"] = json!({});
            }
            if rt.has_status {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(fields) = new.as_object_mut() {
                            fields.remove("status");
                        }
                    }
                }
            }
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match old["metadata"].get(field) {
                    Some(value) => new["metadata"][field] = value.clone(),
                    None => {
                        if let Some(meta) = new["metadata"].as_object_mut() {
                            meta.remove(field);
                        }
                    }
                }
            }
            if has_generation(rt) && new.get("spec") != old.get("spec") {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                new["metadata"]["generation"] = json!(generation);
            }
            new["kind"] = json!(rt.kind);
            new["apiVersion"] = json!(rt.api_version());
        }
        self.commit(&mut inner, rt, key, old, new)
    }

    /// Applies a change computed from the current object (controllers and
    /// patches). Returns the stored object; no-op changes keep the version.
    pub fn modify<F>(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        change: F,
    ) -> ApiResult<Value>
    where
        F: FnOnce(&mut Value) -> ApiResult<()>,
    {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let Some(old) = inner
            .objects
            .get(rt.key())
            .and_then(|m| m.get(&key))
            .map(|v| Value::clone(v))
        else {
            return Err(ApiError::not_found(&rt.qualified(), name));
        };
        let mut new = old.clone();
        change(&mut new)?;
        if !new["metadata"].is_object() {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        for field in ["uid", "creationTimestamp", "namespace", "name"] {
            match old["metadata"].get(field) {
                Some(value) => new["metadata"][field] = value.clone(),
                None => {
                    if let Some(meta) = new["metadata"].as_object_mut() {
                        meta.remove(field);
                    }
                }
            }
        }
        if has_generation(rt) && new.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        self.commit(&mut inner, rt, key, old, new)
    }

    fn commit(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: Key,
        old: Value,
        mut new: Value,
    ) -> ApiResult<Value> {
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            return Ok(old);
        }
        inner.rv += 1;
        let rv = inner.rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let finalizing = rt.plural != "pods"
            && rt.plural != "namespaces"
            && new["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty());
        if finalizing {
            Self::write_through(inner, rt, &key, None)?;
            if let Some(objects) = inner.objects.get_mut(rt.key()) {
                objects.remove(&key);
            }
            self.emit(inner, rt.key(), EventType::Deleted, Arc::new(new.clone()));
            return Ok(new);
        }
        self.put(inner, rt, key, new, EventType::Modified)
    }

    /// Deletes an object, honouring finalizers, graceful pod termination and
    /// the propagation policy. Returns the object as it is afterwards and
    /// whether it is gone.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(Value, bool)> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let Some(old) = inner
            .objects
            .get(rt.key())
            .and_then(|m| m.get(&key))
            .map(|v| Value::clone(v))
        else {
            return Err(ApiError::not_found(&rt.qualified(), name));
        };
        if let Some(uid) = &opts.precondition_uid
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(&rt.qualified(), name));
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(&rt.qualified(), name));
        }
        let mut new = old.clone();
        let already_deleting = old["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let mut finalizers: Vec<Value> = new["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !already_deleting {
            let extra = match opts.propagation.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(finalizer) = extra
                && !finalizers.iter().any(|x| x == finalizer)
            {
                finalizers.push(json!(finalizer));
            }
        }
        // Pods on a node terminate gracefully: the kubelet finishes the delete.
        if rt.plural == "pods" {
            let phase = old["status"]["phase"].as_str().unwrap_or("");
            let on_node = old["spec"]["nodeName"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            let default_grace = old["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            let grace = opts.grace_period.unwrap_or(default_grace).max(0);
            if on_node && grace > 0 && phase != "Succeeded" && phase != "Failed" {
                let current = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
                if already_deleting && current.is_some_and(|c| c <= grace) {
                    return Ok((old, false));
                }
                let when = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                new["metadata"]["deletionTimestamp"] =
                    json!(when.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                if !finalizers.is_empty() {
                    new["metadata"]["finalizers"] = json!(finalizers);
                }
                inner.rv += 1;
                new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                return Ok((
                    self.put(&mut inner, rt, key, new, EventType::Modified)?,
                    false,
                ));
            }
        }
        // Namespaces are emptied by the namespace controller first.
        let is_ns = rt.plural == "namespaces";
        if is_ns
            && new["spec"]["finalizers"]
                .as_array()
                .is_none_or(|a| !a.is_empty())
        {
            new["spec"]["finalizers"] = json!(["kubernetes"]);
        }
        let ns_pending = is_ns
            && new["spec"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        if !finalizers.is_empty() || ns_pending {
            if already_deleting && new["metadata"]["finalizers"] == json!(finalizers) && !is_ns {
                return Ok((old, false));
            }
            if !already_deleting {
                new["metadata"]["deletionTimestamp"] = json!(now());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            if !finalizers.is_empty() {
                new["metadata"]["finalizers"] = json!(finalizers);
            }
            if is_ns {
                new["status"]["phase"] = json!("Terminating");
            }
            if new == old {
                return Ok((old, false));
            }
            inner.rv += 1;
            new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
            return Ok((
                self.put(&mut inner, rt, key, new, EventType::Modified)?,
                false,
            ));
        }
        inner.rv += 1;
        Self::write_through(&mut inner, rt, &key, None)?;
        if let Some(objects) = inner.objects.get_mut(rt.key()) {
            objects.remove(&key);
        }
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(
            &mut inner,
            rt.key(),
            EventType::Deleted,
            Arc::new(new.clone()),
        );
        Ok((new, true))
    }

    /// Removes an object outright (the kubelet after termination, the
    /// namespace controller after emptying a namespace), unless finalizers
    /// other than the ones being handled remain.
    pub fn remove(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let mut old = inner
            .objects
            .get(rt.key())
            .and_then(|m| m.get(&key))
            .map(|v| Value::clone(v))?;
        if old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            // Keep it until the finalizers are gone; it is marked deleted.
            if old["metadata"]
                .get("deletionTimestamp")
                .is_none_or(|v| v.is_null())
            {
                old["metadata"]["deletionTimestamp"] = json!(now());
                Self::write_through(&mut inner, rt, &key, Some(&old)).ok()?;
                inner
                    .objects
                    .entry(rt.key())
                    .or_default()
                    .insert(key, Arc::new(old));
            }
            return None;
        }
        inner.rv += 1;
        Self::write_through(&mut inner, rt, &key, None).ok()?;
        if let Some(objects) = inner.objects.get_mut(rt.key()) {
            objects.remove(&key);
        }
        old["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(
            &mut inner,
            rt.key(),
            EventType::Deleted,
            Arc::new(old.clone()),
        );
        Some(old)
    }

    /// Starts a watch: the events after `rv` (or, when `rv` is None, a
    /// synthetic ADDED for every current object) and a receiver for the rest.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        rt: &'static ResourceType,
        rv: Option<u64>,
    ) -> ApiResult<(Vec<Arc<Event>>, u64, broadcast::Receiver<Arc<Event>>)> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        match rv {
            None => {
                let items: Vec<Arc<Event>> = inner
                    .objects
                    .get(rt.key())
                    .map(|objects| {
                        objects
                            .values()
                            .map(|object| {
                                let rv = meta_str(object, "resourceVersion").parse().unwrap_or(0);
                                Arc::new(Event {
                                    rv,
                                    res: rt.key(),
                                    kind: EventType::Added,
                                    obj: object.clone(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((items, inner.rv, rx))
            }
            Some(rv) => {
                let history = inner.history.get(rt.key());
                let dropped = history.map_or(0, |h| h.dropped).max(inner.floor);
                if rv < dropped {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        dropped + 1
                    )));
                }
                let items = history
                    .into_iter()
                    .flat_map(|h| h.events.iter())
                    .filter(|e| e.rv > rv)
                    .cloned()
                    .collect();
                Ok((items, inner.rv, rx))
            }
        }
    }

    /// Every object whose ownerReferences name `uid`, as (type, namespace, name).
    pub fn dependents(&self, uid: &str) -> Vec<(&'static ResourceType, String, String, Value)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for rt in resources::RESOURCES {
            if let Some(objects) = inner.objects.get(rt.key()) {
                for ((ns, name), object) in objects {
                    if object["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
                    {
                        out.push((rt, ns.clone(), name.clone(), Value::clone(object)));
                    }
                }
            }
        }
        out
    }

    /// Whether any object with this uid exists (for ownerReference checks).
    pub fn uid_exists(&self, rt: &ResourceType, ns: &str, uid: &str) -> bool {
        let inner = self.lock();
        inner.objects.get(rt.key()).is_some_and(|objects| {
            objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .any(|(_, v)| v["metadata"]["uid"] == uid)
        })
    }

    /// Names of all namespaces' contents of one type (namespace controller).
    pub fn names_in(&self, rt: &ResourceType, ns: &str) -> Vec<String> {
        let inner = self.lock();
        inner
            .objects
            .get(rt.key())
            .map(|objects| {
                objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|((_, name), _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Removes one finalizer from an object's metadata; true if it was there.
pub fn remove_finalizer(obj: &mut Value, name: &str) -> bool {
    let Some(arr) = obj["metadata"]["finalizers"].as_array_mut() else {
        return false;
    };
    let before = arr.len();
    arr.retain(|f| f != name);
    let changed = arr.len() != before;
    if arr.is_empty()
        && let Some(meta) = obj["metadata"].as_object_mut()
    {
        meta.remove("finalizers");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name}, "data": {"a": "b"}})
    }

    #[test]
    fn versions_conflicts_and_expiry() {
        let store = Store::with_history(5);
        let cms = resources::configmaps();
        let created = store.create(cms, "default", cm("a")).unwrap();
        let rv0: u64 = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            store
                .create(cms, "default", cm("a"))
                .is_err_and(|e| e.reason == "AlreadyExists")
        );
        let mut stale = created.clone();
        stale["data"]["a"] = json!("c");
        store
            .update(cms, "default", "a", stale.clone(), None)
            .unwrap();
        assert!(
            store
                .update(cms, "default", "a", stale, None)
                .is_err_and(|e| e.code == 409)
        );
        // A no-op update keeps the version.
        let cur = store.get(cms, "default", "a").unwrap();
        let same = store
            .update(cms, "default", "a", cur.clone(), None)
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            cur["metadata"]["resourceVersion"]
        );
        let (events, _, _) = store.watch(cms, Some(rv0)).unwrap();
        assert_eq!(events.len(), 1);
        for i in 0..10 {
            store.create(cms, "default", cm(&format!("x{i}"))).unwrap();
        }
        assert!(store.watch(cms, Some(rv0)).is_err_and(|e| e.code == 410));
        let (all, _, _) = store.watch(cms, None).unwrap();
        assert_eq!(all.len(), 11);
    }

    #[test]
    fn a_watch_resumes_past_events_of_other_types_but_not_past_its_own() {
        let store = Store::with_history(3);
        let (cms, secrets) = (resources::configmaps(), resources::secrets());
        let first = store.create(cms, "default", cm("a")).unwrap();
        let rv: u64 = first["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        for i in 0..10 {
            store
                .create(secrets, "default", cm(&format!("s{i}")))
                .unwrap();
        }
        store.create(cms, "default", cm("b")).unwrap();
        let (events, _, _) = store.watch(cms, Some(rv)).unwrap();
        assert_eq!(events.len(), 1);
        // The event after `rv` is the oldest kept: still whole.
        store.create(cms, "default", cm("c")).unwrap();
        store.create(cms, "default", cm("d")).unwrap();
        assert_eq!(store.watch(cms, Some(rv)).unwrap().0.len(), 3);
        // One more, and the event right after `rv` is gone.
        store.create(cms, "default", cm("e")).unwrap();
        assert!(store.watch(cms, Some(rv)).is_err_and(|e| e.code == 410));
    }

    #[test]
    fn finalizers_hold_deletion() {
        let store = Store::new();
        let cms = resources::configmaps();
        let mut object = cm("f");
        object["metadata"]["finalizers"] = json!(["example.com/x"]);
        store.create(cms, "default", object).unwrap();
        let (obj, gone) = store
            .delete(cms, "default", "f", &DeleteOptions::default())
            .unwrap();
        assert!(!gone && obj["metadata"]["deletionTimestamp"].is_string());
        store
            .modify(cms, "default", "f", |stored| {
                remove_finalizer(stored, "example.com/x");
                Ok(())
            })
            .unwrap();
        assert!(store.try_get(cms, "default", "f").is_none());
    }
}
