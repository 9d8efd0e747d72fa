//! The guided tour (`kubesh tour`, `tour` at the prompt): eight steps from
//! a first foreground program to `kill`, typed by the newcomer at the
//! normal prompt. The tour writes its files (built into the binary) to a
//! directory it names, says what to type and why, judges each line from
//! the shell's record of what ran ([`steps`]), hints after a wrong try,
//! and keeps its progress ([`progress`]) so that it goes on where it was
//! left (`tour stop`, Ctrl-D).

mod progress;
mod steps;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::shell::Shell;
use crate::shell::record::Guide;
use progress::Progress;
use steps::{Facts, STEPS, Verdict};

/// The tour's files: written to its directory, shipped by its steps.
const FILES: &[(&str, &str)] = &[
    ("hello.py", include_str!("files/hello.py")),
    ("web.py", include_str!("files/web.py")),
    ("client.py", include_str!("files/client.py")),
];

/// The directory the tour makes, in the one it starts in.
const DIRECTORY: &str = "kubesh-tour";

#[derive(Debug, thiserror::Error)]
pub enum TourError {
    #[error(
        "the tour's files cannot be written to {path}: {source}; start the tour in a directory you can write to"
    )]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot change to the tour's directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the tour cannot tell where it is: {0}")]
    Here(#[source] std::io::Error),
}

/// How the tour starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Where it was left (from the first step the first time).
    Resume,
    /// From the first step, with its files as they were shipped.
    Restart,
}

/// The tour while it is on: the shell's guide.
pub struct Tour {
    /// Steps done.
    done: usize,
    directory: PathBuf,
    /// Where progress is saved (none without a data directory).
    progress_file: Option<PathBuf>,
    /// The shell's record count after the last line judged.
    judged: u64,
    /// The reloads of web when the current step began.
    reloads_at_start: u64,
    /// Web must be launched from this shell before the current step (a
    /// tour resumed in a new session).
    catching_up: bool,
}

/// Starts (or resumes) the tour and makes it the shell's guide; says why
/// when it cannot start, and that it is over when it is.
pub fn start(shell: &mut Shell, how: Start) -> Result<(), TourError> {
    let progress_file = progress::file();
    let saved = match progress_file.as_deref().map(progress::load) {
        Some(Ok(saved)) => saved,
        Some(Err(error)) => {
            report!("kubesh: tour: {error}; starting from the first step");
            None
        }
        None => None,
    };
    let directory = match &saved {
        Some(saved) => saved.directory.clone(),
        None => std::env::current_dir()
            .map_err(TourError::Here)?
            .join(DIRECTORY),
    };
    let done = match (&saved, how) {
        (Some(saved), Start::Resume) => saved.done.min(STEPS.len()),
        _ => 0,
    };
    if done == STEPS.len() {
        say(&format!(
            "You have taken the whole tour; its files are in {}. `tour restart` takes it again.",
            directory.display()
        ));
        return Ok(());
    }
    let written = write_files(&directory, how == Start::Restart)?;
    let previous = std::env::current_dir().ok();
    std::env::set_current_dir(&directory).map_err(|source| TourError::Directory {
        path: directory.clone(),
        source,
    })?;
    if previous.as_deref() != Some(directory.as_path()) {
        shell.previous_dir = previous;
    }
    let mut tour = Tour {
        done,
        directory,
        progress_file,
        judged: shell.record.count(),
        reloads_at_start: 0,
        catching_up: false,
    };
    tour.save();
    if done == 0 {
        say(&format!(
            "\
Welcome to the kubesh tour: {} steps, a few minutes.
Each step says what to type at the prompt, and why; kubesh
checks that it happened, then goes on. `tour stop` or
Ctrl-D leaves the tour; `kubesh tour` goes on from there.",
            STEPS.len()
        ));
    } else {
        say(&format!(
            "Welcome back to the kubesh tour: on with step {} of {}.",
            done + 1,
            STEPS.len()
        ));
    }
    let files: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
    say(&format!(
        "Its files are in {} ({}{}); kubesh is in that directory now.",
        tour.directory.display(),
        files.join(", "),
        if written.is_empty() {
            ""
        } else {
            ", as shipped"
        }
    ));
    // A step after the second talks to web, launched from this shell.
    tour.catching_up = done > steps::WEB && !shell.watchable.contains_key("web");
    tour.present(shell);
    shell.guide = Some(Box::new(tour));
    Ok(())
}

/// Writes the tour's files into `directory`: all of them when `afresh`,
/// else those missing (a web.py edited in the reload step stays).
/// Returns the names written.
fn write_files(directory: &Path, afresh: bool) -> Result<Vec<&'static str>, TourError> {
    let failed = |source| TourError::Files {
        path: directory.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(directory).map_err(failed)?;
    let mut written = Vec::new();
    for (name, text) in FILES {
        let path = directory.join(name);
        if afresh || !path.exists() {
            std::fs::write(&path, text).map_err(failed)?;
            written.push(*name);
        }
    }
    Ok(written)
}

