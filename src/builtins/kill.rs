//! `kill NAME|DPID…` and `kill --all`: remove dprocs and everything kubesh
//! created for them; never anything kubesh did not create. `kill %N` stops
//! the shell's background job N (a port forward).

use super::{Failure, Outcome, Streams};
use crate::cluster::dprocs;
use crate::shell::Shell;
use crate::shell::jobs::job_number;

const USAGE: &str = "usage: kill NAME|DPID|%JOB… or kill --all";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        return Err(Failure::Usage(USAGE.to_string()));
    }
    let all = args.iter().any(|a| a == "--all");
    if all && args.len() > 1 {
        return Err(Failure::Usage(format!("--all takes no names; {USAGE}")));
    }
    let (jobs, args): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| a.starts_with('%'));
    let mut status = 0;
    for job in jobs {
        let killed = job_number(job).and_then(|number| shell.jobs.kill(number));
        match killed {
            Some(description) => {
                writeln!(streams.out, "killed {job} ({description})")?;
            }
            None => {
                let _ = writeln!(
                    streams.err,
                    "kubesh: kill: {job}: no such job; `jobs` lists them"
                );
                status = 1;
            }
        }
    }
    if args.is_empty() {
        return Ok(status);
    }
    let namespace = shell.target.namespace.clone();
    let environment = shell.target.environment_label();
    let connection = shell.connect()?;
    let scope = if all {
        Some(environment.as_str())
    } else {
        None
    };
    let list = dprocs::list(connection, &namespace, scope)?;
    let targets: Vec<&dprocs::Dproc> = if all {
        list.iter().collect()
    } else {
        let mut found = Vec::new();
        for key in args.iter().copied() {
            let matched = dprocs::matching(&list, key);
            if matched.is_empty() {
                let _ = writeln!(
                    streams.err,
                    "kubesh: kill: {key}: no dproc with that name or id in namespace {namespace}; \
                     `ps -a` lists them"
                );
                status = 1;
            }
            found.extend(matched);
        }
        found
    };
    let mut shell_reloads_to_stop = Vec::new();
    let out = &mut *streams.out;
    for dproc in targets {
        match dprocs::delete(connection, &namespace, dproc) {
            Ok(()) => {
                shell_reloads_to_stop.push(dproc.name.clone());
                writeln!(out, "killed {} ({})", dproc.name, dproc.id)?;
            }
            Err(error) => {
                let _ = writeln!(streams.err, "kubesh: kill: {}: {error}", dproc.name);
                status = 1;
            }
        }
    }
    for name in shell_reloads_to_stop {
        shell.reloads.unwatch(&name);
        shell.watchable.remove(&name);
    }
    shell.refresh_cluster_env();
    Ok(status)
}
