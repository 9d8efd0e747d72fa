//! `watch [NAME…]`: hot-reload background dprocs launched in this session;
//! without a name, list the watched ones.

use std::io::Write;

use super::{Failure, Outcome};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    if args.is_empty() {
        let mut out = std::io::stdout().lock();
        for name in shell.reloads.names() {
            writeln!(out, "{name}")?;
        }
        return Ok(0);
    }
    for name in args {
        shell.watch(name).map_err(Failure::Failed)?;
        writeln!(
            std::io::stdout().lock(),
            "watching {name}: saving its files reloads it"
        )?;
    }
    Ok(0)
}
