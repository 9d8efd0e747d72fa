//! Running one pod: volumes, init containers in order, then every container
//! under a supervisor with restartPolicy and the kubelet's back-off (the
//! first restart at once, then 10 s doubling to 5 min), probes, logs (CRI
//! format, one file per run, written by [`log_writer`]), status reporting,
//! a container restarted when its image changes, and termination (SIGTERM
//! once, the grace period, SIGKILL).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use std::os::fd::{AsRawFd, OwnedFd};

use super::mount_view::MountPlan;
use super::service_names::ServiceNames;
use super::volumes::{self, Mount};
use super::{PodHandle, PodSandbox, env, log_writer, ports, probes, reboot, sandbox};
use crate::Shared;
use crate::events;
use crate::resources;
use crate::store::now;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Status {
    init: Vec<Value>,
    main: Vec<Value>,
    initialized: bool,
    phase: String,
    start_time: String,
    message: Option<(String, String)>,
    /// Why the pod cannot be placed on the node, as the scheduler says it:
    /// without sandboxes a declared port is this machine's port (a host
    /// port), held by another pod.
    unschedulable: Option<String>,
    /// The pod's address once its sandbox exists (127.0.0.1 without one).
    pod_ip: Option<String>,
    host_ip: String,
}

struct Pod {
    shared: Arc<Shared>,
    handle: Arc<PodHandle>,
    spec: Value,
    obj: Value,
    st: Mutex<Status>,
    stop: watch::Receiver<Option<i64>>,
}

fn waiting(container: &Value, reason: &str, message: Option<&str>) -> Value {
    let mut state = json!({"reason": reason});
    if let Some(message) = message {
        state["message"] = json!(message);
    }
    json!({
        "name": container["name"], "image": container["image"], "imageID": "", "ready": false, "started": false,
        "restartCount": 0, "state": {"waiting": state}, "lastState": {},
    })
}

impl Pod {
    fn st(&self) -> std::sync::MutexGuard<'_, Status> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, type_: &str, reason: &str, msg: &str, container: Option<&str>) {
        // An init container's events name it as such, as the kubelet's do.
        let is_init = |c: &str| {
            self.spec["initContainers"]
                .as_array()
                .is_some_and(|inits| inits.iter().any(|i| i["name"] == c))
        };
        let fp = container.map(|c| match is_init(c) {
            true => format!("spec.initContainers{{{c}}}"),
            false => format!("spec.containers{{{c}}}"),
        });
        events::record_field(
            &self.shared.store,
            &self.obj,
            "Pod",
            type_,
            reason,
            msg,
            "kubelet",
            fp.as_deref(),
        );
    }

    /// The kubelet's image step for `container`, in its events' words:
    /// `Pulling` then `Pulled` where the pull policy asks for a pull or
    /// the node has not had the image yet, else `Pulled`, already present.
    /// Nothing is downloaded: the command runs from this machine.
    /// It takes [`Kubelet::pull_time`](super::Kubelet); false if the pod
    /// stopped meanwhile.
    async fn pull(&self, container: &str, image: &str, policy: &str) -> bool {
        let kubelet = &self.shared.kubelet;
        if policy == "Never" || (policy == "IfNotPresent" && kubelet.has_image(image)) {
            let message = format!("Container image \"{image}\" already present on machine");
            self.event("Normal", "Pulled", &message, Some(container));
            return true;
        }
        let began = Instant::now();
        let message = format!("Pulling image \"{image}\"");
        self.event("Normal", "Pulling", &message, Some(container));
        if !kubelet.pull_time.is_zero() && sleep_or_stop(self, kubelet.pull_time).await {
            return false;
        }
        kubelet.add_image(image);
        let took = go_duration(began.elapsed());
        let message = format!(
            "Successfully pulled image \"{image}\" in {took} ({took} including waiting). \
             Image size: 0 bytes."
        );
        self.event("Normal", "Pulled", &message, Some(container));
        true
    }

    /// The pod cannot be placed (see `Status::unschedulable`).
    fn unplaced(&self, message: String) {
        self.st().unschedulable = Some(message);
        self.publish();
    }

    /// The pod is placed after all (the port it waited for is free).
    fn placed(&self) {
        let was = self.st().unschedulable.take();
        if was.is_some() {
            self.publish();
        }
    }

    fn stopping(&self) -> Option<i64> {
        *self.stop.borrow()
    }

    fn set_container(&self, init: bool, idx: usize, update: impl FnOnce(&mut Value)) {
        {
            let mut st = self.st();
            let list = if init { &mut st.init } else { &mut st.main };
            if let Some(container) = list.get_mut(idx) {
                update(container);
            }
        }
        self.publish();
    }

    /// Writes the status to the store, with phase and conditions computed.
    fn publish(&self) {
        let st = self.st();
        let policy = self.spec["restartPolicy"].as_str().unwrap_or("Always");
        let all_ready = !st.main.is_empty() && st.main.iter().all(|c| c["ready"] == true);
        let phase = if st.phase == "Failed" || st.phase == "Succeeded" {
            st.phase.clone()
        } else if !st.initialized {
            "Pending".to_string()
        } else {
            let terminated: Vec<&Value> = st
                .main
                .iter()
                .filter(|c| c["state"]["terminated"].is_object())
                .collect();
            let running = st.main.iter().any(|c| c["state"]["running"].is_object());
            if terminated.len() == st.main.len() && policy != "Always" && !st.main.is_empty() {
                let failed = terminated
                    .iter()
                    .any(|c| c["state"]["terminated"]["exitCode"] != 0);
                if failed && policy == "Never" {
                    "Failed".into()
                } else if !failed {
                    "Succeeded".into()
                } else {
                    "Running".into()
                }
            } else if running
                || st
                    .main
                    .iter()
                    .any(|c| c["restartCount"].as_i64().unwrap_or(0) > 0)
            {
                "Running".into()
            } else {
                "Pending".into()
            }
        };
        let now_s = now();
        let cond = |type_: &str, ok: bool, reason: Option<&str>| {
            let mut condition = json!({"type": type_, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now_s});
            if let Some(reason) = reason.filter(|_| !ok) {
                condition["reason"] = json!(reason);
            }
            condition
        };
        let done = phase == "Succeeded" || phase == "Failed";
        let not_ready_reason = if done {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        };
        let conditions = vec![
            cond("PodReadyToStartContainers", true, None),
            cond(
                "Initialized",
                st.initialized,
                Some("ContainersNotInitialized"),
            ),
            cond("Ready", all_ready && !done, Some(not_ready_reason)),
            cond(
                "ContainersReady",
                all_ready && !done,
                Some(not_ready_reason),
            ),
            match &st.unschedulable {
                None => cond("PodScheduled", true, None),
                Some(message) => {
                    let mut condition = cond("PodScheduled", false, Some("Unschedulable"));
                    condition["message"] = json!(message);
                    condition
                }
            },
        ];
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": st.host_ip,
            "hostIPs": [{"ip": st.host_ip}],
            "startTime": st.start_time,
            "containerStatuses": st.main,
            "qosClass": "BestEffort",
        });
        if let Some(ip) = &st.pod_ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        if !st.init.is_empty() {
            status["initContainerStatuses"] = json!(st.init);
        }
        if let Some((reason, msg)) = &st.message {
            status["reason"] = json!(reason);
            status["message"] = json!(msg);
        }
        drop(st);
        let uid = self.handle.uid.clone();
        let _ = self.shared.store.modify(
            resources::pods(),
            &self.handle.namespace,
            &self.handle.name,
            |stored| {
                if stored["metadata"]["uid"] != uid.as_str() {
                    return Err(crate::error::ApiError::conflict("pods", ""));
                }
                // Keep transition times of conditions whose status did not change.
                let mut status = status;
                if let (Some(new), Some(old)) = (
                    status["conditions"].as_array_mut(),
                    stored["status"]["conditions"].as_array(),
                ) {
                    for condition in new.iter_mut() {
                        if let Some(previous) = old.iter().find(|previous| {
                            previous["type"] == condition["type"]
                                && previous["status"] == condition["status"]
                        }) {
                            condition["lastTransitionTime"] =
                                previous["lastTransitionTime"].clone();
                        }
                    }
                }
                stored["status"] = status;
                Ok(())
            },
        );
    }
}

