//! kubesh: a shell whose processes run on Kubernetes.
//!
//! `line ─▶ parse ─▶ expand ─▶ dispatch ─▶ builtin | launch | kubectl`

mod builtins;
mod cli;
mod cluster;
mod pages;
mod repl;
mod runtimes;
mod script_file;
mod shell;
mod syntax;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Parser;

use cli::Cli;
use cluster::ClusterTarget;
use runtimes::Runtimes;
use shell::{Interrupt, STATUS_NOT_FOUND, Shell};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = run(cli);
    ExitCode::from((status & 0xff) as u8)
}

fn run(cli: Cli) -> i32 {
    if let Some(cli::Command::LocalCluster {
        port,
        kubeconfig,
        state,
    }) = cli.subcommand
    {
        let options = local_cluster::Options {
            port,
            kubeconfig,
            state_dir: state,
        };
        return match local_cluster::run_standalone(options) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("kubesh: local-cluster: {error:#}");
                1
            }
        };
    }
    // Kept alive for the whole session: dropping it stops every pod.
    let local = if cli.local {
        match local_cluster::LocalCluster::start(local_cluster::Options::default()) {
            Ok(cluster) => {
                eprintln!("kubesh: {}", cluster.notice());
                eprintln!("kubesh: {}", cluster.isolation_mechanism());
                eprintln!(
                    "kubesh: local cluster at {}; kubectl works with KUBECONFIG={}",
                    cluster.server_url(),
                    cluster.kubeconfig_path().display()
                );
                Some(cluster)
            }
            Err(error) => {
                eprintln!("kubesh: --local: the local cluster did not start: {error:#}");
                return 1;
            }
        }
    } else {
        None
    };
    let dirs = directories::ProjectDirs::from("", "", "kubesh");
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => {
            eprintln!("kubesh: warning: Ctrl-C cannot be caught ({error}); it will end kubesh");
            Interrupt::default()
        }
    };
    let (runtimes, warnings) = Runtimes::load(
        dirs.as_ref()
            .map(|d| d.config_dir().join("runtimes"))
            .as_deref(),
    );
    for warning in warnings {
        eprintln!("kubesh: warning: {warning}");
    }
    let target = match &local {
        Some(cluster) => ClusterTarget::from_kubeconfig_file(
            cluster.kubeconfig_path(),
            cli.context.as_deref(),
            cli.namespace.as_deref(),
        ),
        None => ClusterTarget::from_kubeconfig(cli.context.as_deref(), cli.namespace.as_deref()),
    };
    let mut shell = Shell::new(target, runtimes, interrupt);

    if let Some(line) = cli.command {
        shell.positional = cli.script.into_iter().chain(cli.args).collect();
        return shell.run_script("-c", line.as_bytes());
    }
    if let Some(script) = cli.script {
        let text = match script_file::read(&script) {
            Ok(text) => text,
            Err(message) => {
                eprintln!("kubesh: {message}");
                return if std::path::Path::new(&script).exists() {
                    126
                } else {
                    STATUS_NOT_FOUND
                };
            }
        };
        shell.name = script.clone();
        shell.positional = cli.args;
        return shell.run_script(&script, &text);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = Vec::new();
        if let Err(error) = stdin.lock().read_to_end(&mut text) {
            eprintln!("kubesh: cannot read the script from standard input: {error}");
            return 1;
        }
        return shell.run_script("stdin", &text);
    }
    if let Some(problem) = &shell.target.problem {
        eprintln!("kubesh: {problem}; cluster commands need a cluster");
    }
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let history = dirs.map(|d| d.data_dir().join("history"));
    repl::run(&mut shell, history, color)
}
