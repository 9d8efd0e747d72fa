//! `debug [on|off]`: show what the shell does — each API request and each
//! command's status and time; without an argument, toggle.

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "debug [on|off]")?;
    shell.debug = match args.first().map(String::as_str) {
        None => !shell.debug,
        Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(Failure::Usage(format!("{other:?}: usage: debug [on|off]")));
        }
    };
    shell.requests.set_debug(shell.debug);
    let state = if shell.debug { "on" } else { "off" };
    writeln!(streams.err, "debug is {state}")?;
    Ok(0)
}
