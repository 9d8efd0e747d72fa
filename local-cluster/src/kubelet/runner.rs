//! Running one pod: volumes, init containers in order, then every container
//! under a supervisor with restartPolicy and back-off (10 s doubling to
//! 5 min), probes, logs (CRI format, one file per run), status reporting,
//! and termination (SIGTERM to the process group, grace period, SIGKILL).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use std::os::fd::{AsRawFd, OwnedFd};

use super::mount_view::MountPlan;
use super::volumes::{self, Mount};
use super::{PodHandle, PodSandbox, env, ports, probes, sandbox};
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
    /// The pod's address once its sandbox exists (127.0.0.1 without one).
    pod_ip: Option<String>,
    host_ip: String,
}

struct Pod {
    shared: Arc<Shared>,
    h: Arc<PodHandle>,
    spec: Value,
    obj: Value,
    st: Mutex<Status>,
    stop: watch::Receiver<Option<i64>>,
}

fn waiting(c: &Value, reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({"reason": reason});
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({
        "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
        "restartCount": 0, "state": {"waiting": w}, "lastState": {},
    })
}

impl Pod {
    fn st(&self) -> std::sync::MutexGuard<'_, Status> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, type_: &str, reason: &str, msg: &str, container: Option<&str>) {
        let fp = container.map(|c| format!("spec.containers{{{c}}}"));
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

    fn stopping(&self) -> Option<i64> {
        *self.stop.borrow()
    }

