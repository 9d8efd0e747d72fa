//! The cluster's network, which exists only inside namespaces the cluster
//! made. The node's network namespace holds a route to every pod (a veth
//! pair each, `eth0` in the pod), the Service range as local addresses
//! (the cluster's Service listeners live there), and refuses everything
//! else in the cluster's ranges at once. This machine's own network
//! namespace gets no address, route or packet for any of it.
//!
//! - Pods: `10.244.0.0/16`, one address each; the node is `10.244.0.1`.
//! - Services: `10.96.0.0/12`.
//!
//! Configuration goes over netlink sockets made inside the namespaces by
//! their holder processes ([`super::sandbox::Holder`]).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::Mutex;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::sandbox::{Holder, SocketKind};

/// The pod range.
pub const POD_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 244, 0, 0), 16);
/// The node's own address, every pod's gateway.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The Service range.
pub const SERVICE_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// The cluster DNS address every pod's `/etc/resolv.conf` names (served
/// by `crate::egress`).
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

/// The `/etc/resolv.conf` of a pod in namespace `ns`, as a real cluster
/// writes it.
pub fn resolv_conf(ns: &str) -> String {
    format!(
        "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {DNS_IP}\noptions ndots:5\n"
    )
}

/// Whether `ip` is in `net`.
pub fn contains(net: (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(net.1)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net.0) & mask
}

/// A netlink route socket made inside a namespace.
struct Netlink {
    socket: netlink_sys::Socket,
    seq: u32,
}

