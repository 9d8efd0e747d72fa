//! `kubesh --demo FILE` at a terminal: commands typed out, each run on
//! Enter (or skipped), comments shown as narration, a failure offering
//! retry, skip or quit.

mod common;

use common::Sandbox;
use rexpect::session::{PtySession, spawn_command};

const PROMPT: &str = "[test-ctx::shop]$ ";

fn start(sandbox: &Sandbox, args: &[&str]) -> PtySession {
    let mut command = sandbox.command();
    command
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .arg("--demo")
        .args(args);
    spawn_command(command, Some(20_000)).expect("kubesh starts in a pty")
}

/// Everything the terminal has received and not yet been read.
fn drain(session: &mut PtySession) -> String {
    let mut seen = String::new();
    while let Some(c) = session.try_read() {
        seen.push(c);
    }
    seen
}

#[test]
fn commands_are_typed_out_and_run_on_enter_and_comments_are_narration() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "show.kubesh",
        "#!/usr/bin/env kubesh\n# First, a greeting.\necho typed-one\necho skipped-two\necho three\n",
    );
    let mut session = start(&sandbox, &["show.kubesh", "--demo-speed", "5"]);
    session.exp_string("# First, a greeting.\r\n").unwrap();
    session.exp_string(&format!("{PROMPT}ec")).unwrap();
    // Five characters a second: the rest of the command is still coming.
    let early = drain(&mut session);
    assert!(
        !early.contains("echo typed-one"),
        "typed, not shown at once: {early:?}"
    );
    // A key shows the rest at once; Enter runs it.
    session.send(" ").unwrap();
    session.flush().unwrap();
    session.exp_string("typed-one").unwrap();
    let waiting = drain(&mut session);
    assert!(
        !waiting.contains('\n'),
        "nothing runs before Enter: {waiting:?}"
    );
    session.send("\r").unwrap();
    session.flush().unwrap();
    session.exp_string("\r\ntyped-one\r\n").unwrap();
    // `s` skips the command shown.
    session.exp_string(PROMPT).unwrap();
    session.send(" ").unwrap();
    session.flush().unwrap();
    session.exp_string("echo skipped-two").unwrap();
    session.send("s").unwrap();
    session.flush().unwrap();
    session.exp_string(&format!("{PROMPT}e")).unwrap();
    session.send(" \r").unwrap();
    session.flush().unwrap();
    let before = session.exp_string("\r\nthree\r\n").unwrap();
    assert!(!before.contains("\nskipped-two"), "{before:?}");
    session.exp_eof().unwrap();
}

#[test]
fn a_failing_command_is_marked_and_can_be_retried_skipped_or_quit() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "fails.kubesh",
        "cat flag.txt\necho after-retry\ncat missing.txt\necho never\n",
    );
    let mut session = start(
        &sandbox,
        &["fails.kubesh", "--demo-speed", "0", "--demo-no-wait"],
    );
    session
        .exp_string("fails.kubesh:1: `cat flag.txt` failed with status 1")
        .unwrap();
    session.exp_string("r: retry   s: skip   q: quit").unwrap();
    // The presenter fixes what was wrong, then retries.
    sandbox.write("flag.txt", "the flag is up\n");
    session.send("r").unwrap();
    session.flush().unwrap();
    session.exp_string("the flag is up\r\n").unwrap();
    session.exp_string("\r\nafter-retry\r\n").unwrap();
    session
        .exp_string("fails.kubesh:3: `cat missing.txt` failed with status 1")
        .unwrap();
    session.send("q").unwrap();
    session.flush().unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(!rest.contains("never"), "{rest:?}");
    let status = session.process.wait().unwrap();
    assert_eq!(
        status,
        rexpect::process::wait::WaitStatus::Exited(session.process.child_pid, 1)
    );
}
