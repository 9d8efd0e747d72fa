//! kubesh: a shell whose processes run on Kubernetes.
//!
//! `line ─▶ parse ─▶ expand ─▶ dispatch ─▶ builtin | launch | kubectl`

/// Writes a line to stderr; a stderr that cannot be written to (closed, or
/// a full disk) must not end the shell, so write errors are dropped.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod builtins;
mod cli;
mod cluster;
mod interrupt;
mod labels;
mod launch;
mod local;
mod manual;
mod pages;
mod printer;
mod reload;
mod repl;
mod runtimes;
mod script_file;
mod shell;
mod status;
mod syntax;
mod terminal;
mod tour;

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use clap::Parser;

use cli::Cli;
use cluster::ClusterTarget;
use interrupt::Interrupt;
use runtimes::Runtimes;
use shell::Shell;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = run(cli);
    ExitCode::from((status & 0xff) as u8)
}

fn run(mut cli: Cli) -> i32 {
    let written = match &cli.subcommand {
        Some(cli::Command::Completions { shell }) => {
            Some(manual::completions(*shell, &mut std::io::stdout()))
        }
        Some(cli::Command::Man) => Some(manual::man_page(&mut std::io::stdout())),
        _ => None,
    };
    if let Some(written) = written {
        return match written {
            Ok(()) => 0,
            Err(error) => {
                report!("kubesh: cannot write to stdout: {error}");
                1
            }
        };
    }
    if let Some(cli::Command::LocalCluster {
        action,
        port,
        kubeconfig,
        state,
        images_cache,
    }) = cli.subcommand
    {
        return match action {
            Some(action) => local::commands::run(&action),
            None => local::commands::foreground(port, kubeconfig, state, images_cache),
        };
    }
    let tour = matches!(cli.subcommand, Some(cli::Command::Tour { .. }));
    if let Some(cli::Command::Tour { local: true }) = cli.subcommand {
        cli.local = true;
    }
    // The user's local cluster: found running, or started detached; it
    // outlives this session.
    let local = if cli.local {
        match local::Place::user().and_then(|place| local::ensure(&place)) {
            Ok(running) => {
                announce(&running);
                Some(running)
            }
            Err(error) => {
                report!("kubesh: --local: {error}");
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
            report!("kubesh: warning: Ctrl-C cannot be caught ({error}); it will end kubesh");
            Interrupt::default()
        }
    };
    let (runtimes, warnings) = Runtimes::load(
        dirs.as_ref()
            .map(|d| d.config_dir().join("runtimes"))
            .as_deref(),
    );
    for warning in warnings {
        report!("kubesh: warning: {warning}");
    }
    let target = match &local {
        Some(running) => ClusterTarget::from_kubeconfig_file(
            &running.record.kubeconfig,
            cli.context.as_deref(),
            cli.namespace.as_deref(),
        ),
        None => ClusterTarget::from_kubeconfig(cli.context.as_deref(), cli.namespace.as_deref()),
    };
    let mut shell = Shell::new(target, runtimes, builtins::BUILTINS, interrupt);
    shell.dry_run = cli.dry_run;
    if cli.watch {
        shell.vars.set("HOTRELOAD", "true".to_string());
    }
    let gc = cli.gc.clone();
    let status = run_shell(&mut shell, cli, dirs, tour);
    if let Some(mut guide) = shell.guide.take() {
        guide.leave(&mut shell);
    }
    shell.clean_up(gc.as_deref());
    status
}

/// Says which local cluster `--local` uses, and that it outlives kubesh
/// when this kubesh started it.
fn announce(running: &local::Running) {
    let kubeconfig = running.record.kubeconfig.display();
    if running.started_now {
        for line in &running.banner {
            report!("kubesh: {line}");
        }
        report!(
            "kubesh: started the local cluster at {} (pid {}); kubectl works with KUBECONFIG={kubeconfig}; it keeps running after kubesh exits, shared by every `kubesh --local`, until `kubesh local-cluster stop`",
            running.server,
            running.record.pid
        );
    } else {
        report!(
            "kubesh: local cluster at {} (pid {}, up {}); kubectl works with KUBECONFIG={kubeconfig}",
            running.server,
            running.record.pid,
            local::duration_words(running.record.uptime())
        );
        for unapplied in running.unapplied_settings() {
            report!("kubesh: warning: {unapplied}");
        }
    }
}

/// `--demo FILE`: plays the script to an audience.
fn play_demo(shell: &mut Shell, demo: &str, cli: &Cli) -> i32 {
    let text = match script_file::read(demo) {
        Ok(text) => text,
        Err(error) => {
            report!("kubesh: {error}");
            return status::STATUS_NOT_FOUND;
        }
    };
    let Ok(text) = String::from_utf8(text) else {
        report!("kubesh: {demo}: is not UTF-8 text; save it as UTF-8");
        return status::STATUS_USAGE;
    };
    shell.name = demo.to_string();
    shell.interactive = true;
    let options = repl::demo::Options {
        speed: cli.demo_speed,
        wait: !cli.demo_no_wait,
        color: terminal::colors(&std::io::stdout()),
    };
    repl::demo::play(shell, demo, &text, &options)
}

/// Runs the shell in the mode the command line asks for.
fn run_shell(
    shell: &mut Shell,
    cli: Cli,
    dirs: Option<directories::ProjectDirs>,
    tour: bool,
) -> i32 {
    if let Some(demo) = &cli.demo {
        return play_demo(shell, demo, &cli);
    }
    let mut words = cli
        .script_and_args
        .into_iter()
        .map(|word| word.to_string_lossy().into_owned());
    if let Some(line) = cli.command {
        shell.positional = words.collect();
        return shell.run_script("-c", &mut line.as_bytes());
    }
    if let Some(script) = words.next() {
        let text = match script_file::read(&script) {
            Ok(text) => text,
            Err(error) => {
                report!("kubesh: {error}");
                // As for an unknown command; 126 for one that cannot run.
                return match error {
                    script_file::ScriptFileError::Missing(_) => status::STATUS_NOT_FOUND,
                    _ => 126,
                };
            }
        };
        shell.name = script.clone();
        shell.positional = words.collect();
        return shell.run_script(&script, &mut text.as_slice());
    }
    let stdin = std::io::stdin();
    if tour && !stdin.is_terminal() {
        report!("kubesh: tour: the tour is typed at a terminal; run `kubesh tour` in one");
        return status::STATUS_USAGE;
    }
    if !stdin.is_terminal() {
        // The script is stdin: its programs read nothing from it.
        shell.stdin_is_script = true;
        return shell.run_script("stdin", &mut stdin.lock());
    }
    if let Some(problem) = &shell.target.problem {
        report!("kubesh: {problem}");
    }
    let color = terminal::colors(&std::io::stdout());
    let history = dirs.map(|d| d.data_dir().join("history"));
    shell.interactive = true;
    if tour && let Err(error) = tour::start(shell, tour::Start::Resume) {
        report!("kubesh: tour: {error}");
        return 1;
    }
    repl::run(shell, history, color)
}
