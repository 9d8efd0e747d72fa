//! `tour [stop | restart]`: the guided tour at the prompt: start it or go
//! on where it was left, leave it, or take it again from the first step.

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;
use crate::tour::{self, Start};

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "tour [stop | restart]")?;
    match args.first().map(String::as_str) {
        None => {
            if let Some(mut guide) = shell.guide.take() {
                guide.repeat(shell);
                shell.guide = Some(guide);
                return Ok(0);
            }
            start(shell, Start::Resume)
        }
        Some("restart") => {
            shell.guide = None;
            start(shell, Start::Restart)
        }
        Some("stop") => {
            match shell.guide.take() {
                Some(mut guide) => guide.leave(shell),
                None => writeln!(streams.out, "The tour is not on; `tour` starts it.")?,
            }
            Ok(0)
        }
        Some(other) => Err(Failure::Usage(format!(
            "{other}: not stop or restart; usage: tour [stop | restart]"
        ))),
    }
}

fn start(shell: &mut Shell, how: Start) -> Outcome {
    tour::start(shell, how).map_err(|error| Failure::Failed(error.to_string()))?;
    Ok(0)
}
