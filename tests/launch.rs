//! Launching programs on the local cluster with the real `kubesh` binary:
//! foreground pods with their output and exit status, background services
//! that become ready, `ps`, `logs`, `kill`, dependency steps, binaries, a
//! second session seeing the first one's dprocs, and `--dry-run`.

mod common;

use assert_cmd::assert::OutputAssertExt;
use common::{LocalCluster, Sandbox, bounded, free_port};
use predicates::prelude::*;
use predicates::str::contains;

const WEB_PY: &str = r#"
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from web\n")
    def log_message(self, *args):
        print("served", self.path, flush=True)
http.server.HTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const JOB_PY: &str = r#"
import os, sys
print("args", sys.argv[1:])
print("cwd", os.getcwd())
print("GREETING", os.environ.get("GREETING"), "ONLY", os.environ.get("ONLY"))
print("data", open("data.txt").read().strip())
sys.exit(int(os.environ.get("EXIT", "0")))
"#;

#[test]
fn a_foreground_program_streams_its_output_and_its_status_becomes_dollar_question() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("job.py", JOB_PY);
    sandbox.write("data.txt", "beside the program\n");
    sandbox.write(
        "run.kubesh",
        "export GREETING='hi there'\nset +e\nONLY=once EXIT=3 python job.py 'a b' '$HOME' '$(GREETING)' '$$' \"\"\n\
         echo \"status=$?\"\npython job.py\n",
    );
    cluster
        .kubesh(&sandbox)
        .arg("run.kubesh")
        .assert()
        .success()
        .stdout(contains(
            "args ['a b', '$HOME', '$(GREETING)', '$$', '']\ncwd /app\nGREETING hi there ONLY once\ndata beside the program\nstatus=3\n",
        ))
        .stdout(contains("GREETING hi there ONLY None"));
}

#[test]
fn a_finished_foreground_program_leaves_nothing_unless_kept() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("once.py", "print('done')\n");
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            "python once.py; python once.py; KEEP_POD=1 python once.py; ps -a",
        ])
        .assert()
        .success()
        .stdout(contains("done\ndone\ndone\n").and(contains("once.py").count(1)));
    // Only the kept run's pod and its ConfigMap are left, once the others'
    // deletion is through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = cluster.kubectl_stdout(&[
            "get",
            "pods,configmaps",
            "-l",
            "app.kubernetes.io/managed-by=kubesh",
            "-o",
            "name",
        ]);
        let pods = left.lines().filter(|l| l.starts_with("pod/")).count();
        let config_maps = left.lines().filter(|l| l.starts_with("configmap/")).count();
        if (pods, config_maps) == (1, 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left behind: {left}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_background_service_gets_ready_is_listed_logged_and_killed_without_leftovers() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let port = free_port();
    cluster
        .kubesh(&sandbox)
        .args(["-c", &format!("SERVICE_PORT={port} python web.py &")])
        .assert()
        .success()
        .stdout(contains("  web  ready in ").and(contains(format!("http://web:{port}"))));
    let page = cluster.fetch_service("web", port, "/x").unwrap_or_default();
    assert_eq!(page, "hello from web\n", "the service answers once ready");

    // A second session sees the first one's dproc: the state is in the cluster.
    cluster
        .kubesh(&sandbox)
        .args(["-c", "ps"])
        .assert()
        .success()
        .stdout(
            contains("web.py")
                .and(contains("deployment"))
                .and(contains("Running"))
                .and(contains("1/1")),
        );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "ps -o json"])
        .assert()
        .success()
        .stdout(contains("\"name\": \"web\"").and(contains("\"kind\": \"deployment\"")));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "logs web"])
        .assert()
        .success()
        .stdout(contains("served /x"));

    cluster
        .kubesh(&sandbox)
        .args(["-c", "kill web"])
        .assert()
        .success()
        .stdout(contains("killed web (dp-"));
    cluster.wait_for_kubectl(
        &[
            "get",
            "deployments,replicasets,pods,services,configmaps",
            "-l",
            "app.kubernetes.io/managed-by=kubesh",
            "-o",
            "name",
        ],
        "",
    );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "kill web"])
        .assert()
        .code(1)
        .stderr(contains("web: no dproc with that name or id"));
}

#[test]
fn a_service_launched_twice_is_said_to_be_running_already() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let launch = format!("SERVICE_PORT={} python web.py &", free_port());
    cluster
        .kubesh(&sandbox)
        .args(["-c", &launch])
        .assert()
        .success();
    cluster
        .kubesh(&sandbox)
        .args(["-c", &launch])
        .assert()
        .code(1)
        .stderr(contains("web is already running (dp-").and(contains("`kill web` first")));
}

