//! The listener: accepts loopback connections and serves HTTP/1.1 with the
//! API router (TLS or plain HTTP on the same port); also creates the
//! objects a fresh cluster starts with.
//!
//! A connection must start and finish its TLS handshake within
//! [`HANDSHAKE_TIMEOUT`] and send each request's headers within
//! [`REQUEST_HEADER_TIMEOUT`]; it is closed with a lingering close (see
//! [`crate::lingering`]), so an answer sent before the whole request was
//! read reaches the client instead of a reset.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::Shared;
use crate::lingering::{LINGER_TIMEOUT, LingeringClose};
use crate::resources;

/// How long a new connection may take to send its first byte and, when it
/// speaks TLS, to finish the handshake. Go's HTTP client, kubectl's, gives
/// up on a TLS handshake after the same 10 s (`TLSHandshakeTimeout`); a
/// client on this machine needs milliseconds. A connection still silent
/// or mid-handshake then is closed rather than kept open for ever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take to send a request's headers, counted
/// from the end of the handshake or of the previous response, so a
/// keep-alive connection idle this long is closed too. The Kubernetes API
/// server sets the same bound (`ReadHeaderTimeout` of 32 s).
pub const REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(32);

/// Why a client connection ended without being served to its end. Nobody
/// is told: the client sees its connection closed.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("no TLS handshake or request within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimedOut,
    #[error("cannot read the connection's first byte")]
    FirstByte(#[source] std::io::Error),
    #[error("the TLS handshake failed")]
    Handshake(#[source] std::io::Error),
    #[error("serving HTTP failed")]
    Http(#[from] hyper::Error),
}

/// Creates the namespaces, the node and the `kubernetes` service a
/// cluster has; on a restarted cluster (its node is in the store) records
/// the node's reboot and points the `kubernetes` service at this port.
pub fn bootstrap(shared: &Shared) {
    let mut node = crate::kubelet::node::object();
    crate::defaults::apply(resources::nodes(), &mut node, &shared.store);
    let restarted = shared
        .store
        .create(resources::nodes(), "", node)
        .is_err_and(|e| e.code == 409);
    if restarted
        && let Some(node) = shared
            .store
            .try_get(resources::nodes(), "", crate::NODE_NAME)
    {
        // As a node's kubelet says after a reboot; its pods start again.
        crate::events::record(
            &shared.store,
            &node,
            "Node",
            "Warning",
            "Rebooted",
            &format!(
                "Node {} has been rebooted, boot id: {}",
                crate::NODE_NAME,
                uuid::Uuid::new_v4()
            ),
            "kubelet",
        );
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        crate::defaults::apply(resources::namespaces(), &mut obj, &shared.store);
        let _ = shared.store.create(resources::namespaces(), "", obj);
    }
    // Every namespace's CA ConfigMap is there before the first request.
    crate::controllers::root_ca::resync(shared);
    let port: u16 = shared
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let cluster_ip = if shared.store.uses_service_range() {
        "10.96.0.1"
    } else {
        "127.10.0.1"
    };
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}], "clusterIP": cluster_ip},
    });
    crate::defaults::apply(resources::services(), &mut svc, &shared.store);
    let _ = shared.store.create(resources::services(), "default", svc);
    let ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    let _ = shared.store.create(resources::endpoints(), "default", ep);
    if restarted {
        // The server's port, if it changed since the last start.
        let _ = shared
            .store
            .modify(resources::services(), "default", "kubernetes", |svc| {
                svc["spec"]["ports"][0]["targetPort"] = json!(port);
                Ok(())
            });
        let _ = shared
            .store
            .modify(resources::endpoints(), "default", "kubernetes", |ep| {
                ep["subsets"][0]["ports"][0]["port"] = json!(port);
                Ok(())
            });
    }
}

/// Serves until shutdown is signalled.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    // The client sees the end of its connection; there is
                    // no one else to tell.
                    let _ = serve_connection(shared, stream).await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Serves one client connection: TLS (what kubectl speaks) or plain HTTP,
/// told apart by the first byte, within [`HANDSHAKE_TIMEOUT`].
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) -> Result<(), ConnectionError> {
    let handshake_deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut first_byte = [0u8; 1];
    let peeked = tokio::time::timeout_at(handshake_deadline, stream.peek(&mut first_byte))
        .await
        .map_err(|_| ConnectionError::HandshakeTimedOut)?
        .map_err(ConnectionError::FirstByte)?;
    if peeked == 0 {
        // Closed before sending anything.
        return Ok(());
    }
    // A TLS handshake starts with a handshake record (content type 22).
    let speaks_tls = first_byte[0] == 0x16;
    let stream = LingeringClose::new(stream, LINGER_TIMEOUT);
    let acceptor = shared.tls.acceptor.clone();
    let service = service_fn(move |req| crate::api::serve(shared.clone(), req));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(REQUEST_HEADER_TIMEOUT);
    if speaks_tls {
        let tls_stream = tokio::time::timeout_at(handshake_deadline, acceptor.accept(stream))
            .await
            .map_err(|_| ConnectionError::HandshakeTimedOut)?
            .map_err(ConnectionError::Handshake)?;
        http.serve_connection(TokioIo::new(tls_stream), service)
            .with_upgrades()
            .await?;
    } else {
        http.serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await?;
    }
    Ok(())
}
