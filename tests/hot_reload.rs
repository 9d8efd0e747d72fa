//! Hot reload against the local cluster: saving a watched service's files
//! changes the program in its running pod (the live path) or rolls new pods
//! out (the rollout path), as `curl` through the service shows.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{LocalCluster, Sandbox, free_port};

const WEB_PY: &str = r#"
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"PAGE\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const WEB_JS: &str = r#"
require("http").createServer((req, res) => res.end("PAGE\n")).listen(process.env.PORT);
"#;

/// A static C program answering every connection with one page.
const WEB_C: &str = r#"
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    const char *page = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nPAGE\n";
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(getenv("PORT")));
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) return 1;
    for (;;) {
        int c = accept(s, 0, 0);
        char request[1024];
        read(c, request, sizeof request);
        write(c, page, strlen(page));
        close(c);
    }
}
"#;

/// A kubesh session watching the dprocs it launches, its output (stdout
/// and stderr, where the reload lines go) collected as it comes.
struct Watching {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Watching {
    /// Launches `launch` in the background with `--watch` and stays.
    fn start(cluster: &LocalCluster, sandbox: &Sandbox, launch: &str) -> Watching {
        Watching::run(cluster, sandbox, &format!("{launch} & sleep 600"))
    }

    fn run(cluster: &LocalCluster, sandbox: &Sandbox, line: &str) -> Watching {
        let mut child = cluster
            .kubesh(sandbox)
            .args(["--watch", "-c", line])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubesh starts");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        collect(stdout, Arc::clone(&output));
        collect(stderr, Arc::clone(&output));
        Watching { child, output }
    }

