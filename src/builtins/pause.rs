//! `pause [MESSAGE…]`: wait for Enter, e.g. while a demo's audience reads.

use std::io::IsTerminal;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::status::STATUS_INTERRUPTED;
use crate::terminal::{self, NoLine};

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let message = match args {
        [] => "Press Enter to go on".to_string(),
        words => words.join(" "),
    };
    streams.err.write_all(format!("{message} ").as_bytes())?;
    streams.err.flush()?;
    // Nobody to wait for: a script whose stdin is a file or a pipe goes on.
    if shell.stdin_is_script || !std::io::stdin().is_terminal() {
        streams.err.write_all(b"\n")?;
        return Ok(0);
    }
    let interrupt = shell.interrupt.clone();
    match terminal::read_line(|| interrupt.is_set()) {
        Ok(_) => Ok(0),
        Err(NoLine::End) => {
            streams.err.write_all(b"\n")?;
            Ok(0)
        }
        Err(NoLine::Stopped) => Ok(STATUS_INTERRUPTED),
        Err(NoLine::Io(error)) => Err(Failure::Failed(error.to_string())),
    }
}
