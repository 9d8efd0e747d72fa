//! `jobs`: the shell's background jobs (port forwards) and their state.

use std::io::Write;

use super::{Outcome, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    at_most(args, 0, "jobs")?;
    let mut out = std::io::stdout().lock();
    for (number, description, state) in shell.jobs.list() {
        writeln!(out, "[{number}]  {description}  {state}")?;
    }
    Ok(0)
}
