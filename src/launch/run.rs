//! Creating a dproc's objects and waiting for it: a background dproc until
//! its pods are ready, a foreground one until its program ends (its output
//! streamed meanwhile). Failures the cluster knows of — an image that
//! cannot be pulled, a crash, a failing dependency install, a pod that
//! cannot be scheduled — end the wait at once, with the last log lines. A
//! foreground program that reads its stdin gets kubesh's, over
//! `pods/attach` (its output still comes from its log, from the start).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStatus, Pod, Service};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kube::runtime::watcher;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::bundle::Bundle;
use super::objects::{self, Spec};
use crate::cluster::connection::{ClusterError, Connection, status_code};
use crate::interrupt::Interrupt;
use crate::labels::{LABEL_DPROC, LABEL_MANAGED_BY, MANAGED_BY_KUBESH};

/// How a launch ended, short of success.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Failed(String),
}

/// Creates a background dproc and waits until its pods are ready; returns
/// how long that took and the Service as the cluster created it.
pub fn background(
    connection: &Connection,
    interrupt: &Interrupt,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(Duration, Service), LaunchError> {
    let started = Instant::now();
    let spinner = spinner(&spec.name);
    spinner.set_message(format!("{}: creating", spec.name));
    let service = match connection.block_on(create_background(connection, spec, bundle)) {
        Ok(service) => service,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(error);
        }
    };
    let replicas = Replicas {
        namespace: &spec.namespace,
        name: &spec.name,
        dproc_id: &spec.dproc_id,
        count: spec.replicas,
    };
    let waited =
        connection.until_interrupted(interrupt, wait_ready(connection, &replicas, &spinner));
    spinner.finish_and_clear();
    match waited {
        Ok(result) => result.map(|()| (started.elapsed(), service)),
        Err(ClusterError::Interrupted) => Err(LaunchError::Failed(format!(
            "stopped waiting; {} ({}) stays: `ps` shows it, `kill {}` removes it",
            spec.name, spec.dproc_id, spec.name
        ))),
        Err(error) => Err(error.into()),
    }
}

/// The pods of a background dproc that a wait is for.
pub struct Replicas<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub dproc_id: &'a str,
    /// How many must be ready.
    pub count: i32,
}

