//! The user's local cluster: one per user, kept in kubesh's data directory
//! (`XDG_DATA_HOME` honoured) and shared by every `kubesh --local`. It runs
//! as a detached `kubesh local-cluster` process that outlives the kubesh
//! that started it, until `kubesh local-cluster stop`. This module finds
//! it, starts it (one start at a time, under a lock), stops it, reports on
//! it and resets it; the server itself is the `local-cluster` crate's.
//!
//! A running cluster holds an exclusive lock on its state directory's
//! `server.lock` (see [`claim`]), which also records its pid; the kernel
//! drops the lock when the process ends, however it ends, so a crashed
//! cluster is never taken for a running one.

pub mod claim;
pub mod commands;
mod daemon;
mod lock;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use claim::{Claim, Record};

/// Where the user's local cluster lives: `DATA/kubesh/local-cluster`, with
/// its state, kubeconfig and log.
#[derive(Debug, Clone)]
pub struct Place {
    dir: PathBuf,
    /// Images' unpacked files: in kubesh's cache directory, so a cluster
    /// started anew (after `reset`, say) finds them.
    images_cache: PathBuf,
}

impl Place {
    /// The user's: in kubesh's data directory.
    pub fn user() -> Result<Place, LocalError> {
        let dirs = directories::ProjectDirs::from("", "", "kubesh").ok_or(LocalError::NoDataDir)?;
        Ok(Place {
            dir: dirs.data_dir().join("local-cluster"),
            images_cache: dirs.cache_dir().join("images"),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's state: its store and its pods' directories.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Where the images its pods run in are kept unpacked.
    pub fn images_cache(&self) -> &Path {
        &self.images_cache
    }

    /// The kubeconfig it writes (mode 0600), for kubesh and kubectl.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// What the detached cluster prints (its previous run's: `log.1`).
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Held while the cluster is being started, stopped or reset, so that
    /// two kubesh started at once make one cluster.
    fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }

    /// Makes the directory (mode 0700: the kubeconfig's token lets its
    /// reader run programs as this user).
    fn create(&self) -> Result<(), LocalError> {
        claim::create_private_dir(&self.dir)
    }
}

/// Why the user's local cluster could not be used, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "cannot find kubesh's data directory, where the local cluster lives (no home directory); set HOME or XDG_DATA_HOME"
    )]
    NoDataDir,
    #[error(
        "cannot write the local cluster's directory {}: {source}; make it writable, or set XDG_DATA_HOME to a directory you can write",
        .dir.display()
    )]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state directory {} is in use by another local cluster (pid {pid}); stop it first (`kubesh local-cluster stop` stops yours), or give another --state",
        .state.display()
    )]
    InUse { state: PathBuf, pid: String },
    #[error(
        "{} is locked by a process that did not say who it is (no pid in it); a program other than kubesh holds it",
        .path.display()
    )]
    Unrecorded { path: PathBuf },
    #[error(
        "the local cluster (pid {pid}) has ended, but {} is still locked {} s later, by a process it left behind; end that process (`fuser {}` names it)",
        .path.display(),
        .waited.as_secs(),
        .path.display()
    )]
    Ending {
        pid: u32,
        path: PathBuf,
        waited: Duration,
    },
    #[error(
        "another kubesh is still starting or stopping the local cluster after {} s; try again, or see its log {}",
        .waited.as_secs(),
        .log.display()
    )]
    Busy { waited: Duration, log: PathBuf },
    #[error("cannot run {} to start the local cluster: {source}", .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the local cluster ended while starting ({status}); the end of its log {}:\n{tail}", .log.display())]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "the local cluster did not accept requests within {} s; see its log {}",
        .waited.as_secs(),
        .log.display()
    )]
    NotReady { waited: Duration, log: PathBuf },
    #[error("cannot stop the local cluster (pid {pid}): {source}")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the local cluster (pid {pid}) is still running {} s after it was asked to stop; `kill -9 {pid}` ends it and its programs",
        .waited.as_secs()
    )]
    StillRunning { pid: u32, waited: Duration },
    #[error("cannot delete {}: {source}", .path.display())]
    Delete {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The user's local cluster, running: how to reach it.
#[derive(Debug, Clone)]
pub struct Running {
    pub record: Record,
    /// `https://127.0.0.1:PORT`, from its kubeconfig.
    pub server: String,
    /// The lines it printed first (what it is, how pods are isolated).
    pub banner: Vec<String>,
    /// Whether this call started it.
    pub started_now: bool,
}

impl Running {
    /// The local cluster's settings in this process's environment that the
    /// running cluster did not start with (nothing when this call started
    /// it).
    pub fn unapplied_settings(&self) -> Vec<claim::Unapplied> {
        if self.started_now {
            return Vec::new();
        }
        self.record.unapplied(&claim::settings_from_env())
    }
}

/// The user's local cluster, started if it is not running (or if it
/// crashed): what `kubesh --local` uses.
pub fn ensure(place: &Place) -> Result<Running, LocalError> {
    place.create()?;
    let _lock = lock::exclusive(&place.start_lock(), &place.log())?;
    if let Some(record) = claim::running(&place.state_dir())? {
        let server = daemon::wait_answering(&record.kubeconfig, &place.log())?;
        return Ok(Running {
            record,
            server,
            banner: daemon::banner(&place.log()),
            started_now: false,
        });
    }
    daemon::start(place)
}

/// The user's local cluster if it is running.
pub fn find(place: &Place) -> Result<Option<Running>, LocalError> {
    let Some(record) = claim::running(&place.state_dir())? else {
        return Ok(None);
    };
    let server = daemon::server_of(&record.kubeconfig).unwrap_or_default();
    Ok(Some(Running {
        record,
        server,
        banner: daemon::banner(&place.log()),
        started_now: false,
    }))
}

/// Stops the user's local cluster and waits (bounded) until it and its
/// pods have ended; what it stopped, or `None` when it was not running.
pub fn stop(place: &Place) -> Result<Option<Record>, LocalError> {
    if !place.dir.exists() {
        return Ok(None);
    }
    let _lock = lock::exclusive(&place.start_lock(), &place.log())?;
    daemon::stop(&place.state_dir())
}

/// Deletes the user's local cluster's state, kubeconfig and logs, stopping
/// it first; what was stopped.
pub fn reset(place: &Place) -> Result<Option<Record>, LocalError> {
    if !place.dir.exists() {
        return Ok(None);
    }
    let _lock = lock::exclusive(&place.start_lock(), &place.log())?;
    let stopped = daemon::stop(&place.state_dir())?;
    let state = place.state_dir();
    match std::fs::remove_dir_all(&state) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LocalError::Delete {
                path: state,
                source,
            });
        }
    }
    let log_1 = place.dir.join("log.1");
    for path in [place.kubeconfig(), place.log(), log_1] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LocalError::Delete { path, source }),
        }
    }
    Ok(stopped)
}

/// "3h 5m", "4m 10s", "12s".
pub fn duration_words(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_words(Duration::from_secs(12)), "12s");
        assert_eq!(duration_words(Duration::from_secs(250)), "4m 10s");
        assert_eq!(duration_words(Duration::from_secs(3 * 3600 + 301)), "3h 5m");
        assert_eq!(
            duration_words(Duration::from_secs(2 * 86_400 + 3600)),
            "2d 1h"
        );
    }
}
