//! TAB completion as a pure function of the line, the cursor and what the
//! shell knows: command names at the start of a command, variable names
//! after `$`, paths elsewhere — and, through [`ArgumentSource`], words that
//! only one command knows (dproc names, contexts, namespaces).

use std::path::Path;

/// Words a command takes as arguments, e.g. `cx` → contexts.
pub trait ArgumentSource {
    /// Candidates for the argument after `args` of `command`, starting with
    /// `prefix`; `None` when this source has nothing to say about it.
    fn candidates(&self, command: &str, args: &[&str], prefix: &str) -> Option<Vec<String>>;
}

/// Words for the commands that take a dproc or a context.
#[derive(Default)]
pub struct ClusterWords {
    pub dprocs: Vec<String>,
    pub contexts: Vec<String>,
}

impl ArgumentSource for ClusterWords {
    fn candidates(&self, command: &str, args: &[&str], prefix: &str) -> Option<Vec<String>> {
        let words = match command {
            "kill" | "logs" | "watch" | "unwatch" => &self.dprocs,
            "scale" | "forward" if args.is_empty() => &self.dprocs,
            "cx" if args.is_empty() => &self.contexts,
            _ => return None,
        };
        Some(
            words
                .iter()
                .filter(|w| w.starts_with(prefix))
                .cloned()
                .collect(),
        )
    }
}

/// What completion chooses from.
#[derive(Default)]
pub struct Vocabulary {
    /// Builtins and runtime commands.
    pub commands: Vec<String>,
    /// Variable names.
    pub variables: Vec<String>,
    pub arguments: Vec<Box<dyn ArgumentSource>>,
}

/// One candidate: what the list shows and what replaces the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

/// The byte offset where the completed word starts, and the candidates.
pub fn complete(
    line: &str,
    cursor: usize,
    vocabulary: &Vocabulary,
    cwd: &Path,
    home: Option<&str>,
) -> (usize, Vec<Candidate>) {
    let before = &line[..cursor.min(line.len())];
    let words = current_command(before);
    let word_start = words.last().map_or(before.len(), |(start, _)| *start);
    let word = &before[word_start..];
    if let Some(dollar) = word.rfind('$') {
        let after = &word[dollar + 1..];
        let (braced, prefix) = match after.strip_prefix('{') {
            Some(rest) => (true, rest),
            None => (false, after),
        };
        if prefix
            .chars()
            .all(|c| c == '_' || c.is_ascii_alphanumeric())
        {
            let start = word_start + dollar + 1 + usize::from(braced);
            let mut names: Vec<Candidate> = vocabulary
                .variables
                .iter()
                .filter(|name| name.starts_with(prefix))
                .map(|name| Candidate {
                    display: name.clone(),
                    replacement: if braced {
                        format!("{name}}}")
                    } else {
                        name.clone()
                    },
                })
                .collect();
            names.dedup();
            return (start, names);
        }
    }
    let words: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
    let leading_assignments = words
        .iter()
        .take(words.len().saturating_sub(1))
        .take_while(|w| is_assignment(w))
        .count();
    let in_command_position = leading_assignments + 1 >= words.len();
    let looks_like_path = word.contains('/') || word.starts_with('.') || word.starts_with('~');
    if in_command_position && !looks_like_path {
        let mut names: Vec<&String> = vocabulary
            .commands
            .iter()
            .filter(|c| c.starts_with(word))
            .collect();
        names.sort();
        names.dedup();
        let candidates = names
            .into_iter()
            .map(|name| Candidate {
                display: name.clone(),
                replacement: format!("{name} "),
            })
            .collect();
        return (word_start, candidates);
    }
    if !in_command_position {
        let command = words[leading_assignments];
        let args = &words[leading_assignments + 1..words.len().saturating_sub(1)];
        for source in &vocabulary.arguments {
            if let Some(mut found) = source.candidates(command, args, word) {
                found.sort();
                found.dedup();
                let candidates = found
                    .into_iter()
                    .map(|w| Candidate {
                        replacement: format!("{} ", escape(&w)),
                        display: w,
                    })
                    .collect();
                return (word_start, candidates);
            }
        }
    }
    (word_start, paths(word, cwd, home))
}

/// The words so far of the command the cursor is in, with their byte
/// offsets (the last one being the word under the cursor, maybe empty).
fn current_command(before: &str) -> Vec<(usize, &str)> {
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut word_start: Option<usize> = None;
    let mut escaped = false;
    let mut quote: Option<char> = None;
    for (index, c) in before.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\\') => {
                escaped = true;
                word_start.get_or_insert(index);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                word_start.get_or_insert(index);
            }
            (None, ' ' | '\t') => {
                if let Some(start) = word_start.take() {
                    words.push((start, &before[start..index]));
                }
            }
            (None, ';' | '&' | '|' | '`') => {
                word_start = None;
                words.clear();
            }
            (None, _) => {
                word_start.get_or_insert(index);
            }
        }
    }
    let start = word_start.unwrap_or(before.len());
    words.push((start, &before[start..]));
    words
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=')
        .is_some_and(|(name, _)| crate::shell::vars::is_valid_name(name))
}

