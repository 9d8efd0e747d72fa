//! Fidelity tests: kube-rs (the client kubesh uses) against the local cluster.

mod common;

use std::time::Duration;

use common::TestCluster;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Client, Config};
use serde_json::json;

async fn client(c: &TestCluster) -> Client {
    let kc = Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"set": "paging"}}, "data": {"k": name}}),
    )
    .expect("configmap")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn list_paging() {
    let c = TestCluster::start();
    rt().block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
        for i in 0..25 {
            api.create(&PostParams::default(), &cm(&format!("cm-{i:02}")))
                .await
                .expect("create");
        }
        let mut names = Vec::new();
        let mut lp = ListParams::default().labels("set=paging").limit(10);
        let mut pages = 0;
        loop {
            let page = api.list(&lp).await.expect("list");
            pages += 1;
            names.extend(page.items.iter().filter_map(|o| o.metadata.name.clone()));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => lp = lp.continue_token(&token),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(names.len(), 25);
        let mut sorted = names.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 25);
    });
}

#[test]
fn conflict_on_stale_update() {
    let c = TestCluster::start();
    rt().block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
        let created = api
            .create(&PostParams::default(), &cm("stale"))
            .await
            .expect("create");
        let mut first = created.clone();
        first.data = Some([("k".to_string(), "v1".to_string())].into());
        api.replace("stale", &PostParams::default(), &first)
            .await
            .expect("first update");
        let mut second = created;
        second.data = Some([("k".to_string(), "v2".to_string())].into());
        match api.replace("stale", &PostParams::default(), &second).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 409);
                assert_eq!(s.reason, "Conflict");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let now = api.get("stale").await.expect("get");
        assert_eq!(
            now.data.and_then(|d| d.get("k").cloned()).as_deref(),
            Some("v1")
        );
        // Creating it again is AlreadyExists.
        match api.create(&PostParams::default(), &cm("stale")).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"))
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        match api.get("missing").await {
            Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
            other => panic!("expected NotFound, got {other:?}"),
        }
    });
}

#[test]
fn patches_that_name_no_version_never_conflict_with_other_writers() {
    let c = TestCluster::start();
    rt().block_on(async {
        let client = client(&c).await;
        let api: Api<Deployment> = Api::namespaced(client, "default");
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "busy"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "busy"}},
                "template": {
                    "metadata": {"labels": {"app": "busy"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}
                }
            }
        }))
        .expect("deployment");
        api.create(&PostParams::default(), &deployment)
            .await
            .expect("create");
        // One writer annotates the Deployment while another scales it, as
        // controllers and `kubectl scale` do at once.
        let annotate = async {
            for i in 0..150 {
                let patch = json!({"metadata": {"annotations": {"writer": i.to_string()}}});
                api.patch("busy", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| format!("annotation {i}: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let scale = async {
            for i in 0..150 {
                let patch = json!({"spec": {"replicas": i % 2}});
                api.patch_scale("busy", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| format!("scale {i}: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let (annotated, scaled) = tokio::join!(annotate, scale);
        annotated.expect("every annotation patch applies");
        scaled.expect("every scale patch applies");
        let now = api.get("busy").await.expect("get");
        assert_eq!(now.spec.replicas, Some(1));
    });
}

#[test]
fn watcher_survives_restarts() {
    let c = TestCluster::start();
    rt().block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
        // Each watch request ends after a second, so the watcher restarts
        // from its last resourceVersion several times.
        let cfg = watcher::Config::default().labels("set=paging").timeout(1);
        let mut stream = watcher(api.clone(), cfg).applied_objects().boxed();
        let writer = {
            let api = api.clone();
            tokio::spawn(async move {
                for i in 0..4 {
                    api.create(&PostParams::default(), &cm(&format!("w-{i}")))
                        .await
                        .expect("create");
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
            })
        };
        let mut seen = std::collections::BTreeSet::new();
        let got = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(o) = stream.try_next().await.expect("watch") {
                seen.insert(o.metadata.name.clone().unwrap_or_default());
                if seen.len() == 4 {
                    break;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "saw only {seen:?}");
        writer.await.expect("writer");
    });
}

#[test]
fn await_pod_and_deployment_conditions() {
    let c = TestCluster::start();
    rt().block_on(async {
        let client = client(&c).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "quick"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]},
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &pod).await.expect("create");
        let done = tokio::time::timeout(Duration::from_secs(20), await_condition(pods.clone(), "quick", |o: Option<&Pod>| o.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Succeeded")))
            .await
            .expect("in time")
            .expect("watch");
        assert_eq!(done.and_then(|p| p.status).and_then(|s| s.phase).as_deref(), Some("Succeeded"));

        let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "api"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}},
            },
        }))
        .expect("deployment");
        deploys.create(&PostParams::default(), &d).await.expect("create");
        let available = |o: Option<&Deployment>| {
            o.and_then(|d| d.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")))
                && o.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas) == Some(2)
        };
        tokio::time::timeout(Duration::from_secs(20), await_condition(deploys.clone(), "api", available))
            .await
            .expect("in time")
            .expect("watch");
        // Scale through a merge patch; strategic patch of the template.
        deploys
            .patch("api", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}})))
            .await
            .expect("patch");
        let one = |o: Option<&Deployment>| o.and_then(|d| d.status.as_ref()).is_some_and(|s| s.replicas == Some(1));
        tokio::time::timeout(Duration::from_secs(20), await_condition(deploys.clone(), "api", one))
            .await
            .expect("in time")
            .expect("watch");
        let ssa = PatchParams::apply("kubesh-test");
        deploys
            .patch("api", &ssa, &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": {"x": "y"}}})))
            .await
            .expect("apply patch");
        let uid = deploys.get("api").await.expect("get").metadata.uid.unwrap_or_default();
        deploys.delete("api", &DeleteParams::foreground()).await.expect("delete");
        if tokio::time::timeout(Duration::from_secs(20), await_condition(deploys.clone(), "api", conditions::is_deleted(&uid)))
            .await
            .is_err()
        {
            let d = deploys.get_opt("api").await.expect("get");
            let rs: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), "default");
            let rss = rs.list(&ListParams::default()).await.expect("list");
            let ps = pods.list(&ListParams::default()).await.expect("list");
            panic!(
                "deployment not deleted in time: {:?}\nreplica sets: {:?}\npods: {:?}",
                d.map(|d| (d.metadata.finalizers, d.metadata.deletion_timestamp)),
                rss.items.iter().map(|r| (&r.metadata.name, &r.metadata.finalizers, &r.metadata.deletion_timestamp)).collect::<Vec<_>>(),
                ps.items.iter().map(|p| (&p.metadata.name, &p.metadata.finalizers, &p.metadata.deletion_timestamp, p.status.as_ref().and_then(|s| s.phase.clone()))).collect::<Vec<_>>()
            );
        }
        let left = pods.list(&ListParams::default().labels("app=api")).await.expect("list");
        assert!(left.items.is_empty(), "pods left after foreground deletion");
    });
}

