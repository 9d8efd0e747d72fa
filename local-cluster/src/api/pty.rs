//! Pseudo-terminals for `tty: true` streams.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use tokio::process::Command;

pub struct Pty {
    master: OwnedFd,
    slave: Option<OwnedFd>,
}

impl Pty {
    pub fn open() -> io::Result<Pty> {
        let (mut master_fd, mut slave_fd) = (-1, -1);
        // SAFETY: openpty writes two descriptors; the other arguments may be null.
        let result = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe {
            (
                OwnedFd::from_raw_fd(master_fd),
                OwnedFd::from_raw_fd(slave_fd),
            )
        };
        Ok(Pty {
            master,
            slave: Some(slave),
        })
    }

    /// Makes the terminal the command's stdin, stdout, stderr and
    /// controlling terminal. The command must start a new session (every
    /// command the kubelet starts does).
    pub fn attach(&mut self, cmd: &mut Command) -> io::Result<()> {
        let slave = self
            .slave
            .take()
            .ok_or_else(|| io::Error::other("terminal already attached"))?;
        cmd.stdin(Stdio::from(slave.try_clone()?));
        cmd.stdout(Stdio::from(slave.try_clone()?));
        cmd.stderr(Stdio::from(slave));
        // SAFETY: ioctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        Ok(())
    }

    /// A reader and a writer on the terminal's master side.
    pub fn streams(&self) -> io::Result<(tokio::fs::File, tokio::fs::File)> {
        let reader = File::from(self.master.try_clone()?);
        let writer = File::from(self.master.try_clone()?);
        Ok((
            tokio::fs::File::from_std(reader),
            tokio::fs::File::from_std(writer),
        ))
    }

    pub fn resize(&self, width: u16, height: u16) {
        let ws = libc::winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize.
        unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}
