//! The glue between the line editor (rustyline) and the shell: completion
//! and the coloured prompt.

use std::borrow::Cow;
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::complete::{self, Vocabulary};
use super::prompt;

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

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}
