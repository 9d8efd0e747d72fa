//! Reaching services and pods with real clients: a Node.js program calling
//! a Python service by name and by the service variables, a static binary
//! resolving a service through the pod's /etc/hosts, streams whose endpoint
//! goes away, port clashes on the shared network, and https upstreams
//! behind the proxies.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestCluster, free_port, python_behind_service, wait_for};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// A Python http.server pod `gen` serving `dir`, behind a Service `gen`
/// whose port 8080 differs from the pod's port. Returns the pod's port and
/// the ClusterIP once the ClusterIP accepts connections.
fn python_service(c: &TestCluster, dir: &Path) -> (u16, String) {
    let port = free_port();
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: gen, labels: {{app: gen}}}}
spec:
  containers:
  - name: gen
    image: python:3.12
    command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{dir}"]
    ports: [{{name: http, containerPort: {port}}}]
    readinessProbe:
      tcpSocket: {{port: http}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: gen}}
spec:
  selector: {{app: gen}}
  ports: [{{name: http, port: 8080, targetPort: http}}]
"#,
        dir = dir.display()
    ));
    c.ok(&["wait", "--for=condition=Ready", "pod/gen", "--timeout=30s"]);
    let ip = c.jsonpath(&["svc", "gen"], "{.spec.clusterIP}");
    // A sandbox's ClusterIPs exist only inside the cluster: nothing here
    // may connect to them.
    if !c.cluster.sandboxed() {
        wait_for("the ClusterIP to accept connections", T, || {
            std::net::TcpStream::connect((ip.as_str(), 8080)).ok()
        });
    }
    (port, ip)
}

/// Waits for a pod to finish and returns its log; a failed pod fails the
/// test with its log.
fn finished_log(c: &TestCluster, pod: &str) -> String {
    let phase = wait_for(&format!("pod {pod} to finish"), T, || {
        let p = c.jsonpath(&["pod", pod], "{.status.phase}");
        (p == "Succeeded" || p == "Failed").then_some(p)
    });
    let log = c.ok(&["logs", pod]);
    assert_eq!(phase, "Succeeded", "pod {pod} failed; its log:\n{log}");
    log
}

#[test]
fn a_node_program_calls_a_python_service_by_name_and_by_variables() {
    let c = TestCluster::start();
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("x"), "numbers 4 8 15\n").expect("file");
    python_service(&c, &www);
    let names = c.cluster.sandboxed();
    if !names {
        eprintln!("pods run without sandboxes here: only the variables are tried, not names");
    }
    let script = c.dir.path().join("consumer.js");
    std::fs::write(
        &script,
        r#"
const http = require('http');
const names = process.argv[2] === 'names';
const urls = [`http://${process.env.GEN_SERVICE_HOST}:${process.env.GEN_SERVICE_PORT}/x`];
if (names) urls.push('http://gen:8080/x', 'http://gen.default.svc.cluster.local:8080/x');
(async () => {
  for (const url of urls) {
    const body = await new Promise((ok, fail) => {
      http.get(url, res => {
        let b = '';
        res.on('data', d => b += d);
        res.on('end', () => ok(`${res.statusCode} ${b}`));
      }).on('error', fail);
    });
    process.stdout.write(`${url.replace(process.env.GEN_SERVICE_HOST, 'HOST')} -> ${body}`);
  }
})().catch(e => { console.error(`fetch failed: ${e.message}`); process.exit(1); });
"#,
    )
    .expect("script");
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: consumer}}
spec:
  restartPolicy: Never
  containers:
  - name: consumer
    image: node:20
    command: ["node", "{script}", "{mode}"]
"#,
        script = script.display(),
        mode = if names { "names" } else { "variables" }
    ));
    let log = finished_log(&c, "consumer");
    let mut want = "http://HOST:8080/x -> 200 numbers 4 8 15\n".to_string();
    if names {
        want.push_str("http://gen:8080/x -> 200 numbers 4 8 15\n");
        want.push_str("http://gen.default.svc.cluster.local:8080/x -> 200 numbers 4 8 15\n");
    }
    assert_eq!(log, want);
}

