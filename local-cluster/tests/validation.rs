//! Validation as the API server does it, seen through real kubectl (the
//! oldest and newest versions beside it, where kubectl's side differs) and
//! kube-rs: unknown fields under each `fieldValidation` directive, field
//! values, names, labels, immutable fields, and what the server answers.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::TestCluster;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

/// The kubectl on PATH and the newest installed beside it
/// (`kubectl.1.33` …), if there is one. (kubectl 1.27 and 1.28 validate
/// on the client from `/openapi/v2`, which the local cluster does not
/// serve yet.)
fn kubectls() -> Vec<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("kubectl"))
                .find(|candidate| candidate.is_file())
        })
        .and_then(|found| std::fs::canonicalize(found).ok());
    let newest = on_path
        .as_ref()
        .and_then(|kubectl| kubectl.parent())
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let minor: u32 = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, entry.path()))
        })
        .max();
    let mut found = vec![PathBuf::from("kubectl")];
    found.extend(newest.map(|(_, path)| path));
    found
}

fn run(c: &TestCluster, kubectl: &PathBuf, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("kubectl finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const TYPO: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  containers:
  - name: main
    image: busybox
    comand: ["sleep", "100"]
    args: ["sleep", "100"]
"#;

#[test]
fn unknown_fields_are_refused_warned_or_dropped_as_field_validation_says() {
    let c = TestCluster::start();
    for kubectl in kubectls() {
        let version = kubectl.display().to_string();
        // kubectl's default: Strict.
        let out = run(&c, &kubectl, &["apply", "-f", "-"], Some(TYPO));
        assert!(!out.status.success(), "{version}: {}", text(&out.stdout));
        assert_eq!(
            text(&out.stderr).trim(),
            "Error from server (BadRequest): error when creating \"STDIN\": Pod in version \"v1\" \
             cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].comand\"",
            "{version}"
        );
        // Warn: created without the field, with the server's warning.
        let out = run(
            &c,
            &kubectl,
            &["create", "--validate=warn", "-f", "-"],
            Some(TYPO),
        );
        assert!(out.status.success(), "{version}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("Warning: unknown field \"spec.containers[0].comand\""),
            "{version}: {}",
            text(&out.stderr)
        );
        let stored: Value =
            serde_json::from_str(&c.ok(&["get", "pod", "typo", "-o", "json"])).expect("json");
        assert!(
            stored["spec"]["containers"][0].get("comand").is_none(),
            "{stored}"
        );
        c.ok(&["delete", "pod", "typo", "--grace-period=0", "--force"]);
        // Ignore: created without it, silently.
        let out = run(
            &c,
            &kubectl,
            &["create", "--validate=false", "-f", "-"],
            Some(TYPO),
        );
        assert!(out.status.success(), "{version}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("Warning"), "{version}");
        c.ok(&["delete", "pod", "typo", "--grace-period=0", "--force"]);
    }
    // kubectl patch sends no directive: the server's default is Warn.
    c.ok(&["create", "configmap", "c", "--from-literal=a=b"]);
    let out = c.kubectl(&["patch", "configmap", "c", "-p", r#"{"dta":{"x":"y"}}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "Warning: unknown field \"dta\"");
    assert_eq!(
        c.ok(&["get", "configmap", "c", "-o", "jsonpath={.dta}"]),
        ""
    );
}

async fn client(c: &TestCluster) -> Client {
    let kc = Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The API server's answer to creating `object`: (message, causes as
/// `field: message`).
async fn refusal<K>(api: &Api<K>, object: Value) -> (String, Vec<String>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => panic!("accepted: {created:?}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            let causes = status
                .details
                .map(|details| details.causes)
                .unwrap_or_default()
                .into_iter()
                .map(|cause| format!("{} {}: {}", cause.reason, cause.field, cause.message))
                .collect();
            (status.message, causes)
        }
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn fields_are_validated_with_the_api_servers_messages_and_causes() {
    let c = TestCluster::start();
    rt().block_on(async {
        let client = client(&c).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let (message, causes) = refusal(
            &pods,
            json!({"metadata": {"name": "p", "labels": {"app": "-web"}},
                   "spec": {"containers": [
                       {"name": "main", "image": "x", "command": ["true"],
                        "ports": [{"containerPort": 70000}, {"containerPort": 80, "name": "HTTP"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                       {"name": "main", "image": "x"}]}}),
        )
        .await;
        assert_eq!(
            causes,
            [
                "FieldValueInvalid metadata.labels: Invalid value: \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "FieldValueInvalid spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "FieldValueInvalid spec.containers[0].ports[1].name: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "FieldValueInvalid spec.containers[0].ports[1].name: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
                "FieldValueNotFound spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "FieldValueDuplicate spec.containers[1].name: Duplicate value: \"main\"",
            ]
        );
        assert!(message.starts_with("Pod \"p\" is invalid: ["), "{message}");

        // Names by the rule of each kind: a ConfigMap's is a DNS subdomain
        // (253), a Service's a DNS-1035 label (63).
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let long = "a".repeat(72);
        let made: ConfigMap = serde_json::from_value(json!({"metadata": {"name": long}})).expect("cm");
        config_maps
            .create(&PostParams::default(), &made)
            .await
            .expect("a 72-character ConfigMap name is valid");
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(client.clone(), "default");
        let (_, causes) = refusal(
            &services,
            json!({"metadata": {"name": long},
                   "spec": {"ports": [{"port": 80, "targetPort": 70000}]}}),
        )
        .await;
        assert_eq!(
            causes,
            [
                format!("FieldValueInvalid metadata.name: Invalid value: \"{long}\": must be no more than 63 characters"),
                "FieldValueInvalid spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive".to_string(),
            ]
        );

        // 900,000 bytes of binaryData: within 1 MiB once decoded.
        let bytes = "A".repeat(1_200_000);
        let big: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "big"}, "binaryData": {"bundle.tgz": bytes}}),
        )
        .expect("cm");
        config_maps
            .create(&PostParams::default(), &big)
            .await
            .expect("900,000 bytes of binaryData are accepted");
        let (_, causes) = refusal(
            &config_maps,
            json!({"metadata": {"name": "text"}, "data": {"a": "x".repeat(1_048_577)}}),
        )
        .await;
        assert_eq!(causes, ["FieldValueTooLong : Too long: must have at most 1048576 bytes"]);

        // A Secret without a type is Opaque; its type may not change.
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}}))
                .expect("secret");
        let made = secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
        assert_eq!(made.type_.as_deref(), Some("Opaque"));
    });
    c.ok(&["create", "secret", "generic", "gen", "--from-literal=a=b"]);
    assert_eq!(
        c.ok(&["get", "secret", "gen", "-o", "jsonpath={.type}"]),
        "Opaque"
    );
    let out = c.kubectl(&[
        "patch",
        "secret",
        "gen",
        "-p",
        r#"{"type":"example.com/custom"}"#,
    ]);
    assert_eq!(
        text(&out.stderr).trim(),
        "The Secret \"gen\" is invalid: type: Invalid value: \"example.com/custom\": field is immutable"
    );

    // A Deployment's selector is immutable, shown as Go shows it.
    c.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox, command: ["sleep", "100"]}]
"#,
    );
    let out = c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#,
    ]);
    assert_eq!(
        text(&out.stderr).trim(),
        "The Deployment \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"other\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
}

#[test]
fn an_object_in_a_missing_namespace_is_not_found_by_its_own_name() {
    let c = TestCluster::start();
    rt().block_on(async {
        let config_maps: Api<ConfigMap> = Api::namespaced(client(&c).await, "nowhere");
        match config_maps.get("x").await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(
                    (status.code, status.message.as_str()),
                    (404, "configmaps \"x\" not found")
                );
            }
            other => panic!("{other:?}"),
        }
    });
}
