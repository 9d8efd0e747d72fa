//! Launching programs in the cluster: from the words of a command to a
//! program (`program`), its bundle (`bundle`), the decisions about it
//! (`plan`, with the security profile the namespace needs: `profile`),
//! the objects that run it (`objects`), creating them
//! (`create`), judging their pods (`judge`) and waiting for them
//! (`wait`); the image of a program that brings a Dockerfile (`image`,
//! with the saves that need it built again: `dockerfile`) and its
//! delivery to the cluster (`delivery`);
//! a foreground program run again on every save (`rerun`, with
//! `saves`). It knows nothing of the shell: [`start`] is handed a
//! connection, an interrupt and a [`Request`], and returns what happened.

pub mod built;
pub mod bundle;
mod create;
pub mod credentials;
pub mod delivery;
pub mod dockerfile;
pub mod executable;
pub mod image;
pub mod input;
pub mod judge;
pub mod names;
pub mod objects;
pub mod plan;
pub mod profile;
pub mod program;
pub mod pulls;
pub mod rerun;
pub mod saves;
mod spinner;
pub mod wait;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;

use crate::cluster::connection::{ClusterError, Connection};
use crate::cluster::dprocs::Launched;
use crate::interrupt::Interrupt;
use bundle::Bundle;
use objects::Spec;
use plan::{PlanError, Settings};
use program::Program;

/// A launch as the shell decided it: the program, how it runs and the
/// settings its prefixes and the shell's variables gave.
#[derive(Debug, Clone)]
pub struct Request {
    pub program: Program,
    /// `&`: a Deployment and Service that stay, rather than a Pod whose
    /// program is waited for.
    pub background: bool,
    /// A foreground program runs again whenever its files change, until
    /// Ctrl-C.
    pub rerun: bool,
    pub settings: Settings,
}

impl Request {
    /// Packs the program and decides its objects.
    ///
    /// # Errors
    /// A setting that is not valid, or files that cannot be bundled.
    pub fn plan(&self) -> Result<(Spec, Bundle), PlanError> {
        plan::plan(self.program.clone(), self.background, &self.settings)
    }
}

/// What a launch came to.
pub enum Outcome {
    /// A background dproc is ready: its Service as the cluster made it and
    /// how long creating and waiting took.
    Ready {
        service: Box<Service>,
        took: Duration,
        /// The port the program was found listening on, which the Service
        /// now targets (`spec.listen_port` unless it listened elsewhere).
        listen_port: u16,
    },
    /// A foreground program ended with `status`; `reruns` holds the pods
    /// of the runs after the first, when it ran again on changes.
    Ended { status: i32, reruns: Vec<Launched> },
}

/// How a launch ended, short of success.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An object of the dproc's name is there already and is left alone.
    #[error("{0}")]
    NameTaken(String),
    #[error(
        "namespace {0} does not exist; create it with `literally create namespace {0}` or pick \
         another with --namespace"
    )]
    NoNamespace(String),
    /// A pod cannot run the program, as judged from its status; `reason`
    /// says why, with the last lines that explain it.
    #[error("{name}: {reason}")]
    PodFailed { name: String, reason: String },
    /// Ctrl-C ended a wait; what stays and how to see it.
    #[error("stopped waiting; {0}")]
    StoppedWaiting(String),
    #[error(
        "{name}: lost the connection to the cluster at {server} while the program ran ({}), \
         and could not reach it again for {} s; it may still be running there: once the \
         cluster answers again, `ps` shows it, \
         `logs {name}` its output and `kill {name}` removes it",
        source.reason(),
        wait::RESUME_LIMIT.as_secs()
    )]
    Lost {
        name: String,
        server: String,
        #[source]
        source: ClusterError,
    },
    /// The cluster will not create the dproc's pods; `message` is the API
    /// server's (Pod Security, a ResourceQuota…).
    #[error(
        "{name}: the cluster refuses to create its pods: {message}; {}launch it in a \
         namespace that admits it (`--namespace`), or ask the cluster's admin",
        refusal_hint(.message)
    )]
    PodsRefused { name: String, message: String },
    #[error("{name}: the watch on its pods ended; `ps` shows the dproc's state")]
    WatchEnded { name: String },
    #[error("the pod {0} was deleted before the program ended")]
    Deleted(String),
    /// The cluster would not store a ConfigMap holding part of the files.
    #[error(
        "{name}: the cluster refused the program's files (ConfigMap {part} of {parts}, {} of \
         the bundle): {source}; `BUNDLE_MAX_MB` and `.kubeshignore` set what is shipped",
        bundle::human(*size as u64)
    )]
    BundleRefused {
        name: String,
        part: usize,
        parts: usize,
        size: usize,
        #[source]
        source: ClusterError,
    },
    #[error(
        "{name} listens on {socket}, which only the pod itself reaches: its Service sends to \
         port {port} on the pod's address; make the program listen on 0.0.0.0, port $PORT \
         ({hint})"
    )]
    LoopbackOnly {
        name: String,
        socket: std::net::SocketAddr,
        port: u16,
        hint: &'static str,
    },
    #[error(
        "{name} listens on ports {}, not {port}: launch it with SERVICE_PORT set to the one \
         that serves (`SERVICE_PORT={} …`), or make it listen on $PORT",
        ports_list(.ports),
        .ports.first().copied().unwrap_or_default()
    )]
    OtherPorts {
        name: String,
        port: u16,
        ports: Vec<u16>,
    },
    #[error(
        "{name}: the program runs but has not listened {} within {waited} s",
        match .port { Some(port) => format!("on port {port}"), None => "on its port".to_string() }
    )]
    NotListening {
        name: String,
        port: Option<u16>,
        waited: u64,
    },
}

