//! kubesh's local cluster: an embedded Kubernetes API server that runs pods as
//! local processes on this machine.
//!
//! [`LocalCluster::start`] runs it on a background thread with its own tokio
//! runtime; [`run_standalone`] runs it in the foreground until Ctrl-C.

mod api;
mod auth;
mod base64;
mod controllers;
mod defaults;
mod discovery;
mod egress;
mod error;
mod events;
mod kubelet;
mod lingering;
mod openapi;
mod patch;
mod pod_security;
mod protobuf;
mod quota;
mod resources;
mod selectors;
mod server;
mod service_ips;
mod store;
mod table;
mod tls;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use store::Store;

/// The name of the local cluster's one node.
pub(crate) const NODE_NAME: &str = "kubesh-local";

/// How to start a local cluster.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; default: kubesh's data directory.
    pub kubeconfig: Option<PathBuf>,
    /// Where pods get their directories; default: kubesh's data directory.
    pub state_dir: Option<PathBuf>,
}

/// State shared by the server, the controllers and the kubelet.
pub(crate) struct Shared {
    pub store: Store,
    pub token: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub kubelet: kubelet::Kubelet,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub tls: tls::Tls,
}

/// A running local cluster (its own thread and tokio runtime).
pub struct LocalCluster {
    kubeconfig: PathBuf,
    url: String,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// The one-line honest label shown when the local cluster starts.
pub fn notice() -> String {
    "local cluster: programs run as processes on this machine, with its files and tools; \
     images are recorded, not pulled"
        .to_string()
}

impl LocalCluster {
    /// Starts the cluster; returns once the server accepts requests.
    pub fn start(opts: Options) -> anyhow::Result<LocalCluster> {
        let kubeconfig = match opts.kubeconfig.clone() {
            Some(path) => path,
            None => auth::default_kubeconfig()?,
        };
        let state_dir = match opts.state_dir.clone() {
            Some(path) => path,
            None => auth::data_dir()?.join("state"),
        };
        std::fs::create_dir_all(&state_dir).with_context(|| {
            format!("cannot create the state directory {}", state_dir.display())
        })?;
        let state_dir = state_dir.canonicalize().unwrap_or(state_dir);
        let token = auth::new_token();
        let tls = tls::generate()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<Arc<Shared>>>();
        let port = opts.port;
        let thread = std::thread::Builder::new()
            .name("local-cluster".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .max_blocking_threads(8)
                    .thread_keep_alive(std::time::Duration::from_secs(2))
                    .thread_name("local-cluster-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow::anyhow!(
                                "cannot listen on 127.0.0.1:{port}: {e}"
                            )));
                            return;
                        }
                    };
                    let addr = match listener.local_addr() {
                        Ok(addr) => addr.to_string(),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let kubelet = kubelet::Kubelet::new(state_dir.clone());
                    let store = Store::new();
                    if kubelet.node().is_some() {
                        store.use_service_range();
                    }
                    let shared = Arc::new(Shared {
                        store,
                        token,
                        addr,
                        kubelet,
                        shutdown: stop_rx.clone(),
                        tls,
                    });
                    server::bootstrap(&shared);
                    let tasks = vec![
                        tokio::spawn(controllers::run(shared.clone())),
                        tokio::spawn(kubelet::run(shared.clone())),
                        tokio::spawn(service_ips::run(shared.clone())),
                        tokio::spawn(egress::run(shared.clone())),
                    ];
                    let _ = ready_tx.send(Ok(shared.clone()));
                    server::serve(shared.clone(), listener).await;
                    // Stopping: every pod process first, then the rest.
                    shared.kubelet.stop_all().await;
                    for task in tasks {
                        task.abort();
                    }
                });
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
            })
            .context("cannot start the local cluster thread")?;
        let shared = match ready_rx.recv() {
            Ok(Ok(shared)) => shared,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                anyhow::bail!("the local cluster stopped while starting");
            }
        };
        let url = format!("https://{}", shared.addr);
        let cluster = LocalCluster {
            kubeconfig,
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
            shared,
        };
        auth::write_kubeconfig(
            &cluster.kubeconfig,
            &cluster.url,
            &cluster.shared.token,
            &cluster.shared.tls.ca_pem,
        )?;
        Ok(cluster)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server_url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) of the server's TLS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.shared.tls.ca_pem
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    pub fn notice(&self) -> String {
        notice()
    }

    /// How pods are isolated here (one line).
    pub fn isolation_mechanism(&self) -> String {
        self.shared.kubelet.mechanism()
    }

    /// Whether pods run in sandboxes of their own (namespaces, an address
    /// each), or directly on this machine.
    pub fn sandboxed(&self) -> bool {
        self.shared.kubelet.node().is_some()
    }

    /// Process ids of every running container process (for tests and tools).
    pub fn pod_pids(&self) -> Vec<u32> {
        self.shared.kubelet.all_pids()
    }

    /// Stops every pod process, then the server.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Runs the cluster in the foreground until Ctrl-C or SIGTERM.
pub fn run_standalone(opts: Options) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(opts)?;
    println!("{}", cluster.notice());
    println!("{}", cluster.isolation_mechanism());
    println!("server: {}", cluster.server_url());
    println!("kubeconfig: {}", cluster.kubeconfig_path().display());
    println!(
        "try: KUBECONFIG={} kubectl get namespaces",
        cluster.kubeconfig_path().display()
    );
    wait_for_signal()?;
    eprintln!("stopping the local cluster...");
    cluster.shutdown();
    Ok(())
}

fn wait_for_signal() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        Ok::<_, anyhow::Error>(())
    })
}
