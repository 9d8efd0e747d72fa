//! Interactive mode: the prompt, line editing (rustyline), persistent
//! history, completion and Ctrl-C / Ctrl-D handling.

mod complete;
pub mod demo;
mod helper;
mod paste;
mod plain;
mod prompt;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use crate::builtins;
use crate::shell::Shell;
use crate::status::{STATUS_INTERRUPTED, STATUS_USAGE};
use crate::terminal;
use complete::Vocabulary;
use helper::ShellHelper;
use plain::{Got, PlainReader};

/// Where lines come from: the line editor, or at a terminal that cannot
/// redraw, the plain reader.
enum Reader {
    Editor,
    Plain(PlainReader),
}

/// Reads and runs lines until Ctrl-D or `exit`; returns the exit status.
pub fn run(shell: &mut Shell, history_file: Option<PathBuf>, color: bool) -> i32 {
    let mut editor = match new_editor(color) {
        Ok(editor) => editor,
        Err(error) => {
            report!("kubesh: cannot set up the terminal: {error}");
            return 1;
        }
    };
    if let Some(path) = &history_file {
        load_history(&mut editor, path, shell);
    }
    let redraws = terminal::can_redraw(&std::io::stdout());
    let mut reader = match redraws {
        true => Reader::Editor,
        false => Reader::Plain(PlainReader::default()),
    };
    // Reload lines appear above the prompt, not in the middle of the line.
    if redraws && let Ok(printer) = editor.create_external_printer() {
        let printer = std::sync::Mutex::new(printer);
        shell.printer = std::sync::Arc::new(move |line: String| {
            if let Ok(mut printer) = printer.lock() {
                let _ = rustyline::ExternalPrinter::print(&mut *printer, format!("{line}\n"));
            }
        });
    }
    // The lines of a pasted block not yet run.
    let mut pasted: VecDeque<String> = VecDeque::new();
    let mut read_errors = 0;
    loop {
        refresh_vocabulary(&mut editor, shell);
        shell.interrupt.take();
        let prompt = prompt::text(&shell.target);
        if redraws && let Some(columns) = prompt::terminal_columns() {
            prompt::end_unterminated_line(&mut std::io::stdout(), columns, color);
        }
        let read = match (pasted.pop_front(), &mut reader) {
            (Some(line), _) => {
                show_pasted_line(&prompt, &line, color);
                Ok(line)
            }
            (None, Reader::Editor) => editor.readline(&prompt),
            (None, Reader::Plain(plain)) => read_plain(plain, &prompt),
        };
        match read {
            Ok(line) if line.contains('\n') => {
                // A pasted block: its lines run one by one, each shown
                // after its prompt as if typed.
                if let Some(columns) = prompt::terminal_columns() {
                    let rows = paste::rows_drawn(&prompt, &line, columns);
                    let mut out = std::io::stdout();
                    let _ = write!(out, "{}", paste::erase_rows(rows));
                }
                pasted.extend(paste::split(&line));
            }
            Ok(line) => {
                read_errors = 0;
                if !line.trim().is_empty() {
                    remember(&mut editor, history_file.as_deref(), shell, &line);
                }
                let interrupted = shell.run_interactive_line(&line);
                if let Some(status) = shell.exit_requested {
                    return status;
                }
                if interrupted {
                    let dropped = pasted.len()
                        + match &mut reader {
                            Reader::Plain(plain) => plain.discard(),
                            Reader::Editor => 0,
                        };
                    pasted.clear();
                    if dropped > 0 {
                        report!("kubesh: interrupted; {} not run", lines(dropped));
                    }
                }
            }
            Err(ReadlineError::Interrupted) => shell.last_status = STATUS_INTERRUPTED,
            Err(ReadlineError::Eof) => {
                report!("exit");
                return shell.last_status;
            }
            Err(ReadlineError::Io(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                report!("kubesh: the line is not valid UTF-8; nothing was run");
                shell.last_status = STATUS_USAGE;
            }
            Err(error) => {
                report!("kubesh: cannot read the line: {error}");
                read_errors += 1;
                if read_errors >= 3 {
                    return 1;
                }
            }
        }
    }
}

/// "1 pasted line", "3 pasted lines".
fn lines(count: usize) -> String {
    match count {
        1 => "1 pasted line".to_string(),
        _ => format!("{count} pasted lines"),
    }
}

/// Shows a line of a pasted block as if it had been typed at the prompt.
fn show_pasted_line(prompt: &str, line: &str, color: bool) {
    let prompt = match color {
        true => prompt::colored(prompt),
        false => prompt.to_string(),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{prompt}{line}");
    let _ = out.flush();
}

/// A line from the plain reader, its outcomes as the line editor gives them.
fn read_plain(plain: &mut PlainReader, prompt: &str) -> rustyline::Result<String> {
    match plain.read_line(prompt)? {
        Got::Line(bytes) => String::from_utf8(bytes)
            .map_err(|_| ReadlineError::Io(std::io::Error::from(std::io::ErrorKind::InvalidData))),
        Got::Interrupted => Err(ReadlineError::Interrupted),
        Got::Eof => Err(ReadlineError::Eof),
    }
}

fn new_editor(color: bool) -> rustyline::Result<Editor<ShellHelper, FileHistory>> {
    let config = Config::builder()
        .history_ignore_space(true)
        .history_ignore_dups(true)?
        .max_history_size(10_000)?
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper {
        vocabulary: Vocabulary::default(),
        home: None,
        color,
    }));
    Ok(editor)
}

fn load_history(editor: &mut Editor<ShellHelper, FileHistory>, path: &Path, shell: &mut Shell) {
    if path.exists() {
        if let Err(error) = editor.load_history(path) {
            report!(
                "kubesh: history in {} could not be read ({error}); starting without it",
                path.display()
            );
        }
    } else if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    shell.history = editor.history().iter().cloned().collect();
}

fn remember(
    editor: &mut Editor<ShellHelper, FileHistory>,
    path: Option<&Path>,
    shell: &mut Shell,
    line: &str,
) {
    if editor.add_history_entry(line).unwrap_or(false) {
        shell.history.push(line.to_string());
        if let Some(path) = path {
            create_private(path);
            if let Err(error) = editor.append_history(path) {
                report!(
                    "kubesh: history could not be saved to {}: {error}",
                    path.display()
                );
            }
        }
    }
}

/// Creates the history file readable by its owner only, if it is missing.
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path);
}

fn refresh_vocabulary(editor: &mut Editor<ShellHelper, FileHistory>, shell: &Shell) {
    let Some(helper) = editor.helper_mut() else {
        return;
    };
    helper.vocabulary.commands = shell
        .runtimes
        .commands()
        .chain(builtins::names())
        .map(str::to_string)
        .collect();
    helper.vocabulary.variables = shell
        .vars
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()))
        .chain(["?", "#", "@", "0"].map(String::from))
        .collect();
    helper.vocabulary.variables.sort();
    helper.home = shell.vars.get("HOME");
    helper.vocabulary.arguments = vec![Box::new(complete::ClusterWords {
        dprocs: shell.known_dprocs.clone(),
        contexts: shell.target.contexts().unwrap_or_default(),
    })];
}
