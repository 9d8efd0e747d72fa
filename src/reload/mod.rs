//! Hot reload: watching a background dproc's files and, on a save, putting
//! the new code in the cluster. The live path ([`live`]) writes the changed
//! files into the running pods over exec and restarts the program under
//! its supervisor; where that cannot be done — dependencies changed, no
//! shell in the image, exec refused, no pod running — the rollout path
//! ([`rollout`]) changes the pod template's content hash and Kubernetes
//! replaces the pods. Either way the ConfigMaps hold the new bundle, so a
//! pod started later runs it too. One line per reload says what changed,
//! how long it took and which path was taken.

mod live;
mod rollout;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::launch::bundle::{self, Limits};
use crate::launch::objects::Spec;
use live::{Diff, Live};

/// Where reload lines go: above the prompt in the interactive shell.
pub type Printer = Arc<dyn Fn(String) + Send + Sync>;

/// How long the files must be quiet before a reload: saves in a burst (an
/// editor's rename dance, a linker writing a binary) become one reload.
const QUIET: Duration = Duration::from_millis(50);

/// The dprocs being watched, by name.
#[derive(Default)]
pub struct Reloads {
    watching: BTreeMap<String, Watch>,
}

struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reloads {
    pub fn is_watching(&self, name: &str) -> bool {
        self.watching.contains_key(name)
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
    ) -> Result<(), String> {
        if self.is_watching(&spec.name) {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (events, received) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            if changes_files(&event) {
                let _ = events.send(event);
            }
        })
        .map_err(|e| format!("the files cannot be watched: {e}"))?;
        watcher
            .watch(&spec.program.root, RecursiveMode::Recursive)
            .map_err(|e| format!("{} cannot be watched: {e}", spec.program.root.display()))?;
        let name = spec.name.clone();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("reload-{name}"))
            .spawn(move || {
                let _watcher = watcher;
                let mut reloader = Reloader {
                    spec,
                    client,
                    runtime,
                    printer,
                    running: digests,
                };
                reloader.run(&received, &stopping);
            })
            .map_err(|e| format!("the watcher cannot start: {e}"))?;
        self.watching.insert(
            name,
            Watch {
                stop,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// Stops watching a dproc; `false` when it was not watched.
    pub fn unwatch(&mut self, name: &str) -> bool {
        match self.watching.remove(name) {
            Some(mut watch) => {
                watch.stop.store(true, Ordering::Relaxed);
                if let Some(thread) = watch.thread.take() {
                    let _ = thread.join();
                }
                true
            }
            None => false,
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.watching.keys().map(String::as_str)
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
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    printer: Printer,
    /// The files of the bundle in the cluster now, to tell what changed.
    running: Digests,
}

/// Each file of a bundle with its SHA-256.
pub type Digests = BTreeMap<String, [u8; 32]>;

impl Reloader {
    fn run(&mut self, events: &mpsc::Receiver<notify::Result<notify::Event>>, stop: &AtomicBool) {
        // A save while the dproc was starting is picked up at once.
        self.reload(stop);
        while !stop.load(Ordering::Relaxed) {
            match events.recv_timeout(Duration::from_millis(200)) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            // Wait for the files to be quiet, so that nothing half-written ships.
            while events.recv_timeout(QUIET).is_ok() {}
            if stop.load(Ordering::Relaxed) {
                return;
            }
            self.reload(stop);
        }
    }

    fn reload(&mut self, stop: &AtomicBool) {
        let started = Instant::now();
        let name = self.spec.name.clone();
        if being_written(&self.spec.program.file) {
            // The linker's last write is another event: that one ships it.
            return;
        }
        let bundle = match bundle::build(
            &self.spec.program.root,
            &self.spec.program.file,
            Limits::default(),
        ) {
            Ok(bundle) => bundle,
            Err(error) => {
                (self.printer)(format!("↻ {name}  not reloaded: {error}"));
                return;
            }
        };
        if bundle.short_hash() == self.spec.bundle_hash {
            return;
        }
        let diff = Diff::between(&self.running, &bundle.digests);
        let mut spec = self.spec.clone();
        spec.bundle_hash = bundle.short_hash().to_string();
        let chunks = bundle.chunks().count();
        let live_path = self.live_path(&diff, chunks);
        spec.chunks = chunks;
        let client = &self.client;
        let outcome = self.runtime.block_on(async {
            let work = async {
                let fallback = match live_path {
                    Ok(()) => match live::update(client, &spec, &bundle, &diff).await {
                        Ok(live) => return Reloaded::Live(live),
                        Err(reason) => reason,
                    },
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
        let Some(outcome) = outcome else {
            return;
        };
        let ms = started.elapsed().as_millis();
        let files = match diff.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        (self.printer)(format!(
            "↻ {name}  {files}  {ms} ms  {}",
            outcome.describe()
        ));
        if matches!(
            outcome,
            Reloaded::Rollout {
                outcome: Err(rollout::RolloutError::NotStored(_)),
                ..
            }
        ) {
            // The next save is compared with what the cluster still has.
            return;
        }
        // The cluster holds the new bundle now, running or not: the next
        // good save brings the program back.
        self.spec = spec;
        self.running = bundle.digests;
    }

    /// `Ok` when the saved files can go into the running pods; otherwise
    /// why a rollout is needed.
    fn live_path(&self, diff: &Diff, chunks: usize) -> Result<(), String> {
        live::possible(&self.spec)?;
        if let Some(dependencies) = &self.spec.program.runtime.dependencies
            && diff.touches_any(&dependencies.files)
        {
            return Err("dependencies changed".to_string());
        }
        if chunks != self.spec.chunks {
            return Err("the bundle changed size".to_string());
        }
        Ok(())
    }
}

/// Whether a file event may change what is shipped: reading a file (as
/// packing the bundle does) must not start another reload.
pub fn changes_files(event: &notify::Result<notify::Event>) -> bool {
    !matches!(event, Ok(e) if matches!(e.kind, notify::EventKind::Access(_)))
}

/// Whether the program is a binary still being written: its headers point
/// past the end of the file, or are not all there yet.
pub fn being_written(program: &std::path::Path) -> bool {
    use crate::launch::executable::{FileKind, inspect};
    std::fs::read(program).is_ok_and(|bytes| {
        bytes.starts_with(b"\x7fELF")
            && !matches!(inspect(&bytes), FileKind::Elf(elf) if elf.complete)
    })
}

/// Which path a reload took and how it ended.
enum Reloaded {
    Live(Live),
    Rollout {
        reason: String,
        outcome: Result<(), rollout::RolloutError>,
    },
}

impl Reloaded {
    /// The end of the reload line: the path, and what went wrong if anything.
    fn describe(&self) -> String {
        match self {
            Reloaded::Live(Live::Updated { pods, waiting }) => {
                let pods = if *pods > 1 {
                    format!(", {pods} pods")
                } else {
                    String::new()
                };
                if waiting.is_empty() {
                    format!("(live{pods})")
                } else {
                    format!(
                        "(live{pods}); not listening on its port yet in {}",
                        waiting.join(", ")
                    )
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
