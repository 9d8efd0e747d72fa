//! The prompt: `[env@context::namespace]$ `, coloured on a terminal, and
//! what comes before it: output that did not end its last line (a JSON
//! body from `curl`, `printf` without `\n`) is ended with a visible mark,
//! so that drawing the prompt never erases it.

use std::io::Write;

use nu_ansi_term::{Color, Style};

/// The mark left after output whose last line had no end, as fish shows it.
pub const UNTERMINATED_MARK: &str = "⏎";

/// Ends an unterminated last line before the prompt, as zsh and fish do:
/// the mark, then spaces to the terminal's width, then a carriage return.
/// After a whole line the cursor was at the start of an empty line, so the
/// spaces fill it and the prompt, which clears its line, hides the mark;
/// after a partial line they wrap onto a new one, which the prompt takes,
/// and the partial line stays with the mark at its end.
pub fn end_unterminated_line(out: &mut impl Write, columns: usize, color: bool) {
    let mark = if color {
        Style::new().reverse().paint(UNTERMINATED_MARK).to_string()
    } else {
        UNTERMINATED_MARK.to_string()
    };
    let padding = " ".repeat(columns.saturating_sub(1));
    let _ = write!(out, "{mark}{padding}\r");
    let _ = out.flush();
}

/// The terminal's width in columns when stdout is a terminal (80 when it
/// does not say).
pub fn terminal_columns() -> Option<usize> {
    crate::terminal::columns(&std::io::stdout())
}

use crate::cluster::ClusterTarget;

/// The prompt's plain text.
pub fn text(target: &ClusterTarget) -> String {
    target.prompt()
}

/// The prompt's text with colours: environment magenta, context cyan,
/// namespace yellow.
pub fn colored(plain: &str) -> String {
    let Some(inner) = plain.strip_prefix('[').and_then(|p| p.strip_suffix("]$ ")) else {
        return plain.to_string();
    };
    let (env, rest) = match inner.split_once('@') {
        Some((env, rest)) => (Some(env), rest),
        None => (None, inner),
    };
    let (context, namespace) = rest.split_once("::").unwrap_or((rest, ""));
    let dim = Style::new().dimmed();
    let mut out = dim.paint("[").to_string();
    if let Some(env) = env {
        out.push_str(&Color::Magenta.bold().paint(env).to_string());
        out.push_str(&dim.paint("@").to_string());
    }
    out.push_str(&Color::Cyan.paint(context).to_string());
    out.push_str(&dim.paint("::").to_string());
    out.push_str(&Color::Yellow.paint(namespace).to_string());
    out.push_str(&dim.paint("]").to_string());
    out.push_str("$ ");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unterminated_line_is_ended_by_a_mark_and_a_full_line_of_spaces() {
        let mut out = Vec::new();
        end_unterminated_line(&mut out, 10, false);
        assert_eq!(String::from_utf8(out).unwrap(), "⏎         \r");
    }

    #[test]
    fn environment_part_only_when_selected() {
        let mut target = ClusterTarget {
            context: Some("kind".into()),
            namespace: "shop".into(),
            ..ClusterTarget::default()
        };
        assert_eq!(text(&target), "[kind::shop]$ ");
        target.environment = Some("dev".into());
        assert_eq!(text(&target), "[dev@kind::shop]$ ");
    }

    #[test]
    fn colours_keep_the_text() {
        let plain = "[dev@kind::shop]$ ";
        let colored = colored(plain);
        let stripped: String = strip_ansi(&colored);
        assert_eq!(stripped, plain);
        assert_ne!(colored, plain);
    }

    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
