//! kubesh at a terminal: the prompt, completion, history, Ctrl-C and Ctrl-D,
//! driven through a pseudo-terminal.

mod common;

use common::Sandbox;
use rexpect::session::{PtySession, spawn_command};

const TIMEOUT_MS: u64 = 10_000;
const PROMPT: &str = "[test-ctx::shop]$ ";

// The line editor redraws the prompt and the line as it is typed, so output
// is awaited as a new line ("\n" + text): typed text never follows "\n".

fn start(sandbox: &Sandbox) -> PtySession {
    let mut command = sandbox.command();
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(TIMEOUT_MS)).expect("kubesh starts in a pty");
    session.exp_string(PROMPT).expect("the first prompt");
    session
}

#[test]
fn prompt_shows_context_and_namespace_from_the_kubeconfig() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send_line("echo hello").unwrap();
    session.exp_string("\nhello").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit 7").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn the_prompt_is_coloured_unless_no_color_is_set() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command.env("TERM", "xterm");
    let mut session = spawn_command(command, Some(TIMEOUT_MS)).unwrap();
    let (before, _) = session.exp_regex(r"\$ ").unwrap();
    assert!(before.contains("\u{1b}["), "colour codes in {before:?}");
    assert!(before.contains("test-ctx"), "{before:?}");
    session.send_line("exit").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn tab_completes_a_builtin_and_a_path() {
    let sandbox = Sandbox::new();
    sandbox.write("unique-name.txt", "the file's content\n");
    let mut session = start(&sandbox);
    session.send("vers\t").unwrap();
    session.flush().unwrap();
    session.exp_string("version ").unwrap();
    session.send_line("").unwrap();
    session.exp_string("\nkubesh ").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send("cat uniq\t").unwrap();
    session.flush().unwrap();
    session.exp_string("unique-name.txt").unwrap();
    session.send_line("").unwrap();
    session.exp_string("\nthe file's content").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send("echo $HO\t").unwrap();
    session.flush().unwrap();
    session.exp_string("$HOME").unwrap();
    session.send_line("").unwrap();
    session
        .exp_string(&sandbox.path("home").display().to_string())
        .unwrap();
}

/// Presses Up and waits until the recalled line is drawn (the editor
/// redraws only what changed, so only the line's ending is awaited).
fn press_up(session: &mut PtySession, ending: &str) {
    session.send("\u{1b}[A").unwrap();
    session.flush().unwrap();
    session.exp_string(ending).unwrap();
}

#[test]
fn history_is_recalled_with_up_and_ctrl_r_and_kept_across_sessions() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send_line("echo first-entry").unwrap();
    session.exp_string("\nfirst-entry").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo second-entry").unwrap();
    session.exp_string("\nsecond-entry").unwrap();
    session.exp_string(PROMPT).unwrap();
    press_up(&mut session, "-entry");
    press_up(&mut session, "first-entry");
    session.send_line("").unwrap();
    session.exp_string("\nfirst-entry").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit").unwrap();
    session.exp_eof().unwrap();

    let history = std::fs::read_to_string(sandbox.history_file()).expect("history file");
    assert!(history.contains("echo second-entry"), "{history}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sandbox.history_file())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "history is private");

    let mut session = start(&sandbox);
    session.send_control('r').unwrap();
    session.send("second").unwrap();
    session.flush().unwrap();
    session.exp_string("echo second-entry").unwrap();
    session.send_line("").unwrap();
    session.exp_string("\nsecond-entry").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("history 2").unwrap();
    session.exp_string("  echo second-entry").unwrap();
    session.exp_string("history 2").unwrap();
}

#[test]
fn ctrl_c_on_a_half_typed_line_leaves_the_shell_alive() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send("echo half-typed").unwrap();
    session.send_control('c').unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo $?-alive").unwrap();
    let before = session.exp_string("\n130-alive").unwrap();
    assert!(
        !before.contains("\nhalf-typed"),
        "the cancelled line did not run: {before:?}"
    );
}

#[test]
fn ctrl_c_stops_a_running_sleep_and_returns_to_the_prompt() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    // The output (not the echoed input) shows that the command runs.
    session
        .send_line("echo ${X:-sleeping}-now; sleep 60")
        .unwrap();
    session.exp_string("sleeping-now").unwrap();
    session.send_control('c').unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo status=$?").unwrap();
    session.exp_string("\nstatus=130").unwrap();
}

