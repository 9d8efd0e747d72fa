//! Waiting for a dproc: a background one until its pods are ready (after
//! a launch or `scale`), a foreground one until its program ends, its
//! output streamed meanwhile. Failures the pods show end the wait at once
//! (see [`super::judge`]). A foreground program that reads its stdin gets
//! kubesh's, over `pods/attach` (its output still comes from its log,
//! from the start).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, AttachParams, DeleteParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::LaunchError;
use super::bundle::Bundle;
use super::create;
use super::judge::{
    Listening, Progress, UNSCHEDULABLE_GRACE, assess, compare, last_lines, listen_hint,
    shares_node_network, unschedulable_failure,
};
use super::objects::Spec;
use super::pulls::{self, Pulls};
use super::spinner::Spinner;
use crate::cluster::connection::{ClusterError, Connection};
use crate::cluster::listening::listening;
use crate::interrupt::Interrupt;
use crate::labels::LABEL_DPROC;

/// Creates a background dproc and waits until its pods are ready; returns
/// how long that took, the Service as the cluster created it and the port
/// the program listens on (another than `spec`'s when it was found there).
pub fn background(
    connection: &Connection,
    interrupt: &Interrupt,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(Duration, Service, u16), LaunchError> {
    let started = Instant::now();
    let spinner = spinner(&spec.name);
    spinner.set_message(format!("{}: creating", spec.name));
    let service = match connection.block_on(create::background(connection, spec, bundle)) {
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
    let mut launching = spec.clone();
    let wait = wait_ready(connection, &replicas, &spinner, Some(&mut launching));
    let waited = connection.until_interrupted(interrupt, wait);
    spinner.finish_and_clear();
    match waited {
        Ok(result) => result.map(|()| (started.elapsed(), service, launching.listen_port)),
        Err(ClusterError::Interrupted) => Err(LaunchError::StoppedWaiting(format!(
            "{} ({}) stays: `ps` shows it, `kill {}` removes it",
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
        connection.until_interrupted(interrupt, wait_ready(connection, replicas, &spinner, None));
    spinner.finish_and_clear();
    match waited {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(LaunchError::PodFailed { name, reason })) => Err(LaunchError::PodFailed {
            name,
            reason: format!(
                "{reason}\n{} stays set to {} replicas: `ps` shows how many are ready, \
                 `scale {} N` sets another number",
                replicas.name, replicas.count, replicas.name
            ),
        }),
        Ok(Err(error)) => Err(error),
        Err(ClusterError::Interrupted) => Err(LaunchError::StoppedWaiting(format!(
            "{} goes on scaling to {}: `ps` shows how far it got",
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
    let created = connection.block_on(create::foreground(connection, spec, bundle));
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
        Ok(Ok(status)) => {
            // Its output and status are read: a finished program's pod goes,
            // as a shell keeps no finished processes (its ConfigMaps go with it).
            if !spec.keep_pod {
                let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
                let _ = connection
                    .block_on(pods.delete(&spec.name, &DeleteParams::background().grace_period(0)));
            }
            Ok(status)
        }
        Ok(Err(error)) => Err(error),
        Err(ClusterError::Interrupted) => {
            let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
            let _ = connection
                .block_on(pods.delete(&spec.name, &DeleteParams::default().grace_period(0)));
            Ok(crate::status::STATUS_INTERRUPTED)
        }
        Err(error) => Err(error.into()),
    }
}

fn spinner(name: &str) -> Spinner {
    Spinner::new(name)
}

/// How long a program that runs may take to listen where its probe looks
/// before the wait gives up on it.
const LISTEN_LIMIT: Duration = Duration::from_secs(120);
/// How long a running program may be unready before kubesh looks where it
/// listens, and then how often it looks again.
const LOOK_AFTER: Duration = Duration::from_secs(3);
/// How long a broken watch or log stream is tried again (with growing
/// pauses) before the wait ends as having lost the cluster: long enough
/// for an API server to restart.
pub const RESUME_LIMIT: Duration = Duration::from_secs(30);

/// A watch or stream that broke (a connection reset, an API server or a
/// load balancer ending it, 410 Gone), since when, and the first cause.
#[derive(Default)]
struct Broken {
    since: Option<Instant>,
    /// Tries since the last progress, for the pause before the next.
    tries: u32,
}

impl Broken {
    /// Notes a failure: `Ok` (the failure back, to be told) while it may
    /// be tried again, `Err` once it has lasted [`RESUME_LIMIT`].
    fn failed<E>(&mut self, error: E) -> Result<E, E> {
        self.tries = self.tries.saturating_add(1);
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= RESUME_LIMIT {
            Err(error)
        } else {
            Ok(error)
        }
    }

    /// Whether the last failure was the second in a row: a break that one
    /// new try did not mend, worth a word to the user.
    fn lasting(&self) -> bool {
        self.tries == 2
    }

    /// The pause before the next try: 100 ms, doubling to 2 s.
    fn pause(&self) -> Duration {
        let doublings = self.tries.saturating_sub(1).min(5);
        (Duration::from_millis(100) * 2u32.pow(doublings)).min(Duration::from_secs(2))
    }

    /// The connection works again.
    fn mended(&mut self) {
        self.since = None;
    }

    /// Something new came: the next break starts its pauses afresh.
    fn progressed(&mut self) {
        self.since = None;
        self.tries = 0;
    }
}

/// Waits until as many pods as replicas are ready (for none: until every
/// pod is gone); ends early when a pod cannot start. With `launching`, a
/// program that runs but is not ready is looked at (where it listens): on
/// loopback only, or on several other ports, ends the wait with what to
/// do; on one other port, the Service is pointed there (and `launching`
/// says so from then on).
async fn wait_ready(
    connection: &Connection,
    replicas: &Replicas<'_>,
    spinner: &Spinner,
    mut launching: Option<&mut Spec>,
) -> Result<(), LaunchError> {
    let name = replicas.name;
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), replicas.namespace);
    let config = watcher::Config::default().labels(&format!("{LABEL_DPROC}={}", replicas.dproc_id));
    let mut events = std::pin::pin!(watcher(pods.clone(), config).default_backoff());
    let mut broken = Broken::default();
    let wanted = usize::try_from(replicas.count).unwrap_or(0);
    // How each live pod is doing; judged once the first listing is whole,
    // so that a pod about to go (scaling down) is not taken for the answer.
    let mut seen: BTreeMap<String, Progress> = BTreeMap::new();
    // Since when each pod's program has run without being ready.
    let mut unready_since: BTreeMap<String, Instant> = BTreeMap::new();
    // Since when each pod has waited for a node.
    let mut unplaced_since: BTreeMap<String, Instant> = BTreeMap::new();
    // Pods on the node's network, whose sockets cannot be told from the
    // node's: where they listen is not looked at.
    let mut on_node_network: BTreeSet<String> = BTreeSet::new();
    let mut last_look: Option<Instant> = None;
    // Where the last look found the program listening on loopback only,
    // on another port than its own.
    let mut loopback_before: Option<std::net::SocketAddr> = None;
    // What the last look found, while it is worth saying.
    let mut found = "";
    let mut listing = true;
    // The images the pods pull, from their events (a Deployment's pods are
    // named NAME-HASH-XXXXX).
    let mut pull_events = pulls::events(connection, replicas.namespace);
    let mut pulls = Pulls::default();
    let mut pulls_open = true;
    let prefix = format!("{name}-");
    let ours = |pod: &str| {
        pod.strip_prefix(&prefix)
            .is_some_and(|rest| rest.split('-').count() == 2)
    };
    // Judged again each second too: an unready program is looked at with
    // nothing new from the watch.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut ticked = false;
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => Some(event),
                None => {
                    return Err(LaunchError::WatchEnded {
                        name: name.to_string(),
                    });
                }
            },
            _ = tick.tick() => {
                ticked = true;
                None
            }
            pull = pull_events.next(), if pulls_open => {
                match pull {
                    Some(pull) => {
                        pulls.note(&pull, ours);
                    }
                    None => pulls_open = false,
                }
                None
            }
        };
        if let Some(event) = event {
            // A broken watch starts again (listing anew), within a bound.
            let event = match event {
                Ok(event) => {
                    broken.mended();
                    event
                }
                Err(error) => {
                    let error = broken
                        .failed(error)
                        .map_err(|e| connection.explain_watch(e))?;
                    spinner.set_message(reconnecting(name, &connection.explain_watch(error)));
                    continue;
                }
            };
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
                        unready_since.remove(&pod_name);
                        continue;
                    }
                    if shares_node_network(&pod) {
                        on_node_network.insert(pod_name.clone());
                    } else {
                        on_node_network.remove(&pod_name);
                    }
                    let progress = assess(&pod, true);
                    if matches!(progress, Progress::Unready) {
                        unready_since
                            .entry(pod_name.clone())
                            .or_insert_with(Instant::now);
                    } else {
                        unready_since.remove(&pod_name);
                    }
                    if matches!(progress, Progress::Unschedulable(_)) {
                        unplaced_since
                            .entry(pod_name.clone())
                            .or_insert_with(Instant::now);
                    } else {
                        unplaced_since.remove(&pod_name);
                    }
                    seen.insert(pod_name, progress);
                }
                watcher::Event::Delete(pod) => {
                    let pod_name = pod.metadata.name.unwrap_or_default();
                    seen.remove(&pod_name);
                    unready_since.remove(&pod_name);
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
        // Fewer pods than wanted: the cluster may refuse to create them
        // (Pod Security, a quota), which only the ReplicaSet tells; asked
        // once a second.
        if ticked
            && seen.len() < wanted
            && let Some(message) = refused(connection, replicas).await
        {
            return Err(LaunchError::PodsRefused {
                name: name.to_string(),
                message,
            });
        }
        let failed = seen.iter().find_map(|(pod_name, progress)| match progress {
            Progress::Failed { .. } => Some(pod_name.clone()),
            Progress::Unschedulable(_)
                if unplaced_since
                    .get(pod_name)
                    .is_some_and(|since| since.elapsed() >= UNSCHEDULABLE_GRACE) =>
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
                    let why = launching
                        .as_deref()
                        .and_then(|spec| older_glibc(tail.as_bytes(), spec))
                        .map(|why| format!("\n{why}"))
                        .unwrap_or_default();
                    format!("{reason}{tail}{why}")
                }
                Some(Progress::Failed { reason, logs: None }) => reason,
                Some(Progress::Unschedulable(message)) => unschedulable_failure(&message),
                _ => String::new(),
            };
            return Err(LaunchError::PodFailed {
                name: name.to_string(),
                reason,
            });
        }
        let longest_unready = unready_since
            .iter()
            .min_by_key(|(_, since)| **since)
            .map(|(pod_name, since)| (pod_name.clone(), since.elapsed()));
        if let Some((pod_name, unready)) = longest_unready {
            let port = launching.as_ref().map(|spec| spec.listen_port);
            if unready >= LISTEN_LIMIT {
                return Err(LaunchError::NotListening {
                    name: name.to_string(),
                    port,
                    waited: LISTEN_LIMIT.as_secs(),
                });
            }
            if let Some(spec) = launching.as_deref_mut()
                && unready >= LOOK_AFTER
                && !on_node_network.contains(&pod_name)
                && last_look.is_none_or(|at| at.elapsed() >= LOOK_AFTER)
            {
                last_look = Some(Instant::now());
                match look(connection, spec, &pod_name, spinner).await? {
                    Looked::Found(note) => {
                        found = note;
                        loopback_before = None;
                    }
                    // Loopback on another port may be a program still
                    // starting (a debugger's or an admin port first): it
                    // must still be so at the next look.
                    Looked::LoopbackElsewhere(socket) => {
                        if loopback_before == Some(socket) {
                            return Err(loopback_only(spec, socket));
                        }
                        loopback_before = Some(socket);
                        found = " (so far only on loopback)";
                    }
                    Looked::Retargeted => {
                        // The new pods start their clocks.
                        unready_since.clear();
                        found = "";
                    }
                }
            }
        } else {
            found = "";
        }
        let listen_port = launching.as_ref().map(|spec| spec.listen_port);
        let pulling = seen
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Phase(_)))
            .find_map(|(pod, _)| pulls.pulling(pod));
        let message = match wanted {
            0 => format!("{name}: {} pod(s) stopping", seen.len()),
            1 => seen
                .iter()
                .find_map(|(pod, p)| match p {
                    Progress::Phase(phase) => Some(match pulls.pulling(pod) {
                        Some(image) => format!("pulling {image}"),
                        None => phase.clone(),
                    }),
                    Progress::Unschedulable(message) => {
                        Some(format!("waiting for a node to take the pod: {message}"))
                    }
                    Progress::Unready => Some(match listen_port {
                        Some(port) => {
                            format!(
                                "starting: waiting for the program to listen on port {port}{found}"
                            )
                        }
                        None => "starting: waiting for the program to listen on its port".into(),
                    }),
                    _ => None,
                })
                .map_or_else(
                    || format!("{name}: starting"),
                    |phase| format!("{name}: {phase}"),
                ),
            _ => match pulling {
                Some(image) => format!("{name}: {ready}/{wanted} ready, pulling {image}"),
                None => format!("{name}: {ready}/{wanted} ready"),
            },
        };
        spinner.set_message(message);
    }
}

