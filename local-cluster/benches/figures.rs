//! Figures for the local cluster (prints them; not a timed test):
//! create → Running, watch event latency, list of 1,000 pods, the server's
//! memory with 100 idle pods, and reaching pods: exec round trip, service
//! proxy latency and throughput, port-forward throughput, each beside a
//! direct connection to the same pod process. Runs the standalone server
//! binary.
//!
//!     cargo bench -p local-cluster --bench figures            # all
//!     cargo bench -p local-cluster --bench figures -- reach   # reaching pods only

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(String::from)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec =
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "100000"]}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "yes"}}, "spec": spec}),
    )
    .expect("pod")
}

async fn run(client: Client, server_pid: u32) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Watch event latency: create → the event on an open watch.
    let mut lat = Vec::new();
    for i in 0..200 {
        let rv = cms
            .list(&ListParams::default().limit(1))
            .await
            .expect("list")
            .metadata
            .resource_version
            .unwrap_or_default();
        let mut stream = cms
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch")
            .boxed();
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("lat-{i}")}})).expect("cm");
        let t = Instant::now();
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
        while let Some(ev) = stream.try_next().await.expect("event") {
            if let WatchEvent::Added(o) = ev
                && o.metadata.name.as_deref() == Some(&format!("lat-{i}"))
            {
                break;
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "watch event latency (create request sent → event received, 200 runs): median {:.2} ms, p90 {:.2} ms",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.9)
    );

    // Create → Running for a pod whose process starts at once.
    let mut times = Vec::new();
    for i in 0..30 {
        let name = format!("start-{i}");
        let rv = pods
            .list(&ListParams::default().limit(1))
            .await
            .expect("list")
            .metadata
            .resource_version
            .unwrap_or_default();
        let mut stream = pods
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch")
            .boxed();
        let t = Instant::now();
        pods.create(&PostParams::default(), &pod(&name, None))
            .await
            .expect("create");
        while let Some(ev) = stream.try_next().await.expect("event") {
            if let WatchEvent::Modified(p) = ev
                && p.metadata.name.as_deref() == Some(&name)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            {
                break;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "create → Running (30 pods, `sleep`): median {:.1} ms, p90 {:.1} ms, p95 {:.1} ms",
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.9),
        percentile(&mut times, 0.95)
    );

    // Memory with 100 idle pods (30 already run).
    for i in 30..100 {
        pods.create(&PostParams::default(), &pod(&format!("start-{i}"), None))
            .await
            .expect("create");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = pods
            .list(&ListParams::default().labels("bench=yes"))
            .await
            .expect("list");
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= 100 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "server memory with 100 idle pods: {:.1} MiB RSS (pod processes not included)",
        rss_kib(server_pid) as f64 / 1024.0
    );

    // List of 1,000 pods (bound to another node, so no processes run).
    let mut creates = Vec::new();
    for i in 0..900 {
        let pods = pods.clone();
        creates.push(tokio::spawn(async move {
            pods.create(
                &PostParams::default(),
                &pod(&format!("listed-{i}"), Some("elsewhere")),
            )
            .await
            .expect("create");
        }));
    }
    for c in creates {
        c.await.expect("create task");
    }
    let mut lists = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let l = pods.list(&ListParams::default()).await.expect("list");
        lists.push(t.elapsed().as_secs_f64() * 1000.0);
        count = l.items.len();
    }
    println!(
        "list of {count} pods (kube-rs, decoded into typed objects, 20 runs): median {:.1} ms, p90 {:.1} ms",
        percentile(&mut lists, 0.5),
        percentile(&mut lists, 0.9)
    );
    let mut raw = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/default/pods")
            .body(Vec::new())
            .expect("request");
        let body = client.request_text(req).await.expect("raw list");
        assert!(body.len() > 1000);
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "list of {count} pods (raw response, 20 runs): median {:.1} ms, p90 {:.1} ms",
        percentile(&mut raw, 0.5),
        percentile(&mut raw, 0.9)
    );
    println!(
        "server memory with 100 idle pods and 1,000 pod objects: {:.1} MiB RSS",
        rss_kib(server_pid) as f64 / 1024.0
    );
}