/// The widest line the tour prints: web terminals are 60 columns or more.
const COLUMNS: usize = 60;

/// Prints tour text on stdout, before the next prompt, its long lines
/// wrapped at [`COLUMNS`].
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", wrap(text, COLUMNS));
    let _ = out.flush();
}

/// `text` with each line longer than `width` broken between words (a
/// word longer than the width, such as a path, stays whole).
fn wrap(text: &str, width: usize) -> String {
    let mut wrapped = Vec::new();
    for line in text.split('\n') {
        if line.chars().count() <= width {
            wrapped.push(line.to_string());
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ') {
            let needed = current.chars().count() + 1 + word.chars().count();
            if !current.is_empty() && needed > width {
                wrapped.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        wrapped.push(current);
    }
    wrapped.join("\n")
}

impl Tour {
    /// Shows the current step: its title, why, and what to type.
    fn present(&mut self, shell: &Shell) {
        if self.catching_up {
            say(&format!(
                "\
Step {} talks to web, the service of step {}, started
from this shell; it is not, in this session. Type:
    python web.py &
(if kubesh says web is already running: `kill web` first)",
                self.done + 1,
                steps::WEB + 1
            ));
            return;
        }
        if self.done == steps::RELOAD {
            self.reloads_at_start = shell.reloads.reloaded("web");
        }
        let step = &STEPS[self.done];
        let mut text = format!(
            "\n── Tour, step {} of {}: {} ──\n{}\nType:\n",
            self.done + 1,
            STEPS.len(),
            step.title,
            step.why
        );
        for line in step.type_this {
            text.push_str("    ");
            text.push_str(line);
            text.push('\n');
        }
        say(text.trim_end());
    }

    fn save(&self) {
        let Some(path) = &self.progress_file else {
            return;
        };
        let progress = Progress {
            done: self.done,
            directory: self.directory.clone(),
        };
        if let Err(error) = progress::save(path, &progress) {
            report!("kubesh: tour: {error}; `kubesh tour` will start it again from there");
        }
    }

    /// Judges one command; `true` when the tour is over.
    fn judge(&mut self, shell: &Shell, ran: &crate::shell::record::Ran) -> bool {
        let index = if self.catching_up {
            steps::WEB
        } else {
            self.done
        };
        let facts = Facts {
            web_reloads: shell
                .reloads
                .reloaded("web")
                .saturating_sub(self.reloads_at_start),
        };
        match STEPS[index].judge(&facts, ran) {
            Verdict::Neutral => false,
            Verdict::Wrong(hint) => {
                say(&format!("✗ Not yet. {hint}"));
                false
            }
            Verdict::Done(seen) if self.catching_up => {
                self.catching_up = false;
                say(&format!("✓ {seen}\nOn with step {}.", self.done + 1));
                self.present(shell);
                false
            }
            Verdict::Done(seen) => {
                self.done += 1;
                self.save();
                say(&format!("✓ Step {} done: {seen}", self.done));
                if self.done == STEPS.len() {
                    say(&format!(
                        "\
\nThe tour is done: a program in a pod, a service, curl, ps,
logs, the cluster env, hot reload and kill. `help` lists
every builtin; your own programs run the same way. The
tour's files stay in {}; `tour restart` takes the tour again.",
                        self.directory.display()
                    ));
                    return true;
                }
                self.present(shell);
                false
            }
        }
    }

    /// Says where the tour stopped and how to go on.
    fn stopped(&self) {
        say(&format!(
            "The tour stopped at step {} of {}. `kubesh tour` (or `tour` at the prompt) goes on from there.",
            self.done + 1,
            STEPS.len()
        ));
    }
}

impl Guide for Tour {
    fn after_line(&mut self, shell: &mut Shell) -> bool {
        let ran: Vec<_> = shell.record.since(self.judged).cloned().collect();
        self.judged = shell.record.count();
        for ran in &ran {
            if self.judge(shell, ran) {
                return false;
            }
        }
        true
    }

    fn repeat(&mut self, shell: &mut Shell) {
        self.present(shell);
    }

    fn leave(&mut self, _: &mut Shell) {
        self.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_wrapped_between_words_and_short_ones_kept() {
        let text = "✓ Step 1 done: hello.py ran in a pod, its output came back, and it ended.\n    python hello.py";
        assert_eq!(
            wrap(text, 30),
            "✓ Step 1 done: hello.py ran in\na pod, its output came back,\nand it ended.\n    python hello.py"
        );
        let path = "in /a/very/long/path/that/does/not/fit/anywhere now";
        assert_eq!(
            wrap(path, 10),
            "in\n/a/very/long/path/that/does/not/fit/anywhere\nnow"
        );
    }
}
