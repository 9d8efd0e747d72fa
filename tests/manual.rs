//! `kubesh completions SHELL` and `kubesh man`: generated from the same
//! definitions as the command line, with the builtins in them.

mod common;

use assert_cmd::assert::OutputAssertExt;
use common::Sandbox;
use predicates::str::contains;

fn run(sandbox: &Sandbox, args: &[&str]) -> String {
    let output = sandbox.command().args(args).output().expect("kubesh runs");
    assert!(output.status.success(), "kubesh {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn the_bash_completion_names_the_options_and_the_builtins() {
    let sandbox = Sandbox::new();
    let bash = run(&sandbox, &["completions", "bash"]);
    assert!(bash.contains("_kubesh()"), "{bash}");
    for word in ["--local", "--demo", "--demo-speed", "completions", "man"] {
        assert!(bash.contains(word), "{word} in:\n{bash}");
    }
    // After -c, the builtins' names.
    let names = bash
        .lines()
        .find(|line| line.contains("\"cat cd clear curl cx "))
        .unwrap_or_else(|| panic!("the builtins' names in:\n{bash}"));
    for builtin in [
        "clear",
        "help",
        "kubectl",
        "literally",
        "logs",
        "pause",
        "ps",
        "read",
        "watch",
    ] {
        assert!(
            names.contains(&format!(" {builtin} ")) || names.contains(&format!(" {builtin}\"")),
            "{builtin} in {names}"
        );
    }
    // bash itself reads it.
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_ok()
    {
        let file = sandbox.path("kubesh.bash");
        std::fs::write(&file, &bash).unwrap();
        let mut check = std::process::Command::new("bash");
        check
            .arg("-c")
            .arg(format!("source {} && complete -p kubesh", file.display()));
        check.assert().success().stdout(contains("_kubesh"));
    }
    for shell in ["zsh", "fish"] {
        let script = run(&sandbox, &["completions", shell]);
        assert!(
            script.contains("literally") && script.contains("demo-speed"),
            "{shell}:\n{script}"
        );
    }
    sandbox
        .command()
        .args(["completions", "tcsh"])
        .assert()
        .failure()
        .stderr(contains("bash"));
}

#[test]
fn the_manual_page_renders_with_the_options_and_the_builtins() {
    let sandbox = Sandbox::new();
    let roff = run(&sandbox, &["man"]);
    assert!(roff.starts_with(".ie") || roff.starts_with(".TH"), "{roff}");
    assert!(roff.contains(".SH BUILTINS"), "{roff}");
    assert!(roff.contains("\\fBcurl [\\-X METHOD]"), "{roff}");
    let has_man = std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_man {
        return;
    }
    let page = sandbox.path("kubesh.1");
    std::fs::write(&page, &roff).unwrap();
    let output = std::process::Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .expect("man runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for wanted in [
        "BUILTINS",
        "--demo",
        "completions",
        "curl [-X METHOD]",
        "read [-p PROMPT] NAME",
    ] {
        assert!(text.contains(wanted), "{wanted} in:\n{text}");
    }
    assert!(!text.contains("\\f"), "no roff left over:\n{text}");
}
