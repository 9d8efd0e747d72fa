//! The parser: one line of text to a list of [`Command`]s.
//!
//! The grammar is a small, predictable subset of the POSIX shell's: words
//! separated by blanks, `'single'` and `"double"` quotes, backslash escapes,
//! `#` comments, `NAME=value` assignments and prefixes, `$NAME`, `${NAME}`,
//! `${NAME:-default}`, `;` between commands, a trailing `&`, and a leading
//! backtick as a short form of `literally` (pass the rest to kubectl).
//! Pipes, redirections and `&&`/`||` are refused with a clear message rather
//! than silently taken as text. Positions in errors are 1-based columns
//! counted in characters.
//!
//! The lexer is written here rather than taken from shlex, because shlex
//! drops what expansion needs to know (which text was single-quoted, where
//! `$NAME` stood); shlex is used for the reverse, quoting words for display.

use std::fmt;

use super::ast::{Assignment, Command, Part, Word};

/// What is wrong with a line, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
    /// The line may go on in the next one (a script can supply it).
    pub continues: Option<Continuation>,
}

/// How an incomplete line joins the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// A trailing backslash: drop it and the line break.
    Backslash,
    /// Inside quotes: the line break is part of the text.
    Newline,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses one line (without its newline) into commands. An empty line or a
/// comment yields no commands.
pub fn parse_line(line: &str) -> Result<Vec<Command>, ParseError> {
    Parser {
        chars: line.chars().collect(),
        pos: 0,
        nesting: 0,
    }
    .commands()
}

/// Where a word ends, beyond blanks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// An ordinary word of a command.
    Command,
    /// A word of a backtick passthrough: an unquoted backtick ends it.
    Passthrough,
    /// The default of `${NAME:-default}`: ends at `}`.
    Default,
}

