//! Judging a pod: from its status alone, whether it is still on its way,
//! ready, ended, or failing in a way waiting will not cure (an image that
//! cannot be pulled, a crash, a failing dependency install, a pod that
//! cannot be scheduled), and the last lines that explain a failure. Used
//! by the launch, by `scale` and by the rollout path of hot reload.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use kube::api::{Api, LogParams};

use crate::cluster::listening::Listener;
use crate::labels::LABEL_RUNTIME;

/// What a pod tells about the launch.
pub enum Progress {
    /// Still on its way: what it is doing.
    Phase(String),
    /// No node takes the pod, in the scheduler's words. A failure once it
    /// lasts ([`UNSCHEDULABLE_GRACE`]): a cluster that adds nodes on
    /// demand takes a while to add one.
    Unschedulable(String),
    /// The program runs but its readiness probe has not passed: it does not
    /// listen on its port yet, or not where the probe looks (see
    /// [`compare`]).
    Unready,
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

/// How long a pod may wait for a node before the wait gives up on it.
pub const UNSCHEDULABLE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The failure a pod that no node takes comes to.
pub fn unschedulable_failure(message: &str) -> String {
    format!(
        "the pod cannot be scheduled: {message} (no node took it within {} s)",
        UNSCHEDULABLE_GRACE.as_secs()
    )
}

/// Where a program listens, against the port its Service points at.
#[derive(Debug, PartialEq, Eq)]
pub enum Listening {
    /// On the port, on an address the Service reaches: the probe passes.
    OnPort,
    /// Only on loopback (the port, or another), which nothing outside the
    /// pod reaches; the socket found.
    LoopbackOnly(Listener),
    /// On exactly one other port, where the Service can reach it.
    OtherPort(u16),
    /// On several other ports, none of them the Service's.
    OtherPorts(Vec<u16>),
    /// Nowhere yet.
    Nowhere,
}

/// Judges the listening sockets of a program whose Service points at `port`.
pub fn compare(listeners: &[Listener], port: u16) -> Listening {
    let reachable: Vec<&Listener> = listeners.iter().filter(|l| l.reachable()).collect();
    if reachable.iter().any(|l| l.port == port) {
        return Listening::OnPort;
    }
    let mut others: Vec<u16> = reachable.iter().map(|l| l.port).collect();
    others.sort_unstable();
    others.dedup();
    match others.as_slice() {
        [] => {}
        [other] => return Listening::OtherPort(*other),
        _ => return Listening::OtherPorts(others),
    }
    let loopback = listeners
        .iter()
        .find(|l| l.port == port)
        .or_else(|| listeners.first());
    match loopback {
        Some(listener) => Listening::LoopbackOnly(*listener),
        None => Listening::Nowhere,
    }
}

/// How a program of `runtime` is made to listen on every address, for the
/// message that says it listens on loopback only.
/// Whether `pod` shares its node's network (`hostNetwork`, or a pod
/// address that is the node's), so that every socket of the node shows in
/// its `/proc/net/tcp`.
pub fn shares_node_network(pod: &Pod) -> bool {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.host_network)
        .unwrap_or(false);
    let status = pod.status.as_ref();
    let pod_ip = status.and_then(|s| s.pod_ip.as_deref());
    let host_ip = status.and_then(|s| s.host_ip.as_deref());
    host_network || (pod_ip.is_some() && pod_ip == host_ip)
}

pub fn listen_hint(runtime: &str) -> &'static str {
    match runtime {
        "python" => {
            "Flask: `app.run(host=\"0.0.0.0\", port=int(os.environ[\"PORT\"]))`; \
             uvicorn: `--host 0.0.0.0 --port $PORT`"
        }
        "node" => "`server.listen(process.env.PORT)`, without a host",
        "ruby" => "Sinatra: `set :bind, \"0.0.0.0\"`; rails: `-b 0.0.0.0`",
        "php" => "`php -S 0.0.0.0:$PORT`",
        _ => "bind 0.0.0.0 (every address), on $PORT",
    }
}

