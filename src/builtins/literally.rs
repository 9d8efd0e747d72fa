//! `literally ARG…` (or a leading backtick): run kubectl with the shell's
//! context and namespace.

use std::io::ErrorKind;
use std::process::Command;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::status::STATUS_NOT_FOUND;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        return Err(Failure::Usage(
            "usage: literally ARG… (e.g. `literally get pods`, or `` `get pods ``)".into(),
        ));
    }
    run_kubectl(shell, args, streams, "literally")
}

/// Runs kubectl with `args` after the shell's kubeconfig, context and
/// namespace (given first, so that the line's own `-n` or `--context`
/// wins); `builtin` is the name errors are given under.
pub fn run_kubectl(
    shell: &mut Shell,
    args: &[String],
    streams: &mut Streams<'_>,
    builtin: &str,
) -> Outcome {
    let mut kubectl = Command::new("kubectl");
    if let Some(kubeconfig) = &shell.target.kubeconfig {
        kubectl.arg("--kubeconfig").arg(kubeconfig);
    }
    if let Some(context) = &shell.target.context {
        kubectl.arg("--context").arg(context);
    }
    kubectl
        .arg("--namespace")
        .arg(&shell.target.namespace)
        .args(args);
    if shell.debug {
        let _ = writeln!(
            streams.err,
            "debug: kubectl {}",
            crate::syntax::quote_all(kubectl.get_args())
        );
    }
    match kubectl.status() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            Ok(status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal))
                .unwrap_or(1))
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let _ = writeln!(
                streams.err,
                "kubesh: {builtin}: kubectl is not installed or not on PATH; install it \
                 (https://kubernetes.io/docs/tasks/tools/) and try again"
            );
            Ok(STATUS_NOT_FOUND)
        }
        Err(error) => Err(Failure::Failed(format!("cannot run kubectl: {error}"))),
    }
}
