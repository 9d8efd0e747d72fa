//! The live path of a reload: the changed files go into every running pod
//! of the dproc over exec, and the supervisor (the container's entrypoint)
//! restarts the program in place — the pod keeps its name, nothing is
//! scheduled, no init container runs again. The exec is started as soon as
//! a save begins and given the files once they have settled, so its
//! connection costs no time of its own. The ConfigMaps are updated at the
//! same time, so a pod started afterwards unpacks the same code.

use std::collections::BTreeSet;
use std::future::Future;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::rollout;
use crate::cluster::connection::{ClusterError, explain};
use crate::cluster::dprocs::pod_ready;
use crate::cluster::exec::{self, Exit, StdinEnd};
use crate::labels::LABEL_DPROC;
use crate::launch::bundle::{self, Bundle};
use crate::launch::objects::{self, APP_DIR, RUN_DIR, Spec};

/// The update script, run with `sh -c` in the container; the deleted
/// files are its arguments, never part of its text.
const UPDATE_SCRIPT: &str = include_str!("update.sh");

/// How long an update may take in a pod once it has its files (it waits
/// up to about ten seconds for the program to listen), and how long
/// starting it may take; beyond this something is stuck.
const UPDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a pod that was not ready before the update (a launch that
/// failed, being put right) may take to turn ready once its program
/// listens: its readiness probe passes at its next period (1 s).
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The line the supervisor prints when it restarts the program.
const RESTART_MARK: &str = "kubesh: restarting the program with the new files";

/// What changed between two bundles.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// New or modified files.
    pub changed: BTreeSet<String>,
    pub deleted: Vec<String>,
}

