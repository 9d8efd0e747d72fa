//! `env`: list the shell's variables and where each comes from.

use std::io::Write;

use super::{Failure, Outcome};
use crate::shell::{Shell, quote};

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    if let Some(first) = args.first() {
        return Err(match first.as_str() {
            "list" | "create" | "select" | "delete" => Failure::Failed(format!(
                "{first}: environments are not available yet: this version of kubesh does \
                 not manage programs in the cluster"
            )),
            _ => Failure::Usage(format!("{first:?}: usage: env")),
        });
    }
    let mut out = std::io::stdout().lock();
    for (name, variable) in shell.vars.iter() {
        writeln!(
            out,
            "{:<9}{name}={}",
            variable.origin.label(),
            quote(&variable.value)
        )?;
    }
    Ok(0)
}
