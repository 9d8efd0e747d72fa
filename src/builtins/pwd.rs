//! `pwd`: print the working directory.

use std::io::Write;

use super::{Failure, Outcome, at_most};
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String]) -> Outcome {
    at_most(args, 0, "pwd")?;
    let dir = std::env::current_dir().map_err(|e| {
        Failure::Failed(format!(
            "the working directory cannot be read: {e}; `cd` somewhere else"
        ))
    })?;
    writeln!(std::io::stdout().lock(), "{}", dir.display())?;
    Ok(0)
}
