//! The script cases in `tests/scripts/`: each file is run as a script and
//! judged by the `# expect` lines in it (see `tests/scripts/README.md`).
//! Every case runs; the failures are reported together.

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;

/// What a case says a user must see.
#[derive(Debug, Default)]
struct Expected {
    status: i32,
    /// The exact standard output, when the case gives it.
    stdout: Option<String>,
    /// Texts standard error must contain.
    stderr: Vec<String>,
}

fn expected(script: &str) -> Expected {
    let mut expected = Expected::default();
    let mut in_stdout = false;
    for line in script.lines() {
        if let Some(text) = line.strip_prefix("#|") {
            assert!(in_stdout, "a `#|` line outside `# expect stdout:`: {line}");
            let stdout = expected.stdout.get_or_insert_with(String::new);
            stdout.push_str(text.strip_prefix(' ').unwrap_or(text));
            stdout.push('\n');
            continue;
        }
        in_stdout = false;
        let Some(rule) = line.strip_prefix("# expect ") else {
            continue;
        };
        if let Some(status) = rule.strip_prefix("status:") {
            expected.status = status.trim().parse().expect("a status is a number");
        } else if rule.trim() == "stdout:" {
            in_stdout = true;
            expected.stdout = Some(String::new());
        } else if let Some(text) = rule.strip_prefix("stderr:") {
            expected.stderr.push(text.trim().to_string());
        } else {
            panic!("an expectation kubesh's tests do not know: {line}");
        }
    }
    expected
}

/// Runs one case; what differs from what it expects, if anything.
fn run(case: &Path) -> Option<String> {
    let name = case.file_name()?.to_string_lossy().into_owned();
    let script = std::fs::read_to_string(case).ok()?;
    let expected = expected(&script);
    let sandbox = Sandbox::new();
    sandbox.write(&name, &script);
    let output = sandbox.command().arg(&name).output().expect("kubesh runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let mut wrong = Vec::new();
    if output.status.code() != Some(expected.status) {
        wrong.push(format!(
            "status {:?}, expected {}",
            output.status.code(),
            expected.status
        ));
    }
    if let Some(want) = &expected.stdout
        && *want != stdout
    {
        wrong.push(format!("stdout {stdout:?}, expected {want:?}"));
    }
    for want in &expected.stderr {
        if !stderr.contains(want.as_str()) {
            wrong.push(format!("stderr lacks {want:?}"));
        }
    }
    (!wrong.is_empty()).then(|| format!("{name}: {}\n  stderr was: {stderr}", wrong.join("; ")))
}

#[test]
fn every_script_case_shows_what_it_expects() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts"));
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scripts is there")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "kubesh"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the cases are found: {cases:?}");
    let failures: Vec<String> = cases.iter().filter_map(|case| run(case)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} script cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn expectations_are_read_as_written() {
    let expected = expected(
        "# expect status: 3\n# expect stdout:\n#| a\n#|  b\n# expect stderr: oops\necho a\n",
    );
    assert_eq!(expected.status, 3);
    assert_eq!(expected.stdout.as_deref(), Some("a\n b\n"));
    assert_eq!(expected.stderr, ["oops"]);
}
