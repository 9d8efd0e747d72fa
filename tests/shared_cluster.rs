//! One local cluster per user, shared: `kubesh --local` starts it when it
//! is not running and uses it when it is; it outlives the kubesh that
//! started it, until `kubesh local-cluster stop`. Each test has its own
//! data directory (so its own cluster) and stops it at the end.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, SharedCluster, bounded};
use predicates::prelude::*;
use predicates::str::contains;
use rexpect::session::spawn_command;

const WEB: &str = "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(s):\n    s.send_response(200); s.end_headers(); s.wfile.write(b'still here')\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";

/// What `kubesh ARGS` in the sandbox prints (stdout, stderr) and its status.
fn kubesh(sandbox: &Sandbox, args: &[&str]) -> (String, String, i32) {
    let output = bounded(sandbox.command(), args)
        .output()
        .expect("kubesh runs");
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
        output.status.code().unwrap_or(-1),
    )
}

/// Whether process `pid` runs (an ended one whose parent has not yet
/// collected it does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.contains("State:\tZ"))
}

/// The address `--local` said it uses.
fn address(stderr: &str) -> String {
    let start = stderr
        .find("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("an address in {stderr:?}"));
    stderr[start..]
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_program_launched_by_one_kubesh_is_listed_curled_and_killed_from_another_after_the_first_exits()
{
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    sandbox.write("web.py", WEB);
    // The first kubesh starts the cluster, launches the program and exits.
    let (_, first, status) = kubesh(&sandbox, &["--local", "-c", "python web.py &"]);
    assert_eq!(status, 0, "{first}");
    assert!(
        first.contains("kubesh: started the local cluster at https://127.0.0.1:")
            && first.contains("it keeps running after kubesh exits"),
        "{first}"
    );
    // A second one finds the same cluster, and the program still answering.
    bounded(sandbox.command(), &["--local", "-c", "ps; curl web:8080/"])
        .assert()
        .success()
        .stderr(contains(format!(
            "kubesh: local cluster at {} (pid ",
            address(&first)
        )))
        .stderr(contains("started").not())
        .stdout(contains("deployment  Running").and(contains("still here")));
    // kubectl, with the kubeconfig it printed, sees it too.
    let kubeconfig = cluster.kubeconfig();
    assert!(first.contains(&format!("KUBECONFIG={}", kubeconfig.display())));
    let deployments = cluster
        .kubectl()
        .args(["get", "deployments", "-o", "name"])
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&deployments.stdout).trim(),
        "deployment.apps/web"
    );
    bounded(sandbox.command(), &["--local", "-c", "kill web"])
        .assert()
        .success()
        .stdout(contains("killed web"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (stdout, _, _) = kubesh(&sandbox, &["--local", "-c", "ps"]);
        if !stdout.contains("web.py") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "web is gone after kill:\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_kubesh_started_at_the_same_moment_get_one_cluster() {
    let sandbox = Sandbox::new();
    let _cluster = SharedCluster::guard(&sandbox);
    let spawn = || {
        let mut command = sandbox.command();
        command
            .args(["--local", "-c", "echo ok"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().expect("kubesh starts")
    };
    let (a, b) = (spawn(), spawn());
    let a = a.wait_with_output().expect("the first kubesh ends");
    let b = b.wait_with_output().expect("the second kubesh ends");
    let (a_err, b_err) = (
        String::from_utf8_lossy(&a.stderr).to_string(),
        String::from_utf8_lossy(&b.stderr).to_string(),
    );
    assert!(a.status.success() && b.status.success(), "{a_err}\n{b_err}");
    assert_eq!(address(&a_err), address(&b_err), "{a_err}\n{b_err}");
    let started = [&a_err, &b_err]
        .iter()
        .filter(|e| e.contains("started the local cluster"))
        .count();
    assert_eq!(started, 1, "one of them started it:\n{a_err}\n{b_err}");
}

#[test]
fn status_stop_and_start_from_any_terminal() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    sandbox.write("web.py", WEB);
    bounded(sandbox.command(), &["local-cluster", "status"])
        .assert()
        .code(3)
        .stdout(contains("the local cluster is not running"));
    bounded(sandbox.command(), &["--local", "-c", "python web.py &"])
        .assert()
        .success();
    let pid = cluster.recorded_pid().expect("a running cluster's pid");
    let (status, _, code) = kubesh(&sandbox, &["local-cluster", "status"]);
    assert_eq!(code, 0, "{status}");
    for field in [
        "the local cluster is running\n".to_string(),
        "  address     https://127.0.0.1:".to_string(),
        format!("  kubeconfig  {}\n", cluster.kubeconfig().display()),
        format!("  pid         {pid}\n"),
        "  uptime      ".to_string(),
        "  pods        1\n".to_string(),
        "Running\n".to_string(),
    ] {
        assert!(status.contains(&field), "{field:?} in:\n{status}");
    }
    bounded(sandbox.command(), &["local-cluster", "stop"])
        .assert()
        .success()
        .stdout(contains(format!("stopped the local cluster (pid {pid})")));
    // Stopped means ended, with its pods: the process is gone.
    assert!(
        !alive(pid),
        "the cluster's process {pid} is gone once stop returns"
    );
    bounded(sandbox.command(), &["local-cluster", "stop"])
        .assert()
        .success()
        .stdout(contains("the local cluster is not running"));
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success()
        .stdout(contains("started the local cluster (pid "));
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success()
        .stdout(contains("the local cluster is already running (pid "));
}

/// A setting the cluster reads when it starts, asked for once it runs, is
/// named as not in effect, with how to restart it with the setting; the
/// same setting again, or none, draws no word.
#[test]
fn a_setting_the_running_cluster_did_not_start_with_is_named() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    // The sandbox's commands run pods' commands from this machine
    // (KUBESH_LOCAL_IMAGES=host).
    bounded(sandbox.command(), &["--local", "-c", "echo first"])
        .assert()
        .success();
    let pid = cluster.recorded_pid().expect("a running cluster's pid");
    bounded(sandbox.command(), &["--local", "-c", "echo same"])
        .assert()
        .success()
        .stdout("same\n")
        .stderr(contains("not in effect").not());
    let mut other = sandbox.command();
    other
        .env("KUBESH_LOCAL_IMAGES", "engine")
        .env("KUBESH_LOCAL_SANDBOX", "off");
    bounded(other, &["--local", "-c", "echo other"])
        .assert()
        .success()
        .stdout("other\n")
        .stderr(contains(format!(
            "kubesh: warning: KUBESH_LOCAL_IMAGES=engine is not in effect: the local cluster (pid {pid}) started with KUBESH_LOCAL_IMAGES=host, and reads it only when it starts; `kubesh local-cluster stop`, then `KUBESH_LOCAL_IMAGES=engine kubesh --local` starts it with it"
        )))
        .stderr(contains(format!(
            "kubesh: warning: KUBESH_LOCAL_SANDBOX=off is not in effect: the local cluster (pid {pid}) started without KUBESH_LOCAL_SANDBOX"
        )));
    let mut start = sandbox.command();
    start.env("KUBESH_LOCAL_SANDBOX", "off");
    bounded(start, &["local-cluster", "start"])
        .assert()
        .success()
        .stdout(contains("the local cluster is already running"))
        .stderr(contains(
            "kubesh: local-cluster: warning: KUBESH_LOCAL_SANDBOX=off is not in effect",
        ));
}

/// What the cluster keeps across a stop and a start: the program comes
/// back, as on a node that rebooted.
#[test]
fn stop_then_start_brings_a_background_program_back() {
    let sandbox = Sandbox::new();
    let _cluster = SharedCluster::guard(&sandbox);
    sandbox.write("web.py", WEB);
    bounded(sandbox.command(), &["--local", "-c", "python web.py &"])
        .assert()
        .success();
    bounded(sandbox.command(), &["local-cluster", "stop"])
        .assert()
        .success();
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success();
    // Its pod starts again after the server: asked until it answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last;
    loop {
        let (stdout, stderr, _) = kubesh(&sandbox, &["--local", "-c", "curl web:8080/"]);
        if stdout.contains("still here") {
            break;
        }
        last = format!("{stdout}{stderr}");
        assert!(
            Instant::now() < deadline,
            "web answers again after a restart; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_crashed_cluster_is_started_again_by_the_next_kubesh() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success();
    let crashed = cluster.recorded_pid().expect("a running cluster's pid");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &crashed.to_string()])
        .status();
    // The lock went with the process: the record left behind is not taken
    // for a running cluster.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(crashed) {
        assert!(Instant::now() < deadline, "kill -9 ends {crashed}");
        std::thread::sleep(Duration::from_millis(10));
    }
    bounded(sandbox.command(), &["local-cluster", "status"])
        .assert()
        .code(3);
    bounded(sandbox.command(), &["--local", "-c", "echo still a shell"])
        .assert()
        .success()
        .stdout("still a shell\n")
        .stderr(contains("kubesh: started the local cluster at"));
    assert_ne!(cluster.recorded_pid(), Some(crashed));
}

#[test]
fn reset_asks_before_deleting_anything() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success();
    let state = cluster.dir().join("state");
    // No terminal to ask on, no --yes: nothing is deleted.
    bounded(sandbox.command(), &["local-cluster", "reset"])
        .assert()
        .code(1)
        .stderr(contains("nothing deleted").and(contains("--yes")));
    assert!(state.exists());
    bounded(sandbox.command(), &["local-cluster", "status"])
        .assert()
        .success();
    bounded(sandbox.command(), &["local-cluster", "reset", "--yes"])
        .assert()
        .success()
        .stdout(contains("stopped the local cluster").and(contains("deleted")));
    assert!(!state.exists() && !cluster.kubeconfig().exists());
    bounded(sandbox.command(), &["local-cluster", "status"])
        .assert()
        .code(3);
}

