//! What the shell asks of a builtin: its signature, the streams it writes
//! to, and the outcome it returns. The builtins themselves live in
//! `crate::builtins` and are handed to the shell when it is made.

use std::fmt;
use std::io::Write;

use super::Shell;
use crate::status::{STATUS_BROKEN_PIPE, STATUS_USAGE};

/// What a builtin returns: its exit status, or a failure to report.
pub type Outcome = Result<i32, Failure>;

/// A builtin's failure: reported as `kubesh: NAME: message`.
#[derive(Debug)]
pub enum Failure {
    /// Wrong arguments (status 2).
    Usage(String),
    /// The builtin could not do its job (status 1).
    Failed(String),
    /// Output went to a closed pipe: stop quietly (status 141).
    BrokenPipe,
}

impl Failure {
    pub fn status(&self) -> i32 {
        match self {
            Failure::Usage(_) => STATUS_USAGE,
            Failure::Failed(_) => 1,
            Failure::BrokenPipe => STATUS_BROKEN_PIPE,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Failed(message) => f.write_str(message),
            Failure::BrokenPipe => f.write_str("output went to a closed pipe"),
        }
    }
}

impl From<std::io::Error> for Failure {
    /// Writing to stdout or stderr failed (e.g. a closed pipe).
    fn from(error: std::io::Error) -> Failure {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::BrokenPipe,
            _ => Failure::Failed(format!("cannot write output: {error}")),
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