/// Sends a signal to a container's process group.
fn signal_group(pgid: u32, sig: i32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group.
    unsafe { libc::kill(-pgid, sig) };
}

/// Sends a signal to one process.
fn signal_one(pid: u32, sig: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: plain kill(2) of one process.
    unsafe { libc::kill(pid, sig) };
}

struct Spawned {
    child: Child,
    pid: u32,
    /// The program's own process id, in a sandbox.
    program: Option<i32>,
    log_done: tokio::task::JoinHandle<()>,
}

/// Where a container runs and with what.
struct Ctx {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    mounts: Vec<Mount>,
    workdir: String,
    /// The process reads a pipe kept for attach (`stdin: true`).
    stdin: bool,
    /// The pod's own /etc/hosts (service names), in a mount view.
    hosts: Option<PathBuf>,
    /// The user and group the program runs as, where they can be.
    run_as: Option<(u32, u32)>,
    /// Why `runAsUser` is not applied though it could be mapped: a
    /// program of this machine that user cannot run.
    run_as_refused: Option<String>,
    /// The capabilities its processes may have (a bounding set).
    capabilities: u64,
    /// Its root file system is read-only.
    read_only_root: bool,
    /// The image whose files it runs in (engine mode), and the directory
    /// of its own writable layer.
    image: Option<(Arc<super::images::Image>, PathBuf)>,
}

fn base_env(pod_name: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            }),
        ),
        ("HOSTNAME".to_string(), pod_name.to_string()),
        (
            "HOME".to_string(),
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        ),
    ];
    for name in ["LANG", "LC_ALL", "TZ", "USER"] {
        if let Ok(val) = std::env::var(name) {
            vars.push((name.to_string(), val));
        }
    }
    vars
}

/// What a new process in a pod is.
#[derive(Clone, Copy)]
enum Entry {
    /// A container's main process: new mount and PID namespaces.
    Container,
    /// A command in a running container (exec, exec probes): its
    /// namespaces joined.
    Exec { program: i32 },
}

/// A command ready to spawn, the pipe its program's pid comes back on,
/// and the namespace descriptors it needs until it has started.
struct Prepared {
    cmd: Command,
    report: Option<(OwnedFd, OwnedFd)>,
    keep: Vec<OwnedFd>,
}

impl Prepared {
    /// Spawns it; returns the child and, in a sandbox, the program's pid.
    fn spawn(mut self) -> std::io::Result<(Child, Option<i32>)> {
        let child = self.cmd.spawn()?;
        self.keep.clear();
        let Some((read, write)) = self.report.take() else {
            return Ok((child, None));
        };
        drop(write);
        let mut pid = [0u8; 4];
        let mut file = std::fs::File::from(read);
        use std::io::Read;
        // The pid is written before the program starts, so it is there by
        // the time spawn returns; a failed start closes the pipe empty.
        let program = file
            .read_exact(&mut pid)
            .ok()
            .map(|()| i32::from_ne_bytes(pid));
        Ok((child, program))
    }
}

