//! Fidelity tests: real kubectl against the local cluster.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{APP, TestCluster, all_gone, processes_under, wait_for};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

#[test]
fn get_namespaces() {
    let c = TestCluster::start();
    let out = c.ok(&["get", "ns"]);
    assert!(out.contains("NAME") && out.contains("STATUS"), "{out}");
    for ns in ["default", "kube-system"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{out}"
        );
    }
}

/// As kube-controller-manager's root CA publisher does: every namespace
/// holds `kube-root-ca.crt` with the cluster's CA, made again when deleted
/// and put back when changed; a namespace being deleted still empties.
#[test]
fn every_namespace_holds_the_cluster_s_ca_in_kube_root_ca_crt() {
    let c = TestCluster::start();
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("the kubeconfig");
    let encoded = kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("certificate-authority-data: "))
        .expect("the kubeconfig's CA");
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(encoded.trim().as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 runs");
    let ca = String::from_utf8(decoded.stdout).expect("a PEM certificate");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let held = |ns: &str| {
        c.kubectl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ])
    };
    let held_is_ca = |ns: &str| {
        let out = held(ns);
        (out.status.success() && String::from_utf8_lossy(&out.stdout).trim_end() == ca.trim_end())
            .then_some(())
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        wait_for(&format!("kube-root-ca.crt in {ns}"), T, || held_is_ca(ns));
    }
    c.ok(&["create", "namespace", "fresh"]);
    wait_for("kube-root-ca.crt in a new namespace", T, || {
        held_is_ca("fresh")
    });
    c.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "fresh"]);
    wait_for("kube-root-ca.crt made again", T, || held_is_ca("fresh"));
    c.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "fresh",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"ca.crt":"changed"}}"#,
    ]);
    wait_for("kube-root-ca.crt put back", T, || held_is_ca("fresh"));
    c.ok(&["delete", "namespace", "fresh", "--timeout=30s"]);
    let gone = c.kubectl(&["get", "namespace", "fresh"]);
    assert!(!gone.status.success(), "the namespace is gone");
}

#[test]
fn generator_commands() {
    let c = TestCluster::start();
    c.ok(&["create", "namespace", "gen"]);
    c.ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "gen",
        "--from-literal=a=b",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "gen",
        "--from-literal=token=abc",
    ]);
    assert_eq!(
        c.ok(&["get", "cm", "c1", "-n", "gen", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "secret",
            "s1",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.token}"
        ]),
        "YWJj"
    );
    c.ok(&["label", "ns", "gen", "team=x"]);
    assert!(
        c.ok(&["get", "ns", "-l", "team=x", "-o", "name"])
            .contains("namespace/gen")
    );
}