/// What the kubesh before the store left in its data directory: its
/// objects were in memory only, so the state held the lock's record, the
/// pods' directories of its last run and beside it that run's kubeconfig.
#[test]
fn a_state_directory_from_before_the_store_is_taken_over() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    let state = cluster.dir().join("state");
    let old_run = state.join("run-999999999");
    std::fs::create_dir_all(old_run.join("pods/8d2c/volumes/data")).expect("old pod directories");
    std::fs::write(
        state.join("server.lock"),
        format!(
            "pid 999999999\nstarted 1700000000\nkubeconfig {}\n",
            cluster.kubeconfig().display()
        ),
    )
    .expect("the old lock's record");
    let old_kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesh-local\n  cluster: {server: 'https://127.0.0.1:1'}\n";
    std::fs::write(cluster.kubeconfig(), old_kubeconfig).expect("the old kubeconfig");
    bounded(sandbox.command(), &["--local", "-c", "echo ok"])
        .assert()
        .success()
        .stdout("ok\n")
        .stderr(contains("kubesh: started the local cluster at"));
    // The old run's pod directories are gone, a store is kept from now on,
    // and the kubeconfig is the new cluster's.
    assert!(!old_run.exists(), "{} is removed", old_run.display());
    assert!(state.join("store.db").exists());
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).expect("the kubeconfig");
    assert_ne!(kubeconfig, old_kubeconfig);
    let namespaces = cluster
        .kubectl()
        .args(["get", "namespace", "default", "-o", "name"])
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&namespaces.stdout).trim(),
        "namespace/default",
        "{}",
        String::from_utf8_lossy(&namespaces.stderr)
    );
}

