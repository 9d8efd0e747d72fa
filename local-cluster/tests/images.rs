//! Pods that run in their images: the image's files, entrypoint, command,
//! environment, working directory and user, and images the engine cannot
//! get. Needs a Docker engine (CI starts one); without one each test says
//! why it is skipped.

mod common;

use std::time::Duration;

use common::{TestCluster, build_image, busybox_image, wait_for};
use local_cluster::ImagesSetting;

/// The cluster and the base image, or None (skipped, with the reason).
fn engine_cluster(test: &str) -> Option<(TestCluster, String)> {
    let image = match busybox_image() {
        Ok(image) => image,
        Err(why) => {
            println!("skipped {test}: {why}");
            return None;
        }
    };
    let cluster = TestCluster::start_with(ImagesSetting::Engine);
    assert!(
        cluster.cluster.runs_images(),
        "the cluster runs images: {}",
        cluster.cluster.images_mode()
    );
    Some((cluster, image))
}

fn pod(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: {image}\n{extra}"
    )
}

/// Waits for pod `name` to end and gives its log.
fn finished_log(c: &TestCluster, name: &str) -> String {
    wait_for(
        &format!("pod {name} to finish"),
        Duration::from_secs(60),
        || {
            let phase = c.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
            (phase == "Succeeded" || phase == "Failed").then_some(())
        },
    );
    c.ok(&["logs", name])
}

#[test]
fn a_pod_sees_its_images_files_not_this_machines() {
    let Some((c, image)) = engine_cluster("a_pod_sees_its_images_files_not_this_machines") else {
        return;
    };
    assert!(c.cluster.images_mode().contains("pods run in their images"));
    c.apply(&pod(
        "release",
        &image,
        "    command: [\"cat\", \"/etc/os-release\"]\n",
    ));
    let log = finished_log(&c, "release");
    assert_eq!(log, "NAME=\"kubesh test image\"\nID=kubesh-test\n");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=release",
    ]);
    assert!(
        events.contains(&format!(
            "Container image \"{image}\" already present on machine"
        )),
        "{events}"
    );
    // A second pod of the same image starts from the unpacked files.
    c.apply(&pod(
        "written",
        &image,
        "    command: [\"sh\", \"-c\", \"echo mine > /etc/mine; cat /etc/mine; ls /tmp-of-first 2>&1 || true\"]\n",
    ));
    let log = finished_log(&c, "written");
    assert!(log.starts_with("mine\n"), "{log}");
    c.apply(&pod(
        "clean",
        &image,
        "    command: [\"sh\", \"-c\", \"test -e /etc/mine && echo leaked || echo clean\"]\n",
    ));
    assert_eq!(
        finished_log(&c, "clean"),
        "clean\n",
        "a container's writes are its own"
    );
}

#[test]
fn entrypoint_cmd_workdir_user_and_env_behave_as_on_a_node() {
    let Some((c, base)) = engine_cluster("entrypoint_cmd_workdir_user_and_env_behave_as_on_a_node")
    else {
        return;
    };
    let context = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {base}\n\
             ENV GREETING=from-image\n\
             WORKDIR /srv/app\n\
             USER app\n\
             ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo entry $GREETING $(pwd) $(id -u):$(id -g) $HOME; echo args \\\"$*\\\"\", \"--\"]\n\
             CMD [\"one\", \"two\"]\n"
        ),
    )
    .expect("Dockerfile");
    let image = "kubesh-test/entry:1";
    build_image(context.path(), image).expect("the image builds");
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
    let ids = if root { "1000:1000" } else { "0:0" };

    c.apply(&pod("defaults", image, ""));
    assert_eq!(
        finished_log(&c, "defaults"),
        format!("entry from-image /srv/app {ids} /home/app\nargs one two\n"),
        "ENTRYPOINT and CMD, WORKDIR, USER and ENV of the image"
    );

    c.apply(&pod(
        "with-args",
        image,
        "    args: [\"three\"]\n    env: [{name: GREETING, value: from-pod}]\n",
    ));
    assert_eq!(
        finished_log(&c, "with-args"),
        format!("entry from-pod /srv/app {ids} /home/app\nargs three\n"),
        "args replace CMD, the pod's env wins over the image's"
    );

    c.apply(&pod(
        "with-command",
        image,
        "    command: [\"sh\", \"-c\", \"echo command $GREETING $(pwd) $(id -u)\"]\n    workingDir: /tmp\n    securityContext: {runAsUser: 0}\n",
    ));
    assert_eq!(
        finished_log(&c, "with-command"),
        "command from-image /tmp 0\n",
        "command replaces ENTRYPOINT and CMD; workingDir and runAsUser win"
    );
}

#[test]
fn an_image_the_engine_cannot_get_is_err_image_pull_then_image_pull_back_off() {
    let Some((c, _)) =
        engine_cluster("an_image_the_engine_cannot_get_is_err_image_pull_then_image_pull_back_off")
    else {
        return;
    };
    // A registry on a loopback port where nothing listens.
    let image = "127.0.0.1:1/kubesh-test/missing:1";
    c.apply(&pod("missing", image, "    command: [\"true\"]\n"));
    let events = wait_for(
        "ErrImagePull and then ImagePullBackOff",
        Duration::from_secs(30),
        || {
            let events = c.ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=missing",
                "--sort-by=.metadata.creationTimestamp",
                "-o",
                "custom-columns=REASON:.reason,MESSAGE:.message",
                "--no-headers",
            ]);
            events.contains("Error: ImagePullBackOff").then_some(events)
        },
    );
    let pulled = events
        .find("Error: ErrImagePull")
        .expect("ErrImagePull first");
    let backoff = events
        .find("Error: ImagePullBackOff")
        .expect("then ImagePullBackOff");
    assert!(pulled < backoff, "{events}");
    assert!(
        events.contains(&format!("Failed to pull image \"{image}\": "))
            && events.contains("127.0.0.1:1"),
        "the engine's message names what failed: {events}"
    );
    assert!(
        events.contains(
            "start the cluster with KUBESH_LOCAL_IMAGES=host to run pods' commands from this \
             machine: `kubesh local-cluster stop`, then `KUBESH_LOCAL_IMAGES=host kubesh --local`"
        ),
        "the way out is named: {events}"
    );
    let waiting = c.ok(&[
        "get", "pod", "missing", "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
    ]);
    assert!(
        waiting.starts_with(&format!(
            "ImagePullBackOff: Back-off pulling image \"{image}\": ErrImagePull: "
        )),
        "{waiting}"
    );
    let never = pod(
        "never",
        image,
        "    imagePullPolicy: Never\n    command: [\"true\"]\n",
    );
    c.apply(&never);
    wait_for("ErrImageNeverPull", Duration::from_secs(30), || {
        let reason = c.ok(&[
            "get",
            "pod",
            "never",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ]);
        (reason == "ErrImageNeverPull").then_some(())
    });
}
