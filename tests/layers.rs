//! The layers of `src/` and the rule between them (docs/architecture.md):
//! a top-level module may import only the modules of lower layers, and no
//! top-level modules import each other in a cycle; in `local-cluster/src`,
//! no top-level modules import each other in a cycle. Read from the source
//! text: every `crate::NAME` path and every `super::` path that climbs to
//! the crate root counts, in `use` lines and in code alike. Between the
//! crates of the workspace, read from their manifests: the local cluster
//! never depends on kubesh, the engine crate on neither.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, lowest layer first. A module may import
/// only the modules of the layers before its own; the first layer (the
/// leaves) imports nothing from the crate.
const LAYERS: &[&[&str]] = &[
    &[
        "cli",
        "interrupt",
        "labels",
        "pages",
        "printer",
        "runtimes",
        "script_file",
        "status",
        "terminal",
    ],
    &["syntax", "manual"],
    &["cluster"],
    &["local"],
    &["launch"],
    &["reload"],
    &["shell"],
    &["tour"],
    &["builtins"],
    &["repl"],
];

#[test]
fn lower_layers_never_import_upper_ones_and_no_modules_form_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = check(&src, LAYERS);
    assert!(
        problems.is_empty(),
        "the layers of src/ are broken (see docs/architecture.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_local_cluster_s_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("local-cluster/src");
    let problems = module_cycles(&src, "local-cluster/src");
    assert!(
        problems.is_empty(),
        "the modules of local-cluster/src import each other in a cycle:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_crates_depend_downwards_only() {
    // kubesh → local-cluster → kubesh-engine, and kubesh → kubesh-engine:
    // the local cluster never depends on kubesh, the engine crate on
    // neither.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let forbidden: &[(&str, &[&str])] = &[
        ("local-cluster", &["kubesh"]),
        ("engine", &["kubesh", "local-cluster"]),
    ];
    let mut problems = Vec::new();
    for (dir, never) in forbidden {
        let manifest = root.join(dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("the crate's manifest");
        let table: toml::Table = toml::from_str(&text).expect("a manifest is TOML");
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(dependencies) = table.get(section).and_then(|t| t.as_table()) else {
                continue;
            };
            for name in dependencies.keys() {
                if never.contains(&name.as_str()) {
                    problems.push(format!("{dir}/Cargo.toml: [{section}] names `{name}`"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "a crate depends on one above it (see docs/architecture.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_cycle_in_a_library_is_named() {
    let tree = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::X;\n"),
        ("b/mod.rs", "pub mod c;\n"),
        ("b/c.rs", "pub fn f() { crate::a::g() }\n"),
    ]);
    let problems = module_cycles(tree.path(), "src");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("cycle") && p.contains("src/b/c.rs:1")),
        "{problems:#?}"
    );
}

#[test]
fn an_import_from_an_upper_layer_is_named_with_its_file_and_line() {
    let tree = tree(&[
        ("main.rs", "mod cluster;\nmod shell;\n"),
        ("shell/mod.rs", "use crate::cluster::Connection;\n"),
        (
            "cluster/connection.rs",
            "// crate::shell in a comment does not count\nuse crate::shell::Interrupt;\n",
        ),
        ("cluster/mod.rs", "mod connection;\n"),
    ]);
    let problems = check(tree.path(), &[&["cluster"], &["shell"]]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("src/cluster/connection.rs:2") && p.contains("crate::shell")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("cycle")),
        "{problems:#?}"
    );
}

#[test]
fn super_paths_that_reach_the_root_and_grouped_imports_count() {
    let tree = tree(&[
        ("main.rs", "mod a;\nmod b;\nmod c;\n"),
        ("a/mod.rs", "mod inner;\n"),
        ("a/inner.rs", "use super::super::c::X;\n"),
        ("b.rs", "use crate::{a, c::Y};\n"),
        (
            "c.rs",
            "const S: &str = \"crate::a\";\nfn f<'a>(_: &'a str) {}\n",
        ),
    ]);
    let problems = check(tree.path(), &[&["a", "c"], &["b"]]);
    assert!(
        problems.iter().any(|p| p.contains("src/a/inner.rs:1")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().all(|p| !p.contains("src/b.rs")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().all(|p| !p.contains("src/c.rs")),
        "{problems:#?}"
    );
}

#[test]
fn super_inside_an_inline_module_stays_in_its_file() {
    let tree = tree(&[
        ("main.rs", "mod a;\nmod b;\n"),
        ("b.rs", "mod tests {\n    use super::a::X;\n}\n"),
        ("a/mod.rs", "mod b;\n"),
        ("a/b.rs", "mod tests {\n    use super::super::b::X;\n}\n"),
    ]);
    let problems = check(tree.path(), &[&["a"], &["b"]]);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_module_in_no_layer_is_named() {
    let tree = tree(&[("main.rs", "mod stray;\n"), ("stray.rs", "")]);
    let problems = check(tree.path(), &[]);
    assert!(
        problems.iter().any(|p| p.contains("`stray`")),
        "{problems:#?}"
    );
}

/// Everything wrong with the tree at `src` under `layers`, one line each.
fn check(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(index, names)| names.iter().map(move |name| (*name, index)))
        .collect();
    let modules = top_level_modules(src);
    let mut problems = Vec::new();
    for module in &modules {
        if !layer_of.contains_key(module.as_str()) {
            problems.push(format!(
                "src/: module `{module}` is in no layer; add it to LAYERS in tests/layers.rs and to docs/architecture.md"
            ));
        }
    }
    for name in layer_of.keys() {
        if !modules.contains(*name) {
            problems.push(format!(
                "tests/layers.rs: LAYERS names `{name}`, which is not a module of src/"
            ));
        }
    }
    // (from, to) → the first place `from` imports `to`.
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for import in imports(src, "src", &modules) {
        let (from, to) = (import.from, import.to);
        if let (Some(&low), Some(&high)) = (layer_of.get(to.as_str()), layer_of.get(from.as_str()))
            && low >= high
        {
            problems.push(format!(
                "{}: `{}`: `{from}` may not import `{to}`, which is {} its layer",
                import.place,
                import.shown,
                if low == high { "in" } else { "above" }
            ));
        }
        edges.entry((from, to)).or_insert(import.place);
    }
    problems.extend(cycles(&edges));
    problems
}

/// One place where a top-level module refers to another.
struct Import {
    from: String,
    to: String,
    /// `DIR/FILE:LINE`.
    place: String,
    /// The path as written.
    shown: String,
}

/// Every reference from one top-level module of the crate in `src` to
/// another; `shown` is how `src` is named in places.
fn imports(src: &Path, shown: &str, modules: &BTreeSet<String>) -> Vec<Import> {
    let mut out = Vec::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let path = module_path(relative);
        let Some(from) = path.first().cloned() else {
            continue; // The crate root may import anything.
        };
        let text = std::fs::read_to_string(&file).expect("readable source file");
        let code = code_only(&text);
        for (offset, to, written) in references(&code, &path) {
            if to == from || !modules.contains(&to) {
                continue;
            }
            out.push(Import {
                from: from.clone(),
                to,
                place: format!(
                    "{shown}/{}:{}",
                    relative.display(),
                    code[..offset].matches('\n').count() + 1
                ),
                shown: written,
            });
        }
    }
    out
}

/// The cycles between the top-level modules of the crate in `src`.
fn module_cycles(src: &Path, shown: &str) -> Vec<String> {
    let modules = top_level_modules(src);
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for import in imports(src, shown, &modules) {
        edges
            .entry((import.from, import.to))
            .or_insert(import.place);
    }
    cycles(&edges)
}

/// The cycles between top-level modules, each with the import making
/// every step.
fn cycles(edges: &BTreeMap<(String, String), String>) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut problems = Vec::new();
    for (from, _) in edges.keys() {
        // Depth-first from each module, back to itself.
        let mut stack = vec![vec![from.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().expect("non-empty path");
            for ((a, b), _) in edges.range((last.clone(), String::new())..) {
                if a != last {
                    break;
                }
                if b == from {
                    let mut members = path.clone();
                    members.sort();
                    if found.insert(members) {
                        let mut line = format!("cycle: {}", path.join(" → "));
                        let _ = write!(line, " → {from}:");
                        for (index, step) in path.iter().enumerate() {
                            let next = path.get(index + 1).unwrap_or(from);
                            let _ = write!(
                                line,
                                "\n    {step} → {next} at {}",
                                edges[&(step.clone(), next.clone())]
                            );
                        }
                        problems.push(line);
                    }
                } else if seen.insert(b.clone()) {
                    let mut longer = path.clone();
                    longer.push(b.clone());
                    stack.push(longer);
                }
            }
        }
    }
    problems
}

/// The top-level modules: `src/NAME.rs` and `src/NAME/mod.rs`.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 name")
            .to_string();
        if path.is_dir() && path.join("mod.rs").is_file()
            || path.extension().is_some_and(|e| e == "rs") && name != "main" && name != "lib"
        {
            modules.insert(name);
        }
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The module a file is, as path segments from the crate root:
/// `cluster/connection.rs` → `[cluster, connection]`, `cluster/mod.rs` →
/// `[cluster]`, `main.rs` → `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut segments: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(
        segments.last().map(String::as_str),
        Some("mod" | "main" | "lib")
    ) {
        segments.pop();
    }
    segments
}