#[test]
fn kill_never_touches_objects_kubesh_did_not_create() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // The user's own objects, which kubesh must never touch.
    cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-bundle-0}\ndata: {a: b}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 80}]}\n",
    );
    sandbox.write("web.py", WEB_PY);
    sandbox.write("api.py", WEB_PY);
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!("SERVICE_PORT={} python api.py &", free_port()),
        ])
        .assert()
        .code(1)
        .stderr(contains(
            "a Service named api already exists and was not created by kubesh",
        ));
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!("SERVICE_PORT={} python web.py &", free_port()),
        ])
        .assert()
        .code(1)
        .stderr(contains("a ConfigMap named web-bundle-0 already exists"));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "kill --all; kill api"])
        .assert()
        .code(1);
    cluster.wait_for_kubectl(&["get", "deployments", "-o", "name"], "");
    cluster.wait_for_kubectl(
        &["get", "configmap", "web-bundle-0", "-o", "name"],
        "configmap/web-bundle-0",
    );
    cluster.wait_for_kubectl(&["get", "service", "api", "-o", "name"], "service/api");
    // A Deployment that carries kubesh's managed-by label but not the rest
    // of its labels (no dproc id) is not kubesh's either.
    cluster.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: fake, labels: \
         {app.kubernetes.io/managed-by: kubesh}}\nspec: {selector: {matchLabels: {app: fake}}, \
         template: {metadata: {labels: {app: fake}}, spec: {containers: [{name: main, \
         image: busybox, command: [sleep, '3600']}]}}}\n",
    );
    sandbox.write("fake.py", WEB_PY);
    cluster
        .kubesh(&sandbox)
        .args(["-c", "kill fake"])
        .assert()
        .code(1)
        .stderr(contains(
            "kubesh: kill: fake: no dproc with that name or id",
        ));
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!("SERVICE_PORT={} python fake.py &", free_port()),
        ])
        .assert()
        .code(1)
        .stderr(contains(
            "a Deployment named fake already exists and was not created by kubesh",
        ));
    cluster.wait_for_kubectl(
        &["get", "deployment", "fake", "-o", "name"],
        "deployment.apps/fake",
    );
}

#[test]
fn a_crashing_service_is_reported_with_its_last_lines() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "broken.py",
        "print('starting up')\nraise SystemExit('no database configured')\n",
    );
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!("SERVICE_PORT={} python broken.py &", free_port()),
        ])
        .assert()
        .code(1)
        .stderr(
            contains("broken: the program")
                .and(contains("starting up"))
                .and(contains("no database configured"))
                .and(contains(
                    "stays: `ps` shows it, `logs broken` its output, `kill broken` removes it",
                )),
        );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "ps; kill broken"])
        .assert()
        .success()
        .stdout(contains("broken.py").and(contains("killed broken")));
}

/// A web server on `host`, on each of `ports` (`PORT` for `$PORT`).
fn server_py(host: &str, ports: &[&str]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|p| match *p {
            "PORT" => "int(os.environ['PORT'])".to_string(),
            number => number.to_string(),
        })
        .collect();
    format!(
        r#"
import http.server, os, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"served on %d\n" % self.server.server_port)
servers = [http.server.HTTPServer(("{host}", port), Handler) for port in [{}]]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
"#,
        ports.join(", ")
    )
}

#[test]
fn a_pod_no_node_takes_is_waited_for_then_reported_in_the_scheduler_s_words() {
    let sandbox = Sandbox::new();
    // Without sandboxes a declared port is a host port: a second replica on
    // the same port has no node to go to.
    let cluster = LocalCluster::start_without_sandboxes(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let port = free_port();
    bounded(
        cluster.kubesh(&sandbox),
        &["-c", &format!("SERVICE_PORT={port} REPLICAS=2 python web.py &")],
    )
    .assert()
    .code(1)
    .stderr(
        contains("web: the pod cannot be scheduled: 0/1 nodes are available: 1 node(s) didn't have free ports")
            .and(contains("(no node took it within 30 s)")),
    );
}

#[test]
fn where_a_program_listens_is_found_over_the_exec_protocol_before_kubernetes_1_30() {
    let sandbox = Sandbox::new();
    // v4.channel.k8s.io only: a client that closes stdin closes the whole
    // stream, the command's output included.
    let cluster = LocalCluster::start_before_1_30(&sandbox);
    sandbox.write("fixed.py", server_py("0.0.0.0", &["9898"]));
    bounded(
        cluster.kubesh(&sandbox),
        &["-c", "python fixed.py &\ncurl fixed:8080/"],
    )
    .assert()
    .success()
    .stderr(contains(
        "fixed listens on 9898, not 8080: the Service now targets 9898",
    ))
    .stdout(contains("served on 9898"));
}

#[test]
fn a_program_that_listens_elsewhere_than_its_service_is_told_or_followed() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // As Flask's `app.run()` does: loopback only, where no probe or
    // Service reaches on a real cluster.
    sandbox.write("loopback.py", server_py("127.0.0.1", &["5000"]));
    bounded(cluster.kubesh(&sandbox), &["-c", "python loopback.py &"])
        .assert()
        .code(1)
        .stderr(
            contains("loopback listens on 127.0.0.1:5000, which only the pod itself reaches")
                .and(contains("app.run(host=\"0.0.0.0\""))
                .and(contains("kubesh: loopback (dp-"))
                // A script ends before a `watch` could be typed.
                .and(contains(
                    ") stays: `ps` shows it, `logs loopback` its output, `kill loopback` removes it\n",
                )),
        );
    // A loopback port opened first (a debugger's) while the program is
    // still starting is not taken for where it serves.
    sandbox.write(
        "slow.py",
        "import socket, time\n\
         debugger = socket.socket(); debugger.bind(('127.0.0.1', 9229)); debugger.listen()\n\
         time.sleep(4)\n"
            .to_string()
            + &server_py("0.0.0.0", &["PORT"]),
    );
    bounded(cluster.kubesh(&sandbox), &["-c", "python slow.py &"])
        .assert()
        .success()
        .stdout(contains("slow  ready in"));
    // A hard-coded port: the Service follows it, and says so.
    sandbox.write("fixed.py", server_py("0.0.0.0", &["9898"]));
    bounded(
        cluster.kubesh(&sandbox),
        &["-c", "python fixed.py &\ncurl fixed:8080/\nps"],
    )
    .assert()
    .success()
    .stderr(contains(
        "fixed listens on 9898, not 8080: the Service now targets 9898",
    ))
    .stdout(contains("served on 9898").and(contains("http://fixed:8080")));
    // Two other ports: which one serves is the user's to say.
    sandbox.write("two.py", server_py("", &["3000", "3001"]));
    bounded(cluster.kubesh(&sandbox), &["-c", "python two.py &"])
        .assert()
        .code(1)
        .stderr(contains(
            "two listens on ports 3000, 3001, not 8080: launch it with SERVICE_PORT set",
        ));
}

