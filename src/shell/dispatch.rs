//! Deciding what a command is: a builtin, a program to launch in the
//! cluster, or nothing kubesh knows (with a "did you mean").

use super::Shell;
use super::builtin::{Builtin, Failure, Streams};
use crate::status::{STATUS_BROKEN_PIPE, STATUS_NOT_FOUND, STATUS_USAGE};

/// A command after expansion.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The command name and its arguments.
    pub args: Vec<String>,
    /// `NAME=value` prefixes for this command only.
    pub prefixes: Vec<(String, String)>,
    /// A trailing `&`.
    pub background: bool,
}

/// Runs an invocation and returns its exit status, printing any error.
pub fn dispatch(shell: &mut Shell, invocation: Invocation) -> i32 {
    let name = invocation.args[0].as_str();
    if let Some(builtin) = shell.builtins.iter().find(|b| b.name == name) {
        if invocation.background {
            report!(
                "kubesh: {name}: `&` launches a program in the cluster; builtins run in the \
                 shell, without `&`"
            );
            return STATUS_USAGE;
        }
        return run_builtin(shell, builtin, &invocation);
    }
    match super::launching::resolve(shell, &invocation) {
        Ok(Some(program)) => return super::launching::launch(shell, &invocation, program),
        Ok(None) => {}
        Err(error) => {
            report!("kubesh: {error}");
            return error.status();
        }
    }
    if on_this_machine(name) {
        report!(
            "kubesh: {name}: a command of this machine, not a builtin or a program kubesh runs \
             in the cluster; run it in another terminal (`help` lists the builtins, `runtimes` \
             the programs kubesh runs)"
        );
        return STATUS_NOT_FOUND;
    }
    let hint = match suggestion(shell, name) {
        Some(candidate) => format!(" (did you mean `{candidate}`?)"),
        None => " (`help` lists the builtins)".to_string(),
    };
    report!(
        "kubesh: {}: not a builtin, a file or a known runtime{hint}",
        shortened(name)
    );
    STATUS_NOT_FOUND
}

/// Whether `name` (a bare name) is an executable on this machine's PATH:
/// `vim`, `top`, `git` typed out of habit.
fn on_this_machine(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return false;
    }
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// Runs a builtin; `NAME=value` prefixes are exported variables for the
/// builtin's duration only, as in other shells.
fn run_builtin(shell: &mut Shell, builtin: &Builtin, invocation: &Invocation) -> i32 {
    let saved: Vec<_> = invocation
        .prefixes
        .iter()
        .map(|(name, value)| {
            let saved = shell.vars.save(name);
            shell.vars.export(name, Some(value.clone()));
            (name, saved)
        })
        .collect();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut streams = Streams {
        out: &mut out,
        err: &mut err,
    };
    let status = match (builtin.run)(shell, &invocation.args[1..], &mut streams) {
        Ok(status) => status,
        Err(Failure::BrokenPipe) => STATUS_BROKEN_PIPE,
        Err(failure) => {
            // A stderr that cannot be written to must not end the shell.
            let _ = writeln!(streams.err, "kubesh: {}: {failure}", builtin.name);
            failure.status()
        }
    };
    for (name, saved) in saved.into_iter().rev() {
        shell.vars.restore(name, saved);
    }
    status
}

/// A command name as a message shows it: whole up to 64 characters, else
/// its start and its length (a pasted megabyte is not echoed back).
fn shortened(name: &str) -> String {
    const SHOWN: usize = 64;
    if name.chars().count() <= SHOWN {
        return name.to_string();
    }
    let start: String = name.chars().take(SHOWN - 4).collect();
    format!("{start}… ({} characters)", name.chars().count())
}

/// The closest builtin or runtime command to a mistyped name.
fn suggestion(shell: &Shell, name: &str) -> Option<String> {
    let candidates = shell
        .runtimes
        .commands()
        .chain(shell.builtins.iter().map(|b| b.name));
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, candidate)| {
            let shorter = name.chars().count().min(candidate.len());
            let allowed = if shorter <= 4 { 1 } else { 2 };
            *distance <= allowed
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_string())
}
