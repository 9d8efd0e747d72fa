//! `kubectl ARG…`: kubectl as typed in any other shell, run with the
//! shell's context and namespace (what `literally` does).

use super::{Outcome, Streams};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    // Without arguments kubectl prints its own help, as it does anywhere.
    super::literally::run_kubectl(shell, args, streams, "kubectl")
}