#[test]
fn lines_typed_ahead_or_pasted_together_all_run() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    // Typed while a command runs, and two lines arriving at once (a paste
    // without bracketed paste): none is lost.
    session.send("sleep 1\recho one\r").unwrap();
    session.flush().unwrap();
    session.send("echo two\recho three\r").unwrap();
    session.flush().unwrap();
    session.exp_string("\none").unwrap();
    session.exp_string("\ntwo").unwrap();
    session.exp_string("\nthree").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn output_without_a_final_newline_stays_visible_with_a_mark() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    // As an express `res.json` body arrives: no newline at its end. The
    // prompt clears the line it is drawn on; the mark and the padding
    // after the output move it to a line of its own.
    session.send_line("echo -n '{\"status\":\"ok\"}'").unwrap();
    // The session reads bytes one character each.
    let mark: String = "⏎".bytes().map(char::from).collect();
    session
        .exp_string(&format!("{{\"status\":\"ok\"}}{mark} "))
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn clear_clears_the_screen_and_scrollback_and_dash_x_keeps_the_scrollback() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send_line("clear; echo cleared").unwrap();
    // The output follows the escape codes on the cleared screen's first
    // line; the typed line has other codes after its last word.
    let before = session.exp_string("cleared\r\n").unwrap();
    assert!(
        before.contains("\u{1b}[H\u{1b}[2J\u{1b}[3J"),
        "the screen and the scrollback cleared: {before:?}"
    );
    session.exp_string(PROMPT).unwrap();
    session.send_line("clear -x; echo kept").unwrap();
    let before = session.exp_string("kept\r\n").unwrap();
    assert!(
        before.contains("\u{1b}[H\u{1b}[2J"),
        "the screen cleared: {before:?}"
    );
    assert!(
        !before.contains("\u{1b}[3J"),
        "the scrollback kept: {before:?}"
    );
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn clear_at_a_dumb_terminal_writes_no_escape_codes() {
    let sandbox = Sandbox::new();
    let mut session = start_at_width(&sandbox, sandbox.command(), "dumb", 60);
    session.exp_string("$ ").unwrap();
    session.send_line("clear; echo after-clear").unwrap();
    let before = session.exp_string("\nafter-clear").unwrap();
    assert!(!before.contains('\u{1b}'), "no escape codes: {before:?}");
    session.exp_string("$ ").unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn a_command_of_this_machine_is_refused_at_once_and_a_long_one_not_echoed() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send_line("/bin/true").unwrap();
    session
        .exp_string("\nkubesh: /bin/true: is a command of this machine (in /bin)")
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line(&"y".repeat(3000)).unwrap();
    session
        .exp_string(
            &format!(
                "\nkubesh: {}… (3000 characters): not a builtin",
                "y".repeat(60)
            )
            .bytes()
            .map(char::from)
            .collect::<String>(),
        )
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn errors_do_not_end_the_interactive_shell_and_ctrl_d_does() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send_line("cat missing-file").unwrap();
    session
        .exp_string("\nkubesh: cat: missing-file: no such file")
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo 'unterminated").unwrap();
    session
        .exp_string("column 6: unterminated single quote")
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("exit-typo").unwrap();
    session
        .exp_string("\nkubesh: exit-typo: not a builtin")
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_control('d').unwrap();
    session.exp_eof().unwrap();
    let status = session.process.wait().unwrap();
    assert_eq!(
        status,
        rexpect::process::wait::WaitStatus::Exited(session.process.child_pid, 127)
    );
}

#[test]
fn a_builtin_name_and_a_blank_show_its_synopsis() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send("sleep ").unwrap();
    session.flush().unwrap();
    session.exp_string("DURATION").unwrap();
    session.send_line("0").unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo status=$?").unwrap();
    session.exp_string("\nstatus=0").unwrap();
}

#[test]
fn tab_completes_a_context_after_cx() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    session.send("cx te\t").unwrap();
    session.flush().unwrap();
    session.exp_string("test-ctx").unwrap();
    session.send_line("").unwrap();
    session
        .exp_string("\ncontext test-ctx, namespace shop")
        .unwrap();
}

