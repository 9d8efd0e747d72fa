//! Which saved files need a program's image built again: the Dockerfile
//! itself, its `.dockerignore`, and the files the Dockerfile names
//! explicitly as `COPY`/`ADD` sources from the build context (a path or a
//! glob). Files reached only through a directory source (`COPY . .`,
//! `COPY src/ /app/`) do not: they are among the program's files, which
//! hot reload writes into the running container anyway; nor do files a
//! `COPY` only places in the program's directory (`/app`, where hot reload
//! writes them too) with no `RUN` step after it to use them. Pure
//! functions over the Dockerfile's text.

use std::collections::BTreeMap;

/// The first of `changed` (paths inside the build context, as the bundle
/// names them) whose change needs the image built again, if any. `files`
/// are the context's files after the change, to tell a directory source
/// from a file.
pub fn rebuild_for<'a, V>(
    dockerfile_path: &str,
    dockerfile: &str,
    files: &BTreeMap<String, V>,
    changed: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let sources = context_sources(dockerfile);
    let ignore_file = format!("{dockerfile_path}.dockerignore");
    changed.into_iter().find(|path| {
        *path == dockerfile_path
            || *path == ".dockerignore"
            || *path == ignore_file
            || sources.iter().any(|source| names_file(source, path, files))
    })
}

/// Whether `source`, a `COPY`/`ADD` source as written, names `path`
/// itself: the same path (and not a directory), or a glob matching it.
fn names_file<V>(source: &str, path: &str, files: &BTreeMap<String, V>) -> bool {
    let directory_written = source.ends_with('/');
    let Some(cleaned) = clean(source) else {
        return false;
    };
    if has_glob(&cleaned) {
        return glob_matches(&cleaned, path);
    }
    if directory_written || cleaned.is_empty() || cleaned != path {
        return false;
    }
    let inside = format!("{cleaned}/");
    !files
        .range(inside.clone()..)
        .next()
        .is_some_and(|(name, _)| name.starts_with(&inside))
}

/// A source path made relative to the context's root, as the engine reads
/// it: `./a`, `/a` and `b/../a` are `a`; `.` is the root (empty). `None`
/// for a path that climbs out of the context.
fn clean(source: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The context sources of the `COPY`s and `ADD`s of a Dockerfile whose
/// files the image depends on, as written: not those of `COPY --from=`
/// (another stage or image), nor URLs, here-documents or paths made of
/// build variables (`$NAME`), whose files cannot be known from the text;
/// nor those of a `COPY` into the program's directory with no `RUN` after
/// it, whose files hot reload writes there itself.
pub fn context_sources(dockerfile: &str) -> Vec<String> {
    let mut sources = Vec::new();
    let instructions = instructions(dockerfile);
    // The stage's working directory, where it is known: a stage starts in
    // its base image's, which the text does not tell.
    let mut workdir: Option<String> = None;
    for (index, instruction) in instructions.iter().enumerate() {
        let Some((keyword, rest)) = split_word(instruction) else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("from") {
            workdir = None;
            continue;
        }
        if keyword.eq_ignore_ascii_case("workdir") {
            let path = rest.trim();
            workdir = match &workdir {
                _ if path.starts_with('/') => Some(path.to_string()),
                Some(current) => Some(absolute(current, path)),
                None => None,
            };
            continue;
        }
        if !keyword.eq_ignore_ascii_case("copy") && !keyword.eq_ignore_ascii_case("add") {
            continue;
        }
        let mut rest = rest;
        let mut from_elsewhere = false;
        while let Some((word, after)) = split_word(rest) {
            if !word.starts_with("--") {
                break;
            }
            from_elsewhere |= word.to_ascii_lowercase().starts_with("--from=");
            rest = after;
        }
        if from_elsewhere {
            continue;
        }
        let words: Vec<String> = match serde_json::from_str::<Vec<String>>(rest.trim()) {
            Ok(words) => words,
            // Not a JSON array: the shell form, as the engine reads it.
            _ => rest.split_whitespace().map(str::to_string).collect(),
        };
        let Some((destination, named)) = words.split_last() else {
            continue;
        };
        let run_after = instructions[index + 1..].iter().any(|later| {
            split_word(later).is_some_and(|(word, _)| word.eq_ignore_ascii_case("run"))
        });
        // (An ADD may unpack an archive there: it is built again.)
        let placed = match &workdir {
            _ if destination.starts_with('/') => Some(destination.to_string()),
            Some(current) => Some(absolute(current, destination)),
            None => None,
        };
        if keyword.eq_ignore_ascii_case("copy")
            && !run_after
            && placed.is_some_and(|path| in_program_directory(&path))
        {
            continue;
        }
        sources.extend(
            named
                .iter()
                .filter(|word| {
                    !word.starts_with("<<")
                        && !word.contains("://")
                        && !word.starts_with("git@")
                        && !word.contains('$')
                })
                .cloned(),
        );
    }
    sources
}

/// `path` as an absolute path, relative ones taken from `workdir`.
fn absolute(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", workdir.trim_end_matches('/'))
    }
}

