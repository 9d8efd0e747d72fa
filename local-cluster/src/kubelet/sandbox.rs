//! Pod sandboxes made with the kernel's namespaces by the kubelet itself,
//! with no outside program.
//!
//! - The **node**: one user namespace (uid 0 inside is the user that runs
//!   the cluster) and one network namespace, made when the kubelet starts.
//! - A **pod**: network, UTS and IPC namespaces inside the node's user
//!   namespace, shared by all its containers, kept alive by a small holder
//!   process (the pod's "pause" process).
//! - A **container run**: its own mount namespace (a view of this machine's
//!   file system with the pod's volumes at their paths, see
//!   [`super::mount_view`]) and its own PID namespace, in which the program
//!   is PID 1: when it ends, the kernel ends every process it left behind,
//!   `setsid` or not.
//!
//! Every holder doubles as a socket factory: the server asks it for a TCP,
//! UDP or netlink socket and gets one made inside the namespace. A socket
//! keeps the namespace it was made in, so the server reaches a pod, or
//! configures its network, without its own traffic ever leaving the
//! cluster's namespaces and without joining a namespace itself.
//!
//! Code between `fork` and `exec` (or `_exit`) makes system calls only: no
//! allocation, no locks.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use super::mount_view::MountPlan;

/// What a socket made by a holder is for.
#[derive(Debug, Clone, Copy)]
pub enum SocketKind {
    Tcp,
    Udp,
    Netlink,
}

impl SocketKind {
    fn byte(self) -> u8 {
        match self {
            SocketKind::Tcp => b't',
            SocketKind::Udp => b'u',
            SocketKind::Netlink => b'n',
        }
    }
}

/// A process that keeps namespaces alive and makes sockets inside them.
pub struct Holder {
    pid: libc::pid_t,
    channel: Mutex<OwnedFd>,
    /// The holder's namespaces, opened from `/proc/PID/ns`.
    pub user: OwnedFd,
    pub net: OwnedFd,
    pub uts: OwnedFd,
    pub ipc: OwnedFd,
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// How to make a holder.
pub struct HolderSpec<'a> {
    /// Join this user namespace (a pod joins the node's).
    pub join_user: Option<&'a OwnedFd>,
    /// Make a new user namespace (the node).
    pub new_user: bool,
    /// Hostname of the new UTS namespace.
    pub hostname: &'a str,
    /// Turn on IPv4 forwarding in the new network namespace (the node).
    pub forward: bool,
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Writes one byte and an errno to the channel, then exits (holder child).
fn child_fail(fd: RawFd, stage: u8) -> ! {
    let code = errno().to_ne_bytes();
    let msg = [b'e', stage, code[0], code[1], code[2], code[3]];
    // SAFETY: plain write(2) and _exit(2).
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(1)
    }
}

