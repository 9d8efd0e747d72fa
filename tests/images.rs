//! Programs that bring a Dockerfile: built through the local Docker
//! engine, run in that image on the local cluster (which runs images
//! through the same engine), never built twice from the same files; and
//! without an engine, one sentence and nothing created. The tests that
//! need an engine say why they are skipped where none answers.

mod common;

use std::process::Command;

use assert_cmd::assert::OutputAssertExt;
use common::images::base_image;
use common::{LocalCluster, Sandbox};
use predicates::str::contains;

#[test]
fn without_an_engine_a_program_with_a_dockerfile_gets_one_sentence_and_nothing_is_made() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("app/app.sh", "echo hello\n");
    sandbox.write("app/Dockerfile", "FROM scratch\n");
    let socket = sandbox.path("no-engine.sock");
    let output = cluster
        .kubesh(&sandbox)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(["-c", "bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("there is none at unix://{}", socket.display()))
            && stderr.contains("start Docker"),
        "{stderr}"
    );
    let about_it: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("Dockerfile") || line.contains("Docker engine"))
        .collect();
    assert_eq!(about_it.len(), 1, "one sentence: {stderr}");
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods,deployments,services,configmaps",
        "-A",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created");
}

#[test]
fn a_program_with_a_dockerfile_runs_in_the_image_built_from_it_once() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!(
                "skipped a_program_with_a_dockerfile_runs_in_the_image_built_from_it_once: {why}"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write(
        "app/app.sh",
        "cat /etc/os-release\necho \"greeting: $(cat /greeting)\"\n",
    );
    sandbox.write("app/greeting.txt", "from the image\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nCOPY greeting.txt /greeting\n"),
    );
    let dry = cluster
        .kubesh(&sandbox)
        .args(["--dry-run", "-c", "bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let dry_out = String::from_utf8_lossy(&dry.stdout).to_string();
    let tag = dry_out
        .lines()
        .find_map(|line| line.trim().strip_prefix("image: kubesh-build/app:"))
        .map(|hash| format!("kubesh-build/app:{hash}"))
        .unwrap_or_else(|| panic!("--dry-run shows the image it would build: {dry_out}"));
    // Built by an earlier run of this test, it would not be built again.
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    let first = cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .success()
        .stdout(contains(
            "NAME=\"kubesh test image\"\nID=kubesh-test\ngreeting: from the image\n",
        ));
    let said = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(
        said.contains(&format!("built {tag}")),
        "the build is said: {said}"
    );
    let second = cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .success()
        .stdout(contains("greeting: from the image\n"));
    let said = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(
        !said.contains("built"),
        "the same files are not built again: {said}"
    );
    // A failing step is shown with its output in full.
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nRUN echo first line; echo second line; exit 3\n"),
    );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .failure()
        .stderr(contains(
            "building Dockerfile failed at Step 2/2 : RUN echo first line",
        ))
        .stderr(contains("first line\nsecond line\n"));
}

#[test]
fn build_args_reach_the_build_and_make_their_own_tag() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!("skipped build_args_reach_the_build_and_make_their_own_tag: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write("app/app.sh", "echo \"greeting: $(cat /greeting)\"\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n"),
    );
    let dry_run = |args: &str| {
        let out = cluster
            .kubesh(&sandbox)
            .env("BUILD_ARGS", args)
            .args(["--dry-run", "-c", "bash app/app.sh"])
            .output()
            .expect("kubesh runs");
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        out.lines()
            .find(|line| line.contains("would be built"))
            .unwrap_or_else(|| panic!("--dry-run shows the build: {out}"))
            .to_string()
    };
    let plain = dry_run("");
    let with_args = dry_run("GREETING='hello there'");
    assert!(
        with_args.ends_with("with the build arguments GREETING='hello there'"),
        "{with_args}"
    );
    let tag_of = |line: &str| {
        line.split_whitespace()
            .find(|word| word.starts_with("kubesh-build/"))
            .expect("a tag")
            .to_string()
    };
    assert_ne!(tag_of(&plain), tag_of(&with_args), "another tag");
    let _ = Command::new("docker")
        .args(["rmi", "-f", &tag_of(&with_args)])
        .output();
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            "BUILD_ARGS=\"GREETING='hello there'\" bash app/app.sh",
        ])
        .assert()
        .success()
        .stdout(contains("greeting: hello there\n"));
    // A word that is not KEY=VALUE: one sentence, nothing built or made.
    let refused = cluster
        .kubesh(&sandbox)
        .args(["-c", "BUILD_ARGS='GREETING hello' bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("BUILD_ARGS: `GREETING` is not KEY=VALUE"),
        "{stderr}"
    );
    assert!(!stderr.contains("built"), "{stderr}");
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created");
}
