//! `cx [CONTEXT]`: list the kubeconfig's contexts, or switch this shell to
//! one (only this shell: the kubeconfig is not changed).

use super::{Failure, Outcome, Streams, at_most};
use crate::cluster::ClusterTarget;
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "cx [CONTEXT]")?;
    let contexts = shell.target.contexts()?;
    let Some(wanted) = args.first() else {
        let out = &mut *streams.out;
        for context in &contexts {
            let mark = if Some(context) == shell.target.context.as_ref() {
                "*"
            } else {
                " "
            };
            writeln!(out, "{mark} {context}")?;
        }
        return Ok(0);
    };
    if !contexts.contains(wanted) {
        return Err(Failure::Failed(format!(
            "{wanted}: no such context in the kubeconfig; `cx` lists them"
        )));
    }
    let switched = match &shell.target.kubeconfig {
        Some(path) => ClusterTarget::from_kubeconfig_file(path, Some(wanted), None),
        None => ClusterTarget::from_kubeconfig(Some(wanted), None),
    };
    shell.set_target(ClusterTarget {
        environment: shell.target.environment.clone(),
        ..switched
    });
    writeln!(
        streams.out,
        "context {wanted}, namespace {}",
        shell.target.namespace
    )?;
    Ok(0)
}
