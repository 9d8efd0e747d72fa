//! A second client, always: the official Python client (`kubernetes` on
//! PyPI, installed by `.ci/run`) drives the local cluster through
//! `tests/python/client_suite.py`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestCluster, wait_for};

#[test]
fn the_official_python_client_works_against_the_local_cluster() {
    let has_client = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_client,
        "the Python client is missing: python3 -m pip install kubernetes"
    );
    let c = TestCluster::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_suite.py");
    let log = c.dir.path().join("python-client.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new("python3")
        .arg(&script)
        .env("KUBECONFIG", c.kubeconfig())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("python3 runs");
    // The script bounds each of its waits; this bounds the whole.
    let status = wait_for(
        "the Python client suite to finish",
        Duration::from_secs(240),
        || child.try_wait().expect("the suite's status"),
    );
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "the Python client suite failed:\n{output}"
    );
    for step in [
        "ok: watch from a resourceVersion",
        "ok: create a deployment, delete it with Foreground propagation",
        "ok: logs",
        "ok: exec: stdin as text",
        "ok: exec: stdin as bytes",
        "ok: exec: closing stdin ends the command",
        "ok: port-forward",
        "ok: delete the namespace",
    ] {
        assert!(output.contains(step), "{step} missing:\n{output}");
    }
}
