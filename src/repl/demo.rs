//! `kubesh --demo FILE`: a script played the way a presenter plays it.
//! Each command appears at the prompt as if typed (at a set speed, or at
//! once) and waits for Enter before it runs (unless the demo runs straight
//! through); comment lines are shown as narration. A failing command stops
//! the demo with its line marked and a choice: retry it, skip it or quit.
//!
//! Keys: Enter runs the command shown, `s` skips it, `q` (or Ctrl-C,
//! Ctrl-D) ends the demo; any key while a command is being typed shows the
//! rest of it at once. After a failure: `r` retries, `s` skips, `q` quits.

use std::io::Write;
use std::time::Duration;

use nu_ansi_term::{Color, Style};

use super::plain::Quiet;
use super::prompt;
use crate::shell::Shell;
use crate::syntax::{Continuation, parse_line};

/// How the demo is played.
pub struct Options {
    /// Characters typed a second; 0: each command appears at once.
    pub speed: u32,
    /// Wait for Enter before each command.
    pub wait: bool,
    pub color: bool,
}

/// One step of a demo script.
#[derive(Debug, PartialEq)]
enum Step {
    /// A comment line, shown as it is.
    Narration(String),
    /// A command (its lines joined when a quote or a backslash goes on),
    /// and the number of its first line.
    Command { line: usize, text: String },
}

/// The steps of a script: comments and commands; blank lines and a first
/// line `#!…` are left out.
fn steps(script: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in script.lines().enumerate() {
        let number = index + 1;
        let (first, text) = match pending.take() {
            Some((first, mut before)) => {
                before.push_str(line);
                (first, before)
            }
            None => {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || (number == 1 && trimmed.starts_with("#!")) {
                    continue;
                }
                if trimmed.starts_with('#') {
                    steps.push(Step::Narration(trimmed.to_string()));
                    continue;
                }
                (number, line.to_string())
            }
        };
        match parse_line(&text) {
            Err(error) if error.continues == Some(Continuation::Backslash) => {
                let mut text = text;
                text.pop();
                pending = Some((first, text));
            }
            Err(error) if error.continues.is_some() => pending = Some((first, text + "\n")),
            _ => steps.push(Step::Command { line: first, text }),
        }
    }
    if let Some((line, text)) = pending {
        steps.push(Step::Command { line, text });
    }
    steps
}

/// What a key pressed asks for.
#[derive(Debug, PartialEq)]
enum Key {
    Enter,
    Retry,
    Skip,
    Quit,
    Other,
}

fn key(byte: Option<u8>) -> Key {
    match byte {
        Some(b'\r' | b'\n') => Key::Enter,
        Some(b'r' | b'R') => Key::Retry,
        Some(b's' | b'S') => Key::Skip,
        // Ctrl-C, Ctrl-D, the end of the input.
        Some(b'q' | b'Q' | 0x03 | 0x04) | None => Key::Quit,
        Some(_) => Key::Other,
    }
}

/// Plays the script `text` (from `source`); returns the exit status: 0 at
/// its end, else the status of the command that stopped it.
pub fn play(shell: &mut Shell, source: &str, text: &str, options: &Options) -> i32 {
    let mut out = std::io::stdout();
    for step in steps(text) {
        let (line, command) = match step {
            Step::Narration(words) => {
                let shown = match options.color {
                    true => Style::new().bold().paint(words).to_string(),
                    false => words,
                };
                let _ = writeln!(out, "{shown}");
                continue;
            }
            Step::Command { line, text } => (line, text),
        };
        let mut typed = true;
        loop {
            shell.interrupt.take();
            show_prompt(shell, options.color);
            if typed {
                type_out(&command, options.speed);
            } else {
                let _ = write!(out, "{command}");
                let _ = out.flush();
            }
            if options.wait && typed {
                match wait_for(&[Key::Enter, Key::Skip, Key::Quit]) {
                    Key::Skip => {
                        let _ = writeln!(out);
                        break;
                    }
                    Key::Quit => {
                        let _ = writeln!(out);
                        return shell.last_status;
                    }
                    _ => {}
                }
            }
            let _ = writeln!(out);
            let _ = out.flush();
            shell.run_interactive_line(&command);
            if let Some(status) = shell.exit_requested {
                return status;
            }
            let status = shell.last_status;
            if status == 0 {
                break;
            }
            report!("{}", failed(source, line, &command, status, options.color));
            report!("r: retry   s: skip   q: quit");
            match wait_for(&[Key::Retry, Key::Skip, Key::Quit]) {
                Key::Retry => typed = false,
                Key::Skip => break,
                _ => return status,
            }
        }
    }
    0
}