/// Whether `path` (absolute; no build variables in it) is in the
/// directory where the program's files are unpacked and hot reload writes.
fn in_program_directory(path: &str) -> bool {
    if path.contains('$') {
        return false;
    }
    let cleaned = clean(path).unwrap_or_default();
    let app = super::objects::APP_DIR.trim_start_matches('/');
    cleaned == app || cleaned.starts_with(&format!("{app}/"))
}

/// The first word of `text` and what follows it, leading blanks skipped.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

/// The instructions of a Dockerfile, one string each: comments gone,
/// continued lines joined (with the escape character of a `# escape=`
/// directive, `\` by default), here-document bodies skipped.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut lines = dockerfile.lines().peekable();
    let mut escape = '\\';
    // Parser directives: `# name=value` lines before anything else.
    while let Some(line) = lines.peek() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = directive.split_once('=') else {
            break;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            break;
        }
        if name.eq_ignore_ascii_case("escape")
            && let Some(character) = value.trim().chars().next()
        {
            escape = character;
        }
        lines.next();
    }
    let mut out = Vec::new();
    let mut current = String::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        // Comments, and blank lines between continued ones, are dropped.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let body = line.trim_end();
        match body.strip_suffix(escape) {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(body);
                let instruction = std::mem::take(&mut current);
                for end in here_document_ends(&instruction) {
                    for line in lines.by_ref() {
                        if line.trim_start_matches('\t') == end {
                            break;
                        }
                    }
                }
                out.push(instruction);
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The end markers of an instruction's here-documents (`<<EOF`,
/// `<<-"EOF"`), in order.
fn here_document_ends(instruction: &str) -> Vec<String> {
    instruction
        .split_whitespace()
        .filter_map(|word| {
            let marker = word.strip_prefix("<<")?;
            let marker = marker.strip_prefix('-').unwrap_or(marker);
            let marker = marker.trim_matches(['"', '\'']);
            let good = !marker.is_empty()
                && marker
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            good.then(|| marker.to_string())
        })
        .collect()
}

/// Whether `path` matches `pattern` as the engine matches a source glob:
/// `*` any run of characters but `/`, `?` one of them, `[…]` a class
/// (`[!…]` or `[^…]` its complement, `a-z` a range), `\` escapes.
fn glob_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    matches_from(&pattern, &path)
}

fn matches_from(pattern: &[char], path: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return path.is_empty();
    };
    match first {
        '*' => {
            // Any run of non-separators, shortest first.
            let mut taken = 0;
            loop {
                if matches_from(rest, &path[taken..]) {
                    return true;
                }
                if taken == path.len() || path[taken] == '/' {
                    return false;
                }
                taken += 1;
            }
        }
        '?' => path
            .split_first()
            .is_some_and(|(&c, after)| c != '/' && matches_from(rest, after)),
        '[' => {
            let Some((&c, after)) = path.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((true, remaining)) if c != '/' => matches_from(remaining, after),
                Some(_) => false,
                // No closing `]`: a plain `[`.
                None => c == '[' && matches_from(rest, after),
            }
        }
        '\\' if !rest.is_empty() => path
            .split_first()
            .is_some_and(|(&c, after)| c == rest[0] && matches_from(&rest[1..], after)),
        literal => path
            .split_first()
            .is_some_and(|(&c, after)| c == literal && matches_from(rest, after)),
    }
}