pub fn assess(pod: &Pod, background: bool) -> Progress {
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
        return Progress::Unschedulable(condition.message.clone().unwrap_or_default());
    }
    let runtime = runtime_of(pod);
    for init in status.init_container_statuses.iter().flatten() {
        if let Some(failure) = container_failure(init, true, runtime) {
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
            // A program that never started did not end with a status.
            return cannot_start(terminated).unwrap_or(Progress::Ended(terminated.exit_code));
        }
        if main
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_some()
        {
            return Progress::Ready;
        }
        return match container_failure(main, false, runtime) {
            Some(failure) => failure,
            None => Progress::Phase(waiting_phase(main).unwrap_or_else(|| "starting".into())),
        };
    }
    // Ready first: a pod that crashed once and has come back (an older
    // replica, when scaling) is ready, not failing.
    if main.ready {
        return Progress::Ready;
    }
    if let Some(failure) = container_failure(main, false, runtime) {
        return failure;
    }
    if main
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .is_some()
    {
        return Progress::Unready;
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
        // Any other reason, in the cluster's words.
        other => match waiting.message.as_deref() {
            Some(message) if !message.is_empty() => format!("{other}: {message}"),
            _ => other.to_string(),
        },
    })
}

/// A process that could not start (`StartError`, exit code 128, as the
/// kubelet reports it; `ContainerCannotRun` from Docker): the runtime's
/// message says why.
fn cannot_start(terminated: &ContainerStateTerminated) -> Option<Progress> {
    let reason = terminated.reason.clone().unwrap_or_default();
    (reason == "StartError" || reason == "ContainerCannotRun").then(|| Progress::Failed {
        reason: format!(
            "the container cannot start ({reason}): {}",
            terminated.message.clone().unwrap_or_default()
        ),
        logs: None,
    })
}

/// The pod's runtime, from the label kubesh puts on its pods.
fn runtime_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(LABEL_RUNTIME))
        .map(String::as_str)
}

/// The setting that names another image for `runtime` (`PYTHON_IMAGE`).
fn image_setting(runtime: Option<&str>) -> String {
    match runtime {
        Some(runtime) => format!("{}_IMAGE", runtime.to_uppercase()),
        None => "the runtime's image setting (`runtimes` names each runtime)".to_string(),
    }
}