#[test]
fn a_program_on_the_node_s_network_is_not_judged_by_the_node_s_sockets() {
    let sandbox = Sandbox::new();
    // Pods run directly on this machine share its network, as with
    // `hostNetwork`: the API server's own port is among the sockets a look
    // would see, and is none of the program's.
    let cluster = LocalCluster::start_without_sandboxes(&sandbox);
    let port = free_port();
    sandbox.write(
        "late.py",
        "import time\ntime.sleep(4.5)\n".to_string() + &server_py("0.0.0.0", &["PORT"]),
    );
    bounded(
        cluster.kubesh(&sandbox),
        &["-c", &format!("SERVICE_PORT={port} python late.py &")],
    )
    .assert()
    .success()
    .stdout(contains("late  ready in"))
    .stderr(contains("listens on").not());
}

/// A C program that prints its argument and exits, or without one serves
/// a page on `$PORT`.
const SERVER_C: &str = r#"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) { printf("ran with %s\n", argv[1]); return 0; }
    const char *page = "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbig\n";
    int server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons(atoi(getenv("PORT")));
    if (bind(server, (struct sockaddr *)&address, sizeof address) || listen(server, 16)) return 1;
    for (;;) {
        int client = accept(server, 0, 0);
        char request[1024];
        read(client, request, sizeof request);
        write(client, page, strlen(page));
        close(client);
    }
}
"#;

/// Builds `SERVER_C` statically at `path` with `megabytes` of data that does
/// not compress in an ELF section of its own, the size of a Go service's
/// binary; `false` when this machine cannot (no gcc, no static libc).
fn build_big_binary(sandbox: &Sandbox, path: &str, megabytes: usize) -> bool {
    let source = sandbox.write("big.c", SERVER_C);
    let binary = sandbox.work().join(path);
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .is_ok_and(|status| status.success());
    if !built {
        return false;
    }
    std::fs::remove_file(source).unwrap();
    // Bytes of a simple generator: as incompressible as compiled code
    // is for gzip's purposes here.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let blob_path = sandbox.path("blob.bin");
    std::fs::write(&blob_path, blob).unwrap();
    std::process::Command::new("objcopy")
        .arg(format!("--add-section=.payload={}", blob_path.display()))
        .arg(&binary)
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_multi_megabyte_binary_runs_in_the_foreground_and_in_the_background() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    if !build_big_binary(&sandbox, "stock-gen", 6) {
        eprintln!(
            "skipped: no gcc able to link statically with objcopy (gcc, libc6-dev, binutils)"
        );
        return;
    }
    let size = std::fs::metadata(sandbox.work().join("stock-gen"))
        .unwrap()
        .len();
    assert!(size > 6 << 20, "the binary is {size} bytes");
    let port = free_port();
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "-c",
            &format!("./stock-gen once\nSERVICE_PORT={port} ./stock-gen &\ncurl stock-gen:{port}/"),
        ],
    )
    .assert()
    .success()
    .stdout(contains("ran with once").and(contains("big\n")));
}

#[test]
fn links_in_the_program_s_directory_stay_links_and_links_outside_are_named() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "app/main.py",
        "import helper\nprint(helper.TEXT, open('data/v.txt').read())\n",
    );
    sandbox.write("app/lib/helper.py", "TEXT = 'via a link'\n");
    sandbox.write("app/lib/v.txt", "1");
    sandbox.write("outside.txt", "not shipped\n");
    let app = sandbox.work().join("app");
    std::os::unix::fs::symlink("main.py", app.join("alias.py")).unwrap();
    std::os::unix::fs::symlink("lib/helper.py", app.join("helper.py")).unwrap();
    std::os::unix::fs::symlink("lib", app.join("data")).unwrap();
    std::os::unix::fs::symlink(sandbox.work().join("outside.txt"), app.join("outside.txt"))
        .unwrap();
    cluster
        .kubesh(&sandbox)
        .args(["-c", "python app/alias.py"])
        .assert()
        .success()
        .stdout(contains("via a link 1"))
        .stderr(contains(
            "left out of the bundle, as they point outside the program's directory: outside.txt -> ",
        ));
}

