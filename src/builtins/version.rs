//! `version`: kubesh's version, and the cluster's when one can be reached.

use std::io::Write;

use super::{Outcome, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    at_most(args, 0, "version")?;
    writeln!(
        std::io::stdout().lock(),
        "kubesh {}",
        env!("CARGO_PKG_VERSION")
    )?;
    let server = match shell.connect() {
        Ok(connection) => match connection.block_on(connection.client.apiserver_version()) {
            Ok(info) => format!("server {} at {}", info.git_version, connection.server),
            Err(error) => format!("server unknown: {}", connection.explain(error)),
        },
        Err(error) => format!("server unknown: {error}"),
    };
    writeln!(std::io::stdout().lock(), "{server}")?;
    Ok(0)
}
