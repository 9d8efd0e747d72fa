//! The paths where kubectl versions differ, with the versions at both ends
//! of each difference: exec and attach over SPDY (1.29 and older) and
//! WebSocket (1.30 and newer); port-forward over SPDY (1.30 and older) and
//! SPDY tunnelled in a WebSocket (1.31 and newer); and the paths each
//! version takes its own way (protobuf bodies, OpenAPI, Jobs).
//!
//! The versioned binaries are found as `kubectl.1.NN` (or `kubectl-1.NN`)
//! on PATH or beside the `kubectl` on PATH; a machine without them skips
//! these tests, saying so.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{TestCluster, free_port};

const T: Duration = Duration::from_secs(30);

/// The kubectl of a minor version (`1.27`), if this machine has it.
fn kubectl_version(minor: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // Beside the `kubectl` on PATH (a link to a versions dispatcher).
    if let Some(found) = dirs
        .iter()
        .map(|d| d.join("kubectl"))
        .find(|k| k.exists())
        .and_then(|k| std::fs::canonicalize(k).ok())
        .and_then(|k| k.parent().map(PathBuf::from))
    {
        dirs.push(found);
    }
    dirs.iter()
        .flat_map(|d| {
            [
                d.join(format!("kubectl.{minor}")),
                d.join(format!("kubectl-{minor}")),
            ]
        })
        .find(|candidate| candidate.is_file())
}

/// The kubectls of these versions, or None (and a note) if one is missing.
fn kubectls(minors: &[&str]) -> Option<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for minor in minors {
        let Some(path) = kubectl_version(minor) else {
            eprintln!("skipped: kubectl {minor} is not installed (as kubectl.{minor} on PATH)");
            return None;
        };
        found.push((minor.to_string(), path));
    }
    Some(found)
}

fn run(c: &TestCluster, kubectl: &PathBuf, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("kubectl finishes")
}

fn pod_box(c: &TestCluster) {
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "1000"]
    env: [{name: FOO, value: bar}]
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=30s"]);
}

#[test]
fn exec_works_with_kubectl_over_spdy_and_websocket() {
    let Some(versions) = kubectls(&["1.27", "1.29", "1.30", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    pod_box(&c);
    for (minor, kubectl) in &versions {
        let o = run(
            &c,
            kubectl,
            &[
                "exec",
                "box",
                "--",
                "sh",
                "-c",
                "echo $HOSTNAME $FOO; echo oops >&2; exit 3",
            ],
            None,
        );
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(out, "box bar\n", "kubectl {minor}: {err}");
        assert!(err.contains("oops"), "kubectl {minor}: {err}");
        assert_eq!(o.status.code(), Some(3), "kubectl {minor}: {err}");

        let o = run(
            &c,
            kubectl,
            &[
                "exec",
                "-i",
                "box",
                "--",
                "sh",
                "-c",
                "tr a-z A-Z; echo done",
            ],
            Some("hello\nworld\n"),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "kubectl {minor}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "HELLO\nWORLD\ndone\n",
            "kubectl {minor}: {err}"
        );

        let o = run(
            &c,
            kubectl,
            &["exec", "box", "-c", "nope", "--", "true"],
            None,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("not valid"),
            "kubectl {minor}: {err}"
        );
    }
}

#[test]
fn exec_tty_works_with_kubectl_over_spdy() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) is not installed");
        return;
    }
    let Some(versions) = kubectls(&["1.27"]) else {
        return;
    };
    let c = TestCluster::start();
    pod_box(&c);
    for (minor, kubectl) in &versions {
        let line = format!(
            "{} exec -it box -- sh -c 'test -t 0 && echo is-a-tty; stty size; exit 6'",
            kubectl.display()
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", c.kubeconfig())
            .stdin(Stdio::null())
            .output()
            .expect("script runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("is-a-tty"), "kubectl {minor}: {text}");
        assert_eq!(out.status.code(), Some(6), "kubectl {minor}: {text}");
    }
}

#[test]
fn attach_works_with_kubectl_over_spdy() {
    let Some(versions) = kubectls(&["1.27"]) else {
        return;
    };
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: rd}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    stdin: true
    command: ["sh", "-c", "while read l; do echo got $l; [ $l = quit ] && exit 0; done"]
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/rd", "--timeout=30s"]);
    let (minor, kubectl) = &versions[0];
    let o = run(&c, kubectl, &["attach", "-i", "rd"], Some("a\nquit\n"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "kubectl {minor}: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("got a\ngot quit\n"),
        "kubectl {minor}: {out}{err}"
    );
}

/// A pod serving `dir` over HTTP on a free port, ready once it listens.
fn web(c: &TestCluster, dir: &std::path::Path) -> u16 {
    let port = free_port();
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: python:3.12
    command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{dir}"]
    readinessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
"#,
        dir = dir.display()
    ));
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    port
}

