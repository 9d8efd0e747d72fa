//! Running text as commands: one line typed at the prompt, a script file, a
//! script on stdin (run line by line as it arrives), `-c LINE` and
//! `source FILE`.
//!
//! Outside the interactive prompt a failing command stops the script (unless
//! `set +e`), naming `file:line` and the command; the script's exit status is
//! the failing command's. A line ending in a backslash, or with a quote
//! still open, goes on in the next line.

use std::fmt;
use std::io::BufRead;

use super::Shell;
use crate::status::{STATUS_BROKEN_PIPE, STATUS_INTERRUPTED, STATUS_USAGE};
use crate::syntax::{Command, Continuation, parse_line, quote};

/// Where a line comes from, for messages: `demo.kubesh:12`.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub source: &'a str,
    pub line: usize,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// Running stopped before the end of the text: a failure under `set -e`,
/// Ctrl-C, or `exit`.
struct Stopped;

impl Shell {
    /// Runs one line typed at the interactive prompt. Every command of the
    /// line runs, whatever the status of the previous one, until Ctrl-C:
    /// returns whether Ctrl-C stopped it.
    pub fn run_interactive_line(&mut self, line: &str) -> bool {
        let interrupted = match parse_line(line) {
            Ok(commands) => {
                self.run_commands(&commands, None).is_err() && self.exit_requested.is_none()
            }
            Err(error) => {
                report!("kubesh: {error}");
                self.last_status = STATUS_USAGE;
                false
            }
        };
        if let Some(mut guide) = self.guide.take()
            && guide.after_line(self)
            && self.guide.is_none()
        {
            self.guide = Some(guide);
        }
        interrupted
    }

    /// Runs a whole script (file, stdin, `-c`), stopping at the first
    /// failure while `set -e` is on. Returns the shell's exit status.
    pub fn run_script(&mut self, source: &str, input: &mut dyn BufRead) -> i32 {
        let _ = self.run_lines(source, input);
        self.exit_requested.unwrap_or(self.last_status)
    }

    /// Runs a file in the current shell (`source`): returns the status of
    /// its last command, or of the command that stopped it.
    pub fn run_sourced(&mut self, source: &str, input: &mut dyn BufRead) -> i32 {
        const MAX_DEPTH: usize = 64;
        if self.source_depth >= MAX_DEPTH {
            report!(
                "kubesh: source: {source}: files source each other more than {MAX_DEPTH} \
                 levels deep; stopped"
            );
            return STATUS_USAGE;
        }
        self.source_depth += 1;
        let _ = self.run_lines(source, input);
        self.source_depth -= 1;
        self.last_status
    }

    fn run_lines(&mut self, source: &str, input: &mut dyn BufRead) -> Result<(), Stopped> {
        let mut next_number = 1;
        while let Some(mut line) = read_line(source, input)? {
            let location = Location {
                source,
                line: next_number,
            };
            next_number += 1;
            loop {
                let text = match std::str::from_utf8(&line) {
                    Ok(text) => text,
                    Err(error) => {
                        let column = String::from_utf8_lossy(&line[..error.valid_up_to()])
                            .chars()
                            .count()
                            + 1;
                        report!(
                            "kubesh: {location}: column {column}: the line is not valid \
                             UTF-8; save the file as UTF-8"
                        );
                        self.fail(STATUS_USAGE, Some(&location), None)?;
                        break;
                    }
                };
                match parse_line(text) {
                    Ok(commands) => {
                        self.run_commands(&commands, Some(&location))?;
                        break;
                    }
                    Err(error) if error.continues.is_some() => {
                        let Some(more) = read_line(source, input)? else {
                            report!("kubesh: {location}: {error}");
                            self.fail(STATUS_USAGE, Some(&location), None)?;
                            break;
                        };
                        next_number += 1;
                        if error.continues == Some(Continuation::Backslash) {
                            line.pop();
                        } else {
                            line.push(b'\n');
                        }
                        line.extend_from_slice(&more);
                    }
                    Err(error) => {
                        report!("kubesh: {location}: {error}");
                        self.fail(STATUS_USAGE, Some(&location), None)?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs parsed commands. `location` is `None` at the prompt.
    fn run_commands(
        &mut self,
        commands: &[Command],
        location: Option<&Location>,
    ) -> Result<(), Stopped> {
        for command in commands {
            let status = self.execute(command);
            self.last_status = status;
            if self.exit_requested.is_some() {
                return Err(Stopped);
            }
            if self.interrupt.take() {
                self.last_status = STATUS_INTERRUPTED;
                if let Some(location) = location {
                    report!("kubesh: {location}: interrupted");
                }
                return Err(Stopped);
            }
            if status != 0 {
                let words = std::mem::take(&mut self.last_command);
                self.fail(status, location, Some(&words))?;
            }
        }
        Ok(())
    }

    /// Records a failure; stops the script when `set -e` is on and the line
    /// is not typed at the prompt.
    fn fail(
        &mut self,
        status: i32,
        location: Option<&Location>,
        command: Option<&[String]>,
    ) -> Result<(), Stopped> {
        self.last_status = status;
        let Some(location) = location else {
            return Ok(());
        };
        if !self.errexit {
            return Ok(());
        }
        match command {
            // Output went to a closed pipe: stop as quietly as other shells.
            _ if status == STATUS_BROKEN_PIPE => {}
            Some(words) => {
                let shown: Vec<String> = words.iter().map(|w| quote(w)).collect();
                report!(
                    "kubesh: {location}: stopped: `{}` failed with status {status} \
                     (`set +e` keeps going after failures)",
                    shown.join(" ")
                );
            }
            None => report!("kubesh: {location}: stopped (`set +e` keeps going after failures)"),
        }
        Err(Stopped)
    }
}

/// The next line without its line break; `None` at the end of the input.
fn read_line(source: &str, input: &mut dyn BufRead) -> Result<Option<Vec<u8>>, Stopped> {
    let mut line = Vec::new();
    match input.read_until(b'\n', &mut line) {
        Ok(0) => Ok(None),
        Ok(_) => {
            if line.ends_with(b"\n") {
                line.pop();
            }
            if line.ends_with(b"\r") {
                line.pop();
            }
            Ok(Some(line))
        }
        Err(error) => {
            report!("kubesh: {source}: cannot read further: {error}");
            Err(Stopped)
        }
    }
}
