//! What a program in a container listens on: its TCP listening sockets, read
//! from `/proc/net/tcp` and `/proc/net/tcp6` over exec (the container's own
//! network namespace, as the pod's probes and Services see it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::exec::{self, Exit};

/// One listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
}

impl Listener {
    /// Whether the socket takes connections from outside the pod: bound to
    /// every address, or to one that is not loopback.
    pub fn reachable(&self) -> bool {
        !self.address.is_loopback() && !is_mapped_loopback(self.address)
    }
}

/// `::ffff:127.0.0.1`, IPv4 loopback as an IPv6 socket names it.
fn is_mapped_loopback(address: IpAddr) -> bool {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

/// Why the sockets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListeningError {
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// The image has no `cat`, or `/proc` cannot be read.
    #[error("the container's sockets cannot be read: {0}")]
    NotRead(String),
}

/// The TCP sockets listening in `container` of `pod`, sorted by port.
///
/// # Errors
/// The exec was refused, or the image cannot print the socket tables.
pub async fn listening(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<Listener>, ListeningError> {
    let command = ["cat", "/proc/net/tcp", "/proc/net/tcp6"]
        .map(String::from)
        .to_vec();
    let output = exec::run(client, namespace, pod, container, command, b"").await?;
    // tcp6 is missing where IPv6 is off: what tcp holds still counts.
    if output.stdout.is_empty() {
        return Err(ListeningError::NotRead(match output.exit {
            Exit::NotRun(message) => message,
            Exit::Status(_) => output.stderr.trim().to_string(),
        }));
    }
    Ok(parse(&output.stdout))
}

/// The listening sockets in the text of `/proc/net/tcp` and `/proc/net/tcp6`
/// (header lines included, in any order), sorted by port, without repeats.
pub fn parse(tables: &str) -> Vec<Listener> {
    /// The state of a socket in `LISTEN`, as the kernel writes it.
    const LISTEN: &str = "0A";
    let mut listeners: Vec<Listener> = tables
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (address, port) = local.split_once(':')?;
            Some(Listener {
                address: address_from_hex(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
            })
        })
        .collect();
    listeners.sort_by_key(|l| (l.port, l.address));
    listeners.dedup();
    listeners
}

/// An address as `/proc/net/tcp*` writes it: the bytes of each 32-bit word
/// in the machine's order, as hex.
fn address_from_hex(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables as a little-endian machine writes them.
    const TABLES: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:2692 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 100 0 0 10 0
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_sockets_are_read_with_their_addresses() {
        if cfg!(target_endian = "big") {
            return;
        }
        let listeners = parse(TABLES);
        let shown: Vec<String> = listeners
            .iter()
            .map(|l| format!("{} {} {}", l.address, l.port, l.reachable()))
            .collect();
        assert_eq!(
            shown,
            [
                ":: 3000 true",
                "::1 5001 false",
                "127.0.0.1 8080 false",
                "0.0.0.0 9874 true"
            ]
        );
    }

    #[test]
    fn text_that_is_no_table_gives_no_listener() {
        assert!(parse("").is_empty());
        assert!(parse("cat: /proc/net/tcp6: No such file or directory\n").is_empty());
        assert!(parse("  0: XYZ:1F90 00000000:0000 0A").is_empty());
    }
}
