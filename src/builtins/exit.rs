//! `exit [N]`: leave kubesh with status N (default: the last command's).

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], _streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "exit [N]")?;
    let status = match args.first() {
        None => shell.last_status,
        Some(text) => text
            .parse::<i64>()
            .map(|n| (n & 0xff) as i32)
            .map_err(|_| Failure::Usage(format!("{text:?} is not a number; usage: exit [N]")))?,
    };
    shell.exit_requested = Some(status);
    Ok(status)
}
