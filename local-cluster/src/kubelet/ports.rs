//! Port clashes on the shared network. Every pod of the local cluster
//! listens on this machine's network, so two pods cannot listen on the same
//! port. Two ways to see it coming and say so on the pod:
//!
//! - declared ports: a container's `containerPort`s are taken while it
//!   runs (as host ports are on a real node); a pod whose declared port
//!   another running container holds is unschedulable, as the scheduler
//!   says of a host port in use, with the holder named, until it is free;
//! - undeclared ports: a program that exits after "address already in use"
//!   gets a termination message naming the port (when its output says it)
//!   and what holds it, found from this machine's listening sockets.

use std::collections::HashMap;

use serde_json::Value;

use super::Kubelet;

/// `(port, protocol)` a container declares.
pub type PortKey = (u16, String);

/// Who holds a declared port.
#[derive(Clone)]
pub struct Holder {
    pub uid: String,
    /// `NAMESPACE/NAME` of the pod.
    pub pod: String,
    pub container: String,
}

/// The declared ports of a container.
pub fn declared(container: &Value) -> Vec<PortKey> {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let port = entry["containerPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())?;
            Some((
                port,
                entry["protocol"].as_str().unwrap_or("TCP").to_string(),
            ))
        })
        .collect()
}

/// Declared ports held by one container run; released when dropped.
pub struct Reservation<'a> {
    kubelet: &'a Kubelet,
    uid: String,
    container: String,
    keys: Vec<PortKey>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut held = self.kubelet.held_ports();
        for key in &self.keys {
            if held
                .get(key)
                .is_some_and(|h| h.uid == self.uid && h.container == self.container)
            {
                held.remove(key);
            }
        }
    }
}

impl Kubelet {
    fn held_ports(&self) -> std::sync::MutexGuard<'_, HashMap<PortKey, Holder>> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the declared ports for a container run, or says which port
    /// another pod's container holds.
    pub fn reserve_ports(
        &self,
        holder: Holder,
        keys: Vec<PortKey>,
    ) -> Result<Reservation<'_>, (PortKey, Holder)> {
        let mut held = self.held_ports();
        for key in &keys {
            if let Some(other) = held.get(key).filter(|other| other.uid != holder.uid) {
                return Err((key.clone(), other.clone()));
            }
        }
        for key in &keys {
            held.insert(key.clone(), holder.clone());
        }
        Ok(Reservation {
            kubelet: self,
            uid: holder.uid,
            container: holder.container,
            keys,
        })
    }

    /// The pod and container a process belongs to: by its process group,
    /// else by its ancestors' (a program that made its own group, as
    /// kubesh's supervisor has it do, is still the container's).
    fn container_of_process(&self, pid: u32, pgid: u32) -> Option<(String, String, String)> {
        if let Some(found) = self.container_of_group(pgid) {
            return Some(found);
        }
        let mut current = pid;
        for _ in 0..64 {
            let stat = std::fs::read_to_string(format!("/proc/{current}/stat")).ok()?;
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let parent: u32 = fields.nth(1)?.parse().ok()?;
            let group: u32 = fields.next()?.parse().ok()?;
            if let Some(found) = self.container_of_group(group) {
                return Some(found);
            }
            if parent <= 1 {
                return None;
            }
            current = parent;
        }
        None
    }

    /// The pod and container whose process group is `pgid`.
    fn container_of_group(&self, pgid: u32) -> Option<(String, String, String)> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.values().find_map(|handle| {
            let pids = handle.pids.lock().unwrap_or_else(|e| e.into_inner());
            pids.iter()
                .find(|(_, pid)| **pid == pgid)
                .map(|(container, _)| {
                    (
                        handle.uid.clone(),
                        format!("{}/{}", handle.namespace, handle.name),
                        container.clone(),
                    )
                })
        })
    }
}

/// What a container waiting for a declared port says.
pub fn waiting_message(key: &PortKey, holder: &Holder) -> String {
    format!(
        "port {}/{} is taken by pod {} (container {}): without pod sandboxes, pods of the local cluster share this machine's network, so only one of them can listen on a port. This pod starts when that one stops; to run both, give each pod its own port (or run one replica).",
        key.0, key.1, holder.pod, holder.container
    )
}

/// Whether a program's last output says it could not bind its port, and
/// the port when the output names it.
pub fn address_in_use(output: &str) -> Option<Option<u16>> {
    let line = output.lines().rev().find(|line| {
        let lower = line.to_ascii_lowercase();
        lower.contains("address already in use") || lower.contains("eaddrinuse")
    })?;
    Some(port_in(line))
}