    fn set_container(&self, init: bool, idx: usize, f: impl FnOnce(&mut Value)) {
        {
            let mut st = self.st();
            let list = if init { &mut st.init } else { &mut st.main };
            if let Some(c) = list.get_mut(idx) {
                f(c);
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
        let cond = |t: &str, ok: bool, reason: Option<&str>| {
            let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now_s});
            if let Some(r) = reason.filter(|_| !ok) {
                c["reason"] = json!(r);
            }
            c
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
            cond("PodScheduled", true, None),
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
        let uid = self.h.uid.clone();
        let _ = self
            .shared
            .store
            .modify(resources::pods(), &self.h.namespace, &self.h.name, |p| {
                if p["metadata"]["uid"] != uid.as_str() {
                    return Err(crate::error::ApiError::conflict("pods", ""));
                }
                // Keep transition times of conditions whose status did not change.
                let mut status = status;
                if let (Some(new), Some(old)) = (
                    status["conditions"].as_array_mut(),
                    p["status"]["conditions"].as_array(),
                ) {
                    for c in new.iter_mut() {
                        if let Some(o) = old
                            .iter()
                            .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
                        {
                            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                        }
                    }
                }
                p["status"] = status;
                Ok(())
            });
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
    /// The capabilities its processes may have (a bounding set).
    capabilities: u64,
    /// Its root file system is read-only.
    read_only_root: bool,
}

fn base_env(pod_name: &str) -> Vec<(String, String)> {
    let mut v = vec![
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
    for k in ["LANG", "LC_ALL", "TZ", "USER"] {
        if let Ok(val) = std::env::var(k) {
            v.push((k.to_string(), val));
        }
    }
    v
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
    for m in by_depth {
        let target = m.target.trim_end_matches('/');
        if target.is_empty() {
            continue;
        }
        let host = m.host.to_string_lossy();
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(target) {
            let before_ok = i == 0
                || !rest[..i].ends_with(|c: char| {
                    c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '/'
                });
            let after = &rest[i + target.len()..];
            let after_ok = after.is_empty()
                || after.starts_with(|c: char| {
                    !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
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
    h: &PodHandle,
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
                    let root = h.dir.join("rootfs");
                    let _ = std::fs::create_dir_all(&root);
                    let mut files = Vec::new();
                    if let Some(hosts) = &ctx.hosts {
                        files.push((hosts.clone(), "/etc/hosts"));
                        let resolv = hosts.with_file_name("resolv.conf");
                        if std::fs::write(&resolv, super::network::resolv_conf(&h.namespace))
                            .is_ok()
                        {
                            files.push((resolv, "/etc/resolv.conf"));
                        }
                    }
                    sandbox::JoinHow::Container(MountPlan::new(
                        &root,
                        &ctx.mounts,
                        Path::new(&ctx.workdir),
                        &files,
                        ctx.read_only_root,
                    ))
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
            for m in &ctx.mounts {
                if let Ok(rel) = Path::new(&ctx.workdir).strip_prefix(&m.target) {
                    wd = m.host.join(rel);
                }
            }
            if !wd.is_dir() {
                wd = h.dir.to_path_buf();
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

/// Starts a process whose stdout and stderr go, line by line with
/// timestamps, to `log`.
fn spawn_logged(
    h: &PodHandle,
    sandbox: Option<&PodSandbox>,
    ctx: &Ctx,
    log: &Path,
) -> Result<Spawned, String> {
    let mut prepared = build_command(h, sandbox, ctx, Entry::Container)?;
    prepared.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if ctx.stdin {
        prepared.cmd.stdin(Stdio::piped());
    }
    let (mut child, program) = prepared
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", ctx.argv[0]))?;
    let pid = child.id().unwrap_or(0);
    let (tx, mut rx) = mpsc::channel::<(&'static str, Vec<u8>)>(256);
    for (stream, reader) in [
        (
            "stdout",
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
        (
            "stderr",
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
    ] {
        let Some(reader) = reader else { continue };
        let tx = tx.clone();
        tokio::spawn(log_lines(stream, reader, tx));
    }
    drop(tx);
    let log = log.to_path_buf();
    let log_done = tokio::spawn(async move {
        // Plain writes: appending a line to the page cache does not block,
        // and it keeps log traffic off the blocking thread pool.
        use std::io::Write;
        let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        else {
            return;
        };
        while let Some((stream, mut line)) = rx.recv().await {
            let tag = if line.ends_with(b"\n") {
                line.pop();
                "F"
            } else {
                "P"
            };
            let ts = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%S.%9fZ")
                .to_string();
            let mut out = format!("{ts} {stream} {tag} ").into_bytes();
            out.extend_from_slice(&line);
            out.push(b'\n');
            let _ = f.write_all(&out);
        }
    });
    Ok(Spawned {
        child,
        pid,
        program,
        log_done,
    })
}

/// How long output without a newline waits for the rest of its line before
/// it is logged as a partial line (a prompt waiting for input).
const PARTIAL_AFTER: Duration = Duration::from_millis(100);

/// Sends a stream's output as lines (ending in `\n`) and, when the output
/// pauses mid-line, as partial lines (without).
async fn log_lines(
    stream: &'static str,
    mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    tx: mpsc::Sender<(&'static str, Vec<u8>)>,
) {
    use tokio::io::AsyncReadExt;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = if pending.is_empty() {
            reader.read(&mut buf).await
        } else {
            // `read` is cancel-safe: nothing is lost when the wait ends first.
            match tokio::time::timeout(PARTIAL_AFTER, reader.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    if tx
                        .send((stream, std::mem::take(&mut pending)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => {
                if !pending.is_empty() {
                    let _ = tx.send((stream, pending)).await;
                }
                return;
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if tx.send((stream, line)).await.is_err() {
                return;
            }
        }
    }
}

fn container_ctx(pod: &Pod, c: &Value) -> Result<Ctx, (String, String)> {
    ctx_for(&pod.shared, &pod.obj, &pod.h, c)
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
    h: &PodHandle,
    obj: &Value,
    c: &Value,
    argv: Vec<String>,
) -> Result<ExecCommand, String> {
    let mut ctx = match ctx_for(shared, obj, h, c) {
        Ok(ctx) => ctx,
        // A container without a command still accepts exec.
        Err((_, _)) if c["command"].is_null() && c["args"].is_null() => {
            let mut c = c.clone();
            c["command"] = json!(["true"]);
            ctx_for(shared, obj, h, &c).map_err(|(_, m)| m)?
        }
        Err((_, m)) => return Err(m),
    };
    if argv.is_empty() {
        return Err("no command given".into());
    }
    ctx.argv = argv;
    ctx.stdin = false;
    let sandbox = h.sandbox();
    let entry = match &sandbox {
        Some(_) => {
            let name = c["name"].as_str().unwrap_or("");
            let program = h
                .program_of(name)
                .ok_or_else(|| format!("container {name} is not running"))?;
            Entry::Exec { program }
        }
        None => Entry::Container,
    };
    let mut prepared = build_command(h, sandbox.as_deref(), &ctx, entry)?;
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
    for s in &svcs {
        let (Some(name), Some(sns), Some(ip)) = (
            s["metadata"]["name"].as_str(),
            s["metadata"]["namespace"].as_str(),
            s["spec"]["clusterIP"]
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
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .ok()?;
    f.write_all(text.as_bytes()).ok()?;
    Some(path)
}

fn ctx_for(
    shared: &Shared,
    obj: &Value,
    h: &PodHandle,
    c: &Value,
) -> Result<Ctx, (String, String)> {
    let mut argv: Vec<String> = Vec::new();
    let mut obj = obj.clone();
    if let Some(sb) = h.sandbox() {
        obj["status"]["podIP"] = json!(sb.ip.to_string());
        obj["status"]["hostIP"] = json!(super::network::NODE_IP.to_string());
    }
    let obj = &obj;
    let vars = env::build(&shared.store, obj, c)
        .map_err(|e| ("CreateContainerConfigError".to_string(), e))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(|s| env::expand(s, &vars)))
            .collect()
    };
    argv.extend(strs(&c["command"]));
    argv.extend(strs(&c["args"]));
    if argv.is_empty() {
        return Err((
            "CreateContainerError".into(),
            "no command specified: the local cluster cannot read an image's entrypoint; give the container a command".into(),
        ));
    }
    let mut env_all = base_env(&h.name);
    env_all.extend(env::service_env(&shared.store, obj));
    env_all.extend(vars);
    let mounts = volumes::mounts(c, &h.dir);
    let workdir = c["workingDir"]
        .as_str()
        .filter(|s| s.starts_with('/'))
        .map(String::from);
    let workdir = workdir.unwrap_or_else(|| h.dir.join("root").to_string_lossy().to_string());
    Ok(Ctx {
        argv,
        env: env_all,
        mounts,
        workdir,
        stdin: c["stdin"].as_bool().unwrap_or(false),
        hosts: shared
            .kubelet
            .node()
            .and_then(|_| write_hosts(shared, obj, &h.dir)),
        run_as: shared
            .kubelet
            .node()
            .filter(|node| node.every_id)
            .and_then(|_| super::security::run_as(&obj["spec"], c)),
        capabilities: super::security::capabilities(c),
        read_only_root: super::security::read_only_root(c),
    })
}

/// Result of one run of a container.
struct Exit {
    code: i32,
    signal: Option<i32>,
    killed_by_probe: bool,
}

async fn wait_child(child: &mut Child) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match child.wait().await {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (c, None),
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
    c: &Value,
    restart: i64,
) -> Result<Exit, (String, String)> {
    let name = c["name"].as_str().unwrap_or("").to_string();
    let ctx = container_ctx(pod, c)?;
    // Declared ports are this machine's ports: one running container each.
    let holder = ports::Holder {
        uid: pod.h.uid.clone(),
        pod: format!("{}/{}", pod.h.namespace, pod.h.name),
        container: name.clone(),
    };
    let sandbox = pod.h.sandbox();
    // Without a sandbox, declared ports are this machine's ports.
    let declared = if sandbox.is_some() {
        Vec::new()
    } else {
        ports::declared(c)
    };
    let _ports = pod
        .shared
        .kubelet
        .reserve_ports(holder, declared)
        .map_err(|(k, h)| ("PortInUse".to_string(), ports::waiting_message(&k, &h)))?;
    let log_dir = pod.h.dir.join("logs").join(&name);
    let _ = std::fs::create_dir_all(&log_dir);
    let _ = std::fs::create_dir_all(pod.h.dir.join("root"));
    if sandbox.is_none() {
        let _ = std::fs::create_dir_all(&ctx.workdir);
    }
    let log = log_dir.join(format!("{restart}.log"));
    let mut sp = spawn_logged(&pod.h, sandbox.as_deref(), &ctx, &log)
        .map_err(|e| ("RunContainerError".to_string(), e))?;
    pod.h
        .logs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.clone())
        .or_default()
        .push(log.clone());
    {
        let mut stdins = pod.h.stdin.lock().unwrap_or_else(|e| e.into_inner());
        match sp.child.stdin.take() {
            Some(w) => {
                stdins.insert(name.clone(), super::stdin::stdin_task(w));
            }
            None => {
                stdins.remove(&name);
            }
        }
    }
    pod.h
        .pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.clone(), sp.pid);
    if let Some(program) = sp.program {
        pod.h
            .programs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), program);
    }
    let started_at = now();
    let cid = format!("kubesh://{}-{}-{restart}", pod.h.uid, name);
    let has_readiness = !init && c["readinessProbe"].is_object();
    let has_startup = !init && c["startupProbe"].is_object();
    pod.set_container(init, idx, |s| {
        s["state"] = json!({"running": {"startedAt": started_at}});
        s["containerID"] = json!(cid);
        s["started"] = json!(!init && !has_startup);
        s["ready"] = json!(!init && !has_readiness && !has_startup);
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
            c.clone(),
            kill_tx,
        )))
    };
    let mut stop = pod.stop.clone();
    let mut killed_by_probe = false;
    let (code, signal) = tokio::select! {
        r = wait_child(&mut sp.child) => r,
        _ = wait_stop(&mut stop) => {
            let grace = pod.stopping().unwrap_or(0);
            terminate(pod, &name, &mut sp, grace).await
        }
        Some(reason) = kill_rx.recv() => {
            killed_by_probe = true;
            pod.event("Normal", "Killing", &reason, Some(&name));
            let grace = pod.spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
            terminate(pod, &name, &mut sp, grace).await
        }
    };
    if let Some(t) = probe_task {
        t.abort();
    }
    // Nothing of a container outlives its main process.
    signal_group(sp.pid, libc::SIGKILL);
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut sp.log_done).await;
    pod.h
        .pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    pod.h
        .programs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    let finished = now();
    let message = if code != 0 && pod.stopping().is_none() && sandbox.is_none() {
        in_use_message(pod, &log)
    } else {
        None
    };
    if let Some(m) = &message {
        pod.event("Warning", "PortInUse", m, Some(&name));
    }
    pod.set_container(init, idx, |s| {
        let reason = if code == 0 { "Completed" } else { "Error" };
        let mut t = json!({"exitCode": code, "reason": reason, "startedAt": s["state"]["running"]["startedAt"], "finishedAt": finished, "containerID": s["containerID"]});
        if let Some(sig) = signal {
            t["signal"] = json!(sig);
        }
        if let Some(m) = message {
            t["message"] = json!(m);
        }
        s["state"] = json!({"terminated": t});
        s["ready"] = json!(false);
        s["started"] = json!(false);
    });
    Ok(Exit {
        code,
        signal,
        killed_by_probe,
    })
}

/// When a run ended after "address already in use", what to tell the
/// user: the port and what holds it (pods share this machine's network).
fn in_use_message(pod: &Pod, log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    // Log lines are `TIME STREAM TAG TEXT`; only the text counts.
    let output: String = String::from_utf8_lossy(&tail)
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .map(|l| format!("{l}\n"))
        .collect();
    let port = ports::address_in_use(&output)?;
    // Pods of the same controller (replicas) are the likely holders.
    let owner = |p: &Value| -> Option<String> {
        p["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|o| o["controller"] == true)
            .and_then(|o| o["uid"].as_str().map(String::from))
    };
    let siblings: Vec<String> = match owner(&pod.obj) {
        Some(mine) => pod
            .shared
            .store
            .list(resources::pods(), Some(&pod.h.namespace))
            .0
            .iter()
            .filter(|p| owner(p).as_deref() == Some(mine.as_str()))
            .filter_map(|p| p["metadata"]["uid"].as_str().map(String::from))
            .collect(),
        None => Vec::new(),
    };
    Some(ports::explain_in_use(
        &pod.shared.kubelet,
        &pod.h.uid,
        &siblings,
        port,
    ))
}

/// Stops a container as the kubelet does: SIGTERM to its program once,
/// the grace period, then SIGKILL. In a sandbox the program is PID 1 of its
/// own PID namespace and, as in any container, ignores SIGTERM unless it
/// handles it.
async fn terminate(pod: &Pod, name: &str, sp: &mut Spawned, grace: i64) -> (i32, Option<i32>) {
    if grace > 0 {
        pod.event(
            "Normal",
            "Killing",
            &format!("Stopping container {name}"),
            Some(name),
        );
        // The process between the kubelet and the program passes it on.
        signal_one(sp.pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(grace as u64);
        if let Ok(r) = tokio::time::timeout_at(deadline, wait_child(&mut sp.child)).await {
            return r;
        }
    }
    if pod.h.sandbox().is_none() {
        // Without a sandbox, that process ends the program and everything
        // it started; the process group is the last resort.
        signal_one(sp.pid, sandbox::end_all_signal());
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(5), wait_child(&mut sp.child)).await
        {
            return r;
        }
    }
    signal_group(sp.pid, libc::SIGKILL);
    wait_child(&mut sp.child).await
}

/// Drives startup, liveness and readiness probes of one container run.
async fn probe_loop(pod: Arc<Pod>, idx: usize, c: Value, kill: mpsc::Sender<String>) {
    let name = c["name"].as_str().unwrap_or("").to_string();
    let secs = |p: &Value, k: &str, d: u64| Duration::from_secs(p[k].as_u64().unwrap_or(d));
    let attempt = |p: Value| probe_attempt(pod.clone(), c.clone(), p);
    if c["startupProbe"].is_object() {
        let p = c["startupProbe"].clone();
        tokio::time::sleep(secs(&p, "initialDelaySeconds", 0)).await;
        let mut failures = 0;
        loop {
            match attempt(p.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    pod.event(
                        "Warning",
                        "Unhealthy",
                        &format!("Startup probe failed: {e}"),
                        Some(&name),
                    );
                    if failures >= p["failureThreshold"].as_u64().unwrap_or(3) {
                        let _ = kill
                            .send(format!(
                                "Container {name} failed startup probe, will be restarted"
                            ))
                            .await;
                        return;
                    }
                }
            }
            tokio::time::sleep(secs(&p, "periodSeconds", 10)).await;
        }
        let has_readiness = c["readinessProbe"].is_object();
        pod.set_container(false, idx, |s| {
            s["started"] = json!(true);
            if !has_readiness {
                s["ready"] = json!(true);
            }
        });
    }
    let readiness = c["readinessProbe"].clone();
    let liveness = c["livenessProbe"].clone();
    let ready_task = readiness.is_object().then(|| {
        let pod = pod.clone();
        let name = name.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let attempt = |p: Value| probe_attempt(pod.clone(), c.clone(), p);
            let p = readiness;
            tokio::time::sleep(secs(&p, "initialDelaySeconds", 0)).await;
            let (mut ok_n, mut fail_n, mut ready) = (0u64, 0u64, false);
            let mut said = String::new();
            loop {
                match attempt(p.clone()).await {
                    Ok(()) => {
                        ok_n += 1;
                        fail_n = 0;
                        said.clear();
                        if !ready && ok_n >= p["successThreshold"].as_u64().unwrap_or(1) {
                            ready = true;
                            pod.set_container(false, idx, |s| s["ready"] = json!(true));
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
                        if ready && fail_n >= p["failureThreshold"].as_u64().unwrap_or(3) {
                            ready = false;
                            pod.set_container(false, idx, |s| s["ready"] = json!(false));
                        }
                    }
                }
                tokio::time::sleep(secs(&p, "periodSeconds", 10)).await;
            }
        })
    });
    if liveness.is_object() {
        let p = liveness;
        tokio::time::sleep(secs(&p, "initialDelaySeconds", 0)).await;
        let mut fail_n = 0;
        loop {
            match attempt(p.clone()).await {
                Ok(()) => fail_n = 0,
                Err(e) => {
                    fail_n += 1;
                    pod.event(
                        "Warning",
                        "Unhealthy",
                        &format!("Liveness probe failed: {e}"),
                        Some(&name),
                    );
                    if fail_n >= p["failureThreshold"].as_u64().unwrap_or(3) {
                        let _ = kill
                            .send(format!(
                                "Container {name} failed liveness probe, will be restarted"
                            ))
                            .await;
                        break;
                    }
                }
            }
            tokio::time::sleep(secs(&p, "periodSeconds", 10)).await;
        }
    }
    if let Some(t) = ready_task {
        // Keep readiness running until this run ends (the task is aborted
        // with us).
        let _ = t.await;
    }
}

async fn probe_attempt(pod: Arc<Pod>, c: Value, p: Value) -> Result<(), String> {
    let ip = pod
        .st()
        .pod_ip
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    if let Some(r) = probes::check_network(&pod.shared.kubelet, &ip, &p, &c).await {
        // A program that listens on loopback only is told so.
        let hint = match (&r, pod.h.sandbox(), c["name"].as_str()) {
            (Err(_), Some(_), Some(name)) => pod
                .h
                .program_of(name)
                .zip(probes::probe_port(&p, &c))
                .and_then(|(pid, port)| probes::loopback_hint(&probes::listening(pid), port)),
            _ => None,
        };
        return match (r, hint) {
            (Err(e), Some(hint)) => Err(format!("{e}: {hint}")),
            (r, _) => r,
        };
    }
    exec_probe(&pod, &c, &p).await
}

async fn exec_probe(pod: &Pod, c: &Value, p: &Value) -> Result<(), String> {
    let argv: Vec<String> = p["exec"]["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    if argv.is_empty() {
        return Err("exec probe without a command".into());
    }
    let mut exec = exec_command(&pod.shared, &pod.h, &pod.obj, c, argv)?;
    exec.command().stdout(Stdio::piped()).stderr(Stdio::piped());
    let timeout = Duration::from_secs(p["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
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

async fn wait_stop(stop: &mut watch::Receiver<Option<i64>>) {
    let _ = stop.wait_for(|s| s.is_some()).await.map(|_| ());
}

fn backoff(restarts: u32) -> Duration {
    let d = BACKOFF_START.saturating_mul(1u32 << restarts.min(6));
    d.min(BACKOFF_MAX)
}

/// Sleeps unless the pod stops first; true if it stopped.
async fn sleep_or_stop(pod: &Pod, d: Duration) -> bool {
    let mut stop = pod.stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = wait_stop(&mut stop) => true,
    }
}

/// Supervises one container: runs, restarts with back-off, reports.
/// Returns the last exit code.
async fn supervise(pod: Arc<Pod>, init: bool, idx: usize, c: Value) -> i32 {
    let name = c["name"].as_str().unwrap_or("").to_string();
    let policy = pod.spec["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_string();
    let image = c["image"].as_str().unwrap_or("").to_string();
    let mut restarts: i64 = 0;
    let mut crash_streak: u32 = 0;
    let mut waiting_for_port: Option<String> = None;
    let mut announced = false;
    loop {
        if pod.stopping().is_some() {
            return 137;
        }
        if !announced {
            announced = true;
            pod.event(
                "Normal",
                "Pulled",
                &format!("Container image \"{image}\" recorded, not pulled: the command runs from this machine"),
                Some(&name),
            );
            pod.event(
                "Normal",
                "Created",
                &format!("Created container: {name}"),
                Some(&name),
            );
        }
        let began = Instant::now();
        let exit = match run_once(&pod, init, idx, &c, restarts).await {
            Ok(e) => e,
            Err((reason, msg)) if reason == "PortInUse" => {
                // Waiting for another pod to give the port back: said once
                // per holder, checked again every second.
                if waiting_for_port.as_deref() != Some(msg.as_str()) {
                    pod.event("Warning", "PortInUse", &msg, Some(&name));
                    pod.set_container(init, idx, |s| {
                        s["state"] = json!({"waiting": {"reason": reason, "message": msg}})
                    });
                    waiting_for_port = Some(msg);
                }
                if sleep_or_stop(&pod, Duration::from_secs(1)).await {
                    return 137;
                }
                continue;
            }
            Err((reason, msg)) => {
                pod.set_container(init, idx, |s| {
                    s["state"] = json!({"waiting": {"reason": reason, "message": msg}})
                });
                pod.event("Warning", "Failed", &format!("Error: {msg}"), Some(&name));
                if reason == "CreateContainerConfigError" {
                    if sleep_or_stop(&pod, Duration::from_secs(2)).await {
                        return 137;
                    }
                    continue;
                }
                Exit {
                    code: 128,
                    signal: None,
                    killed_by_probe: false,
                }
            }
        };
        if pod.stopping().is_some() {
            return exit.code;
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
        let msg = format!(
            "back-off {}s restarting failed container={name} pod={}_{}({})",
            delay.as_secs(),
            pod.h.name,
            pod.h.namespace,
            pod.h.uid
        );
        pod.set_container(init, idx, |s| {
            s["lastState"] = json!({"terminated": s["state"]["terminated"].clone()});
            s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": msg}});
        });
        pod.event(
            "Warning",
            "BackOff",
            &format!(
                "Back-off restarting failed container {name} in pod {}_{}({})",
                pod.h.name, pod.h.namespace, pod.h.uid
            ),
            Some(&name),
        );
        if sleep_or_stop(&pod, delay).await {
            return exit.code;
        }
        restarts += 1;
        pod.set_container(init, idx, |s| s["restartCount"] = json!(restarts));
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
            Ok(v) => return Some(v),
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
pub async fn run_pod(shared: Arc<Shared>, h: Arc<PodHandle>, obj: Value) {
    let spec = obj["spec"].clone();
    let inits: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mains: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
    let st = Status {
        init: inits
            .iter()
            .map(|c| waiting(c, "PodInitializing", None))
            .collect(),
        main: mains
            .iter()
            .map(|c| {
                waiting(
                    c,
                    if inits.is_empty() {
                        "ContainerCreating"
                    } else {
                        "PodInitializing"
                    },
                    None,
                )
            })
            .collect(),
        initialized: inits.is_empty(),
        phase: "Pending".into(),
        start_time: now(),
        message: None,
        pod_ip: None,
        host_ip: match shared.kubelet.node() {
            Some(_) => super::network::NODE_IP.to_string(),
            None => "127.0.0.1".to_string(),
        },
    };
    let pod = Arc::new(Pod {
        shared: shared.clone(),
        stop: h.stop.subscribe(),
        h: h.clone(),
        spec,
        obj,
        st: Mutex::new(st),
    });
    let _ = std::fs::create_dir_all(&h.dir);
    pod.publish();
    // The sandbox: namespaces and an address, or processes run directly.
    let Some(sandbox) = keep_trying(
        &pod,
        "FailedCreatePodSandBox",
        |e| format!("Failed to create pod sandbox: {e}"),
        || shared.kubelet.make_sandbox(&h.name),
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
    *h.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = sandbox;
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
        || volumes::materialise(&shared.store, &pod.obj, &h.dir),
    )
    .await;
    if materialised.is_none() {
        finish(&pod).await;
        return;
    }
    let mut ok = true;
    for (i, c) in inits.iter().enumerate() {
        let code = supervise(pod.clone(), true, i, c.clone()).await;
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
        for t in tasks {
            let _ = t.await;
        }
        pod.publish();
    }
    finish(&pod).await;
}

/// After the processes: give up the sandbox, wait for deletion, then
/// remove the pod.
async fn finish(pod: &Pod) {
    pod.h
        .sandbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let mut stop = pod.stop.clone();
    wait_stop(&mut stop).await;
    pod.shared
        .store
        .remove(resources::pods(), &pod.h.namespace, &pod.h.name);
}