impl Diff {
    pub fn between(old: &super::Digests, new: &super::Digests) -> Diff {
        Diff {
            changed: new
                .iter()
                .filter(|(name, digest)| old.get(*name) != Some(digest))
                .map(|(name, _)| name.clone())
                .collect(),
            deleted: old
                .keys()
                .filter(|name| !new.contains_key(*name))
                .cloned()
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.changed.len() + self.deleted.len()
    }

    /// Whether a file of the runtime's dependency step changed: then the
    /// dependencies must be installed again, which a rollout does.
    pub fn touches_any(&self, files: &[String]) -> bool {
        files
            .iter()
            .any(|f| self.changed.contains(f) || self.deleted.contains(f))
    }
}

/// How a live update ended.
#[derive(Debug)]
pub enum Live {
    /// Every running pod runs the new files; `waiting` lists the pods whose
    /// program was not listening on its port yet when kubesh stopped waiting,
    /// `unready` those not ready before the update that were still not
    /// after [`READY_WAIT`].
    Updated {
        pods: usize,
        waiting: Vec<String>,
        unready: Vec<String>,
    },
    /// The new code exited in `pod`; the supervisor waits for the next save.
    Exited {
        pod: String,
        status: String,
        lines: Vec<String>,
    },
}

/// The update started in every running pod of a dproc, each waiting on
/// its stdin for the files: made while a save settles, so that the
/// connections cost the reload no time.
pub struct Prepared {
    pods: Vec<(String, Result<exec::Started, NoLivePath>)>,
    /// The pods that were not ready when listed.
    unready: Vec<String>,
}

/// Where an update goes: the dproc's pods and the port its program
/// listens on.
#[derive(Clone)]
pub struct Target {
    pub namespace: String,
    pub dproc_id: String,
    pub port: u16,
}

impl Target {
    pub fn of(spec: &Spec) -> Target {
        Target {
            namespace: spec.namespace.clone(),
            dproc_id: spec.dproc_id.clone(),
            port: spec.listen_port,
        }
    }
}

/// Lists the dproc's running pods and starts the update in each (see
/// `update.sh`); it waits for [`update`] to give it the files. `Err`
/// when no pod can be had.
pub async fn prepare(client: kube::Client, target: Target) -> Result<Prepared, NoLivePath> {
    let pods = running_pods(&client, &target).await?;
    let unready = pods
        .iter()
        .filter(|(_, ready)| !ready)
        .map(|(pod, _)| pod.clone())
        .collect();
    let pods = pods.into_iter().map(|(pod, _)| pod);
    let command = update_command(target.port);
    let (client, target, command) = (&client, &target, &command);
    let starts = pods.map(|pod| async move {
        let start = exec::start(client, &target.namespace, &pod, "main", command.clone());
        let started = match tokio::time::timeout(UPDATE_TIMEOUT, start).await {
            Ok(started) => started.map_err(NoLivePath::Exec),
            Err(_) => Err(NoLivePath::Timeout(pod.clone())),
        };
        (pod, started)
    });
    Ok(Prepared {
        pods: futures_util::future::join_all(starts).await,
        unready,
    })
}

/// Writes the changed files into every running pod of the dproc through
/// the update `prepared` there, and restarts its program. `Err` says why
/// the live path could not be taken (no running pod, exec refused, no
/// supervisor or shell in the image); a rollout then does the work.
pub async fn update(
    client: &kube::Client,
    spec: &Spec,
    bundle: &Bundle,
    diff: &Diff,
    prepared: impl Future<Output = Result<Prepared, NoLivePath>>,
) -> Result<Live, NoLivePath> {
    let input = update_input(&bundle.archive, diff)?;
    // The ConfigMaps and the running pods are updated at once: a round
    // trip less on a distant cluster.
    let store = rollout::store_bundle(client, spec, bundle, spec.chunks, None);
    let run = async {
        let prepared = prepared.await?;
        if prepared.pods.is_empty() {
            return Err(NoLivePath::NoPod);
        }
        let input = &input;
        let unready = prepared.unready;
        let runs = prepared.pods.into_iter().map(|(pod, started)| async move {
            let result = match started {
                Ok(started) => tokio::time::timeout(
                    UPDATE_TIMEOUT,
                    // `update.sh` reads as much as its header says.
                    started.finish(input, StdinEnd::KeepOpen),
                )
                .await
                .map_err(|_| NoLivePath::Timeout(pod.clone())),
                Err(reason) => Err(reason),
            };
            (pod, result)
        });
        Ok((futures_util::future::join_all(runs).await, unready))
    };
    let (stored, ran) = tokio::join!(store, run);
    stored.map_err(NoLivePath::NotStored)?;
    let (results, unready) = ran?;
    let pods = results.len();
    let mut waiting = Vec::new();
    let mut exited = None;
    for (pod, result) in results {
        let output = result?;
        match output.exit {
            Exit::Status(0) => {}
            Exit::Status(90) => return Err(NoLivePath::NoSupervisor(pod)),
            Exit::Status(91) => {
                return Err(NoLivePath::NotWritten {
                    pod,
                    stderr: output.stderr.trim().to_string(),
                });
            }
            Exit::Status(92) => exited = Some((pod, output.stdout.trim().to_string())),
            Exit::Status(93) => waiting.push(pod),
            Exit::Status(126 | 127) => return Err(NoLivePath::NoShellIn(pod)),
            Exit::Status(status) => {
                return Err(NoLivePath::UpdateFailed {
                    pod,
                    status,
                    stderr: output.stderr.trim().to_string(),
                });
            }
            Exit::NotRun(message) => return Err(NoLivePath::NotRun { pod, message }),
        }
    }
    if let Some((pod, status)) = exited {
        let lines = last_lines(client, &spec.namespace, &pod).await;
        return Ok(Live::Exited { pod, status, lines });
    }
    // A pod that was not ready serves once its probe has passed: the
    // reload is done when it does (or it is named).
    let unready = match waiting.is_empty() && !unready.is_empty() {
        true => still_unready(client, &spec.namespace, unready).await,
        false => Vec::new(),
    };
    Ok(Live::Updated {
        pods,
        waiting,
        unready,
    })
}

/// Those of `pods` that have not turned ready within [`READY_WAIT`] (a pod
/// that is gone no longer counts).
async fn still_unready(
    client: &kube::Client,
    namespace: &str,
    mut pods: Vec<String>,
) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + READY_WAIT;
    loop {
        let mut left = Vec::new();
        for name in pods {
            let asked = tokio::time::timeout_at(deadline, api.get_opt(&name)).await;
            match asked {
                Ok(Ok(Some(pod))) if !pod_ready(&pod) => left.push(name),
                Ok(Ok(_)) => {}
                // Not known in time: named, rather than taken for ready.
                Ok(Err(_)) | Err(_) => left.push(name),
            }
        }
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return left;
        }
        pods = left;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What the update reads on its stdin (see `update.sh`): the header line,
/// the deleted and the changed files' names one a line, then the changed
/// files as a tar, whose size the header gives. The tar is gzipped when
/// the input would not fit in one stdin message otherwise: a second
/// message can wait tens of milliseconds, a gzip process in the container
/// takes a few.
fn update_input(archive: &[u8], diff: &Diff) -> Result<Vec<u8>, NoLivePath> {
    let names = diff.deleted.iter().chain(&diff.changed);
    if let Some(name) = names.clone().find(|name| name.contains('\n')) {
        return Err(NoLivePath::LineBreak(name.clone()));
    }
    let listed: String = names.map(|name| format!("{name}\n")).collect();
    let files = bundle::subset(archive, &diff.changed).map_err(NoLivePath::Pack)?;
    let header = |format: &str, size: usize| {
        let (deleted, changed) = (diff.deleted.len(), diff.changed.len());
        format!("{deleted} {changed} {format} {size}\n{listed}")
    };
    let (header, files) = if header("tar", files.len()).len() + files.len() <= exec::STDIN_MESSAGE {
        (header("tar", files.len()), files)
    } else {
        let files = bundle::gzip(&files).map_err(NoLivePath::Pack)?;
        (header("tgz", files.len()), files)
    };
    let mut input = header.into_bytes();
    input.extend(files);
    Ok(input)
}

/// `sh -c UPDATE_SCRIPT kubesh-update RUN_DIR APP_DIR PORT` (see
/// `update.sh`): `port` is where the program listens in its container,
/// as `/proc/net/tcp` writes it; the files come on stdin.
fn update_command(port: u16) -> Vec<String> {
    [
        "sh",
        "-c",
        &objects::script(UPDATE_SCRIPT),
        "kubesh-update",
        RUN_DIR,
        APP_DIR,
        &format!("{port:04X}"),
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// The dproc's pods whose program runs now (not starting, not going away).
/// The dproc's pods whose program runs, each with whether it is ready.
async fn running_pods(
    client: &kube::Client,
    target: &Target,
) -> Result<Vec<(String, bool)>, NoLivePath> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let params = ListParams::default().labels(&format!("{LABEL_DPROC}={}", target.dproc_id));
    let list = pods
        .list(&params)
        .await
        .map_err(|e| NoLivePath::NotListed(explain("the cluster", e)))?;
    Ok(list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.iter().find(|c| c.name == "main"))
                .and_then(|c| c.state.as_ref())
                .is_some_and(|s| s.running.is_some())
        })
        .filter_map(|pod| {
            let ready = pod_ready(&pod);
            Some((pod.metadata.name?, ready))
        })
        .collect())
}