/// The plain-HTTP address of the server (it speaks both on one port) and
/// the bearer token, from the kubeconfig it wrote.
fn plain_http(kubeconfig: &Path) -> (String, String) {
    let kc = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let field = |k: &str| {
        kc.lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .expect("kubeconfig field")
            .trim_matches('"')
            .to_string()
    };
    let server = field("server: ").trim_start_matches("https://").to_string();
    (server, field("token: "))
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>;

/// A keep-alive HTTP/1.1 connection.
async fn connect(addr: &str) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// One GET on a keep-alive connection; the body's length.
async fn get(s: &mut Sender, path: &str, token: Option<&str>) -> usize {
    use http_body_util::BodyExt;
    let mut req = http::Request::get(path).header("host", "bench");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    s.ready().await.expect("connection ready");
    let resp = s
        .send_request(req.body(http_body_util::Empty::new()).expect("request"))
        .await
        .expect("response");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

/// Sequential requests on one connection: latencies in ms.
async fn latencies(addr: &str, path: &str, token: Option<&str>, n: usize) -> Vec<f64> {
    let mut s = connect(addr).await;
    for _ in 0..50 {
        get(&mut s, path, token).await;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(&mut s, path, token).await;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// Requests per second from `conns` keep-alive connections for `secs`.
async fn throughput(addr: &str, path: &str, token: Option<&str>, conns: usize, secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, path, token) = (addr.to_string(), path.to_string(), token.map(String::from));
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await;
            let mut n = 0u64;
            while Instant::now() < deadline {
                get(&mut s, &path, token.as_deref()).await;
                n += 1;
            }
            n
        }));
    }
    let t = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("load task");
    }
    total as f64 / t.elapsed().as_secs_f64()
}

async fn wait_ready(pods: &Api<Pod>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = pods.get(name).await.expect("get pod");
        let ready = p
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "pod {name} did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

const ECHO_JS: &str = r#"
const http = require('http'), net = require('net');
const [p, q, mib] = process.argv.slice(2).map(Number);
http.createServer((req, res) => res.end('ok\n')).listen(p, '0.0.0.0');
const chunk = Buffer.alloc(1 << 20, 120);
net.createServer(s => {
  let n = 0;
  const more = () => {
    while (n < mib) { n++; if (!s.write(chunk)) { s.once('drain', more); return; } }
    s.end();
  };
  more();
}).listen(q, '0.0.0.0');
"#;

const STREAM_MIB: usize = 512;

/// A load generator run in a pod: request latency and throughput to the
/// echo pod directly (its address) and through the ClusterIP, then a
/// download through the cluster's egress; one line of figures each.
const LOAD_JS: &str = r#"
const http = require('http');
const [direct, clusterIp, egress, mib] = process.argv.slice(2);
const pct = (v, p) => { v.sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.floor(v.length * p))]; };
function get(agent, addr) {
  const [host, port] = addr.split(':');
  return new Promise((ok, fail) => http.get({ host, port, path: '/', agent }, res => {
    res.resume(); res.on('end', ok);
  }).on('error', fail));
}
async function latency(addr, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await get(agent, addr);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  agent.destroy();
  return [pct(times, 0.5), pct(times, 0.95)];
}
async function throughput(addr, conns, secs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const end = Date.now() + secs * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: conns }, async () => {
    while (Date.now() < end) { await get(agent, addr); done++; }
  }));
  agent.destroy();
  return done / secs;
}
function download(addr) {
  const [host, port] = addr.split(':');
  const t = process.hrtime.bigint();
  return new Promise((ok, fail) => http.get({ host, port, path: '/' }, res => {
    let n = 0;
    res.on('data', c => n += c.length);
    res.on('end', () => ok(n / 1048576 / (Number(process.hrtime.bigint() - t) / 1e9)));
  }).on('error', fail));
}
(async () => {
  const out = {};
  for (const [name, addr] of [['direct', direct], ['clusterip', clusterIp]]) {
    await latency(addr, 300);
    out[name] = { latency: await latency(addr, 2000), rps: await throughput(addr, 8, 5) };
  }
  if (egress !== '-') {
    let best = 0;
    for (let i = 0; i < 3; i++) best = Math.max(best, await download(egress));
    out.egress = best;
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e.message); process.exit(1); });
"#;