fn container_failure(
    container: &ContainerStatus,
    init: bool,
    runtime: Option<&str>,
) -> Option<Progress> {
    let image = &container.image;
    let state = container.state.as_ref()?;
    // Ended without starting, or waiting to try again after that.
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let start_failure = match (&state.terminated, &state.waiting) {
        (Some(terminated), _) => cannot_start(terminated),
        (None, Some(_)) => last.and_then(cannot_start),
        (None, None) => None,
    };
    if start_failure.is_some() {
        return start_failure;
    }
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        match reason.as_str() {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                let image_setting = image_setting(runtime);
                let setting = match container.name.as_str() {
                    "unpack" => {
                        format!("{image_setting}, or for the unpack step alone UNPACK_IMAGE")
                    }
                    _ => image_setting,
                };
                return Some(Progress::Failed {
                    reason: format!(
                        "the image {image} cannot be pulled ({reason}): {message}; set another with {setting}"
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
        let code = terminated.exit_code;
        let reason = match container.name.as_str() {
            "dependencies" => format!("installing dependencies failed with status {code}"),
            // An image of the user's may lack what unpacking needs.
            "unpack" => format!(
                "unpacking the program failed with status {code} (it runs `sh`, `tar` and \
                 `gzip` in {image}; UNPACK_IMAGE=busybox:1.37 unpacks in an image that has them)"
            ),
            _ => format!("the program exited with status {code}"),
        };
        return Some(Progress::Failed {
            reason,
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

/// The last lines a container printed, as an indented block (or nothing).
/// The run asked for first, then the other: a crashed container restarts
/// at once, so the run that ended may be the previous one by the time its
/// lines are read, and the new run may have printed nothing yet.
pub async fn last_lines(pods: &Api<Pod>, pod: &str, container: &str, previous: bool) -> String {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(10),
        previous,
        ..LogParams::default()
    };
    let mut text = pods.logs(pod, &params).await.unwrap_or_default();
    if text.trim().is_empty() {
        text = pods
            .logs(
                pod,
                &LogParams {
                    previous: !previous,
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
    fn an_image_that_cannot_be_pulled_names_the_runtime_s_image_setting() {
        let mut python = pod(main_status(serde_json::json!({
            "state": {"waiting": {"reason": "ErrImagePull", "message": "no such host"}}
        })));
        let failure = |pod: &Pod| match assess(pod, true) {
            Progress::Failed { reason, .. } => reason,
            _ => panic!("an image that cannot be pulled is a failure"),
        };
        assert!(
            failure(&python).contains("set another with the runtime's image setting"),
            "{}",
            failure(&python)
        );
        python.metadata.labels = Some([(LABEL_RUNTIME.to_string(), "python".to_string())].into());
        let reason = failure(&python);
        assert!(
            reason.starts_with(
                "the image python:3.12-slim cannot be pulled (ErrImagePull): no such host;"
            ) && reason.ends_with("set another with PYTHON_IMAGE"),
            "{reason}"
        );
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
    fn a_command_that_cannot_start_is_said_with_the_runtime_s_words() {
        let message = "exec: \"node\": executable file not found in $PATH";
        let failed =
            serde_json::json!({"exitCode": 128, "reason": "StartError", "message": message});
        for status in [
            serde_json::json!({"state": {"terminated": failed}}),
            serde_json::json!({"restartCount": 1, "lastState": {"terminated": failed},
                               "state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
        ] {
            for background in [true, false] {
                match assess(&pod(main_status(status.clone())), background) {
                    Progress::Failed { reason, logs: None } => assert_eq!(
                        reason,
                        format!("the container cannot start (StartError): {message}")
                    ),
                    _ => panic!("not refused"),
                }
            }
        }
    }

    fn listener(address: &str, port: u16) -> Listener {
        Listener {
            address: address.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn where_a_program_listens_is_judged_against_its_port() {
        let flask = listener("127.0.0.1", 5000);
        assert_eq!(compare(&[flask], 8080), Listening::LoopbackOnly(flask));
        let on_loopback = listener("127.0.0.1", 8080);
        assert_eq!(
            compare(&[listener("127.0.0.1", 5000), on_loopback], 8080),
            Listening::LoopbackOnly(on_loopback)
        );
        assert_eq!(
            compare(&[listener("0.0.0.0", 8080), on_loopback], 8080),
            Listening::OnPort
        );
        assert_eq!(compare(&[listener("::", 8080)], 8080), Listening::OnPort);
        assert_eq!(
            compare(
                &[listener("0.0.0.0", 9898), listener("127.0.0.1", 9229)],
                8080
            ),
            Listening::OtherPort(9898)
        );
        assert_eq!(
            compare(&[listener("0.0.0.0", 9898), listener("::", 9898)], 8080),
            Listening::OtherPort(9898)
        );
        assert_eq!(
            compare(
                &[listener("0.0.0.0", 3000), listener("10.244.0.5", 9229)],
                8080
            ),
            Listening::OtherPorts(vec![3000, 9229])
        );
        assert_eq!(compare(&[], 8080), Listening::Nowhere);
    }

    #[test]
    fn a_pod_no_node_takes_is_waited_for_in_the_scheduler_s_words() {
        let mut waiting = pod(main_status(serde_json::json!({})));
        waiting.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(serde_json::json!({
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu."
            }))
            .unwrap(),
        ]);
        assert!(
            matches!(assess(&waiting, true), Progress::Unschedulable(m) if m == "0/3 nodes are available: 3 Insufficient cpu.")
        );
    }

    #[test]
    fn a_running_program_not_yet_ready_is_unready() {
        let running = pod(main_status(serde_json::json!({"state": {"running": {}}})));
        assert!(matches!(assess(&running, true), Progress::Unready));
    }

    #[test]
    fn a_waiting_reason_is_told_in_the_cluster_s_words() {
        let waiting = pod(main_status(serde_json::json!({
            "state": {"waiting": {"reason": "SomethingNew", "message": "the node is busy"}}
        })));
        assert!(
            matches!(assess(&waiting, true), Progress::Phase(p) if p == "SomethingNew: the node is busy")
        );
        let starting = pod(main_status(serde_json::json!({
            "state": {"waiting": {"reason": "ContainerCreating"}}
        })));
        assert!(matches!(assess(&starting, true), Progress::Phase(p) if p.contains("creating")));
    }
}