/// `kubectl port-forward` running, its output lines arriving on a channel.
struct Forward {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Forward {
    fn start(c: &TestCluster, kubectl: &PathBuf, args: &[&str]) -> Forward {
        let mut child = Command::new(kubectl)
            .arg("port-forward")
            .args(args)
            .env("KUBECONFIG", c.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl port-forward runs");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Forward { child, lines }
    }

    /// Waits (bounded) for an output line containing `text`; all lines
    /// seen so far otherwise.
    fn expect_line(&self, text: &str) -> Result<String, String> {
        let deadline = std::time::Instant::now() + T;
        let mut seen = String::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Ok(line),
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => break,
            }
        }
        Err(seen)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP GET through a local port; the whole response.
fn http_get(port: u16, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(T)).expect("timeout");
    write!(conn, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response
}

#[test]
fn port_forward_works_with_kubectl_over_spdy_and_tunnelled_spdy() {
    let Some(versions) = kubectls(&["1.27", "1.30", "1.31", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("x"), "through port-forward\n").expect("file");
    let port = web(&c, &www);
    for (minor, kubectl) in &versions {
        let local = free_port();
        let forward = Forward::start(&c, kubectl, &["pod/web", &format!("{local}:{port}")]);
        let line = forward
            .expect_line("Forwarding from 127.0.0.1")
            .unwrap_or_else(|seen| panic!("kubectl {minor} port-forward did not start:\n{seen}"));
        assert!(line.contains(&format!("{local} -> {port}")), "{line}");
        // Several connections, one after the other and at once.
        for _ in 0..2 {
            let response = http_get(local, "/x");
            assert!(
                response.starts_with("HTTP/1.0 200")
                    && response.ends_with("through port-forward\n"),
                "kubectl {minor}: {response}"
            );
        }
        let both: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(move || http_get(local, "/x")))
            .collect();
        for handle in both {
            let response = handle.join().expect("a request");
            assert!(
                response.ends_with("through port-forward\n"),
                "kubectl {minor}: {response}"
            );
        }
    }
}

#[test]
fn port_forward_to_a_port_where_nothing_listens_says_so() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    pod_box(&c);
    let nothing = free_port();
    for (minor, kubectl) in &versions {
        let local = free_port();
        let forward = Forward::start(&c, kubectl, &["pod/box", &format!("{local}:{nothing}")]);
        forward
            .expect_line("Forwarding from 127.0.0.1")
            .unwrap_or_else(|seen| panic!("kubectl {minor} port-forward did not start:\n{seen}"));
        // The local connection is closed without an answer…
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local)).expect("connect");
        conn.set_read_timeout(Some(T)).expect("timeout");
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        assert!(answer.is_empty(), "kubectl {minor}");
        // …and kubectl says why, in the kubelet's words.
        let line = forward
            .expect_line(&format!(
                "an error occurred forwarding {local} -> {nothing}"
            ))
            .unwrap_or_else(|seen| panic!("kubectl {minor} said no error:\n{seen}"));
        assert!(
            line.contains("connection refused"),
            "kubectl {minor}: {line}"
        );
    }
}

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
"#;

