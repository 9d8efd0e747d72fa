//! Figures for the local cluster (prints them; not a timed test):
//! create → Running, watch event latency, list of 1,000 pods, and the
//! server's memory with 100 idle pods. Runs the standalone server binary.
//!
//!     cargo bench -p local-cluster --bench figures

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
        "create → Running (30 pods, `sleep`): median {:.1} ms, p90 {:.1} ms",
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.9)
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut server = Command::new(env!("CARGO_BIN_EXE_local-cluster"))
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
        run(client, server.id()).await;
    });
    // SAFETY: SIGTERM to the server we started; it stops its pods.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}