/// The last port number the line names (`:8080`, `port 8080`).
fn port_in(line: &str) -> Option<u16> {
    let bytes = line.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before = &line[..start];
            let marked = before.ends_with(':') || before.to_ascii_lowercase().ends_with("port ");
            if marked && let Ok(port @ 1..) = line[start..i].parse::<u16>() {
                found = Some(port);
            }
        } else {
            i += 1;
        }
    }
    found
}

/// TCP ports listened on by this machine, with the socket inodes.
fn listening() -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is IP:PORT in hex; state 0A is LISTEN.
            if cols.get(3) != Some(&"0A") {
                continue;
            }
            let port = cols
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let inode = cols.get(9).and_then(|i| i.parse::<u64>().ok());
            if let (Some(port), Some(inode)) = (port, inode) {
                out.push((port, inode));
            }
        }
    }
    out
}

/// Process id, process group and command name of the processes that hold
/// one of these socket inodes.
fn owners(inodes: &[u64]) -> HashMap<u64, (u32, u32, String)> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = target.to_string_lossy();
            let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<u64>().ok())
            else {
                continue;
            };
            if !inodes.contains(&inode) || out.contains_key(&inode) {
                continue;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let comm = stat
                .find('(')
                .zip(stat.rfind(')'))
                .map(|(a, b)| stat[a + 1..b].to_string())
                .unwrap_or_default();
            let pgid = stat
                .rfind(')')
                .and_then(|c| stat[c + 1..].split_whitespace().nth(2))
                .and_then(|g| g.parse::<u32>().ok())
                .unwrap_or(0);
            out.insert(inode, (pid, pgid, comm));
        }
    }
    out
}

/// The termination message for a container that could not bind: the port
/// (from its output, else the ports its sibling pods listen on) and what
/// holds it.
pub fn explain_in_use(
    kubelet: &Kubelet,
    uid: &str,
    siblings: &[String],
    port: Option<u16>,
) -> String {
    let socks = listening();
    let inodes: Vec<u64> = socks.iter().map(|(_, i)| *i).collect();
    let owners = owners(&inodes);
    // (port, description of the holder, holder is a sibling pod)
    let mut holders: Vec<(u16, String, bool)> = Vec::new();
    for (listen_port, inode) in &socks {
        if port.is_some_and(|want| want != *listen_port)
            || holders.iter().any(|(hp, _, _)| hp == listen_port)
        {
            continue;
        }
        let Some((pid, pgid, comm)) = owners.get(inode) else {
            continue;
        };
        match kubelet.container_of_process(*pid, *pgid) {
            Some((hu, _, _)) if hu == uid => {}
            Some((hu, pod, container)) => holders.push((
                *listen_port,
                format!("pod {pod} (container {container})"),
                siblings.contains(&hu),
            )),
            None if port.is_some() => holders.push((
                *listen_port,
                format!("process {pid} ({comm}) on this machine, outside the cluster"),
                false,
            )),
            None => {}
        }
    }
    let share = "Pods of the local cluster share this machine's network, so only one of them can listen on a port: give each pod its own port (or run one replica).";
    match port {
        Some(port) => match holders.first() {
            Some((_, who, _)) => {
                format!("address already in use: port {port} is taken by {who}. {share}")
            }
            None => {
                format!("address already in use: port {port} is taken on this machine. {share}")
            }
        },
        None => {
            let sib: Vec<String> = holders
                .iter()
                .filter(|(_, _, sibling)| *sibling)
                .map(|(p, who, _)| format!("{who} listens on port {p}"))
                .collect();
            if sib.is_empty() {
                format!(
                    "address already in use: another pod or program on this machine listens on the port this program wanted. {share}"
                )
            } else {
                format!(
                    "address already in use: the port this program wanted is taken ({}). {share}",
                    sib.join("; ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_in_common_messages() {
        assert_eq!(
            address_in_use("Error: listen EADDRINUSE: address already in use :::8080"),
            Some(Some(8080))
        );
        assert_eq!(
            address_in_use("listen tcp :9000: bind: address already in use"),
            Some(Some(9000))
        );
        assert_eq!(
            address_in_use("Address already in use - bind(2) for \"0.0.0.0\" port 4567"),
            Some(Some(4567))
        );
        assert_eq!(
            address_in_use("x\nOSError: [Errno 98] Address already in use\n"),
            Some(None)
        );
        assert_eq!(address_in_use("all good"), None);
    }
}