#[test]
fn diff_of_an_unchanged_object_made_by_create_finds_no_difference() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    let file = c.dir.path().join("settings.yaml");
    std::fs::write(&file, CONFIGMAP).expect("manifest");
    let file = file.to_string_lossy().into_owned();
    c.ok(&["create", "-f", &file]);
    let changed = c.dir.path().join("changed.yaml");
    std::fs::write(&changed, CONFIGMAP.replace("\"1\"", "\"2\"")).expect("manifest");
    let changed = changed.to_string_lossy().into_owned();
    for (minor, kubectl) in &versions {
        let o = run(&c, kubectl, &["diff", "-f", &file], None);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(0), "kubectl {minor} diff: {out}{err}");
        assert_eq!(out, "", "kubectl {minor}");
        // A real change is one, and the only one.
        let o = run(&c, kubectl, &["diff", "-f", &changed], None);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "kubectl {minor} diff: {out}");
        let changes: Vec<&str> = out
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(
            changes,
            ["-  a: \"1\"", "+  a: \"2\""],
            "kubectl {minor}: {out}"
        );
    }
}

#[test]
fn apply_works_with_kubectl_that_reads_openapi_v2() {
    let Some(versions) = kubectls(&["1.27", "1.28"]) else {
        return;
    };
    let c = TestCluster::start();
    for (minor, kubectl) in &versions {
        let ns = format!("v{}", minor.replace('.', "-"));
        c.ok(&["create", "namespace", &ns]);
        let o = run(
            &c,
            kubectl,
            &["apply", "-n", &ns, "-f", "-"],
            Some(common::APP),
        );
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "kubectl {minor} apply: {err}");
        assert!(
            out.contains("deployment.apps/web created"),
            "kubectl {minor}: {out}"
        );
        let o = run(
            &c,
            kubectl,
            &["apply", "-n", &ns, "-f", "-"],
            Some(common::APP),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("deployment.apps/web unchanged"),
            "kubectl {minor}: {out}"
        );
        // A change to a list merged by key (the container's env).
        let changed = common::APP.replace("image: python:3.12", "image: python:3.13");
        let o = run(
            &c,
            kubectl,
            &["apply", "-n", &ns, "-f", "-"],
            Some(&changed),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("deployment.apps/web configured"),
            "kubectl {minor}: {out}"
        );
        let image = c.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(image, "python:3.13", "kubectl {minor}");
    }
}

#[test]
fn auth_can_i_answers_yes_for_the_clusters_one_user() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    for (minor, kubectl) in &versions {
        for args in [
            &["auth", "can-i", "create", "deployments"][..],
            &["auth", "can-i", "delete", "pods", "-n", "kube-system"],
        ] {
            let o = run(&c, kubectl, args, None);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "kubectl {minor} {args:?}: {err}");
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                "yes\n",
                "kubectl {minor}: {err}"
            );
        }
        let o = run(&c, kubectl, &["auth", "can-i", "--list"], None);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.lines().any(|l| l.starts_with("*.*")),
            "kubectl {minor}: {out}"
        );
    }
}