#[test]
fn requests_without_the_token_are_refused() {
    let c = TestCluster::start();
    let out = c.kubectl(&["--token", "wrong", "get", "ns"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("credentials"),
        "{err}"
    );
    let mode = std::fs::metadata(c.kubeconfig())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    assert_eq!(mode.ok().map(|m| m & 0o777), Some(0o600));
}

#[test]
fn deployment_lifecycle() {
    let c = TestCluster::start();
    let out = c.apply(APP);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    // Apply again: nothing changes.
    let out = c.apply(APP);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    c.ok(&["rollout", "status", "deploy/web", "--timeout=30s"]);

    let json: Value =
        serde_json::from_str(&c.ok(&["get", "deploy", "web", "-o", "json"])).expect("json");
    assert_eq!(json["status"]["readyReplicas"], 2);
    assert_eq!(json["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(json["metadata"]["uid"].is_string());

    let pods: Value =
        serde_json::from_str(&c.ok(&["get", "pods", "-l", "app=web", "-o", "json"])).expect("json");
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .expect("a pod")
        .to_string();
    let describe = c.ok(&["describe", "pod", &pod]);
    assert!(
        describe.contains("Status:") && describe.contains("Running"),
        "{describe}"
    );
    assert!(describe.contains("Started container web"), "{describe}");
    let logs = wait_for("the pod's first line", T, || {
        let l = c.ok(&["logs", &pod]);
        l.contains("started hello").then_some(l)
    });
    assert_eq!(logs.trim(), "started hello");

    c.ok(&["scale", "deploy/web", "--replicas=3"]);
    c.ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=30s",
    ]);
    wait_for("three ready replicas", T, || {
        let out = c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (out.trim() == "3").then_some(())
    });
    let events = c.ok(&["get", "events"]);
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("Scheduled"),
        "{events}"
    );

    // A template change rolls out a new replica set.
    c.ok(&["set", "image", "deploy/web", "web=python:3.13"]);
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let rs = c.ok(&["get", "rs", "-o", "json"]);
    let rs: Value = serde_json::from_str(&rs).expect("json");
    assert_eq!(rs["items"].as_array().map(Vec::len), Some(2));
    let history = c.ok(&["rollout", "history", "deploy/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.ok(&["rollout", "undo", "deploy/web"]);
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let image = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "python:3.12");

    // Pods being replaced stay until their grace period ends, as on any
    // cluster; only the running ones count.
    wait_for("three pods", T, || {
        (c.cluster.pod_pids().len() == 3).then_some(())
    });
    let pids: Vec<u32> = c
        .cluster
        .pod_pids()
        .into_iter()
        .flat_map(processes_under)
        .collect();
    c.ok(&["delete", "deploy", "web"]);
    wait_for("every pod gone", T, || {
        c.ok(&["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
    wait_for("the pods' processes to end", T, || {
        all_gone(&pids).then_some(())
    });
}

#[test]
fn logs_follow_ends_with_the_container() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "for i in 1 2 3; do echo line $i; echo err $i >&2; sleep 0.2; done"]
"#,
    );
    wait_for("the container to start", T, || {
        let out = c.kubectl(&["logs", "counter"]);
        out.status.success().then_some(())
    });
    let out = c.ok(&["logs", "-f", "counter"]);
    for i in 1..=3 {
        assert!(
            out.contains(&format!("line {i}")) && out.contains(&format!("err {i}")),
            "{out}"
        );
    }
    wait_for("phase Succeeded", T, || {
        (c.ok(&["get", "pod", "counter", "-o", "jsonpath={.status.phase}"]) == "Succeeded")
            .then_some(())
    });
    let tail = c.ok(&["logs", "counter", "--tail=1", "--timestamps"]);
    assert!(
        tail.trim().ends_with("err 3") || tail.trim().ends_with("line 3"),
        "{tail}"
    );
    assert_eq!(tail.lines().count(), 1);
}

#[test]
fn get_pods_watch_prints_the_first_events() {
    let c = TestCluster::start();
    let mut child = Command::new("kubectl")
        .args(["get", "pods", "--watch"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: watched}
spec:
  containers:
  - {name: c, image: busybox, command: ["sleep", "1000"]}
"#,
    );
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("watched") && l.contains("Running"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no Running line: {seen:?}"
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    assert!(
        seen[0].contains("NAME") && seen[0].contains("STATUS"),
        "{seen:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn delete_namespace_removes_its_contents() {
    let c = TestCluster::start();
    c.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: scratch}\n");
    let out = c.kubectl_stdin(&["apply", "-n", "scratch", "-f", "-"], APP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&[
        "-n",
        "scratch",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=30s",
    ]);
    let pids = c.cluster.pod_pids();
    assert_eq!(pids.len(), 2);
    let pids: Vec<u32> = pids.into_iter().flat_map(processes_under).collect();
    c.ok(&["delete", "ns", "scratch", "--timeout=30s"]);
    let out = c.kubectl(&["get", "ns", "scratch"]);
    assert!(!out.status.success());
    wait_for("the pods' processes to end", T, || {
        all_gone(&pids).then_some(())
    });
    let out = c.kubectl(&["delete", "ns", "default"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
}

#[test]
fn a_command_missing_on_this_machine_is_named_with_where_commands_come_from() {
    let c = TestCluster::start();
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: missing}\nspec: {restartPolicy: Never, \
         containers: [{name: main, image: ruby:3.3-slim, command: [no-such-interpreter, app.rb]}]}\n",
    );
    let message = wait_for("the container's message", T, || {
        let message = c.jsonpath(
            &["pod", "missing"],
            "{.status.containerStatuses[0].state.terminated.message}",
        );
        (!message.is_empty()).then_some(message)
    });
    assert!(
        message.starts_with(
            "exec: \"no-such-interpreter\": executable file not found in $PATH: the local \
             cluster runs an image's command from this machine's PATH"
        ),
        "{message}"
    );
}

#[test]
fn errors_are_statuses_and_lose_nothing() {
    let c = TestCluster::start();
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\ndata: {a: b}\n");
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is invalid") && err.contains("RFC 1123"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let out = c.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad.to_str().unwrap_or(""),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BadRequest") || err.contains("JSON") || err.contains("400"),
        "{err}"
    );
    let out = c.kubectl(&["get", "cm", "nothere"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
    assert!(c.ok(&["get", "cm", "keep", "-o", "jsonpath={.data.a}"]) == "b");
}

#[test]
fn volumes_env_and_init_containers() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hi, other: there}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  restartPolicy: Never
  initContainers:
  - name: init
    image: busybox
    workingDir: /work
    command: ["sh", "-c", "echo from-init > made.txt"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    workingDir: /work
    command: ["sh", "-c", "cat made.txt; echo $POD $GREETING $TOKEN $other; cat $CFG_DIR/greeting; echo"]
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: sec, key: token}}}
    - {name: CFG_DIR, value: /etc/cfg}
    envFrom: [{configMapRef: {name: cfg}}]
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: cfg, mountPath: /etc/cfg}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: cfg}}
"#,
    );
    wait_for("phase Succeeded", T, || {
        let phase = c.ok(&["get", "pod", "vols", "-o", "jsonpath={.status.phase}"]);
        assert_ne!(phase, "Failed", "{}", c.ok(&["logs", "vols"]));
        (phase == "Succeeded").then_some(())
    });
    let logs = c.ok(&["logs", "vols"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[0], "from-init");
    assert_eq!(lines[1], "vols hi s3cret there");
    if c.cluster.sandboxed() {
        assert_eq!(lines.get(2).copied(), Some("hi"), "{logs}");
    }
}