/// A new user's first Flask app: `app.run()` listens on loopback. The
/// launch says so and that the dproc stays; `watch` at the prompt, then
/// the saved fix, and the service answers, with no new launch.
#[test]
fn a_service_on_loopback_is_put_right_by_watch_and_a_saved_fix() {
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    let server = |host: &str, port: &str, page: &str| {
        format!(
            "import http.server, os\n\
             class H(http.server.BaseHTTPRequestHandler):\n  \
             def do_GET(s):\n    s.send_response(200); s.end_headers(); s.wfile.write(b'{page}')\n\
             http.server.HTTPServer(('{host}', {port}), H).serve_forever()\n"
        )
    };
    sandbox.write("site.py", server("127.0.0.1", "5000", "unreachable"));
    let mut command = cluster.kubesh(&sandbox);
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(60_000)).unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("python site.py &").unwrap();
    session
        .exp_string("site listens on 127.0.0.1:5000, which only the pod itself reaches")
        .unwrap();
    session
        .exp_string("; after `watch site` a saved fix reloads it")
        .unwrap();
    session.exp_string("$ ").unwrap();
    // The dproc that stays is completed like any other.
    session.send("watch si\t").unwrap();
    session.flush().unwrap();
    session.exp_string("watch site").unwrap();
    session.send_line("").unwrap();
    session.exp_string("$ ").unwrap();
    sandbox.write(
        "site.py",
        server("0.0.0.0", "int(os.environ['PORT'])", "fixed page"),
    );
    session.exp_string("site  1 file  ").unwrap();
    // The reload line comes once the pod is ready again: the service
    // answers the first curl after it.
    session.exp_string("(live)").unwrap();
    session.send_line("curl site:8080/").unwrap();
    session.exp_string("\nfixed page").unwrap();
    session.send_line("kill site; exit 0").unwrap();
    session.exp_eof().unwrap();
}

#[test]
fn ctrl_c_stops_a_foreground_program_and_deletes_its_pod() {
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    sandbox.write(
        "ticker.py",
        "import time\nprint('ticking', flush=True)\nwhile True:\n    time.sleep(0.1)\n",
    );
    let mut command = cluster.kubesh(&sandbox);
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(TIMEOUT_MS)).unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("python ticker.py").unwrap();
    // The spinner clears its line, then the program's output follows.
    session.exp_string("ticking\r\n").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("echo status=$?").unwrap();
    session.exp_string("\nstatus=130").unwrap();
    cluster.wait_for_kubectl(&["get", "pods", "-o", "name"], "");
}

#[test]
fn a_foreground_program_reads_what_is_typed_and_the_prompt_gets_the_rest() {
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    sandbox.write(
        "greet.py",
        "import sys\nname = input('name? ')\nprint(f'hello {name}')\n\
         print('rest', repr(sys.stdin.read()))\nsys.exit(3)\n",
    );
    let mut command = cluster.kubesh(&sandbox);
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(TIMEOUT_MS)).unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("python greet.py").unwrap();
    session.exp_string("name? ").unwrap();
    session.send_line("Ada").unwrap();
    session.exp_string("hello Ada\r\n").unwrap();
    session.send_line("more").unwrap();
    // Ctrl-D at the start of a line: end of the program's input.
    session.send_control('d').unwrap();
    session.exp_string("rest 'more\\n'\r\n").unwrap();
    session.exp_string("$ ").unwrap();
    // Once the program has ended, what is typed goes to the shell again.
    session.send_line("echo status=$?").unwrap();
    session.exp_string("\nstatus=3").unwrap();
}

#[test]
fn ctrl_c_at_the_embedded_local_cluster_stops_only_the_foreground_program() {
    // The terminal sends Ctrl-C to kubesh's whole process group; the local
    // cluster kubesh started (its pods' sandboxes among them) must not hear
    // it.
    let sandbox = Sandbox::new();
    sandbox.write(
        "web.py",
        "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(s):\n    s.send_response(200); s.end_headers(); s.wfile.write(b'still here')\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n",
    );
    sandbox.write(
        "ticker.py",
        "import time\nprint('ticking', flush=True)\nwhile True:\n    time.sleep(0.1)\n",
    );
    let _cluster = common::SharedCluster::guard(&sandbox);
    let mut command = sandbox.command();
    command
        .arg("--local")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(30_000)).unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("python web.py &").unwrap();
    session.exp_string("ready in").unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("python ticker.py").unwrap();
    session.exp_string("ticking\r\n").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("curl web:8080/").unwrap();
    session.exp_string("\nstill here").unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("kill web").unwrap();
    session.exp_string("killed web").unwrap();
}