/// Replaces volume mount paths in `text` by their directories on this
/// machine (pods without a mount view).
fn map_paths(text: &str, mounts: &[Mount]) -> String {
    let mut out = text.to_string();
    // Deepest mounts first, so /app/data wins over /app.
    let mut by_depth: Vec<&Mount> = mounts.iter().collect();
    by_depth.sort_by_key(|m| std::cmp::Reverse(m.target.len()));
    for mount in by_depth {
        let target = mount.target.trim_end_matches('/');
        if target.is_empty() {
            continue;
        }
        let host = mount.host.to_string_lossy();
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(target) {
            let before_ok = i == 0
                || !rest[..i].ends_with(|character: char| {
                    character.is_alphanumeric()
                        || character == '_'
                        || character == '.'
                        || character == '-'
                        || character == '/'
                });
            let after = &rest[i + target.len()..];
            let after_ok = after.is_empty()
                || after.starts_with(|character: char| {
                    !(character.is_alphanumeric()
                        || character == '_'
                        || character == '.'
                        || character == '-')
                });
            result.push_str(&rest[..i]);
            if before_ok && after_ok {
                result.push_str(&host);
            } else {
                result.push_str(target);
            }
            rest = after;
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn build_command(
    handle: &PodHandle,
    sandbox: Option<&PodSandbox>,
    ctx: &Ctx,
    entry: Entry,
) -> Result<Prepared, String> {
    let mut report = None;
    let mut keep = Vec::new();
    let mut cmd;
    match sandbox {
        Some(sb) => {
            cmd = Command::new(&ctx.argv[0]);
            cmd.args(&ctx.argv[1..]);
            let how = match entry {
                Entry::Container => {
                    let root = handle.dir.join("rootfs");
                    let _ = std::fs::create_dir_all(&root);
                    let mut files = Vec::new();
                    if let Some(hosts) = &ctx.hosts {
                        files.push((hosts.clone(), "/etc/hosts"));
                        let resolv = hosts.with_file_name("resolv.conf");
                        if std::fs::write(&resolv, super::network::resolv_conf(&handle.namespace))
                            .is_ok()
                        {
                            files.push((resolv, "/etc/resolv.conf"));
                        }
                    }
                    let plan = match &ctx.image {
                        Some((image, layer)) => MountPlan::in_image(
                            &root,
                            &image.rootfs,
                            layer,
                            &ctx.mounts,
                            Path::new(&ctx.workdir),
                            &files,
                            ctx.read_only_root,
                        )
                        .map_err(|e| {
                            format!(
                                "cannot make the container's layer in {}: {e}",
                                layer.display()
                            )
                        })?,
                        None => MountPlan::new(
                            &root,
                            &ctx.mounts,
                            Path::new(&ctx.workdir),
                            &files,
                            ctx.read_only_root,
                        ),
                    };
                    sandbox::JoinHow::Container(plan)
                }
                Entry::Exec { program } => {
                    let open = |ns: &str| {
                        std::fs::File::open(format!("/proc/{program}/ns/{ns}"))
                            .map(std::os::fd::OwnedFd::from)
                            .map_err(|e| format!("the container is not running ({e})"))
                    };
                    let (mnt, pid) = (open("mnt")?, open("pid")?);
                    let how = sandbox::JoinHow::Exec {
                        mnt: mnt.as_raw_fd(),
                        pid: pid.as_raw_fd(),
                    };
                    // Kept open until the command has started.
                    keep.push(mnt);
                    keep.push(pid);
                    how
                }
            };
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| format!("cannot make a pipe: {e}"))?;
            let join = sandbox::Join {
                user: sb.node_user(),
                net: sb.holder.net.as_raw_fd(),
                uts: sb.holder.uts.as_raw_fd(),
                ipc: sb.holder.ipc.as_raw_fd(),
                how,
                workdir: std::ffi::CString::new(ctx.workdir.as_bytes())
                    .map_err(|_| "the working directory has a NUL byte".to_string())?,
                report: write.as_raw_fd(),
                ids: ctx.run_as,
                capabilities: ctx.capabilities,
            };
            report = Some((read, write));
            // SAFETY: `enter` makes system calls only.
            unsafe {
                cmd.pre_exec(move || sandbox::enter(&join));
            }
        }
        None => {
            // Without a mount view, volume paths in the command and the
            // environment are mapped to the volumes' directories here.
            let argv: Vec<String> = ctx.argv.iter().map(|a| map_paths(a, &ctx.mounts)).collect();
            cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            let mut wd = PathBuf::from(&ctx.workdir);
            for mount in &ctx.mounts {
                if let Ok(rel) = Path::new(&ctx.workdir).strip_prefix(&mount.target) {
                    wd = mount.host.join(rel);
                }
            }
            if !wd.is_dir() {
                wd = handle.dir.to_path_buf();
            }
            cmd.current_dir(wd);
            let end_all = sandbox::end_all_signal();
            // SAFETY: `enter_direct` makes system calls only.
            unsafe {
                cmd.pre_exec(move || sandbox::enter_direct(end_all));
            }
        }
    }
    cmd.env_clear();
    if sandbox.is_some() {
        cmd.envs(ctx.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    } else {
        cmd.envs(
            ctx.env
                .iter()
                .map(|(k, v)| (k.clone(), map_paths(v, &ctx.mounts))),
        );
    }
    cmd.stdin(Stdio::null());
    cmd.kill_on_drop(true);
    Ok(Prepared { cmd, report, keep })
}

/// Why a container's command did not start: for a command that is not
/// on PATH, the container runtime's words, then what differs here (the
/// command comes from this machine, not from the image).
fn not_started(command: &str, error: &std::io::Error, in_image: bool) -> String {
    if in_image {
        return if error.kind() == std::io::ErrorKind::NotFound {
            format!(
                "exec: \"{command}\": {}",
                if command.contains('/') {
                    "no such file or directory"
                } else {
                    "executable file not found in $PATH"
                }
            )
        } else {
            format!("cannot start {command}: {error}")
        };
    }
    if error.kind() == std::io::ErrorKind::NotFound && !command.contains('/') {
        format!(
            "exec: \"{command}\": executable file not found in $PATH: the local cluster runs \
             an image's command from this machine's PATH, and {command} is not installed on \
             this machine; install it here, or run on a cluster that pulls images"
        )
    } else {
        format!("cannot start {command}: {error}")
    }
}

/// Starts a process whose stdout and stderr go, line by line with
/// timestamps, to `log`.
fn spawn_logged(
    handle: &PodHandle,
    sandbox: Option<&PodSandbox>,
    ctx: &Ctx,
    log: &Path,
) -> Result<Spawned, String> {
    let mut prepared = build_command(handle, sandbox, ctx, Entry::Container)?;
    prepared.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if ctx.stdin {
        prepared.cmd.stdin(Stdio::piped());
    }
    let (mut child, program) = prepared
        .spawn()
        .map_err(|error| not_started(&ctx.argv[0], &error, ctx.image.is_some()))?;
    let pid = child.id().unwrap_or(0);
    let log_done = log_writer::start(&mut child, log);
    Ok(Spawned {
        child,
        pid,
        program,
        log_done,
    })
}

/// Why a container's process did not start, as the kubelet says it: a
/// waiting reason and its message.
#[derive(Debug)]
enum NotStarted {
    /// Its settings cannot be resolved (a missing ConfigMap key, say);
    /// tried again, as they may appear.
    Config(String),
    /// It has nothing this cluster can run.
    Create(String),
    /// Its command did not start.
    Run(String),
    /// A declared port another pod's container holds (pods without
    /// sandboxes share this machine's ports).
    PortInUse(String),
}

impl NotStarted {
    /// The container's waiting reason.
    fn reason(&self) -> &'static str {
        match self {
            NotStarted::Config(_) => "CreateContainerConfigError",
            NotStarted::Create(_) => "CreateContainerError",
            NotStarted::Run(_) => "RunContainerError",
            NotStarted::PortInUse(_) => "PortInUse",
        }
    }

    fn message(&self) -> &str {
        match self {
            NotStarted::Config(message)
            | NotStarted::Create(message)
            | NotStarted::Run(message)
            | NotStarted::PortInUse(message) => message,
        }
    }
}

fn container_ctx(pod: &Pod, container: &Value) -> Result<Ctx, NotStarted> {
    let ctx = ctx_for(&pod.shared, &pod.obj, &pod.handle, container)?;
    if let Some(said) = &ctx.run_as_refused {
        pod.event("Warning", "SettingNotApplied", said, None);
    }
    Ok(ctx)
}

/// A command (`argv`) to run in a running pod's container, as exec does:
/// the container's env, working directory and namespaces (its mount view
/// and PID namespace included). stdin, stdout and stderr are null; the
/// caller sets what it needs.
///
/// # Errors
/// The container is not running, or its settings cannot be resolved.
pub fn exec_command(
    shared: &Shared,
    handle: &PodHandle,
    obj: &Value,
    container: &Value,
    argv: Vec<String>,
) -> Result<ExecCommand, String> {
    let mut ctx = match ctx_for(shared, obj, handle, container) {
        Ok(ctx) => ctx,
        // A container without a command still accepts exec.
        Err(_) if container["command"].is_null() && container["args"].is_null() => {
            let mut with_command = container.clone();
            with_command["command"] = json!(["true"]);
            ctx_for(shared, obj, handle, &with_command)
                .map_err(|not_started| not_started.message().to_string())?
        }
        Err(not_started) => return Err(not_started.message().to_string()),
    };
    if argv.is_empty() {
        return Err("no command given".into());
    }
    ctx.argv = argv;
    ctx.stdin = false;
    let sandbox = handle.sandbox();
    let entry = match &sandbox {
        Some(_) => {
            let name = container["name"].as_str().unwrap_or("");
            let program = handle
                .program_of(name)
                .ok_or_else(|| format!("container {name} is not running"))?;
            Entry::Exec { program }
        }
        None => Entry::Container,
    };
    let mut prepared = build_command(handle, sandbox.as_deref(), &ctx, entry)?;
    prepared.cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Ok(ExecCommand(prepared))
}

/// A command to run in a container (see [`exec_command`]).
pub struct ExecCommand(Prepared);

impl ExecCommand {
    /// The command, to set its stdio.
    pub fn command(&mut self) -> &mut Command {
        &mut self.0.cmd
    }

    /// Starts it.
    ///
    /// # Errors
    /// As spawning a process.
    pub fn spawn(self) -> std::io::Result<Child> {
        self.0.spawn().map(|(child, _)| child)
    }
}

/// Writes the pod's /etc/hosts: this machine's, then every service's
/// ClusterIP under `NAME.NS`, `NAME.NS.svc`, `NAME.NS.svc.cluster.local`
/// and, for the pod's namespace, `NAME`. Rewritten in place, so processes
/// started later see services created since.
fn write_hosts(shared: &Shared, obj: &Value, dir: &Path) -> Option<PathBuf> {
    use std::io::Write;
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# services of the local cluster\n");
    let (svcs, _) = shared.store.list(resources::services(), None);
    for service in &svcs {
        let (Some(name), Some(sns), Some(ip)) = (
            service["metadata"]["name"].as_str(),
            service["metadata"]["namespace"].as_str(),
            service["spec"]["clusterIP"]
                .as_str()
                .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()),
        ) else {
            continue;
        };
        let short = if sns == ns { name } else { "" };
        text.push_str(&format!(
            "{ip} {name}.{sns}.svc.cluster.local {name}.{sns}.svc {name}.{sns} {short}\n"
        ));
    }
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join("hosts");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .ok()?;
    file.write_all(text.as_bytes()).ok()?;
    Some(path)
}

fn ctx_for(
    shared: &Shared,
    obj: &Value,
    handle: &PodHandle,
    container: &Value,
) -> Result<Ctx, NotStarted> {
    let mut argv: Vec<String> = Vec::new();
    let mut obj = obj.clone();
    if let Some(sb) = handle.sandbox() {
        obj["status"]["podIP"] = json!(sb.ip.to_string());
        obj["status"]["hostIP"] = json!(super::network::NODE_IP.to_string());
    }
    let obj = &obj;
    let vars = env::build(&shared.store, obj, container).map_err(NotStarted::Config)?;
    let strs = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(|s| env::expand(s, &vars)))
            .collect()
    };
    let name = container["name"].as_str().unwrap_or("");
    let image = handle.image_of(name);
    match &image {
        // As the kubelet: `command` replaces the image's entrypoint (and
        // its cmd), `args` replaces its cmd.
        Some(image) => {
            let has = |key: &str| container[key].as_array().is_some_and(|a| !a.is_empty());
            match (has("command"), has("args")) {
                (true, _) => argv.extend(strs(&container["command"])),
                (false, _) => argv.extend(image.entrypoint.iter().cloned()),
            }
            match (has("command"), has("args")) {
                (_, true) => argv.extend(strs(&container["args"])),
                (false, false) => argv.extend(image.cmd.iter().cloned()),
                (true, false) => {}
            }
            if argv.is_empty() {
                return Err(NotStarted::Create(
                    "no command specified: the image has no entrypoint or command, and the \
                     container gives none"
                        .into(),
                ));
            }
        }
        None => {
            argv.extend(strs(&container["command"]));
            argv.extend(strs(&container["args"]));
            if argv.is_empty() {
                return Err(NotStarted::Create(
                    "no command specified: the local cluster cannot read an image's entrypoint; give the container a command".into(),
                ));
            }
        }
    }
    if let Some(image) = image {
        return image_ctx(shared, obj, handle, container, argv, vars, image);
    }
    let mut vars = vars;
    if shared.kubelet.node().is_none() {
        // No /etc/hosts of its own: Services the container names as hosts
        // become their addresses.
        let names = ServiceNames::of(&shared.store, &handle.namespace);
        argv = argv.iter().map(|word| names.in_text(word)).collect();
        for (_, value) in &mut vars {
            *value = names.in_value(value);
        }
    }
    let mut env_all = base_env(&handle.name);
    env_all.extend(env::service_env(&shared.store, obj));
    env_all.extend(vars);
    let mounts = volumes::mounts(container, &handle.dir);
    let workdir = container["workingDir"]
        .as_str()
        .filter(|s| s.starts_with('/'))
        .map(String::from);
    let workdir = workdir.unwrap_or_else(|| handle.dir.join("root").to_string_lossy().to_string());
    let mut run_as = shared
        .kubelet
        .node()
        .filter(|node| node.every_id)
        .and_then(|_| super::security::run_as(&obj["spec"], container));
    let mut run_as_refused = None;
    if let Some((uid, gid)) = run_as.filter(|(uid, _)| *uid != 0) {
        let path = env_all
            .iter()
            .rev()
            .find(|(name, _)| name == "PATH")
            .map_or("", |(_, value)| value.as_str());
        if let Some(closed) = super::security::closed_program(&argv, path, uid, gid) {
            run_as = None;
            run_as_refused = Some(format!(
                "spec.containers{{{}}}.securityContext.runAsUser is not applied: user {uid} \
                 cannot run {closed}, where an image's programs are open to every user; the \
                 container runs as root of the cluster's user namespace",
                container["name"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(Ctx {
        argv,
        env: env_all,
        mounts,
        workdir,
        stdin: container["stdin"].as_bool().unwrap_or(false),
        hosts: shared
            .kubelet
            .node()
            .and_then(|_| write_hosts(shared, obj, &handle.dir)),
        run_as,
        run_as_refused,
        capabilities: super::security::capabilities(container),
        read_only_root: super::security::read_only_root(container),
        image: None,
    })
}

/// A container's settings where it runs in `image`: the image's
/// environment under the pod's, its working directory and user unless the
/// container sets its own, as the kubelet does.
fn image_ctx(
    shared: &Shared,
    obj: &Value,
    handle: &PodHandle,
    container: &Value,
    argv: Vec<String>,
    vars: Vec<(String, String)>,
    image: Arc<super::images::Image>,
) -> Result<Ctx, NotStarted> {
    let name = container["name"].as_str().unwrap_or("");
    let setting = |key: &str| -> Option<u32> {
        container["securityContext"][key]
            .as_u64()
            .or_else(|| obj["spec"]["securityContext"][key].as_u64())
            .and_then(|n| u32::try_from(n).ok())
    };
    let user = match setting("runAsUser") {
        Some(uid) => uid.to_string(),
        None => image.user.clone(),
    };
    let (uid, gid, home) =
        super::images::image_user(&image.rootfs, &user).map_err(NotStarted::Create)?;
    let gid = setting("runAsGroup").unwrap_or(gid);
    let every_id = shared.kubelet.node().is_some_and(|node| node.every_id);
    let (run_as, run_as_refused) = if every_id {
        (Some((uid, gid)), None)
    } else if uid != 0 || gid != 0 {
        (
            None,
            Some(format!(
                "the user {uid}:{gid} of container {name} is not applied: the cluster's user \
                 namespace maps only the user that runs it (it runs as root of that namespace \
                 when the cluster runs as root); the container runs as root of the namespace"
            )),
        )
    } else {
        (None, None)
    };
    let mut env_all = vec![
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOSTNAME".to_string(), handle.name.clone()),
        (
            "HOME".to_string(),
            if home.is_empty() { "/".into() } else { home },
        ),
    ];
    env_all.extend(image.env.iter().cloned());
    env_all.extend(env::service_env(&shared.store, obj));
    env_all.extend(vars);
    let workdir = container["workingDir"]
        .as_str()
        .filter(|s| s.starts_with('/'))
        .map(String::from)
        .or_else(|| Some(image.workdir.clone()).filter(|w| w.starts_with('/')))
        .unwrap_or_else(|| "/".to_string());
    Ok(Ctx {
        argv,
        env: env_all,
        mounts: volumes::mounts(container, &handle.dir),
        workdir,
        stdin: container["stdin"].as_bool().unwrap_or(false),
        hosts: write_hosts(shared, obj, &handle.dir),
        run_as,
        run_as_refused,
        capabilities: super::security::capabilities(container),
        read_only_root: super::security::read_only_root(container),
        image: Some((image, handle.dir.join("layers").join(name))),
    })
}

/// Result of one run of a container.
struct Exit {
    code: i32,
    signal: Option<i32>,
    killed_by_probe: bool,
    /// The container's image changed in the pod's spec: the new image,
    /// to run at once whatever the restart policy.
    redefined: Option<String>,
}

/// The image of container `name` in a pod spec.
fn image_in(spec: &Value, name: &str) -> Option<String> {
    spec["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["image"]
        .as_str()
        .map(String::from)
}

/// Waits until the pod's spec gives container `name` another image than
/// `image`, and returns it.
async fn image_change(spec: &mut watch::Receiver<Value>, name: &str, image: &str) -> String {
    loop {
        let now = image_in(&spec.borrow_and_update(), name);
        if let Some(now) = now.filter(|now| now != image) {
            return now;
        }
        if spec.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_child(child: &mut Child) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match child.wait().await {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (code, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            _ => (1, None),
        },
        Err(_) => (1, None),
    }
}

/// Runs one container process until it exits or the pod stops.
async fn run_once(
    pod: &Arc<Pod>,
    init: bool,
    idx: usize,
    container: &Value,
    restart: i64,
) -> Result<Exit, NotStarted> {
    let name = container["name"].as_str().unwrap_or("").to_string();
    let ctx = container_ctx(pod, container)?;
    // Declared ports are this machine's ports: one running container each.
    let holder = ports::Holder {
        uid: pod.handle.uid.clone(),
        pod: format!("{}/{}", pod.handle.namespace, pod.handle.name),
        container: name.clone(),
    };
    let sandbox = pod.handle.sandbox();
    // Without a sandbox, declared ports are this machine's ports.
    let declared = if sandbox.is_some() {
        Vec::new()
    } else {
        ports::declared(container)
    };
    let _ports = pod
        .shared
        .kubelet
        .reserve_ports(holder, declared)
        .map_err(|(key, holder)| NotStarted::PortInUse(ports::waiting_message(&key, &holder)))?;
    pod.placed();
    let log_dir = pod.handle.dir.join("logs").join(&name);
    let _ = std::fs::create_dir_all(&log_dir);
    let _ = std::fs::create_dir_all(pod.handle.dir.join("root"));
    if sandbox.is_none() {
        let _ = std::fs::create_dir_all(&ctx.workdir);
    }
    // Each run starts from the image's files, as a new container does.
    if let Some((_, layer)) = &ctx.image {
        let _ = std::fs::remove_dir_all(layer);
    }
    let log = log_dir.join(format!("{restart}.log"));
    let mut spawned =
        spawn_logged(&pod.handle, sandbox.as_deref(), &ctx, &log).map_err(NotStarted::Run)?;
    pod.handle
        .logs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.clone())
        .or_default()
        .push(log.clone());
    {
        let mut stdins = pod.handle.stdin.lock().unwrap_or_else(|e| e.into_inner());
        match spawned.child.stdin.take() {
            Some(writer) => {
                stdins.insert(name.clone(), super::stdin::stdin_task(writer));
            }
            None => {
                stdins.remove(&name);
            }
        }
    }
    pod.handle
        .pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.clone(), spawned.pid);
    if let Some(program) = spawned.program {
        pod.handle
            .programs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), program);
    }
    let started_at = now();
    let cid = format!("kubesh://{}-{}-{restart}", pod.handle.uid, name);
    let has_readiness = !init && container["readinessProbe"].is_object();
    let has_startup = !init && container["startupProbe"].is_object();
    pod.set_container(init, idx, |status| {
        status["state"] = json!({"running": {"startedAt": started_at}});
        status["containerID"] = json!(cid);
        if let Some((image, _)) = &ctx.image {
            status["imageID"] = json!(image.id);
        }
        status["started"] = json!(!init && !has_startup);
        status["ready"] = json!(!init && !has_readiness && !has_startup);
    });
    pod.event(
        "Normal",
        "Started",
        &format!("Started container {name}"),
        Some(&name),
    );
    let (kill_tx, mut kill_rx) = mpsc::channel::<String>(1);
    let probe_task = if init {
        None
    } else {
        Some(tokio::spawn(probe_loop(
            pod.clone(),
            idx,
            container.clone(),
            kill_tx,
        )))
    };
    let mut stop = pod.stop.clone();
    let mut killed_by_probe = false;
    let mut redefined = None;
    let mut spec = pod.handle.spec.subscribe();
    let image = container["image"].as_str().unwrap_or("").to_string();
    let pod_grace = pod.spec["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    let (code, signal) = tokio::select! {
        exited = wait_child(&mut spawned.child) => exited,
        _ = wait_stop(&mut stop) => {
            let grace = pod.stopping().unwrap_or(0);
            let why = format!("Stopping container {name}");
            terminate(pod, &name, &mut spawned, grace, &why).await
        }
        Some(why) = kill_rx.recv() => {
            killed_by_probe = true;
            terminate(pod, &name, &mut spawned, pod_grace, &why).await
        }
        new_image = image_change(&mut spec, &name, &image), if !init => {
            redefined = Some(new_image);
            let why = format!("Container {name} definition changed, will be restarted");
            terminate(pod, &name, &mut spawned, pod_grace, &why).await
        }
    };
    if let Some(task) = probe_task {
        task.abort();
    }
    // Nothing of a container outlives its main process.
    signal_group(spawned.pid, libc::SIGKILL);
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut spawned.log_done).await;
    pod.handle
        .pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    pod.handle
        .programs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    pod.handle.ended.send_modify(|count| *count += 1);
    let finished = now();
    let message = if code != 0 && pod.stopping().is_none() && sandbox.is_none() {
        in_use_message(pod, &log)
    } else {
        None
    };
    if let Some(text) = &message {
        pod.event("Warning", "PortInUse", text, Some(&name));
    }
    pod.set_container(init, idx, |status| {
        let reason = if code == 0 { "Completed" } else { "Error" };
        let mut terminated = json!({"exitCode": code, "reason": reason, "startedAt": status["state"]["running"]["startedAt"], "finishedAt": finished, "containerID": status["containerID"]});
        if let Some(sig) = signal {
            terminated["signal"] = json!(sig);
        }
        if let Some(text) = message {
            terminated["message"] = json!(text);
        }
        status["state"] = json!({"terminated": terminated});
        status["ready"] = json!(false);
        status["started"] = json!(false);
    });
    Ok(Exit {
        code,
        signal,
        killed_by_probe,
        redefined,
    })
}

/// When a run ended after "address already in use", what to tell the
/// user: the port and what holds it (pods share this machine's network).
fn in_use_message(pod: &Pod, log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    // Log lines are `TIME STREAM TAG TEXT`; only the text counts.
    let output: String = String::from_utf8_lossy(&tail)
        .lines()
        .filter_map(|line| line.splitn(4, ' ').nth(3))
        .map(|line| format!("{line}\n"))
        .collect();
    let port = ports::address_in_use(&output)?;
    // Pods of the same controller (replicas) are the likely holders.
    let owner = |object: &Value| -> Option<String> {
        object["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|o| o["controller"] == true)
            .and_then(|o| o["uid"].as_str().map(String::from))
    };
    let siblings: Vec<String> = match owner(&pod.obj) {
        Some(mine) => pod
            .shared
            .store
            .list(resources::pods(), Some(&pod.handle.namespace))
            .0
            .iter()
            .filter(|other| owner(other).as_deref() == Some(mine.as_str()))
            .filter_map(|other| other["metadata"]["uid"].as_str().map(String::from))
            .collect(),
        None => Vec::new(),
    };
    Some(ports::explain_in_use(
        &pod.shared.kubelet,
        &pod.handle.uid,
        &siblings,
        port,
    ))
}

/// Stops a container as the kubelet does: SIGTERM to its program once,
/// the grace period, then SIGKILL. In a sandbox the program is PID 1 of its
/// own PID namespace and, as in any container, ignores SIGTERM unless it
/// handles it.
/// `why` is the `Killing` event's message, said once.
async fn terminate(
    pod: &Pod,
    name: &str,
    spawned: &mut Spawned,
    grace: i64,
    why: &str,
) -> (i32, Option<i32>) {
    if grace > 0 {
        pod.event("Normal", "Killing", why, Some(name));
        // The process between the kubelet and the program passes it on.
        signal_one(spawned.pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(grace as u64);
        if let Ok(exited) = tokio::time::timeout_at(deadline, wait_child(&mut spawned.child)).await
        {
            return exited;
        }
    }
    if pod.handle.sandbox().is_none() {
        // Without a sandbox, that process ends the program and everything
        // it started; the process group is the last resort.
        signal_one(spawned.pid, sandbox::end_all_signal());
        if let Ok(exited) =
            tokio::time::timeout(Duration::from_secs(5), wait_child(&mut spawned.child)).await
        {
            return exited;
        }
    }
    signal_group(spawned.pid, libc::SIGKILL);
    wait_child(&mut spawned.child).await
}

/// Drives startup, liveness and readiness probes of one container run.
async fn probe_loop(pod: Arc<Pod>, idx: usize, container: Value, kill: mpsc::Sender<String>) {
    let name = container["name"].as_str().unwrap_or("").to_string();
    let secs = |probe: &Value, key: &str, default: u64| {
        Duration::from_secs(probe[key].as_u64().unwrap_or(default))
    };
    let attempt = |probe: Value| probe_attempt(pod.clone(), container.clone(), probe);
    if container["startupProbe"].is_object() {
        let probe = container["startupProbe"].clone();
        tokio::time::sleep(secs(&probe, "initialDelaySeconds", 0)).await;
        let mut failures = 0;
        loop {
            match attempt(probe.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    pod.event(
                        "Warning",
                        "Unhealthy",
                        &format!("Startup probe failed: {e}"),
                        Some(&name),
                    );
                    if failures >= probe["failureThreshold"].as_u64().unwrap_or(3) {
                        let _ = kill
                            .send(format!(
                                "Container {name} failed startup probe, will be restarted"
                            ))
                            .await;
                        return;
                    }
                }
            }
            tokio::time::sleep(secs(&probe, "periodSeconds", 10)).await;
        }
        let has_readiness = container["readinessProbe"].is_object();
        pod.set_container(false, idx, |status| {
            status["started"] = json!(true);
            if !has_readiness {
                status["ready"] = json!(true);
            }
        });
    }
    let readiness = container["readinessProbe"].clone();
    let liveness = container["livenessProbe"].clone();
    let ready_task = readiness.is_object().then(|| {
        let pod = pod.clone();
        let name = name.clone();
        let container = container.clone();
        tokio::spawn(async move {
            let attempt = |probe: Value| probe_attempt(pod.clone(), container.clone(), probe);
            let probe = readiness;
            tokio::time::sleep(secs(&probe, "initialDelaySeconds", 0)).await;
            let (mut ok_n, mut fail_n, mut ready) = (0u64, 0u64, false);
            let mut said = String::new();
            loop {
                match attempt(probe.clone()).await {
                    Ok(()) => {
                        ok_n += 1;
                        fail_n = 0;
                        said.clear();
                        if !ready && ok_n >= probe["successThreshold"].as_u64().unwrap_or(1) {
                            ready = true;
                            pod.set_container(false, idx, |status| status["ready"] = json!(true));
                        }
                    }
                    Err(e) => {
                        fail_n += 1;
                        ok_n = 0;
                        // Said once per different reason, and on each
                        // failure of a ready container.
                        if said != e || ready {
                            said = e.clone();
                            pod.event(
                                "Warning",
                                "Unhealthy",
                                &format!("Readiness probe failed: {e}"),
                                Some(&name),
                            );
                        }
                        if ready && fail_n >= probe["failureThreshold"].as_u64().unwrap_or(3) {
                            ready = false;
                            pod.set_container(false, idx, |status| status["ready"] = json!(false));
                        }
                    }
                }
                tokio::time::sleep(secs(&probe, "periodSeconds", 10)).await;
            }
        })
    });
    if liveness.is_object() {
        let probe = liveness;
        tokio::time::sleep(secs(&probe, "initialDelaySeconds", 0)).await;
        let mut fail_n = 0;
        loop {
            match attempt(probe.clone()).await {
                Ok(()) => fail_n = 0,
                Err(e) => {
                    fail_n += 1;
                    pod.event(
                        "Warning",
                        "Unhealthy",
                        &format!("Liveness probe failed: {e}"),
                        Some(&name),
                    );
                    if fail_n >= probe["failureThreshold"].as_u64().unwrap_or(3) {
                        let _ = kill
                            .send(format!(
                                "Container {name} failed liveness probe, will be restarted"
                            ))
                            .await;
                        break;
                    }
                }
            }
            tokio::time::sleep(secs(&probe, "periodSeconds", 10)).await;
        }
    }
    if let Some(task) = ready_task {
        // Keep readiness running until this run ends (the task is aborted
        // with us).
        let _ = task.await;
    }
}

async fn probe_attempt(pod: Arc<Pod>, container: Value, probe: Value) -> Result<(), String> {
    let ip = pod
        .st()
        .pod_ip
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    if let Some(result) = probes::check_network(&pod.shared.kubelet, &ip, &probe, &container).await
    {
        // A program that listens on loopback only is told so.
        let hint = match (&result, pod.handle.sandbox(), container["name"].as_str()) {
            (Err(_), Some(_), Some(name)) => pod
                .handle
                .program_of(name)
                .zip(probes::probe_port(&probe, &container))
                .and_then(|(pid, port)| probes::loopback_hint(&probes::listening(pid), port)),
            _ => None,
        };
        return match (result, hint) {
            (Err(e), Some(hint)) => Err(format!("{e}: {hint}")),
            (result, _) => result,
        };
    }
    exec_probe(&pod, &container, &probe).await
}

async fn exec_probe(pod: &Pod, container: &Value, probe: &Value) -> Result<(), String> {
    let argv: Vec<String> = probe["exec"]["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    if argv.is_empty() {
        return Err("exec probe without a command".into());
    }
    let mut exec = exec_command(&pod.shared, &pod.handle, &pod.obj, container, argv)?;
    exec.command().stdout(Stdio::piped()).stderr(Stdio::piped());
    let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let child = exec
        .spawn()
        .map_err(|e| format!("cannot run the probe: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "command exited with {}: {}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
    }
}

/// A duration as Go prints a `time.Duration` truncated to milliseconds,
/// as the kubelet's messages show one: `0s`, `12ms`, `1.5s`, `2m3.004s`.
fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let minutes = millis / 60_000;
    let seconds = (millis % 60_000) / 1000;
    let fraction = format!("{:03}", millis % 1000);
    let fraction = fraction.trim_end_matches('0');
    let seconds = match fraction {
        "" => format!("{seconds}s"),
        _ => format!("{seconds}.{fraction}s"),
    };
    match minutes {
        0 => seconds,
        _ => format!("{minutes}m{seconds}"),
    }
}

async fn wait_stop(stop: &mut watch::Receiver<Option<i64>>) {
    let _ = stop.wait_for(|s| s.is_some()).await.map(|_| ());
}

/// The wait before a restart after `streak` crashes in a row, as the
/// kubelet's back-off: none for the first, then 10 s doubling to 5 min.
fn backoff(streak: u32) -> Duration {
    match streak {
        0 => Duration::ZERO,
        n => BACKOFF_START
            .saturating_mul(1u32 << (n - 1).min(6))
            .min(BACKOFF_MAX),
    }
}

/// Sleeps unless the pod stops first; true if it stopped.
async fn sleep_or_stop(pod: &Pod, duration: Duration) -> bool {
    let mut stop = pod.stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = wait_stop(&mut stop) => true,
    }
}

/// Supervises one container: runs, restarts with back-off, reports.
/// Returns the last exit code.
async fn supervise(pod: Arc<Pod>, init: bool, idx: usize, mut container: Value) -> i32 {
    let name = container["name"].as_str().unwrap_or("").to_string();
    let policy = pod.spec["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_string();
    let mut image = container["image"].as_str().unwrap_or("").to_string();
    // Counted on from before a restart of the cluster (see `reboot`).
    let mut restarts: i64 = {
        let st = pod.st();
        let list = if init { &st.init } else { &st.main };
        list.get(idx)
            .and_then(|status| status["restartCount"].as_i64())
            .unwrap_or(0)
    };
    let mut crash_streak: u32 = 0;
    let mut waiting_for_port: Option<String> = None;
    let mut announced = false;
    loop {
        if pod.stopping().is_some() {
            return 137;
        }
        if let Some(engine) = pod.shared.kubelet.engine().cloned() {
            let Some(obtained) = obtain_image(&pod, &engine, init, idx, &container).await else {
                return 137;
            };
            pod.handle
                .images
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), obtained);
        } else if !announced {
            let policy = container["imagePullPolicy"]
                .as_str()
                .unwrap_or("IfNotPresent");
            if !pod.pull(&name, &image, policy).await {
                return 137;
            }
        }
        if !announced {
            announced = true;
            pod.event(
                "Normal",
                "Created",
                &format!("Created container: {name}"),
                Some(&name),
            );
        }
        let began = Instant::now();
        let exit = match run_once(&pod, init, idx, &container, restarts).await {
            Ok(exit) => exit,
            Err(NotStarted::PortInUse(msg)) => {
                // Waiting for another pod to give the port back, as a pod
                // with a host port another pod holds waits for the
                // scheduler: said once per holder, checked every second.
                if waiting_for_port.as_deref() != Some(msg.as_str()) {
                    let message = format!(
                        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. {msg}"
                    );
                    pod.event("Warning", "FailedScheduling", &message, None);
                    pod.unplaced(message);
                    waiting_for_port = Some(msg);
                }
                if sleep_or_stop(&pod, Duration::from_secs(1)).await {
                    return 137;
                }
                continue;
            }
            Err(not_started) => {
                let (reason, msg) = (not_started.reason(), not_started.message());
                pod.event("Warning", "Failed", &format!("Error: {msg}"), Some(&name));
                if let NotStarted::Run(_) = not_started {
                    // As the kubelet reports a process that could not
                    // start: terminated, StartError, exit code 128.
                    let finished = now();
                    pod.set_container(init, idx, |status| {
                        status["state"] = json!({"terminated": {
                            "exitCode": 128, "reason": "StartError", "message": msg,
                            "startedAt": "1970-01-01T00:00:00Z", "finishedAt": finished,
                        }});
                        status["ready"] = json!(false);
                        status["started"] = json!(false);
                    });
                } else {
                    pod.set_container(init, idx, |status| {
                        status["state"] = json!({"waiting": {"reason": reason, "message": msg}})
                    });
                }
                if matches!(not_started, NotStarted::Config(_)) {
                    if sleep_or_stop(&pod, Duration::from_secs(2)).await {
                        return 137;
                    }
                    continue;
                }
                Exit {
                    code: 128,
                    signal: None,
                    killed_by_probe: false,
                    redefined: None,
                }
            }
        };
        if pod.stopping().is_some() {
            return exit.code;
        }
        if let Some(new_image) = exit.redefined {
            // A new definition runs at once, whatever the policy, with no
            // back-off (the kubelet keys back-off by definition).
            image = new_image.clone();
            container["image"] = json!(new_image);
            restarts += 1;
            crash_streak = 0;
            announced = false;
            pod.set_container(init, idx, |status| {
                status["lastState"] = json!({"terminated": status["state"]["terminated"].clone()});
                status["image"] = json!(new_image);
                status["restartCount"] = json!(restarts);
            });
            continue;
        }
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => exit.code != 0 || exit.killed_by_probe,
            _ => !init || exit.code != 0,
        };
        let _ = exit.signal;
        if !restart {
            return exit.code;
        }
        if began.elapsed() > Duration::from_secs(600) {
            crash_streak = 0;
        }
        let delay = backoff(crash_streak);
        crash_streak += 1;
        if delay.is_zero() {
            pod.set_container(init, idx, |status| {
                status["lastState"] = json!({"terminated": status["state"]["terminated"].clone()});
            });
        } else {
            let msg = format!(
                "back-off {}s restarting failed container={name} pod={}_{}({})",
                delay.as_secs(),
                pod.handle.name,
                pod.handle.namespace,
                pod.handle.uid
            );
            pod.set_container(init, idx, |status| {
                status["lastState"] = json!({"terminated": status["state"]["terminated"].clone()});
                status["state"] =
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": msg}});
            });
            pod.event(
                "Warning",
                "BackOff",
                &format!(
                    "Back-off restarting failed container {name} in pod {}_{}({})",
                    pod.handle.name, pod.handle.namespace, pod.handle.uid
                ),
                Some(&name),
            );
            if sleep_or_stop(&pod, delay).await {
                return exit.code;
            }
        }
        restarts += 1;
        pod.set_container(init, idx, |status| status["restartCount"] = json!(restarts));
    }
}

