//! batch/v1 Jobs through real kubectl, as a real cluster runs them: a pod
//! per completion at most `parallelism` at once, `backoffLimit`, the
//! conditions `kubectl wait` waits for, `kubectl logs job/NAME`, and
//! deletion that takes the Job's pods with it.

mod common;

use std::time::Duration;

use common::{TestCluster, wait_for};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn json(c: &TestCluster, args: &[&str]) -> Value {
    serde_json::from_str(&c.ok(args)).expect("json")
}

/// The Job's pods (by the label the API server gives them).
fn pods_of(c: &TestCluster, job: &str) -> Vec<Value> {
    json(
        c,
        &[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/job-name={job}"),
            "-o",
            "json",
        ],
    )["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[test]
fn a_job_made_by_kubectl_create_completes_and_its_logs_and_pods_follow_it() {
    let c = TestCluster::start();
    // `kubectl create job` sends the Job as protobuf.
    c.ok(&[
        "create",
        "job",
        "hello",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "echo hello from a job",
    ]);
    let job = json(&c, &["get", "job", "hello", "-o", "json"]);
    let uid = job["metadata"]["uid"].as_str().unwrap_or_default();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(job["spec"]["completions"], 1);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/hello",
        "--timeout=60s",
    ]);
    assert_eq!(c.ok(&["logs", "job/hello"]), "hello from a job\n");
    let job = json(&c, &["get", "job", "hello", "-o", "json"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["completionTime"].is_string(), "{job}");
    assert_eq!(
        condition(&job, "Complete").map(|c| c["reason"].clone()),
        Some("CompletionsReached".into())
    );
    let listed = c.ok(&["get", "job", "hello"]);
    assert!(
        listed.contains("Complete") && listed.contains("1/1"),
        "{listed}"
    );
    let pods = pods_of(&c, "hello");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["status"]["phase"], "Succeeded");

    // Deleted in the background by default: its pods go with it.
    c.ok(&["delete", "job", "hello"]);
    wait_for("the job's pods to go", T, || {
        pods_of(&c, "hello").is_empty().then_some(())
    });
}

#[test]
fn completions_run_at_most_parallelism_pods_at_once() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: three}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["sh", "-c", "sleep 1; echo done"]}]
"#,
    );
    let mut most = 0;
    wait_for("three completions", T, || {
        let pods = pods_of(&c, "three");
        let running = pods
            .iter()
            .filter(|p| p["status"]["phase"] != "Succeeded")
            .count();
        most = most.max(running);
        let job = json(&c, &["get", "job", "three", "-o", "json"]);
        condition(&job, "Complete").map(|_| ())
    });
    assert!(most <= 2, "{most} pods ran at once");
    let pods = pods_of(&c, "three");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    let job = json(&c, &["get", "job", "three", "-o", "json"]);
    assert_eq!(job["status"]["succeeded"], 3);
}

#[test]
fn a_job_fails_once_more_pods_failed_than_its_backoff_limit() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: doomed}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["sh", "-c", "echo no; exit 2"]}]
"#,
    );
    // The second pod comes after the controller's 10 s back-off.
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/doomed",
        "--timeout=60s",
    ]);
    let job = json(&c, &["get", "job", "doomed", "-o", "json"]);
    assert_eq!(job["status"]["failed"], 2);
    let failed = condition(&job, "Failed").expect("a Failed condition");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(pods_of(&c, "doomed").len(), 2);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=doomed",
    ]);
    assert!(events.contains("BackoffLimitExceeded"), "{events}");
    // `kubectl wait` for completion gives up with the Job's failure.
    let waited = c.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/doomed",
        "--timeout=2s",
    ]);
    assert!(!waited.status.success());
}

#[test]
fn a_suspended_job_runs_no_pod_until_it_is_resumed() {
    let c = TestCluster::start();
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: later}
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["echo", "ran"]}]
"#,
    );
    c.ok(&[
        "wait",
        "--for=condition=suspended",
        "job/later",
        "--timeout=30s",
    ]);
    assert!(pods_of(&c, "later").is_empty());
    assert!(c.ok(&["get", "job", "later"]).contains("Suspended"));
    c.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/later",
        "--timeout=60s",
    ]);
    let job = json(&c, &["get", "job", "later", "-o", "json"]);
    assert_eq!(
        condition(&job, "Suspended").map(|c| (c["status"].clone(), c["reason"].clone())),
        Some(("False".into(), "JobResumed".into()))
    );
}

#[test]
fn a_job_is_judged_as_the_api_server_judges_it() {
    let c = TestCluster::start();
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: forever}
spec:
  template:
    spec:
      containers: [{name: main, image: busybox, command: ["true"]}]
"#,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ),
        "{stderr}"
    );
    // A running Job's pods go with it in foreground deletion.
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: long}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      terminationGracePeriodSeconds: 1
      containers: [{name: main, image: busybox, command: ["sleep", "1000"]}]
"#,
    );
    wait_for("the job's pod", T, || {
        (pods_of(&c, "long").len() == 1).then_some(())
    });
    c.ok(&["delete", "job", "long", "--cascade=foreground"]);
    assert!(pods_of(&c, "long").is_empty());
}
