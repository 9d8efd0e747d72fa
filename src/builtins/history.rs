//! `history [N]`: the lines typed at the prompt, numbered, the last N only
//! when N is given.

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "history [N]")?;
    let count = match args.first() {
        None => shell.history.len(),
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Failure::Usage(format!("{n:?} is not a count; usage: history [N]")))?,
    };
    let start = shell.history.len().saturating_sub(count);
    let out = &mut *streams.out;
    for (index, line) in shell.history.iter().enumerate().skip(start) {
        writeln!(out, "{:>5}  {line}", index + 1)?;
    }
    Ok(0)
}