/// A program that listens only on loopback, at `socket`.
fn loopback_only(spec: &Spec, socket: std::net::SocketAddr) -> LaunchError {
    LaunchError::LoopbackOnly {
        name: spec.name.clone(),
        socket,
        port: spec.listen_port,
        hint: listen_hint(&spec.program.runtime.name),
    }
}

/// What a look at where a program listens came to, short of an error.
enum Looked {
    /// Nothing to change; what was found, for the spinner (may be empty).
    Found(&'static str),
    /// Only on loopback, on another port than its own (Flask's 5000).
    LoopbackElsewhere(std::net::SocketAddr),
    /// The Service now points at the one other port the program listens on.
    Retargeted,
}

/// Looks where the program in `pod` listens and acts on it: an error for
/// what the user must change (loopback only; several other ports), the
/// Service pointed at the one other port the program listens on (said
/// above the spinner), or what the look found.
async fn look(
    connection: &Connection,
    spec: &mut Spec,
    pod: &str,
    spinner: &Spinner,
) -> Result<Looked, LaunchError> {
    let looked = tokio::time::timeout(
        LOOK_AFTER,
        listening(&connection.client, &spec.namespace, pod, "main"),
    )
    .await;
    // An image without `cat`, a refused exec: the wait goes on, bounded.
    let Ok(Ok(listeners)) = looked else {
        return Ok(Looked::Found(""));
    };
    match compare(&listeners, spec.listen_port) {
        Listening::OnPort => Ok(Looked::Found("")),
        Listening::Nowhere => Ok(Looked::Found(" (it listens on no port yet)")),
        Listening::LoopbackOnly(listener) => {
            let socket = std::net::SocketAddr::new(listener.address, listener.port);
            if listener.port == spec.listen_port {
                Err(loopback_only(spec, socket))
            } else {
                Ok(Looked::LoopbackElsewhere(socket))
            }
        }
        Listening::OtherPorts(ports) => Err(LaunchError::OtherPorts {
            name: spec.name.clone(),
            port: spec.listen_port,
            ports,
        }),
        Listening::OtherPort(other) => {
            let before = spec.listen_port;
            spec.listen_port = other;
            create::retarget(connection, spec).await?;
            spinner.suspend(|| {
                report!(
                    "kubesh: {} listens on {other}, not {before}: the Service now targets {other}",
                    spec.name
                );
            });
            Ok(Looked::Retargeted)
        }
    }
}

/// Waits for the program to start, streams its output, returns its status.
async fn run_foreground(
    connection: &Connection,
    spec: &Spec,
    spinner: &Spinner,
    mut input: Option<mpsc::Receiver<Vec<u8>>>,
) -> Result<i32, LaunchError> {
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", spec.name));
    let mut events = std::pin::pin!(watcher(pods.clone(), config).default_backoff());
    let mut broken = Broken::default();
    let mut started = false;
    // Once no node takes the pod: when the wait for one gives up, and why.
    let mut unplaced: Option<(tokio::time::Instant, String)> = None;
    // The image its containers pull, from its events, until it runs.
    let mut pull_events = pulls::events(connection, &spec.namespace);
    let mut pulls = Pulls::default();
    let mut pulls_open = true;
    // What the pod is doing while it is on its way, said again with a pull.
    let mut phase: Option<String> = None;
    loop {
        let next = tokio::select! {
            next = async {
                match &unplaced {
                    Some((deadline, _)) => tokio::time::timeout_at(*deadline, events.next()).await,
                    None => Ok(events.next().await),
                }
            } => next,
            pull = pull_events.next(), if pulls_open && !started => {
                match pull {
                    Some(pull) => {
                        if pulls.note(&pull, |pod| pod == spec.name)
                            && let Some(phase) = &phase
                        {
                            spinner.set_message(on_its_way(&spec.name, phase, &pulls));
                        }
                    }
                    None => pulls_open = false,
                }
                continue;
            }
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                let message = unplaced
                    .take()
                    .map(|(_, message)| message)
                    .unwrap_or_default();
                return Err(LaunchError::PodFailed {
                    name: spec.name.clone(),
                    reason: unschedulable_failure(&message),
                });
            }
        };
        let event = match event {
            Ok(event) => {
                broken.mended();
                event
            }
            Err(error) => {
                let error = broken
                    .failed(error)
                    .map_err(|e| lost(connection, &spec.name, connection.explain_watch(e)))?;
                let message = reconnecting(&spec.name, &connection.explain_watch(error));
                if spinner.is_finished() {
                    if broken.lasting() {
                        report!("kubesh: {message}");
                    }
                } else {
                    spinner.set_message(message);
                }
                continue;
            }
        };
        let pod = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => pod,
            watcher::Event::Delete(_) => return Err(LaunchError::Deleted(spec.name.clone())),
            watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        let progress = assess(&pod, false);
        if !matches!(progress, Progress::Unschedulable(_)) {
            unplaced = None;
        }
        phase = match &progress {
            Progress::Phase(now) => Some(now.clone()),
            _ => None,
        };
        match progress {
            Progress::Phase(now) => {
                spinner.set_message(on_its_way(&spec.name, &now, &pulls));
            }
            Progress::Unschedulable(message) => {
                spinner.set_message(format!(
                    "{}: waiting for a node to take the pod: {message}",
                    spec.name
                ));
                let deadline = unplaced.as_ref().map_or_else(
                    || tokio::time::Instant::now() + UNSCHEDULABLE_GRACE,
                    |u| u.0,
                );
                unplaced = Some((deadline, message));
            }
            Progress::Ready | Progress::Ended(_) if !started => {
                started = true;
                spinner.finish_and_clear();
                let output = stream_output(connection, &pods, &spec.name);
                let tail = match input.take() {
                    Some(input) => {
                        let feed = async {
                            feed_stdin(&pods, &spec.name, input).await;
                            std::future::pending::<()>().await;
                        };
                        tokio::select! {
                            streamed = output => streamed?,
                            () = feed => Vec::new(),
                        }
                    }
                    None => output.await?,
                };
                let pod = pods
                    .get(&spec.name)
                    .await
                    .map_err(|e| lost(connection, &spec.name, connection.explain(e)))?;
                if let Progress::Ended(code) = assess(&pod, false) {
                    if code != 0
                        && let Some(why) = older_glibc(&tail, spec)
                    {
                        report!("kubesh: {why}");
                    }
                    return Ok(code);
                }
            }
            Progress::Ended(code) => return Ok(code),
            Progress::Ready | Progress::Unready => {}
            Progress::Failed { reason, logs } => {
                let tail = match logs {
                    Some((container, previous)) => {
                        last_lines(&pods, &spec.name, &container, previous).await
                    }
                    None => String::new(),
                };
                return Err(LaunchError::PodFailed {
                    name: spec.name.clone(),
                    reason: format!("{reason}{tail}"),
                });
            }
        }
    }
    Err(LaunchError::WatchEnded {
        name: spec.name.clone(),
    })
}

