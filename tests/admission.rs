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

/// A program that says whether it runs as root and whether its home is
/// writable. (A shell script: the local cluster runs the image's command
/// from this machine, and `bash` is open to every user where a root
/// user's own Python may not be.)
const WHO_SH: &str = "if [ \"$(id -u)\" = 0 ]; then echo root; else echo not root; fi\n\
echo written > \"$HOME/note\" && echo \"home $HOME writable\"\n";

#[test]
fn a_namespace_enforcing_restricted_gets_the_restricted_profile_and_other_pods_are_refused() {
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
    sandbox.write("who.sh", WHO_SH);
    // kubesh reads the namespace's label and launches with the restricted
    // profile: the service starts, unpacked and served by a non-root user.
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "--namespace",
            "strict",
            "-c",
            "python3 web.py &\ncurl web:8080/",
        ],
    )
    .assert()
    .success()
    .stdout(contains("ready in").and(contains("href=\"web.py\"")));
    let user = cluster.kubectl_stdout(&[
        "get",
        "deployment",
        "web",
        "-n",
        "strict",
        "-o",
        "jsonpath={.spec.template.spec.securityContext.runAsUser}",
    ]);
    assert_eq!(user, "1000");
    // In the foreground, with a home of its own it may write to.
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "strict", "-c", "bash who.sh"],
    )
    .assert()
    .success()
    .stdout(contains("not root\nhome /kubesh/home writable"));
    // The image's own user (POD_SECURITY=default) is refused, with the
    // API server's words and the setting that helps.
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "--namespace",
            "strict",
            "-c",
            "POD_SECURITY=default SERVICE_NAME=web2 python3 web.py &",
        ],
    )
    .assert()
    .code(1)
    .stderr(
        contains("web2: the cluster refuses to create its pods: pods \"web2-")
            .and(contains("is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"))
            .and(contains("runAsNonRoot != true"))
            .and(contains("POD_SECURITY=restricted runs it as a namespace enforcing `restricted` asks")),
    );
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "--namespace",
            "strict",
            "-c",
            "POD_SECURITY=default bash who.sh",
        ],
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
    // Baseline admits what kubesh launches with the image's user.
    cluster.kubectl_stdout(&[
        "label",
        "--overwrite",
        "namespace",
        "strict",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "strict", "-c", "bash who.sh"],
    )
    .assert()
    .success()
    .stdout(contains("home"));
}

#[test]
fn dry_run_says_which_profile_and_requests_a_launch_uses() {
    let sandbox = Sandbox::new();
    sandbox.write("job.py", "print(1)\n");
    let run = |line: &str| {
        bounded(sandbox.command(), &["--dry-run", "-c", line])
            .assert()
            .success()
    };
    run("python job.py").stdout(contains(
        "# job-",
    ).and(contains(": security profile default (POD_SECURITY is not set: a launch uses restricted where the namespace enforces Pod Security restricted); requests per container: cpu 100m, memory 128Mi (python defaults; CPU_REQUEST, MEMORY_REQUEST)")));
    run("POD_SECURITY=restricted CPU_REQUEST=1 MEMORY_REQUEST=none python job.py &")
        .stdout(
            contains("# job: security profile restricted (set by POD_SECURITY); requests per container: cpu 1 (")
                .and(contains("runAsNonRoot: true"))
                .and(contains("- ALL")),
        );
    bounded(
        sandbox.command(),
        &["--dry-run", "-c", "CPU_REQUEST=lots python job.py"],
    )
    .assert()
    .failure()
    .stderr(contains("CPU_REQUEST=\"lots\" is not a quantity"));
}

#[test]
fn a_resource_quota_on_requests_admits_kubesh_s_pods_and_counts_what_they_ask_for() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    cluster.kubectl_stdout(&["create", "namespace", "quotas"]);
    let made = cluster.kubectl_stdout(&[
        "create",
        "quota",
        "compute",
        "-n",
        "quotas",
        "--hard=pods=3,requests.cpu=1,requests.memory=1Gi",
    ]);
    assert!(made.contains("created"), "{made}");
    sandbox.write("web.py", WEB_PY);
    // Each container asks for the runtime's small default: admitted.
    bounded(
        cluster.kubesh(&sandbox),
        &["--namespace", "quotas", "-c", "python3 web.py &"],
    )
    .assert()
    .success()
    .stdout(contains("ready in"));
    let asked = cluster.kubectl_stdout(&[
        "get",
        "deployment",
        "web",
        "-n",
        "quotas",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].resources.requests}",
    ]);
    assert_eq!(asked, r#"{"cpu":"100m","memory":"128Mi"}"#);
    // Asking for more than is left is refused, and said so.
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "--namespace",
            "quotas",
            "-c",
            "CPU_REQUEST=2 SERVICE_NAME=big python3 web.py &",
        ],
    )
    .assert()
    .code(1)
    .stderr(
        contains("big: the cluster refuses to create its pods: pods \"big-")
            .and(contains(
                "exceeded quota: compute, requested: requests.cpu=2",
            ))
            .and(contains(
                "CPU_REQUEST and MEMORY_REQUEST set what each container asks for",
            )),
    );
    // Asking for nothing is refused where the quota needs a number.
    bounded(
        cluster.kubesh(&sandbox),
        &[
            "--namespace",
            "quotas",
            "-c",
            "CPU_REQUEST=none SERVICE_NAME=vague python3 web.py &",
        ],
    )
    .assert()
    .code(1)
    .stderr(contains(
        "is forbidden: failed quota: compute: must specify requests.cpu for: unpack,main",
    ));
}

#[test]
fn a_resource_quota_counts_pods_that_say_what_they_take() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    cluster.kubectl_stdout(&["create", "namespace", "quotas"]);
    cluster.kubectl_stdout(&[
        "create",
        "quota",
        "compute",
        "-n",
        "quotas",
        "--hard=pods=1,requests.cpu=1",
    ]);
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
