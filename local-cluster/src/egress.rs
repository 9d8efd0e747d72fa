//! Pods' way out, with nothing installed: in the node's network namespace
//! every address outside the cluster's ranges is local, so a pod's
//! connection to the outside world arrives at a listener of the cluster,
//! which opens the same connection from this machine and relays the bytes
//! (TCP ports 80 and 443: registries, package indexes, web APIs; other
//! ports are refused at once). Names resolve through the cluster's DNS
//! address, 10.96.0.10, which relays queries to this machine's resolvers.
//! Nothing addressed to the pod or Service ranges is ever relayed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::Shared;
use crate::kubelet::network::{self, DNS_IP};

/// The TCP ports pods reach the outside on.
pub const PORTS: [u16; 2] = [80, 443];

/// Whether a pod may be relayed to `ip`: never the cluster's own ranges,
/// loopback or unspecified addresses.
fn outside(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(network::contains(network::POD_NET, v4)
                || network::contains(network::SERVICE_NET, v4)
                || v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast())
        }
        IpAddr::V6(_) => false,
    }
}

/// This machine's resolvers, from `/etc/resolv.conf` (IPv4 ones).
fn upstream_resolvers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let found: Vec<SocketAddr> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<Ipv4Addr>().ok())
        .map(|ip| SocketAddr::from((ip, 53)))
        .collect();
    if found.is_empty() {
        vec![SocketAddr::from(([127, 0, 0, 1], 53))]
    } else {
        found
    }
}

/// Makes closing `conn` a reset, as a refused connection looks.
fn reset(conn: &tokio::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(conn, nix::sys::socket::sockopt::Linger, &linger);
}

async fn relay_tcp(shared: Arc<Shared>, port: u16) {
    let Some(node) = shared.kubelet.node() else {
        return;
    };
    let listener = match node
        .holder
        .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("local cluster: pods cannot reach port {port} outside: {e}");
            return;
        }
    };
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            let Ok(dest) = conn.local_addr() else {
                return;
            };
            if !outside(dest.ip()) {
                // An address of the cluster nobody holds: refused.
                reset(&conn);
                return;
            }
            let up = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect(dest),
            )
            .await;
            let Ok(Ok(mut up)) = up else {
                reset(&conn);
                return;
            };
            let _ = conn.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
        });
    }
}

async fn relay_dns(shared: Arc<Shared>) {
    let Some(node) = shared.kubelet.node() else {
        return;
    };
    let socket = node
        .holder
        .bind_udp(SocketAddr::from((DNS_IP, 53)))
        .map(Arc::new);
    let socket = match socket {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("local cluster: pods have no DNS: {e}");
            return;
        }
    };
    let upstream = upstream_resolvers();
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..len].to_vec();
        let socket = socket.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(out) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
                return;
            };
            let mut answer = vec![0u8; 4096];
            for server in upstream {
                if out.send_to(&query, server).await.is_err() {
                    continue;
                }
                if let Ok(Ok((len, _))) =
                    tokio::time::timeout(Duration::from_secs(3), out.recv_from(&mut answer)).await
                {
                    let _ = socket.send_to(&answer[..len], from).await;
                    return;
                }
            }
        });
    }
}

/// Serves pods' egress and DNS until the cluster stops.
pub async fn run(shared: Arc<Shared>) {
    if shared.kubelet.node().is_none() {
        return;
    }
    let mut tasks = vec![tokio::spawn(relay_dns(shared.clone()))];
    for port in PORTS {
        tasks.push(tokio::spawn(relay_tcp(shared.clone(), port)));
    }
    for task in tasks {
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ranges_are_never_relayed() {
        assert!(outside("151.101.0.223".parse().unwrap()));
        assert!(!outside("10.244.0.9".parse().unwrap()));
        assert!(!outside("10.100.3.4".parse().unwrap()));
        assert!(!outside("127.0.0.1".parse().unwrap()));
        assert!(outside("10.255.255.53".parse().unwrap()));
    }
}
