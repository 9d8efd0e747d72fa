//! `unset NAME…`: remove variables.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::shell::vars::is_valid_name;

pub fn run(shell: &mut Shell, args: &[String], _streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        return Err(Failure::Usage("usage: unset NAME…".into()));
    }
    for name in args {
        if !is_valid_name(name) {
            return Err(Failure::Usage(format!("{name:?} is not a variable name")));
        }
        shell.vars.unset(name);
    }
    Ok(0)
}
