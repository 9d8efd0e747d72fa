//! `export [NAME[=value]…]`: mark variables for the programs kubesh launches
//! afterwards; without arguments, list the exported ones.

use std::io::Write;

use super::{Failure, Outcome};
use crate::shell::vars::is_valid_name;
use crate::shell::{Shell, quote};

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    if args.is_empty() {
        let mut out = std::io::stdout().lock();
        for (name, value) in shell.vars.exported() {
            writeln!(out, "export {name}={}", quote(value))?;
        }
        return Ok(0);
    }
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        if !is_valid_name(name) {
            return Err(Failure::Usage(format!(
                "{name:?} is not a variable name (letters, digits and `_`, not starting \
                 with a digit)"
            )));
        }
        if !shell.vars.export(name, value) {
            return Err(Failure::Failed(format!(
                "{name} is not set; give it a value: export {name}=VALUE"
            )));
        }
    }
    Ok(0)
}