#[test]
fn a_binary_runs_with_the_data_file_beside_it() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "reader.c",
        "#include <stdio.h>\nint main(int argc, char **argv) {\n  char line[256];\n  FILE *f = fopen(\"greeting.txt\", \"r\");\n  \
         if (!f) return 9;\n  if (fgets(line, sizeof line, f)) printf(\"%s\", line);\n  printf(\"arg %s\\n\", argc > 1 ? argv[1] : \"-\");\n  return 5;\n}\n",
    );
    let compiled = std::process::Command::new("cc")
        .current_dir(sandbox.work())
        .args(["-o", "reader", "reader.c"])
        .status()
        .expect("a C compiler (cc) builds the test binary");
    assert!(compiled.success());
    std::fs::remove_file(sandbox.work().join("reader.c")).unwrap();
    sandbox.write("greeting.txt", "read from the bundle\n");
    cluster
        .kubesh(&sandbox)
        .args(["-c", "set +e; ./reader 'x y'; echo status=$?"])
        .assert()
        .success()
        .stdout("read from the bundle\narg x y\nstatus=5\n");
}

#[test]
fn dependencies_from_requirements_txt_are_installed_first() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // A local package directory keeps the install off the network.
    sandbox.write(
        "vendor/greet/setup.py",
        "from setuptools import setup\nsetup(name='greet', version='1.0', py_modules=['greet'])\n",
    );
    sandbox.write(
        "vendor/greet/greet.py",
        "def hello():\n    return 'hello from a dependency'\n",
    );
    sandbox.write("requirements.txt", "./vendor/greet\n");
    sandbox.write("uses_dep.py", "import greet\nprint(greet.hello())\n");
    cluster
        .kubesh(&sandbox)
        .args(["-c", "python uses_dep.py"])
        .assert()
        .success()
        .stdout(contains("hello from a dependency"));
}

#[test]
fn dry_run_prints_the_objects_without_a_cluster() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "service.js",
        "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)\n",
    );
    sandbox.write(".env", "SECRET=1\n");
    let output = sandbox
        .command()
        .args(["--dry-run", "-c", "REPLICAS=2 node service.js --flag &"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "kind: Deployment",
        "kind: Service",
        "kind: ConfigMap",
        "replicas: 2",
        "app.kubernetes.io/managed-by: kubesh",
        "- --flag",
        "image: node:22-slim",
    ] {
        assert!(yaml.contains(expected), "{expected} in:\n{yaml}");
    }
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("left out of the bundle, as they look like credentials: .env")
    );
}

#[test]
fn a_launch_shows_the_image_its_pod_pulls() {
    use rexpect::session::spawn_command;
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_pulling_for(&sandbox, 3);
    sandbox.write("web.py", WEB_PY);
    sandbox.write("hello.py", "print('hello from a pod')\n");
    let mut command = cluster.kubesh(&sandbox);
    // A terminal that cannot redraw: each new progress line once, plainly.
    command.env("TERM", "dumb").args([
        "-c",
        "python web.py &\nPYTHON_IMAGE=python:3.13-slim python hello.py\nkill web",
    ]);
    let mut session = spawn_command(command, Some(120_000)).expect("kubesh in a pty");
    session.exp_string("web: pulling python:3.12-slim").unwrap();
    session.exp_string("  web  ready in ").unwrap();
    // The node has python:3.12-slim now; 3.13 is pulled for the job.
    session
        .exp_regex(r"hello-[a-z0-9]+: pulling python:3\.13-slim")
        .unwrap();
    session.exp_string("hello from a pod").unwrap();
    session.exp_string("killed web").unwrap();
    session.exp_eof().unwrap();
    let events = cluster.kubectl_stdout(&[
        "get",
        "events",
        "--field-selector",
        "reason=Pulling",
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    let mut pulled: Vec<&str> = events.lines().collect();
    pulled.sort_unstable();
    assert_eq!(
        pulled,
        [
            "Pulling image \"python:3.12-slim\"",
            "Pulling image \"python:3.13-slim\""
        ],
        "one pull per image: the unpack step uses the program's"
    );
}

#[test]
fn the_bundle_is_unpacked_in_the_program_s_image_unless_unpack_image_names_another() {
    let sandbox = Sandbox::new();
    sandbox.write("web.py", "print(1)\n");
    let dry_run = |line: &str| {
        let output = sandbox
            .command()
            .args(["--dry-run", "-c", line])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // One image for the node to pull: the unpack step and the program.
    let yaml = dry_run("python web.py &");
    assert_eq!(
        yaml.matches("image: python:3.12-slim\n").count(),
        2,
        "the unpack step and the program in:\n{yaml}"
    );
    assert!(!yaml.contains("busybox"), "{yaml}");
    let yaml = dry_run("PYTHON_IMAGE=python:3.13-slim python web.py");
    assert_eq!(
        yaml.matches("image: python:3.13-slim\n").count(),
        2,
        "{yaml}"
    );
    // An image without tar (a distroless one, say): another unpacks.
    let yaml = dry_run("UNPACK_IMAGE=busybox:1.37 python web.py &");
    assert_eq!(yaml.matches("image: busybox:1.37\n").count(), 1, "{yaml}");
    assert_eq!(
        yaml.matches("image: python:3.12-slim\n").count(),
        1,
        "{yaml}"
    );
    assert!(
        !yaml.contains("UNPACK_IMAGE"),
        "a setting, not a variable: {yaml}"
    );
}

#[test]
fn a_program_typed_on_the_line_is_shown_by_dry_run_without_config_maps_or_unpacking() {
    let sandbox = Sandbox::new();
    sandbox.write("service.py", "print(1)\n");
    let output = sandbox
        .command()
        .args(["--dry-run", "-c", "python3 -c 'print(6*7)' a &"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "kind: Deployment",
        "kind: Service",
        "name: python3\n",
        "- python\n",
        "- -c\n",
        "- print(6*7)\n",
        "- a\n",
        "kubesh.dev/source: python3 -c 'print(6*7)' a\n",
    ] {
        assert!(yaml.contains(expected), "{expected:?} in:\n{yaml}");
    }
    for absent in ["kind: ConfigMap", "initContainers", "unpack", "bundle"] {
        assert!(!yaml.contains(absent), "no {absent:?} in:\n{yaml}");
    }
}

const HELLO_PY: &str = "import sys\nprint('hello', sys.warnoptions, sys.argv[1:])\n";

#[test]
fn interpreter_forms_run_as_typed_with_options_passed_on() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("hello.py", HELLO_PY);
    sandbox.write("-dash.py", "print('dash')\n");
    sandbox.write("mod.py", "import sys, hello\nprint('mod', sys.argv[1:])\n");
    sandbox.write(
        "run.kubesh",
        "set +e\n\
         python3 -c 'print(6*7)'\necho \"status=$?\"\n\
         python3 -c 'import sys; sys.exit(3)'\necho \"status=$?\"\n\
         node -e 'console.log(1+1)'\n\
         node -p '6*7' -- x\n\
         python3 -u -W ignore hello.py a -v\n\
         python3 ./-dash.py\n\
         python3 -m mod x\n",
    );
    bounded(cluster.kubesh(&sandbox), &["run.kubesh"])
        .assert()
        .success()
        .stdout(
            "42\nstatus=0\nstatus=3\n2\n42\n\
             hello ['ignore'] ['a', '-v']\ndash\n\
             hello [] ['x']\nmod ['x']\n",
        );
}

#[test]
fn a_program_typed_on_the_line_creates_no_config_maps() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    bounded(
        cluster.kubesh(&sandbox),
        &["-c", "KEEP_POD=1 python3 -c 'print(\"kept\")'"],
    )
    .assert()
    .success()
    .stdout("kept\n");
    let pods = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} init={.spec.initContainers}{end}",
    ]);
    assert!(
        pods.starts_with("python3-") && pods.ends_with(" init="),
        "one kept pod, with no init container: {pods}"
    );
    let config_maps = cluster.kubectl_stdout(&[
        "get",
        "configmaps",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
        "-o",
        "name",
    ]);
    assert_eq!(config_maps, "", "nothing shipped");
}