#[test]
fn a_data_directory_that_cannot_be_written_is_named() {
    let sandbox = Sandbox::new();
    let _cluster = SharedCluster::guard(&sandbox);
    // A file where the data directory should be: nothing can be made in it.
    let not_a_directory = sandbox.path("data-file");
    std::fs::write(&not_a_directory, "").expect("a file");
    let mut command = sandbox.command();
    command.env("XDG_DATA_HOME", &not_a_directory);
    bounded(command, &["--local", "-c", "echo never"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains(format!(
            "kubesh: --local: cannot write the local cluster's directory {}/kubesh/local-cluster: ",
            not_a_directory.display()
        )));
}

#[test]
fn a_second_cluster_on_the_same_state_is_refused() {
    let sandbox = Sandbox::new();
    let cluster = SharedCluster::guard(&sandbox);
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success();
    let pid = cluster.recorded_pid().expect("a running cluster's pid");
    // The foreground form, on the same (default) state.
    bounded(sandbox.command(), &["local-cluster"])
        .assert()
        .code(1)
        .stderr(contains(format!(
            "is in use by another local cluster (pid {pid}); stop it first"
        )));
}

/// A session at the prompt while the cluster stops and starts again: the
/// cluster keeps its address, CA and token, so the same session reaches it
/// again with no `cx`, and its background program answers.
#[test]
fn a_session_at_the_prompt_reaches_the_cluster_again_after_stop_and_start() {
    const PROMPT: &str = "[kubesh-local::default]$ ";
    let sandbox = Sandbox::new();
    let _cluster = SharedCluster::guard(&sandbox);
    sandbox.write("web.py", WEB);
    let mut command = sandbox.command();
    command
        .arg("--local")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut session = spawn_command(command, Some(60_000)).expect("kubesh starts in a pty");
    session.exp_string(PROMPT).expect("the first prompt");
    session.send_line("python web.py &").unwrap();
    session.exp_string("ready in").unwrap();
    session.exp_string(PROMPT).unwrap();

    bounded(sandbox.command(), &["local-cluster", "stop"])
        .assert()
        .success();
    bounded(sandbox.command(), &["local-cluster", "start"])
        .assert()
        .success();

    // The same session, with no `cx`: asked until the pod, started again
    // after the server, answers.
    // (The marker is printed from a variable, so the line as typed never
    // matches it.)
    session.send_line("m=attempt").unwrap();
    session.exp_string(PROMPT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    loop {
        attempt += 1;
        session
            .send_line(&format!("curl web:8080/; echo $m-{attempt}."))
            .unwrap();
        let said = session.exp_string(&format!("attempt-{attempt}.")).unwrap();
        session.exp_string(PROMPT).unwrap();
        if said.contains("still here") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session reaches web again after a restart; last: {said}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    session.send_line("ps").unwrap();
    let listed = session.exp_string(PROMPT).unwrap();
    assert!(listed.contains("web"), "{listed}");
    assert!(!listed.contains("cx"), "{listed}");
    session.send_line("exit").unwrap();
    session.exp_eof().unwrap();
}
