//! A state directory's claim: the running local cluster holds an exclusive
//! lock on `STATE/server.lock` for as long as it runs, and writes there its
//! pid, when it started, its kubeconfig and the settings it started with
//! (the `KUBESH_LOCAL_*` variables). A second cluster on the same
//! state is refused; the lock goes with the process (even by `kill -9`),
//! so a file left by a crashed cluster does not count as running.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::LocalError;

const FILE: &str = "server.lock";

/// The variables a local cluster reads once, when it starts
/// (`KUBESH_LOCAL_IMAGES`, `KUBESH_LOCAL_SANDBOX`, …).
pub const SETTINGS_PREFIX: &str = "KUBESH_LOCAL_";

/// The local cluster's settings in this process's environment, sorted by
/// name; an empty value counts as unset.
pub fn settings_from_env() -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, value)| name.starts_with(SETTINGS_PREFIX) && !value.is_empty())
        .collect();
    settings.sort();
    settings
}

/// A setting asked for now that the running cluster did not start with:
/// it takes effect only when the cluster starts again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unapplied {
    pub name: String,
    pub wanted: String,
    pub running: Option<String>,
    pub pid: u32,
}

impl std::fmt::Display for Unapplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unapplied {
            name,
            wanted,
            running,
            pid,
        } = self;
        let started = match running {
            Some(value) => format!("with {name}={value}"),
            None => format!("without {name}"),
        };
        write!(
            f,
            "{name}={wanted} is not in effect: the local cluster (pid {pid}) started {started}, \
             and reads it only when it starts; `kubesh local-cluster stop`, then \
             `{name}={wanted} kubesh --local` starts it with it"
        )
    }
}

/// What a running cluster wrote in its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    pub started: SystemTime,
    pub kubeconfig: PathBuf,
    /// The `KUBESH_LOCAL_*` variables it started with; `None` from a
    /// kubesh that did not record them.
    pub settings: Option<Vec<(String, String)>>,
}

impl Record {
    fn text(&self) -> String {
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut text = format!(
            "pid {}\nstarted {started}\nkubeconfig {}\n",
            self.pid,
            self.kubeconfig.display()
        );
        if let Some(settings) = &self.settings {
            text.push_str("settings recorded\n");
            for (name, value) in settings {
                text.push_str(&format!("setting {name}={value}\n"));
            }
        }
        text
    }

    /// The settings of `wanted` (this process's, say) that differ from
    /// those the cluster started with. A setting unset now is no wish;
    /// where the cluster did not record its settings, nothing is known.
    pub fn unapplied(&self, wanted: &[(String, String)]) -> Vec<Unapplied> {
        let Some(settings) = &self.settings else {
            return Vec::new();
        };
        wanted
            .iter()
            .filter_map(|(name, value)| {
                let running = settings
                    .iter()
                    .find(|(started, _)| started == name)
                    .map(|(_, value)| value.clone());
                (running.as_ref() != Some(value)).then(|| Unapplied {
                    name: name.clone(),
                    wanted: value.clone(),
                    running,
                    pid: self.pid,
                })
            })
            .collect()
    }

    fn parse(text: &str) -> Option<Record> {
        let mut pid = None;
        let mut started = None;
        let mut kubeconfig = None;
        let mut settings = Vec::new();
        let mut recorded = false;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", value)) => pid = value.parse().ok(),
                Some(("started", value)) => {
                    started = value
                        .parse()
                        .ok()
                        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                }
                Some(("kubeconfig", value)) => kubeconfig = Some(PathBuf::from(value)),
                Some(("settings", "recorded")) => recorded = true,
                Some(("setting", pair)) => {
                    if let Some((name, value)) = pair.split_once('=') {
                        settings.push((name.to_string(), value.to_string()));
                    }
                }
                _ => {}
            }
        }
        Some(Record {
            pid: pid?,
            started: started?,
            kubeconfig: kubeconfig?,
            settings: recorded.then_some(settings),
        })
    }

    /// How long it has been running.
    pub fn uptime(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.started)
            .unwrap_or_default()
    }
}

/// This process's claim on a state directory, held until dropped.
#[derive(Debug)]
pub struct Claim {
    _file: File,
}

impl Claim {
    /// Claims `state` for a cluster in this process, which writes its
    /// kubeconfig to `kubeconfig`; refused when another cluster runs on it
    /// or the directory cannot be written.
    pub fn take(state: &Path, kubeconfig: &Path) -> Result<Claim, LocalError> {
        create_private_dir(state)?;
        let path = state.join(FILE);
        let unwritable = |source| LocalError::Unwritable {
            dir: state.to_path_buf(),
            source,
        };
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(unwritable)?
        };
        // A reader looking whether a cluster runs holds a shared lock for
        // an instant: only a lock that stays taken means another cluster.
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut locked = file.try_lock();
        while matches!(locked, Err(TryLockError::WouldBlock)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            locked = file.try_lock();
        }
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = read_record(&mut file)
                    .map(|r| r.pid.to_string())
                    .unwrap_or_else(|| "unknown".to_string());
                return Err(LocalError::InUse {
                    state: state.to_path_buf(),
                    pid,
                });
            }
            Err(TryLockError::Error(source)) => return Err(unwritable(source)),
        }
        let record = Record {
            pid: std::process::id(),
            started: SystemTime::now(),
            kubeconfig: std::path::absolute(kubeconfig).unwrap_or(kubeconfig.to_path_buf()),
            settings: Some(settings_from_env()),
        };
        // Not synced to disk: the record means something only while this
        // process runs and holds the lock.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(record.text().as_bytes()))
            .map_err(unwritable)?;
        Ok(Claim { _file: file })
    }
}