#[test]
fn a_module_of_the_image_serves_in_the_background() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let port = free_port();
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "-c",
            &format!(
                "HOTRELOAD=true SERVICE_PORT={port} python3 -m http.server {port} &\n\
                 curl http-server:{port}/\nwatch http-server"
            ),
        ],
    )
    .assert()
    .code(1)
    .stdout(
        contains("  http-server  ready in ")
            .and(contains(format!("http://http-server:{port}")))
            .and(contains("Directory listing for /")),
    )
    .stderr(
        contains(
            "http-server: ships no files (its program is on its command line, or in its image): \
             nothing to watch",
        )
        .and(contains("not watched").not()),
    );
    bounded(cluster.kubesh(&sandbox), &["-c", "kill http-server"])
        .assert()
        .success();
}

#[test]
fn environments_group_dprocs_and_deleting_one_moves_them_to_global() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("job.py", "print('job done')\n");
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            "KEEP_POD=1; env create shop; python job.py; env select; python job.py; ps; echo ---; ps -a",
        ])
        .assert()
        .success()
        .stdout(predicate::function(|out: &str| {
            let (mine, all) = out.split_once("---").unwrap_or_default();
            mine.matches("job.py").count() == 1
                && mine.contains("global")
                && all.matches("job.py").count() == 2
                && all.contains("shop")
        }));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "env list; env delete shop; ps -a"])
        .assert()
        .success()
        .stdout(
            contains("shop")
                .and(contains("moved job-"))
                .and(contains("environment shop deleted")),
        )
        .stdout(predicate::function(|out: &str| {
            let after = out
                .rsplit("environment shop deleted")
                .next()
                .unwrap_or_default();
            after.matches("global").count() == 2 && !after.contains("shop")
        }));
    // Once deleted it is gone: deleting it again is an error, not a success.
    cluster
        .kubesh(&sandbox)
        .args(["-c", "env delete shop"])
        .assert()
        .code(1)
        .stderr(contains(
            "kubesh: env: shop: no such environment in namespace default",
        ));
}

#[test]
fn clean_up_at_exit_follows_gc() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("job.py", "print('done')\n");
    sandbox.write("web.py", WEB_PY);
    let line = format!(
        "python job.py; SERVICE_PORT={} python web.py &",
        free_port()
    );
    cluster
        .kubesh(&sandbox)
        .args(["--gc", "pods", "-c", &line])
        .assert()
        .success();
    cluster.wait_for_kubectl(&["get", "deployments", "-o", "name"], "deployment.apps/web");
    cluster.wait_for_kubectl(
        &["get", "pods", "-l", "kubesh.dev/kind=pod", "-o", "name"],
        "",
    );
    cluster
        .kubesh(&sandbox)
        .env("KUBESH_GC", "all")
        .args(["-c", "kill web; python job.py"])
        .assert()
        .success();
    cluster.wait_for_kubectl(
        &[
            "get",
            "deployments,pods,configmaps,services",
            "-l",
            "app.kubernetes.io/managed-by=kubesh",
            "-o",
            "name",
        ],
        "",
    );
}