/// A container's image through the engine, as the kubelet gets it: as its
/// `imagePullPolicy` says, with `ErrImagePull` (the engine's message),
/// then `ImagePullBackOff` and a retry after a back-off (10 s doubling to
/// 5 min) while it cannot be had. None once the pod is stopping.
async fn obtain_image(
    pod: &Arc<Pod>,
    engine: &super::images::Engine,
    init: bool,
    idx: usize,
    container: &Value,
) -> Option<Arc<super::images::Image>> {
    use super::images::{ImageError, Obtained};
    let name = container["name"].as_str().unwrap_or("").to_string();
    let reference = container["image"].as_str().unwrap_or("").to_string();
    let policy = container["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent")
        .to_string();
    let mut failures = 0;
    loop {
        if pod.stopping().is_some() {
            return None;
        }
        let (reason, message) = match engine.image(&reference, &policy).await {
            Ok((image, Obtained::AlreadyPresent)) => {
                pod.event(
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{reference}\" already present on machine"),
                    Some(&name),
                );
                return Some(image);
            }
            Ok((image, Obtained::Pulled(took))) => {
                pod.event(
                    "Normal",
                    "Pulling",
                    &format!("Pulling image \"{reference}\""),
                    Some(&name),
                );
                pod.event(
                    "Normal",
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{reference}\" in {:.3}s",
                        took.as_secs_f64()
                    ),
                    Some(&name),
                );
                return Some(image);
            }
            Err(ImageError::NeverPull(message)) => {
                pod.event("Warning", "ErrImageNeverPull", &message, Some(&name));
                ("ErrImageNeverPull", message)
            }
            Err(ImageError::Pull(message) | ImageError::Unpack(message)) => {
                pod.event(
                    "Normal",
                    "Pulling",
                    &format!("Pulling image \"{reference}\""),
                    Some(&name),
                );
                pod.event(
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{reference}\": {message}"),
                    Some(&name),
                );
                pod.event("Warning", "Failed", "Error: ErrImagePull", Some(&name));
                ("ErrImagePull", message)
            }
        };
        pod.set_container(init, idx, |status| {
            status["state"] = json!({"waiting": {"reason": reason, "message": message}})
        });
        // The next sync finds the image in back-off.
        if sleep_or_stop(pod, Duration::from_secs(1)).await {
            return None;
        }
        if reason == "ErrImagePull" {
            let said = format!("Back-off pulling image \"{reference}\": ErrImagePull: {message}");
            pod.set_container(init, idx, |status| {
                status["state"] =
                    json!({"waiting": {"reason": "ImagePullBackOff", "message": said}})
            });
            pod.event(
                "Normal",
                "BackOff",
                &format!("Back-off pulling image \"{reference}\""),
                Some(&name),
            );
            pod.event("Warning", "Failed", "Error: ImagePullBackOff", Some(&name));
        }
        // Image pulls back off from the first failure: 10 s doubling to 5 min.
        if sleep_or_stop(pod, backoff(failures + 1)).await {
            return None;
        }
        failures += 1;
    }
}

