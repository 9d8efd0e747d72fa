//! The shell language: turning a line of text into commands (`parse`) and
//! commands into argument strings (`expand`). Both are pure functions: no
//! I/O, no shell state beyond what `expand` is handed through [`Lookup`].

mod ast;
mod expand;
mod parse;

pub use ast::Command;
pub use expand::{Lookup, expand_word, expand_words};
pub use parse::parse_line;
