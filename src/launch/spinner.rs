//! The progress line of a wait on stderr. Where stderr is a terminal that
//! can redraw, a spinner redrawn in place and cut to the terminal's width
//! (a web terminal of 60 columns gets no wrapped, half-erased lines); at a
//! terminal that cannot (`TERM=dumb`), each new message once, as a plain
//! line; where stderr is no terminal (a pipe, a file), nothing.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::terminal;

/// A wait's progress line.
pub enum Spinner {
    Redrawn(ProgressBar),
    Plain(Mutex<PlainLines>),
}

/// What the plain lines have said so far.
pub struct PlainLines {
    last: Option<String>,
    finished: bool,
}

impl Spinner {
    /// A progress line saying `message` (nothing yet, in plain lines).
    pub fn new(message: &str) -> Spinner {
        let stderr = std::io::stderr();
        if stderr.is_terminal() && !terminal::can_redraw(&stderr) {
            return Spinner::Plain(Mutex::new(PlainLines {
                last: Some(message.to_string()),
                finished: false,
            }));
        }
        let spinner = ProgressBar::new_spinner();
        // `wide_msg` takes the width the rest leaves and cuts what is longer.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}") {
            spinner.set_style(style);
        }
        spinner.set_message(message.to_string());
        spinner.enable_steady_tick(Duration::from_millis(100));
        Spinner::Redrawn(spinner)
    }

    /// A line that is never shown: for work whose progress is told
    /// otherwise (through a printer, while the prompt waits).
    pub fn silent() -> Spinner {
        Spinner::Plain(Mutex::new(PlainLines {
            last: None,
            finished: true,
        }))
    }

    /// Says `message` from now on.
    pub fn set_message(&self, message: String) {
        match self {
            Spinner::Redrawn(spinner) => spinner.set_message(message),
            Spinner::Plain(lines) => {
                if let Ok(mut lines) = lines.lock()
                    && !lines.finished
                    && lines.last.as_deref() != Some(message.as_str())
                {
                    report!("{message}");
                    lines.last = Some(message);
                }
            }
        }
    }

    /// Runs `print` with the line out of the way, then draws it again.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match self {
            Spinner::Redrawn(spinner) => spinner.suspend(print),
            Spinner::Plain(_) => print(),
        }
    }

    /// Removes the line for good.
    pub fn finish_and_clear(&self) {
        match self {
            Spinner::Redrawn(spinner) => spinner.finish_and_clear(),
            Spinner::Plain(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.finished = true;
                }
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        match self {
            Spinner::Redrawn(spinner) => spinner.is_finished(),
            Spinner::Plain(lines) => lines.lock().map_or(true, |lines| lines.finished),
        }
    }
}
