//! The command line: `kubesh [OPTIONS] [SCRIPT [ARGS…]]`, `kubesh -c LINE`,
//! `kubesh local-cluster [start|stop|status|reset]`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What `--version` says after `kubesh`: the version, the commit built
/// and the kind of build (recorded by `build.rs`), as in
/// `0.1.0 (commit 1a2b3c4d5e6f, static build, built-in TLS roots)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KUBESH_COMMIT"),
    ", ",
    env!("KUBESH_BUILD"),
    ")"
);

/// A shell whose processes run on Kubernetes.
///
/// Without a script, kubesh reads commands from the terminal (or from
/// standard input when it is not a terminal).
#[derive(Debug, Parser)]
#[command(
    name = "kubesh",
    version = VERSION,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Command>,

    /// Run LINE and exit (ARGS become $1…).
    #[arg(short = 'c', value_name = "LINE", value_parser = clap::value_parser!(OsString))]
    pub command: Option<OsString>,

    /// The kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,

    /// The namespace to use instead of the context's.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Print the objects a launch would create (YAML) instead of creating them.
    #[arg(long)]
    pub dry_run: bool,

    /// What to remove at exit: none (default), pods (this session's
    /// foreground pods) or all (everything this session launched); also
    /// the variable KUBESH_GC.
    #[arg(long, value_name = "none|pods|all", value_parser = ["none", "pods", "all"])]
    pub gc: Option<String>,

    /// Hot-reload every background program launched (HOTRELOAD=true).
    #[arg(long)]
    pub watch: bool,

    /// Use your local cluster, starting it if it is not running; it keeps
    /// running after kubesh exits, shared by every `kubesh --local`, until
    /// `kubesh local-cluster stop`.
    #[arg(long)]
    pub local: bool,

    /// Play FILE as a demo: each command appears as if typed and runs when
    /// Enter is pressed (s skips it, q quits); comments are narration; a
    /// failing command offers r (retry), s (skip) or q (quit).
    #[arg(
        long,
        value_name = "FILE",
        value_hint = clap::ValueHint::FilePath,
        conflicts_with_all = ["command", "script_and_args"]
    )]
    pub demo: Option<String>,

    /// How fast a demo's commands are typed, in characters a second (0: at
    /// once).
    #[arg(long, value_name = "CHARS", default_value_t = 30, requires = "demo")]
    pub demo_speed: u32,

    /// Run a demo straight through, without waiting for Enter.
    #[arg(long, requires = "demo")]
    pub demo_no_wait: bool,

    /// A script to run, then its arguments ($1…). Everything after the
    /// script's name is an argument of the script, not of kubesh.
    #[arg(
        value_name = "SCRIPT [ARGS]",
        value_hint = clap::ValueHint::FilePath,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub script_and_args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a completion script for SHELL, e.g.
    /// `kubesh completions bash > /etc/bash_completion.d/kubesh`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print kubesh's manual page (roff): `kubesh man | man -l -`.
    Man,
    /// kubesh's local cluster. `start`, `stop`, `status` and `reset` manage
    /// your local cluster, the one every `kubesh --local` shares; with only
    /// options, a cluster runs in the foreground until Ctrl-C (for kubectl
    /// and tests), by default on your local cluster's state.
    #[command(args_conflicts_with_subcommands = true)]
    LocalCluster {
        #[command(subcommand)]
        action: Option<LocalAction>,
        /// Port on 127.0.0.1 (0: a free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig (default: kubesh's data directory).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Where the cluster keeps its objects, CA, token and port, and its
        /// pods their directories; started again on it, it brings them back
        /// (default: your local cluster's, in kubesh's data directory).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Where images' unpacked files are kept, shared by clusters
        /// (default: STATE/images; your local cluster's: kubesh's cache
        /// directory).
        #[arg(long, value_name = "DIR")]
        images_cache: Option<PathBuf>,
    },
    /// The guided tour at the prompt: eight steps from a first program in
    /// a pod to hot reload and `kill`, each checked; goes on where it was
    /// left.
    Tour {
        /// Take it on kubesh's local cluster.
        #[arg(long)]
        local: bool,
    },
}

/// What to do with your local cluster.
#[derive(Debug, Subcommand)]
pub enum LocalAction {
    /// Start your local cluster in the background, if it is not running,
    /// and print its address and kubeconfig. It runs until `stop`.
    Start,
    /// Stop your local cluster and its programs; waits until they have
    /// ended. What it holds is kept for the next start.
    Stop,
    /// Whether your local cluster runs: its address, kubeconfig, pid,
    /// uptime and pods (exit status 3 when it is not running).
    Status,
    /// Delete your local cluster's state (stopping it first): every object
    /// and program in it. Asks first.
    Reset {
        /// Delete without asking (for scripts).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}
