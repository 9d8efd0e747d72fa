//! The connection to the API server: a kube-rs client on a small tokio
//! runtime, opened on first use (never before the first prompt), through
//! the proxy kubectl would use (see [`super::proxy`]). Every cluster
//! request kubesh makes goes through a [`Connection`], and every error from
//! it is sorted here into a [`ClusterError`] that keeps its cause.

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::ClusterTarget;
use super::proxy::{self, ProxyEnv, ProxyError};
use super::trace::RequestLog;
use crate::interrupt::Interrupt;

/// An open client and the runtime its requests run on.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    pub client: Client,
    /// The API server's address, and the proxy requests go through, for
    /// messages.
    pub server: String,
}

/// Why a cluster request failed. Each variant keeps the error it came
/// from; its message says what happened and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot start the cluster client: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the kubeconfig {path} cannot be read: {source}")]
    Kubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    /// Neither a kubeconfig nor the in-cluster service account names a
    /// cluster; `problem` is what the shell found wrong with the target.
    #[error("no cluster to talk to: {}", no_cluster_reason(.problem, .source))]
    NoCluster {
        problem: Option<String>,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    #[error("cannot set up the cluster client: {0}")]
    Client(#[source] Box<kube::Error>),
    #[error(transparent)]
    Proxy(Box<ProxyError>),
    #[error(
        "cannot reach the cluster at {server}: {}; is it running? (`kubesh --local` starts a local one)",
        transport_reason(.source)
    )]
    Unreachable {
        server: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server answered with an error status: its own message, which
    /// names the verb, the resource and the namespace.
    #[error("{}", refusal(.0))]
    Refused(#[source] Box<kube::core::Status>),
    #[error("interrupted")]
    Interrupted,
    #[error("the request to the cluster failed: {0}")]
    Request(#[source] Box<kube::Error>),
    #[error("the watch failed: {0}")]
    Watch(#[source] Box<kube::runtime::watcher::Error>),
    #[error("the stream from the cluster broke off: {0}")]
    Stream(#[source] std::io::Error),
}

impl ClusterError {
    /// What went wrong, without the advice: for a message that gives its
    /// own.
    pub fn reason(&self) -> String {
        match self {
            ClusterError::Unreachable { source, .. } => transport_reason(source),
            other => other.to_string(),
        }
    }
}

/// The API server's refusal as a sentence.
fn refusal(status: &kube::core::Status) -> String {
    let message = if status.message.is_empty() {
        status.reason.clone()
    } else {
        status.message.clone()
    };
    match status.code {
        401 => format!("the cluster does not accept kubesh's credentials: {message}"),
        403 => format!("not allowed: {message}"),
        _ => message,
    }
}

/// What the shell found wrong with its target, else why no kubeconfig
/// was found.
fn no_cluster_reason(problem: &Option<String>, source: &kube::config::KubeconfigError) -> String {
    problem.clone().unwrap_or_else(|| source.to_string())
}

/// Why a request did not reach the API server, without kube-rs's wrapping:
/// the client's words and, when it has one, the cause beneath them all
/// (`client error (Connect): Connection refused (os error 111)`).
fn transport_reason(error: &kube::Error) -> String {
    let top: &(dyn std::error::Error + 'static) = match error {
        kube::Error::HyperError(cause) => cause,
        kube::Error::Service(cause) => cause.as_ref(),
        other => other,
    };
    let mut deepest = top;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    let (top, deepest) = (top.to_string(), deepest.to_string());
    if top.contains(&deepest) {
        top
    } else {
        format!("{top}: {deepest}")
    }
}

impl Connection {
    /// Connects as the kubeconfig (or the in-cluster service account) says.
    pub fn open(target: &ClusterTarget, log: &RequestLog) -> Result<Connection, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kubesh-cluster")
            .enable_all()
            .build()
            .map_err(ClusterError::Runtime)?;
        let options = KubeConfigOptions {
            context: target.context.clone(),
            ..KubeConfigOptions::default()
        };
        let env = ProxyEnv::from_process();
        let loaded = runtime.block_on(async {
            let read = match &target.kubeconfig {
                Some(path) => {
                    Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                        path: path.clone(),
                        source: Box::new(source),
                    })?
                }
                None => match Kubeconfig::read() {
                    Ok(kubeconfig) => kubeconfig,
                    Err(source) => return in_cluster(target, source),
                },
            };
            let proxy_url = cluster_proxy_url(&read, options.context.as_deref());
            match Config::from_custom_kubeconfig(read, &options).await {
                Ok(config) => Ok((config, proxy_url)),
                Err(source) => {
                    if let Some(error) = proxy_setting_error(&source, proxy_url.as_deref(), &env) {
                        return Err(ClusterError::Proxy(Box::new(error)));
                    }
                    match &target.kubeconfig {
                        Some(_) => Err(ClusterError::NoCluster {
                            problem: None,
                            source: Box::new(source),
                        }),
                        None => in_cluster(target, source),
                    }
                }
            }
        });
        let (mut config, proxy_url) = loaded?;
        // kube-rs reads HTTPS_PROXY and NO_PROXY itself, by rules of its
        // own (NO_PROXY against the proxy's address, loopback proxied):
        // the proxy is chosen here as kubectl chooses it.
        config.proxy_url = proxy::choose(&config.cluster_url, proxy_url.as_deref(), &env)
            .map_err(|error| ClusterError::Proxy(Box::new(error)))?;
        config.connect_timeout = Some(Duration::from_secs(5));
        // kube-rs retries 429, 503 and 504 up to 15 times with a backoff
        // that grows to minutes: a shell shows the answer it got, at once
        // (a Service without ready pods answers 503), and says what to do.
        config.default_retry = false;
        let server = match &config.proxy_url {
            Some(proxy) => format!(
                "{} through the proxy {}",
                config.cluster_url,
                proxy::shown(proxy)
            ),
            None => config.cluster_url.to_string(),
        };
        let _guard = runtime.enter();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| ClusterError::Client(Box::new(e)))?
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

    /// Sorts a kube-rs error (see [`explain`]).
    pub fn explain(&self, error: kube::Error) -> ClusterError {
        explain(&self.server, error)
    }

    /// Sorts a watch's error as [`explain`] sorts a request's.
    pub fn explain_watch(&self, error: kube::runtime::watcher::Error) -> ClusterError {
        use kube::runtime::watcher::Error as Watch;
        match error {
            Watch::InitialListFailed(error)
            | Watch::WatchStartFailed(error)
            | Watch::WatchFailed(error) => self.explain(error),
            Watch::WatchError(status) => ClusterError::Refused(status),
            other => ClusterError::Watch(Box::new(other)),
        }
    }
}

/// The in-cluster service account's configuration, when no kubeconfig
/// names a cluster; else why there is no cluster.
fn in_cluster(
    target: &ClusterTarget,
    source: kube::config::KubeconfigError,
) -> Result<(Config, Option<String>), ClusterError> {
    match Config::incluster() {
        Ok(config) => Ok((config, None)),
        Err(_) => Err(ClusterError::NoCluster {
            problem: target.problem.clone(),
            source: Box::new(source),
        }),
    }
}

/// The `proxy-url` of the cluster the context (else the current context)
/// names, if it has one.
fn cluster_proxy_url(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = context.or(kubeconfig.current_context.as_deref())?;
    let cluster = &kubeconfig
        .contexts
        .iter()
        .find(|named| named.name == context)?
        .context
        .as_ref()?
        .cluster;
    kubeconfig
        .clusters
        .iter()
        .find(|named| &named.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .clone()
        .filter(|url| !url.is_empty())
}

/// kube-rs's refusal of a proxy setting while it reads the kubeconfig,
/// named by the setting it came from.
fn proxy_setting_error(
    error: &kube::config::KubeconfigError,
    kubeconfig_proxy: Option<&str>,
    env: &ProxyEnv,
) -> Option<ProxyError> {
    use kube::config::KubeconfigError as Error;
    match error {
        Error::ParseProxyUrl(cause) => {
            let (origin, value) = match (kubeconfig_proxy, &env.https) {
                (Some(value), _) => ("the kubeconfig's proxy-url".to_string(), value.to_string()),
                (None, Some((name, value))) => ((*name).to_string(), value.clone()),
                (None, None) => return None,
            };
            Some(ProxyError::Unusable {
                origin,
                value,
                reason: cause.to_string(),
            })
        }
        Error::ParseNoProxy(cause) => {
            let (variable, value) = env.no_proxy.clone()?;
            Some(ProxyError::NoProxy {
                variable,
                value,
                reason: cause.to_string(),
            })
        }
        _ => None,
    }
}

/// A kube-rs error as a sentence, when the server's address is not at hand.
pub fn describe(error: kube::Error) -> String {
    match explain("the cluster", error) {
        ClusterError::Unreachable { source, .. } => {
            format!(
                "the cluster cannot be reached: {}",
                transport_reason(&source)
            )
        }
        other => other.to_string(),
    }
}

/// Sorts a kube-rs error by what it means for the user: refused by the
/// API server, not delivered, or failed otherwise.
pub fn explain(server: &str, error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) => ClusterError::Refused(status),
        kube::Error::HyperError(_) | kube::Error::Service(_) => ClusterError::Unreachable {
            server: server.to_string(),
            source: Box::new(error),
        },
        other => ClusterError::Request(Box::new(other)),
    }
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