#[test]
fn restart_policy_backs_off_and_keeps_previous_logs() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  restartPolicy: OnFailure
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "echo run; exit 3"]}
"#,
    );
    let status = wait_for("CrashLoopBackOff", T, || {
        let out = c.ok(&["get", "pod", "crash", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).ok()?;
        let cs = v["status"]["containerStatuses"][0].clone();
        (cs["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(cs)
    });
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    assert!(c.ok(&["get", "pods"]).contains("CrashLoopBackOff"));
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash",
    ]);
    assert!(events.contains("BackOff"), "{events}");
    // After the 10 s back-off the container runs again; the first run's
    // logs stay available as --previous.
    wait_for("the restart", Duration::from_secs(40), || {
        let out = c.ok(&[
            "get",
            "pod",
            "crash",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ]);
        (out.trim().parse::<i64>().unwrap_or(0) >= 1).then_some(())
    });
    assert_eq!(c.ok(&["logs", "crash", "--previous"]).trim(), "run");
}

#[test]
fn http_and_tcp_probes() {
    let c = TestCluster::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: web
    image: python:3.12
    command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0"]
    ports: [{{name: http, containerPort: {port}}}]
    readinessProbe:
      httpGet: {{path: /, port: http}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
"#
    );
    c.apply(&manifest);
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    let ready = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.status.containerStatuses[0].ready}",
    ]);
    assert_eq!(ready, "true");
}

#[test]
fn shutdown_leaves_no_process_behind() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: forks}
spec:
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]}
"#,
    );
    let pid = wait_for("the process", T, || c.cluster.pod_pids().first().copied());
    // The kubelet's process, the shell and its two children.
    let pids = wait_for("the children", T, || {
        let pids = processes_under(pid);
        (pids.len() >= 4).then_some(pids)
    });
    let TestCluster { cluster, dir } = c;
    cluster.shutdown();
    wait_for("every process gone", Duration::from_secs(10), || {
        all_gone(&pids).then_some(())
    });
    drop(dir);
}