/// A non-loopback IPv4 address of this machine outside the cluster's
/// ranges: a pod's connection to it leaves through the cluster's egress,
/// and stays on this machine.
fn host_address() -> Option<std::net::Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter_map(|i| i.address?.as_sockaddr_in().map(|a| a.ip()))
        .find(|ip| !ip.is_loopback() && ip.octets()[0] != 10)
}

/// Serves `mib` MiB to every HTTP request on `listener`.
async fn serve_download(listener: tokio::net::TcpListener, mib: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                mib << 20
            );
            if s.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..mib {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Request latency and throughput from inside the cluster (a load pod),
/// to the echo pod directly and through its ClusterIP, and the egress
/// download beside the same download made here.
async fn inside(pods: &Api<Pod>, dir: &Path, direct: &str, cluster_addr: &str) {
    use tokio::io::AsyncReadExt;
    const EGRESS_MIB: usize = 256;
    let script = dir.join("load.js");
    std::fs::write(&script, LOAD_JS).expect("script");
    // Egress: a download server on this machine's port 80 (a port pods
    // may reach), when this machine has an address for it and the port
    // is free.
    let host = host_address();
    let listener = match host {
        Some(ip) => tokio::net::TcpListener::bind((ip, 80)).await.ok(),
        None => None,
    };
    let egress = match (&listener, host) {
        (Some(_), Some(ip)) => format!("{ip}:80"),
        _ => "-".to_string(),
    };
    if let Some(listener) = listener {
        tokio::spawn(serve_download(listener, EGRESS_MIB));
    }
    let load: Pod = serde_json::from_value(json!({
        "metadata": {"name": "load"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "load", "image": "node:20",
            "command": ["node", script, direct, cluster_addr, egress, EGRESS_MIB.to_string()]}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &load)
        .await
        .expect("create load");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let phase = pods
            .get("load")
            .await
            .expect("load")
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            break;
        }
        assert!(Instant::now() < deadline, "the load pod did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = pods
        .logs("load", &Default::default())
        .await
        .expect("load logs");
    let _ = pods.delete("load", &Default::default()).await;
    let Some(figures) = logs
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        println!("the load pod gave no figures: {logs}");
        return;
    };
    let ms = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let (d, c) = (&figures["direct"], &figures["clusterip"]);
    println!(
        "ClusterIP GET from a pod (2000 sequential, one keep-alive connection): median {:.3} ms, p95 {:.3} ms | direct to the pod's address: median {:.3} ms, p95 {:.3} ms | overhead (median) {:.3} ms",
        ms(&c["latency"][0]),
        ms(&c["latency"][1]),
        ms(&d["latency"][0]),
        ms(&d["latency"][1]),
        ms(&c["latency"][0]) - ms(&d["latency"][0])
    );
    println!(
        "throughput from a pod (8 keep-alive connections, 5 s each): ClusterIP {:.0} req/s, direct {:.0} req/s",
        ms(&c["rps"]),
        ms(&d["rps"])
    );
    match (figures["egress"].as_f64(), host) {
        (Some(via), Some(ip)) => {
            let mut best: f64 = 0.0;
            for _ in 0..3 {
                let t = Instant::now();
                let mut s = tokio::net::TcpStream::connect((ip, 80))
                    .await
                    .expect("connect");
                use tokio::io::AsyncWriteExt;
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .expect("request");
                let mut buf = vec![0u8; 1 << 16];
                let mut n = 0usize;
                loop {
                    match s.read(&mut buf).await.expect("read") {
                        0 => break,
                        k => n += k,
                    }
                }
                assert!(n >= EGRESS_MIB << 20);
                best = best.max(EGRESS_MIB as f64 / t.elapsed().as_secs_f64());
            }
            println!(
                "egress download ({EGRESS_MIB} MiB from this machine's {ip}:80, best of 3): from a pod {via:.0} MiB/s | direct: {best:.0} MiB/s"
            );
        }
        _ => println!(
            "egress not measured: no address of this machine outside the cluster's ranges, or its port 80 is taken"
        ),
    }
}

fn line(what: &str, via: &mut [f64], direct: &mut [f64]) {
    let (vm, vp) = (percentile(via, 0.5), percentile(via, 0.95));
    let (dm, dp) = (percentile(direct, 0.5), percentile(direct, 0.95));
    println!(
        "{what}: median {vm:.3} ms, p95 {vp:.3} ms | direct: median {dm:.3} ms, p95 {dp:.3} ms | overhead (median) {:.3} ms",
        vm - dm
    );
}

/// Exec, the service proxy, the ClusterIP and port-forward, each beside a
/// direct connection to the same pod process.
async fn reach(client: Client, kubeconfig: &Path, dir: &Path) {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::AttachParams;
    use tokio::io::AsyncReadExt;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let (http_port, stream_port) = (free_port(), free_port());
    let script = dir.join("echo.js");
    std::fs::write(&script, ECHO_JS).expect("script");
    let echo: Pod = serde_json::from_value(json!({
        "metadata": {"name": "echo", "labels": {"app": "echo"}},
        "spec": {"containers": [{"name": "echo", "image": "node:20",
            "command": ["node", script, http_port.to_string(), stream_port.to_string(), STREAM_MIB.to_string()],
            "readinessProbe": {"tcpSocket": {"port": http_port}, "periodSeconds": 1}}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &echo)
        .await
        .expect("create echo");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": http_port}]}
    }))
    .expect("service");
    let svc = svcs
        .create(&PostParams::default(), &svc)
        .await
        .expect("create service");
    pods.create(&PostParams::default(), &pod("box", None))
        .await
        .expect("create box");
    wait_ready(&pods, "echo").await;
    wait_ready(&pods, "box").await;
    // In a sandbox, pod and Service addresses exist only inside the
    // cluster: this process may not connect to them, so only the figures
    // taken through the API server are measured.
    let sandboxed = pods
        .get("echo")
        .await
        .expect("echo")
        .status
        .and_then(|s| s.pod_ip)
        .is_some_and(|ip| ip != "127.0.0.1");
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).expect("clusterIP");
    let cluster_addr = format!("{cluster_ip}:80");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sandboxed && tokio::net::TcpStream::connect(&cluster_addr).await.is_err() {
        assert!(Instant::now() < deadline, "the ClusterIP did not open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Exec round trip of `true`, beside spawning `true` here.
    let mut via = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let mut p = pods
            .exec("box", ["true"], &AttachParams::default().stderr(false))
            .await
            .expect("exec");
        let status = p.take_status().expect("status").await;
        p.join().await.expect("exec ends");
        assert_eq!(status.and_then(|s| s.status).as_deref(), Some("Success"));
        via.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut direct = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let st = tokio::process::Command::new("true")
            .status()
            .await
            .expect("true");
        assert!(st.success());
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    line(
        "exec `true` round trip (kube-rs, TLS WebSocket, 100 runs; direct = spawning `true` here)",
        &mut via,
        &mut direct,
    );

    if sandboxed {
        let mut via = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let req = http::Request::get("/api/v1/namespaces/default/services/echo:80/proxy/")
                .body(Vec::new())
                .expect("request");
            client.request_text(req).await.expect("proxied GET");
            via.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "service proxy GET through kube-rs over TLS (500 sequential): median {:.3} ms, p95 {:.3} ms",
            percentile(&mut via, 0.5),
            percentile(&mut via, 0.95)
        );
        let pod_ip = pods
            .get("echo")
            .await
            .expect("echo")
            .status
            .and_then(|s| s.pod_ip)
            .expect("pod IP");
        inside(&pods, dir, &format!("{pod_ip}:{http_port}"), &cluster_addr).await;
        println!(
            "skipped in a sandbox: port-forward (this process may not reach the pod's address to compare)"
        );
        let _ = pods.delete("echo", &Default::default()).await;
        let _ = pods.delete("box", &Default::default()).await;
        let _ = svcs.delete("echo", &Default::default()).await;
        return;
    }

    // Request latency: the same Node.js process, through the service
    // proxy (plain HTTP + bearer token, as a kube-rs or kubectl request
    // without TLS), through the ClusterIP, and directly.
    let (api, token) = plain_http(kubeconfig);
    let proxy_path = "/api/v1/namespaces/default/services/echo:80/proxy/";
    let pod_addr = format!("127.0.0.1:{http_port}");
    let n = 2000;
    let mut direct = latencies(&pod_addr, "/", None, n).await;
    let mut via = latencies(&api, proxy_path, Some(&token), n).await;
    line(
        &format!("service proxy GET ({n} sequential, one keep-alive connection)"),
        &mut via,
        &mut direct.clone(),
    );
    let mut via = latencies(&cluster_addr, "/", None, n).await;
    line(
        &format!("ClusterIP GET ({n} sequential, one keep-alive connection)"),
        &mut via,
        &mut direct,
    );
    let mut via = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let req = http::Request::get(proxy_path)
            .body(Vec::new())
            .expect("request");
        client.request_text(req).await.expect("proxied GET");
        via.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "service proxy GET through kube-rs over TLS (500 sequential): median {:.3} ms, p95 {:.3} ms",
        percentile(&mut via, 0.5),
        percentile(&mut via, 0.95)
    );

    // Throughput: this process generates the load on loopback.
    let conns = 8;
    let secs = 5;
    let direct_rps = throughput(&pod_addr, "/", None, conns, secs).await;
    let proxy_rps = throughput(&api, proxy_path, Some(&token), conns, secs).await;
    let cip_rps = throughput(&cluster_addr, "/", None, conns, secs).await;
    println!(
        "throughput ({conns} keep-alive connections, {secs} s each): service proxy {proxy_rps:.0} req/s, ClusterIP {cip_rps:.0} req/s, direct {direct_rps:.0} req/s"
    );

    // Port-forward throughput: the pod sends STREAM_MIB MiB.
    let stream_addr = format!("127.0.0.1:{stream_port}");
    let mut direct = Vec::new();
    let mut via = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = tokio::net::TcpStream::connect(&stream_addr)
            .await
            .expect("connect");
        let n = read_all(&mut s).await;
        assert_eq!(n, STREAM_MIB << 20);
        direct.push(STREAM_MIB as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut pf = pods
            .portforward("echo", &[stream_port])
            .await
            .expect("portforward");
        let mut s = pf.take_stream(stream_port).expect("stream");
        let n = read_all(&mut s).await;
        assert_eq!(n, STREAM_MIB << 20);
        via.push(STREAM_MIB as f64 / t.elapsed().as_secs_f64());
        drop(s);
        let _ = pf.join().await;
    }
    println!(
        "port-forward throughput ({STREAM_MIB} MiB from the pod, kube-rs Portforwarder over TLS WebSocket, best of 3): {:.0} MiB/s | direct: {:.0} MiB/s",
        via.iter().copied().fold(0.0, f64::max),
        direct.iter().copied().fold(0.0, f64::max)
    );

    async fn read_all(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> usize {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        loop {
            match s.read(&mut buf).await.expect("read") {
                0 => return n,
                k => n += k,
            }
        }
    }
    let _ = pods.delete("echo", &Default::default()).await;
    let _ = pods.delete("box", &Default::default()).await;
    let _ = svcs.delete("echo", &Default::default()).await;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut server = Command::new(env!("CARGO_BIN_EXE_local-cluster"))
        // Its pods run their commands from this machine (no registry here).
        .env("KUBESH_LOCAL_IMAGES", "host")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap_or(""),
            "--state",
            dir.path().join("state").to_str().unwrap_or(""),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        let client = Client::try_from(config).expect("client");
        println!(
            "idle server memory: {:.1} MiB RSS",
            rss_kib(server.id()) as f64 / 1024.0
        );
        if !std::env::args().any(|a| a == "reach") {
            run(client.clone(), server.id()).await;
        }
        reach(client, &kubeconfig, dir.path()).await;
    });
    // SAFETY: SIGTERM to the server we started; it stops its pods.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}
