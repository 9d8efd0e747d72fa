//! Pod sandboxes, judged as a real cluster would be: an address per pod,
//! replicas sharing a port, programs bound to loopback never ready, a
//! process on this machine never answering for a pod, the cluster's ranges
//! refused at once inside and absent outside, egress for dependency steps,
//! two clusters side by side, and nothing left after `kill -9` of the
//! server.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{TestCluster, all_gone, processes_under, wait_for};

const T: Duration = Duration::from_secs(30);

/// A Python server answering every GET with its hostname, on `bind`:8080.
fn hostname_server(bind: &str) -> String {
    format!(
        "import http.server,socket\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(s):\n    s.send_response(200); s.end_headers(); s.wfile.write(socket.gethostname().encode())\nhttp.server.HTTPServer(('{bind}', 8080), H).serve_forever()"
    )
}

fn deployment(name: &str, replicas: u32, program: &str) -> String {
    let program = serde_json::to_string(program).unwrap();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: python:3.12
        command: ["python3", "-c", {program}]
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

/// Runs `program` (Python) in a pod to completion; its log.
fn run_python(c: &TestCluster, name: &str, program: &str) -> String {
    let program = serde_json::to_string(program).unwrap();
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: c, image: python:3.12, command: ["python3", "-c", {program}]}}
"#
    ));
    wait_for("the pod to finish", Duration::from_secs(90), || {
        let phase = c.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
        (phase == "Succeeded" || phase == "Failed").then_some(())
    });
    c.ok(&["logs", name])
}

fn service_page(c: &TestCluster, name: &str) -> Option<String> {
    let out = c.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/services/{name}:80/proxy/"),
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// Routes and addresses of this machine's own network namespace.
fn host_network() -> String {
    ["/proc/net/route", "/proc/net/fib_trie"]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

#[test]
fn three_replicas_on_one_port_are_ready_and_share_the_service() {
    let c = TestCluster::start();
    let before = host_network();
    c.apply(&deployment("web", 3, &hostname_server("0.0.0.0")));
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let ips = c.ok(&["get", "pods", "-o", "jsonpath={.items[*].status.podIP}"]);
    let ips: std::collections::HashSet<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 3, "an address per pod: {ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.244.")), "{ips:?}");
    let answers: std::collections::HashSet<String> =
        (0..6).filter_map(|_| service_page(&c, "web")).collect();
    assert_eq!(
        answers.len(),
        3,
        "the Service spreads requests: {answers:?}"
    );
    // From a pod: the Service by name and by its ClusterIP variable; an
    // unassigned pod address and an unassigned Service address are refused
    // at once.
    let log = run_python(
        &c,
        "client",
        "import os,socket,time,urllib.request\n\
         print(urllib.request.urlopen('http://web/', timeout=5).read().decode().startswith('web-'))\n\
         print(urllib.request.urlopen('http://%s/' % os.environ['WEB_SERVICE_HOST'], timeout=5).status)\n\
         for a in [('10.244.250.250', 8080), ('10.111.1.1', 8080)]:\n\
         \x20 t = time.time()\n\
         \x20 try:\n\
         \x20   socket.create_connection(a, timeout=10); print('connected', a)\n\
         \x20 except OSError as e: print('refused' if time.time() - t < 2 else 'slow', e.errno)\n",
    );
    assert_eq!(log, "True\n200\nrefused 113\nrefused 111\n");
    assert_eq!(
        host_network(),
        before,
        "this machine's routes and addresses are untouched"
    );
}

#[test]
fn a_process_on_this_machine_never_answers_for_a_pod() {
    let c = TestCluster::start();
    // Something on this machine listens on the port the pod's probe checks.
    let host = std::net::TcpListener::bind("0.0.0.0:8080").ok();
    // The pod does not listen at all: it must never be ready.
    c.apply(&deployment("idle", 1, "import time\ntime.sleep(1000)"));
    wait_for("the probe to fail", T, || {
        let events = c.ok(&["get", "events", "-o", "jsonpath={.items[*].message}"]);
        events.contains("Readiness probe failed").then_some(())
    });
    let ready = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=idle",
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].ready}",
    ]);
    assert_eq!(ready, "false", "a probe never reaches this machine's port");
    assert_eq!(service_page(&c, "idle"), None, "no endpoint, no answer");
    drop(host);
}

