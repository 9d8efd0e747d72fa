//! A cluster that refuses pods (a namespace enforcing Pod Security
//! `restricted`, a ResourceQuota): kubesh reports the API server's own
//! words within seconds, where a launch that waited only on pods waited
//! for ever.

mod common;

use common::{LocalCluster, Sandbox, bounded};
use predicates::prelude::*;
use predicates::str::contains;

const WEB_PY: &str = "import http.server, os\n\
http.server.HTTPServer(('', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn a_namespace_enforcing_restricted_refuses_pods_and_kubesh_says_why() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let made = cluster.kubectl_stdout(&["create", "namespace", "strict"]);
    assert!(made.contains("created"), "{made}");
    cluster.kubectl_stdout(&[
        "label",
        "namespace",
        "strict",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    sandbox.write("web.py", WEB_PY);
    sandbox.write("hello.py", "print('hello')\n");
    // In the background, through a Deployment: the ReplicaSet cannot
    // create the pod, and the launch says so.
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "strict", "-c", "python3 web.py &"],
    )
    .assert()
    .code(1)
    .stderr(
        contains("web: the cluster refuses to create its pods: pods \"web-")
            .and(contains("is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"))
            .and(contains("runAsNonRoot != true")),
    );
    // In the foreground, the Pod itself is refused.
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "strict", "-c", "python3 hello.py"],
    )
    .assert()
    .failure()
    .stderr(contains("violates PodSecurity \"restricted:latest\""));
    // kubectl is refused in the same words.
    let output = cluster
        .kubectl()
        .args([
            "run",
            "-n",
            "strict",
            "box",
            "--image=busybox",
            "--",
            "sleep",
            "1",
        ])
        .output()
        .expect("kubectl runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("Error from server (Forbidden): pods \"box\" is forbidden: violates PodSecurity \"restricted:latest\""),
        "{said}"
    );
    // Baseline admits what kubesh launches.
    cluster.kubectl_stdout(&[
        "label",
        "--overwrite",
        "namespace",
        "strict",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "strict", "-c", "python3 hello.py"],
    )
    .assert()
    .success()
    .stdout(contains("hello"));
}

#[test]
fn a_resource_quota_refuses_pods_that_do_not_say_what_they_take_or_take_too_much() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    cluster.kubectl_stdout(&["create", "namespace", "quotas"]);
    let made = cluster.kubectl_stdout(&[
        "create",
        "quota",
        "compute",
        "-n",
        "quotas",
        "--hard=pods=1,requests.cpu=1",
    ]);
    assert!(made.contains("created"), "{made}");
    sandbox.write("web.py", WEB_PY);
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "quotas", "-c", "python3 web.py &"],
    )
    .assert()
    .code(1)
    .stderr(
        contains("web: the cluster refuses to create its pods: pods \"web-").and(contains(
            "is forbidden: failed quota: compute: must specify requests.cpu for: unpack,main",
        )),
    );
    // Pods that say what they take are counted: one fits, the second not.
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: quotas}}\n\
             spec: {{containers: [{{name: main, image: busybox, command: [sleep, '600'], \
             resources: {{requests: {{cpu: 500m}}}}}}]}}\n"
        )
    };
    cluster.apply(&pod("first"));
    let output = assert_cmd::Command::from_std(cluster.kubectl())
        .args(["apply", "-f", "-"])
        .write_stdin(pod("second"))
        .output()
        .expect("kubectl runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("pods \"second\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=1, limited: pods=1"),
        "{said}"
    );
}
