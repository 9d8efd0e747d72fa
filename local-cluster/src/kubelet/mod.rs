//! The process runner ("kubelet"): binds new pods to the one node, gives
//! each pod its sandbox (see [`sandbox`] and [`network`]), runs its
//! containers as processes in it (see [`runner`]) and finishes pod
//! deletion once the processes are gone. Keeps, per pod, its directory,
//! its sandbox, the process ids and the log files of every container.

pub mod env;
pub mod images;
pub mod log_writer;
pub mod mount_view;
pub mod network;
pub mod node;
pub mod ports;
pub mod probes;
pub mod reboot;
pub mod runner;
pub mod sandbox;
pub mod security;
pub mod service_names;
pub mod stdin;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::NODE_NAME;
use crate::Shared;
use crate::resources;
use crate::store::EventType;

/// What the kubelet keeps about one pod.
pub struct PodHandle {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The pod's directory (volumes, logs).
    pub dir: PathBuf,
    /// Container name → process id of its running process (group leader).
    pub pids: Mutex<HashMap<String, u32>>,
    /// Container name → process id of its program (PID 1 of the
    /// container's PID namespace), which exec joins.
    pub programs: Mutex<HashMap<String, i32>>,
    /// The pod's network, UTS and IPC namespaces and its address, once made.
    pub sandbox: Mutex<Option<Arc<PodSandbox>>>,
    /// Container name → log file of each run, oldest first.
    pub logs: Mutex<HashMap<String, Vec<PathBuf>>>,
    /// Container name → the image it runs in (engine mode).
    pub images: Mutex<HashMap<String, Arc<images::Image>>>,
    /// Container name → the stdin of its running process (`stdin: true`).
    pub stdin: Mutex<HashMap<String, tokio::sync::mpsc::Sender<bytes::Bytes>>>,
    /// Some(grace seconds) once the pod must stop.
    pub stop: watch::Sender<Option<i64>>,
    /// The pod's spec as it is now (images may change in place).
    pub spec: watch::Sender<Value>,
    /// Set when every process of the pod is gone.
    pub finished: watch::Sender<bool>,
    /// Counts containers that ended (their logs whole), so that a log
    /// follower ends with the container at once rather than at its next
    /// look.
    pub ended: watch::Sender<u64>,
}

