//! Hot reload: watching a background dproc's files and, on a save, putting
//! the new code in the cluster. The live path ([`live`]) writes the changed
//! files into the running pods over exec and restarts the program under
//! its supervisor; where that cannot be done — dependencies changed, no
//! shell in the image, exec refused, no pod running — the rollout path
//! ([`rollout`]) changes the pod template's content hash and Kubernetes
//! replaces the pods. For a dproc running the image built from its
//! Dockerfile, a save the image depends on takes the rebuild path
//! ([`rebuild`]): the image is built again and rolled out. Either way the
//! ConfigMaps hold the new bundle, so a pod started later runs it too. One line per reload says what changed,
//! how long it took and which path was taken. A file that changes right
//! after every reload ([`loops`]) stops the watch, with a word on why.

mod live;
mod loops;
mod rebuild;
mod rollout;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::launch::bundle::{self, Limits};
use crate::launch::image;
use crate::launch::objects::Spec;
use crate::launch::program::Files;
use crate::launch::saves::{Change, Saves, WatchError, being_written};
use crate::printer::Printer;
use live::{Diff, Live};
use loops::{LOOP_RELOADS, Loops};

/// The dprocs being watched, by name.
#[derive(Default)]
pub struct Reloads {
    watching: BTreeMap<String, Watch>,
    /// How many reloads each dproc has had in this session (the cluster
    /// holds the new code after each).
    done: Arc<Mutex<BTreeMap<String, u64>>>,
}

struct Watch {
    /// Set by `unwatch`, or by the watch itself when it stops on a loop.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn active(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

impl Reloads {
    /// How many reloads `name` has had in this session.
    pub fn reloaded(&self, name: &str) -> u64 {
        self.done
            .lock()
            .map_or(0, |done| done.get(name).copied().unwrap_or(0))
    }

    pub fn is_watching(&self, name: &str) -> bool {
        self.watching.get(name).is_some_and(Watch::active)
    }