fn nl_error(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl Netlink {
    fn open(holder: &Holder) -> io::Result<Netlink> {
        use std::os::fd::FromRawFd;
        let fd = holder.socket(SocketKind::Netlink)?;
        // SAFETY: a netlink socket we own, handed over whole.
        let socket = unsafe { netlink_sys::Socket::from_raw_fd(fd.into_raw_fd()) };
        // Answers that never come must not hang the kubelet.
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: setsockopt(2) with a timeval of the right size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends one request and returns the answers up to its ack.
    fn call(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| nl_error(what, e))?;
        let mut answers = Vec::new();
        loop {
            let mut rbuf = Vec::with_capacity(64 * 1024);
            let received = self
                .socket
                .recv(&mut rbuf, 0)
                .map_err(|e| nl_error(what, e))?;
            let mut off = 0;
            while off < received {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[off..received])
                    .map_err(|e| nl_error(what, e))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == self.seq {
                    match msg.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(answers),
                                Some(code) => Err(io::Error::new(
                                    io::Error::from_raw_os_error(-code.get()).kind(),
                                    format!(
                                        "{what}: {}",
                                        io::Error::from_raw_os_error(-code.get())
                                    ),
                                )),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    /// The index of the link called `name`.
    fn index(&mut self, name: &str) -> io::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let answers = self.call(
            &format!("looking up {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        )?;
        answers
            .into_iter()
            .find_map(|message| match message {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::other(format!("no link {name}")))
    }

    fn up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.call("bringing a link up", RouteNetlinkMessage::SetLink(msg), 0)
            .map(drop)
    }

    fn address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(ip)));
        self.call(
            &format!("adding the address {ip}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        dest: (Ipv4Addr, u8),
        kind: RouteType,
        table: u8,
        scope: RouteScope,
        oif: Option<u32>,
        gateway: Option<Ipv4Addr>,
    ) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = dest.1;
        msg.header.table = table;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = scope;
        msg.header.kind = kind;
        if dest.1 > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(dest.0)));
        }
        if let Some(i) = oif {
            msg.attributes.push(RouteAttribute::Oif(i));
        }
        if let Some(gw) = gateway {
            msg.header.flags = RouteFlags::Onlink;
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        self.call(
            &format!("adding a route to {}/{}", dest.0, dest.1),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    fn neighbour(&mut self, index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.ifindex = index;
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.call(
            &format!("adding the neighbour {ip}"),
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE,
        )
        .map(drop)
    }
}

const TABLE_MAIN: u8 = 254;
const TABLE_LOCAL: u8 = 255;

/// The node's network namespace, configured: `lo` up with the node's
/// address, the Service range local, the rest of the pod range refused.
///
/// # Errors
/// The netlink request the kernel refused.
pub fn configure_node(node: &Holder) -> io::Result<()> {
    let mut nl = Netlink::open(node)?;
    let lo = nl.index("lo")?;
    nl.up(lo)?;
    nl.address(lo, NODE_IP, 32)?;
    nl.route(
        SERVICE_NET,
        RouteType::Local,
        TABLE_LOCAL,
        RouteScope::Host,
        Some(lo),
        None,
    )?;
    nl.route(
        POD_NET,
        RouteType::Unreachable,
        TABLE_MAIN,
        RouteScope::Universe,
        None,
        None,
    )?;
    // Everything else is local here, so pods' outbound connections reach
    // the egress relay (see `crate::egress`); pod routes are more specific.
    nl.route(
        (Ipv4Addr::UNSPECIFIED, 0),
        RouteType::Local,
        TABLE_MAIN,
        RouteScope::Host,
        Some(lo),
        None,
    )?;
    Ok(())
}

fn mac(side: u8, ip: Ipv4Addr) -> [u8; 6] {
    let octets = ip.octets();
    // Locally administered, unicast.
    [0x02, 0x6b, side, octets[1], octets[2], octets[3]]
}

/// Wires a pod's network namespace to the node: a veth pair (`eth0` in
/// the pod), the pod's address, its default route through the node, and
/// static neighbours on both sides.
///
/// # Errors
/// The netlink request the kernel refused.
pub fn attach_pod(node: &Holder, pod: &Holder, ip: Ipv4Addr) -> io::Result<()> {
    let octets = ip.octets();
    let host_side = format!("kp{:02x}{:02x}{:02x}", octets[1], octets[2], octets[3]);
    let node_mac = mac(0x6e, ip);
    let pod_mac = mac(0x70, ip);
    let mut nl = Netlink::open(node)?;
    // Both ends come up once both exist (a veth end cannot come up
    // before its peer is linked).
    let mut peer = LinkMessage::default();
    peer.attributes.push(LinkAttribute::IfName("eth0".into()));
    peer.attributes
        .push(LinkAttribute::Address(pod_mac.to_vec()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(pod.net.as_raw_fd()));
    let mut link = LinkMessage::default();
    link.attributes
        .push(LinkAttribute::IfName(host_side.clone()));
    link.attributes
        .push(LinkAttribute::Address(node_mac.to_vec()));
    link.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    nl.call(
        &format!("making the veth pair {host_side}"),
        RouteNetlinkMessage::NewLink(link),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    let node_if = nl.index(&host_side)?;
    nl.up(node_if)?;
    nl.route(
        (ip, 32),
        RouteType::Unicast,
        TABLE_MAIN,
        RouteScope::Link,
        Some(node_if),
        None,
    )?;
    nl.neighbour(node_if, ip, pod_mac)?;

    let mut nl = Netlink::open(pod)?;
    let lo = nl.index("lo")?;
    nl.up(lo)?;
    let eth0 = nl.index("eth0")?;
    nl.up(eth0)?;
    nl.address(eth0, ip, 32)?;
    nl.neighbour(eth0, NODE_IP, node_mac)?;
    nl.route(
        (Ipv4Addr::UNSPECIFIED, 0),
        RouteType::Unicast,
        TABLE_MAIN,
        RouteScope::Universe,
        Some(eth0),
        Some(NODE_IP),
    )?;
    Ok(())
}

/// Hands out pod addresses, round-robin, so an address is not reused
/// while the kernel may still be removing its last pod's network.
#[derive(Default)]
pub struct Addresses {
    state: Mutex<(HashSet<Ipv4Addr>, u32)>,
    /// Addresses pods had before a restart of the cluster, kept for them.
    reserved: Mutex<HashSet<Ipv4Addr>>,
}

impl Addresses {
    /// A free pod address, if any is left.
    pub fn take(&self) -> Option<Ipv4Addr> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (used, next) = &mut *state;
        let reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let base = u32::from(POD_NET.0);
        let count = 0xfffc;
        for step in 0..count {
            let ip = Ipv4Addr::from(base + 2 + (*next + step) % count);
            if !used.contains(&ip) && !reserved.contains(&ip) {
                used.insert(ip);
                *next = (*next + step + 1) % count;
                return Some(ip);
            }
        }
        None
    }

    /// Keeps `ip` for the pod that had it before a restart.
    pub fn reserve(&self, ip: Ipv4Addr) {
        if contains(POD_NET, ip) {
            self.reserved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ip);
        }
    }

    /// `ip` for a pod that had it before a restart, if no pod has it now.
    pub fn claim(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
        let free = contains(POD_NET, ip)
            && u32::from(ip) >= u32::from(POD_NET.0) + 2
            && state.0.insert(ip);
        free.then_some(ip)
    }

    pub fn give_back(&self, ip: Ipv4Addr) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_their_addresses_only() {
        assert!(contains(POD_NET, Ipv4Addr::new(10, 244, 3, 4)));
        assert!(!contains(POD_NET, Ipv4Addr::new(10, 245, 0, 1)));
        assert!(contains(SERVICE_NET, Ipv4Addr::new(10, 111, 255, 1)));
        assert!(!contains(SERVICE_NET, Ipv4Addr::new(10, 112, 0, 1)));
    }

    #[test]
    fn addresses_are_handed_out_once() {
        let addresses = Addresses::default();
        let first = addresses.take().unwrap();
        assert_eq!(first, Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(addresses.take().unwrap(), Ipv4Addr::new(10, 244, 0, 3));
        addresses.give_back(first);
        assert_eq!(addresses.take().unwrap(), Ipv4Addr::new(10, 244, 0, 4));
    }
}
