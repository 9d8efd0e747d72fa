//! `set [-e|+e] [-x|+x] [-- ARG…]`: shell options and positional
//! parameters; without arguments, list every variable.

use std::io::Write;

use super::{Failure, Outcome};
use crate::shell::{Shell, quote};

const USAGE: &str = "usage: set [-e|+e] [-x|+x] [-- ARG…]";

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    if args.is_empty() {
        let mut out = std::io::stdout().lock();
        for (name, variable) in shell.vars.iter() {
            writeln!(out, "{name}={}", quote(&variable.value))?;
        }
        return Ok(0);
    }
    for (index, arg) in args.iter().enumerate() {
        match arg.as_str() {
            "-e" => shell.errexit = true,
            "+e" => shell.errexit = false,
            "-x" => shell.xtrace = true,
            "+x" => shell.xtrace = false,
            "--" => {
                shell.positional = args[index + 1..].to_vec();
                return Ok(0);
            }
            other => return Err(Failure::Usage(format!("{other:?}: {USAGE}"))),
        }
    }
    Ok(0)
}
