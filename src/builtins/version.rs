//! `version`: kubesh's version, and the cluster's when one can be reached.

use super::{Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 0, "version")?;
    writeln!(streams.out, "kubesh {}", crate::cli::VERSION)?;
    let server = match shell.connect() {
        Ok(connection) => match connection.block_on(connection.client.apiserver_version()) {
            Ok(info) => format!("server {} at {}", info.git_version, connection.server),
            Err(error) => format!("server unknown: {}", connection.explain(error)),
        },
        Err(error) => format!("server unknown: {error}"),
    };
    writeln!(streams.out, "{server}")?;
    Ok(0)
}