/// The program's output since its last restart, at most ten lines.
async fn last_lines(client: &kube::Client, namespace: &str, pod: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some("main".into()),
        tail_lines: Some(60),
        ..LogParams::default()
    };
    let log = pods.logs(pod, &params).await.unwrap_or_default();
    since_restart(&log)
}

/// The lines after the supervisor's last restart line, without its own
/// lines; a long output is cut in the middle, where a stack trace is least
/// telling (the first lines name the place, the last the error).
fn since_restart(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains(RESTART_MARK))
        .map_or(0, |i| i + 1);
    let mut program: Vec<String> = lines[start..]
        .iter()
        .filter(|l| !l.starts_with("kubesh: "))
        .map(|l| (*l).to_string())
        .collect();
    while program.last().is_some_and(|l| l.trim().is_empty()) {
        program.pop();
    }
    const HEAD: usize = 6;
    const TAIL: usize = 8;
    if program.len() > HEAD + TAIL + 1 {
        let tail = program.split_off(program.len() - TAIL);
        program.truncate(HEAD);
        program.push("…".to_string());
        program.extend(tail);
    }
    program
}

/// Whether saved files can reach this dproc's running pods at all.
pub fn possible(spec: &Spec) -> Result<(), NoLivePath> {
    if objects::supervised(spec) {
        Ok(())
    } else {
        Err(NoLivePath::NoShell(spec.program.runtime.name.clone()))
    }
}

