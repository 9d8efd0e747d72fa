//! Lifecycles as a real cluster runs them, through real kubectl: a
//! namespace's deletion (Terminating until its content is gone, nothing
//! new meanwhile), and a pod's as the kubelet drives it (graceful
//! termination, restarts and back-off, a command that cannot start, an
//! image changed in place, liveness kills, the order of events).

mod common;

use std::time::Duration;

use common::{TestCluster, wait_for};
use serde_json::Value;

fn json(c: &TestCluster, args: &[&str]) -> Value {
    serde_json::from_str(&c.ok(args)).expect("json")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn a_namespace_is_terminating_until_its_content_is_gone() {
    let c = TestCluster::start();
    c.ok(&["create", "namespace", "t"]);
    let created = json(&c, &["get", "ns", "t", "-o", "json"]);
    assert_eq!(
        created["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
    c.ok(&[
        "create",
        "configmap",
        "plain",
        "-n",
        "t",
        "--from-literal=a=b",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "t",
        "--from-literal=a=b",
    ]);
    c.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: t, finalizers: [example.com/hold]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: t}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: web, image: busybox, command: ["sleep", "1000"]}]
"#,
    );
    c.ok(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "t",
        "--timeout=30s",
    ]);
    c.ok(&["delete", "ns", "t", "--wait=false"]);

    // Terminating, held by the finalizer of one ConfigMap.
    let namespace = wait_for(
        "the namespace to say what remains",
        Duration::from_secs(30),
        || {
            let namespace = json(&c, &["get", "ns", "t", "-o", "json"]);
            let remaining = namespace["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "NamespaceContentRemaining")?["message"]
                .clone();
            (remaining == "Some resources are remaining: configmaps. has 1 resource instances")
                .then_some(namespace)
        },
    );
    assert_eq!(namespace["status"]["phase"], "Terminating");
    assert_eq!(
        namespace["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
    let held = namespace["status"]["conditions"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c["type"] == "NamespaceFinalizersRemaining")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            held["status"].as_str(),
            held["reason"].as_str(),
            held["message"].as_str()
        ),
        (
            Some("True"),
            Some("SomeFinalizersRemain"),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            )
        )
    );
    assert_eq!(
        c.ok(&["get", "cm,secret,deploy,rs,pods", "-n", "t", "-o", "name"])
            .trim(),
        "configmap/held"
    );
    assert_eq!(
        c.ok(&["get", "ns", "t"])
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().nth(1)),
        Some(Some("Terminating"))
    );

    // Nothing new in it meanwhile, nor in a namespace that does not exist.
    let out = c.kubectl(&["create", "configmap", "new", "-n", "t"]);
    assert_eq!(
        stderr(&out),
        "error: failed to create configmap: configmaps \"new\" is forbidden: unable to create new content in namespace t because it is being terminated"
    );
    let out = c.kubectl(&["create", "configmap", "new", "-n", "missing"]);
    assert_eq!(
        stderr(&out),
        "error: failed to create configmap: namespaces \"missing\" not found"
    );

    // The finalizer gone, so is the namespace: `kubectl delete` waits for it.
    c.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "t",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.ok(&["wait", "--for=delete", "ns/t", "--timeout=30s"]);
    let out = c.kubectl(&["get", "cm", "-n", "t", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");

    // A namespace emptied at once: the delete returns when it is gone.
    c.ok(&["create", "namespace", "quick"]);
    c.ok(&["create", "configmap", "c", "-n", "quick"]);
    c.ok(&["delete", "ns", "quick", "--timeout=30s"]);
    assert!(!c.kubectl(&["get", "ns", "quick"]).status.success());
    assert!(
        !c.kubectl(&["get", "cm", "c", "-n", "quick"])
            .status
            .success()
    );
}

const T: Duration = Duration::from_secs(30);

fn pod_json(c: &TestCluster, name: &str) -> Value {
    json(c, &["get", "pod", name, "-o", "json"])
}

/// The reasons and messages of the events about `name`, as `kubectl get
/// events` lists them.
fn events(c: &TestCluster, name: &str) -> Vec<(String, String)> {
    let list = json(
        c,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ],
    );
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn graceful_deletion_sends_sigterm_once_then_sigkill_after_the_grace_period() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: term}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap 'echo TERM' TERM; echo up; while true; do sleep 0.1; done"]
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/term", "--timeout=30s"]);
    // Followed from before the deletion until the container ends.
    let follower = std::process::Command::new("kubectl")
        .args(["logs", "-f", "term"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    wait_for("the follower to print the first line", T, || {
        c.ok(&["logs", "term"]).contains("up").then_some(())
    });
    let started = std::time::Instant::now();
    c.ok(&["delete", "pod", "term", "--timeout=30s"]);
    let out = follower.wait_with_output().expect("logs");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert_eq!(logs.matches("TERM").count(), 1, "{logs}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the program was killed before its grace period ended"
    );
}

#[test]
fn a_crashing_container_restarts_at_once_then_backs_off() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: main, image: busybox, command: ["sh", "-c", "echo run; exit 3"]}]
"#,
    );
    // The first restart follows the crash at once (the kubelet backs off
    // from the second).
    wait_for(
        "the first restart, without back-off",
        Duration::from_secs(5),
        || {
            (pod_json(&c, "crash")["status"]["containerStatuses"][0]["restartCount"] == 1)
                .then_some(())
        },
    );
    let status = wait_for("the second crash", T, || {
        let status = pod_json(&c, "crash")["status"]["containerStatuses"][0].clone();
        (status["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(status)
    });
    let message = status["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off 10s restarting failed container=main pod=crash_default("),
        "{message}"
    );
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    let message = wait_for("the third crash", T, || {
        let status = pod_json(&c, "crash")["status"]["containerStatuses"][0].clone();
        let message = status["state"]["waiting"]["message"].as_str()?.to_string();
        message.starts_with("back-off 20s").then_some(message)
    });
    assert!(message.contains("container=main"), "{message}");
}

