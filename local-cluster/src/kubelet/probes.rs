//! Container probes: exec, httpGet and tcpSocket checks, one attempt each;
//! the runner drives them with their delays, periods and thresholds.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Kubelet;

fn port_of(probe_port: &Value, container: &Value) -> Option<u16> {
    if let Some(number) = probe_port.as_u64() {
        return u16::try_from(number).ok();
    }
    let name = probe_port.as_str()?;
    if let Ok(number) = name.parse::<u16>() {
        return Some(number);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// A connection from the node to `host:port`.
async fn dial(kubelet: &Kubelet, host: &str, port: u16) -> Result<TcpStream, String> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("dial tcp {host}:{port}: no such host"))?;
    kubelet
        .dial(addr)
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))
}

/// One HTTP GET; success is a status in 200..400.
async fn http_get(
    kubelet: &Kubelet,
    host: &str,
    port: u16,
    path: &str,
    headers: &Value,
) -> Result<(), String> {
    let mut stream = dial(kubelet, host, port).await?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for header in headers.as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (header["name"].as_str(), header["value"].as_str())
            && !name.contains(['\r', '\n'])
            && !value.contains(['\r', '\n'])
        {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while got < 12 {
        let count = stream
            .read(&mut buf[got..])
            .await
            .map_err(|e| e.to_string())?;
        if count == 0 {
            break;
        }
        got += count;
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("malformed HTTP response")?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// Runs one network probe attempt (httpGet, tcpSocket) against the pod's
/// address `pod_ip`, as the kubelet does; None for exec.
pub async fn check_network(
    kubelet: &Kubelet,
    pod_ip: &str,
    probe: &Value,
    container: &Value,
) -> Option<Result<(), String>> {
    let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let fut = async {
        if probe["httpGet"].is_object() {
            let http = &probe["httpGet"];
            let Some(port) = port_of(&http["port"], container) else {
                return Err("invalid probe port".to_string());
            };
            let host = http["host"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(pod_ip);
            let path = http["path"].as_str().unwrap_or("/");
            http_get(kubelet, host, port, path, &http["httpHeaders"]).await
        } else if probe["tcpSocket"].is_object() {
            let tcp = &probe["tcpSocket"];
            let Some(port) = port_of(&tcp["port"], container) else {
                return Err("invalid probe port".to_string());
            };
            let host = tcp["host"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(pod_ip);
            dial(kubelet, host, port).await.map(|_| ())
        } else {
            Err("unsupported probe".to_string())
        }
    };
    if probe["exec"].is_object() {
        return None;
    }
    Some(match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(format!("probe timed out after {}s", timeout.as_secs())),
    })
}

/// The TCP addresses a process's network namespace listens on, read from
/// `/proc/PID/net/tcp` (which shows the namespace of `pid`).
pub fn listening(pid: i32) -> Vec<std::net::SocketAddrV4> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN.
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // The kernel prints the address in host byte order of a
            // network-order value.
            Some(std::net::SocketAddrV4::new(
                std::net::Ipv4Addr::from(u32::from_be(ip)),
                port,
            ))
        })
        .collect()
}

/// What to add to a failed probe's message when the program listens on
/// the probed port on loopback only: on a real cluster it never becomes
/// ready either.
pub fn loopback_hint(listening: &[std::net::SocketAddrV4], port: u16) -> Option<String> {
    let on_port: Vec<_> = listening.iter().filter(|a| a.port() == port).collect();
    if on_port.is_empty() || on_port.iter().any(|a| !a.ip().is_loopback()) {
        return None;
    }
    Some(format!(
        "the container listens on {} only, which nothing outside the pod reaches; listen on 0.0.0.0:{port}",
        on_port[0]
    ))
}

/// The port a network probe checks, if any.
pub fn probe_port(probe: &Value, container: &Value) -> Option<u16> {
    let port = if probe["httpGet"].is_object() {
        &probe["httpGet"]["port"]
    } else {
        &probe["tcpSocket"]["port"]
    };
    port_of(port, container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_listener_is_named() {
        let lo: std::net::SocketAddrV4 = "127.0.0.1:5000".parse().unwrap();
        let any: std::net::SocketAddrV4 = "0.0.0.0:5000".parse().unwrap();
        assert!(
            loopback_hint(&[lo], 5000)
                .unwrap()
                .contains("127.0.0.1:5000 only")
        );
        assert_eq!(loopback_hint(&[lo, any], 5000), None);
        assert_eq!(loopback_hint(&[lo], 8080), None);
    }
}
