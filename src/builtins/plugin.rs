//! `plugin [NAME ARG…]`: list the kubectl plugins (`kubectl-*` on PATH), or
//! run one with the shell's context and namespace.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::status::STATUS_NOT_FOUND;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let plugins = find_plugins();
    let Some((name, rest)) = args.split_first() else {
        let out = &mut *streams.out;
        if plugins.is_empty() {
            writeln!(out, "no kubectl plugins (kubectl-* programs) on PATH")?;
        }
        for plugin in &plugins {
            writeln!(out, "{plugin}")?;
        }
        return Ok(0);
    };
    if !plugins.contains(name) {
        let _ = writeln!(
            streams.err,
            "kubesh: plugin: {name}: no program kubectl-{name} on PATH; `plugin` lists the plugins"
        );
        return Ok(STATUS_NOT_FOUND);
    }
    let mut command = Command::new(format!("kubectl-{name}"));
    if let Some(kubeconfig) = &shell.target.kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    if let Some(context) = &shell.target.context {
        command.arg("--context").arg(context);
    }
    command
        .arg("--namespace")
        .arg(&shell.target.namespace)
        .args(rest);
    let status = command
        .status()
        .map_err(|e| Failure::Failed(format!("kubectl-{name} cannot run: {e}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

/// Plugin names (`kubectl-foo` → `foo`) of the executables on PATH.
fn find_plugins() -> BTreeSet<String> {
    let mut plugins = BTreeSet::new();
    let Some(path) = std::env::var_os("PATH") else {
        return plugins;
    };
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let executable = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if let Some(plugin) = name.strip_prefix("kubectl-")
                && executable
            {
                plugins.insert(plugin.to_string());
            }
        }
    }
    plugins
}
