//! `jobs`: the shell's background jobs (port forwards) and their state.

use super::{Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 0, "jobs")?;
    let out = &mut *streams.out;
    for (number, description, state) in shell.jobs.list() {
        writeln!(out, "[{number}]  {description}  {state}")?;
    }
    Ok(0)
}