/// Files and directories whose path starts with `word`.
fn paths(word: &str, cwd: &Path, home: Option<&str>) -> Vec<Candidate> {
    let typed = unescape(word);
    let (dir_part, file_prefix) = match typed.rfind('/') {
        Some(slash) => (&typed[..=slash], &typed[slash + 1..]),
        None => ("", typed.as_str()),
    };
    let dir = match (dir_part.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            Path::new(home).join(rest.trim_start_matches('/'))
        }
        _ if dir_part.is_empty() => cwd.to_path_buf(),
        _ => cwd.join(dir_part),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut candidates: Vec<Candidate> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with(file_prefix)
                || (name.starts_with('.') && !file_prefix.starts_with('.'))
            {
                return None;
            }
            let is_dir = entry.path().is_dir();
            let suffix = if is_dir { "/" } else { " " };
            Some(Candidate {
                display: if is_dir {
                    format!("{name}/")
                } else {
                    name.clone()
                },
                replacement: format!("{}{}{suffix}", escape(dir_part), escape(&name)),
            })
        })
        .collect();
    candidates.sort_by(|a, b| a.display.cmp(&b.display));
    candidates
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            ' ' | '\t' | '\'' | '"' | '\\' | '$' | ';' | '&' | '|' | '<' | '>' | '`' | '#'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn unescape(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => plain.extend(chars.next()),
            '\'' | '"' => {}
            _ => plain.push(c),
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Contexts;

    impl ArgumentSource for Contexts {
        fn candidates(&self, command: &str, args: &[&str], prefix: &str) -> Option<Vec<String>> {
            (command == "cx" && args.is_empty()).then(|| {
                ["dev", "prod"]
                    .iter()
                    .filter(|c| c.starts_with(prefix))
                    .map(|c| c.to_string())
                    .collect()
            })
        }
    }

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            commands: vec!["echo".into(), "env".into(), "exit".into(), "node".into()],
            variables: vec!["HOME".into(), "HOST".into(), "PATH".into()],
            arguments: vec![Box::new(Contexts)],
        }
    }

    fn replacements(line: &str, cwd: &Path) -> (usize, Vec<String>) {
        let (start, candidates) =
            complete(line, line.len(), &vocabulary(), cwd, Some("/nonexistent"));
        (
            start,
            candidates.into_iter().map(|c| c.replacement).collect(),
        )
    }

    #[test]
    fn commands_at_the_start_of_each_command() {
        let cwd = Path::new("/");
        assert_eq!(
            replacements("e", cwd),
            (0, vec!["echo ".into(), "env ".into(), "exit ".into()])
        );
        assert_eq!(replacements("ech", cwd), (0, vec!["echo ".into()]));
        assert_eq!(replacements("A=1 no", cwd), (4, vec!["node ".into()]));
        assert_eq!(replacements("echo a; ex", cwd), (8, vec!["exit ".into()]));
    }

    #[test]
    fn variables_after_a_dollar() {
        let cwd = Path::new("/");
        assert_eq!(
            replacements("echo $HO", cwd),
            (6, vec!["HOME".into(), "HOST".into()])
        );
        assert_eq!(replacements("echo x${PA", cwd), (8, vec!["PATH}".into()]));
        assert_eq!(replacements("echo \"$P", cwd), (7, vec!["PATH".into()]));
    }

    #[test]
    fn paths_in_arguments_and_for_path_like_commands() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src dir")).unwrap();
        std::fs::write(dir.path().join("service.js"), "").unwrap();
        std::fs::write(dir.path().join("src dir/main.py"), "").unwrap();
        std::fs::write(dir.path().join(".hidden"), "").unwrap();
        assert_eq!(
            replacements("cat s", dir.path()),
            (4, vec!["service.js ".into(), "src\\ dir/".into()])
        );
        assert_eq!(
            replacements("cat src\\ dir/m", dir.path()),
            (4, vec!["src\\ dir/main.py ".into()])
        );
        assert_eq!(
            replacements("./se", dir.path()),
            (0, vec!["./service.js ".into()])
        );
        assert_eq!(
            replacements("cat .h", dir.path()).1,
            vec![".hidden ".to_string()]
        );
        assert!(
            !replacements("cat ", dir.path())
                .1
                .contains(&".hidden ".to_string())
        );
    }

    #[test]
    fn dproc_names_after_kill_logs_watch_scale_and_forward() {
        let words = ClusterWords {
            dprocs: vec!["stock-gen".into(), "stock-con".into(), "web".into()],
            contexts: vec![],
        };
        assert_eq!(
            words.candidates("kill", &["web"], "stock-g"),
            Some(vec!["stock-gen".to_string()])
        );
        assert_eq!(
            words.candidates("scale", &[], "w"),
            Some(vec!["web".to_string()])
        );
        assert_eq!(
            words.candidates("scale", &["web"], ""),
            None,
            "the count is not a name"
        );
        assert_eq!(
            words.candidates("forward", &[], "stock-c"),
            Some(vec!["stock-con".to_string()])
        );
        assert_eq!(
            words.candidates("forward", &["web"], ""),
            None,
            "the port is not a name"
        );
        assert_eq!(
            words.candidates("watch", &["web"], "stock-"),
            Some(vec!["stock-gen".to_string(), "stock-con".to_string()])
        );
        assert_eq!(
            words.candidates("unwatch", &[], "w"),
            Some(vec!["web".to_string()])
        );
        assert_eq!(words.candidates("echo", &[], "w"), None);
    }

    #[test]
    fn argument_sources_come_before_paths() {
        assert_eq!(
            replacements("cx d", Path::new("/")),
            (3, vec!["dev ".into()])
        );
    }
}