#[test]
fn a_background_dproc_survives_its_pod_being_deleted_and_ps_shows_its_image() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let port = free_port();
    cluster
        .kubesh(&sandbox)
        .args(["-c", &format!("SERVICE_PORT={port} python web.py &")])
        .assert()
        .success();
    let first = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=web",
        "-o",
        "name",
    ]);
    assert!(first.starts_with("pod/web-"), "{first}");
    assert!(
        cluster
            .kubectl()
            .args(["delete", &first, "--wait=true"])
            .status()
            .unwrap()
            .success()
    );
    // The replacement pod unpacks the program from the ConfigMaps again.
    assert!(
        cluster
            .kubectl()
            .args(["rollout", "status", "deployment/web", "--timeout=30s"])
            .status()
            .unwrap()
            .success()
    );
    cluster.wait_for_kubectl(
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        "1",
    );
    let second = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=web",
        "-o",
        "name",
    ]);
    assert_ne!(second, first);
    cluster
        .kubesh(&sandbox)
        .args(["-c", "ps -o json"])
        .assert()
        .success()
        .stdout(contains("\"image\": \"python:3.12-slim\""));
}

#[test]
fn scale_waits_for_the_replicas_and_refuses_bad_requests() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let port = free_port();
    let script = format!(
        "set +e\nSERVICE_PORT={port} python web.py &\n\
         scale web 0\necho status=$?\nscale web 1\necho status=$?\ncurl web:{port}\n\
         scale web 2\necho status=$?\nscale web 1\necho status=$?\n\
         scale nope 1\nscale web many\necho status=$?\n"
    );
    cluster
        .kubesh(&sandbox)
        .args(["-c", &script])
        .assert()
        .success()
        .stdout(
            contains("web scaled to 0\nstatus=0\nweb scaled to 1, all ready in ")
                // Replicas have an address each: two listen on one port.
                .and(contains("hello from web\nweb scaled to 2, all ready in "))
                .and(contains("status=0\nweb scaled to 1, all ready in "))
                .and(contains("status=2\n")),
        )
        .stderr(
            contains("kubesh: scale: nope: no dproc with that name or id")
                .and(contains("\"many\" is not a number of replicas")),
        );
    cluster.wait_for_kubectl(
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}/{.status.readyReplicas}",
        ],
        "1/1",
    );
}

#[test]
fn plugins_are_listed_and_run_with_the_shell_s_namespace() {
    let sandbox = Sandbox::new();
    let bin = sandbox.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let plugin = bin.join("kubectl-hello");
    std::fs::write(&plugin, "#!/bin/sh\necho \"hello plugin $*\"\n").unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sandbox
        .command()
        .env("PATH", path)
        .args(["-c", "plugin; plugin hello x"])
        .assert()
        .success()
        .stdout("hello\nhello plugin --context test-ctx --namespace shop x\n");
}

#[test]
fn the_cluster_env_wires_services_and_exports_from_configmaps_and_secrets() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("stock-gen.py", WEB_PY);
    sandbox.write(
        "show.py",
        "import os\nfor k in ['STOCK_GEN_URL', 'STOCK_GEN_SERVICE_PORT', 'DB_USER', 'DB_PASSWORD', 'FEED']:\n    print(k, os.environ.get(k))\n",
    );
    cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\ndata: {DB_USER: shop}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: db-pass}\nstringData: {DB_PASSWORD: s3cret-value}\n",
    );
    let port = free_port();
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!(
                "SERVICE_PORT={port} python stock-gen.py & export FEED=$STOCK_GEN_URL/feed; \
                 export --from-configmap db; export --from-secret db-pass; python show.py; env; debug on; export"
            ),
        ])
        .assert()
        .success()
        .stdout(
            contains(format!("STOCK_GEN_URL http://stock-gen:{port}\n"))
                .and(contains(format!("STOCK_GEN_SERVICE_PORT {port}\n")))
                .and(contains("DB_USER shop\n"))
                .and(contains("DB_PASSWORD s3cret-value\n"))
                .and(contains(format!("FEED http://stock-gen:{port}/feed\n")))
                .and(contains(format!("cluster  STOCK_GEN_URL=http://stock-gen:{port}")))
                .and(contains("every key of secret db-pass (values not shown)")),
        )
        .stdout(predicate::function(|out: &str| out.matches("s3cret-value").count() == 1))
        .stderr(predicate::str::contains("s3cret-value").not());
    cluster
        .kubesh(&sandbox)
        .args(["-c", "export --from-secret nope"])
        .assert()
        .code(1)
        .stderr(contains("no secret named nope in namespace default"));
}

/// Fetches a page from the local cluster's shared network.
#[test]
fn curl_reaches_a_service_through_the_api_server() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let port = free_port();
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!(
                "SERVICE_PORT={port} python web.py & curl web:{port}/x; curl -i http://web/y?z=1"
            ),
        ])
        .assert()
        .success()
        .stdout(
            contains("hello from web\n")
                .count(2)
                .and(contains("HTTP/1.1 200")),
        );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "logs web"])
        .assert()
        .success()
        .stdout(contains("served /x").and(contains("served /y?z=1")));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "curl nothing:80/"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains(
            "kubesh: curl: nothing:80: services \"nothing\" not found; `ps` lists the dprocs",
        ));
    // A Service whose pods are not ready: the API server answers 503 at
    // once, and so does curl (no retries for minutes).
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: unready}\n\
         spec: {selector: {app: unready}, ports: [{port: 80}]}\n",
    );
    bounded(cluster.kubesh(&sandbox), &["-c", "curl unready:80/"])
        .assert()
        .code(1)
        .stderr(
            contains("kubesh: curl: unready:80: ")
                .and(contains("`ps` shows whether its pods are ready")),
        );
}