/// Why saved files did not go into the running pods, so that a rollout
/// brings them: shown as the reason on the reload line.
#[derive(Debug, thiserror::Error)]
pub enum NoLivePath {
    #[error("the {0} runtime's image has no shell")]
    NoShell(String),
    #[error("dependencies changed")]
    Dependencies,
    #[error("the bundle changed size")]
    BundleSize,
    #[error("the changed files cannot be packed: {0}")]
    Pack(#[source] std::io::Error),
    #[error("the name of {0:?} has a line break")]
    LineBreak(String),
    #[error("the update could not be started: {0}")]
    NotStarted(#[source] tokio::task::JoinError),
    #[error("no pod of it is running")]
    NoPod,
    #[error("its pods cannot be listed: {}", .0.reason())]
    NotListed(#[source] ClusterError),
    #[error(transparent)]
    NotStored(rollout::StoreError),
    #[error(transparent)]
    Exec(exec::ExecError),
    #[error("the update in pod {0} did not end within {secs} s", secs = UPDATE_TIMEOUT.as_secs())]
    Timeout(String),
    #[error("pod {0} has no supervisor (it was started by an older kubesh)")]
    NoSupervisor(String),
    #[error("the files could not be written into pod {pod}: {stderr}")]
    NotWritten { pod: String, stderr: String },
    #[error("pod {0} has no shell")]
    NoShellIn(String),
    #[error("the update in pod {pod} exited with status {status}: {stderr}")]
    UpdateFailed {
        pod: String,
        status: i32,
        stderr: String,
    },
    #[error("pod {pod}: {message}")]
    NotRun { pod: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(files: &[(&str, u8)]) -> super::super::Digests {
        files
            .iter()
            .map(|(name, byte)| (name.to_string(), [*byte; 32]))
            .collect()
    }

    #[test]
    fn a_diff_names_new_modified_and_deleted_files() {
        let old = digests(&[("app.js", 1), ("lib.js", 2), ("gone.txt", 3)]);
        let new = digests(&[("app.js", 1), ("lib.js", 9), ("new.txt", 4)]);
        let diff = Diff::between(&old, &new);
        assert_eq!(
            diff.changed,
            BTreeSet::from(["lib.js".to_string(), "new.txt".to_string()])
        );
        assert_eq!(diff.deleted, vec!["gone.txt".to_string()]);
        assert_eq!(diff.len(), 3);
        assert!(diff.touches_any(&["gone.txt".to_string()]));
        assert!(!diff.touches_any(&["package.json".to_string()]));
    }

    #[test]
    fn the_files_come_on_stdin_and_never_in_the_command() {
        let command = update_command(9898);
        assert_eq!(&command[..2], ["sh", "-c"]);
        assert_eq!(&command[3..], ["kubesh-update", RUN_DIR, APP_DIR, "26AA"]);
        let archive = bundle_of(&[("lib/m.py", "x = 1\n".as_bytes())]);
        let diff = Diff {
            changed: BTreeSet::from(["lib/m.py".to_string()]),
            deleted: vec!["a b.txt".to_string(), "$(rm -rf /)".to_string()],
        };
        let input = update_input(&archive, &diff).unwrap();
        let size = input.len() - "2 1 tar NNNN\na b.txt\n$(rm -rf /)\nlib/m.py\n".len();
        let header = format!("2 1 tar {size}\na b.txt\n$(rm -rf /)\nlib/m.py\n");
        assert!(input.starts_with(header.as_bytes()), "{input:?}");
        let mut files = tar::Archive::new(&input[header.len()..]);
        let names: Vec<String> = files
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["lib/m.py"]);
        // A source file of 12 KiB goes compressed, in one message.
        let source = "app.get('/', (req, res) => res.send(page(req)));\n".repeat(250);
        let archive = bundle_of(&[("app.js", source.as_bytes())]);
        let diff = Diff {
            changed: BTreeSet::from(["app.js".to_string()]),
            deleted: Vec::new(),
        };
        let input = update_input(&archive, &diff).unwrap();
        assert!(input.starts_with(b"0 1 tgz "), "{input:?}");
        assert!(input.len() <= exec::STDIN_MESSAGE);
        let odd = Diff {
            changed: BTreeSet::new(),
            deleted: vec!["two\nlines".to_string()],
        };
        assert!(matches!(
            update_input(&archive, &odd),
            Err(NoLivePath::LineBreak(name)) if name == "two\nlines"
        ));
    }

    /// A bundle's archive (a tar.gz) of these files.
    fn bundle_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut archive = Vec::new();
        {
            let encoder = flate2::write::GzEncoder::new(&mut archive, flate2::Compression::fast());
            let mut tar = tar::Builder::new(encoder);
            for (name, contents) in files {
                let mut header = tar::Header::new_gnu();
                header.set_size(contents.len() as u64);
                header.set_mode(0o644);
                tar.append_data(&mut header, name, *contents).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
        }
        archive
    }

    /// Runs the update script on this machine's `sh` as the container
    /// would, `input` on its stdin, which stays open: the update must not
    /// wait for its end. `None` as input closes it at once. Its exit status.
    fn run_update(run: &std::path::Path, app: &std::path::Path, input: Option<&[u8]>) -> i32 {
        use std::io::Write;
        let command = update_command(0);
        let mut update = std::process::Command::new(&command[0])
            .args(&command[1..4])
            .arg(run)
            .arg(app)
            .arg(&command[6])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = update.stdin.take().unwrap();
        match input {
            Some(input) => stdin.write_all(input).unwrap(),
            None => drop(stdin),
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = update.try_wait().unwrap() {
                return status.code().unwrap();
            }
            if std::time::Instant::now() > deadline {
                let _ = update.kill();
                panic!("the update did not end with its stdin open");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The supervisor and an update, on this machine's `sh`: the update
    /// writes the new file, and the program running afterwards reads it.
    #[test]
    fn an_update_restarts_the_program_with_the_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let (run, app) = (dir.path().join("run"), dir.path().join("app"));
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("old.txt"), "gone soon").unwrap();
        std::fs::write(app.join("page"), "one").unwrap();
        let supervisor = crate::launch::objects::tests::supervisor_script();
        let program = "cat page >> seen; echo >> seen; exec sleep 30";
        let mut child = std::process::Command::new("sh")
            .args(["-c", &supervisor, "kubesh-supervise"])
            .arg(&run)
            .args(["sh", "-c", program])
            .current_dir(&app)
            .env_remove("PORT")
            .spawn()
            .unwrap();
        let seen = || std::fs::read_to_string(app.join("seen")).unwrap_or_default();
        let until_seen = |expected: &str| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while seen() != expected {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the program did not run with {expected:?}: {:?}",
                    seen()
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        until_seen("one\n");
        // Called off before anything came: nothing changes.
        assert_eq!(run_update(&run, &app, None), 94);
        std::fs::create_dir_all(app.join("__pycache__")).unwrap();
        std::fs::write(app.join("__pycache__/page.cpython-312.pyc"), "stale").unwrap();
        let archive = bundle_of(&[("page", b"two")]);
        let diff = Diff {
            changed: BTreeSet::from(["page".to_string(), "page.py".to_string()]),
            deleted: vec!["old.txt".to_string()],
        };
        let input = update_input(&archive, &diff).unwrap();
        assert_eq!(run_update(&run, &app, Some(&input)), 0);
        // Without a port to listen on, the update ends once the program is
        // started again; it reads the new file right after.
        until_seen("one\ntwo\n");
        assert!(!app.join("old.txt").exists(), "the deleted file is gone");
        assert!(
            !app.join("__pycache__/page.cpython-312.pyc").exists(),
            "the changed module's bytecode cache is gone"
        );
        // Files that would take more than one stdin message go compressed,
        // and are unpacked as such.
        let large: Vec<u8> = (0..exec::STDIN_MESSAGE * 4)
            .map(|n| (n % 251) as u8)
            .collect();
        let archive = bundle_of(&[("page", b"three"), ("large.bin", &large)]);
        let diff = Diff {
            changed: BTreeSet::from(["page".to_string(), "large.bin".to_string()]),
            deleted: Vec::new(),
        };
        let input = update_input(&archive, &diff).unwrap();
        assert!(input.starts_with(b"0 2 tgz "));
        assert!(input.len() < large.len());
        assert_eq!(run_update(&run, &app, Some(&input)), 0);
        until_seen("one\ntwo\nthree\n");
        assert_eq!(std::fs::read(app.join("large.bin")).unwrap(), large);
        // TERM, as Kubernetes stops a container: the supervisor ends all.
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(128 + 15));
    }

    #[test]
    fn the_last_lines_start_after_the_last_restart() {
        let log = "old 1\nkubesh: restarting the program with the new files\nold 2\n\
                   kubesh: restarting the program with the new files\n\
                   SyntaxError: bad\n    at x.js:1\n\
                   kubesh: the program exited with status 1 after the reload; waiting for the next save\n";
        assert_eq!(
            since_restart(log),
            vec!["SyntaxError: bad".to_string(), "    at x.js:1".to_string()]
        );
    }

    #[test]
    fn a_long_output_keeps_its_first_and_last_lines() {
        let log: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        let lines = since_restart(&log);
        assert_eq!(lines.len(), 6 + 1 + 8);
        assert_eq!(lines[0], "line 1");
        assert_eq!(lines[6], "…");
        assert_eq!(lines[14], "line 40");
    }
}
