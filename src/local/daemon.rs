//! The detached cluster process: `kubesh local-cluster --state STATE
//! --kubeconfig FILE`, the foreground form, started in a session of its own
//! (no terminal: Ctrl-C and a closed terminal never reach it) with its
//! output in the log; and the signal that stops it.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LocalError, Place, Record, Running, claim};

/// How long a start may take until the server accepts requests.
const READY_WAIT: Duration = Duration::from_secs(60);
/// How long a running cluster found by its lock may take to accept
/// connections (one started in the foreground a moment ago).
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long a stop may take: each pod gets its grace period.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// The line the foreground form prints once the server accepts requests.
const READY_LINE: &str = "kubeconfig:";
/// The line after the ones that say what the cluster is.
const SERVER_LINE: &str = "server:";

/// Starts the cluster of `place` detached and waits until it accepts
/// requests.
pub fn start(place: &Place) -> Result<Running, LocalError> {
    let program = std::env::current_exe().map_err(|source| LocalError::Spawn {
        program: PathBuf::from("kubesh"),
        source,
    })?;
    let state = place.state_dir();
    let log_path = place.log();
    let unwritable = |source| LocalError::Unwritable {
        dir: place.dir().to_path_buf(),
        source,
    };
    // The previous run's log is kept beside, for a look after a crash.
    match std::fs::rename(&log_path, place.dir().join("log.1")) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(unwritable(source)),
    }
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(unwritable)?
    };
    let stderr = log.try_clone().map_err(unwritable)?;
    let mut command = Command::new(&program);
    command
        .arg("local-cluster")
        .arg("--state")
        .arg(&state)
        .arg("--kubeconfig")
        .arg(place.kubeconfig())
        .arg("--images-cache")
        .arg(place.images_cache())
        .current_dir(place.dir())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the child calls only setsid(2),
        // which is async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|source| LocalError::Spawn {
        program: program.clone(),
        source,
    })?;
    let began = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // It may have found the state taken by a cluster started by
            // other means (`kubesh local-cluster` in a terminal): use that.
            if let Some(record) = claim::running(&state)? {
                return found(record, &log_path, false);
            }
            return Err(LocalError::Exited {
                status,
                log: log_path.clone(),
                tail: tail(&log_path, 12),
            });
        }
        if log_has_line(&log_path, READY_LINE)
            && let Some(record) = claim::running(&state)?
            && record.pid == child.id()
        {
            return found(record, &log_path, true);
        }
        if began.elapsed() > READY_WAIT {
            return Err(LocalError::NotReady {
                waited: READY_WAIT,
                log: log_path,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn found(record: Record, log: &Path, started_now: bool) -> Result<Running, LocalError> {
    let server = if started_now {
        server_of(&record.kubeconfig).unwrap_or_default()
    } else {
        wait_answering(&record.kubeconfig, log)?
    };
    Ok(Running {
        record,
        server,
        banner: banner(log),
        started_now,
    })
}

/// Waits (bounded) until the server the kubeconfig names accepts a
/// connection; its address.
pub fn wait_answering(kubeconfig: &Path, log: &Path) -> Result<String, LocalError> {
    let began = Instant::now();
    loop {
        if let Some(server) = server_of(kubeconfig) {
            let address = server
                .trim_start_matches("https://")
                .split('/')
                .next()
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
            if let Some(address) = address
                && std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
            {
                return Ok(server);
            }
        }
        if began.elapsed() > ANSWER_WAIT {
            return Err(LocalError::NotReady {
                waited: ANSWER_WAIT,
                log: log.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server a kubeconfig names (its current context's).
pub fn server_of(kubeconfig: &Path) -> Option<String> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).ok()?;
    let context = config.current_context.as_deref()?;
    let cluster = config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    config
        .clusters
        .into_iter()
        .find(|c| c.name == cluster)?
        .cluster?
        .server
}

/// What the cluster printed first: the lines before its address (what it
/// is, how its pods are isolated).
pub fn banner(log: &Path) -> Vec<String> {
    read(log)
        .lines()
        .take_while(|line| !line.starts_with(SERVER_LINE))
        .map(str::to_string)
        .collect()
}

fn log_has_line(log: &Path, start: &str) -> bool {
    read(log).lines().any(|line| line.starts_with(start))
}

/// The last `count` lines of the log.
fn tail(log: &Path, count: usize) -> String {
    let text = read(log);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// Stops the cluster running on `state` (SIGTERM: it stops every pod, then
/// itself) and waits until it has ended; what it stopped.
pub fn stop(state: &Path) -> Result<Option<Record>, LocalError> {
    let Some(record) = claim::running(state)? else {
        return Ok(None);
    };
    let pid = libc::pid_t::try_from(record.pid).map_err(|_| LocalError::Signal {
        pid: record.pid,
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    // SAFETY: kill(2) only sends a signal; the pid is the one the lock's
    // holder wrote, and the lock is held, so that process is running.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let source = std::io::Error::last_os_error();
        if source.raw_os_error() != Some(libc::ESRCH) {
            return Err(LocalError::Signal {
                pid: record.pid,
                source,
            });
        }
    }
    let began = Instant::now();
    while claim::running(state)?.is_some() || claim::process_runs(record.pid) {
        if began.elapsed() > STOP_WAIT {
            return Err(LocalError::StillRunning {
                pid: record.pid,
                waited: STOP_WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Some(record))
}
