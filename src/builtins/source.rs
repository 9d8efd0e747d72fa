//! `source FILE [ARG…]`: run a file's commands in this shell.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], _streams: &mut Streams<'_>) -> Outcome {
    let Some((file, rest)) = args.split_first() else {
        return Err(Failure::Usage("usage: source FILE [ARG…]".into()));
    };
    let text = crate::script_file::read(file)?;
    let saved = (!rest.is_empty()).then(|| std::mem::replace(&mut shell.positional, rest.to_vec()));
    let status = shell.run_sourced(file, &mut text.as_slice());
    if let Some(saved) = saved {
        shell.positional = saved;
    }
    Ok(status)
}