/// Whether `c` is in the class whose text follows a `[`; with the pattern
/// after the closing `]`. `None` when the class is not closed.
fn class(pattern: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match pattern.first() {
        Some('!' | '^') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut found = false;
    let mut first = true;
    loop {
        let (&low, after) = rest.split_first()?;
        if low == ']' && !first {
            return Some((found != negated, after));
        }
        first = false;
        let (low, after) = match (low, after.split_first()) {
            ('\\', Some((&escaped, after))) => (escaped, after),
            _ => (low, after),
        };
        match after {
            ['-', high, tail @ ..] if *high != ']' => {
                found |= low <= c && c <= *high;
                rest = tail;
            }
            _ => {
                found |= low == c;
                rest = after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> BTreeMap<String, u64> {
        names.iter().map(|n| (n.to_string(), 1)).collect()
    }

    const CONTEXT: &[&str] = &[
        "Dockerfile",
        ".dockerignore",
        "app.py",
        "requirements.txt",
        "src/main.py",
        "src/util.py",
        "conf/site.conf",
        "static/a.css",
        "data.json",
        "data.csv",
        "my file.txt",
    ];

    fn rebuilds(dockerfile: &str, changed: &str) -> bool {
        rebuild_for("Dockerfile", dockerfile, &files(CONTEXT), [changed]).is_some()
    }

    #[test]
    fn a_file_only_placed_in_the_program_directory_reloads_live() {
        // Placed in /app with nothing run after it: hot reload writes it.
        assert!(!rebuilds("FROM x\nCOPY app.py /app/app.py\n", "app.py"));
        assert!(!rebuilds("FROM x\nWORKDIR /app\nCOPY app.py .\n", "app.py"));
        // Used by a step after it, or placed elsewhere: built again.
        assert!(rebuilds(
            "FROM x\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n",
            "requirements.txt"
        ));
        assert!(rebuilds("FROM x\nCOPY app.py /srv/app.py\n", "app.py"));
        assert!(rebuilds("FROM x\nCOPY app.py /application/\n", "app.py"));
        assert!(rebuilds("FROM x\nCOPY app.py $HOME/\n", "app.py"));
        // A stage starts in its base image's directory, which is not known.
        assert!(rebuilds(
            "FROM x AS b\nWORKDIR /app\nFROM y\nCOPY app.py .\n",
            "app.py"
        ));
        // An ADD may unpack an archive.
        assert!(rebuilds("FROM x\nADD app.py /app/\n", "app.py"));
    }

    #[test]
    fn the_dockerfile_and_its_ignore_file_rebuild() {
        assert!(rebuilds("FROM x\n", "Dockerfile"));
        assert!(rebuilds("FROM x\n", ".dockerignore"));
        assert!(!rebuilds("FROM x\n", "app.py"));
        let other = files(&["build/web.Dockerfile", "app.py"]);
        let rebuild = |path| rebuild_for("build/web.Dockerfile", "FROM x\n", &other, [path]);
        assert_eq!(
            rebuild("build/web.Dockerfile"),
            Some("build/web.Dockerfile")
        );
        assert!(rebuild("build/web.Dockerfile.dockerignore").is_some());
        assert!(rebuild("Dockerfile").is_none());
    }

    #[test]
    fn a_file_named_as_a_source_rebuilds_and_a_directory_s_files_do_not() {
        let dockerfile = "FROM python\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nADD src/ /app/src/\nCOPY conf /etc/app\n";
        assert!(rebuilds(dockerfile, "requirements.txt"));
        for live in ["app.py", "src/main.py", "conf/site.conf", "static/a.css"] {
            assert!(!rebuilds(dockerfile, live), "{live}");
        }
        // Paths as the engine cleans them.
        assert!(rebuilds("COPY ./app.py /srv/\n", "app.py"));
        assert!(rebuilds("COPY /src/../app.py /srv/\n", "app.py"));
        assert!(!rebuilds("COPY ../app.py /srv/\n", "app.py"));
        // A file deleted since is named still.
        assert!(rebuilds("COPY gone.txt /\n", "gone.txt"));
        // Several sources, the last word is the destination.
        let two = "COPY app.py data.json /srv/\n";
        assert!(rebuilds(two, "data.json"));
        assert!(rebuilds(two, "app.py"));
        assert!(!rebuilds("COPY src/main.py app.py\n", "app.py"));
    }

    #[test]
    fn globs_name_the_files_they_match_not_those_below_a_matched_directory() {
        let dockerfile = "COPY data.* *.txt /srv/\nCOPY s[rt]*/ /x/\n";
        assert!(rebuilds(dockerfile, "data.json"));
        assert!(rebuilds(dockerfile, "data.csv"));
        assert!(rebuilds(dockerfile, "requirements.txt"));
        assert!(!rebuilds(dockerfile, "app.py"));
        assert!(!rebuilds(dockerfile, "src/main.py"));
        assert!(!rebuilds(dockerfile, "static/a.css"));
        assert!(rebuilds("COPY src/*.py /srv/\n", "src/util.py"));
        assert!(rebuilds("COPY app.p? /srv/\n", "app.py"));
        assert!(!rebuilds("COPY [!a]pp.py /srv/\n", "app.py"));
        assert!(rebuilds("COPY [a-c]pp.py /srv/\n", "app.py"));
    }

    #[test]
    fn flags_are_skipped_and_other_stages_and_images_are_not_the_context() {
        assert!(rebuilds(
            "COPY --chown=app:app --chmod=644 requirements.txt /srv/\n",
            "requirements.txt"
        ));
        assert!(rebuilds("ADD --link app.py /srv/\n", "app.py"));
        assert!(!rebuilds("COPY --from=build app.py /srv/\n", "app.py"));
        assert!(!rebuilds("COPY --from=nginx:1 /etc/nginx.conf /x\n", "x"));
        assert!(!rebuilds(
            "ADD https://example.com/app.py /srv/\n",
            "app.py"
        ));
        assert!(!rebuilds("ARG F=app.py\nCOPY $F /srv/\n", "app.py"));
        // Other instructions name no sources.
        assert!(!rebuilds("RUN cat app.py\nCMD app.py x\n", "app.py"));
        // Keywords in any case.
        assert!(rebuilds("copy app.py /srv/\n", "app.py"));
    }

    #[test]
    fn the_json_array_form_keeps_spaces_in_names() {
        assert!(rebuilds(
            "COPY [\"my file.txt\", \"data.json\", \"/srv/\"]\n",
            "my file.txt"
        ));
        assert!(rebuilds(
            "COPY --chown=1000 [\"data.json\", \"/srv/\"]\n",
            "data.json"
        ));
        assert!(!rebuilds("COPY [\"data.json\"]\n", "data.json"));
    }

    #[test]
    fn continued_lines_join_and_comments_go() {
        let dockerfile = "FROM x\n# COPY app.py /srv/\nCOPY \\\n  # a comment inside\n\n  requirements.txt \\\n  /srv/\nRUN echo \\\n  COPY data.json /\n";
        assert!(rebuilds(dockerfile, "requirements.txt"));
        assert!(!rebuilds(dockerfile, "app.py"));
        assert!(!rebuilds(dockerfile, "data.json"));
        // The escape directive changes the continuation character.
        let backtick = "# escape=`\nFROM x\nCOPY `\n  app.py C:\\app\\\n";
        assert!(rebuilds(backtick, "app.py"));
        // A directive below an instruction is a comment.
        let late = "FROM x\n# escape=`\nCOPY data.json \\\n  /srv/\n";
        assert!(rebuilds(late, "data.json"));
    }

    #[test]
    fn here_documents_are_not_instructions() {
        let dockerfile = "FROM x\nRUN <<EOF\nCOPY app.py /app/\nEOF\nCOPY <<-END /etc/conf\n\tCOPY data.json /\n\tEND\nCOPY requirements.txt /\n";
        assert!(!rebuilds(dockerfile, "app.py"));
        assert!(!rebuilds(dockerfile, "data.json"));
        assert!(rebuilds(dockerfile, "requirements.txt"));
    }

    #[test]
    fn the_first_file_that_rebuilds_is_named() {
        let context = files(CONTEXT);
        let dockerfile = "COPY requirements.txt .\nCOPY . .\n";
        assert_eq!(
            rebuild_for(
                "Dockerfile",
                dockerfile,
                &context,
                ["app.py", "requirements.txt"]
            ),
            Some("requirements.txt")
        );
        assert_eq!(
            rebuild_for("Dockerfile", dockerfile, &context, ["app.py"]),
            None
        );
    }
}
