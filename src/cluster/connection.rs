//! The connection to the API server: a kube-rs client on a small tokio
//! runtime, opened on first use (never before the first prompt). Every
//! cluster request kubesh makes goes through a [`Connection`], and every
//! error from it is turned into a sentence here.

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::ClusterTarget;
use super::trace::RequestLog;
use crate::interrupt::Interrupt;

/// An open client and the runtime its requests run on.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    pub client: Client,
    /// The API server's address, for messages.
    pub server: String,
}

/// Why a cluster request failed, said for a person.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cannot reach the cluster at {server}: {reason}; is it running? (`kubesh --local` starts a local one)"
    )]
    Unreachable { server: String, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl Connection {
    /// Connects as the kubeconfig (or the in-cluster service account) says.
    pub fn open(target: &ClusterTarget, log: &RequestLog) -> Result<Connection, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kubesh-cluster")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Other(format!("cannot start the cluster client: {e}")))?;
        let options = KubeConfigOptions {
            context: target.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = runtime.block_on(async {
            match &target.kubeconfig {
                Some(path) => {
                    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                        format!("the kubeconfig {} cannot be read: {e}", path.display())
                    })?;
                    Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .map_err(|e| e.to_string())
                }
                None => match Config::from_kubeconfig(&options).await {
                    Ok(config) => Ok(config),
                    Err(kubeconfig_error) => {
                        Config::incluster().map_err(|_| match &target.problem {
                            Some(problem) => problem.clone(),
                            None => kubeconfig_error.to_string(),
                        })
                    }
                },
            }
        });
        let mut config = config
            .map_err(|reason| ClusterError::Other(format!("no cluster to talk to: {reason}")))?;
        config.connect_timeout = Some(Duration::from_secs(5));
        let server = config.cluster_url.to_string();
        let _guard = runtime.enter();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| ClusterError::Other(format!("cannot set up the cluster client: {e}")))?
            .with_layer(log)
            .build();
        drop(_guard);
        Ok(Connection {
            runtime,
            client,
            server,
        })
    }

    /// The runtime, for work that outlives one command (hot reload).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Runs a request to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Runs a future until it ends or Ctrl-C is pressed.
    pub fn until_interrupted<F: Future>(
        &self,
        interrupt: &Interrupt,
        future: F,
    ) -> Result<F::Output, ClusterError> {
        self.runtime.block_on(async {
            tokio::pin!(future);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    output = &mut future => return Ok(output),
                    _ = tick.tick() => {
                        if interrupt.is_set() {
                            return Err(ClusterError::Interrupted);
                        }
                    }
                }
            }
        })
    }

    /// Turns a kube-rs error into a sentence.
    pub fn explain(&self, error: kube::Error) -> ClusterError {
        explain(&self.server, error)
    }
}

/// A kube-rs error as a sentence, when the server's address is not at hand.
pub fn describe(error: kube::Error) -> String {
    match explain("the cluster", error) {
        ClusterError::Unreachable { reason, .. } => {
            format!("the cluster cannot be reached: {reason}")
        }
        other => other.to_string(),
    }
}

/// Turns a kube-rs error into a sentence; API errors keep the server's own
/// message, which names the verb, the resource and the namespace.
pub fn explain(server: &str, error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            ClusterError::Refused(match status.code {
                401 => format!("the cluster does not accept kubesh's credentials: {message}"),
                403 => format!("not allowed: {message}"),
                _ => message,
            })
        }
        kube::Error::HyperError(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        kube::Error::Service(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        other => ClusterError::Other(other.to_string()),
    }
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
