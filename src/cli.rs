//! The command line: `kubesh [OPTIONS] [SCRIPT [ARGS…]]`, `kubesh -c LINE`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A shell whose processes run on Kubernetes.
///
/// Without a script, kubesh reads commands from the terminal (or from
/// standard input when it is not a terminal).
#[derive(Debug, Parser)]
#[command(
    name = "kubesh",
    version,
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

    /// Start kubesh's local cluster and use it.
    #[arg(long)]
    pub local: bool,

    /// A script to run, then its arguments ($1…). Everything after the
    /// script's name is an argument of the script, not of kubesh.
    #[arg(
        value_name = "SCRIPT [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub script_and_args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run kubesh's local cluster in the foreground (for kubectl and tests);
    /// Ctrl-C stops it and every pod process.
    LocalCluster {
        /// Port on 127.0.0.1 (0: a free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig (default: kubesh's data directory).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Where pods get their directories (default: kubesh's data directory).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
}
