//! Interactive mode: the prompt, line editing (rustyline), persistent
//! history, completion and Ctrl-C / Ctrl-D handling.

mod complete;
mod helper;
mod prompt;

use std::path::{Path, PathBuf};

use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use crate::builtins;
use crate::shell::Shell;
use crate::status::{STATUS_INTERRUPTED, STATUS_USAGE};
use complete::Vocabulary;
use helper::ShellHelper;

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
    // Reload lines appear above the prompt, not in the middle of the line.
    if let Ok(printer) = editor.create_external_printer() {
        let printer = std::sync::Mutex::new(printer);
        shell.printer = std::sync::Arc::new(move |line: String| {
            if let Ok(mut printer) = printer.lock() {
                let _ = rustyline::ExternalPrinter::print(&mut *printer, format!("{line}\n"));
            }
        });
    }
    let mut read_errors = 0;
    loop {
        refresh_vocabulary(&mut editor, shell);
        shell.interrupt.take();
        if let Some(columns) = prompt::terminal_columns() {
            prompt::end_unterminated_line(&mut std::io::stdout(), columns, color);
        }
        match editor.readline(&prompt::text(&shell.target)) {
            Ok(line) => {
                read_errors = 0;
                if !line.trim().is_empty() {
                    remember(&mut editor, history_file.as_deref(), shell, &line);
                }
                shell.run_interactive_line(&line);
                if let Some(status) = shell.exit_requested {
                    return status;
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
