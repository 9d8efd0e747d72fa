//! What the terminal kubesh writes to can do: redraw a line in place
//! (a terminal whose `TERM` is not `dumb`), show colours (and `NO_COLOR`
//! is not set), and how wide it is; and reading one line from stdin
//! without taking more of it.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

/// `TERM` values of terminals that cannot move the cursor or clear a line
/// (the line editor's list too).
const CANNOT_REDRAW: [&str; 3] = ["dumb", "cons25", "emacs"];

/// Whether a terminal of this `TERM` can move the cursor and clear lines.
pub fn term_can_redraw(term: Option<&str>) -> bool {
    !term.is_some_and(|term| CANNOT_REDRAW.contains(&term))
}

/// Whether `stream` is a terminal that can redraw a line in place (a
/// spinner): a terminal, and `TERM` says it can.
pub fn can_redraw(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && term_can_redraw(std::env::var("TERM").ok().as_deref())
}

/// Whether colours may be written to `stream`: a terminal that can redraw,
/// and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn colors(stream: &impl IsTerminal) -> bool {
    can_redraw(stream) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The width in columns of the terminal `stream` is (80 when it does not
/// say); `None` when it is not a terminal.
pub fn columns(stream: &impl AsRawFd) -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the one passed, which
    // lives for the call.
    let asked = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    match (asked, size.ws_col) {
        (0, 0) => Some(80),
        (0, columns) => Some(usize::from(columns)),
        _ => None,
    }
}

/// Why no line was read.
#[derive(Debug, thiserror::Error)]
pub enum NoLine {
    #[error("end of input")]
    End,
    #[error("interrupted")]
    Stopped,
    #[error("cannot read standard input: {0}")]
    Io(#[source] std::io::Error),
}

/// Reads one line from stdin (without its line break) one byte at a time,
/// so that what follows it stays for whoever reads next; gives up when
/// `stop` says so (checked every 50 ms: Ctrl-C). A last line without a
/// line break counts.
pub fn read_line(stop: impl Fn() -> bool) -> Result<Vec<u8>, NoLine> {
    let mut line = Vec::new();
    loop {
        if stop() {
            return Err(NoLine::Stopped);
        }
        let mut poll = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, 50) };
        if ready <= 0 {
            continue; // a timeout, or EINTR (Ctrl-C): check `stop` again
        }
        if poll.revents & libc::POLLNVAL != 0 {
            return Err(NoLine::End);
        }
        let mut byte = 0u8;
        // SAFETY: reads one byte into `byte`, which lives for the call.
        let read = unsafe { libc::read(libc::STDIN_FILENO, (&raw mut byte).cast(), 1) };
        match read {
            0 if line.is_empty() => return Err(NoLine::End),
            0 => return Ok(line),
            1 if byte == b'\n' => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            1 => line.push(byte),
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(NoLine::Io(error));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumb_terminals_cannot_redraw_others_can() {
        assert!(!term_can_redraw(Some("dumb")));
        assert!(!term_can_redraw(Some("emacs")));
        assert!(term_can_redraw(Some("xterm")));
        assert!(term_can_redraw(Some("xterm-256color")));
        assert!(term_can_redraw(None));
    }
}