impl LaunchError {
    /// Whether the dproc's objects were created and stay after this
    /// failure (and the message does not already say how to see and
    /// remove them).
    pub fn leaves_dproc(&self) -> bool {
        self.fixed_by_a_change_of_code()
            || matches!(
                self,
                LaunchError::WatchEnded { .. } | LaunchError::PodsRefused { .. }
            )
    }

    /// Whether the program itself is at fault (it crashed, or does not
    /// listen where its Service sends), so that a change to its code,
    /// reloaded into the dproc that stays, can put it right.
    pub fn fixed_by_a_change_of_code(&self) -> bool {
        matches!(
            self,
            LaunchError::PodFailed { .. }
                | LaunchError::NotListening { .. }
                | LaunchError::OtherPorts { .. }
                | LaunchError::LoopbackOnly { .. }
        )
    }
}

/// What the user may change about a pod the API server refuses, before
/// the general advice: the profile for Pod Security, the requests for a
/// quota.
fn refusal_hint(message: &str) -> &'static str {
    if message.contains("violates PodSecurity") {
        "POD_SECURITY=restricted runs it as a namespace enforcing `restricted` asks, or "
    } else if message.contains("quota") {
        "CPU_REQUEST and MEMORY_REQUEST set what each container asks for, or "
    } else {
        ""
    }
}

/// Ports as a list for a sentence: `3000, 9229`.
fn ports_list(ports: &[u16]) -> String {
    let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
    shown.join(", ")
}

/// Creates the dproc `spec` and `bundle` describe and waits for it: a background one
/// until its pods are ready, a foreground one until its program ends (and,
/// for a `rerun` request, again after each change, until Ctrl-C).
///
/// # Errors
/// The cluster refused or could not be reached, a pod cannot run the
/// program, or Ctrl-C ended the wait for a background dproc.
pub fn start(
    connection: &Connection,
    interrupt: &Interrupt,
    request: &Request,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<Outcome, LaunchError> {
    if spec.background {
        let (took, service, listen_port) = wait::background(connection, interrupt, spec, bundle)?;
        Ok(Outcome::Ready {
            service: Box::new(service),
            took,
            listen_port,
        })
    } else if request.rerun {
        let mut reruns = Vec::new();
        let replan = || plan::plan(request.program.clone(), false, &request.settings);
        let first = (spec.clone(), bundle.clone());
        let status = rerun::watching(connection, interrupt, first, replan, &mut reruns);
        Ok(Outcome::Ended { status, reruns })
    } else {
        let status = wait::foreground(connection, interrupt, spec, bundle)?;
        Ok(Outcome::Ended {
            status,
            reruns: Vec::new(),
        })
    }
}