/// Tries a step of a pod's setup until it succeeds, every 2 s, each
/// failure a Warning event `reason` (its message from `describe`), as the
/// kubelet does; None once the pod is stopping.
async fn keep_trying<T>(
    pod: &Pod,
    reason: &str,
    describe: impl Fn(&str) -> String,
    mut step: impl FnMut() -> Result<T, String>,
) -> Option<T> {
    loop {
        match step() {
            Ok(value) => return Some(value),
            Err(e) => {
                pod.event("Warning", reason, &describe(&e), None);
                if sleep_or_stop(pod, Duration::from_secs(2)).await {
                    return None;
                }
            }
        }
    }
}

/// Runs a pod from start to deletion.
pub async fn run_pod(shared: Arc<Shared>, handle: Arc<PodHandle>, obj: Value) {
    let spec = obj["spec"].clone();
    let inits: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mains: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
    // A pod from before a restart of the cluster starts again as after a
    // node's reboot, unless its restartPolicy is Never.
    let rebooted = reboot::ran_before(&obj);
    let never_again = rebooted && spec["restartPolicy"] == "Never";
    // The pod's address before a restart, if it is still free.
    let wanted: Option<std::net::Ipv4Addr> = obj["status"]["podIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok())
        .filter(|_| rebooted);
    let carry = |list: &str, fresh: Value| match (rebooted, never_again) {
        (false, _) => fresh,
        (true, false) => reboot::restarted(&obj, list, fresh),
        (true, true) => reboot::ended(&obj, list, fresh),
    };
    let status = Status {
        init: inits
            .iter()
            .map(|c| carry(reboot::LISTS[0], waiting(c, "PodInitializing", None)))
            .collect(),
        main: mains
            .iter()
            .map(|container| {
                let fresh = waiting(
                    container,
                    if inits.is_empty() {
                        "ContainerCreating"
                    } else {
                        "PodInitializing"
                    },
                    None,
                );
                carry(reboot::LISTS[1], fresh)
            })
            .collect(),
        initialized: inits.is_empty(),
        phase: if never_again { "Failed" } else { "Pending" }.into(),
        start_time: match obj["status"]["startTime"].as_str() {
            Some(started) if rebooted => started.to_string(),
            _ => now(),
        },
        message: None,
        unschedulable: None,
        pod_ip: None,
        host_ip: match shared.kubelet.node() {
            Some(_) => super::network::NODE_IP.to_string(),
            None => "127.0.0.1".to_string(),
        },
    };
    let pod = Arc::new(Pod {
        shared: shared.clone(),
        stop: handle.stop.subscribe(),
        handle: handle.clone(),
        spec,
        obj,
        st: Mutex::new(status),
    });
    if never_again {
        {
            let mut st = pod.st();
            st.message = Some((
                reboot::NEVER_AGAIN.0.to_string(),
                reboot::NEVER_AGAIN.1.to_string(),
            ));
            st.pod_ip = wanted.map(|ip| ip.to_string());
        }
        pod.publish();
        finish(&pod).await;
        return;
    }
    let _ = std::fs::create_dir_all(&handle.dir);
    pod.publish();
    if rebooted {
        let (reason, message) = reboot::SANDBOX_CHANGED;
        pod.event("Normal", reason, message, None);
    }
    // The sandbox: namespaces and an address, or processes run directly.
    let Some(sandbox) = keep_trying(
        &pod,
        "FailedCreatePodSandBox",
        |e| format!("Failed to create pod sandbox: {e}"),
        || shared.kubelet.make_sandbox(&handle.name, wanted),
    )
    .await
    else {
        finish(&pod).await;
        return;
    };
    pod.st().pod_ip = Some(match &sandbox {
        Some(sb) => sb.ip.to_string(),
        None => "127.0.0.1".to_string(),
    });
    *handle.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = sandbox;
    pod.publish();
    let node = shared.kubelet.node();
    for said in
        super::security::not_applied(&pod.spec, node.is_some_and(|n| n.every_id), node.is_some())
    {
        pod.event("Warning", "SettingNotApplied", &said, None);
    }
    // Volumes: wait for missing sources as the kubelet does.
    let materialised = keep_trying(
        &pod,
        "FailedMount",
        |e| format!("MountVolume.SetUp failed: {e}"),
        || volumes::materialise(&shared.store, &pod.obj, &handle.dir),
    )
    .await;
    if materialised.is_none() {
        finish(&pod).await;
        return;
    }
    let mut ok = true;
    for (i, container) in inits.iter().enumerate() {
        let code = supervise(pod.clone(), true, i, container.clone()).await;
        if pod.stopping().is_some() {
            ok = false;
            break;
        }
        if code != 0 {
            pod.st().phase = "Failed".into();
            pod.publish();
            ok = false;
            break;
        }
    }
    if ok {
        pod.st().initialized = true;
        pod.publish();
        let tasks: Vec<_> = mains
            .iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(supervise(pod.clone(), false, i, c.clone())))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        pod.publish();
    }
    finish(&pod).await;
}

/// After the processes: give up the sandbox, wait for deletion, then
/// remove the pod.
async fn finish(pod: &Pod) {
    pod.handle
        .sandbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let mut stop = pod.stop.clone();
    wait_stop(&mut stop).await;
    pod.shared
        .store
        .remove(resources::pods(), &pod.handle.namespace, &pod.handle.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_kubelet_s_messages_print_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::from_micros(300)), "0s");
        assert_eq!(go_duration(ms(12)), "12ms");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(15_981)), "15.981s");
        assert_eq!(go_duration(ms(123_004)), "2m3.004s");
        assert_eq!(go_duration(ms(60_000)), "1m0s");
    }
}
