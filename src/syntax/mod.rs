//! The shell language: turning a line of text into commands (`parse`),
//! commands into argument strings (`expand`), and words back into text
//! (`quote`). All are pure functions: no I/O, no shell state beyond what
//! `expand` is handed through [`Lookup`].

mod ast;
mod expand;
mod parse;
mod quote;

pub use ast::Command;
pub use expand::{Lookup, expand_word, expand_words};
pub use parse::{Continuation, parse_line};
pub use quote::{quote, quote_all};

#[cfg(test)]
mod properties {
    //! Properties over generated input: nothing panics the parser, and
    //! quoting any words then parsing them gives the same words back.
    //! `PROPTEST_CASES` sets how many inputs each property tries.

    use proptest::prelude::*;

    use super::{Lookup, expand_words, parse_line};

    struct Empty;

    impl Lookup for Empty {
        fn variable(&self, _name: &str) -> Option<String> {
            None
        }
        fn positional(&self) -> Vec<String> {
            Vec::new()
        }
        fn home(&self) -> Option<String> {
            None
        }
    }

    fn parse_and_expand(line: &str) {
        if let Ok(commands) = parse_line(line) {
            for command in commands {
                let _ = expand_words(&command.words, &Empty);
            }
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(line in any::<String>()) {
            parse_and_expand(&line);
        }

        #[test]
        fn shell_like_text_parses_or_fails_cleanly(line in r#"[a-z$'"\\{}:;&|<># ~=`@?0-9\t-]{0,300}"#) {
            parse_and_expand(&line);
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            parse_and_expand(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn errors_point_inside_the_line(line in r#"[a-z$'"\\{}:;&|# -]{0,80}"#) {
            if let Err(error) = parse_line(&line) {
                prop_assert!(error.column >= 1 && error.column <= line.chars().count() + 1);
            }
        }

        #[test]
        fn quoted_words_come_back_unchanged(words in proptest::collection::vec("[^\u{0}]{0,20}", 0..8)) {
            let line = std::iter::once("echo".to_string())
                .chain(words.iter().map(|w| super::quote(w)))
                .collect::<Vec<_>>()
                .join(" ");
            let commands = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
            prop_assert_eq!(commands.len(), 1);
            let expanded = expand_words(&commands[0].words, &Empty);
            prop_assert_eq!(&expanded[1..], &words[..]);
        }
    }

    #[test]
    fn huge_and_unbalanced_input_fails_cleanly() {
        for line in [
            "'".repeat(1 << 20),
            "\"".repeat((1 << 20) + 1),
            "${".repeat(1 << 18),
            "${A:-".repeat(1 << 16),
            "\\".repeat((1 << 20) + 1),
            ";".repeat(1 << 20),
        ] {
            parse_and_expand(&line);
        }
    }
}
