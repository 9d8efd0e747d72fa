//! Where messages from background work (reload lines, ended port forwards)
//! go: a shared callback, so that the interactive shell can print them
//! above the prompt and a script straight to stderr.

use std::sync::Arc;

/// Prints one message line.
pub type Printer = Arc<dyn Fn(String) + Send + Sync>;

/// A printer writing each line to stderr.
pub fn stderr() -> Printer {
    Arc::new(|line: String| report!("{line}"))
}
