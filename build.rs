//! Embeds the builtin pages (`builtins/*.md`) and the runtimes
//! (`runtimes/*.toml`) into the binary as `(name, text)` tables, and
//! records what `--version` says of the build: the commit it was built
//! from and whether it is the static build.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    embed("builtins", "md", &out_dir.join("builtin_pages.rs"));
    embed("runtimes", "toml", &out_dir.join("runtime_files.rs"));
    record_build();
}

/// `KUBESH_COMMIT`: the commit checked out (`KUBESH_COMMIT` in the build's
/// environment wins, for a build from a source archive), or `unknown`.
/// `KUBESH_BUILD`: `static build` when the C library is linked in
/// (`-C target-feature=+crt-static`, as `scripts/build-static.sh` builds),
/// `dynamically linked` otherwise, and whether the TLS roots are built in
/// (feature `bundled-roots`).
fn record_build() {
    println!("cargo::rerun-if-env-changed=KUBESH_COMMIT");
    let commit = match env::var("KUBESH_COMMIT") {
        Ok(commit) if !commit.is_empty() => commit,
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo::rustc-env=KUBESH_COMMIT={commit}");
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let mut build = if features.split(',').any(|f| f == "crt-static") {
        "static build".to_string()
    } else {
        "dynamically linked".to_string()
    };
    if env::var_os("CARGO_FEATURE_BUNDLED_ROOTS").is_some() {
        build.push_str(", built-in TLS roots");
    }
    println!("cargo::rustc-env=KUBESH_BUILD={build}");
}

/// The commit of the checkout (12 hex digits), and the files whose change
/// means another commit: HEAD, the branch it names, the packed refs.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = std::process::Command::new("git")
            .args(args)
            .current_dir(env::var_os("CARGO_MANIFEST_DIR")?)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // A missing file would make cargo run this script on every build.
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    Some(commit)
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
