//! The start lock: one kubesh at a time starts, stops or resets the user's
//! local cluster; the others wait for it (bounded), then find the cluster
//! it started.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use super::LocalError;

/// How long a kubesh waits for another one to start or stop the cluster:
/// a start that restores many pods, or a stop that gives programs their
/// grace period, takes a while.
const WAIT: Duration = Duration::from_secs(90);

/// Holds `path`'s lock (exclusive) until dropped.
pub struct Held {
    _file: File,
}

/// Takes the lock at `path`, waiting at most [`WAIT`] for another holder;
/// `log` is named when that holder takes too long.
pub fn exclusive(path: &Path, log: &Path) -> Result<Held, LocalError> {
    let unwritable = |source| LocalError::Unwritable {
        dir: path.parent().unwrap_or(path).to_path_buf(),
        source,
    };
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(unwritable)?
    };
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Held { _file: file }),
            Err(TryLockError::WouldBlock) if started.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LocalError::Busy {
                    waited: WAIT,
                    log: log.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(unwritable(source)),
        }
    }
}
