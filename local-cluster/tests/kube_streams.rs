//! kube-rs exec and port-forward against the local cluster.

mod common;

use common::{TestCluster, free_port};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn client(c: &TestCluster) -> Client {
    let kc = Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

#[test]
fn portforward_fetches_a_page_and_reports_refused_ports() {
    let c = TestCluster::start();
    let www = c.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "forwarded page\n").expect("file");
    let port = free_port();
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: web
    image: python:3.12
    command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{dir}"]
    readinessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
"#,
        dir = www.display()
    ));
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pods: Api<Pod> = Api::default_namespaced(client(&c).await);
        // Several connections at once.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let pods = pods.clone();
            tasks.push(tokio::spawn(async move {
                let mut pf = pods.portforward("web", &[port]).await.expect("portforward");
                let mut s = pf.take_stream(port).expect("stream");
                s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
                    .await
                    .expect("write");
                let mut buf = Vec::new();
                tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut buf))
                    .await
                    .expect("response in time")
                    .expect("read");
                drop(s);
                let _ = pf.join().await;
                String::from_utf8_lossy(&buf).into_owned()
            }));
        }
        for t in tasks {
            let page = t.await.expect("task");
            assert!(page.starts_with("HTTP/1.0 200"), "{page}");
            assert!(page.ends_with("forwarded page\n"), "{page}");
        }
        // Nothing listens: an error on the port's error channel, in the
        // kubelet's words.
        let closed = free_port();
        let mut pf = pods
            .portforward("web", &[closed])
            .await
            .expect("portforward");
        let err = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            pf.take_error(closed).expect("error channel"),
        )
        .await
        .expect("error in time");
        assert!(
            err.as_deref().is_some_and(|e| e
                .starts_with(&format!("error forwarding port {closed} to pod web"))
                && e.contains("connection refused")),
            "{err:?}"
        );
    });
}

#[test]
fn kube_rs_exec_with_attached_process() {
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pods: Api<Pod> = Api::default_namespaced(client(&c).await);
        let mut p = pods
            .exec(
                "box",
                ["sh", "-c", "read x; echo got-$x; exit 2"],
                &AttachParams::default().stdin(true).stderr(false),
            )
            .await
            .expect("exec");
        let mut stdin = p.stdin().expect("stdin");
        stdin.write_all(b"ping\n").await.expect("write");
        let mut out = String::new();
        p.stdout()
            .expect("stdout")
            .read_to_string(&mut out)
            .await
            .expect("read");
        assert_eq!(out, "got-ping\n");
        let status = p.take_status().expect("status").await.expect("a status");
        assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
        let code = status
            .details
            .and_then(|d| d.causes)
            .and_then(|c| {
                c.into_iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
            })
            .and_then(|c| c.message);
        assert_eq!(code.as_deref(), Some("2"));
    });
}