/// Waits, with a spinner, until the dproc has `replicas.count` ready pods
/// (after `scale`); returns how long that took.
pub fn scaled(
    connection: &Connection,
    interrupt: &Interrupt,
    replicas: &Replicas,
) -> Result<Duration, LaunchError> {
    let started = Instant::now();
    let spinner = spinner(replicas.name);
    let waited =
        connection.until_interrupted(interrupt, wait_ready(connection, replicas, &spinner));
    spinner.finish_and_clear();
    match waited {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(LaunchError::Failed(reason))) => Err(LaunchError::Failed(format!(
            "{reason}\n{} stays set to {} replicas: `ps` shows how many are ready, \
             `scale {} N` sets another number",
            replicas.name, replicas.count, replicas.name
        ))),
        Ok(Err(error)) => Err(error),
        Err(ClusterError::Interrupted) => Err(LaunchError::Failed(format!(
            "stopped waiting; {} goes on scaling to {}: `ps` shows how far it got",
            replicas.name, replicas.count
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Creates a foreground dproc, streams its output and returns its exit
/// status. Ctrl-C stops the program and deletes its pod.
pub fn foreground(
    connection: &Connection,
    interrupt: &Interrupt,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<i32, LaunchError> {
    let spinner = spinner(&spec.name);
    spinner.set_message(format!("{}: creating", spec.name));
    let created = connection.block_on(create_foreground(connection, spec, bundle));
    if let Err(error) = created {
        spinner.finish_and_clear();
        return Err(error);
    }
    let (reader, input) = match spec.stdin {
        true => {
            let (reader, input) = super::input::read_stdin();
            (Some(reader), Some(input))
        }
        false => (None, None),
    };
    let outcome =
        connection.until_interrupted(interrupt, run_foreground(connection, spec, &spinner, input));
    if let Some(reader) = reader {
        reader.stop();
    }
    spinner.finish_and_clear();
    match outcome {
        Ok(result) => result,
        Err(ClusterError::Interrupted) => {
            let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
            let _ = connection
                .block_on(pods.delete(&spec.name, &DeleteParams::default().grace_period(0)));
            Ok(crate::status::STATUS_INTERRUPTED)
        }
        Err(error) => Err(error.into()),
    }
}

fn spinner(name: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.set_message(name.to_string());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

async fn create_background(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<Service, LaunchError> {
    let client = connection.client.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
    let created = match deployments
        .create(&PostParams::default(), &objects::deployment(spec))
        .await
    {
        Ok(created) => created,
        Err(error) if status_code(&error) == Some(409) => {
            let existing = deployments.get(&spec.name).await.ok();
            return Err(LaunchError::Failed(name_taken(
                "Deployment",
                &spec.name,
                existing.as_ref().map(|d| &d.metadata),
            )));
        }
        Err(error) => return Err(creation_error(connection, spec, error)),
    };
    let uid = created.metadata.uid.unwrap_or_default();
    let owner = objects::owner_reference("apps/v1", "Deployment", &spec.name, &uid);
    let rest = async {
        create_config_maps(connection, spec, bundle, owner.clone()).await?;
        let services: Api<Service> = Api::namespaced(client.clone(), &spec.namespace);
        match services
            .create(&PostParams::default(), &objects::service(spec, Some(owner)))
            .await
        {
            Ok(service) => Ok(service),
            Err(error) if status_code(&error) == Some(409) => {
                let existing = services.get(&spec.name).await.ok();
                Err(LaunchError::Failed(name_taken(
                    "Service",
                    &spec.name,
                    existing.as_ref().map(|s| &s.metadata),
                )))
            }
            Err(error) => Err(LaunchError::Cluster(connection.explain(error))),
        }
    };
    match rest.await {
        Ok(service) => Ok(service),
        Err(error) => {
            // Nothing half-created stays: the ConfigMaps go with the Deployment.
            let _ = deployments
                .delete(&spec.name, &DeleteParams::background())
                .await;
            Err(error)
        }
    }
}

async fn create_foreground(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(), LaunchError> {
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let created = pods
        .create(&PostParams::default(), &objects::pod(spec))
        .await
        .map_err(|error| creation_error(connection, spec, error))?;
    let uid = created.metadata.uid.unwrap_or_default();
    let owner = objects::owner_reference("v1", "Pod", &spec.name, &uid);
    if let Err(error) = create_config_maps(connection, spec, bundle, owner).await {
        let _ = pods
            .delete(&spec.name, &DeleteParams::default().grace_period(0))
            .await;
        return Err(error);
    }
    Ok(())
}

async fn create_config_maps(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<(), LaunchError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let chunks: Vec<&[u8]> = bundle.chunks().collect();
    for config_map in objects::config_maps(spec, &chunks, Some(owner)) {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        match config_maps
            .create(&PostParams::default(), &config_map)
            .await
        {
            Ok(_) => {}
            Err(error) if status_code(&error) == Some(409) => {
                return Err(LaunchError::Failed(format!(
                    "a ConfigMap named {name} already exists and kubesh will not overwrite it; \
                     set SERVICE_NAME to launch under another name"
                )));
            }
            Err(error) => return Err(LaunchError::Cluster(connection.explain(error))),
        }
    }
    Ok(())
}

fn creation_error(connection: &Connection, spec: &Spec, error: kube::Error) -> LaunchError {
    if status_code(&error) == Some(404) {
        return LaunchError::Failed(format!(
            "namespace {} does not exist; create it with `literally create namespace {}` or pick \
             another with --namespace",
            spec.namespace, spec.namespace
        ));
    }
    LaunchError::Cluster(connection.explain(error))
}

fn name_taken(
    kind: &str,
    name: &str,
    existing: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
) -> String {
    let labels = existing.and_then(|m| m.labels.as_ref());
    let ours = labels
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|v| v == MANAGED_BY_KUBESH);
    if ours {
        let dproc = labels
            .and_then(|l| l.get(LABEL_DPROC))
            .cloned()
            .unwrap_or_default();
        format!(
            "{name} is already running ({dproc}); `kill {name}` first, or set SERVICE_NAME to run another copy"
        )
    } else {
        format!(
            "a {kind} named {name} already exists and was not created by kubesh, which will not \
             touch it; set SERVICE_NAME to launch under another name"
        )
    }
}

/// What a pod tells about the launch.
pub(crate) enum Progress {
    Phase(String),
    /// Waiting for a port another pod of the local cluster holds (the
    /// cluster's words): a failure once it lasts, as the holder may be on
    /// its way out.
    PortInUse(String),
    Ready,
    /// The program ended (foreground) with this exit code.
    Ended(i32),
    Failed {
        reason: String,
        /// The container whose last lines explain it, and whether they are
        /// from its previous run.
        logs: Option<(String, bool)>,
    },
}

pub(crate) fn assess(pod: &Pod, background: bool) -> Progress {
    let Some(status) = &pod.status else {
        return Progress::Phase("scheduling".into());
    };
    if let Some(condition) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        && condition.reason.as_deref() == Some("Unschedulable")
    {
        return Progress::Failed {
            reason: format!(
                "the pod cannot be scheduled: {}",
                condition.message.clone().unwrap_or_default()
            ),
            logs: None,
        };
    }
    for init in status.init_container_statuses.iter().flatten() {
        if let Some(failure) = container_failure(init, true) {
            return failure;
        }
        let done = init
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0);
        if !done {
            let phase = match init.name.as_str() {
                "dependencies" => "installing dependencies",
                _ => "unpacking the program",
            };
            return Progress::Phase(waiting_phase(init).unwrap_or_else(|| phase.to_string()));
        }
    }
    let Some(main) = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == "main")
    else {
        return Progress::Phase("starting".into());
    };
    if !background {
        if let Some(terminated) = main.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            return Progress::Ended(terminated.exit_code);
        }
        if main
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_some()
        {
            return Progress::Ready;
        }
        return match container_failure(main, false) {
            Some(failure) => failure,
            None => Progress::Phase(waiting_phase(main).unwrap_or_else(|| "starting".into())),
        };
    }
    // Ready first: a pod that crashed once and has come back (an older
    // replica, when scaling) is ready, not failing.
    if main.ready {
        return Progress::Ready;
    }
    if let Some(failure) = container_failure(main, false) {
        return failure;
    }
    if main
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .is_some()
    {
        return Progress::Phase("starting: waiting for the program to listen on its port".into());
    }
    Progress::Phase(waiting_phase(main).unwrap_or_else(|| "starting".into()))
}

fn waiting_phase(container: &ContainerStatus) -> Option<String> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone()?;
    Some(match reason.as_str() {
        "ContainerCreating" | "PodInitializing" => {
            "pulling image / creating the container".to_string()
        }
        other => other.to_string(),
    })
}

fn container_failure(container: &ContainerStatus, init: bool) -> Option<Progress> {
    let image = &container.image;
    let state = container.state.as_ref()?;
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        match reason.as_str() {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                return Some(Progress::Failed {
                    reason: format!(
                        "the image {image} cannot be pulled ({reason}): {message}; set another with <RUNTIME>_IMAGE"
                    ),
                    logs: None,
                });
            }
            "CrashLoopBackOff" => {
                let code = container
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code);
                return Some(Progress::Failed {
                    reason: match code {
                        Some(code) => {
                            format!("the program keeps crashing (last exit status {code})")
                        }
                        None => "the program keeps crashing".to_string(),
                    },
                    logs: Some((container.name.clone(), true)),
                });
            }
            // The local cluster's pods share one network: the cluster says
            // which pod holds the port, and this one waits until it stops.
            "PortInUse" => {
                return Some(Progress::PortInUse(if message.is_empty() {
                    "another pod holds the program's port (PortInUse)".to_string()
                } else {
                    message
                }));
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                return Some(Progress::Failed {
                    reason: format!("the container cannot start ({reason}): {message}"),
                    logs: None,
                });
            }
            _ => {}
        }
    }
    if let Some(terminated) = &state.terminated
        && terminated.exit_code != 0
        && (init || container.restart_count == 0)
    {
        let what = match container.name.as_str() {
            "dependencies" => "installing dependencies failed".to_string(),
            "unpack" => "unpacking the program failed".to_string(),
            _ => "the program exited".to_string(),
        };
        return Some(Progress::Failed {
            reason: format!("{what} with status {}", terminated.exit_code),
            logs: Some((container.name.clone(), false)),
        });
    }
    if container.restart_count > 0
        && !init
        && let Some(last) = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
    {
        return Some(Progress::Failed {
            reason: format!(
                "the program crashed (exit status {}) and is being restarted",
                last.exit_code
            ),
            logs: Some((container.name.clone(), true)),
        });
    }
    None
}

