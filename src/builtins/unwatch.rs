//! `unwatch NAME…`: stop hot-reloading dprocs.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], _streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        return Err(Failure::Usage("usage: unwatch NAME…".into()));
    }
    for name in args {
        if !shell.reloads.unwatch(name) {
            return Err(Failure::Failed(format!(
                "{name}: not watched; `watch` lists the watched dprocs"
            )));
        }
    }
    Ok(0)
}
