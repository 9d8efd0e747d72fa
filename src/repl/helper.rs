//! The glue between the line editor (rustyline) and the shell: completion,
//! the synopsis hint after a builtin's name, and the coloured prompt.

use std::borrow::Cow;
use std::path::PathBuf;

use nu_ansi_term::Style;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::complete::{self, Vocabulary};
use super::prompt;
use crate::pages;

/// What the line editor asks about while a line is being typed.
pub struct ShellHelper {
    pub vocabulary: Vocabulary,
    pub home: Option<String>,
    pub color: bool,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let (start, candidates) =
            complete::complete(line, pos, &self.vocabulary, &cwd, self.home.as_deref());
        let pairs = candidates
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Highlighter for ShellHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(Style::new().dimmed().paint(hint).to_string())
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        if self.color && default {
            Cow::Owned(prompt::colored(prompt))
        } else {
            Cow::Borrowed(prompt)
        }
    }
}

/// The rest of a builtin's synopsis, shown dimmed after `NAME `; shown
/// only, never inserted.
pub struct SynopsisHint(String);

impl Hint for SynopsisHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for ShellHelper {
    type Hint = SynopsisHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SynopsisHint> {
        if pos != line.len() {
            return None;
        }
        let name = line.trim_start().strip_suffix(' ')?;
        let page = pages::find(name)?;
        let rest = page.synopsis.strip_prefix(name)?.trim_start();
        (!rest.is_empty()).then(|| SynopsisHint(rest.to_string()))
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}
