//! The prompt: `[env@context::namespace]$ `, coloured on a terminal.

use nu_ansi_term::{Color, Style};

use crate::cluster::ClusterTarget;

/// The prompt's plain text.
pub fn text(target: &ClusterTarget) -> String {
    let context = target.context.as_deref().unwrap_or("no-context");
    match &target.environment {
        Some(env) => format!("[{env}@{context}::{}]$ ", target.namespace),
        None => format!("[{context}::{}]$ ", target.namespace),
    }
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
