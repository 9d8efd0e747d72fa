//! `pwd`: print the working directory.

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 0, "pwd")?;
    let dir = std::env::current_dir().map_err(|e| {
        Failure::Failed(format!(
            "the working directory cannot be read: {e}; `cd` somewhere else"
        ))
    })?;
    writeln!(streams.out, "{}", dir.display())?;
    Ok(0)
}