/// The holder child: makes its namespaces, then serves socket requests
/// until the server closes the channel. Never returns.
///
/// # Safety
/// Called in a freshly forked child; makes system calls only.
unsafe fn holder_main(
    parent: libc::pid_t,
    chan: RawFd,
    join_user: RawFd,
    new_user: bool,
    hostname: &CString,
    forward: bool,
) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        // A session of its own: a terminal's Ctrl-C, sent to the process
        // group of the shell the cluster runs in, does not reach it.
        libc::setsid();
        // Keep only the channel (3) and the user namespace (4): first out
        // of the way, so neither overwrites the other.
        let high_chan = libc::fcntl(chan, libc::F_DUPFD_CLOEXEC, 1000);
        let high_user = if join_user >= 0 {
            libc::fcntl(join_user, libc::F_DUPFD_CLOEXEC, 1000)
        } else {
            -1
        };
        if high_chan < 0 || libc::dup2(high_chan, 3) < 0 {
            child_fail(chan, b'd');
        }
        let mut user = -1;
        if high_user >= 0 {
            if libc::dup2(high_user, 4) < 0 {
                child_fail(3, b'd');
            }
            user = 4;
        }
        let keep_from = if user >= 0 { 5 } else { 4 };
        libc::close_range(keep_from, u32::MAX, 0);
        for fd in 0..3 {
            libc::close(fd);
        }
        let chan = 3;
        let mut byte = [0u8; 1];
        if new_user {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                child_fail(chan, b'U');
            }
            // The server writes our uid and gid maps, then says go.
            byte[0] = b'u';
            libc::write(chan, byte.as_ptr().cast(), 1);
            if libc::read(chan, byte.as_mut_ptr().cast(), 1) != 1 || byte[0] != b'm' {
                libc::_exit(1);
            }
        }
        if user >= 0 && libc::setns(user, libc::CLONE_NEWUSER) != 0 {
            child_fail(chan, b'J');
        }
        if user >= 0 {
            libc::close(user);
        }
        if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) != 0 {
            child_fail(chan, b'N');
        }
        let name = hostname.as_bytes();
        if libc::sethostname(name.as_ptr().cast(), name.len()) != 0 {
            child_fail(chan, b'H');
        }
        if forward {
            // /proc/sys/net is the network namespace of whoever opens it.
            let path = c"/proc/sys/net/ipv4/ip_forward";
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"1".as_ptr().cast(), 1) != 1 {
                child_fail(chan, b'F');
            }
            libc::close(fd);
        }
        byte[0] = b'r';
        libc::write(chan, byte.as_ptr().cast(), 1);
        loop {
            if libc::read(chan, byte.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(0);
            }
            let fd = match byte[0] {
                b't' => libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
                b'u' => libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0),
                b'n' => libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                ),
                _ => -1,
            };
            if fd < 0 {
                let code = errno().to_ne_bytes();
                let msg = [b'e', byte[0], code[0], code[1], code[2], code[3]];
                libc::write(chan, msg.as_ptr().cast(), msg.len());
                continue;
            }
            send_fd(chan, fd);
            libc::close(fd);
        }
    }
}

/// Sends `fd` over a unix socket with one data byte `k` (no allocation).
///
/// # Safety
/// Plain sendmsg(2) on caller-owned descriptors.
unsafe fn send_fd(chan: RawFd, fd: RawFd) {
    unsafe {
        let mut data = [b'k'];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // Room for one descriptor, aligned for a cmsghdr.
        let mut space = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(chan, &msg, 0);
    }
}

fn stage_name(stage: u8) -> &'static str {
    match stage {
        b'U' => "making a user namespace",
        b'J' => "joining the node's user namespace",
        b'N' => "making network, UTS and IPC namespaces",
        b'H' => "setting the hostname",
        b'F' => "turning on forwarding in the node's network namespace",
        b't' => "making a TCP socket",
        b'u' => "making a UDP socket",
        b'n' => "making a netlink socket",
        _ => "preparing the sandbox",
    }
}

/// Waits until `fd` has something to read, at most until `deadline`.
fn wait_readable(fd: RawFd, deadline: std::time::Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one descriptor we own.
        let ready =
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        match ready {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the sandbox process did not answer within 5 s",
                ));
            }
            ready if ready > 0 => return Ok(()),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes, waiting at most `limit`.
fn read_exact_timeout(fd: RawFd, buf: &mut [u8], limit: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    let mut got = 0;
    while got < buf.len() {
        wait_readable(fd, deadline)?;
        // SAFETY: read(2) into the unfilled part of `buf`.
        let count = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the sandbox process ended while starting",
            ));
        }
        got += count as usize;
    }
    Ok(())
}

/// Turns a holder's `e STAGE ERRNO` answer into an error.
fn holder_error(chan: RawFd, stage: u8) -> io::Error {
    let mut errno_bytes = [0u8; 4];
    match read_exact_timeout(chan, &mut errno_bytes, Duration::from_secs(5)) {
        Ok(()) => {
            let os = io::Error::from_raw_os_error(i32::from_ne_bytes(errno_bytes));
            io::Error::new(os.kind(), format!("{}: {os}", stage_name(stage)))
        }
        Err(err) => err,
    }
}

fn open_ns(pid: libc::pid_t, name: &str) -> io::Result<OwnedFd> {
    let file = std::fs::File::open(format!("/proc/{pid}/ns/{name}"))?;
    Ok(OwnedFd::from(file))
}