/// How deeply `${A:-${B:-…}}` may nest.
const MAX_NESTING: usize = 32;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// How many `${…:-` defaults the parser is inside.
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn error<T>(&self, position: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: position + 1,
            message: message.into(),
            continues: None,
        })
    }

    fn incomplete<T>(
        &self,
        position: usize,
        message: &str,
        continuation: Continuation,
    ) -> Result<T, ParseError> {
        Err(ParseError {
            column: position + 1,
            message: message.to_string(),
            continues: Some(continuation),
        })
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(c) if is_blank(c)) {
            self.pos += 1;
        }
    }

    fn commands(mut self) -> Result<Vec<Command>, ParseError> {
        let mut commands = Vec::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                None | Some('#') => return Ok(commands),
                Some(c @ (';' | '&')) => {
                    return self.error(self.pos, format!("`{c}` with no command before it"));
                }
                Some(_) => commands.push(self.command()?),
            }
        }
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let column = self.pos + 1;
        let mut context = Context::Command;
        let mut words = Vec::new();
        if self.peek() == Some('`') {
            self.pos += 1;
            context = Context::Passthrough;
            words.push(Word::literal("literally"));
        }
        let mut assignments = Vec::new();
        let mut background = false;
        loop {
            self.skip_blanks();
            let Some(c) = self.peek() else { break };
            match c {
                '#' => {
                    self.pos = self.chars.len();
                    break;
                }
                ';' => {
                    self.pos += 1;
                    break;
                }
                '&' if self.peek_at(1) == Some('&') => {
                    return self.error(
                        self.pos,
                        "`&&` is not supported; put the commands on separate lines \
                         (scripts stop at the first failure)",
                    );
                }
                '&' => {
                    self.pos += 1;
                    background = true;
                    break;
                }
                '|' => {
                    return self.error(
                        self.pos,
                        "pipes and `||` are not supported; quote `|` to pass it as text",
                    );
                }
                '<' | '>' => {
                    return self.error(
                        self.pos,
                        format!("redirection is not supported; quote `{c}` to pass it as text"),
                    );
                }
                '`' if context == Context::Passthrough => {
                    self.pos += 1;
                }
                _ => {
                    if words.is_empty()
                        && let Some(name) = self.assignment_name()
                    {
                        let value = self.word(context)?;
                        assignments.push(Assignment { name, value });
                    } else {
                        words.push(self.word(context)?);
                    }
                }
            }
        }
        Ok(Command {
            assignments,
            words,
            background,
            column,
        })
    }

    /// At `NAME=`, consumes it and returns the name.
    fn assignment_name(&mut self) -> Option<String> {
        let start = self.pos;
        let mut end = start;
        while let Some(&c) = self.chars.get(end) {
            if c == '_' || c.is_ascii_alphabetic() || (end > start && c.is_ascii_digit()) {
                end += 1;
            } else {
                break;
            }
        }
        if end > start && self.chars.get(end) == Some(&'=') {
            self.pos = end + 1;
            Some(self.chars[start..end].iter().collect())
        } else {
            None
        }
    }

    /// Reads one word, stopping before the first unquoted character that ends
    /// a word in `context`.
    fn word(&mut self, context: Context) -> Result<Word, ParseError> {
        let start = self.pos;
        let mut builder = WordBuilder::default();
        while let Some(c) = self.peek() {
            let ends_word = match context {
                Context::Default => c == '}',
                Context::Command | Context::Passthrough => {
                    is_blank(c) || matches!(c, ';' | '&' | '|' | '<' | '>')
                }
            };
            if ends_word {
                break;
            }
            match c {
                '\'' => self.single_quoted(&mut builder)?,
                '"' => self.double_quoted(&mut builder)?,
                '\\' => {
                    let Some(next) = self.peek_at(1) else {
                        return self.incomplete(
                            self.pos,
                            "the line ends with a backslash; continue the line in a script, \
                             or write `\\\\` for a backslash",
                            Continuation::Backslash,
                        );
                    };
                    builder.push_char(next);
                    self.pos += 2;
                }
                '$' => self.dollar(&mut builder)?,
                '~' if self.pos == start && context != Context::Default && self.tilde_ends() => {
                    builder.push_part(Part::Home);
                    self.pos += 1;
                }
                '`' if context == Context::Passthrough => break,
                '`' => {
                    return self.error(
                        self.pos,
                        "a backtick passes a command to kubectl only at the start of a \
                         command; quote it to pass it as text",
                    );
                }
                _ => {
                    builder.push_char(c);
                    self.pos += 1;
                }
            }
        }
        Ok(builder.finish())
    }

    fn tilde_ends(&self) -> bool {
        match self.peek_at(1) {
            None => true,
            Some(c) => c == '/' || is_blank(c) || matches!(c, ';' | '&'),
        }
    }

    fn single_quoted(&mut self, builder: &mut WordBuilder) -> Result<(), ParseError> {
        let open = self.pos;
        self.pos += 1;
        builder.quoted = true;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '\'' {
                return Ok(());
            }
            builder.push_char(c);
        }
        self.incomplete(
            open,
            "unterminated single quote: add the closing `'`",
            Continuation::Newline,
        )
    }

    fn double_quoted(&mut self, builder: &mut WordBuilder) -> Result<(), ParseError> {
        let open = self.pos;
        self.pos += 1;
        builder.quoted = true;
        while let Some(c) = self.peek() {
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(());
                }
                '\\' => match self.peek_at(1) {
                    Some(next @ ('"' | '\\' | '$' | '`')) => {
                        builder.push_char(next);
                        self.pos += 2;
                    }
                    _ => {
                        builder.push_char('\\');
                        self.pos += 1;
                    }
                },
                '$' => self.dollar(builder)?,
                _ => {
                    builder.push_char(c);
                    self.pos += 1;
                }
            }
        }
        self.incomplete(
            open,
            "unterminated double quote: add the closing `\"`",
            Continuation::Newline,
        )
    }

    /// At a `$`: a variable reference, or a literal dollar sign.
    fn dollar(&mut self, builder: &mut WordBuilder) -> Result<(), ParseError> {
        let dollar = self.pos;
        match self.peek_at(1) {
            Some('{') => {
                self.pos += 2;
                self.braced_variable(dollar, builder)
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                self.pos += 1;
                let name = self.identifier();
                builder.push_part(variable(name, None, false));
                Ok(())
            }
            Some(c) if is_special_name(c) => {
                self.pos += 2;
                builder.push_part(variable(c.to_string(), None, false));
                Ok(())
            }
            _ => {
                builder.push_char('$');
                self.pos += 1;
                Ok(())
            }
        }
    }

    fn identifier(&mut self) -> String {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// After `${`: `NAME}`, `NAME:-default}` or `NAME-default}`.
    fn braced_variable(
        &mut self,
        dollar: usize,
        builder: &mut WordBuilder,
    ) -> Result<(), ParseError> {
        let name = match self.peek() {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => self.identifier(),
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while matches!(self.peek(), Some(d) if d.is_ascii_digit()) {
                    self.pos += 1;
                }
                self.chars[start..self.pos].iter().collect()
            }
            Some(c) if is_special_name(c) => {
                self.pos += 1;
                c.to_string()
            }
            None => return self.unterminated_brace(dollar),
            Some(_) => return self.bad_substitution(dollar),
        };
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                builder.push_part(variable(name, None, false));
                Ok(())
            }
            Some(':') if self.peek_at(1) == Some('-') => {
                self.pos += 2;
                self.variable_default(dollar, name, true, builder)
            }
            Some('-') => {
                self.pos += 1;
                self.variable_default(dollar, name, false, builder)
            }
            None => self.unterminated_brace(dollar),
            Some(_) => self.bad_substitution(dollar),
        }
    }

    fn variable_default(
        &mut self,
        dollar: usize,
        name: String,
        if_empty: bool,
        builder: &mut WordBuilder,
    ) -> Result<(), ParseError> {
        if self.nesting >= MAX_NESTING {
            return self.error(
                dollar,
                format!("defaults nest more than {MAX_NESTING} levels deep"),
            );
        }
        self.nesting += 1;
        let default = self.word(Context::Default);
        self.nesting -= 1;
        let default = default?;
        if self.peek() != Some('}') {
            return self.unterminated_brace(dollar);
        }
        self.pos += 1;
        builder.push_part(variable(name, Some(default), if_empty));
        Ok(())
    }

    fn unterminated_brace<T>(&self, dollar: usize) -> Result<T, ParseError> {
        self.error(dollar, "unterminated `${`: add the closing `}`")
    }

    fn bad_substitution<T>(&self, dollar: usize) -> Result<T, ParseError> {
        self.error(
            dollar,
            "bad substitution: write `${NAME}`, `${NAME:-default}` or `${NAME-default}`",
        )
    }
}