/// What a foreground pod on its way is doing: pulling an image, as its
/// events say, or `phase`, as its status says.
fn on_its_way(name: &str, phase: &str, pulls: &Pulls) -> String {
    match pulls.pulling(name) {
        Some(image) => format!("{name}: pulling {image}"),
        None => format!("{name}: {phase}"),
    }
}

/// Copies the program's output (stdout and stderr, as the cluster
/// interleaves them) to kubesh's stdout until the program ends. A stream
/// that breaks, or ends while the program still runs (a connection reset,
/// an idle timeout on the way), is opened again and what was already
/// shown is skipped, so nothing is lost or shown twice. Gives the last few
/// KiB of it, to explain a failure the output names.
async fn stream_output(
    connection: &Connection,
    pods: &Api<Pod>,
    name: &str,
) -> Result<Vec<u8>, LaunchError> {
    let params = LogParams {
        follow: true,
        container: Some("main".to_string()),
        ..LogParams::default()
    };
    let mut shown: usize = 0;
    let mut tail: Vec<u8> = Vec::new();
    let mut broken = Broken::default();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let stream = match pods.log_stream(name, &params).await {
            Ok(stream) => stream,
            Err(error) => {
                let error = broken
                    .failed(error)
                    .map_err(|e| lost(connection, name, connection.explain(e)))?;
                if broken.lasting() {
                    report!("kubesh: {}", reconnecting(name, &connection.explain(error)));
                }
                tokio::time::sleep(broken.pause()).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        // The log again from its start: what was shown is skipped.
        let mut skip = shown;
        let ended = loop {
            let read = match stream.read(&mut buffer).await {
                Ok(0) => break true,
                Ok(read) => read,
                Err(error) => {
                    let error = broken
                        .failed(error)
                        .map_err(|e| lost(connection, name, ClusterError::Stream(e)))?;
                    if broken.lasting() {
                        report!(
                            "kubesh: {}",
                            reconnecting(name, &ClusterError::Stream(error))
                        );
                    }
                    break false;
                }
            };
            let fresh = &buffer[skip.min(read)..read];
            skip = skip.saturating_sub(read);
            if fresh.is_empty() {
                if skip == 0 {
                    broken.mended();
                }
                continue;
            }
            broken.progressed();
            shown += fresh.len();
            tail.extend_from_slice(fresh);
            if tail.len() > TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(fresh);
            let _ = out.flush();
        };
        if ended && main_ended(pods, name).await {
            return Ok(tail);
        }
        if ended {
            // Ended early, or the program's end is not in its status yet.
            let _ = broken.failed(());
        }
        tokio::time::sleep(broken.pause()).await;
    }
}

/// Why the cluster refuses to create the dproc's pods, as its ReplicaSets'
/// `ReplicaFailure` condition says (the API server's own words).
async fn refused(connection: &Connection, replicas: &Replicas<'_>) -> Option<String> {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let sets: Api<ReplicaSet> = Api::namespaced(connection.client.clone(), replicas.namespace);
    let params =
        kube::api::ListParams::default().labels(&format!("{LABEL_DPROC}={}", replicas.dproc_id));
    let list = sets.list(&params).await.ok()?;
    list.items.into_iter().find_map(|set| {
        set.status?
            .conditions?
            .into_iter()
            .find(|c| {
                c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True")
            })
            .and_then(|c| c.message)
    })
}

/// What a wait says while it reconnects after `error`.
fn reconnecting(name: &str, error: &ClusterError) -> String {
    format!(
        "{name}: the connection to the cluster broke ({}); reconnecting for up to {} s \
         (Ctrl-C stops waiting; the program runs on)",
        error.reason(),
        RESUME_LIMIT.as_secs()
    )
}

/// Whether the program's container has ended (or its pod is gone), as far
/// as the cluster can be asked.
async fn main_ended(pods: &Api<Pod>, name: &str) -> bool {
    match pods.get(name).await {
        Ok(pod) => pod
            .status
            .and_then(|status| status.container_statuses)
            .into_iter()
            .flatten()
            .find(|container| container.name == "main")
            .is_none_or(|container| {
                container
                    .state
                    .is_some_and(|state| state.terminated.is_some())
            }),
        Err(error) => crate::cluster::connection::status_code(&error) == Some(404),
    }
}

/// How much of a foreground program's last output is kept to explain its
/// failure.
const TAIL_BYTES: usize = 4096;

/// What the dynamic loader says when a binary needs a newer glibc than the
/// image has (`version `GLIBC_2.99' not found (required by ./app)`),
/// explained: the version it needs, the image, and what to do.
fn older_glibc(output: &[u8], spec: &Spec) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let version = text.lines().rev().find_map(|line| {
        let rest = line.split("version `GLIBC_").nth(1)?;
        let (version, after) = rest.split_once('\'')?;
        after.starts_with(" not found").then(|| version.to_string())
    })?;
    Some(format!(
        "{} needs glibc {version}, and its image {} has an older one (the loader's words are \
         above); build it on an older distribution or statically, or run it in an image with \
         glibc {version} or newer ({}_IMAGE)",
        spec.program.shown(),
        spec.program.image,
        spec.program.runtime.name.to_uppercase()
    ))
}

/// The connection to the cluster broke while a foreground program ran.
fn lost(connection: &Connection, name: &str, source: ClusterError) -> LaunchError {
    LaunchError::Lost {
        name: name.to_string(),
        server: connection.server.clone(),
        source,
    }
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
        // A program that has ended already has nothing to read.
        Err(_) if main_ended(pods, name).await => return,
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