const RESOLVE_C: &str = r#"
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        struct addrinfo hints = {0}, *res;
        hints.ai_socktype = SOCK_STREAM;
        int e = getaddrinfo(argv[i], argv[1], &hints, &res);
        if (e != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], gai_strerror(e));
            return 1;
        }
        int s = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
        if (s < 0 || connect(s, res->ai_addr, res->ai_addrlen) != 0) {
            perror("connect");
            return 1;
        }
        const char *req = "GET /x HTTP/1.0\r\n\r\n";
        write(s, req, strlen(req));
        char buf[4096];
        size_t n = 0;
        ssize_t r;
        while (n < sizeof buf - 1 && (r = read(s, buf + n, sizeof buf - 1 - n)) > 0) n += r;
        buf[n] = 0;
        char *body = strstr(buf, "\r\n\r\n");
        printf("%s -> %s", argv[i], body ? body + 4 : "(no body)\n");
        close(s);
        freeaddrinfo(res);
    }
    return 0;
}
"#;

#[test]
fn a_static_binary_resolves_a_service_through_the_pods_hosts_file() {
    let c = TestCluster::start();
    if !c.cluster.sandboxed() {
        eprintln!(
            "skipped: pods run without sandboxes here, so they have no /etc/hosts of their own"
        );
        return;
    }
    let src = c.dir.path().join("resolve.c");
    let bin = c.dir.path().join("resolve");
    std::fs::write(&src, RESOLVE_C).expect("source");
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "skipped: gcc -static failed (static libc missing?): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: gcc is not installed ({e})");
            return;
        }
    }
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("x"), "static hello\n").expect("file");
    python_service(&c, &www);
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: resolve}}
spec:
  restartPolicy: Never
  containers:
  - name: resolve
    image: scratch
    command: ["{bin}", "8080", "gen", "gen.default.svc.cluster.local"]
"#,
        bin = bin.display()
    ));
    let log = finished_log(&c, "resolve");
    assert_eq!(
        log,
        "gen -> static hello\ngen.default.svc.cluster.local -> static hello\n"
    );
}