fn variable(name: String, default: Option<Word>, default_if_empty: bool) -> Part {
    Part::Variable {
        name,
        default,
        default_if_empty,
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

fn is_special_name(c: char) -> bool {
    matches!(c, '?' | '#' | '@' | '$') || c.is_ascii_digit()
}

/// Collects the parts of a word, merging adjacent literal text.
#[derive(Default)]
struct WordBuilder {
    parts: Vec<Part>,
    text: String,
    /// Quotes were seen: the word exists even when empty (`''`).
    quoted: bool,
}

impl WordBuilder {
    fn push_char(&mut self, c: char) {
        self.text.push(c);
    }

    fn push_part(&mut self, part: Part) {
        self.flush();
        self.parts.push(part);
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.parts
                .push(Part::Literal(std::mem::take(&mut self.text)));
        }
    }

    fn finish(mut self) -> Word {
        self.flush();
        if self.parts.is_empty() && self.quoted {
            self.parts.push(Part::Literal(String::new()));
        }
        Word(self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.to_string())
    }

    fn var(name: &str) -> Part {
        variable(name.to_string(), None, false)
    }

    fn words(line: &str) -> Vec<Vec<Part>> {
        let commands = parse_line(line).unwrap();
        assert_eq!(commands.len(), 1, "{line}");
        commands[0].words.iter().map(|w| w.0.clone()).collect()
    }

    fn error(line: &str) -> ParseError {
        parse_line(line).unwrap_err()
    }

    #[test]
    fn splits_words_on_blanks() {
        assert_eq!(
            words("echo  a\tb "),
            vec![vec![lit("echo")], vec![lit("a")], vec![lit("b")]]
        );
    }

    #[test]
    fn empty_lines_and_comments_have_no_commands() {
        assert!(parse_line("").unwrap().is_empty());
        assert!(parse_line("   ").unwrap().is_empty());
        assert!(parse_line("# just a note").unwrap().is_empty());
        assert!(parse_line("#!/usr/bin/env kubesh").unwrap().is_empty());
    }

    #[test]
    fn comment_after_words_is_dropped_but_hash_inside_a_word_is_text() {
        assert_eq!(
            words("echo a # note"),
            vec![vec![lit("echo")], vec![lit("a")]]
        );
        assert_eq!(words("echo a#b"), vec![vec![lit("echo")], vec![lit("a#b")]]);
    }

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(
            words(r#"echo 'a $HOME \n "b"'"#),
            vec![vec![lit("echo")], vec![lit(r#"a $HOME \n "b""#)]]
        );
    }

    #[test]
    fn double_quotes_expand_variables_and_honour_escapes() {
        assert_eq!(
            words(r#"echo "x $A \$B \" \\ \n""#),
            vec![
                vec![lit("echo")],
                vec![lit("x "), var("A"), lit(r#" $B " \ \n"#)]
            ]
        );
    }

    #[test]
    fn empty_quotes_make_an_empty_word() {
        assert_eq!(
            words("echo '' \"\""),
            vec![vec![lit("echo")], vec![lit("")], vec![lit("")]]
        );
    }

    #[test]
    fn backslash_escapes_the_next_character() {
        assert_eq!(
            words(r"echo a\ b \$X"),
            vec![vec![lit("echo")], vec![lit("a b")], vec![lit("$X")]]
        );
    }

    #[test]
    fn variables_in_all_forms() {
        assert_eq!(
            words("echo $A ${B}c $? $# $@ $1 $$ $"),
            vec![
                vec![lit("echo")],
                vec![var("A")],
                vec![var("B"), lit("c")],
                vec![var("?")],
                vec![var("#")],
                vec![var("@")],
                vec![var("1")],
                vec![var("$")],
                vec![lit("$")],
            ]
        );
    }

    #[test]
    fn defaults_may_hold_blanks_quotes_and_variables() {
        let parsed = words(r#"echo ${A:-x y} ${B-"q}"$C}"#);
        assert_eq!(
            parsed[1],
            vec![variable("A".into(), Some(Word(vec![lit("x y")])), true)]
        );
        assert_eq!(
            parsed[2],
            vec![variable(
                "B".into(),
                Some(Word(vec![lit("q}"), var("C")])),
                false
            )]
        );
    }

    #[test]
    fn tilde_only_at_the_start_of_a_word() {
        assert_eq!(words("cd ~"), vec![vec![lit("cd")], vec![Part::Home]]);
        assert_eq!(
            words("cd ~/src"),
            vec![vec![lit("cd")], vec![Part::Home, lit("/src")]]
        );
        assert_eq!(
            words("echo a~ '~' ~x"),
            vec![
                vec![lit("echo")],
                vec![lit("a~")],
                vec![lit("~")],
                vec![lit("~x")]
            ]
        );
    }

    #[test]
    fn assignments_and_prefixes() {
        let commands = parse_line("A=1 B='x y' node x.js C=3 &").unwrap();
        let command = &commands[0];
        assert_eq!(command.assignments.len(), 2);
        assert_eq!(command.assignments[0].name, "A");
        assert_eq!(command.assignments[1].value, Word(vec![lit("x y")]));
        assert_eq!(
            command.words.len(),
            3,
            "C=3 after the command is an argument"
        );
        assert!(command.background);

        let only = parse_line("X=").unwrap();
        assert_eq!(only[0].assignments[0].value, Word(vec![]));
        assert!(only[0].words.is_empty());

        assert_eq!(
            words("'A=1' x")[0],
            vec![lit("A=1")],
            "a quoted name is not an assignment"
        );
        assert_eq!(words("1A=1")[0], vec![lit("1A=1")]);
    }

    #[test]
    fn semicolons_separate_commands_and_ampersand_marks_background() {
        let commands = parse_line("echo a; node s.js & echo b;").unwrap();
        assert_eq!(commands.len(), 3);
        assert!(!commands[0].background);
        assert!(commands[1].background);
        assert_eq!(commands[1].column, 9);
        assert!(!commands[2].background);
        assert_eq!(words("echo 'a;b' a\\;b")[1], vec![lit("a;b")]);
    }

    #[test]
    fn leading_backtick_is_literally() {
        let parsed = words("`get pods -l 'app=x'`");
        assert_eq!(
            parsed,
            vec![
                vec![lit("literally")],
                vec![lit("get")],
                vec![lit("pods")],
                vec![lit("-l")],
                vec![lit("app=x")]
            ]
        );
        assert_eq!(words("` get pods")[1], vec![lit("get")]);
    }

    #[test]
    fn errors_name_the_column() {
        assert_eq!(error("echo 'abc").column, 6);
        assert!(error("echo 'abc").message.contains("single quote"));
        assert_eq!(error("echo a \"b").column, 8);
        assert_eq!(error("echo ${A").column, 6);
        assert_eq!(error("echo ${A:-x").column, 6);
        assert_eq!(error("echo ${%}").column, 6);
        assert_eq!(error("echo a\\").column, 7);
        assert_eq!(error("echo a\\").continues, Some(Continuation::Backslash));
        assert_eq!(error("echo 'a").continues, Some(Continuation::Newline));
        assert_eq!(error("echo ${A").continues, None);
        assert_eq!(error("echo a | b").column, 8);
        assert_eq!(error("echo a > f").column, 8);
        assert_eq!(error("a && b").column, 3);
        assert_eq!(error("; a").column, 1);
        assert_eq!(error("echo `x`").column, 6);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let line = format!("echo {}x{}", "${A:-".repeat(40), "}".repeat(40));
        assert!(error(&line).message.contains("nest"));
        let line = format!("echo {}x{}", "${A:-".repeat(5), "}".repeat(5));
        assert_eq!(parse_line(&line).unwrap().len(), 1);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(error("echo é 'x").column, 8);
    }

    #[test]
    fn a_megabyte_line_parses() {
        let line = format!("echo {}", "x".repeat(1 << 20));
        assert_eq!(words(&line)[1], vec![lit(&"x".repeat(1 << 20))]);
    }
}
