//! Foreground programs under hot reload: like watchexec, the program runs
//! again with the new files whenever they change — stopped first if it is
//! still running, started anew if it has ended — until Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::bundle::{self, Bundle, Limits};
use super::objects::Spec;
use super::plan::PlanError;
use super::saves::{Saves, WatchError};
use crate::cluster::Connection;
use crate::cluster::dprocs::Launched;
use crate::interrupt::Interrupt;
use crate::status::STATUS_INTERRUPTED;

/// Runs the foreground dproc, and again after every change to its files,
/// until Ctrl-C. `replan` packs the files again for the next run. Each pod
/// created after the first goes into `reruns`. Returns the last run's status.
pub fn watching(
    connection: &Connection,
    interrupt: &Interrupt,
    first: (Spec, Bundle),
    replan: impl Fn() -> Result<(Spec, Bundle), PlanError>,
    reruns: &mut Vec<Launched>,
) -> i32 {
    let (mut spec, mut bundle) = first;
    let changes = match Changes::watch(&spec, &bundle, interrupt.clone()) {
        Ok(changes) => Some(changes),
        Err(error) => {
            report!("kubesh: {}: not watched: {error}", spec.name);
            None
        }
    };
    loop {
        let status = match super::wait::foreground(connection, interrupt, &spec, &bundle) {
            Ok(status) => status,
            Err(error) => {
                report!("kubesh: {error}");
                1
            }
        };
        let Some(changes) = &changes else {
            return status;
        };
        if !changes.take() {
            if interrupt.is_set() {
                return status;
            }
            report!(
                "kubesh: {} ended with status {status}; it runs again when its files change (Ctrl-C stops)",
                spec.program.shown()
            );
            loop {
                if changes.take() {
                    break;
                }
                if interrupt.is_set() {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        loop {
            match replan() {
                Ok((next_spec, next_bundle)) => {
                    report!(
                        "↻ {}  running again with the new files",
                        spec.program.shown()
                    );
                    (spec, bundle) = (next_spec, next_bundle);
                    reruns.push(Launched {
                        name: spec.name.clone(),
                        namespace: spec.namespace.clone(),
                        background: false,
                    });
                    changes.running(&bundle);
                    break;
                }
                Err(error) => {
                    report!("↻ {}  not run again: {error}", spec.program.shown());
                    loop {
                        if changes.take() {
                            break;
                        }
                        if interrupt.is_set() {
                            return STATUS_INTERRUPTED;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
    }
}

/// Watches a program's files; a change that alters its bundle raises the
/// interrupt (stopping a running foreground program) and is remembered.
struct Changes {
    /// Set with the interrupt raised, under one lock, so that taking it
    /// also clears that interrupt (and never a later one).
    changed: Arc<Mutex<bool>>,
    interrupt: Interrupt,
    running_hash: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

impl Changes {
    fn watch(spec: &Spec, bundle: &Bundle, interrupt: Interrupt) -> Result<Changes, WatchError> {
        let files = spec.program.files.clone().ok_or(WatchError::NoFiles)?;
        let saves = Saves::watch(&files.root, &files.file)?;
        let changes = Changes {
            changed: Arc::default(),
            interrupt: interrupt.clone(),
            running_hash: Arc::new(Mutex::new(bundle.hash.clone())),
            stop: Arc::default(),
        };
        let (changed, running_hash, stop) = (
            Arc::clone(&changes.changed),
            Arc::clone(&changes.running_hash),
            Arc::clone(&changes.stop),
        );
        std::thread::Builder::new()
            .name("rerun-watch".to_string())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if !saves.saved_within(Duration::from_millis(200)) {
                        continue;
                    }
                    // Only a change to what would be shipped counts.
                    let Ok(new) = bundle::build(&files.root, &files.file, Limits::default()) else {
                        continue;
                    };
                    let differs = running_hash.lock().is_ok_and(|hash| *hash != new.hash);
                    if differs && let Ok(mut changed) = changed.lock() {
                        *changed = true;
                        interrupt.raise();
                    }
                }
            })
            .map_err(WatchError::Thread)?;
        Ok(changes)
    }

    /// Whether the files changed since the last call; clears the
    /// interrupt the change raised to stop the program.
    fn take(&self) -> bool {
        let Ok(mut changed) = self.changed.lock() else {
            return false;
        };
        let was = std::mem::replace(&mut *changed, false);
        if was {
            self.interrupt.take();
        }
        was
    }

    /// The bundle now running, which later changes are compared with.
    fn running(&self, bundle: &Bundle) {
        if let Ok(mut hash) = self.running_hash.lock() {
            *hash = bundle.hash.clone();
        }
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
