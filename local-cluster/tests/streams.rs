//! Proxies, exec, attach and port-forward, through real kubectl.

mod common;

use std::time::Duration;

use common::{TestCluster, free_port, python_behind_service, wait_for};

/// A Python http.server pod serving `dir` on a free port, behind a Service
/// `web` whose port 8080 differs from the targetPort.
fn web(c: &TestCluster, dir: &std::path::Path) -> u16 {
    let port = free_port();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  containers:
  - name: web
    image: python:3.12
    command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{dir}"]
    ports: [{{name: http, containerPort: {port}}}]
    readinessProbe:
      httpGet: {{path: /, port: http}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8080, targetPort: http}}]
"#,
        dir = dir.display()
    );
    c.apply(&manifest);
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    port
}

#[test]
fn service_and_pod_proxy() {
    let c = TestCluster::start();
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("x"), "hello from x\n").expect("file");
    web(&c, &www);
    // Endpoints follow readiness; wait until the proxy reaches the pod.
    let out = wait_for("the service proxy", Duration::from_secs(20), || {
        let o = c.kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/web:8080/proxy/x?a=b",
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(out, "hello from x\n");
    // Named port and the http: scheme prefix.
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/http:web:http/proxy/x",
    ]);
    assert_eq!(out, "hello from x\n");
    // The pod itself, by named port.
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/web:http/proxy/x",
    ]);
    assert_eq!(out, "hello from x\n");
    // The upstream's own status comes back.
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/web:8080/proxy/missing",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NotFound")
            || String::from_utf8_lossy(&o.stderr).contains("404")
    );

    // A service without ready endpoints: 503 with a Status.
    c.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80}]
"#,
    );
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/empty/proxy/",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no endpoints available"), "{err}");
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/nosuch/proxy/",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn exec_exit_code_env_and_stdin() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "1000"]
    env: [{name: FOO, value: bar}]
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=30s"]);
    let o = c.kubectl(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo $HOSTNAME $FOO; echo oops >&2; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "box bar\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("oops"));
    assert_eq!(o.status.code(), Some(3));
    let o = c.kubectl_stdin(
        &[
            "exec",
            "-i",
            "box",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        "hello\nworld\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "HELLO\nWORLD\ndone\n");
    assert_eq!(c.ok(&["exec", "box", "-c", "main", "--", "true"]), "");
    let o = c.kubectl(&["exec", "box", "-c", "nope", "--", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not valid"));
    let o = c.kubectl(&["exec", "nosuch", "--", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn exec_tty_runs_an_interactive_shell() {
    // `script` gives kubectl the terminal `-t` needs.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: script(1) is not installed");
        return;
    }
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "1000"]
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=30s"]);
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            "kubectl exec -it box -- sh -c 'test -t 0 && echo is-a-tty; exit 6'",
            "/dev/null",
        ])
        .env("KUBECONFIG", c.kubeconfig())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is-a-tty"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
}

#[test]
fn attach_passes_stdin_and_streams_output_until_exit() {
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
    let o = c.kubectl_stdin(&["attach", "-i", "rd"], "a\nquit\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("got a\ngot quit\n"), "{out}");
    wait_for("the pod to complete", Duration::from_secs(20), || {
        let phase = c.ok(&["get", "pod", "rd", "-o", "jsonpath={.status.phase}"]);
        (phase == "Succeeded").then_some(())
    });
}

#[test]
fn cluster_ip_forwards_to_a_ready_endpoint() {
    use std::io::{Read, Write};
    let c = TestCluster::start();
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("x"), "via cluster ip\n").expect("file");
    web(&c, &www);
    let ip = c.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    // A sandbox's ClusterIPs exist only inside the cluster: only pods
    // connect to them (below); nothing here may.
    let loopback = !c.cluster.sandboxed();
    assert!(
        ip.starts_with(if loopback { "127." } else { "10." }),
        "{ip}"
    );
    let page = wait_for("the ClusterIP to answer", Duration::from_secs(20), || {
        if !loopback {
            return Some("via cluster ip\n".to_string());
        }
        let mut s = std::net::TcpStream::connect((ip.as_str(), 8080)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /x HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.0 200").then_some(out)
    });
    assert!(page.ends_with("via cluster ip\n"), "{page}");
    // A pod started after the service finds it through the variables.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: main
    image: python:3.12
    command: ["sleep", "1000"]
"#,
    );
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=30s",
    ]);
    let env = c.ok(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        "echo $WEB_SERVICE_HOST $WEB_SERVICE_PORT $WEB_SERVICE_PORT_HTTP $WEB_PORT",
    ]);
    assert_eq!(env, format!("{ip} 8080 8080 tcp://{ip}:8080\n"));
    let fetched = c.ok(&[
        "exec",
        "client",
        "--",
        "python3",
        "-c",
        "import os, urllib.request; print(urllib.request.urlopen('http://%s:%s/x' % (os.environ['WEB_SERVICE_HOST'], os.environ['WEB_SERVICE_PORT'])).read().decode(), end='')",
    ]);
    assert_eq!(fetched, "via cluster ip\n");
    // In a sandbox, service names resolve too.
    if c.cluster.sandboxed() {
        for url in [
            "http://web:8080/x",
            "http://web.default.svc.cluster.local:8080/x",
        ] {
            let fetched = c.ok(&[
                "exec",
                "client",
                "--",
                "python3",
                "-c",
                &format!("import urllib.request; print(urllib.request.urlopen('{url}').read().decode(), end='')"),
            ]);
            assert_eq!(fetched, "via cluster ip\n");
        }
    }
    // The service goes away: so does its address.
    c.ok(&["delete", "svc", "web"]);
    if loopback {
        wait_for("the ClusterIP to close", Duration::from_secs(20), || {
            std::net::TcpStream::connect((ip.as_str(), 8080))
                .is_err()
                .then_some(())
        });
    }
}

#[test]
fn service_proxy_forwards_method_body_query_and_headers() {
    let c = TestCluster::start();
    let port = free_port();
    let script = c.dir.path().join("echo.py");
    std::fs::write(
        &script,
        r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        auth = self.headers.get('Authorization') or 'none'
        out = ('%s %s auth=%s x=%s body=' % (self.command, self.path, auth, self.headers.get('X-Test'))).encode() + body
        self.send_response(201)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
http.server.HTTPServer(('0.0.0.0', int(sys.argv[1])), H).serve_forever()
"#,
    )
    .expect("script");
    python_behind_service(&c, "echo", &script, port, 80);
    c.ok(&["wait", "--for=condition=Ready", "pod/echo", "--timeout=30s"]);
    // Plain HTTP on the same port, with the bearer token.
    let (addr, token) = c.plain_http();
    let reply = wait_for("the proxied POST", Duration::from_secs(20), || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "POST /api/v1/namespaces/default/services/echo/proxy/a/b?q=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Test: yes\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 201").then_some(out)
    });
    assert!(
        reply.ends_with("POST /a/b?q=1 auth=none x=yes body=hello"),
        "{reply}"
    );
}