/// How long a pod may wait for a port another pod holds before the wait
/// gives up on it: long enough for a pod being deleted to let go.
const PORT_GRACE: Duration = Duration::from_secs(5);

/// Waits until as many pods as replicas are ready (for none: until every
/// pod is gone); ends early when a pod cannot start.
async fn wait_ready(
    connection: &Connection,
    replicas: &Replicas<'_>,
    spinner: &ProgressBar,
) -> Result<(), LaunchError> {
    let name = replicas.name;
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), replicas.namespace);
    let config = watcher::Config::default().labels(&format!("{LABEL_DPROC}={}", replicas.dproc_id));
    let mut events = std::pin::pin!(watcher(pods.clone(), config));
    let wanted = usize::try_from(replicas.count).unwrap_or(0);
    // How each live pod is doing; judged once the first listing is whole,
    // so that a pod about to go (scaling down) is not taken for the answer.
    let mut seen: BTreeMap<String, Progress> = BTreeMap::new();
    // When each pod was first seen waiting for a port.
    let mut port_waits: BTreeMap<String, Instant> = BTreeMap::new();
    let mut listing = true;
    // Judged again each second too: a port wait may outlast its grace
    // with nothing new from the watch.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => Some(event),
                None => {
                    return Err(LaunchError::Failed(
                        "the watch on the pods ended; `ps` shows the dproc's state".into(),
                    ));
                }
            },
            _ = tick.tick() => None,
        };
        if let Some(event) = event {
            let event =
                event.map_err(|e| LaunchError::Failed(format!("watching the pods failed: {e}")))?;
            match event {
                watcher::Event::Init => {
                    listing = true;
                    seen.clear();
                }
                watcher::Event::InitDone => listing = false,
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    // A pod on its way out (scaling down, a rollout) does not count.
                    if pod.metadata.deletion_timestamp.is_some() {
                        seen.remove(&pod_name);
                        continue;
                    }
                    let progress = assess(&pod, true);
                    match &progress {
                        Progress::PortInUse(_) => {
                            port_waits
                                .entry(pod_name.clone())
                                .or_insert_with(Instant::now);
                        }
                        _ => {
                            port_waits.remove(&pod_name);
                        }
                    }
                    seen.insert(pod_name, progress);
                }
                watcher::Event::Delete(pod) => {
                    seen.remove(&pod.metadata.name.unwrap_or_default());
                }
            }
        }
        if listing {
            continue;
        }
        let ready = seen
            .values()
            .filter(|p| matches!(p, Progress::Ready))
            .count();
        if (wanted == 0 && seen.is_empty()) || (wanted > 0 && ready >= wanted) {
            return Ok(());
        }
        let failed = seen.iter().find_map(|(pod_name, progress)| match progress {
            Progress::Failed { .. } => Some(pod_name.clone()),
            Progress::PortInUse(_)
                if port_waits
                    .get(pod_name)
                    .is_some_and(|since| since.elapsed() >= PORT_GRACE) =>
            {
                Some(pod_name.clone())
            }
            _ => None,
        });
        if let Some(pod_name) = failed {
            let reason = match seen.remove(&pod_name) {
                Some(Progress::Failed {
                    reason,
                    logs: Some((container, previous)),
                }) => {
                    let tail = last_lines(&pods, &pod_name, &container, previous).await;
                    format!("{reason}{tail}")
                }
                Some(Progress::Failed { reason, logs: None } | Progress::PortInUse(reason)) => {
                    reason
                }
                _ => String::new(),
            };
            return Err(LaunchError::Failed(format!("{name}: {reason}")));
        }
        let message = match wanted {
            0 => format!("{name}: {} pod(s) stopping", seen.len()),
            1 => seen
                .values()
                .find_map(|p| match p {
                    Progress::Phase(phase) | Progress::PortInUse(phase) => Some(phase.clone()),
                    _ => None,
                })
                .map_or_else(
                    || format!("{name}: starting"),
                    |phase| format!("{name}: {phase}"),
                ),
            _ => format!("{name}: {ready}/{wanted} ready"),
        };
        spinner.set_message(message);
    }
}

