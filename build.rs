//! Embeds the builtin pages (`builtins/*.md`) and the runtimes
//! (`runtimes/*.toml`) into the binary as `(name, text)` tables.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    embed("builtins", "md", &out_dir.join("builtin_pages.rs"));
    embed("runtimes", "toml", &out_dir.join("runtime_files.rs"));
}

fn embed(dir: &str, extension: &str, destination: &Path) {
    println!("cargo::rerun-if-changed={dir}");
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join(dir);
    let mut files: Vec<(String, PathBuf)> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .filter_map(|path| Some((path.file_stem()?.to_str()?.to_string(), path)))
        .collect();
    files.sort();
    let mut code = String::from("&[\n");
    for (name, path) in files {
        println!("cargo::rerun-if-changed={}", path.display());
        if extension == "md" {
            check_page(&name, &path);
        }
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("]\n");
    fs::write(destination, code).expect("writing into OUT_DIR");
}

/// A builtin page must name its scope, so that `help` cannot mislabel it.
fn check_page(name: &str, path: &Path) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let scope = text.lines().find_map(|line| line.strip_prefix("- scope: "));
    assert!(
        matches!(scope, Some("local" | "cluster")),
        "builtins/{name}.md: needs a line `- scope: local` or `- scope: cluster`"
    );
}