/// A kubesh reading its script from a pipe, line by line as the test
/// writes it, with its output lines collected as they come.
struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Session {
    fn start(mut command: std::process::Command) -> Session {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubesh starts");
        let (sender, lines) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = sender.send(line);
                }
            });
        }
        Session {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("kubesh reads its script");
    }

    /// Waits for an output line (stdout or stderr) matching `wanted`.
    fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line; kubesh printed:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Ends the script; returns kubesh's exit status and every line it
    /// printed.
    fn finish(mut self) -> (i32, Vec<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("kubesh ends");
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen)
    }
}

/// A page from 127.0.0.1:`port`, waiting up to 10 s for the answer.
fn fetch(port: u16) -> Option<String> {
    common::fetch(port, std::time::Duration::from_secs(10))
}

/// The local port in `forwarding 127.0.0.1:PORT -> …`.
fn forwarded_port(line: &str) -> u16 {
    line.trim_start_matches("forwarding 127.0.0.1:")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a local port in {line:?}"))
}

/// Whether a TCP connection to 127.0.0.1:`port` is refused, waiting up to
/// 10 s for it to become so.
fn refused_soon(port: u16) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn forward_serves_a_dproc_on_localhost_until_kill_percent_stops_it() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "web.py",
        WEB_PY.replace("HTTPServer", "ThreadingHTTPServer"),
    );
    let port = free_port();
    let mut session = Session::start(cluster.kubesh(&sandbox));
    session.send("set +e");
    session.send(&format!("SERVICE_PORT={port} python web.py &"));
    session.expect(|l| l.contains("  web  ready in "));
    session.send(&format!("forward web :{port}"));
    let line = session.expect(|l| l.starts_with("forwarding 127.0.0.1:"));
    let local = forwarded_port(&line);
    assert!(
        line.ends_with(&format!(" -> web:{port}  (job %1)")),
        "{line}"
    );
    assert_ne!(local, port, "`:PORT` picks a free local port");

    // Many connections at once, each on its own stream.
    let fetches: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || fetch(local)))
        .collect();
    for fetch in fetches {
        assert_eq!(fetch.join().unwrap().as_deref(), Some("hello from web\n"));
    }

    // Nothing listening at the other end, and a local port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    session.send(&format!("forward web {taken_port}:{port}"));
    session.expect(|l| {
        l.contains(&format!(
            "127.0.0.1:{taken_port} is in use by another program"
        ))
    });
    let unused = free_port();
    session.send(&format!("forward web :{unused}"));
    let line = session.expect(|l| l.starts_with("forwarding 127.0.0.1:"));
    assert!(line.ends_with("(job %2)"), "{line}");
    let dead_end = forwarded_port(&line);
    assert_eq!(fetch(dead_end), None, "the connection is closed");
    session.expect(|l| {
        l.contains(&format!(
            "kubesh: forward %2: nothing listens on port {unused} in web"
        ))
    });
    session.send("forward nope 80");
    session.expect(|l| l.contains("kubesh: forward: nope: no dproc with that name or id"));

    session.send("jobs");
    session.expect(|l| l == format!("[1]  forward web {port} -> 127.0.0.1:{local}  running"));
    session.send("kill %1 %2");
    session.expect(|l| l == format!("killed %1 (forward web {port} -> 127.0.0.1:{local})"));
    session.expect(|l| l.starts_with("killed %2 ("));
    assert!(
        refused_soon(local),
        "the forward's port refuses once killed"
    );
    session.send("kill %1");
    session.expect(|l| l.contains("kubesh: kill: %1: no such job"));
    session.send("jobs; echo jobs-listed");
    session.expect(|l| l == "jobs-listed");
    assert!(
        !session
            .seen
            .iter()
            .rev()
            .take_while(|l| !l.contains("no such job"))
            .any(|l| l.starts_with('[')),
        "no jobs left: {:?}",
        session.seen
    );

    // A forward follows its dproc, and ends when the dproc is gone.
    session.send(&format!("forward web :{port}"));
    let line = session.expect(|l| l.starts_with("forwarding 127.0.0.1:"));
    assert!(line.ends_with("(job %1)"), "numbers are used again: {line}");
    let local = forwarded_port(&line);
    assert_eq!(fetch(local).as_deref(), Some("hello from web\n"));
    session.send("kill web");
    session.expect(|l| l.contains("kubesh: forward %1: web is gone"));
    session.send("jobs");
    session.expect(|l| {
        l == format!("[1]  forward web {port} -> 127.0.0.1:{local}  done (web is gone)")
    });
    assert!(refused_soon(local));
    assert_eq!(session.finish().0, 0);
}

#[test]
fn a_script_forwards_then_uses_the_local_port() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("web.py", WEB_PY);
    let (port, local) = (free_port(), free_port());
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!(
                "SERVICE_PORT={port} python web.py &\nforward web {local}:{port}\n\
                 curl localhost:{local}/via-forward\njobs\nkill %1\ncurl localhost:{local}/again"
            ),
        ])
        .assert()
        .code(1)
        .stdout(contains(format!(
            "forwarding 127.0.0.1:{local} -> web:{port}  (job %1)\nhello from web\n\
             [1]  forward web {port} -> 127.0.0.1:{local}  running\n\
             killed %1 (forward web {port} -> 127.0.0.1:{local})\n"
        )))
        .stderr(contains(format!("kubesh: curl: localhost:{local}")).and(contains("-c:6")));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "logs web"])
        .assert()
        .success()
        .stdout(contains("served /via-forward").and(contains("/again").not()));
}

