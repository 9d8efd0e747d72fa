//! What the shell asks of a builtin: its signature, the streams it writes
//! to, and the outcome it returns. The builtins themselves live in
//! `crate::builtins` and are handed to the shell when it is made.

use std::io::Write;

use super::Shell;
use crate::cluster::connection::ClusterError;
use crate::cluster::dprocs::LookupError;
use crate::launch::LaunchError;
use crate::status::{STATUS_BROKEN_PIPE, STATUS_USAGE};

/// What a builtin returns: its exit status, or a failure to report.
pub type Outcome = Result<i32, Failure>;

/// A builtin's failure: reported as `kubesh: NAME: message`. Failures
/// from the layers below keep their error until the shell shows it.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Wrong arguments (status 2).
    #[error("{0}")]
    Usage(String),
    /// The builtin could not do its job, in its own words (status 1).
    #[error("{0}")]
    Failed(String),
    /// A cluster request failed (status 1).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The dproc named is not there, or the cluster could not be asked.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A launch, or the wait for its pods, failed (status 1).
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The images kubesh built could not be listed (status 1).
    #[error(transparent)]
    Images(#[from] crate::launch::built::ListError),
    /// The images the dprocs run could not be looked up (`img prune`).
    #[error("the images the dprocs run could not be looked up, so nothing was removed: {0}")]
    ImagesInUse(#[source] ClusterError),
    /// A cluster request about one dproc failed.
    #[error("{name}: {source}")]
    About {
        name: String,
        #[source]
        source: ClusterError,
    },
    /// What the builtin read cannot be written in the format asked for.
    #[error("cannot write it as {format}: {source}")]
    Encode {
        format: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A script to read (`source`) cannot be read.
    #[error(transparent)]
    Script(#[from] crate::script_file::ScriptFileError),
    /// The kubeconfig cannot be read.
    #[error(transparent)]
    Kubeconfig(#[from] crate::cluster::KubeconfigProblem),
    /// Hot reload cannot start.
    #[error(transparent)]
    NotWatched(#[from] super::NotWatched),
    /// Writing to stdout or stderr failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// Output went to a closed pipe: stop quietly (status 141).
    #[error("output went to a closed pipe")]
    BrokenPipe,
}

impl Failure {
    pub fn status(&self) -> i32 {
        match self {
            Failure::Usage(_) => STATUS_USAGE,
            Failure::BrokenPipe => STATUS_BROKEN_PIPE,
            _ => 1,
        }
    }
}

impl From<std::io::Error> for Failure {
    /// Writing to stdout or stderr failed (e.g. a closed pipe).
    fn from(error: std::io::Error) -> Failure {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::BrokenPipe,
            _ => Failure::Output(error),
        }
    }
}

/// Where a builtin writes: the shell's stdout and stderr, or buffers when
/// a test runs a builtin in-process. Programs a builtin starts (`kubectl`,
/// plugins), the commands `source` runs and the shell's own messages (a job
/// ended by `cx`) go to the process's stdout and stderr.
pub struct Streams<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// One builtin command.
pub struct Builtin {
    pub name: &'static str,
    pub run: fn(&mut Shell, &[String], &mut Streams<'_>) -> Outcome,
}
