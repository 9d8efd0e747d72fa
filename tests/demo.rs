//! The README's run command: the two-service demo on the local cluster.

mod common;

use assert_cmd::assert::OutputAssertExt;
use common::Sandbox;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn the_demo_runs_on_the_local_cluster() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--local", "scripts/demo/demo.kubesh"]);
    assert_the_demo_ran(&sandbox, command);
}

/// Where the kernel refuses namespaces, pods run directly on this machine;
/// the demo's consumer still finds the generator by the URL it is handed.
#[test]
fn the_demo_runs_with_pods_run_directly_on_this_machine() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KUBESH_LOCAL_SANDBOX", "off")
        .args(["--local", "scripts/demo/demo.kubesh"]);
    assert_the_demo_ran(&sandbox, command);
}

fn assert_the_demo_ran(sandbox: &Sandbox, mut command: std::process::Command) {
    let _cluster = common::SharedCluster::guard(sandbox);
    command.assert().success().stdout(
        contains("the consumer was handed STOCK_GEN_URL=http://stock-gen:9999")
            .and(contains("\"symbol\": \"NITE\""))
            .and(contains("ok\n"))
            .and(contains("{\"NITE\":"))
            .and(contains("killed stock-gen")),
    );
}
