//! `watch [NAME…]`: hot-reload background dprocs launched in this session;
//! without a name, list the watched ones.

use super::{Outcome, Streams};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        let out = &mut *streams.out;
        for name in shell.reloads.names() {
            writeln!(out, "{name}")?;
        }
        return Ok(0);
    }
    for name in args {
        shell.watch(name)?;
        writeln!(streams.out, "watching {name}: saving its files reloads it")?;
    }
    Ok(0)
}