#[test]
fn generator_commands_that_send_protobuf_create_what_they_say() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    for (minor, kubectl) in &versions {
        let ns = format!("g{}", minor.replace('.', "-"));
        c.ok(&["create", "namespace", &ns]);
        let o = run(
            &c,
            kubectl,
            &[
                "create",
                "deployment",
                "web",
                "-n",
                &ns,
                "--image=python:3.12",
                "--port=8080",
                "--replicas=2",
                "--",
                "sleep",
                "1000",
            ],
            None,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success(),
            "kubectl {minor} create deployment: {err}"
        );
        let deployment: serde_json::Value =
            serde_json::from_str(&c.ok(&["get", "deploy", "web", "-n", &ns, "-o", "json"]))
                .expect("json");
        let spec = &deployment["spec"];
        assert_eq!(spec["replicas"], 2, "kubectl {minor}: {spec}");
        assert_eq!(spec["selector"]["matchLabels"]["app"], "web", "{spec}");
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "python:3.12", "{spec}");
        assert_eq!(
            container["command"],
            serde_json::json!(["sleep", "1000"]),
            "{spec}"
        );
        assert_eq!(container["ports"][0]["containerPort"], 8080, "{spec}");
        c.ok(&[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            &ns,
            "--timeout=30s",
        ]);

        let o = run(
            &c,
            kubectl,
            &[
                "run",
                "one",
                "-n",
                &ns,
                "--image=busybox",
                "--env=A=b",
                "--labels=x=y",
                "--",
                "sleep",
                "100",
            ],
            None,
        );
        assert!(
            o.status.success(),
            "kubectl {minor} run: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let pod: serde_json::Value =
            serde_json::from_str(&c.ok(&["get", "pod", "one", "-n", &ns, "-o", "json"]))
                .expect("json");
        assert_eq!(
            pod["metadata"]["labels"]["x"], "y",
            "kubectl {minor}: {pod}"
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!(["sleep", "100"]),
            "{pod}"
        );
        assert_eq!(
            container["env"],
            serde_json::json!([{"name": "A", "value": "b"}]),
            "{pod}"
        );

        let o = run(
            &c,
            kubectl,
            &[
                "expose",
                "deployment",
                "web",
                "-n",
                &ns,
                "--port=80",
                "--target-port=8080",
            ],
            None,
        );
        assert!(
            o.status.success(),
            "kubectl {minor} expose: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let ports = c.ok(&[
            "get",
            "svc",
            "web",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}",
        ]);
        assert_eq!(ports, "80 8080 web", "kubectl {minor}");
    }
}

#[test]
fn a_job_is_created_waited_for_and_read_by_kubectl_at_both_ends() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    for (minor, kubectl) in &versions {
        let job = format!("job-{}", minor.replace('.', "-"));
        let steps: [&[&str]; 3] = [
            &[
                "create",
                "job",
                &job,
                "--image=busybox",
                "--",
                "sh",
                "-c",
                "echo done",
            ],
            &[
                "wait",
                "--for=condition=complete",
                &format!("job/{job}"),
                "--timeout=60s",
            ],
            &["logs", &format!("job/{job}")],
        ];
        let mut out = String::new();
        for args in steps {
            let o = run(&c, kubectl, args, None);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "kubectl {minor} {}: {err}", args[0]);
            out = String::from_utf8_lossy(&o.stdout).into_owned();
        }
        assert_eq!(out, "done\n", "kubectl {minor} logs job/{job}");
        let o = run(&c, kubectl, &["delete", "job", &job], None);
        assert!(
            o.status.success(),
            "kubectl {minor} delete: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn explain_reads_the_fields_of_the_served_kinds_with_kubectl_at_both_ends() {
    let Some(versions) = kubectls(&["1.27", "1.33"]) else {
        return;
    };
    let c = TestCluster::start();
    for (minor, kubectl) in &versions {
        let o = run(&c, kubectl, &["explain", "pod.spec.containers"], None);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "kubectl {minor} explain: {err}");
        assert!(
            out.contains("FIELD: containers <[]Container>")
                && out.contains("List of containers belonging to the pod.")
                && out.contains("command\t<[]string>")
                && out.contains("livenessProbe\t<Probe>"),
            "kubectl {minor} explain pod.spec.containers:\n{out}"
        );
        let o = run(&c, kubectl, &["explain", "job.spec.backoffLimit"], None);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("GROUP:      batch")
                && out.contains("FIELD: backoffLimit <integer>")
                && out.contains("Specifies the number of retries before marking this job failed."),
            "kubectl {minor} explain job.spec.backoffLimit:\n{out}"
        );
    }
}