#[test]
fn malformed_requests_get_statuses_and_lose_nothing() {
    let c = TestCluster::start();
    rt().block_on(async {
        let client = client(&c).await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        cms.create(&PostParams::default(), &cm("keep")).await.expect("create");
        let posts: &[(&str, &str)] = &[
            ("/apis/apps/v1/namespaces/default/deployments", r#"{"spec":"x"}"#),
            ("/apis/apps/v1/namespaces/default/deployments", r#"{"metadata":{"name":"d"},"spec":{"strategy":"x","template":"y"}}"#),
            ("/apis/apps/v1/namespaces/default/deployments", r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[1,"a",null]}}}}"#),
            ("/api/v1/namespaces/default/pods", r#"{"metadata":{"name":"p"},"spec":{"containers":"x"}}"#),
            ("/api/v1/namespaces/default/pods", r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","ports":"x","readinessProbe":"y"}],"volumes":[1]}}"#),
            ("/api/v1/namespaces", r#"{"metadata":{"name":"n","labels":"x"}}"#),
            ("/api/v1/namespaces/default/services", r#"{"metadata":{"name":"s"},"spec":{"ports":[{"port":"x"}]}}"#),
            ("/api/v1/namespaces/default/secrets", r#"{"metadata":{"name":"s"},"data":"x","stringData":{"a":1}}"#),
            ("/api/v1/namespaces/default/configmaps", r#"{"metadata":"x"}"#),
            ("/api/v1/namespaces/default/configmaps", r#"[]"#),
            ("/api/v1/namespaces/default/configmaps", r#""str""#),
            ("/api/v1/namespaces/default/configmaps", r#"{"metadata":{"name":"x"},"data":{"a":1}}"#),
            ("/api/v1/namespaces/default/configmaps", "{not json"),
            ("/api/v1/namespaces/nowhere/configmaps", r#"{"metadata":{"name":"x"}}"#),
            ("/api/v1/namespaces/default/bogus", "{}"),
        ];
        for (path, body) in posts {
            let req = http::Request::post(*path)
                .header("content-type", "application/json")
                .body(body.as_bytes().to_vec())
                .expect("request");
            match client.request_text(req).await {
                Err(kube::Error::Api(s)) => assert!((400..500).contains(&s.code), "{path} {body}: {s:?}"),
                other => panic!("{path} {body}: expected an error status, got {other:?}"),
            }
        }
        let patches: &[(&str, &str)] = &[
            ("application/merge-patch+json", r#"{"metadata":"x"}"#),
            ("application/merge-patch+json", r#"{"metadata":{"name":"other"}}"#),
            ("application/json-patch+json", r#"[{"op":"remove","path":"/nope"}]"#),
            ("application/json-patch+json", r#"{"op":"add"}"#),
            ("application/strategic-merge-patch+json", r#"[1]"#),
            ("application/strategic-merge-patch+json", r#"{"data":{"$patch":"bogus"}}"#),
            ("text/plain", "x"),
        ];
        for (ct, body) in patches {
            let req = http::Request::patch("/api/v1/namespaces/default/configmaps/keep")
                .header("content-type", *ct)
                .body(body.as_bytes().to_vec())
                .expect("request");
            match client.request_text(req).await {
                Err(kube::Error::Api(s)) => assert!((400..500).contains(&s.code), "{ct} {body}: {s:?}"),
                other => panic!("{ct} {body}: expected an error status, got {other:?}"),
            }
        }
        let big = format!(r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#, "x".repeat(4 * 1024 * 1024));
        let req = http::Request::post("/api/v1/namespaces/default/configmaps")
            .header("content-type", "application/json")
            .body(big.into_bytes())
            .expect("request");
        // The server answers 413 without reading the body and lingers on
        // close, so the client reads the answer rather than a reset.
        match client.request_text(req).await {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 413),
            other => panic!("expected 413, got {other:?}"),
        }
        let kept = cms.get("keep").await.expect("still there");
        assert_eq!(kept.data.and_then(|d| d.get("k").cloned()).as_deref(), Some("keep"));
    });
}