#[test]
fn the_node_is_listed_and_a_pod_s_node_selector_is_honoured() {
    let c = TestCluster::start();
    let nodes = c.ok(&["get", "nodes"]);
    assert!(
        nodes.contains("kubesh-local")
            && nodes.contains("Ready")
            && nodes.contains("control-plane"),
        "{nodes}"
    );
    let arch = c.ok(&[
        "get",
        "node",
        "kubesh-local",
        "-o",
        "jsonpath={.metadata.labels.kubernetes\\.io/arch}",
    ]);
    assert!(!arch.trim().is_empty(), "the node names its architecture");
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: pinned}}
spec:
  nodeSelector: {{kubernetes.io/arch: "{}"}}
  containers:
  - {{name: c, image: busybox, command: ["sleep", "600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: nowhere}}
spec:
  nodeSelector: {{disk: ssd}}
  containers:
  - {{name: c, image: busybox, command: ["sleep", "600"]}}
"#,
        arch.trim()
    ));
    wait_for("the pinned pod to run", T, || {
        (c.ok(&["get", "pod", "pinned", "-o", "jsonpath={.status.phase}"]) == "Running")
            .then_some(())
    });
    let reason = wait_for("the scheduler's word on the other pod", T, || {
        let events = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=nowhere,reason=FailedScheduling",
        ]);
        events
            .contains("didn't match Pod's node affinity/selector")
            .then_some(events)
    });
    assert!(reason.contains("0/1 nodes are available"), "{reason}");
    assert_eq!(
        c.ok(&["get", "pod", "nowhere", "-o", "jsonpath={.status.phase}"]),
        "Pending"
    );
}

#[test]
fn long_names_are_judged_and_shortened_as_the_api_server_does() {
    let c = TestCluster::start();
    // 72 characters: a valid ConfigMap name (a DNS subdomain may have long
    // parts); a Deployment of 60 characters makes a ReplicaSet of 71 and
    // pods whose generated names and hostnames are cut to 63.
    let long = "a".repeat(72);
    let made = c.ok(&["create", "configmap", &long, "--from-literal=k=v"]);
    assert!(made.contains("created"), "{made}");
    let name = format!("web-{}", "b".repeat(56));
    c.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: long}}}}
  template:
    metadata: {{labels: {{app: long}}}}
    spec:
      containers:
      - {{name: c, image: busybox, command: ["sleep", "600"]}}
"#
    ));
    let pod = wait_for("the pod to run", T, || {
        let out = c.ok(&[
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.metadata.name}{end}",
        ]);
        (!out.trim().is_empty()).then(|| out.trim().to_string())
    });
    assert_eq!(pod.len(), 63, "{pod}");
    // In a sandbox the pod has its own hostname (without one, pods share
    // this machine's).
    let ip = c.ok(&["get", "pod", &pod, "-o", "jsonpath={.status.podIP}"]);
    if ip.trim() != "127.0.0.1" {
        let hostname = c.ok(&["exec", &pod, "--", "hostname"]);
        assert!(
            hostname.trim().len() <= 63 && pod.starts_with(hostname.trim()),
            "{hostname}"
        );
    }
}

#[test]
fn node_ports_are_allocated_in_range_unique_and_checked() {
    let c = TestCluster::start();
    let node_port = |name: &str| -> i64 {
        c.ok(&[
            "get",
            "svc",
            name,
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .parse()
        .unwrap_or(0)
    };
    c.ok(&["create", "service", "nodeport", "a", "--tcp=80:8080"]);
    c.ok(&["create", "service", "nodeport", "b", "--tcp=80:8080"]);
    let (a, b) = (node_port("a"), node_port("b"));
    assert!(
        (30000..=32767).contains(&a) && (30000..=32767).contains(&b),
        "{a} {b}"
    );
    assert_ne!(a, b);
    // A requested port is honoured; a taken or out-of-range one is refused
    // in the API server's words.
    c.ok(&[
        "create",
        "service",
        "nodeport",
        "c",
        "--tcp=80:8080",
        "--node-port=30080",
    ]);
    assert_eq!(node_port("c"), 30080);
    let out = c.kubectl(&[
        "create",
        "service",
        "nodeport",
        "d",
        "--tcp=80:8080",
        "--node-port=30080",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"Service "d" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#),
        "{err}"
    );
    let out = c.kubectl(&[
        "create",
        "service",
        "nodeport",
        "d",
        "--tcp=80:8080",
        "--node-port=80",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
    // An update keeps the node port; becoming a ClusterIP Service releases it.
    c.ok(&["label", "svc", "a", "x=y"]);
    assert_eq!(node_port("a"), a);
    c.ok(&[
        "patch",
        "svc",
        "c",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert_eq!(node_port("c"), 0);
    c.ok(&[
        "create",
        "service",
        "nodeport",
        "d",
        "--tcp=80:8080",
        "--node-port=30080",
    ]);
    assert_eq!(node_port("d"), 30080);
}
