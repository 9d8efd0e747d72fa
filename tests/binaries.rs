//! Linux executables on the local cluster with the real `kubesh` binary:
//! judged by what the cluster's nodes are and what the images hold, and
//! refused with the reason before anything is created.

mod common;

use common::{LocalCluster, Sandbox, bounded};
use predicates::str::contains;

/// Compiles `source` (C) with `cc` into `name` in the sandbox's work
/// directory, with any extra `flags`.
fn compile(sandbox: &Sandbox, name: &str, source: &str, flags: &[&str]) {
    let file = sandbox.write(&format!("{name}.c"), source);
    let compiled = std::process::Command::new("cc")
        .current_dir(sandbox.work())
        .args(["-o", name])
        .arg(&file)
        .args(flags)
        .status()
        .expect("a C compiler (cc) builds the test binary");
    assert!(compiled.success(), "cc {name}.c");
    std::fs::remove_file(file).unwrap();
}

const HELLO_C: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from a binary\"); return 0; }\n";

/// The architecture this machine's binaries are built for, as Kubernetes
/// names it.
fn this_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The pods kubesh made for binaries.
fn binary_pods(cluster: &LocalCluster) -> String {
    cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-A",
        "-l",
        "kubesh.dev/runtime=binary",
        "-o",
        "name",
    ])
}

#[test]
fn a_binary_runs_on_nodes_of_its_architecture_and_is_refused_where_no_node_has_it() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    compile(&sandbox, "hello", HELLO_C, &[]);
    bounded(cluster.kubesh(&sandbox), &["-c", "KEEP_POD=1 ./hello"])
        .assert()
        .success()
        .stdout("hello from a binary\n");
    let selector = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-A",
        "-l",
        "kubesh.dev/runtime=binary",
        "-o",
        "jsonpath={.items[*].spec.nodeSelector}",
    ]);
    assert_eq!(
        selector,
        format!("{{\"kubernetes.io/arch\":\"{}\"}}", this_arch()),
        "the pod is pinned to the binary's architecture"
    );

    // The cluster's nodes, not this machine, say what runs there.
    let relabelled = cluster
        .kubectl()
        .args([
            "label",
            "node",
            "kubesh-local",
            "kubernetes.io/arch=s390x",
            "--overwrite",
        ])
        .status()
        .expect("kubectl runs");
    assert!(relabelled.success());
    let config_maps = || cluster.kubectl_stdout(&["get", "configmaps", "-A", "-o", "name"]);
    let before = (binary_pods(&cluster), config_maps());
    bounded(cluster.kubesh(&sandbox), &["-c", "./hello"])
        .assert()
        .code(126)
        .stdout("")
        .stderr(contains(format!(
            "kubesh: hello: is built for {}, but the cluster's nodes are s390x; build it for \
             s390x (e.g. `GOOS=linux GOARCH=s390x go build`",
            this_arch()
        )));
    assert_eq!(
        (binary_pods(&cluster), config_maps()),
        before,
        "nothing was created for the refused binary"
    );
}