#[test]
fn a_command_that_cannot_start_is_a_start_error_with_exit_code_128() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nocmd}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox, command: ["no-such-command-here"]}]
"#,
    );
    let status = wait_for("the pod to fail", T, || {
        let pod = pod_json(&c, "nocmd");
        (pod["status"]["phase"] == "Failed")
            .then_some(pod["status"]["containerStatuses"][0].clone())
    });
    let terminated = &status["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 128);
    assert_eq!(terminated["reason"], "StartError");
    assert!(
        terminated["message"]
            .as_str()
            .is_some_and(|m| m
                .starts_with("exec: \"no-such-command-here\": executable file not found in $PATH")),
        "{terminated}"
    );
    let listed = c.ok(&["get", "pod", "nocmd"]);
    assert!(listed.contains("StartError"), "{listed}");
    let reasons: Vec<String> = events(&c, "nocmd").into_iter().map(|(r, _)| r).collect();
    assert!(reasons.contains(&"Failed".to_string()), "{reasons:?}");
    assert!(!reasons.contains(&"Started".to_string()), "{reasons:?}");
}

#[test]
fn a_changed_image_restarts_the_container_and_a_liveness_kill_says_so_once() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: "busybox:1.36", command: ["sleep", "1000"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: marks, emptyDir: {}}]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "1000"]
    volumeMounts: [{name: marks, mountPath: /marks}]
    # Fails once: the kill leaves a mark the next run's probe finds.
    livenessProbe:
      exec: {command: ["sh", "-c", "test -e /marks/killed || { touch /marks/killed; exit 1; }"]}
      periodSeconds: 1
      failureThreshold: 1