#[test]
fn a_foreground_program_reads_piped_stdin_to_its_end() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "greet.py",
        "import sys\nname = input('name? ')\nprint(f'hello {name}')\n\
         print('rest', repr(sys.stdin.read()))\nsys.exit(4)\n",
    );
    let mut command = cluster.kubesh(&sandbox);
    command.args(["-c", "set +e; python greet.py; echo status=$?"]);
    assert_cmd::Command::from_std(command)
        .write_stdin("Ada\nLovelace\n")
        .assert()
        .success()
        .stdout(contains("name? hello Ada\nrest 'Lovelace\\n'\nstatus=4\n"));
    // A script read from stdin keeps it: its programs read nothing.
    sandbox.write(
        "readall.py",
        "import sys\nprint('read', repr(sys.stdin.read()))\n",
    );
    assert_cmd::Command::from_std(cluster.kubesh(&sandbox))
        .write_stdin("python readall.py\necho after\n")
        .assert()
        .success()
        .stdout(contains("read ''\nafter\n"));
}

#[test]
fn dependencies_from_package_json_are_installed_from_the_npm_registry() {
    let reachable = std::process::Command::new("npm")
        .args([
            "view",
            "is-number@7.0.0",
            "version",
            "--fetch-timeout=20000",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        eprintln!("skipped: the npm registry cannot be reached (`npm view is-number` failed)");
        return;
    }
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "package.json",
        r#"{"name": "checker", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#,
    );
    sandbox.write(
        "checker.js",
        "const isNumber = require('is-number');\n\
         require('http').createServer((req, res) => {\n\
           res.end(`is-number says ${isNumber(req.url.slice(1))}\\n`);\n\
         }).listen(process.env.PORT);\n",
    );
    let port = free_port();
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            &format!("SERVICE_PORT={port} node checker.js & curl checker:{port}/42; curl checker:{port}/x"),
        ])
        .assert()
        .success()
        .stdout(contains("is-number says true\nis-number says false\n"));
}

#[test]
fn the_api_server_going_away_mid_command_is_reported_and_the_script_goes_on() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write(
        "slow.py",
        "import time\nprint('started', flush=True)\ntime.sleep(120)\n",
    );
    let mut session = Session::start(cluster.kubesh(&sandbox));
    session.send("set +e");
    session.send("python slow.py; echo status=$?");
    session.expect(|l| l == "started");
    cluster.crash();
    session.expect(|l| l.starts_with("status=") && l != "status=0");
    session.send("ps; echo ps-status=$?");
    session.expect(|l| l == "ps-status=1");
    session.send("exit 7");
    let (status, lines) = session.finish();
    assert_eq!(status, 7, "the shell went on to `exit 7`");
    let text = lines.join("\n");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("kubesh: slow-")
            && text.contains(": lost the connection to the cluster at https://127.0.0.1:"),
        "the failed command and the cluster are named: {text}"
    );
    assert!(
        text.contains("kubesh: ps: cannot reach the cluster at") && text.contains("is it running?"),
        "{text}"
    );
}

/// A file stem of 100 characters: the dproc's name keeps the stem's
/// beginning and ends with a short hash, and every object made from it is
/// accepted, in the foreground and in the background.
#[test]
fn a_program_with_a_hundred_character_stem_runs_in_the_foreground_and_in_the_background() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let job = format!("quarterly_report_{}", "x".repeat(83));
    let web = format!("web_server_{}", "y".repeat(89));
    assert_eq!((job.len(), web.len()), (100, 100));
    sandbox.write(&format!("{job}.py"), "print('long and fine')\n");
    sandbox.write(&format!("{web}.py"), WEB_PY);
    let port = free_port();
    sandbox.write(
        "run.kubesh",
        format!("KEEP_POD=1 python {job}.py\nSERVICE_PORT={port} python {web}.py &\nps -o json\n"),
    );
    let output = bounded(cluster.kubesh(&sandbox), &["run.kubesh"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("long and fine\n"), "{stdout}");
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("\"name\": \""))
        .filter_map(|rest| rest.strip_suffix("\","))
        .collect();
    let web_name = names
        .iter()
        .find(|n| n.starts_with("web-server-yyy"))
        .unwrap_or_else(|| panic!("the service in ps: {stdout}"));
    let job_name = names
        .iter()
        .find(|n| n.starts_with("quarterly-report-xxx"))
        .unwrap_or_else(|| panic!("the kept pod in ps: {stdout}"));
    for name in [web_name, job_name] {
        assert!(name.len() <= 63, "{name}");
    }
    assert!(
        stdout.contains(&format!("http://{web_name}:{port}")),
        "{stdout}"
    );
    let page = cluster
        .fetch_service(web_name, port, "/long")
        .unwrap_or_default();
    assert_eq!(page, "hello from web\n");
    cluster
        .kubesh(&sandbox)
        .args(["-c", "ps"])
        .assert()
        .success()
        .stdout(contains(format!("{web}.py")).and(contains(format!("{job}.py"))));
    cluster
        .kubesh(&sandbox)
        .args(["-c", &format!("kill {web_name} {job_name}")])
        .assert()
        .success();
}
