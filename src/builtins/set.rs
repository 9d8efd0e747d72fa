//! `set [-e|+e] [-x|+x] [-- ARG…]`: shell options and positional
//! parameters; without arguments, list every variable.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::syntax::quote;

const USAGE: &str = "usage: set [-e|+e] [-x|+x] [-- ARG…]";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        let out = &mut *streams.out;
        for (name, variable) in shell.vars.iter() {
            writeln!(out, "{name}={}", quote(&variable.value))?;
        }
        return Ok(0);
    }
    for (index, arg) in args.iter().enumerate() {
        if arg == "--" {
            shell.positional = args[index + 1..].to_vec();
            return Ok(0);
        }
        let (on, flags) = match (arg.strip_prefix('-'), arg.strip_prefix('+')) {
            (Some(flags), _) if !flags.is_empty() => (true, flags),
            (_, Some(flags)) if !flags.is_empty() => (false, flags),
            _ => return Err(Failure::Usage(format!("{arg:?}: {USAGE}"))),
        };
        for flag in flags.chars() {
            match flag {
                'e' => shell.errexit = on,
                'x' => shell.xtrace = on,
                other => {
                    return Err(Failure::Usage(format!(
                        "-{other}: not an option kubesh has; {USAGE}"
                    )));
                }
            }
        }
    }
    Ok(0)
}
