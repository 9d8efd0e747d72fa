//! Service addresses, like kube-proxy: the cluster listens on
//! ClusterIP:port for each TCP port of a Service and forwards each
//! connection to a ready endpoint's targetPort (round-robin).
//!
//! With pod sandboxes, ClusterIPs are in 10.96.0.0/12 and the listeners
//! live in the node's network namespace, which every pod routes through:
//! only pods reach them, never a process on this machine. Without
//! sandboxes, ClusterIPs are on loopback (127.x.y.z) and only ports whose
//! targetPort differs get a listener (a program listening on its port on
//! every address already answers on the ClusterIP there).
//!
//! A port listens only while the service has a ready endpoint for it, so
//! without one a connection is refused at once, as kube-proxy rejects it.
//! A port that cannot be opened is reported as a Warning event on the
//! Service.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::Shared;
use crate::resources;
use crate::store::EventType;

struct Open {
    addrs: Vec<(String, u16)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Open {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether the Endpoints object has a ready address for the port named
/// `port_name` (unnamed: "").
fn has_ready(ep: &Value, port_name: &str) -> bool {
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|subset| {
            subset["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"].as_str().unwrap_or("") == port_name)
                && subset["addresses"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
}

fn wanted(shared: &Shared, svc: &Value, ep: &Value) -> Vec<(String, u16)> {
    let sandboxed = shared.kubelet.node().is_some();
    let Some(ip) = svc["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| ip.starts_with(if sandboxed { "10." } else { "127." }))
    else {
        return Vec::new();
    };
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
        // Pods share this machine's network: a program listening on its
        // port on every address already answers on the ClusterIP, and a
        // listener here would take that port from it.
        .filter(|service_port| {
            sandboxed
                || match &service_port["targetPort"] {
                    Value::Null => false,
                    Value::Number(target) => target.as_u64() != service_port["port"].as_u64(),
                    _ => true,
                }
        })
        .filter(|p| has_ready(ep, p["name"].as_str().unwrap_or("")))
        .filter_map(|p| p["port"].as_u64().and_then(|n| u16::try_from(n).ok()))
        .map(|port| (ip.to_string(), port))
        .collect()
}

async fn serve_port(
    shared: Arc<Shared>,
    listener: TcpListener,
    ns: String,
    name: String,
    port: u16,
) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        let (ns, name) = (ns.clone(), name.clone());
        tokio::spawn(async move {
            let Ok(target) =
                crate::api::proxy::service_target(&shared, &ns, &name, Some(&port.to_string()))
            else {
                // No ready endpoint: the connection is refused.
                return;
            };
            let Ok(addr) = target.parse::<std::net::SocketAddr>() else {
                return;
            };
            let Ok(mut up) = shared.kubelet.dial(addr).await else {
                return;
            };
            let _ = conn.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
        });
    }
}

fn sync(shared: &Arc<Shared>, open: &mut HashMap<String, Open>, svc: &Value, deleted: bool) {
    let ns = svc["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
    let key = format!("{ns}/{name}");
    let addrs = if deleted {
        Vec::new()
    } else {
        let ep = shared
            .store
            .try_get(resources::endpoints(), &ns, &name)
            .unwrap_or(Value::Null);
        wanted(shared, svc, &ep)
    };
    if open.get(&key).is_some_and(|o| o.addrs == addrs) {
        return;
    }
    // Close the old listeners before opening the new ones.
    open.remove(&key);
    if addrs.is_empty() {
        return;
    }
    let mut tasks = Vec::new();
    for (ip, port) in &addrs {
        let listener = match (shared.kubelet.node(), ip.parse::<std::net::IpAddr>()) {
            (Some(node), Ok(addr)) => node.holder.listen((addr, *port).into()),
            _ => std::net::TcpListener::bind((ip.as_str(), *port))
                .and_then(|std_listener| {
                    std_listener.set_nonblocking(true)?;
                    Ok(std_listener)
                })
                .and_then(TcpListener::from_std),
        };
        match listener {
            Ok(listener) => tasks.push(tokio::spawn(serve_port(
                shared.clone(),
                listener,
                ns.clone(),
                name.clone(),
                *port,
            ))),
            Err(e) => crate::events::record(
                &shared.store,
                svc,
                "Service",
                "Warning",
                "ClusterIPNotAvailable",
                &format!("cannot listen on {ip}:{port}: {e}"),
                "kube-proxy",
            ),
        }
    }
    open.insert(key, Open { addrs, tasks });
}

/// Keeps the listeners in line with the services.
pub async fn run(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    let mut open: HashMap<String, Open> = HashMap::new();
    let resync = |shared: &Arc<Shared>, open: &mut HashMap<String, Open>| {
        let (svcs, _) = shared.store.list(resources::services(), None);
        let keys: std::collections::HashSet<String> = svcs
            .iter()
            .map(|service| {
                format!(
                    "{}/{}",
                    service["metadata"]["namespace"].as_str().unwrap_or(""),
                    service["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        open.retain(|k, _| keys.contains(k));
        for service in &svcs {
            sync(shared, open, service, false);
        }
    };
    resync(&shared, &mut open);
    loop {
        match rx.recv().await {
            Ok(ev) if ev.res == "services" => {
                sync(&shared, &mut open, &ev.obj, ev.kind == EventType::Deleted)
            }
            Ok(ev) if ev.res == "endpoints" => {
                let meta = &ev.obj["metadata"];
                if let Some(svc) = shared.store.try_get(
                    resources::services(),
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or(""),
                ) {
                    sync(&shared, &mut open, &svc, false);
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => resync(&shared, &mut open),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
