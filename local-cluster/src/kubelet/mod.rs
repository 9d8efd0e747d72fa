//! The process runner ("kubelet"): binds new pods to the one node, runs each
//! pod's containers as local processes (see [`runner`]) and finishes pod
//! deletion once the processes are gone. Keeps, per pod, its directory, the
//! process ids and the log files of every container.

pub mod env;
pub mod ports;
pub mod probes;
pub mod runner;
pub mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::Shared;
use crate::resources;
use crate::store::EventType;

pub const NODE_NAME: &str = "kubesh-local";

/// What the kubelet keeps about one pod.
pub struct PodHandle {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The pod's directory (volumes, logs).
    pub dir: PathBuf,
    /// Container name → process id of its running process (group leader).
    pub pids: Mutex<HashMap<String, u32>>,
    /// Container name → log file of each run, oldest first.
    pub logs: Mutex<HashMap<String, Vec<PathBuf>>>,
    /// Container name → the stdin of its running process (`stdin: true`).
    pub stdin: Mutex<HashMap<String, tokio::sync::mpsc::Sender<bytes::Bytes>>>,
    /// Some(grace seconds) once the pod must stop.
    pub stop: watch::Sender<Option<i64>>,
    /// Set when every process of the pod is gone.
    pub finished: watch::Sender<bool>,
}

impl PodHandle {
    pub fn request_stop(&self, grace: i64) {
        self.stop.send_modify(|s| {
            *s = Some(match *s {
                Some(g) => g.min(grace),
                None => grace,
            })
        });
    }

    /// Whether a container currently has a running process.
    pub fn is_running(&self, container: &str) -> bool {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(container)
    }

    pub fn stdin_of(&self, container: &str) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        self.stdin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .cloned()
    }

    pub fn log_files(&self, container: &str) -> Vec<PathBuf> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .cloned()
            .unwrap_or_default()
    }
}

pub struct Kubelet {
    pub root: PathBuf,
    /// Whether bubblewrap works here (private mount view per pod).
    pub bwrap: bool,
    pods: Mutex<HashMap<String, Arc<PodHandle>>>,
    /// Declared container ports held by running containers.
    ports: Mutex<HashMap<ports::PortKey, ports::Holder>>,
}

/// Whether `bwrap` is installed and allowed to create namespaces here
/// (`KUBESH_LOCAL_NO_BWRAP=1` forces the fallback).
fn bwrap_works() -> bool {
    if std::env::var_os("KUBESH_LOCAL_NO_BWRAP").is_some_and(|v| v == "1") {
        return false;
    }
    std::process::Command::new("bwrap")
        .args([
            "--dev-bind",
            "/",
            "/",
            "--unshare-pid",
            "--die-with-parent",
            "true",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Kubelet {
    /// Pods live under `STATE/run-PID/pods`, so clusters sharing a state
    /// directory do not touch each other's pods; directories of servers
    /// that are gone are removed.
    pub fn new(state_dir: PathBuf) -> Kubelet {
        for e in std::fs::read_dir(&state_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name
                .strip_prefix("run-")
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: signal 0 only checks that the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Kubelet {
            root: state_dir.join(format!("run-{}", std::process::id())),
            bwrap: bwrap_works(),
            pods: Mutex::new(HashMap::new()),
            ports: Mutex::new(HashMap::new()),
        }
    }

    /// One line on how pods are isolated (for the start-up output).
    pub fn mechanism(&self) -> &'static str {
        if self.bwrap {
            "pods get a private mount view (bubblewrap): volumes appear at their mountPath"
        } else {
            "bubblewrap is not available: pods share this machine's file system; volumes live in the pod directory and a workingDir inside a volume is mapped there"
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PodHandle>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn handle(&self, uid: &str) -> Option<Arc<PodHandle>> {
        self.map().get(uid).cloned()
    }

    pub fn all_pids(&self) -> Vec<u32> {
        self.map()
            .values()
            .flat_map(|h| {
                h.pids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn forget(&self, uid: &str) {
        self.map().remove(uid);
    }

    /// Stops every pod (short grace) and waits for the processes to go.
    pub async fn stop_all(&self) {
        let handles: Vec<Arc<PodHandle>> = self.map().values().cloned().collect();
        for h in &handles {
            h.request_stop(2);
        }
        for h in handles {
            let mut rx = h.finished.subscribe();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|f| *f)).await;
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn observe(shared: &Arc<Shared>, kind: EventType, pod: &Value) {
    let meta = &pod["metadata"];
    let uid = meta["uid"].as_str().unwrap_or("").to_string();
    let ns = meta["namespace"].as_str().unwrap_or("").to_string();
    let name = meta["name"].as_str().unwrap_or("").to_string();
    let k = &shared.kubelet;
    // Pods bound to another node are not ours to run.
    if pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n != NODE_NAME)
    {
        return;
    }
    let handle = k.handle(&uid);
    if kind == EventType::Deleted {
        if let Some(h) = handle {
            h.request_stop(0);
        }
        return;
    }
    if meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        match handle {
            Some(h) => h.request_stop(meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(30)),
            None => {
                shared.store.remove(resources::pods(), &ns, &name);
            }
        }
        return;
    }
    if handle.is_some() {
        return;
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    // Scheduling: the only node is this machine.
    let mut pod = pod.clone();
    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        match shared.store.modify(resources::pods(), &ns, &name, |p| {
            p["spec"]["nodeName"] = json!(NODE_NAME);
            Ok(())
        }) {
            Ok(p) => pod = p,
            Err(_) => return,
        }
        crate::events::record(
            &shared.store,
            &pod,
            "Pod",
            "Normal",
            "Scheduled",
            &format!("Successfully assigned {ns}/{name} to {NODE_NAME}"),
            "default-scheduler",
        );
    }
    let dir = k.root.join("pods").join(format!("{ns}_{name}_{uid}"));
    let (stop, _) = watch::channel(None);
    let (finished, _) = watch::channel(false);
    let h = Arc::new(PodHandle {
        uid: uid.clone(),
        namespace: ns,
        name,
        dir,
        pids: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
        stdin: Mutex::new(HashMap::new()),
        stop,
        finished,
    });
    k.map().insert(uid.clone(), h.clone());
    let shared2 = shared.clone();
    tokio::spawn(async move {
        runner::run_pod(shared2.clone(), h.clone(), pod).await;
        h.finished.send_replace(true);
        shared2.kubelet.forget(&uid);
        let _ = std::fs::remove_dir_all(&h.dir);
    });
}

/// Watches pods and keeps processes in line with them.
pub async fn run(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    let (pods, _) = shared.store.list(resources::pods(), None);
    for p in &pods {
        observe(&shared, EventType::Added, p);
    }
    loop {
        match rx.recv().await {
            Ok(ev) if ev.res == "pods" => observe(&shared, ev.kind, &ev.obj),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let (pods, _) = shared.store.list(resources::pods(), None);
                for p in &pods {
                    observe(&shared, EventType::Modified, p);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
