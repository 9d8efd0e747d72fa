//! A block of several lines pasted at the prompt (bracketed paste, then
//! Enter): the lines it holds, each run in turn as if typed, and the rows
//! the line editor drew it on, which are cleared so that each line is shown
//! again after its own prompt, followed by its output.

use unicode_width::UnicodeWidthChar;

use crate::syntax::{Continuation, parse_line};

/// The command lines of a pasted block, blank ones left out. A line with
/// a quote still open, or ending in a backslash, goes on in the next one,
/// as in a script.
pub fn split(block: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending: Option<String> = None;
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let text = match pending.take() {
            Some(mut before) => {
                before.push_str(line);
                before
            }
            None => line.to_string(),
        };
        match parse_line(&text) {
            Err(error) if error.continues == Some(Continuation::Backslash) => {
                let mut text = text;
                text.pop();
                pending = Some(text);
            }
            Err(error) if error.continues.is_some() => pending = Some(text + "\n"),
            _ if text.trim().is_empty() => {}
            _ => lines.push(text),
        }
    }
    if let Some(rest) = pending
        && !rest.trim().is_empty()
    {
        // Its error is said when it runs.
        lines.push(rest.trim_end_matches('\n').to_string());
    }
    lines
}

/// How many rows up the start of the prompt is once the line editor has
/// accepted `text` after `prompt` on a terminal of `columns` and moved to
/// the next line: the rows it took (wrapped as the editor wraps them) and
/// the new one.
pub fn rows_drawn(prompt: &str, text: &str, columns: usize) -> usize {
    let columns = columns.max(1);
    let (mut row, mut column) = (0usize, 0usize);
    for c in prompt.chars().chain(text.chars()) {
        if c == '\n' {
            row += 1;
            column = 0;
            continue;
        }
        let width = c.width().unwrap_or(0);
        column += width;
        if column > columns {
            row += 1;
            column = width;
        }
    }
    if column == columns {
        row += 1;
    }
    row + 1
}

/// The escape sequences that move the cursor `rows` up to the start of the
/// row and clear everything below it.
pub fn erase_rows(rows: usize) -> String {
    if rows == 0 {
        return "\r\x1b[J".to_string();
    }
    format!("\x1b[{rows}A\r\x1b[J")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_cut_into_its_lines_blank_ones_left_out() {
        assert_eq!(
            split("echo p-one\necho p-two\n\necho p-three\n"),
            ["echo p-one", "echo p-two", "echo p-three"]
        );
        assert_eq!(split("echo a\r\necho b"), ["echo a", "echo b"]);
    }

    #[test]
    fn an_open_quote_or_a_backslash_goes_on_in_the_next_line() {
        assert_eq!(
            split("echo 'one\ntwo'\necho three"),
            ["echo 'one\ntwo'", "echo three"]
        );
        assert_eq!(split("echo a \\\nb\necho c"), ["echo a b", "echo c"]);
        assert_eq!(split("echo 'open"), ["echo 'open"]);
    }

    #[test]
    fn rows_count_wrapped_lines_as_the_editor_draws_them() {
        // "$ " + 8 characters on 60 columns, then two more lines.
        assert_eq!(rows_drawn("$ ", "echo one\necho two\necho 3", 60), 3);
        // 2 + 70 characters wrap onto a second row.
        assert_eq!(rows_drawn("$ ", &"x".repeat(70), 60), 2);
        // Exactly the width: the cursor goes to the next row.
        assert_eq!(rows_drawn("$ ", &"x".repeat(58), 60), 2);
        assert_eq!(rows_drawn("$ ", "", 60), 1);
    }
}