/// Bracketed paste, as terminals send a paste once the line editor asks.
fn paste(session: &mut PtySession, block: &str) {
    session
        .send(&format!("\u{1b}[200~{block}\u{1b}[201~"))
        .unwrap();
    session.flush().unwrap();
}

/// kubesh in a terminal of `columns` columns whose `TERM` is `term`.
fn start_at_width(
    sandbox: &Sandbox,
    command: std::process::Command,
    term: &str,
    columns: u16,
) -> PtySession {
    let program = command.get_program().to_owned();
    let mut wrapped = std::process::Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("stty cols {columns} rows 40 && exec \"$0\" \"$@\""))
        .arg(program)
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped.current_dir(sandbox.work());
    wrapped.env("TERM", term).env("NO_COLOR", "1");
    spawn_command(wrapped, Some(60_000)).expect("kubesh starts in a pty")
}

#[test]
fn a_pasted_block_runs_line_by_line_each_shown_with_its_output() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    paste(&mut session, "echo p-one\recho p-two\recho p-three\r");
    session.send("\r").unwrap();
    session.flush().unwrap();
    let before = session.exp_string("\np-one\r\n").unwrap();
    assert!(!before.contains("p-one echo"), "{before:?}");
    session
        .exp_string(&format!("{PROMPT}echo p-two\r\np-two\r\n"))
        .unwrap();
    session
        .exp_string(&format!("{PROMPT}echo p-three\r\np-three\r\n"))
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("history 4").unwrap();
    session.exp_string("  echo p-three").unwrap();
}

#[test]
fn ctrl_c_during_a_pasted_block_stops_the_command_and_drops_the_rest() {
    let sandbox = Sandbox::new();
    let mut session = start(&sandbox);
    paste(
        &mut session,
        "echo c-one\nsleep 30\necho c-three\necho c-four",
    );
    session.send("\r").unwrap();
    session.flush().unwrap();
    session.exp_string("\nc-one\r\n").unwrap();
    session
        .exp_string(&format!("{PROMPT}sleep 30\r\n"))
        .unwrap();
    session.send_control('c').unwrap();
    session
        .exp_string("kubesh: interrupted; 2 pasted lines not run")
        .unwrap();
    session.exp_string(PROMPT).unwrap();
    session.send_line("echo status=$?").unwrap();
    let before = session.exp_string("\nstatus=130").unwrap();
    assert!(!before.contains("c-three"), "{before:?}");
}

#[test]
fn a_block_pasted_at_a_dumb_terminal_of_60_columns_runs_line_by_line_without_escapes() {
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    sandbox.write("hello.py", "print('hello from the pod')\n");
    let long = "w".repeat(70);
    let mut session = start_at_width(&sandbox, cluster.kubesh(&sandbox), "dumb", 60);
    session.exp_string("$ ").unwrap();
    // A terminal that was not asked for bracketed paste sends the lines as
    // typed, all at once.
    let lines = [
        "echo d-one".to_string(),
        format!("echo {long}"),
        "python hello.py".to_string(),
        "echo d-four".to_string(),
        "echo d-five".to_string(),
    ];
    session.send(&format!("{}\r", lines.join("\r"))).unwrap();
    session.flush().unwrap();
    let mut transcript = String::new();
    transcript += &session.exp_string("echo d-one\r\nd-one\r\n").unwrap();
    transcript += &session
        .exp_string(&format!("$ echo {long}\r\n{long}\r\n"))
        .unwrap();
    transcript += &session.exp_string("$ python hello.py\r\n").unwrap();
    // Progress as plain lines, then the program's output.
    transcript += &session.exp_string("hello from the pod\r\n").unwrap();
    transcript += &session.exp_string("$ echo d-four\r\nd-four\r\n").unwrap();
    transcript += &session.exp_string("$ echo d-five\r\nd-five\r\n").unwrap();
    transcript += &session.exp_string("$ ").unwrap();
    assert!(
        !transcript.contains('\u{1b}'),
        "no escape sequences at a dumb terminal: {transcript:?}"
    );
    assert!(
        transcript.contains("hello-") && transcript.contains(": creating\r\n"),
        "the launch's progress as plain lines: {transcript:?}"
    );
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}
