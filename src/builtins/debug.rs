//! `debug [on|off]`: show what the shell does — each API request and each
//! command's status and time; without an argument, toggle.

use std::io::Write;

use super::{Failure, Outcome, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
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
    writeln!(std::io::stderr().lock(), "debug is {state}")?;
    Ok(0)
}