/// The top-level modules a file's code names: `(offset, module, path as
/// written)` for each `crate::NAME`, `crate::{NAME, …}` and `super::…`
/// path that reaches the crate root.
fn references(code: &str, path: &[String]) -> Vec<(usize, String, String)> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ident_at = |at: usize| {
        let end = (at..bytes.len())
            .find(|&i| !is_ident(bytes[i]))
            .unwrap_or(bytes.len());
        &code[at..end]
    };
    let mut found = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (start, _) in code.match_indices(keyword) {
            if start > 0 && (is_ident(bytes[start - 1]) || code[..start].ends_with("::")) {
                continue;
            }
            let mut at = start + keyword.len();
            if keyword == "super::" {
                let mut depth = path.len() + inline_modules_around(code, start) - 1;
                while code[at..].starts_with("super::") {
                    at += "super::".len();
                    depth = depth.saturating_sub(1);
                }
                if depth > 0 {
                    continue; // Stays inside the file's own top-level module.
                }
            }
            let names: Vec<&str> = if bytes.get(at) == Some(&b'{') {
                group_heads(&code[at..])
            } else {
                vec![ident_at(at)]
            };
            let path_end = code[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |i| start + i);
            let mut shown = code[start..path_end].to_string();
            if bytes.get(path_end) == Some(&b'{') {
                shown.push_str("{…}");
            }
            for name in names {
                found.push((start, name.to_string(), shown.clone()));
            }
        }
    }
    found
}

