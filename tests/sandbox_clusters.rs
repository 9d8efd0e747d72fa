//! The clusters sandboxes have: none at all (kubesh says in one sentence
//! what runs one here), or only a pod's service account (kubesh inside a
//! pod, with no kubeconfig, uses it and its namespace, as kubectl does).

mod common;

use assert_cmd::assert::OutputAssertExt;
use common::Sandbox;
use predicates::str::contains;

#[test]
fn with_no_kubeconfig_kubesh_says_that_local_runs_a_cluster_here() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command.env_remove("KUBECONFIG").args(["-c", "ps"]);
    command.assert().failure().stderr(contains(
        "kubesh: ps: no cluster to talk to: no kubeconfig (KUBECONFIG is not set, \
         ~/.kube/config does not exist) and no pod's service account; \
         `kubesh --local` runs a cluster on this machine\n",
    ));
    // A kubeadm node's admin.conf named, but not there (not root's machine).
    let missing = sandbox.path("etc/kubernetes/admin.conf");
    let mut command = sandbox.command();
    command.env("KUBECONFIG", &missing).args(["-c", "ps"]);
    command.assert().failure().stderr(contains(format!(
        "KUBECONFIG names {}, which does not exist; `kubesh --local` runs a cluster on this machine",
        missing.display()
    )));
}

/// kubesh as in a pod: no kubeconfig, `KUBERNETES_SERVICE_HOST` and
/// `_PORT`, and the service account's token, CA and namespace in
/// /var/run/secrets (a mount namespace of the test's own holds them).
#[test]
fn in_a_pod_without_a_kubeconfig_kubesh_uses_the_service_account_and_its_namespace() {
    if std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .status()
        .map_or(true, |status| !status.success())
    {
        eprintln!("skipped: this machine makes no user and mount namespaces (unshare)");
        return;
    }
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n");
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).expect("the kubeconfig");
    let field = |name: &str| {
        kubeconfig
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .expect("a kubeconfig field")
            .trim()
            .to_string()
    };
    let server = field("server:");
    let port = server.rsplit(':').next().expect("a port");
    let secrets = "/var/run/secrets/kubernetes.io/serviceaccount";
    let setup = format!(
        "mount -t tmpfs none /var/run && mkdir -p {secrets} && \
         echo \"$CA\" | base64 -d > {secrets}/ca.crt && \
         printf %s \"$TOKEN\" > {secrets}/token && printf team-a > {secrets}/namespace && \
         exec \"$0\""
    );
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &setup])
        .arg(common::kubesh_binary());
    sandbox.apply(&mut command);
    command
        .env_remove("KUBECONFIG")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", port)
        .env("CA", field("certificate-authority-data:"))
        .env("TOKEN", field("token:"));
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    let before = session.exp_string("[in-cluster::team-a]$ ").unwrap();
    assert!(!before.contains("kubeconfig"), "{before:?}");
    session.send_line("ns").unwrap();
    session.exp_string("\n* team-a").unwrap();
    session.exp_string("$ ").unwrap();
    session.send_line("exit 0").unwrap();
    session.exp_eof().unwrap();
}
