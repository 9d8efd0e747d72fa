//! The guided tour at a terminal (`kubesh tour`), against a local cluster:
//! each step is checked from what ran before the tour goes on, a wrong try
//! gets a hint, and a tour left with Ctrl-D or `tour stop` goes on where
//! it was left.

mod common;

use common::{LocalCluster, Sandbox};
use rexpect::session::{PtySession, spawn_command};

/// Launches wait on pods; generous on a busy machine.
const TIMEOUT_MS: u64 = 120_000;
const PROMPT: &str = "[kubesh-local::default]$ ";

fn start_tour(sandbox: &Sandbox, cluster: &LocalCluster) -> PtySession {
    let mut command = cluster.kubesh(sandbox);
    command
        .arg("tour")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    spawn_command(command, Some(TIMEOUT_MS)).expect("kubesh tour starts in a pty")
}

/// Types `line` and waits for `seen`, then for the prompt.
fn step(tour: &mut PtySession, line: &str, seen: &[&str]) {
    tour.send_line(line).unwrap();
    for text in seen {
        tour.exp_string(text)
            .unwrap_or_else(|e| panic!("after `{line}`, waiting for {text:?}: {e}"));
    }
    tour.exp_string(PROMPT).unwrap();
}

fn progress(sandbox: &Sandbox) -> serde_json::Value {
    let text = std::fs::read_to_string(sandbox.path("data/kubesh/tour.json"))
        .expect("the tour's progress in XDG_DATA_HOME/kubesh");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn each_step_is_checked_from_what_ran_and_a_wrong_try_gets_a_hint() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let mut tour = start_tour(&sandbox, &cluster);
    tour.exp_string("Welcome to the kubesh tour: 8 steps")
        .unwrap();
    let directory = sandbox.work().join("kubesh-tour");
    tour.exp_string("Its files are in").unwrap();
    tour.exp_string(&directory.display().to_string()).unwrap();
    tour.exp_string("Tour, step 1 of 8: a program in the cluster")
        .unwrap();
    tour.exp_string("    python hello.py").unwrap();
    tour.exp_string(PROMPT).unwrap();
    for file in ["hello.py", "web.py", "client.py"] {
        assert!(directory.join(file).is_file(), "{file} written");
    }

    // Looking around is no wrong try; a mistyped file is, with a hint.
    step(&mut tour, "pwd", &[&format!("\n{}", directory.display())]);
    step(
        &mut tour,
        "python helo.py",
        &["Not yet. `python helo.py` is not this step."],
    );
    step(
        &mut tour,
        "python hello.py",
        &[
            "Hello from a pod!",
            "Step 1 done: hello.py ran in a pod",
            "Tour, step 2 of 8: a service in the background",
        ],
    );
    assert_eq!(progress(&sandbox)["done"], 1);
    step(
        &mut tour,
        "python web.py &",
        &[
            "web  ready in",
            "Step 2 done: web is ready",
            "Tour, step 3 of 8",
        ],
    );
    step(&mut tour, "ps", &["Step 3 done", "Tour, step 4 of 8"]);
    step(
        &mut tour,
        "curl web",
        &["Hello from web!", "Step 4 done", "Tour, step 5 of 8"],
    );
    step(
        &mut tour,
        "logs web",
        &["web: GET /", "Step 5 done", "Tour, step 6 of 8"],
    );
    step(
        &mut tour,
        "python client.py",
        &[
            "web answered: Hello from web!",
            "Step 6 done: client.py found web by WEB_URL",
            "Tour, step 7 of 8: change the code while it runs",
        ],
    );

    // A curl before any reload is a wrong try.
    step(
        &mut tour,
        "curl web",
        &["Not yet. No reload of web was seen yet."],
    );
    step(&mut tour, "watch web", &["watching web"]);
    let web = directory.join("web.py");
    let code = std::fs::read_to_string(&web).expect("web.py");
    std::fs::write(&web, code.replace("Hello from web!", "Hello, reloaded!")).expect("a save");
    // (rexpect reads bytes as characters: the line's arrow is not one.)
    tour.exp_regex(r" web  \d+ files?  [^\r\n]*").unwrap();
    step(
        &mut tour,
        "curl web",
        &[
            "Hello, reloaded!",
            "Step 7 done: web answered with the code you saved",
            "Tour, step 8 of 8: clean up",
        ],
    );
    step(
        &mut tour,
        "kill web",
        &["killed web", "Step 8 done", "The tour is done"],
    );
    assert_eq!(progress(&sandbox)["done"], 8);
    tour.send_line("exit").unwrap();
    tour.exp_eof().unwrap();
}

#[test]
fn the_tour_goes_on_where_it_was_left() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let mut tour = start_tour(&sandbox, &cluster);
    tour.exp_string("Tour, step 1 of 8").unwrap();
    tour.exp_string(PROMPT).unwrap();
    step(
        &mut tour,
        "python hello.py",
        &["Step 1 done", "Tour, step 2 of 8"],
    );
    // Ctrl-D leaves the tour with kubesh.
    tour.send_control('d').unwrap();
    tour.exp_string("The tour stopped at step 2 of 8. `kubesh tour`")
        .unwrap();
    tour.exp_eof().unwrap();

    let mut tour = start_tour(&sandbox, &cluster);
    tour.exp_string("Welcome back to the kubesh tour: on with step 2 of 8.")
        .unwrap();
    tour.exp_string("Tour, step 2 of 8: a service in the background")
        .unwrap();
    tour.exp_string(PROMPT).unwrap();
    step(
        &mut tour,
        "tour stop",
        &["The tour stopped at step 2 of 8."],
    );
    // Stopped: nothing typed is judged.
    tour.send_line("python helo.py").unwrap();
    let (between, _) = tour.exp_regex(r"\]\$ ").unwrap();
    assert!(!between.contains("Not yet"), "{between}");
    step(
        &mut tour,
        "tour",
        &["Welcome back to the kubesh tour: on with step 2 of 8."],
    );
    tour.send_line("exit").unwrap();
    tour.exp_eof().unwrap();

    // In a new session, a step after the second first asks for web again:
    // only what this shell launched can be watched.
    let mut saved = progress(&sandbox);
    saved["done"] = 4.into();
    std::fs::write(
        sandbox.path("data/kubesh/tour.json"),
        serde_json::to_string(&saved).unwrap(),
    )
    .unwrap();
    let mut tour = start_tour(&sandbox, &cluster);
    tour.exp_string("on with step 5 of 8").unwrap();
    tour.exp_string("Step 5 talks to web, the service of step 2")
        .unwrap();
    tour.exp_string(PROMPT).unwrap();
    step(
        &mut tour,
        "python web.py &",
        &[
            "web is ready",
            "On with step 5.",
            "Tour, step 5 of 8: its logs",
        ],
    );
    tour.send_line("exit").unwrap();
    tour.exp_eof().unwrap();
}

#[test]
fn the_tour_is_typed_at_a_terminal() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .command()
        .arg("tour")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kubesh runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "kubesh: tour: the tour is typed at a terminal; run `kubesh tour` in one\n"
    );
}