/// How many inline `mod NAME { … }` blocks enclose `offset`.
fn inline_modules_around(code: &str, offset: usize) -> usize {
    let mut count = 0;
    for (start, _) in code.match_indices("mod ") {
        if start > 0 && !code[..start].ends_with([' ', '\n', '\t']) || start >= offset {
            continue;
        }
        let rest = &code[start + "mod ".len()..];
        let name_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if !rest[name_end..].trim_start().starts_with('{') {
            continue; // `mod name;`: another file.
        }
        let open = start + "mod ".len() + name_end + rest[name_end..].find('{').expect("brace");
        let mut depth = 0;
        let close = code[open..].char_indices().find_map(|(i, c)| {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(open + i);
                    }
                }
                _ => {}
            }
            None
        });
        if close.is_none_or(|close| offset < close) {
            count += 1;
        }
    }
    count
}

/// The first name of each item of a `{a, b::c, …}` group.
fn group_heads(group: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => {
                depth += 1;
                item_start = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if item_start && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                let end = group[i..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(group.len(), |e| i + e);
                heads.push(&group[i..end]);
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The text with comments, strings and character literals blanked out
/// (newlines kept, so offsets still give line numbers).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char, out: &mut String| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(chars[i], &mut out);
                    i += 1;
                }
            }
        } else if c == 'r' && !after_ident && matches!(next, Some('"' | '#')) && {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            chars.get(i + 1 + hashes) == Some(&'"')
        } {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let mut j = i + hashes + 2;
            while j < chars.len() && !chars[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(chars.len());
            chars[i..end].iter().for_each(|&c| blank(c, &mut out));
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            chars[i..end].iter().for_each(|&c| blank(c, &mut out));
            i = end;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal, not a lifetime.
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            chars[i..end].iter().for_each(|&c| blank(c, &mut out));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A temporary `src/` tree made of `(path, text)` files.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("directory");
        std::fs::write(path, text).expect("file written");
    }
    dir
}
