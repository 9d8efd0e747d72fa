//! Running text as commands: one line typed at the prompt, a script file, a
//! script on stdin, `-c LINE` and `source FILE`.
//!
//! Outside the interactive prompt a failing command stops the script (unless
//! `set +e`), naming `file:line` and the command; the script's exit status is
//! the failing command's.

use std::fmt;

use super::{STATUS_INTERRUPTED, STATUS_USAGE, Shell, quote};
use crate::syntax::{self, parse_line};

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

/// Why running stopped before the end of the text.
enum Stop {
    /// A command failed under `set -e`, or Ctrl-C was pressed.
    Failed,
    /// `exit` was run.
    Exit,
}

impl Shell {
    /// Runs one line typed at the interactive prompt. Every command of the
    /// line runs, whatever the status of the previous one.
    pub fn run_interactive_line(&mut self, line: &str) {
        let _ = self.run_line(line, None);
    }

    /// Runs a whole script (file, stdin, `-c`), stopping at the first
    /// failure while `set -e` is on. Returns the shell's exit status.
    pub fn run_script(&mut self, source: &str, text: &[u8]) -> i32 {
        let _ = self.run_text(source, text);
        self.exit_requested.unwrap_or(self.last_status)
    }

    /// Runs a file in the current shell (`source`): returns the status of
    /// its last command, or of the command that stopped it.
    pub fn run_sourced(&mut self, source: &str, text: &[u8]) -> i32 {
        const MAX_DEPTH: usize = 64;
        if self.source_depth >= MAX_DEPTH {
            eprintln!(
                "kubesh: source: {source}: files source each other more than {MAX_DEPTH} \
                 levels deep; stopped"
            );
            return STATUS_USAGE;
        }
        self.source_depth += 1;
        let _ = self.run_text(source, text);
        self.source_depth -= 1;
        self.last_status
    }

    fn run_text(&mut self, source: &str, text: &[u8]) -> Result<(), Stop> {
        for (line_number, line) in logical_lines(text) {
            let location = Location {
                source,
                line: line_number,
            };
            match std::str::from_utf8(&line) {
                Ok(line) => self.run_line(line, Some(&location))?,
                Err(error) => {
                    let column = String::from_utf8_lossy(&line[..error.valid_up_to()])
                        .chars()
                        .count()
                        + 1;
                    eprintln!(
                        "kubesh: {location}: column {column}: the line is not valid UTF-8; \
                         save the file as UTF-8"
                    );
                    self.fail_line(STATUS_USAGE, Some(&location), None)?;
                }
            }
        }
        Ok(())
    }

    /// Parses and runs one line. `location` is `None` at the prompt.
    fn run_line(&mut self, line: &str, location: Option<&Location>) -> Result<(), Stop> {
        let commands = match parse_line(line) {
            Ok(commands) => commands,
            Err(error) => {
                match location {
                    Some(location) => eprintln!("kubesh: {location}: {error}"),
                    None => eprintln!("kubesh: {error}"),
                }
                return self.fail_line(STATUS_USAGE, location, None);
            }
        };
        for command in &commands {
            let status = self.execute(command);
            self.last_status = status;
            if self.exit_requested.is_some() {
                return Err(Stop::Exit);
            }
            if self.interrupt.take() {
                self.last_status = STATUS_INTERRUPTED;
                if location.is_some() {
                    eprintln!("kubesh: interrupted");
                    return Err(Stop::Failed);
                }
                return Ok(());
            }
            if status != 0 {
                let words = syntax::expand_words(&command.words, self);
                self.fail_line(status, location, Some(&words))?;
            }
        }
        Ok(())
    }

    /// Records a failure; stops the script when `set -e` is on and the line
    /// is not typed at the prompt.
    fn fail_line(
        &mut self,
        status: i32,
        location: Option<&Location>,
        command: Option<&[String]>,
    ) -> Result<(), Stop> {
        self.last_status = status;
        let Some(location) = location else {
            return Ok(());
        };
        if !self.errexit {
            return Ok(());
        }
        match command {
            Some(words) => {
                let shown: Vec<String> = words.iter().map(|w| quote(w)).collect();
                eprintln!(
                    "kubesh: {location}: stopped: `{}` exited with status {status} \
                     (`set +e` keeps going after failures)",
                    shown.join(" ")
                );
            }
            None => eprintln!("kubesh: {location}: stopped (`set +e` keeps going after failures)"),
        }
        Err(Stop::Failed)
    }
}

/// Splits text into numbered lines, joining a line that ends with an
/// unescaped backslash to the next one. The number is the first line's.
fn logical_lines(text: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, Vec<u8>)> = None;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (number, mut line) = pending.take().unwrap_or((index + 1, Vec::new()));
        let trailing_backslashes = raw.iter().rev().take_while(|&&b| b == b'\\').count();
        if trailing_backslashes % 2 == 1 {
            line.extend_from_slice(&raw[..raw.len() - 1]);
            pending = Some((number, line));
        } else {
            line.extend_from_slice(raw);
            lines.push((number, line));
        }
    }
    if let Some(last) = pending {
        lines.push(last);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::logical_lines;

    #[test]
    fn continuation_lines_join_and_keep_the_first_number() {
        let lines = logical_lines(b"a \\\n  b\nc\\\\\nd\r\n");
        let text: Vec<(usize, String)> = lines
            .into_iter()
            .map(|(n, l)| (n, String::from_utf8(l).unwrap()))
            .collect();
        assert_eq!(
            text,
            [
                (1, "a   b".to_string()),
                (3, "c\\\\".to_string()),
                (4, "d".to_string()),
                (5, String::new())
            ]
        );
    }
}
