//! The syntax tree of one line: commands made of words made of parts.

/// One command of a line, e.g. `A=1 B=2 node x.js a b &`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `NAME=value` words before the first ordinary word. With no words they
    /// set shell variables; before a command they apply to that command only.
    pub assignments: Vec<Assignment>,
    /// The command name and its arguments, unexpanded.
    pub words: Vec<Word>,
    /// A trailing `&`: run as a long-running, background process.
    pub background: bool,
    /// 1-based column (in characters) where the command starts.
    pub column: usize,
}

/// `NAME=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: Word,
}

/// One shell word: the concatenation of its parts after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(pub Vec<Part>);

/// A piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text taken as is (quotes and escapes already removed).
    Literal(String),
    /// `$NAME`, `${NAME}`, `${NAME:-default}` (`default_if_empty` true) or
    /// `${NAME-default}` (`default_if_empty` false). Special names: `?`,
    /// `#`, `@`, `$` and `0`–`9`.
    Variable {
        name: String,
        default: Option<Word>,
        default_if_empty: bool,
    },
    /// An unquoted `~` at the start of a word: the home directory.
    Home,
}

impl Word {
    /// A word made of one literal text.
    pub fn literal(text: &str) -> Word {
        Word(vec![Part::Literal(text.to_string())])
    }
}