/// The uid and gid maps of the node's user namespace: as root, every id
/// maps to itself; otherwise the user is root inside, and no one else exists.
fn write_id_maps(pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: getters without side effects.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        std::fs::write(format!("/proc/{pid}/uid_map"), "0 0 4294967295\n")?;
        std::fs::write(format!("/proc/{pid}/gid_map"), "0 0 4294967295\n")?;
    } else {
        std::fs::write(format!("/proc/{pid}/uid_map"), format!("0 {uid} 1\n"))?;
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny\n")?;
        std::fs::write(format!("/proc/{pid}/gid_map"), format!("0 {gid} 1\n"))?;
    }
    Ok(())
}

impl Holder {
    /// Forks a holder and waits until its namespaces exist.
    ///
    /// # Errors
    /// What the kernel refused, and at which step.
    pub fn spawn(spec: &HolderSpec<'_>) -> io::Result<Holder> {
        let hostname = CString::new(spec.hostname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "hostname with a NUL"))?;
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )?;
        let join_user = spec.join_user.map_or(-1, AsRawFd::as_raw_fd);
        let theirs_fd = theirs.as_raw_fd();
        // SAFETY: getpid has no side effects.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child runs `holder_main`, which makes system calls
        // only and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                holder_main(
                    parent,
                    theirs_fd,
                    join_user,
                    spec.new_user,
                    &hostname,
                    spec.forward,
                )
            }
        }
        drop(theirs);
        // From here on, dropping `guard` kills and reaps the child.
        let mut guard = PidGuard(Some(pid));
        let chan = ours.as_raw_fd();
        let mut byte = [0u8; 1];
        read_exact_timeout(chan, &mut byte, Duration::from_secs(5))?;
        if byte[0] == b'u' {
            write_id_maps(pid).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("writing the user namespace's id maps: {e}"),
                )
            })?;
            nix::unistd::write(&ours, b"m")?;
            read_exact_timeout(chan, &mut byte, Duration::from_secs(5))?;
        }
        if byte[0] == b'e' {
            read_exact_timeout(chan, &mut byte, Duration::from_secs(5))?;
            return Err(holder_error(chan, byte[0]));
        }
        if byte[0] != b'r' {
            return Err(io::Error::other("the sandbox process answered nonsense"));
        }
        let holder = Holder {
            pid,
            user: open_ns(pid, "user")?,
            net: open_ns(pid, "net")?,
            uts: open_ns(pid, "uts")?,
            ipc: open_ns(pid, "ipc")?,
            channel: Mutex::new(ours),
        };
        guard.0 = None;
        Ok(holder)
    }

    /// A new socket made inside the holder's network namespace.
    ///
    /// # Errors
    /// The holder is gone, or the kernel refused the socket.
    pub fn socket(&self, kind: SocketKind) -> io::Result<OwnedFd> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let chan = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let fd = chan.as_raw_fd();
        nix::unistd::write(&*chan, &[kind.byte()])?;
        wait_readable(fd, std::time::Instant::now() + Duration::from_secs(5))?;
        let mut data = [0u8; 1];
        let mut iov = [io::IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut got = None;
        for message in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = message {
                for raw in fds {
                    // SAFETY: a descriptor the kernel just gave us.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    if got.is_none() {
                        got = Some(owned);
                    }
                }
            }
        }
        if msg.bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the pod's sandbox process is gone",
            ));
        }
        match (data[0], got) {
            (b'k', Some(owned)) => Ok(owned),
            (b'e', _) => {
                let mut stage = [0u8; 1];
                read_exact_timeout(fd, &mut stage, Duration::from_secs(5))?;
                Err(holder_error(fd, stage[0]))
            }
            _ => Err(io::Error::other(
                "the pod's sandbox process answered nonsense",
            )),
        }
    }

    /// A TCP connection to `addr` made from inside the holder's network
    /// namespace.
    ///
    /// # Errors
    /// As `connect(2)`.
    pub async fn connect(&self, addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let fd = self.socket(SocketKind::Tcp)?;
        let std_stream = std::net::TcpStream::from(fd);
        std_stream.set_nonblocking(true)?;
        tokio::net::TcpSocket::from_std_stream(std_stream)
            .connect(addr)
            .await
    }

    /// A TCP listener on `addr` inside the holder's network namespace.
    ///
    /// # Errors
    /// As `bind(2)` and `listen(2)`.
    pub fn listen(&self, addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpListener> {
        let fd = self.socket(SocketKind::Tcp)?;
        let std_stream = std::net::TcpStream::from(fd);
        std_stream.set_nonblocking(true)?;
        let socket = tokio::net::TcpSocket::from_std_stream(std_stream);
        socket.set_reuseaddr(true)?;
        // A Service's address and the egress listeners on every address
        // share ports; the most specific listener takes a connection.
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    }

    /// A UDP socket bound to `addr` inside the holder's network namespace.
    ///
    /// # Errors
    /// As `bind(2)`.
    pub fn bind_udp(&self, addr: std::net::SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        let fd = self.socket(SocketKind::Udp)?;
        let std_socket = std::net::UdpSocket::from(fd);
        let sock = nix::sys::socket::SockaddrIn::from(match addr {
            std::net::SocketAddr::V4(v4) => v4,
            std::net::SocketAddr::V6(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
            }
        });
        nix::sys::socket::bind(std_socket.as_raw_fd(), &sock)?;
        std_socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(std_socket)
    }
}