#[test]
fn a_program_bound_to_loopback_is_never_ready_and_an_event_says_why() {
    let c = TestCluster::start();
    c.apply(&deployment("flask", 1, &hostname_server("127.0.0.1")));
    let event = wait_for("the event naming the address", T, || {
        let events = c.ok(&["get", "events", "-o", "jsonpath={.items[*].message}"]);
        events
            .contains("listens on 127.0.0.1:8080 only")
            .then_some(events)
    });
    assert!(event.contains("listen on 0.0.0.0:8080"), "{event}");
    let ready = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=flask",
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].ready}",
    ]);
    assert_eq!(ready, "false");
}

#[test]
fn pods_resolve_names_and_reach_a_package_index() {
    let c = TestCluster::start();
    let log = run_python(
        &c,
        "pip",
        "import subprocess,sys\n\
         r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '--disable-pip-version-check', '--dest', '/tmp/dl', 'six==1.16.0'], capture_output=True, text=True)\n\
         print(r.returncode, r.stderr[-300:])\n",
    );
    assert!(log.starts_with("0 "), "pip inside a pod: {log}");
}

#[test]
fn two_clusters_side_by_side_keep_their_own_services() {
    let a = TestCluster::start();
    let b = TestCluster::start();
    for c in [&a, &b] {
        c.apply(&deployment("web", 1, &hostname_server("0.0.0.0")));
        c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    }
    let pod_of =
        |c: &TestCluster| c.ok(&["get", "pods", "-o", "jsonpath={.items[0].metadata.name}"]);
    assert_eq!(service_page(&a, "web"), Some(pod_of(&a)));
    assert_eq!(service_page(&b, "web"), Some(pod_of(&b)));
}

#[test]
fn nothing_outlives_a_killed_server() {
    nothing_outlives_a_killed_server_when(false);
}

#[test]
fn nothing_outlives_a_killed_server_without_sandboxes() {
    nothing_outlives_a_killed_server_when(true);
}

/// `kill -9` of a server (its pods in sandboxes, or run directly) leaves
/// no process of a pod behind, not even one started with `setsid`.
fn nothing_outlives_a_killed_server_when(sandbox_off: bool) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_local-cluster"));
    // Its pods run their commands from this machine (no registry here).
    command.env("KUBESH_LOCAL_IMAGES", "host");
    if sandbox_off {
        command.env("KUBESH_LOCAL_SANDBOX", "off");
    } else {
        command.env_remove("KUBESH_LOCAL_SANDBOX");
    }
    let mut server = command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--state")
        .arg(dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = server.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("kubeconfig:") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the server started: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let mut apply = std::process::Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(
            // As another user, too: a change of user must not free the
            // program from ending with the cluster.
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: forks}\nspec:\n  securityContext: {runAsUser: 1000}\n  containers:\n  - {name: c, image: busybox, command: [sh, -c, 'setsid sleep 1000 & sleep 1000 & wait']}\n",
        )
        .unwrap();
    assert!(apply.wait().unwrap().success());
    // The server's children: holders and the container's processes.
    let pids = wait_for("the container's processes", T, || {
        let pids = processes_under(server.id());
        pids.iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with("sleep"))
            })
            .count()
            .eq(&2)
            .then_some(pids)
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let others: Vec<u32> = pids.into_iter().filter(|p| *p != server.id()).collect();
    wait_for(
        "every process of the cluster gone",
        Duration::from_secs(10),
        || all_gone(&others).then_some(()),
    );
}

#[test]
fn security_settings_are_applied_or_named() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ids}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000, runAsGroup: 50}
  volumes: [{name: host, hostPath: {path: /var/log}}]
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo $(id -u) $(id -g); touch /tmp/x 2>/dev/null && echo writable || echo read-only; grep CapBnd /proc/self/status"]
    securityContext:
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
"#,
    );
    wait_for("the pod to finish", T, || {
        let phase = c.ok(&["get", "pod", "ids", "-o", "jsonpath={.status.phase}"]);
        (phase == "Succeeded" || phase == "Failed").then_some(())
    });
    let events = c.ok(&["get", "events", "-o", "jsonpath={.items[*].message}"]);
    assert!(
        events.contains("spec.volumes[host].hostPath is not supported"),
        "{events}"
    );
    let log = c.ok(&["logs", "ids"]);
    assert!(
        log.ends_with("read-only\nCapBnd:\t0000000000000000\n"),
        "a read-only root and no capability: {log}"
    );
    // SAFETY: geteuid has no side effects.
    if unsafe { libc::geteuid() } == 0 {
        // Every id is mapped: the program runs as the user asked for.
        assert!(log.starts_with("1000 50\n"), "{log}");
    } else {
        assert!(events.contains("runAsUser is not applied"), "{events}");
    }
}