/// Waits for the program to start, streams its output, returns its status.
async fn run_foreground(
    connection: &Connection,
    spec: &Spec,
    spinner: &ProgressBar,
    mut input: Option<mpsc::Receiver<Vec<u8>>>,
) -> Result<i32, LaunchError> {
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", spec.name));
    let mut events = std::pin::pin!(watcher(pods.clone(), config));
    let mut started = false;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| lost(connection, &spec.name, &e.to_string()))?;
        let pod = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => pod,
            watcher::Event::Delete(_) => {
                return Err(LaunchError::Failed(format!(
                    "the pod {} was deleted before the program ended",
                    spec.name
                )));
            }
            watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        match assess(&pod, false) {
            Progress::Phase(phase) | Progress::PortInUse(phase) => {
                spinner.set_message(format!("{}: {phase}", spec.name));
            }
            Progress::Ready | Progress::Ended(_) if !started => {
                started = true;
                spinner.finish_and_clear();
                let output = stream_output(connection, &pods, &spec.name);
                match input.take() {
                    Some(input) => {
                        let feed = async {
                            feed_stdin(&pods, &spec.name, input).await;
                            std::future::pending::<()>().await;
                        };
                        tokio::select! {
                            streamed = output => streamed?,
                            () = feed => {}
                        }
                    }
                    None => output.await?,
                }
                let pod = pods.get(&spec.name).await.map_err(|e| {
                    lost(connection, &spec.name, &connection.explain(e).to_string())
                })?;
                if let Progress::Ended(code) = assess(&pod, false) {
                    return Ok(code);
                }
            }
            Progress::Ended(code) => return Ok(code),
            Progress::Ready => {}
            Progress::Failed { reason, logs } => {
                let tail = match logs {
                    Some((container, previous)) => {
                        last_lines(&pods, &spec.name, &container, previous).await
                    }
                    None => String::new(),
                };
                return Err(LaunchError::Failed(format!(
                    "{}: {reason}{tail}",
                    spec.name
                )));
            }
        }
    }
    Err(LaunchError::Failed(
        "the watch on the pod ended before the program did".into(),
    ))
}