/// The record of the cluster running on `state`, or `None` when none runs.
pub fn running(state: &Path) -> Result<Option<Record>, LocalError> {
    let path = state.join(FILE);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LocalError::Unwritable {
                dir: state.to_path_buf(),
                source,
            });
        }
    };
    match file.try_lock_shared() {
        Ok(()) => return Ok(None),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(source)) => {
            return Err(LocalError::Unwritable {
                dir: state.to_path_buf(),
                source,
            });
        }
    }
    // Locked: a cluster runs. Its record is written just after it locks,
    // so a reader may come in between; that lasts microseconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    let record = loop {
        if let Some(record) = read_record(&mut file) {
            break record;
        }
        if Instant::now() > deadline {
            return Err(LocalError::Unrecorded { path });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if process_runs(record.pid) {
        return Ok(Some(record));
    }
    // The process has ended (killed, crashed) but is still letting go of
    // its files: its other threads are ending. The lock goes with them.
    let deadline = Instant::now() + ENDING_WAIT;
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Ok(None),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LocalError::Ending {
                    pid: record.pid,
                    path,
                    waited: ENDING_WAIT,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(LocalError::Unwritable {
                    dir: state.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// How long a cluster whose process has ended may take to let go of its
/// lock.
const ENDING_WAIT: Duration = Duration::from_secs(10);

/// Whether process `pid` runs: one that has ended and waits for its
/// parent to collect it (a zombie) does not.
pub fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // After the command name in parentheses: the state letter.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X"))
    })
}

fn read_record(file: &mut File) -> Option<Record> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    Record::parse(&text)
}

/// Creates `dir` and its parents, `dir` itself with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), LocalError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| LocalError::Unwritable {
            dir: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            pid: 42,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            kubeconfig: PathBuf::from("/home/ada/.local/share/kubesh/local-cluster/kubeconfig"),
            settings: Some(vec![(
                "KUBESH_LOCAL_IMAGES".to_string(),
                "host".to_string(),
            )]),
        };
        assert_eq!(Record::parse(&record.text()), Some(record.clone()));
        let none = Record {
            settings: Some(Vec::new()),
            ..record
        };
        assert_eq!(Record::parse(&none.text()), Some(none));
        assert_eq!(Record::parse("pid 42\n"), None);
    }

    #[test]
    fn a_setting_asked_for_now_and_not_started_with_is_named() {
        let setting = |name: &str, value: &str| (name.to_string(), value.to_string());
        let record = Record {
            pid: 42,
            started: SystemTime::UNIX_EPOCH,
            kubeconfig: PathBuf::from("kubeconfig"),
            settings: Some(vec![setting("KUBESH_LOCAL_IMAGES", "host")]),
        };
        assert!(record.unapplied(&[]).is_empty(), "unset now: no wish");
        let unrecorded = Record {
            settings: None,
            ..record.clone()
        };
        assert!(
            unrecorded
                .unapplied(&[setting("KUBESH_LOCAL_SANDBOX", "off")])
                .is_empty(),
            "a cluster of an earlier kubesh: nothing known, nothing said"
        );
        assert!(
            record
                .unapplied(&[setting("KUBESH_LOCAL_IMAGES", "host")])
                .is_empty()
        );
        let unapplied = record.unapplied(&[
            setting("KUBESH_LOCAL_IMAGES", "engine"),
            setting("KUBESH_LOCAL_SANDBOX", "off"),
        ]);
        let said: Vec<String> = unapplied.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "KUBESH_LOCAL_IMAGES=engine is not in effect: the local cluster (pid 42) started with KUBESH_LOCAL_IMAGES=host, and reads it only when it starts; `kubesh local-cluster stop`, then `KUBESH_LOCAL_IMAGES=engine kubesh --local` starts it with it",
                "KUBESH_LOCAL_SANDBOX=off is not in effect: the local cluster (pid 42) started without KUBESH_LOCAL_SANDBOX, and reads it only when it starts; `kubesh local-cluster stop`, then `KUBESH_LOCAL_SANDBOX=off kubesh --local` starts it with it",
            ]
        );
    }

    #[test]
    fn a_claimed_state_is_running_and_refuses_a_second_claim_until_dropped() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let state = dir.path().join("state");
        assert_eq!(running(&state).ok().flatten(), None);
        let kubeconfig = dir.path().join("kubeconfig");
        let claim = Claim::take(&state, &kubeconfig).expect("the first claim");
        let record = running(&state).ok().flatten().expect("running");
        assert_eq!(record.pid, std::process::id());
        assert_eq!(record.kubeconfig, kubeconfig);
        // The lock is per open file: a second open in this process is a
        // second claimant, as another process would be.
        let second = Claim::take(&state, &kubeconfig);
        assert!(
            matches!(&second, Err(LocalError::InUse { pid, .. }) if *pid == std::process::id().to_string()),
            "{second:?}"
        );
        drop(claim);
        assert_eq!(running(&state).ok().flatten(), None);
    }

    #[test]
    fn a_state_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").expect("a file");
        let error = Claim::take(&file.join("state"), &dir.path().join("kubeconfig"))
            .expect_err("a state under a file");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot write the local cluster's directory {}/state: ",
                file.display()
            )),
            "{message}"
        );
    }
}
