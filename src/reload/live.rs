//! The live path of a reload: the changed files go into every running pod
//! of the dproc over exec, and the supervisor (the container's entrypoint)
//! restarts the program in place — the pod keeps its name, nothing is
//! scheduled, no init container runs again. The ConfigMaps are updated at
//! the same time, so a pod started afterwards unpacks the same code.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::rollout;
use crate::cluster::connection::{ClusterError, explain};
use crate::cluster::exec::{self, Exit};
use crate::labels::LABEL_DPROC;
use crate::launch::bundle::{self, Bundle};
use crate::launch::objects::{self, APP_DIR, RUN_DIR, Spec};

/// The update script, run with `sh -c` in the container; the deleted
/// files are its arguments, never part of its text.
const UPDATE_SCRIPT: &str = include_str!("update.sh");

/// How long an update may take in a pod: it waits up to about ten seconds
/// for the program to listen; beyond this something is stuck.
const UPDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// program was not listening on its port yet when kubesh stopped waiting.
    Updated { pods: usize, waiting: Vec<String> },
    /// The new code exited in `pod`; the supervisor waits for the next save.
    Exited {
        pod: String,
        status: String,
        lines: Vec<String>,
    },
}

/// Writes the changed files into every running pod of the dproc and
/// restarts its program there. `Err` says why the live path could not be
/// taken (no running pod, exec refused, no supervisor or shell in the
/// image); a rollout then does the work.
pub async fn update(
    client: &kube::Client,
    spec: &Spec,
    bundle: &Bundle,
    diff: &Diff,
) -> Result<Live, NoLivePath> {
    let files = bundle::subset(&bundle.archive, &diff.changed).map_err(NoLivePath::Pack)?;
    // The ConfigMaps and the running pods are updated at once: a round
    // trip less on a distant cluster.
    let store = rollout::store_bundle(client, spec, bundle, spec.chunks, None);
    let run = async {
        let pods = running_pods(client, spec).await?;
        if pods.is_empty() {
            return Err(NoLivePath::NoPod);
        }
        let command = update_command(spec.listen_port, &diff.deleted, &diff.changed);
        let (command, files) = (&command, &files);
        let runs = pods.iter().map(|pod| async move {
            let run = exec::run(client, &spec.namespace, pod, "main", command.clone(), files);
            tokio::time::timeout(UPDATE_TIMEOUT, run)
                .await
                .map(|ran| ran.map_err(NoLivePath::Exec))
                .unwrap_or_else(|_| Err(NoLivePath::Timeout(pod.clone())))
        });
        let results = futures_util::future::join_all(runs).await;
        Ok((pods, results))
    };
    let (stored, ran) = tokio::join!(store, run);
    stored.map_err(NoLivePath::NotStored)?;
    let (pods, results) = ran?;
    let mut waiting = Vec::new();
    let mut exited = None;
    for (pod, result) in pods.iter().zip(results) {
        let output = result?;
        match output.exit {
            Exit::Status(0) => {}
            Exit::Status(90) => return Err(NoLivePath::NoSupervisor(pod.clone())),
            Exit::Status(91) => {
                return Err(NoLivePath::NotWritten {
                    pod: pod.clone(),
                    stderr: output.stderr.trim().to_string(),
                });
            }
            Exit::Status(92) => exited = Some((pod.clone(), output.stdout.trim().to_string())),
            Exit::Status(93) => waiting.push(pod.clone()),
            Exit::Status(126 | 127) => return Err(NoLivePath::NoShellIn(pod.clone())),
            Exit::Status(status) => {
                return Err(NoLivePath::UpdateFailed {
                    pod: pod.clone(),
                    status,
                    stderr: output.stderr.trim().to_string(),
                });
            }
            Exit::NotRun(message) => {
                return Err(NoLivePath::NotRun {
                    pod: pod.clone(),
                    message,
                });
            }
        }
    }
    if let Some((pod, status)) = exited {
        let lines = last_lines(client, &spec.namespace, &pod).await;
        return Ok(Live::Exited { pod, status, lines });
    }
    Ok(Live::Updated {
        pods: pods.len(),
        waiting,
    })
}

/// `sh -c UPDATE_SCRIPT kubesh-update RUN_DIR APP_DIR PORT N DELETED… CHANGED…`
/// (see `update.sh`): `port` is where the program listens in its container.
fn update_command(port: u16, deleted: &[String], changed: &BTreeSet<String>) -> Vec<String> {
    [
        "sh",
        "-c",
        &objects::script(UPDATE_SCRIPT),
        "kubesh-update",
        RUN_DIR,
        APP_DIR,
        &port.to_string(),
        &deleted.len().to_string(),
    ]
    .into_iter()
    .map(String::from)
    .chain(deleted.iter().cloned())
    .chain(changed.iter().cloned())
    .collect()
}

/// The dproc's pods whose program runs now (not starting, not going away).
async fn running_pods(client: &kube::Client, spec: &Spec) -> Result<Vec<String>, NoLivePath> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let params = ListParams::default().labels(&format!("{LABEL_DPROC}={}", spec.dproc_id));
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
        .filter_map(|pod| pod.metadata.name)
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
    fn the_update_command_passes_files_as_arguments() {
        let changed = BTreeSet::from(["lib/m.py".to_string()]);
        let deleted = ["a b.txt".to_string(), "$(rm -rf /)".to_string()];
        let command = update_command(9898, &deleted, &changed);
        assert_eq!(&command[..2], ["sh", "-c"]);
        assert!(!command[2].contains("a b.txt"));
        assert_eq!(
            &command[3..],
            [
                "kubesh-update",
                RUN_DIR,
                APP_DIR,
                "9898",
                "2",
                "a b.txt",
                "$(rm -rf /)",
                "lib/m.py"
            ]
        );
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen() != "one\n" {
            assert!(std::time::Instant::now() < deadline, "never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let page = tempfile::tempdir().unwrap();
        std::fs::write(page.path().join("page"), "two").unwrap();
        let mut files = Vec::new();
        {
            let encoder = flate2::write::GzEncoder::new(&mut files, flate2::Compression::fast());
            let mut tar = tar::Builder::new(encoder);
            tar.append_path_with_name(page.path().join("page"), "page")
                .unwrap();
            tar.into_inner().unwrap().finish().unwrap();
        }
        std::fs::create_dir_all(app.join("__pycache__")).unwrap();
        std::fs::write(app.join("__pycache__/page.cpython-312.pyc"), "stale").unwrap();
        let command = update_command(0, &["old.txt".to_string()], &BTreeSet::new());
        let mut update = std::process::Command::new(&command[0]);
        update
            .args(&command[1..4])
            .arg(&run)
            .arg(&app)
            .args(["0", "1", "old.txt", "page.py"])
            .stdin(std::process::Stdio::piped());
        let mut update = update.spawn().unwrap();
        use std::io::Write;
        update.stdin.take().unwrap().write_all(&files).unwrap();
        assert_eq!(update.wait().unwrap().code(), Some(0));
        // Without a port to listen on, the update ends once the program is
        // started again; it reads the new file right after.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen() != "one\ntwo\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the program did not run again with the new file: {:?}",
                seen()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!app.join("old.txt").exists(), "the deleted file is gone");
        assert!(
            !app.join("__pycache__/page.cpython-312.pyc").exists(),
            "the changed module's bytecode cache is gone"
        );
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