"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    // Events of one second list in the order they happened.
    let reasons: Vec<String> = events(&c, "web").into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        reasons,
        ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    );

    c.ok(&["set", "image", "pod/web", "main=busybox:1.37"]);
    let status = wait_for("the container to run the new image", T, || {
        let status = pod_json(&c, "web")["status"]["containerStatuses"][0].clone();
        (status["restartCount"] == 1 && status["state"]["running"].is_object()).then_some(status)
    });
    assert_eq!(status["image"], "busybox:1.37");
    assert!(
        events(&c, "web").contains(&(
            "Killing".to_string(),
            "Container main definition changed, will be restarted".to_string()
        )),
        "{:?}",
        events(&c, "web")
    );

    wait_for("the liveness kill and the run after it", T, || {
        let status = pod_json(&c, "sick")["status"]["containerStatuses"][0].clone();
        (status["restartCount"] == 1 && status["ready"] == true).then_some(())
    });
    let killing: Vec<String> = events(&c, "sick")
        .into_iter()
        .filter(|(reason, _)| reason == "Killing")
        .map(|(_, message)| message)
        .collect();
    assert_eq!(
        killing,
        ["Container main failed liveness probe, will be restarted"]
    );
}

/// The image events of `pod`, in the order they were recorded: (reason,
/// fieldPath, message).
fn image_events(c: &TestCluster, pod: &str) -> Vec<(String, String, String)> {
    let events = json(c, &["get", "events", "-o", "json"]);
    let mut found: Vec<(u64, (String, String, String))> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .filter(|e| e["reason"] == "Pulling" || e["reason"] == "Pulled")
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            let order = text(&e["metadata"]["resourceVersion"]).parse().unwrap_or(0);
            (
                order,
                (
                    text(&e["reason"]),
                    text(&e["involvedObject"]["fieldPath"]),
                    text(&e["message"]),
                ),
            )
        })
        .collect();
    found.sort_by_key(|(order, _)| *order);
    found.into_iter().map(|(_, event)| event).collect()
}

#[test]
fn images_are_pulled_as_a_kubelet_pulls_them() {
    let c = TestCluster::start();
    // A tagged image (pull policy IfNotPresent): pulled once for the
    // node, then present; `latest` (Always): pulled for every container.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: first}
spec:
  restartPolicy: Never
  initContainers: [{name: unpack, image: "registry.example/app:1.0", command: ["true"]}]
  containers: [{name: main, image: "registry.example/app:1.0", command: ["true"]}]
"#,
    );
    let done = |pod: &str| {
        wait_for("the pod to end", Duration::from_secs(30), || {
            (c.jsonpath(&["pod", pod], "{.status.phase}") == "Succeeded").then_some(())
        })
    };
    done("first");
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: second}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "registry.example/app:1.0", command: ["true"]}
  - {name: tool, image: "registry.example/tool", command: ["true"]}
"#,
    );
    done("second");
    let first = image_events(&c, "first");
    assert_eq!(first.len(), 3, "{first:#?}");
    assert_eq!(
        (
            first[0].0.as_str(),
            first[0].1.as_str(),
            first[0].2.as_str()
        ),
        (
            "Pulling",
            "spec.initContainers{unpack}",
            "Pulling image \"registry.example/app:1.0\""
        )
    );
    assert_eq!(first[1].0, "Pulled");
    assert_eq!(first[1].1, "spec.initContainers{unpack}");
    let pulled = first[1].2.as_str();
    assert!(
        pulled.starts_with("Successfully pulled image \"registry.example/app:1.0\" in ")
            && pulled.contains(" including waiting). Image size: ")
            && pulled.ends_with(" bytes."),
        "{pulled}"
    );
    assert_eq!(
        first[2],
        (
            "Pulled".to_string(),
            "spec.containers{main}".to_string(),
            "Container image \"registry.example/app:1.0\" already present on machine".to_string()
        )
    );
    let second = image_events(&c, "second");
    let mut reasons: Vec<(&str, &str)> = second
        .iter()
        .map(|(reason, path, _)| (reason.as_str(), path.as_str()))
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            ("Pulled", "spec.containers{main}"),
            ("Pulled", "spec.containers{tool}"),
            ("Pulling", "spec.containers{tool}"),
        ],
        "{second:#?}"
    );
}
