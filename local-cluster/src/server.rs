//! The listener: accepts loopback connections and serves HTTP/1.1 with the
//! API router; also creates the objects a fresh cluster starts with.

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::Shared;
use crate::resources;

/// Creates the namespaces (and the `kubernetes` service) a cluster has.
pub fn bootstrap(shared: &Shared) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        crate::defaults::apply(resources::namespaces(), &mut obj, &shared.store);
        let _ = shared.store.create(resources::namespaces(), "", obj);
    }
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
                    // TLS (what kubectl speaks) or plain HTTP on the same port.
                    let mut first = [0u8; 1];
                    let tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
                    let acceptor = shared.tls.acceptor.clone();
                    let svc = service_fn(move |req| crate::api::serve(shared.clone(), req));
                    if tls {
                        let Ok(stream) = acceptor.accept(stream).await else { return };
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
                    } else {
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}