/// Reads from `s` until `want` appears; returns what was read.
fn read_until(s: &mut std::net::TcpStream, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = s.read(&mut buf).expect("the stream delivers data");
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the peer ends the stream (EOF or reset); fails if it is
/// still open after `limit`. Returns the tail read and how long it took.
fn read_to_end_within(s: &mut std::net::TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the stream was still open {limit:?} after its pod was deleted")
            }
            // A reset ends the stream too.
            Err(_) => break,
        }
        assert!(
            start.elapsed() < limit,
            "the stream was still open {limit:?} after its pod was deleted"
        );
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[test]
fn a_stream_ends_when_its_endpoint_goes_away() {
    let c = TestCluster::start();
    let port = free_port();
    let script = c.dir.path().join("ticker.py");
    std::fs::write(
        &script,
        r#"
import http.server, os, signal, sys, time
# PID 1 of its container: without a handler, SIGTERM would be ignored.
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        self.send_response(200)
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        n = 0
        while True:
            line = ('tick %d\n' % n).encode()
            self.wfile.write(b'%x\r\n%s\r\n' % (len(line), line))
            self.wfile.flush()
            n += 1
            time.sleep(0.1)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', int(sys.argv[1])), H).serve_forever()
"#,
    )
    .expect("script");
    python_behind_service(&c, "ticker", &script, port, 8080);
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/ticker",
        "--timeout=30s",
    ]);
    let ip = c.jsonpath(&["svc", "ticker"], "{.spec.clusterIP}");
    let (api, token) = c.plain_http();

    // One stream through the service proxy and, where pods share this
    // machine's network (ClusterIPs on loopback), one through the
    // ClusterIP. In a sandbox the ClusterIP exists only inside the
    // cluster: nothing here may connect to it.
    let loopback = !c.cluster.sandboxed();
    let mut direct = loopback.then(|| {
        let mut direct = wait_for("the ClusterIP to accept connections", T, || {
            std::net::TcpStream::connect((ip.as_str(), 8080)).ok()
        });
        direct.set_read_timeout(Some(T)).expect("timeout");
        direct
            .write_all(b"GET / HTTP/1.1\r\nHost: ticker\r\n\r\n")
            .expect("request");
        read_until(&mut direct, "tick 1\n");
        direct
    });
    let mut proxied = std::net::TcpStream::connect(&api).expect("the API server");
    proxied.set_read_timeout(Some(T)).expect("timeout");
    write!(
        proxied,
        "GET /api/v1/namespaces/default/services/ticker:8080/proxy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("request");
    let head = read_until(&mut proxied, "tick 1\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    c.ok(&["delete", "pod", "ticker", "--wait=false"]);
    let limit = Duration::from_secs(15);
    let mut streams = vec![("service proxy", &mut proxied)];
    if let Some(d) = direct.as_mut() {
        streams.push(("ClusterIP", d));
    }
    for (what, s) in streams {
        let (tail, took) = read_to_end_within(s, limit);
        // Cut off, not a complete response: no last chunk.
        assert!(
            !tail.contains("0\r\n\r\n"),
            "the {what} stream ended as if complete after {took:?}: {tail:?}"
        );
    }

    // New requests: refused at the ClusterIP, 503 from the proxy.
    if loopback {
        let refused = wait_for("the ClusterIP to refuse connections", T, || {
            std::net::TcpStream::connect((ip.as_str(), 8080)).err()
        });
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    let mut s = std::net::TcpStream::connect(&api).expect("the API server");
    s.set_read_timeout(Some(T)).expect("timeout");
    write!(
        s,
        "GET /api/v1/namespaces/default/services/ticker:8080/proxy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.contains("no endpoints available for service \\\"ticker\\\""),
        "{reply}"
    );
}

fn pods_of(c: &TestCluster, label: &str) -> Vec<Value> {
    let out = c.ok(&["get", "pods", "-l", label, "-o", "json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn name(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn events_of(c: &TestCluster, pod: &str, reason: &str) -> Vec<String> {
    let out = c.ok(&["get", "events", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect()
}

fn deployment(name: &str, port: u16, declare: bool) -> String {
    let ports = if declare {
        format!("ports: [{{containerPort: {port}}}]")
    } else {
        String::new()
    };
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: python:3.12
        command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0"]
        {ports}
"#
    )
}

#[test]
fn replicas_declaring_the_same_port_are_unschedulable_naming_who_holds_it() {
    let c = TestCluster::start();
    if c.cluster.sandboxed() {
        // Pods have an address each here: nothing clashes (see
        // tests/sandbox.rs). CI runs this with KUBESH_LOCAL_SANDBOX=off.
        eprintln!("skipped: pods do not share this machine's network here");
        return;
    }
    let port = free_port();
    c.apply(&deployment("clash", port, true));
    // One replica runs; the other cannot be placed, as a pod whose host
    // port another pod holds: the scheduler's words, then the holder.
    let (running, waiting, msg) = wait_for("one replica to wait for the port", T, || {
        let pods = pods_of(&c, "app=clash");
        let run = pods
            .iter()
            .find(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())?;
        let (wait, scheduled) = pods.iter().find_map(|p| {
            let conditions = p["status"]["conditions"].as_array()?;
            let scheduled = conditions
                .iter()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")?;
            Some((p, scheduled))
        })?;
        assert_eq!(scheduled["reason"], "Unschedulable");
        let msg = scheduled["message"].as_str()?.to_string();
        Some((name(run), name(wait), msg))
    });
    assert!(
        msg.starts_with(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
        ) && msg.contains(&format!(
            "port {port}/TCP is taken by pod default/{running}"
        )),
        "{msg}"
    );
    let events = events_of(&c, &waiting, "FailedScheduling");
    assert!(
        events.iter().any(|e| e.contains(&running)),
        "no FailedScheduling event on {waiting}: {events:?}"
    );
    assert_eq!(c.jsonpath(&["pod", &waiting], "{.status.phase}"), "Pending");
    // When the holder goes, another replica gets the port: the waiting one
    // or the holder's replacement, whichever checks first.
    c.ok(&["delete", "pod", &running, "--wait=false"]);
    wait_for("another replica to start", T, || {
        pods_of(&c, "app=clash")
            .iter()
            .any(|p| {
                name(p) != running
                    && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
            })
            .then_some(())
    });
}

#[test]
fn a_replica_that_cannot_bind_says_which_pod_has_the_port() {
    let c = TestCluster::start();
    if c.cluster.sandboxed() {
        // Pods have an address each here: nothing clashes (see
        // tests/sandbox.rs). CI runs this with KUBESH_LOCAL_SANDBOX=off.
        eprintln!("skipped: pods do not share this machine's network here");
        return;
    }
    let port = free_port();
    c.apply(&deployment("undeclared", port, false));
    let (failed, msg) = wait_for("a replica's termination message", T, || {
        pods_of(&c, "app=undeclared").iter().find_map(|p| {
            let cs = &p["status"]["containerStatuses"][0];
            let m = cs["state"]["terminated"]["message"]
                .as_str()
                .or(cs["lastState"]["terminated"]["message"].as_str())?;
            Some((name(p), m.to_string()))
        })
    });
    let holder = pods_of(&c, "app=undeclared")
        .iter()
        .map(name)
        .find(|n| *n != failed)
        .expect("the other replica");
    assert!(msg.starts_with("address already in use"), "{msg}");
    assert!(
        msg.contains(&format!(
            "pod default/{holder} (container web) listens on port {port}"
        )),
        "{msg}"
    );
    let events = events_of(&c, &failed, "PortInUse");
    assert!(
        events.iter().any(|e| e.contains(&holder)),
        "no PortInUse event on {failed}: {events:?}"
    );
}

#[test]
fn https_upstreams_behind_the_service_and_pod_proxies() {
    let c = TestCluster::start();
    let dir = c.dir.path();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=secure",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: openssl could not make a self-signed certificate");
        return;
    }
    let port = free_port();
    let script = dir.join("secure.py");
    std::fs::write(
        &script,
        r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out = ('secure %s' % self.path).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
srv = http.server.HTTPServer(('0.0.0.0', int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#,
    )
    .expect("script");
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: secure, labels: {{app: secure}}}}
spec:
  containers:
  - name: secure
    image: python:3.12
    command: ["python3", "{script}", "{port}", "{cert}", "{key}"]
    ports: [{{name: https, containerPort: {port}}}]
    readinessProbe:
      tcpSocket: {{port: https}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: secure}}
spec:
  selector: {{app: secure}}
  ports: [{{name: https, port: 8443, targetPort: https}}]
"#,
        script = script.display(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    ));
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/secure",
        "--timeout=30s",
    ]);
    let out = wait_for("the https service proxy", T, || {
        let o = c.kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/https:secure:8443/proxy/a?b=c",
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(out, "secure /a?b=c");
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/https:secure:https/proxy/p",
    ]);
    assert_eq!(out, "secure /p");
    // Plain HTTP to a TLS port is the upstream's error, not a hang.
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/secure:8443/proxy/a",
        "--request-timeout=10s",
    ]);
    assert!(!o.status.success());
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/ftp:secure:8443/proxy/a",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("use http or https"), "{err}");
    // Ports are chosen as the API server chooses them: without a port only
    // an unnamed one matches (this Service's only port is named), by
    // name or number the named one, and an unknown number is refused.
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/secure/proxy/a",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no endpoints available for service"),
        "{err}"
    );
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/https:secure:https/proxy/n",
    ]);
    assert_eq!(out, "secure /n");
    let o = c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/https:secure:9999/proxy/a",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no service port 9999 found"), "{err}");
}