    /// Starts watching a dproc launched by this session; `digests` are the
    /// files of the bundle it was launched with.
    pub fn watch(
        &mut self,
        spec: Spec,
        digests: Digests,
        client: kube::Client,
        runtime: tokio::runtime::Handle,
        printer: Printer,
    ) -> Result<(), WatchError> {
        if self.is_watching(&spec.name) {
            return Ok(());
        }
        // A watch that stopped on a reload loop makes way for the new one.
        self.unwatch(&spec.name);
        let stop = Arc::new(AtomicBool::new(false));
        let files = spec.program.files.clone().ok_or(WatchError::NoFiles)?;
        let saves = Saves::watch(&files.root, &files.file)?;
        let name = spec.name.clone();
        let stopping = Arc::clone(&stop);
        let done = Arc::clone(&self.done);
        let thread = std::thread::Builder::new()
            .name(format!("reload-{name}"))
            .spawn(move || {
                let mut reloader = Reloader {
                    spec,
                    files,
                    client,
                    runtime,
                    printer,
                    running: digests,
                    done,
                };
                reloader.run(&saves, &stopping);
            })
            .map_err(WatchError::Thread)?;
        self.watching.insert(
            name,
            Watch {
                stop,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// Stops watching a dproc; `false` when it was not watched (or its
    /// watch had stopped by itself).
    pub fn unwatch(&mut self, name: &str) -> bool {
        match self.watching.remove(name) {
            Some(mut watch) => {
                let was_active = !watch.stop.swap(true, Ordering::Relaxed);
                if let Some(thread) = watch.thread.take() {
                    let _ = thread.join();
                }
                was_active
            }
            None => false,
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.watching
            .iter()
            .filter(|(_, watch)| watch.active())
            .map(|(name, _)| name.as_str())
    }
}

impl Drop for Reloads {
    fn drop(&mut self) {
        let names: Vec<String> = self.watching.keys().cloned().collect();
        for name in names {
            self.unwatch(&name);
        }
    }
}

struct Reloader {
    spec: Spec,
    /// The dproc's files (its program has some, or it is not watched).
    files: Files,
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    printer: Printer,
    /// The files of the bundle in the cluster now, to tell what changed.
    running: Digests,
    /// The count of reloads done, shared with [`Reloads`].
    done: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Each file of a bundle with its SHA-256.
pub type Digests = BTreeMap<String, [u8; 32]>;

/// A reload done: the files it changed in the cluster and when it ended.
struct Done {
    files: BTreeSet<String>,
    ended: Instant,
}

impl Reloader {
    fn run(&mut self, saves: &Saves, stop: &AtomicBool) {
        let mut loops = Loops::default();
        // A save while the dproc was starting is picked up at once, unless
        // a binary is still being linked: its last write is a save to come.
        if !being_written(&self.files.file)
            && let Some(done) = self.reload(None, stop)
        {
            loops.record(None, &done.files, done.ended);
        }
        while !stop.load(Ordering::Relaxed) {
            let Some(first) = saves.changed_within(Duration::from_millis(200)) else {
                continue;
            };
            // The update's connections into the pods are made while the
            // save settles; called off if it comes to nothing.
            let mut preparing = self.prepare_for(&first);
            let settled = saves.settled(|change| {
                if preparing.is_none() {
                    preparing = self.prepare_for(change);
                }
            });
            if !settled || stop.load(Ordering::Relaxed) {
                continue;
            }
            let Some(done) = self.reload(preparing, stop) else {
                continue;
            };
            let looping = loops.record(Some(first.at), &done.files, done.ended);
            if !looping.is_empty() {
                // `watch NAME` starts again; until then the dproc runs the
                // code it has.
                stop.store(true, Ordering::Relaxed);
                (self.printer)(self.loop_message(&looping));
                return;
            }
        }
    }

    /// Why the watch stopped, and how to start it again.
    fn loop_message(&self, looping: &[String]) -> String {
        let name = &self.spec.name;
        let files = listed(looping);
        let said = format!(
            "kubesh: {name}: {files} changed after each of the last {LOOP_RELOADS} reloads; stopped watching {name}."
        );
        let program = self
            .files
            .file
            .strip_prefix(&self.files.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if looping.contains(&program) {
            format!("{said} Something writes it after every reload: stop that, then `watch {name}`")
        } else {
            format!("{said} Add {files} to .kubeshignore, then `watch {name}`")
        }
    }

    /// Starts the live update in the running pods when `change` touches a
    /// file of the bundle in the cluster: a file an ignore rule keeps out
    /// (a log written all the time) costs no exec. A new file is prepared
    /// for after the save, as the bundle shows it is one; a file the
    /// dproc's image is built from is not, as the image is built again.
    fn prepare_for(&self, change: &Change) -> Option<Preparing> {
        let inside: Vec<String> = change
            .paths
            .iter()
            .filter_map(|path: &PathBuf| path.strip_prefix(&self.files.root).ok())
            .map(|inside| inside.to_string_lossy().into_owned())
            .collect();
        let shipped = inside.iter().any(|name| self.running.contains_key(name));
        let rebuilds = self.spec.build.as_ref().is_some_and(|rebuild| {
            let names = inside.iter().map(String::as_str);
            rebuild::needed_by(&rebuild.build, &self.files.root, &self.running, names).is_some()
        });
        if shipped && !rebuilds {
            self.prepare()
        } else {
            None
        }
    }

    /// Starts the live update in the running pods, when the dproc can
    /// take one.
    fn prepare(&self) -> Option<Preparing> {
        live::possible(&self.spec).ok()?;
        let target = live::Target::of(&self.spec);
        let task = self
            .runtime
            .spawn(live::prepare(self.client.clone(), target));
        Some(Preparing(task))
    }

    /// Reloads the dproc with its files as they are; `None` when nothing
    /// was reloaded (nothing changed, the files cannot be packed, or the
    /// watch stopped meanwhile).
    fn reload(&mut self, preparing: Option<Preparing>, stop: &AtomicBool) -> Option<Done> {
        let started = Instant::now();
        let name = self.spec.name.clone();
        let bundle = match bundle::build(&self.files.root, &self.files.file, Limits::default()) {
            Ok(bundle) => bundle,
            Err(error) => {
                (self.printer)(format!("↻ {name}  not reloaded: {error}"));
                return None;
            }
        };
        if bundle.short_hash() == self.spec.bundle_hash {
            return None;
        }
        let diff = Diff::between(&self.running, &bundle.digests);
        let mut spec = self.spec.clone();
        spec.bundle_hash = bundle.short_hash().to_string();
        let chunks = bundle.chunks().count();
        let live_path = self.live_path(&diff, chunks);
        spec.chunks = chunks;
        let rebuilding = rebuild::wanted(&spec, &self.files.root, &bundle, &diff);
        if let Some((_, rebuild)) = &rebuilding {
            spec = rebuild::retagged(spec, rebuild.clone());
        }
        let client = &self.client;
        let target = live::Target::of(&self.spec);
        let printer = &self.printer;
        let outcome = self.runtime.block_on(async {
            let work = async {
                if let Some((because, rebuild)) = rebuilding {
                    let outcome = rebuild::rebuild(client, &spec, &rebuild, &bundle, printer).await;
                    return Reloaded::Rebuilt {
                        because,
                        tag: rebuild.build.tag,
                        outcome,
                    };
                }
                let fallback = match live_path {
                    Ok(()) => {
                        let prepared = async {
                            match preparing {
                                Some(preparing) => preparing.prepared().await,
                                None => live::prepare(client.clone(), target).await,
                            }
                        };
                        match live::update(client, &spec, &bundle, &diff, prepared).await {
                            Ok(live) => return Reloaded::Live(live),
                            Err(reason) => reason,
                        }
                    }
                    Err(reason) => reason,
                };
                Reloaded::Rollout {
                    reason: fallback,
                    outcome: rollout::roll_out(client, &spec, &bundle).await,
                }
            };
            // `unwatch` and exit do not wait for a reload to finish.
            let stopped = async {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                outcome = work => Some(outcome),
                () = stopped => None,
            }
        });
        let outcome = outcome?;
        // Before the line: whatever reacts to it comes after.
        let ended = Instant::now();
        let took = ended.duration_since(started);
        let files = match diff.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        let line = match &outcome {
            // The time is part of the sentence.
            Reloaded::Rebuilt { .. } => format!("↻ {name}  {files}  {}", outcome.describe(took)),
            _ => format!(
                "↻ {name}  {files}  {} ms  {}",
                took.as_millis(),
                outcome.describe(took)
            ),
        };
        (self.printer)(line);
        if matches!(
            outcome,
            Reloaded::Rollout {
                outcome: Err(rollout::RolloutError::NotStored(_)),
                ..
            } | Reloaded::Rebuilt {
                outcome: Err(rebuild::RebuildError::Build(_)
                    | rebuild::RebuildError::Delivery(_)
                    | rebuild::RebuildError::Rollout(rollout::RolloutError::NotStored(_))),
                ..
            }
        ) {
            // The next save is compared with what the cluster still has.
            return None;
        }
        // The cluster holds the new bundle now, running or not: the next
        // good save brings the program back.
        self.spec = spec;
        self.running = bundle.digests;
        if let Ok(mut done) = self.done.lock() {
            *done.entry(name).or_default() += 1;
        }
        let files = diff.changed.into_iter().chain(diff.deleted).collect();
        Some(Done { files, ended })
    }

    /// `Ok` when the saved files can go into the running pods; otherwise
    /// why a rollout is needed.
    fn live_path(&self, diff: &Diff, chunks: usize) -> Result<(), live::NoLivePath> {
        live::possible(&self.spec)?;
        if let Some(dependencies) = &self.spec.program.runtime.dependencies
            && diff.touches_any(&dependencies.files)
        {
            return Err(live::NoLivePath::Dependencies);
        }
        if chunks != self.spec.chunks {
            return Err(live::NoLivePath::BundleSize);
        }
        Ok(())
    }
}

/// The live update being started in the pods while a save settles (see
/// [`live::prepare`]); dropped unused, it is called off, and the updates
/// waiting in the pods see their input end.
struct Preparing(tokio::task::JoinHandle<Result<live::Prepared, live::NoLivePath>>);

impl Preparing {
    async fn prepared(mut self) -> Result<live::Prepared, live::NoLivePath> {
        (&mut self.0).await.map_err(live::NoLivePath::NotStarted)?
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Which path a reload took and how it ended.
enum Reloaded {
    Live(Live),
    Rollout {
        reason: live::NoLivePath,
        outcome: Result<(), rollout::RolloutError>,
    },
    /// The image built again (`because` that file changed) as `tag`, and
    /// rolled out.
    Rebuilt {
        because: String,
        tag: String,
        outcome: Result<image::Built, rebuild::RebuildError>,
    },
}

impl Reloaded {
    /// The end of the reload line: the path, and what went wrong if
    /// anything; `took` is the whole reload's time.
    fn describe(&self, took: Duration) -> String {
        let seconds = took.as_secs_f64();
        match self {
            Reloaded::Rebuilt {
                because,
                tag,
                outcome,
            } => match outcome {
                Ok(image::Built::Now(_)) => {
                    format!("rebuilt {tag} and rolled out in {seconds:.1} s ({because} changed)")
                }
                Ok(image::Built::AlreadyThere) => {
                    format!("rolled out {tag}, built before, in {seconds:.1} s ({because} changed)")
                }
                Err(error @ rebuild::RebuildError::Build(_)) => {
                    format!("not rebuilt ({because} changed); {error}")
                }
                Err(error @ rebuild::RebuildError::Delivery(_)) => {
                    format!("built {tag} ({because} changed), not delivered; {error}")
                }
                Err(error @ rebuild::RebuildError::Rollout(_)) => {
                    format!("built {tag} ({because} changed), not rolled out: {error}")
                }
            },
            Reloaded::Live(Live::Updated {
                pods,
                waiting,
                unready,
            }) => {
                let pods = if *pods > 1 {
                    format!(", {pods} pods")
                } else {
                    String::new()
                };
                if !waiting.is_empty() {
                    format!(
                        "(live{pods}); not listening on its port yet in {}",
                        waiting.join(", ")
                    )
                } else if !unready.is_empty() {
                    format!(
                        "(live{pods}); not ready yet in {} (`ps` shows when it is)",
                        unready.join(", ")
                    )
                } else {
                    format!("(live{pods})")
                }
            }
            Reloaded::Live(Live::Exited { pod, status, lines }) => {
                let lines: Vec<String> = lines.iter().map(|l| format!("    {l}")).collect();
                format!(
                    "(live): the new code exits with status {status} in {pod}; the next save restarts it; its last lines:\n{}",
                    lines.join("\n")
                )
            }
            Reloaded::Rollout { reason, outcome } => match outcome {
                Ok(()) => format!("(rollout: {reason})"),
                Err(error) => format!("(rollout: {reason}): {error}"),
            },
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listed(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_as_in_a_sentence() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(listed(&names(&["app.log"])), "app.log");
        assert_eq!(listed(&names(&["a", "b"])), "a and b");
        assert_eq!(listed(&names(&["a", "b", "c"])), "a, b and c");
    }
}