/// Copies the program's output (stdout and stderr, as the cluster
/// interleaves them) to kubesh's stdout until the program ends.
async fn stream_output(
    connection: &Connection,
    pods: &Api<Pod>,
    name: &str,
) -> Result<(), LaunchError> {
    let params = LogParams {
        follow: true,
        container: Some("main".to_string()),
        ..LogParams::default()
    };
    let stream = pods
        .log_stream(name, &params)
        .await
        .map_err(|e| lost(connection, name, &connection.explain(e).to_string()))?;
    let mut stream = std::pin::pin!(stream);
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = stream
            .read(&mut buffer)
            .await
            .map_err(|e| lost(connection, name, &e.to_string()))?;
        if read == 0 {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buffer[..read]);
        let _ = out.flush();
    }
}

/// The connection to the cluster broke while a foreground program ran.
fn lost(connection: &Connection, name: &str, reason: &str) -> LaunchError {
    let reason = reason.trim_start_matches("ServiceError: ");
    LaunchError::Failed(format!(
        "{name}: lost the connection to the cluster at {} while the program ran ({reason}); \
         it may still be running there: once the cluster answers again, `ps` shows it, \
         `logs {name}` its output and `kill {name}` removes it",
        connection.server
    ))
}

/// Writes what arrives on `input` to the program's stdin, then ends it
/// (the pod's `stdinOnce` makes that the program's end of input). A program
/// that has already ended gets nothing.
async fn feed_stdin(pods: &Api<Pod>, name: &str, mut input: mpsc::Receiver<Vec<u8>>) {
    let params = AttachParams::default()
        .container("main")
        .stdin(true)
        .stdout(false)
        .stderr(false);
    let mut attached = match pods.attach(name, &params).await {
        Ok(attached) => attached,
        Err(error) => {
            report!(
                "kubesh: {name}: what you type cannot reach the program ({}); its output still comes, Ctrl-C stops it",
                crate::cluster::connection::describe(error)
            );
            return;
        }
    };
    let Some(mut stdin) = attached.stdin() else {
        return;
    };
    while let Some(chunk) = input.recv().await {
        if stdin.write_all(&chunk).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
    drop(stdin);
    let _ = attached.join().await;
}

/// The last lines a container printed, as an indented block (or nothing).
pub(crate) async fn last_lines(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    previous: bool,
) -> String {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(10),
        previous,
        ..LogParams::default()
    };
    let mut text = pods.logs(pod, &params).await.unwrap_or_default();
    if text.trim().is_empty() && previous {
        text = pods
            .logs(
                pod,
                &LogParams {
                    previous: false,
                    ..params
                },
            )
            .await
            .unwrap_or_default();
    }
    if text.trim().is_empty() {
        return String::new();
    }
    let lines: Vec<String> = text.lines().map(|line| format!("    {line}")).collect();
    format!("; its last lines:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A background pod whose unpack step is done and whose main
    /// container has `main` as its status.
    fn pod(main: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1"},
            "status": {
                "phase": "Running",
                "initContainerStatuses": [{
                    "name": "unpack", "image": "python:3.12-slim", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0}}
                }],
                "containerStatuses": [main]
            }
        }))
        .unwrap()
    }

    fn main_status(extra: serde_json::Value) -> serde_json::Value {
        let mut status = serde_json::json!({
            "name": "main", "image": "python:3.12-slim", "imageID": "",
            "ready": false, "restartCount": 0
        });
        for (key, value) in extra.as_object().unwrap() {
            status[key] = value.clone();
        }
        status
    }

    #[test]
    fn a_ready_pod_that_crashed_once_is_ready() {
        let recovered = pod(main_status(serde_json::json!({
            "ready": true, "restartCount": 1,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1}}
        })));
        assert!(matches!(assess(&recovered, true), Progress::Ready));
        let crashed = pod(main_status(serde_json::json!({
            "restartCount": 1,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1}}
        })));
        assert!(matches!(
            assess(&crashed, true),
            Progress::Failed {
                logs: Some((_, true)),
                ..
            }
        ));
    }

    #[test]
    fn a_port_held_by_another_pod_is_told_in_the_cluster_s_words() {
        let waiting = pod(main_status(serde_json::json!({
            "state": {"waiting": {"reason": "PortInUse", "message": "port 8080/TCP is taken by pod default/web-0"}}
        })));
        match assess(&waiting, true) {
            Progress::PortInUse(reason) => {
                assert_eq!(reason, "port 8080/TCP is taken by pod default/web-0");
            }
            _ => panic!("PortInUse is reported with the cluster's words"),
        }
        let starting = pod(main_status(serde_json::json!({
            "state": {"waiting": {"reason": "ContainerCreating"}}
        })));
        assert!(matches!(assess(&starting, true), Progress::Phase(p) if p.contains("creating")));
    }
}
