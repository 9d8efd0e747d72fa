//! Port forwarding to a dproc: a local listener whose every connection
//! gets its own forwarded stream (`pods/portforward`) to a ready pod of the
//! dproc, looked up again for each connection, so that a pod replaced by a
//! rollout or a restart is followed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::connection::{Connection, explain, status_code};
use crate::labels::LABEL_DPROC;
use crate::printer::Printer;

/// How long a connection waits for a ready pod (during a rollout, say).
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often a forward checks that its dproc still exists.
const GONE_CHECK: Duration = Duration::from_secs(2);

/// What a forward goes to.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    /// The dproc's name and id.
    pub name: String,
    pub dproc_id: String,
    /// The port in the pod.
    pub port: u16,
    /// `%N`, for messages.
    pub job: String,
}

/// Why a forward ended, once it has (shared with the job table).
pub type Ended = Arc<Mutex<Option<String>>>;

/// The port in the pod behind `port`: the target port of the dproc's
/// Service when `port` is one of its ports, else `port` itself.
pub fn pod_port(connection: &Connection, namespace: &str, name: &str, port: u16) -> u16 {
    let services: Api<Service> = Api::namespaced(connection.client.clone(), namespace);
    let Ok(Some(service)) = connection.block_on(services.get_opt(name)) else {
        return port;
    };
    let ports = service.spec.and_then(|s| s.ports).unwrap_or_default();
    ports
        .iter()
        .find(|p| p.port == i32::from(port))
        .and_then(|p| match &p.target_port {
            Some(IntOrString::Int(target)) => u16::try_from(*target).ok(),
            _ => None,
        })
        .unwrap_or(port)
}

/// Accepts connections on `listener` until the dproc is gone (or the task
/// is aborted: `kill %N`, the shell exiting); each one is forwarded on
/// its own stream. Records why it ended in `ended`.
pub async fn serve(
    client: Client,
    server: String,
    listener: std::net::TcpListener,
    target: Target,
    printer: Printer,
    ended: Ended,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            let reason = format!("the local port cannot be served: {error}");
            // Recorded before it is said, so `jobs` typed after the
            // message already shows the forward as done.
            set(&ended, reason.clone());
            printer(format!("kubesh: forward {}: {reason}", target.job));
            return;
        }
    };
    let gone = Arc::new(Notify::new());
    let target = Arc::new(target);
    // Dropped with this task, which ends every connection with it.
    let mut connections = JoinSet::new();
    let mut check = tokio::time::interval(GONE_CHECK);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(forward_one(
                        client.clone(),
                        server.clone(),
                        stream,
                        Arc::clone(&target),
                        printer.clone(),
                        Arc::clone(&gone),
                    ));
                }
                Err(error) => {
                    printer(format!(
                        "kubesh: forward {}: a connection could not be accepted: {error}",
                        target.job
                    ));
                }
            },
            () = gone.notified() => {
                let reason = format!("{} is gone", target.name);
                set(&ended, reason.clone());
                printer(format!(
                    "kubesh: forward {}: {reason} (killed?); the forward ended; \
                     `ps` lists the dprocs",
                    target.job
                ));
                return;
            }
            Some(_) = connections.join_next() => {}
            _ = check.tick() => {
                if let Ok(Found::Gone) = find_pod(&client, &target).await {
                    gone.notify_one();
                }
            }
        }
    }
}

fn set(ended: &Ended, reason: String) {
    if let Ok(mut slot) = ended.lock() {
        *slot = Some(reason);
    }
}

/// A ready pod of the dproc, whether it has none yet, or whether it is gone.
enum Found {
    Pod(String),
    NotReady,
    Gone,
}

async fn find_pod(client: &Client, target: &Target) -> Result<Found, kube::Error> {
    let selector = format!("{LABEL_DPROC}={}", target.dproc_id);
    let params = ListParams::default().labels(&selector);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let list = pods.list(&params).await?;
    let live: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect();
    if let Some(ready) = live.iter().find(|p| super::dprocs::pod_ready(p)) {
        return Ok(Found::Pod(ready.metadata.name.clone().unwrap_or_default()));
    }
    if !live.is_empty() {
        return Ok(Found::NotReady);
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
    let owners = deployments.list(&params).await?;
    Ok(if owners.items.is_empty() {
        Found::Gone
    } else {
        Found::NotReady
    })
}

/// Forwards one local connection to a ready pod of the dproc.
async fn forward_one(
    client: Client,
    server: String,
    mut local: TcpStream,
    target: Arc<Target>,
    printer: Printer,
    gone: Arc<Notify>,
) {
    let say = |message: String| printer(format!("kubesh: forward {}: {message}", target.job));
    let deadline = Instant::now() + READY_WAIT;
    let pod = loop {
        match find_pod(&client, &target).await {
            Ok(Found::Pod(pod)) => break pod,
            Ok(Found::NotReady) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(Found::NotReady) => {
                say(format!(
                    "{} has no ready pod after {} s; the connection was closed; \
                     `ps` and `logs {}` show why",
                    target.name,
                    READY_WAIT.as_secs(),
                    target.name
                ));
                return;
            }
            Ok(Found::Gone) => {
                gone.notify_one();
                return;
            }
            Err(error) => {
                say(format!(
                    "cannot find a pod of {}: {}; the connection was closed",
                    target.name,
                    explain(&server, error)
                ));
                return;
            }
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let mut forwarder = match pods.portforward(&pod, &[target.port]).await {
        Ok(forwarder) => forwarder,
        Err(error) => {
            let reason = if status_code(&error) == Some(404) {
                format!("the pod {pod} is gone")
            } else {
                explain(&server, error).to_string()
            };
            say(format!(
                "cannot forward to {}:{} (pod {pod}): {reason}; the connection was closed",
                target.name, target.port
            ));
            return;
        }
    };
    let (Some(mut upstream), Some(error)) = (
        forwarder.take_stream(target.port),
        forwarder.take_error(target.port),
    ) else {
        return;
    };
    let copy = tokio::io::copy_bidirectional(&mut local, &mut upstream);
    tokio::pin!(copy);
    tokio::pin!(error);
    let mut error_seen = false;
    loop {
        tokio::select! {
            _ = &mut copy => break,
            message = &mut error, if !error_seen => {
                error_seen = true;
                if let Some(message) = message {
                    say(refused(&target, &pod, &message));
                    break;
                }
            }
        }
    }
    // The pod's side may have ended the stream and said why at once.
    if !error_seen
        && let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), error).await
    {
        say(refused(&target, &pod, &message));
    }
    forwarder.abort();
}

/// The sentence for an error the pod's side of a forward sent.
fn refused(target: &Target, pod: &str, message: &str) -> String {
    let message = message.trim();
    if message.to_lowercase().contains("refused") {
        format!(
            "nothing listens on port {} in {} (pod {pod}); is the program up, and on that \
             port? ({message})",
            target.port, target.name
        )
    } else {
        format!("{}:{} (pod {pod}): {message}", target.name, target.port)
    }
}
