//! Expansion: words to argument strings, given the shell's variables.
//!
//! A variable's value is inserted as one piece of text: kubesh does not
//! split values on blanks or expand globs, so a value reaches a command (and
//! later a program in the cluster) exactly as it was set. The one exception
//! is a word that is exactly `$@` (quoted or not): it becomes one argument per
//! positional parameter, as `"$@"` does in other shells.

use super::ast::{Part, Word};

/// The shell state expansion reads.
pub trait Lookup {
    /// The value of a variable, including the special ones (`?`, `#`, `@`,
    /// `$`, `0`–`9`). `None` when it is not set.
    fn variable(&self, name: &str) -> Option<String>;
    /// The positional parameters `$1…`, for `$@`.
    fn positional(&self) -> Vec<String>;
    /// The home directory, for `~`.
    fn home(&self) -> Option<String>;
}

/// Expands one word into one string.
pub fn expand_word(word: &Word, lookup: &dyn Lookup) -> String {
    let mut text = String::new();
    for part in &word.0 {
        match part {
            Part::Literal(s) => text.push_str(s),
            Part::Home => text.push_str(&lookup.home().unwrap_or_else(|| "~".to_string())),
            Part::Variable {
                name,
                default,
                default_if_empty,
            } => {
                let value = lookup.variable(name);
                let use_default = match &value {
                    None => true,
                    Some(v) => *default_if_empty && v.is_empty(),
                };
                match (use_default, default) {
                    (true, Some(default)) => text.push_str(&expand_word(default, lookup)),
                    _ => text.push_str(&value.unwrap_or_default()),
                }
            }
        }
    }
    text
}

/// Expands the words of a command into its arguments.
pub fn expand_words(words: &[Word], lookup: &dyn Lookup) -> Vec<String> {
    let mut args = Vec::with_capacity(words.len());
    for word in words {
        if is_all_positional(word) {
            args.extend(lookup.positional());
        } else {
            args.push(expand_word(word, lookup));
        }
    }
    args
}

fn is_all_positional(word: &Word) -> bool {
    matches!(word.0.as_slice(), [Part::Variable { name, default: None, .. }] if name == "@")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::syntax::parse_line;

    struct Vars(HashMap<&'static str, &'static str>);

    impl Lookup for Vars {
        fn variable(&self, name: &str) -> Option<String> {
            match name {
                "@" => Some(self.positional().join(" ")),
                _ => self.0.get(name).map(|v| v.to_string()),
            }
        }
        fn positional(&self) -> Vec<String> {
            vec!["a b".into(), "c".into()]
        }
        fn home(&self) -> Option<String> {
            Some("/home/u".into())
        }
    }

    fn expand(line: &str) -> Vec<String> {
        let vars = Vars(HashMap::from([("A", "1"), ("EMPTY", ""), ("SP", "x  y")]));
        let commands = parse_line(line).unwrap();
        expand_words(&commands[0].words, &vars)
    }

    #[test]
    fn variables_expand_without_splitting() {
        assert_eq!(
            expand("echo $A ${A}2 $SP \"$SP\""),
            ["echo", "1", "12", "x  y", "x  y"]
        );
    }

    #[test]
    fn unset_variables_are_empty_words() {
        assert_eq!(expand("echo $NOPE x"), ["echo", "", "x"]);
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(
            expand("echo ${NOPE:-d} ${EMPTY:-d} ${EMPTY-d} ${A:-d} ${NOPE:-$A-x}"),
            ["echo", "d", "d", "", "1", "1-x"]
        );
    }

    #[test]
    fn at_alone_splats_positionals_and_joins_inside_a_word() {
        assert_eq!(expand("echo \"$@\" x$@"), ["echo", "a b", "c", "xa b c"]);
    }

    #[test]
    fn tilde_is_home() {
        assert_eq!(expand("cd ~/src '~'"), ["cd", "/home/u/src", "~"]);
    }

    #[test]
    fn single_quotes_prevent_expansion() {
        assert_eq!(expand("echo '$A'"), ["echo", "$A"]);
    }
}
