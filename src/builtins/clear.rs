//! `clear [-x]`: clear the terminal, as ncurses' `clear` does.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::terminal;

/// Cursor home, then erase the screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";
/// Erase the scrollback too (xterm's extension, which `clear` sends).
const CLEAR_SCROLLBACK: &str = "\x1b[3J";

pub fn run(_shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let keep_scrollback = match args {
        [] => false,
        [flag] if flag == "-x" => true,
        [other, ..] => {
            return Err(Failure::Usage(format!(
                "`{other}` is not an option of clear; usage: clear [-x]"
            )));
        }
    };
    // A file or a pipe (a script's log) gets no escape sequences, nor does
    // a terminal that cannot move its cursor.
    if !terminal::can_redraw(&std::io::stdout()) {
        return Ok(0);
    }
    let scrollback = if keep_scrollback {
        ""
    } else {
        CLEAR_SCROLLBACK
    };
    write!(streams.out, "{CLEAR_SCREEN}{scrollback}")?;
    streams.out.flush()?;
    Ok(0)
}
