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