impl PodHandle {
    pub fn request_stop(&self, grace: i64) {
        self.stop.send_modify(|stop| {
            *stop = Some(match *stop {
                Some(earlier) => earlier.min(grace),
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

    pub fn sandbox(&self) -> Option<Arc<PodSandbox>> {
        self.sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn program_of(&self, container: &str) -> Option<i32> {
        self.programs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .copied()
    }

    /// The image a container runs in (engine mode), once obtained.
    pub fn image_of(&self, container: &str) -> Option<Arc<images::Image>> {
        self.images
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

/// A pod's namespaces (kept by their holder) and its address.
pub struct PodSandbox {
    pub holder: sandbox::Holder,
    pub ip: Ipv4Addr,
    node: Arc<Node>,
}

impl PodSandbox {
    /// The node's user namespace, which every pod's namespaces belong to.
    pub fn node_user(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.node.holder.user.as_raw_fd()
    }
}

impl Drop for PodSandbox {
    fn drop(&mut self) {
        self.node.addresses.give_back(self.ip);
    }
}

/// The node's user and network namespaces, and the pod addresses.
pub struct Node {
    pub holder: sandbox::Holder,
    addresses: network::Addresses,
    /// The user namespace maps every user and group (the cluster runs as
    /// root), so `runAsUser` and `runAsGroup` can be honoured.
    pub every_id: bool,
}

/// How pods run here.
pub enum Isolation {
    /// Each pod in its own namespaces, with its own address.
    Sandbox(Arc<Node>),
    /// Processes run directly on this machine, sharing its network (why).
    Direct(String),
}

/// Where pods' files come from.
pub enum ImageMode {
    /// Their images, through the Docker engine.
    Engine(Arc<images::Engine>),
    /// This machine's (why).
    Host(String),
}

pub struct Kubelet {
    pub root: PathBuf,
    pub isolation: Isolation,
    pub image_mode: ImageMode,
    pods: Mutex<HashMap<String, Arc<PodHandle>>>,
    /// Declared container ports held by running containers (only where
    /// pods share this machine's network).
    ports: Mutex<HashMap<ports::PortKey, ports::Holder>>,
    /// The images "pulled" so far: a container of one of them whose pull
    /// policy is `IfNotPresent` finds it present, as on a real node.
    images: Mutex<HashSet<String>>,
    /// How long a pull takes ([`PULL_VARIABLE`]).
    pub pull_time: Duration,
}

/// The variable that makes a first pull of an image take as long as a real
/// node's would, in seconds (`KUBESH_LOCAL_PULL_SECONDS=3`): nothing is
/// downloaded, the kubelet waits between `Pulling` and `Pulled`. Unset, 0.
pub const PULL_VARIABLE: &str = "KUBESH_LOCAL_PULL_SECONDS";

/// How long a pull takes, as [`PULL_VARIABLE`] says.
pub fn pull_time_from_env() -> anyhow::Result<Duration> {
    let Ok(value) = std::env::var(PULL_VARIABLE) else {
        return Ok(Duration::ZERO);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| (0.0..=600.0).contains(seconds))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{PULL_VARIABLE}={value}: give the seconds a first pull of an image takes, \
                 from 0 to 600 (`2.5`)"
            )
        })
}

/// The variable that turns the sandbox off (`KUBESH_LOCAL_SANDBOX=off`).
pub const SANDBOX_VARIABLE: &str = "KUBESH_LOCAL_SANDBOX";

/// Makes the node's namespaces, or says why they cannot be made here.
fn make_node() -> Result<Node, String> {
    if std::env::var(SANDBOX_VARIABLE).is_ok_and(|v| v == "off") {
        return Err(format!("{SANDBOX_VARIABLE}=off is set"));
    }
    let holder = sandbox::Holder::spawn(&sandbox::HolderSpec {
        join_user: None,
        new_user: true,
        hostname: NODE_NAME,
        forward: true,
    })
    .map_err(|e| format!("the kernel refused to make namespaces ({e})"))?;
    network::configure_node(&holder)
        .map_err(|e| format!("the node's network could not be set up ({e})"))?;
    Ok(Node {
        holder,
        addresses: network::Addresses::default(),
        // SAFETY: geteuid has no side effects.
        every_id: unsafe { libc::geteuid() } == 0,
    })
}

/// Chooses where pods' files come from: their images where the setting
/// allows it, pods have sandboxes and a Docker engine answers.
async fn image_mode(
    isolation: &Isolation,
    setting: images::ImagesSetting,
    cache: PathBuf,
) -> ImageMode {
    use images::ImagesSetting;
    let variable = images::IMAGES_VARIABLE;
    if setting == ImagesSetting::Host {
        return ImageMode::Host(format!("{variable}=host is set"));
    }
    if let Isolation::Direct(_) = isolation {
        let asked = match setting {
            ImagesSetting::Engine => format!(" ({variable}=engine is set)"),
            _ => String::new(),
        };
        return ImageMode::Host(format!(
            "pods have no sandbox of their own here, and an image's files need one{asked}"
        ));
    }
    match images::connect().await {
        Ok(docker) => ImageMode::Engine(Arc::new(images::Engine::new(docker, cache))),
        Err(why) if setting == ImagesSetting::Engine => {
            ImageMode::Host(format!("{variable}=engine is set but {why}"))
        }
        Err(why) => ImageMode::Host(format!(
            "{why}; start one (or set DOCKER_HOST) to run pods in their images"
        )),
    }
}

impl Kubelet {
    /// Pods live under `STATE/run-PID/pods`, so clusters sharing a state
    /// directory do not touch each other's pods; directories of servers
    /// that are gone are removed.
    pub async fn new(
        state_dir: PathBuf,
        pull_time: Duration,
        setting: images::ImagesSetting,
        images_cache: PathBuf,
    ) -> Kubelet {
        for entry in std::fs::read_dir(&state_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
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
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let isolation = match make_node() {
            Ok(node) => Isolation::Sandbox(Arc::new(node)),
            Err(why) => Isolation::Direct(why),
        };
        let image_mode = image_mode(&isolation, setting, images_cache).await;
        let root = state_dir.join(format!("run-{}", std::process::id()));
        // Pods' volumes (secrets among them) are for this user only.
        if std::fs::create_dir_all(&root).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700));
        }
        Kubelet {
            root,
            isolation,
            image_mode,
            pods: Mutex::new(HashMap::new()),
            ports: Mutex::new(HashMap::new()),
            images: Mutex::new(HashSet::new()),
            pull_time,
        }
    }

    /// Whether the node has `image` (it has been "pulled" before).
    pub fn has_image(&self, image: &str) -> bool {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(image)
    }

    /// Records `image` as on the node from now on.
    pub fn add_image(&self, image: &str) {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(image.to_string());
    }

    /// The node, when pods run in sandboxes.
    pub fn node(&self) -> Option<&Arc<Node>> {
        match &self.isolation {
            Isolation::Sandbox(node) => Some(node),
            Isolation::Direct(_) => None,
        }
    }

    /// The Docker engine pods' images come from, in engine mode.
    pub fn engine(&self) -> Option<&Arc<images::Engine>> {
        match &self.image_mode {
            ImageMode::Engine(engine) => Some(engine),
            ImageMode::Host(_) => None,
        }
    }

    /// One line on where pods' files come from (for the start-up output).
    pub fn images_mode(&self) -> String {
        match &self.image_mode {
            ImageMode::Engine(engine) => format!(
                "images: pods run in their images' files, obtained through the Docker engine at \
                 {} (pulled if it can, unpacked once per image); {}=host runs their commands \
                 from this machine instead",
                engine.address(),
                images::IMAGES_VARIABLE
            ),
            ImageMode::Host(why) => format!(
                "images: recorded, not pulled: pods run their commands from this machine's PATH, \
                 because {why}"
            ),
        }
    }

    /// One line on how pods are isolated (for the start-up output).
    pub fn mechanism(&self) -> String {
        match &self.isolation {
            Isolation::Sandbox(_) => "pods run in their own namespaces (user, mount, PID, UTS, IPC, network), each with an address in 10.244.0.0/16; Services get addresses in 10.96.0.0/12; neither range exists outside the cluster; pods reach the outside on TCP ports 80 and 443 and DNS, relayed by the cluster".to_string(),
            Isolation::Direct(why) if why.starts_with(SANDBOX_VARIABLE) => format!(
                "pods run directly on this machine and share its network, because {why}"
            ),
            Isolation::Direct(why) => format!(
                "pods run directly on this machine and share its network, because {why}; allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0) for sandboxes, or set {SANDBOX_VARIABLE}=off to choose this mode"
            ),
        }
    }

    /// Makes a pod's sandbox: its namespaces, an address, its network.
    ///
    /// # Errors
    /// What the kernel refused, as one sentence.
    /// `wanted` is the address the pod had before a restart, which it gets
    /// back if it is free.
    pub fn make_sandbox(
        &self,
        pod_name: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Result<Option<Arc<PodSandbox>>, String> {
        let Some(node) = self.node() else {
            return Ok(None);
        };
        let ip = wanted
            .and_then(|ip| node.addresses.claim(ip))
            .or_else(|| node.addresses.take())
            .ok_or("no pod address is left in 10.244.0.0/16")?;
        let holder = match sandbox::Holder::spawn(&sandbox::HolderSpec {
            join_user: Some(&node.holder.user),
            new_user: false,
            hostname: hostname(pod_name),
            forward: false,
        }) {
            Ok(holder) => holder,
            Err(e) => {
                node.addresses.give_back(ip);
                return Err(format!("cannot make the pod's namespaces: {e}"));
            }
        };
        let sandbox = Arc::new(PodSandbox {
            holder,
            ip,
            node: node.clone(),
        });
        network::attach_pod(&node.holder, &sandbox.holder, ip)
            .map_err(|e| format!("cannot set up the pod's network: {e}"))?;
        Ok(Some(sandbox))
    }

    /// A connection to `addr` as the node makes it: pod addresses are
    /// reached inside the cluster's network, anything else from here.
    ///
    /// # Errors
    /// As `connect(2)`.
    pub async fn dial(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        match (self.node(), addr.ip()) {
            (Some(node), std::net::IpAddr::V4(ip))
                if network::contains(network::POD_NET, ip)
                    || network::contains(network::SERVICE_NET, ip) =>
            {
                node.holder.connect(addr).await
            }
            _ => tokio::net::TcpStream::connect(addr).await,
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
            .flat_map(|handle| {
                handle
                    .pids
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
        for handle in &handles {
            handle.request_stop(2);
        }
        for handle in handles {
            let mut rx = handle.finished.subscribe();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|f| *f)).await;
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Leaves `pod` pending with the scheduler's reason, once: the
/// `PodScheduled` condition false and a `FailedScheduling` event.
fn unschedulable(shared: &Arc<Shared>, pod: &Value, message: &str) {
    let already = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable");
    if already {
        return;
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let _ = shared.store.modify(resources::pods(), ns, name, |stored| {
        stored["status"]["phase"] = json!("Pending");
        stored["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": crate::store::now(),
        }]);
        Ok(())
    });
    crate::events::record(
        &shared.store,
        pod,
        "Pod",
        "Warning",
        "FailedScheduling",
        message,
        "default-scheduler",
    );
}

fn observe(shared: &Arc<Shared>, kind: EventType, pod: &Value) {
    let meta = &pod["metadata"];
    let uid = meta["uid"].as_str().unwrap_or("").to_string();
    let ns = meta["namespace"].as_str().unwrap_or("").to_string();
    let name = meta["name"].as_str().unwrap_or("").to_string();
    let kubelet = &shared.kubelet;
    // Pods bound to another node are not ours to run.
    if pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n != NODE_NAME)
    {
        return;
    }
    let existing = kubelet.handle(&uid);
    if kind == EventType::Deleted {
        if let Some(handle) = existing {
            handle.request_stop(0);
        }
        return;
    }
    if meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        match existing {
            Some(handle) => {
                handle.request_stop(meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(30))
            }
            None => {
                shared.store.remove(resources::pods(), &ns, &name);
            }
        }
        return;
    }
    if let Some(handle) = existing {
        // A container's image may change in place: its supervisor sees it.
        let spec = &pod["spec"];
        handle.spec.send_if_modified(|known| {
            let changed = known != spec;
            if changed {
                *known = spec.clone();
            }
            changed
        });
        return;
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    // Scheduling: the only node is this machine, if the pod's nodeSelector
    // takes it.
    let mut pod = pod.clone();
    let unbound = pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    if unbound
        && let Some(node) = shared.store.try_get(resources::nodes(), "", NODE_NAME)
        && !node::selects(&pod, &node)
    {
        unschedulable(
            shared,
            &pod,
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        );
        return;
    }
    if unbound {
        match shared
            .store
            .modify(resources::pods(), &ns, &name, |stored| {
                stored["spec"]["nodeName"] = json!(NODE_NAME);
                Ok(())
            }) {
            Ok(bound) => pod = bound,
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
    let dir = kubelet.root.join("pods").join(format!("{ns}_{name}_{uid}"));
    let (stop, _) = watch::channel(None);
    let (spec, _) = watch::channel(pod["spec"].clone());
    let (finished, _) = watch::channel(false);
    let (ended, _) = watch::channel(0);
    let handle = Arc::new(PodHandle {
        uid: uid.clone(),
        namespace: ns,
        name,
        dir,
        pids: Mutex::new(HashMap::new()),
        programs: Mutex::new(HashMap::new()),
        sandbox: Mutex::new(None),
        logs: Mutex::new(HashMap::new()),
        images: Mutex::new(HashMap::new()),
        stdin: Mutex::new(HashMap::new()),
        stop,
        spec,
        finished,
        ended,
    });
    kubelet.map().insert(uid.clone(), handle.clone());
    let shared2 = shared.clone();
    tokio::spawn(async move {
        runner::run_pod(shared2.clone(), handle.clone(), pod).await;
        handle.finished.send_replace(true);
        shared2.kubelet.forget(&uid);
        let _ = std::fs::remove_dir_all(&handle.dir);
    });
}

/// Watches pods and keeps processes in line with them.
pub async fn run(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    let (pods, _) = shared.store.list(resources::pods(), None);
    // Pods from before a restart get their addresses back: kept from new
    // pods until they claim them.
    if let Some(node) = shared.kubelet.node() {
        for pod in pods.iter().filter(|pod| {
            reboot::ran_before(pod)
                && pod["spec"]["restartPolicy"] != "Never"
                && !matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                )
        }) {
            if let Some(ip) = pod["status"]["podIP"]
                .as_str()
                .and_then(|ip| ip.parse().ok())
            {
                node.addresses.reserve(ip);
            }
        }
    }
    for pod in &pods {
        observe(&shared, EventType::Added, pod);
    }
    loop {
        match rx.recv().await {
            Ok(ev) if ev.res == "pods" => observe(&shared, ev.kind, &ev.obj),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let (pods, _) = shared.store.list(resources::pods(), None);
                for pod in &pods {
                    observe(&shared, EventType::Modified, pod);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A pod's hostname, as the kubelet makes it from its name: at most 63
/// characters, without a trailing `-` or `.` where it was cut.
fn hostname(pod_name: &str) -> &str {
    if pod_name.len() <= 63 {
        return pod_name;
    }
    pod_name[..63].trim_end_matches(['-', '.'])
}
