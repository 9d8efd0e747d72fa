//! `cd [DIR | -]`: change the working directory.

use std::path::PathBuf;

use super::{Failure, Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "cd [DIR | -]")?;
    let current = std::env::current_dir().ok();
    let (target, announce) = match args.first().map(String::as_str) {
        None | Some("") => match shell.vars.get("HOME") {
            Some(home) => (PathBuf::from(home), false),
            None => return Err(Failure::Failed("HOME is not set; name a directory".into())),
        },
        Some("-") => match &shell.previous_dir {
            Some(previous) => (previous.clone(), true),
            None => return Err(Failure::Failed("no previous directory yet".into())),
        },
        Some(dir) => (PathBuf::from(dir), false),
    };
    if let Err(error) = std::env::set_current_dir(&target) {
        let reason = if !target.exists() {
            "no such directory".to_string()
        } else if !target.is_dir() {
            "not a directory".to_string()
        } else {
            error.to_string()
        };
        return Err(Failure::Failed(format!("{}: {reason}", target.display())));
    }
    shell.previous_dir = current;
    if announce {
        let now = std::env::current_dir().unwrap_or(target);
        writeln!(streams.out, "{}", now.display())?;
    }
    Ok(0)
}