/// Kills and reaps a child unless disarmed.
struct PidGuard(Option<libc::pid_t>);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// The namespaces a process joins or makes when it starts in a pod.
pub struct Join {
    pub user: RawFd,
    pub net: RawFd,
    pub uts: RawFd,
    pub ipc: RawFd,
    pub how: JoinHow,
    /// Where the program starts (inside its mount view).
    pub workdir: CString,
    /// The write end of a pipe that gets the program's pid (4 bytes).
    pub report: RawFd,
    /// The user and group the program runs as (`runAsUser`, `runAsGroup`).
    pub ids: Option<(u32, u32)>,
    /// The capabilities the program may have, one bit per number.
    pub capabilities: u64,
}

/// A container gets fresh mount and PID namespaces; an exec joins a
/// running container's.
pub enum JoinHow {
    Container(MountPlan),
    Exec { mnt: RawFd, pid: RawFd },
}

/// Runs in the child `std::process::Command` forks: joins or makes the
/// namespaces, then forks the program's process. The program's process
/// returns (and goes on to `exec`); this process stays as its parent,
/// passes signals on to it and exits as it exits, so the kubelet sees the
/// program's exit status. Never returns in this process.
///
/// # Safety
/// Called between fork and exec: system calls only.
pub unsafe fn enter(join: &Join) -> io::Result<()> {
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::setns(join.user, libc::CLONE_NEWUSER) != 0 {
            return Err(io::Error::last_os_error());
        }
        for (fd, flag) in [
            (join.net, libc::CLONE_NEWNET),
            (join.uts, libc::CLONE_NEWUTS),
            (join.ipc, libc::CLONE_NEWIPC),
        ] {
            if libc::setns(fd, flag) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        match &join.how {
            JoinHow::Container(plan) => {
                if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID) != 0 {
                    return Err(io::Error::last_os_error());
                }
                plan.apply()?;
            }
            JoinHow::Exec { mnt, pid } => {
                if libc::setns(*pid, libc::CLONE_NEWPID) != 0
                    || libc::setns(*mnt, libc::CLONE_NEWNS) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        let child = libc::fork();
        if child < 0 {
            return Err(io::Error::last_os_error());
        }
        if child == 0 {
            // The program leads its own session (a terminal can become its
            // controlling one) and dies with the process that waits for it.
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let JoinHow::Container(plan) = &join.how {
                plan.mount_proc();
            }
            if libc::chdir(join.workdir.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            for cap in 0..64 {
                if join.capabilities & (1 << cap) == 0 {
                    // Numbers the kernel does not know end the list.
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) != 0 {
                        break;
                    }
                }
            }
            if let Some((uid, gid)) = join.ids {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // A change of user clears the parent-death signal: set it
                // again. (Its parent is outside its PID namespace, so
                // getppid cannot tell whether it went meanwhile; it only
                // goes by SIGKILL, when the server does.)
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            return Ok(());
        }
        let pid = child.to_ne_bytes();
        libc::write(join.report, pid.as_ptr().cast(), pid.len());
        reaper(child, None)
    }
}

/// The signal that ends a program started without a sandbox together with
/// every process it started: the kubelet sends it after the grace period,
/// and the kernel sends it when the server dies.
pub fn end_all_signal() -> i32 {
    libc::SIGRTMAX()
}

/// Without a sandbox (no namespaces to end a program's processes with
/// it): the process `std::process::Command` forks becomes a subreaper, so
/// whatever the program leaves behind, `setsid` or not, becomes its child,
/// forks the program, passes signals on to it, and when the program ends
/// (or `end_all`, the signal from [`end_all_signal`], arrives) kills every
/// process left before it exits as the program did. Never returns in this
/// process.
///
/// # Safety
/// Called between fork and exec: system calls only.
pub unsafe fn enter_direct(end_all: i32) -> io::Result<()> {
    unsafe {
        let parent = libc::getppid();
        libc::setsid();
        libc::prctl(libc::PR_SET_PDEATHSIG, end_all);
        if libc::getppid() != parent {
            libc::_exit(137);
        }
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        let child = libc::fork();
        if child < 0 {
            return Err(io::Error::last_os_error());
        }
        if child == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            return Ok(());
        }
        reaper(child, Some(end_all))
    }
}

/// Kills every child of the calling process, and the children those leave
/// to it (a subreaper), until none is left.
///
/// # Safety
/// System calls only.
unsafe fn kill_descendants() {
    unsafe {
        let mut buf = [0u8; 4096];
        for _ in 0..1000 {
            let fd = libc::open(
                c"/proc/thread-self/children".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            let len = if fd >= 0 {
                let count = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                libc::close(fd);
                count.max(0) as usize
            } else {
                0
            };
            let mut pid: libc::pid_t = 0;
            for &byte in &buf[..len] {
                if byte.is_ascii_digit() {
                    pid = pid * 10 + libc::pid_t::from(byte - b'0');
                } else if pid > 0 {
                    libc::kill(pid, libc::SIGKILL);
                    pid = 0;
                }
            }
            if pid > 0 {
                libc::kill(pid, libc::SIGKILL);
            }
            // Wait for one to go (each may leave new children to us), then
            // take every other that has gone.
            let mut status = 0;
            if libc::waitpid(-1, &mut status, 0) < 0 {
                return;
            }
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
        }
    }
}

/// The parent of a program in a pod: passes every signal on to it and
/// exits as it exits (with its status, or by its signal). With `end_all`
/// (no sandbox), it kills every process left before it exits, and that
/// signal ends the program and all of them at once.
///
/// # Safety
/// Called between fork and exec: system calls only.
unsafe fn reaper(child: libc::pid_t, end_all: Option<i32>) -> ! {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        // Nothing here is ours any more: stdio, the spawn's error pipe and
        // the report pipe go, so readers see the ends they expect.
        libc::close_range(0, u32::MAX, 0);
        loop {
            let sig = libc::sigwaitinfo(&all, std::ptr::null_mut());
            if sig < 0 {
                continue;
            }
            if Some(sig) == end_all {
                kill_descendants();
                libc::_exit(137);
            }
            if sig != libc::SIGCHLD {
                libc::kill(child, sig);
                continue;
            }
            let mut status = 0;
            loop {
                let reaped = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if reaped == child {
                    if end_all.is_some() {
                        kill_descendants();
                    }
                    if libc::WIFEXITED(status) {
                        libc::_exit(libc::WEXITSTATUS(status));
                    }
                    if libc::WIFSIGNALED(status) {
                        let term_signal = libc::WTERMSIG(status);
                        libc::signal(term_signal, libc::SIG_DFL);
                        let mut one: libc::sigset_t = std::mem::zeroed();
                        libc::sigaddset(&mut one, term_signal);
                        libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                        libc::kill(libc::getpid(), term_signal);
                        libc::_exit(128 + term_signal);
                    }
                }
                if reaped <= 0 {
                    break;
                }
            }
        }
    }
}