/// The failed command's line, marked.
fn failed(source: &str, line: usize, command: &str, status: i32, color: bool) -> String {
    let text = format!("✗ {source}:{line}: `{command}` failed with status {status}");
    match color {
        true => Color::Red.bold().reverse().paint(text).to_string(),
        false => text,
    }
}

fn show_prompt(shell: &Shell, color: bool) {
    let text = prompt::text(&shell.target);
    let shown = match color {
        true => prompt::colored(&text),
        false => text,
    };
    let mut out = std::io::stdout();
    let _ = write!(out, "{shown}");
    let _ = out.flush();
}

/// Writes `command` a character at a time, `speed` a second; a key pressed
/// meanwhile shows the rest at once.
fn type_out(command: &str, speed: u32) {
    let mut out = std::io::stdout();
    if speed == 0 {
        let _ = write!(out, "{command}");
        let _ = out.flush();
        return;
    }
    let pause = Duration::from_secs(1) / speed;
    let quiet = Quiet::start().ok();
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        let _ = write!(out, "{c}");
        let _ = out.flush();
        if quiet.is_some() && next_byte(pause).is_some() {
            let _ = write!(out, "{}", chars.as_str());
            let _ = out.flush();
            return;
        } else if quiet.is_none() {
            std::thread::sleep(pause);
        }
    }
}

/// Waits for one of `keys`; other keys are ignored.
fn wait_for(keys: &[Key]) -> Key {
    let _quiet = Quiet::start().ok();
    loop {
        let pressed = key(next_byte(Duration::from_secs(3600)).unwrap_or(Some(0)));
        if keys.contains(&pressed) {
            return pressed;
        }
    }
}

/// The next byte of stdin if one comes within `wait`: `Some(None)` at
/// the end of the input.
fn next_byte(wait: Duration) -> Option<Option<u8>> {
    let mut poll = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, millis) };
    if ready <= 0 {
        return None;
    }
    let mut byte = 0u8;
    // SAFETY: reads one byte into `byte`, which lives for the call.
    let read = unsafe { libc::read(libc::STDIN_FILENO, (&raw mut byte).cast(), 1) };
    match read {
        1 => Some(Some(byte)),
        0 => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_narration_and_commands_keep_their_line_numbers() {
        let script = "#!/usr/bin/env kubesh\n# Start the service\n\npython web.py &\n  # then ask it\ncurl web:8080/ \\\n  -s\necho 'a\nb'\n";
        assert_eq!(
            steps(script),
            [
                Step::Narration("# Start the service".into()),
                Step::Command {
                    line: 4,
                    text: "python web.py &".into()
                },
                Step::Narration("# then ask it".into()),
                Step::Command {
                    line: 6,
                    text: "curl web:8080/   -s".into()
                },
                Step::Command {
                    line: 8,
                    text: "echo 'a\nb'".into()
                },
            ]
        );
    }

    #[test]
    fn keys() {
        assert_eq!(key(Some(b'\r')), Key::Enter);
        assert_eq!(key(Some(b'r')), Key::Retry);
        assert_eq!(key(Some(0x03)), Key::Quit);
        assert_eq!(key(None), Key::Quit);
        assert_eq!(key(Some(b'x')), Key::Other);
    }
}