    /// Waits until kubesh has printed `text` `count` times; returns all it
    /// printed.
    fn wait_for(&self, text: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = self.output.lock().unwrap().clone();
            if output.matches(text).count() >= count {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "kubesh did not print {text:?} {count} times:\n{output}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn collect(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page of the Service `name` on `port`, through the service proxy.
fn fetch(cluster: &LocalCluster, name: &str, port: u16) -> Option<String> {
    cluster.fetch_service(name, port, "/")
}

/// Waits until the page of the Service `name` on `port` is `expected`.
fn wait_for_page(cluster: &LocalCluster, name: &str, port: u16, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = fetch(cluster, name, port);
        if last.as_deref() == Some(expected) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the page of {name} on port {port} is {last:?}, not {expected:?}");
}

/// The names of the dproc's pods that are not being deleted.
fn pods(cluster: &LocalCluster, name: &str) -> String {
    let listing = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        &format!("app.kubernetes.io/name={name}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    listing
        .lines()
        .filter(|line| line.split_whitespace().count() == 1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The program file as stored in the dproc's first bundle ConfigMap.
fn stored_file(cluster: &LocalCluster, name: &str, file: &str) -> String {
    let encoded = cluster.kubectl_stdout(&[
        "get",
        "configmap",
        &format!("{name}-bundle-0"),
        "-o",
        "jsonpath={.binaryData.bundle\\.tgz}",
    ]);
    let output = std::process::Command::new("sh")
        .args(["-c", "base64 -d | tar -xzOf - \"$1\"", "sh", file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(encoded.as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 and tar run");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn saving_a_python_service_changes_the_program_in_its_running_pod() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let page = |text: &str| WEB_PY.replace("PAGE", text);
    sandbox.write("web.py", page("version one"));
    let port = free_port();
    let session = Watching::start(
        &cluster,
        &sandbox,
        &format!("SERVICE_PORT={port} python web.py"),
    );
    wait_for_page(&cluster, "web", port, "version one\n");
    let pod = pods(&cluster, "web");
    assert!(!pod.trim().is_empty(), "one pod runs");

    sandbox.write("web.py", page("version two"));
    wait_for_page(&cluster, "web", port, "version two\n");
    let stderr = session.wait_for("(live)", 1);
    assert!(stderr.contains("↻ web  1 file  "), "{stderr}");
    assert_eq!(pods(&cluster, "web"), pod, "the same pod runs the new code");

    // A syntax error shows the program's own message; the next good save
    // brings it back, still in the same pod.
    sandbox.write("web.py", "def broken(:\n");
    // The message comes in several lines: the program's own ends the wait.
    let stderr = session.wait_for("SyntaxError", 1);
    assert!(
        stderr.contains("the new code exits with status 1"),
        "{stderr}"
    );
    sandbox.write("web.py", page("version three"));
    wait_for_page(&cluster, "web", port, "version three\n");
    assert_eq!(pods(&cluster, "web"), pod);

    // Twenty saves in 200 ms end with the last one running, and nothing
    // older answers afterwards.
    for save in 1..=20 {
        sandbox.write("web.py", page(&format!("save {save}")));
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for_page(&cluster, "web", port, "save 20\n");
    for _ in 0..20 {
        assert_eq!(fetch(&cluster, "web", port).as_deref(), Some("save 20\n"));
    }
    assert!(stored_file(&cluster, "web", "web.py").contains("save 20"));

    // A pod started afterwards unpacks the newest code from the ConfigMaps.
    cluster.kubectl_stdout(&["delete", "pod", pod.trim(), "--wait=false"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pods(&cluster, "web") == pod || pods(&cluster, "web").trim().is_empty() {
        assert!(Instant::now() < deadline, "no new pod replaced {pod}");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_page(&cluster, "web", port, "save 20\n");
}

/// As Flask's `app.run()` does: a service that listens on loopback only
/// fails its launch, stays, and with hot reload on is watched, so that the
/// saved fix makes it answer without a new launch.
#[test]
fn a_service_listening_on_loopback_is_watched_and_a_saved_fix_makes_it_answer() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let loopback = WEB_PY.replace("PAGE", "unreachable").replace(
        "((\"\", int(os.environ[\"PORT\"]))",
        "((\"127.0.0.1\", 5000)",
    );
    assert!(loopback.contains("(\"127.0.0.1\", 5000)"), "{loopback}");
    sandbox.write("app.py", &loopback);
    let port = free_port();
    // The failed launch would stop the script; the session stays.
    let session = Watching::run(
        &cluster,
        &sandbox,
        &format!("set +e; SERVICE_PORT={port} python app.py & sleep 600"),
    );
    let said = session.wait_for("; it is watched: a saved fix reloads it", 1);
    assert!(
        said.contains("app listens on 127.0.0.1:5000, which only the pod itself reaches"),
        "{said}"
    );
    sandbox.write("app.py", WEB_PY.replace("PAGE", "fixed"));
    wait_for_page(&cluster, "app", port, "fixed\n");
    let said = session.wait_for("↻ app  1 file  ", 1);
    assert!(!said.contains("not watched"), "{said}");
}

#[test]
fn an_edit_to_an_imported_module_that_keeps_its_size_is_served() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // The page comes from an imported module, which Python caches as
    // bytecode keyed by the source's modification time and size.
    sandbox.write(
        "web.py",
        WEB_PY
            .replace("import http.server, os", "import http.server, os, page")
            .replace("b\"PAGE\\n\"", "page.TEXT.encode()"),
    );
    sandbox.write("page.py", "TEXT = 'aaa\\n'\n");
    let port = free_port();
    let session = Watching::start(
        &cluster,
        &sandbox,
        &format!("SERVICE_PORT={port} python web.py"),
    );
    wait_for_page(&cluster, "web", port, "aaa\n");
    for text in ["bbb", "ccc"] {
        sandbox.write("page.py", format!("TEXT = '{text}\\n'\n"));
        wait_for_page(&cluster, "web", port, &format!("{text}\n"));
    }
    session.wait_for("(live)", 2);
}

#[test]
fn kubesh_s_own_output_in_the_program_s_directory_is_not_a_save() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY.replace("PAGE", "one"));
    let port = free_port();
    // `kubesh --watch … > app.log 2>&1` in the program's directory: every
    // reload line is written to a file that is watched.
    let log = std::fs::File::create(sandbox.work().join("app.log")).unwrap();
    let mut child = cluster
        .kubesh(&sandbox)
        .args([
            "--watch",
            "-c",
            &format!("SERVICE_PORT={port} python web.py & sleep 600"),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for_page(&cluster, "web", port, "one\n");
    sandbox.write("web.py", WEB_PY.replace("PAGE", "two"));
    wait_for_page(&cluster, "web", port, "two\n");
    let reloads = || {
        std::fs::read_to_string(sandbox.work().join("app.log"))
            .unwrap()
            .matches("↻ web")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloads() == 0 {
        assert!(Instant::now() < deadline, "no reload line in app.log");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second save gives a second reload line; a reload loop would have
    // written several more by the time that one is served.
    sandbox.write("web.py", WEB_PY.replace("PAGE", "three"));
    wait_for_page(&cluster, "web", port, "three\n");
    while reloads() < 2 {
        assert!(
            Instant::now() < deadline,
            "no second reload line in app.log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let counted = reloads();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        counted,
        2,
        "{}",
        std::fs::read_to_string(sandbox.work().join("app.log")).unwrap()
    );
}

#[test]
fn a_node_service_and_a_rebuilt_binary_reload_live() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("node/web.js", WEB_JS.replace("PAGE", "node one"));
    let node_port = free_port();
    let node = Watching::start(
        &cluster,
        &sandbox,
        &format!("cd node; SERVICE_PORT={node_port} node web.js"),
    );
    wait_for_page(&cluster, "web", node_port, "node one\n");
    sandbox.write("node/web.js", WEB_JS.replace("PAGE", "node two"));
    wait_for_page(&cluster, "web", node_port, "node two\n");
    node.wait_for("↻ web  1 file  ", 1);
    node.wait_for("(live)", 1);

    let compiles = std::process::Command::new("gcc")
        .args(["-static", "-x", "c", "-", "-o", "/dev/null"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut gcc| {
            use std::io::Write;
            gcc.stdin
                .take()
                .unwrap()
                .write_all(b"int main(void){return 0;}")?;
            gcc.wait()
        })
        .is_ok_and(|status| status.success());
    if !compiles {
        eprintln!("skipped the binary: no gcc able to link statically (gcc, libc6-dev)");
        return;
    }
    let build = |text: &str| {
        let source = sandbox.write("bin/server.c", WEB_C.replace("PAGE", text));
        let status = std::process::Command::new("gcc")
            .args(["-static", "-O0", "-o"])
            .arg(sandbox.work().join("bin/server"))
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success(), "gcc builds the test server");
    };
    build("bin1");
    let bin_port = free_port();
    let binary = Watching::start(
        &cluster,
        &sandbox,
        &format!("cd bin; SERVICE_PORT={bin_port} ./server"),
    );
    wait_for_page(&cluster, "server", bin_port, "bin1\n");
    build("bin2");
    wait_for_page(&cluster, "server", bin_port, "bin2\n");
    // The source and the binary may go in one reload or two, as the
    // compiler takes its time; each goes live.
    let stderr = binary.wait_for("(live)", 1);
    let reloads: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("↻ server  "))
        .collect();
    assert!(
        !reloads.is_empty() && reloads.iter().all(|l| l.ends_with("  (live)")),
        "{stderr}"
    );
}

#[test]
fn an_image_without_a_shell_is_reloaded_by_a_rollout() {
    let sandbox = Sandbox::new();
    let runtimes = sandbox.path("config/kubesh/runtimes");
    std::fs::create_dir_all(&runtimes).unwrap();
    std::fs::write(
        runtimes.join("python.toml"),
        "description = \"Python in an image without a shell\"\n\
         extensions = [\"py\"]\ncommands = [\"python\"]\n\
         image = \"gcr.io/distroless/python3-debian12\"\n\
         run = [\"python3\", \"{file}\"]\nport = 8080\nshell = false\n",
    )
    .unwrap();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY.replace("PAGE", "before"));
    let port = free_port();
    let session = Watching::start(
        &cluster,
        &sandbox,
        &format!("SERVICE_PORT={port} python web.py"),
    );
    wait_for_page(&cluster, "web", port, "before\n");
    let pod = pods(&cluster, "web");
    sandbox.write("web.py", WEB_PY.replace("PAGE", "after"));
    // The new pod starts before the old one stops: the Service answers
    // all through the rollout.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = fetch(&cluster, "web", port);
        assert!(
            matches!(page.as_deref(), Some("before\n" | "after\n")),
            "the service answers throughout the rollout, not {page:?}"
        );
        if page.as_deref() == Some("after\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the new code never answered");
    }
    let stderr = session.wait_for("(rollout: the python runtime's image has no shell)", 1);
    assert!(stderr.contains("↻ web  1 file  "), "{stderr}");
    assert_ne!(pods(&cluster, "web"), pod, "a new pod runs the new code");
    assert!(
        stored_file(&cluster, "web", "web.py").contains("after"),
        "the ConfigMaps hold the code the new pods run"
    );

    // New code that crashes: its last lines, and the next save mends it.
    sandbox.write(
        "web.py",
        "print('broken on purpose', flush=True)\nraise SystemExit(3)\n",
    );
    // The message comes in several lines: its last one ends the wait.
    let stderr = session.wait_for("    broken on purpose", 1);
    assert!(
        stderr.contains("(rollout: the python runtime's image has no shell): with the new code, ")
            && stderr.contains("the next good save brings it back")
            && stderr.contains("status 3")
            && stderr.contains("    broken on purpose"),
        "{stderr}"
    );
    sandbox.write("web.py", WEB_PY.replace("PAGE", "mended"));
    wait_for_page(&cluster, "web", port, "mended\n");
}

#[test]
fn a_foreground_program_runs_again_when_its_files_change() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let job =
        |text: &str, then: &str| format!("import time\nprint({text:?}, flush=True)\n{then}\n");
    sandbox.write("job.py", job("run one", "time.sleep(600)"));
    let session = Watching::run(&cluster, &sandbox, "HOTRELOAD=true python job.py");
    session.wait_for("run one", 1);
    // Still running: stopped, and run again with the new file.
    sandbox.write("job.py", job("run two", "raise SystemExit(4)"));
    session.wait_for("run two", 1);
    let output = session.wait_for("ended with status 4", 1);
    assert!(
        output.contains("↻ job.py  running again with the new files"),
        "{output}"
    );
    // Ended: started anew on the next change.
    sandbox.write("job.py", job("run three", "time.sleep(600)"));
    session.wait_for("run three", 1);
    let running = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "--field-selector=status.phase=Running",
        "-o",
        "name",
    ]);
    assert_eq!(running.lines().count(), 1, "only the newest run: {running}");

    // `--watch` alone never holds a script at its first program.
    sandbox.write("quick.py", "print('quick')\n");
    let output = cluster
        .kubesh(&sandbox)
        .args(["--watch", "-c", "python quick.py; echo after"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "quick\nafter\n");
}

/// A file that changes right after every reload — here a log another tool
/// appends a line to each time kubesh prints a reload line — would reload
/// the dproc for ever: after five reloads in a row kubesh stops watching
/// it, names the file and says how to go on; `.kubeshignore` and `watch`
/// do.
#[test]
fn a_file_changed_after_every_reload_stops_the_watch() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY.replace("PAGE", "one"));
    let log = sandbox.write("app.log", "");
    let port = free_port();
    let mut command = cluster.kubesh(&sandbox);
    command
        .arg("--watch")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut shell = rexpect::session::spawn_command(command, Some(60_000)).expect("kubesh starts");
    let prompt = r"\]\$ ";
    shell.exp_regex(prompt).unwrap();
    shell
        .send_line(&format!("SERVICE_PORT={port} python web.py &"))
        .unwrap();
    shell.exp_string("ready in").unwrap();
    wait_for_page(&cluster, "web", port, "one\n");

    // A person's save starts it; then the tool writes after each reload.
    sandbox.write("web.py", WEB_PY.replace("PAGE", "two"));
    let mut reloads = 0;
    let stopped = loop {
        // (rexpect reads bytes as characters: the line's arrow is not one.)
        let (_, line) = shell
            .exp_regex(r" web  \d+ files?  [^\r\n]*|kubesh: web: [^\r\n]*")
            .unwrap();
        if line.starts_with("kubesh: web: ") {
            break line;
        }
        reloads += 1;
        assert!(reloads <= 30, "kubesh reloaded {reloads} times: {line}");
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, format!("reload {reloads}\n").as_bytes()).unwrap();
    };
    assert!(
        stopped.contains(
            "kubesh: web: app.log changed after each of the last 5 reloads; stopped watching web. \
             Add app.log to .kubeshignore, then `watch web`"
        ),
        "{stopped}"
    );
    // The person's reload, then five the log made.
    assert!(reloads >= 6, "stopped after {reloads} reloads");
    shell.send_line("watch").unwrap();
    let (listing, _) = shell.exp_regex(prompt).unwrap();
    assert!(!listing.contains("web"), "still watched: {listing:?}");

    sandbox.write(".kubeshignore", "app.log\n");
    shell.send_line("watch web").unwrap();
    shell.exp_string("watching web").unwrap();
    sandbox.write("web.py", WEB_PY.replace("PAGE", "three"));
    wait_for_page(&cluster, "web", port, "three\n");
}

#[test]
fn a_save_reaches_the_running_pod_live_over_the_exec_protocol_before_kubernetes_1_30() {
    let sandbox = Sandbox::new();
    // v4.channel.k8s.io only: closing stdin closes the whole stream, the
    // update's exit status included.
    let cluster = LocalCluster::start_before_1_30(&sandbox);
    let page = |text: &str| WEB_PY.replace("PAGE", text);
    sandbox.write("web.py", page("version one"));
    let port = free_port();
    let session = Watching::start(
        &cluster,
        &sandbox,
        &format!("SERVICE_PORT={port} python web.py"),
    );
    wait_for_page(&cluster, "web", port, "version one\n");
    let pod = pods(&cluster, "web");
    assert!(!pod.trim().is_empty(), "one pod runs");

    sandbox.write("web.py", page("version two"));
    wait_for_page(&cluster, "web", port, "version two\n");
    let output = session.wait_for("↻ web", 1);
    assert!(output.contains("(live)"), "{output}");
    assert!(!output.contains("rollout"), "{output}");
    assert_eq!(pods(&cluster, "web"), pod, "the same pod runs the new code");
}

/// The resourceVersion of each of the dproc's bundle ConfigMaps, by name.
fn config_map_versions(cluster: &LocalCluster, name: &str) -> Vec<(String, String)> {
    let listing = cluster.kubectl_stdout(&[
        "get",
        "configmaps",
        "-l",
        &format!("app.kubernetes.io/name={name}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.resourceVersion}{\"\\n\"}{end}",
    ]);
    let mut versions: Vec<(String, String)> = listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect();
    versions.sort();
    versions
}

#[test]
fn a_save_of_one_small_file_writes_one_configmap_of_a_large_bundle() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let page = |text: &str| WEB_PY.replace("PAGE", text);
    // 3 MiB that do not compress (four ConfigMaps), after a file that is
    // edited: in one gzip stream, every byte after the edit would change.
    let mut state: u64 = 11;
    let noise: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    sandbox.write("assets.bin", &noise);
    sandbox.write("about.txt", "about one\n");
    sandbox.write("web.py", page("version one"));
    let port = free_port();
    // `debug on`: every API request is shown, the ConfigMap writes too.
    let session = Watching::run(
        &cluster,
        &sandbox,
        &format!("debug on; SERVICE_PORT={port} python web.py & sleep 600"),
    );
    wait_for_page(&cluster, "web", port, "version one\n");
    let before = config_map_versions(&cluster, "web");
    assert!(before.len() >= 4, "{before:?}");

    let shown = session.output.lock().unwrap().len();
    sandbox.write("about.txt", "about two, a little longer\n");
    let output = session.wait_for("(live)", 1);
    let requests: Vec<&str> = output[shown..]
        .lines()
        .filter(|line| line.contains("PATCH") && line.contains("/configmaps/"))
        .collect();
    assert_eq!(requests.len(), 1, "one ConfigMap patched: {requests:#?}");
    let after = config_map_versions(&cluster, "web");
    let written: Vec<&String> = before
        .iter()
        .zip(&after)
        .filter(|(old, new)| old != new)
        .map(|((name, _), _)| name)
        .collect();
    assert_eq!(
        (after.len(), written.len()),
        (before.len(), 1),
        "one ConfigMap written: {written:?}"
    );

    // A pod started afterwards unpacks the whole, new bundle.
    sandbox.write("web.py", page("version two"));
    wait_for_page(&cluster, "web", port, "version two\n");
    let pod = pods(&cluster, "web");
    cluster.kubectl_stdout(&["delete", "pod", pod.trim(), "--wait=false"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pods(&cluster, "web") == pod || pods(&cluster, "web").trim().is_empty() {
        assert!(Instant::now() < deadline, "no new pod replaced {pod}");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_page(&cluster, "web", port, "version two\n");
    let about = cluster.kubectl_stdout(&["exec", "deploy/web", "--", "cat", "/app/about.txt"]);
    assert_eq!(about, "about two, a little longer");
}
