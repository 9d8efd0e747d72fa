//! `version`: print kubesh's version.

use std::io::Write;

use super::{Outcome, at_most};
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String]) -> Outcome {
    at_most(args, 0, "version")?;
    writeln!(
        std::io::stdout().lock(),
        "kubesh {}",
        env!("CARGO_PKG_VERSION")
    )?;
    Ok(0)
}
