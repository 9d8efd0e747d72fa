//! Hot reload: watching a background dproc's files and, on a save, putting
//! the new code in the cluster — the bundle's ConfigMaps (so every new or
//! restarted pod gets it) and the Deployment's pod template, whose content
//! hash changes and rolls the pods over. One line per reload says what
//! changed, how long it took and which path was taken.
//!
//! This is the rolling-update path. Writing the changed files into running
//! containers over exec (the live path) needs `pods/exec`, which the local
//! cluster does not offer yet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use notify::{RecursiveMode, Watcher};

use crate::launch::bundle::{self, Bundle, Limits};
use crate::launch::objects::{self, ANNOTATION_BUNDLE, LABEL_DPROC, Spec};

/// Where reload lines go: above the prompt in the interactive shell.
pub type Printer = Arc<dyn Fn(String) + Send + Sync>;

/// How long the files must be quiet before a reload: saves in a burst (an
/// editor's rename dance, a linker writing a binary) become one reload.
const QUIET: Duration = Duration::from_millis(150);

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
            let _ = events.send(event);
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
        let changed = changed_files(&self.running, &bundle.digests);
        let mut spec = self.spec.clone();
        spec.bundle_hash = bundle.short_hash().to_string();
        spec.chunks = bundle.chunks().count();
        let outcome = self.runtime.block_on(async {
            let work = async {
                update(&self.client, &spec, &bundle).await?;
                wait_new_pods(&self.client, &spec).await
            };
            // `unwatch` and exit do not wait for a rollout to finish.
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
        let files = if changed == 1 {
            "1 file".to_string()
        } else {
            format!("{changed} files")
        };
        match outcome {
            Ok(()) => (self.printer)(format!("↻ {name}  {files}  {ms} ms  (rollout)")),
            Err(reason) => {
                (self.printer)(format!("↻ {name}  {files}  {ms} ms  (rollout): {reason}"))
            }
        }
        // The cluster holds the new bundle now, running or not: the next
        // good save brings the program back.
        self.spec = spec;
        self.running = bundle.digests;
    }
}

fn changed_files(old: &Digests, new: &Digests) -> usize {
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .count()
}

/// Puts the new bundle in the ConfigMaps and the new pod template (with
/// the new content hash) in the Deployment.
async fn update(client: &kube::Client, spec: &Spec, bundle: &Bundle) -> Result<(), String> {
    let namespace = &spec.namespace;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let current = deployments
        .get(&spec.name)
        .await
        .map_err(|e| format!("the Deployment cannot be read: {e}"))?;
    let uid = current.metadata.uid.clone().unwrap_or_default();
    let old_chunks = current
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "bundle"))
        .and_then(|v| v.projected.as_ref())
        .and_then(|p| p.sources.as_ref())
        .map_or(0, Vec::len);
    let owner = objects::owner_reference("apps/v1", "Deployment", &spec.name, &uid);
    let chunks: Vec<&[u8]> = bundle.chunks().collect();
    for (index, config_map) in objects::config_maps(spec, &chunks, Some(owner))
        .into_iter()
        .enumerate()
    {
        let name = spec.config_map_name(index);
        if index < old_chunks {
            let patch = ConfigMap {
                binary_data: config_map.binary_data.clone(),
                metadata: kube::api::ObjectMeta {
                    annotations: config_map.metadata.annotations.clone(),
                    ..kube::api::ObjectMeta::default()
                },
                ..ConfigMap::default()
            };
            config_maps
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| format!("the ConfigMap {name} cannot be updated: {e}"))?;
        } else {
            config_maps
                .create(&PostParams::default(), &config_map)
                .await
                .map_err(|e| format!("the ConfigMap {name} cannot be created: {e}"))?;
        }
    }
    let template = objects::deployment(spec).spec.template;
    let patch = serde_json::json!({ "spec": { "template": template } });
    deployments
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("the Deployment cannot be updated: {e}"))?;
    for index in chunks.len()..old_chunks {
        let _ = config_maps
            .delete(&spec.config_map_name(index), &DeleteParams::default())
            .await;
    }
    Ok(())
}

/// Waits until a pod running the new bundle is ready, or reports why not.
async fn wait_new_pods(client: &kube::Client, spec: &Spec) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let config = watcher::Config::default().labels(&format!("{LABEL_DPROC}={}", spec.dproc_id));
    let mut events = std::pin::pin!(watcher(pods.clone(), config));
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut deadline => return Err("no pod with the new code became ready within 2 minutes; `ps` and `logs` tell more".to_string()),
        };
        let Some(event) = event else {
            return Err("the watch on the pods ended".to_string());
        };
        let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event else {
            continue;
        };
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_BUNDLE));
        if hash != Some(&spec.bundle_hash) {
            continue;
        }
        let Some(status) = &pod.status else { continue };
        let main = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == "main");
        if main.is_some_and(|c| c.ready) {
            return Ok(());
        }
        let crashed = main.and_then(|c| {
            let state = c.state.as_ref()?;
            let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone());
            let exited = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code);
            let exited_now = state.terminated.as_ref().map(|t| t.exit_code);
            match (waiting.as_deref(), exited.or(exited_now)) {
                (Some("CrashLoopBackOff"), code) | (_, code @ Some(_)) => Some(code),
                _ => None,
            }
        });
        if let Some(code) = crashed {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let params = kube::api::LogParams {
                container: Some("main".into()),
                tail_lines: Some(10),
                previous: code.is_some() && main.is_some_and(|c| c.restart_count > 0),
                ..kube::api::LogParams::default()
            };
            let lines = pods.logs(&name, &params).await.unwrap_or_default();
            let lines: Vec<String> = lines.lines().map(|l| format!("    {l}")).collect();
            let status = code.map_or(String::new(), |c| format!(" with status {c}"));
            return Err(format!(
                "the new code exits{status}; the old pods keep serving until a save fixes it; its last lines:\n{}",
                lines.join("\n")
            ));
        }
    }
}
