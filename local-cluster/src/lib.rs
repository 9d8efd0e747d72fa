//! kubesh's local cluster: an embedded Kubernetes API server that runs pods as
//! local processes on this machine.
//!
//! [`LocalCluster::start`] runs it on a background thread with its own tokio
//! runtime; [`run_standalone`] runs it in the foreground until Ctrl-C.

mod api;
mod auth;
mod base64;
mod controllers;
mod database;
mod defaults;
mod discovery;
mod egress;
mod error;
mod events;
mod fields;
mod kubelet;
mod lingering;
mod namespace_lifecycle;
mod node_ports;
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
    /// Where the cluster keeps its objects, identity and port, and where
    /// pods get their directories. Given, the cluster persists: started
    /// again on the same directory it has every object, its pods run
    /// again and its kubeconfig still works. Not given, objects are kept
    /// in memory only and pods get directories in kubesh's data directory.
    pub state_dir: Option<PathBuf>,
    /// Whether pods run in their images (through a Docker engine) or run
    /// their commands from this machine; see [`ImagesSetting::from_env`].
    pub images: ImagesSetting,
    /// Where images' unpacked files are kept, a directory per image id
    /// (default: `STATE/images`). Named by content, so the clusters of one
    /// user may share it: a new cluster then finds the images an earlier
    /// one unpacked.
    pub images_cache: Option<PathBuf>,
}

pub use kubelet::images::{IMAGES_VARIABLE, ImagesSetting};

/// State shared by the server, the controllers and the kubelet.
pub(crate) struct Shared {
    pub store: Store,
    pub token: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub kubelet: kubelet::Kubelet,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub tls: tls::Tls,
    /// The channel protocols exec and attach speak over WebSocket: those
    /// of a current API server, or of one before 1.30
    /// ([`api::streams::PROTOCOLS_VARIABLE`]).
    pub exec_protocols: &'static [&'static str],
}

/// A running local cluster (its own thread and tokio runtime).
pub struct LocalCluster {
    kubeconfig: PathBuf,
    url: String,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// The one-line honest label shown when the local cluster starts, for
/// pods that run their commands from this machine (the images line that
/// follows it says why).
pub fn notice() -> String {
    "local cluster: programs run as processes on this machine, with its files and tools".to_string()
}

impl LocalCluster {
    /// Starts the cluster; returns once the server accepts requests.
    pub fn start(opts: Options) -> anyhow::Result<LocalCluster> {
        let kubeconfig = match opts.kubeconfig.clone() {
            Some(path) => path,
            None => auth::default_kubeconfig()?,
        };
        let persistent = opts.state_dir.is_some();
        let state_dir = match opts.state_dir.clone() {
            Some(path) => path,
            None => auth::data_dir()?.join("state"),
        };
        // For this user only: the store keeps the CA's key and the token.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&state_dir)
                .with_context(|| {
                    format!("cannot create the state directory {}", state_dir.display())
                })?;
        }
        let state_dir = state_dir.canonicalize().unwrap_or(state_dir);
        let (store, identity, listener) = if persistent {
            open_state(&state_dir, opts.port)?
        } else {
            let identity = tls::new_identity(auth::new_token())?;
            (Store::new(), identity, bind(opts.port, None, &state_dir)?)
        };
        let token = identity.token.clone();
        let tls = tls::from_identity(&identity)?;
        let exec_protocols = api::streams::protocols_from_env()?;
        let pull_time = kubelet::pull_time_from_env()?;
        let images = opts.images;
        let images_cache = opts
            .images_cache
            .clone()
            .unwrap_or_else(|| state_dir.join("images"));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<Arc<Shared>>>();
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
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
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
                    let kubelet =
                        kubelet::Kubelet::new(state_dir.clone(), pull_time, images, images_cache)
                            .await;
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
                        exec_protocols,
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
                    // Stopping: the store keeps what it holds now (pods
                    // that run come back on the next start), then every
                    // pod process, then the rest.
                    shared.store.close();
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
        match self.shared.kubelet.engine() {
            Some(_) => "local cluster: programs run as processes on this machine, each in its \
                        image's files"
                .to_string(),
            None => notice(),
        }
    }

    /// Where pods' files come from (one line): their images, through the
    /// Docker engine, or this machine, and why.
    pub fn images_mode(&self) -> String {
        self.shared.kubelet.images_mode()
    }

    /// Whether pods run in their images (through a Docker engine).
    pub fn runs_images(&self) -> bool {
        self.shared.kubelet.engine().is_some()
    }

    /// What the local cluster emulates of an older API server, if
    /// anything (one line).
    pub fn emulation(&self) -> Option<String> {
        let mut said = Vec::new();
        if self.shared.exec_protocols == api::streams::PROTOCOLS_BEFORE_1_30 {
            said.push(format!(
                "exec and attach over WebSocket speak only v4.channel.k8s.io, as an API server \
                 before Kubernetes 1.30 ({}=v4)",
                api::streams::PROTOCOLS_VARIABLE
            ));
        }
        let pull_time = self.shared.kubelet.pull_time;
        if !pull_time.is_zero() {
            said.push(format!(
                "a first pull of an image takes {} s, as on a real node ({}); nothing is \
                 downloaded",
                pull_time.as_secs_f64(),
                kubelet::PULL_VARIABLE
            ));
        }
        (!said.is_empty()).then(|| said.join("; "))
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

/// Opens the store of a state directory, with the identity and port it
/// keeps (made and kept on its first start), and listens on that port
/// (or on `port` when one is given, which is kept from then on).
fn open_state(
    state_dir: &Path,
    port: u16,
) -> anyhow::Result<(Store, database::Identity, std::net::TcpListener)> {
    let (mut db, loaded) = database::Database::open(state_dir)?;
    let identity = match db.identity()? {
        Some(identity) => identity,
        None => {
            let identity = tls::new_identity(auth::new_token())?;
            db.save_identity(&identity)?;
            identity
        }
    };
    let kept = db.port()?;
    let listener = bind(port, kept, state_dir)?;
    let bound = listener.local_addr()?.port();
    if kept != Some(bound) {
        db.save_port(bound)?;
    }
    Ok((Store::restore(db, loaded), identity, listener))
}

/// Listens on 127.0.0.1: on `asked`, or else on the port `kept` in the
/// state directory, or else on a free one.
fn bind(asked: u16, kept: Option<u16>, state_dir: &Path) -> anyhow::Result<std::net::TcpListener> {
    let port = if asked != 0 { asked } else { kept.unwrap_or(0) };
    let listener = match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) if asked == 0 && kept.is_some() && e.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::bail!(
                "port {port}, where the local cluster of {} listened before (its kubeconfig names https://127.0.0.1:{port}), is taken by another program; stop that program, or start with --port N to use another port (kubeconfigs written before then name the old one)",
                state_dir.display()
            )
        }
        Err(e) => anyhow::bail!("cannot listen on 127.0.0.1:{port}: {e}"),
    };
    listener
        .set_nonblocking(true)
        .context("cannot set up the listening socket")?;
    Ok(listener)
}

/// Runs the cluster in the foreground until Ctrl-C or SIGTERM.
pub fn run_standalone(opts: Options) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(opts)?;
    println!("{}", cluster.notice());
    println!("{}", cluster.isolation_mechanism());
    println!("{}", cluster.images_mode());
    if let Some(emulation) = cluster.emulation() {
        println!("{emulation}");
    }
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
