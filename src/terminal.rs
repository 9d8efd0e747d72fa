//! What the terminal kubesh writes to can do: redraw a line in place
//! (a terminal whose `TERM` is not `dumb`), show colours (and `NO_COLOR`
//! is not set), and how wide it is.

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
