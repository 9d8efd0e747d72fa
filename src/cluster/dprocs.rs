//! The dprocs in the cluster, found by kubesh's labels: listing them for
//! `ps`, finding one by name or id, removing one (only ever objects
//! kubesh created), and the images they run.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, ListParams};
use serde::Serialize;

use super::connection::{ClusterError, Connection};
use crate::labels::{ANNOTATION_SOURCE, LABEL_DPROC, LABEL_ENVIRONMENT, owned_selector};

/// One dproc as `ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Dproc {
    pub id: String,
    pub name: String,
    pub environment: String,
    pub source: String,
    /// `deployment` (background) or `pod` (foreground).
    pub kind: String,
    pub status: String,
    /// `ready/wanted`.
    pub ready: String,
    pub restarts: i32,
    /// Seconds since creation.
    pub age_seconds: i64,
    /// In-cluster URL of a background dproc's service.
    pub url: Option<String>,
    /// The program's image.
    pub image: String,
}

/// The dprocs in `namespace`; only `environment`'s when given.
pub fn list(
    connection: &Connection,
    namespace: &str,
    environment: Option<&str>,
) -> Result<Vec<Dproc>, ClusterError> {
    let mut selector = owned_selector();
    if let Some(environment) = environment {
        selector.push_str(&format!(",{LABEL_ENVIRONMENT}={environment}"));
    }
    let params = ListParams::default().labels(&selector);
    let deployments: Api<Deployment> = Api::namespaced(connection.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
    let (deployments, pods) = connection
        .block_on(async { tokio::try_join!(deployments.list(&params), pods.list(&params)) })
        .map_err(|e| connection.explain(e))?;
    let mut pods_by_dproc: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in &pods.items {
        if let Some(id) = label(&pod.metadata, LABEL_DPROC) {
            pods_by_dproc.entry(id).or_default().push(pod);
        }
    }
    let mut dprocs = Vec::new();
    for deployment in &deployments.items {
        let id = label(&deployment.metadata, LABEL_DPROC).unwrap_or_default();
        let pods = pods_by_dproc.remove(&id).unwrap_or_default();
        let wanted = deployment.spec.replicas.unwrap_or(1);
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let port = service_port(deployment);
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let image = main_image(deployment.spec.template.spec.as_ref());
        dprocs.push(Dproc {
            image,
            status: summarize(&pods, ready >= wanted && wanted > 0),
            ready: format!("{ready}/{wanted}"),
            restarts: pods.iter().map(|p| restarts(p)).sum(),
            url: port.map(|port| format!("http://{name}:{port}")),
            ..common(&deployment.metadata, id, "deployment")
        });
    }
    for (id, pods) in pods_by_dproc {
        for pod in pods {
            let ready = pod_ready(pod);
            dprocs.push(Dproc {
                image: main_image(pod.spec.as_ref()),
                status: summarize(&[pod], ready),
                ready: format!("{}/1", i32::from(ready)),
                restarts: restarts(pod),
                url: None,
                ..common(&pod.metadata, id.clone(), "pod")
            });
        }
    }
    dprocs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(dprocs)
}

/// Every image the dprocs of all namespaces run or are to run: the
/// containers and init containers of their Deployments' templates and of
/// their pods (old pods of a rollout included), for `img prune`.
pub fn images_in_use(connection: &Connection) -> Result<BTreeSet<String>, ClusterError> {
    let params = ListParams::default().labels(&owned_selector());
    let deployments: Api<Deployment> = Api::all(connection.client.clone());
    let pods: Api<Pod> = Api::all(connection.client.clone());
    let (deployments, pods) = connection
        .block_on(async { tokio::try_join!(deployments.list(&params), pods.list(&params)) })
        .map_err(|e| connection.explain(e))?;
    let specs = deployments
        .items
        .iter()
        .filter_map(|d| d.spec.template.spec.as_ref())
        .chain(pods.items.iter().filter_map(|p| p.spec.as_ref()));
    Ok(specs
        .flat_map(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .filter_map(|c| c.image.clone())
        })
        .collect())
}

/// Why no dproc was found for a name or id.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{key}: no dproc with that name or id in namespace {namespace}; `ps -a` lists them")]
    NotFound { key: String, namespace: String },
}

/// The dproc in `namespace` whose name or id is `key`, read from the
/// cluster; the error says what to do when there is none.
pub fn lookup(connection: &Connection, namespace: &str, key: &str) -> Result<Dproc, LookupError> {
    let list = list(connection, namespace, None)?;
    find(&list, key)
        .cloned()
        .ok_or_else(|| LookupError::NotFound {
            key: key.to_string(),
            namespace: namespace.to_string(),
        })
}

/// The port of a background dproc's Service, which is the program's
/// `PORT` (its container may listen on another, the Service's target).
fn service_port(deployment: &Deployment) -> Option<String> {
    let container = deployment
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())?;
    let from_env = container
        .env
        .iter()
        .flatten()
        .find(|v| v.name == "PORT")
        .and_then(|v| v.value.clone());
    from_env.or_else(|| {
        container
            .ports
            .as_ref()
            .and_then(|p| p.first())
            .map(|p| p.container_port.to_string())
    })
}

/// The dproc whose name or id is `key`.
pub fn find<'a>(dprocs: &'a [Dproc], key: &str) -> Option<&'a Dproc> {
    dprocs.iter().find(|d| d.name == key || d.id == key)
}

/// The dprocs `key` names: the one with that name or id, else every
/// foreground run of the program called `key` (`job` for `job-1a2b3c`).
pub fn matching<'a>(dprocs: &'a [Dproc], key: &str) -> Vec<&'a Dproc> {
    if let Some(exact) = find(dprocs, key) {
        return vec![exact];
    }
    dprocs
        .iter()
        .filter(|d| d.kind == "pod" && d.id.len() > 3 && d.name == format!("{key}-{}", &d.id[3..]))
        .collect()
}

/// A dproc this session launched.
#[derive(Debug, Clone)]
pub struct Launched {
    pub name: String,
    pub namespace: String,
    pub background: bool,
}

/// Deletes a dproc this session launched (if it still exists).
pub fn delete_launched(
    connection: &Connection,
    namespace: &str,
    launched: &Launched,
) -> Result<(), ClusterError> {
    let dproc = Dproc {
        id: String::new(),
        name: launched.name.clone(),
        environment: String::new(),
        source: String::new(),
        kind: if launched.background {
            "deployment"
        } else {
            "pod"
        }
        .to_string(),
        status: String::new(),
        ready: String::new(),
        restarts: 0,
        age_seconds: 0,
        url: None,
        image: String::new(),
    };
    delete(connection, namespace, &dproc)
}

/// Deletes a dproc; its ReplicaSets, Pods, Service and ConfigMaps go with
/// it through their owner references.
pub fn delete(connection: &Connection, namespace: &str, dproc: &Dproc) -> Result<(), ClusterError> {
    let params = DeleteParams::background();
    let result = if dproc.kind == "deployment" {
        let api: Api<Deployment> = Api::namespaced(connection.client.clone(), namespace);
        connection
            .block_on(api.delete(&dproc.name, &params))
            .map(|_| ())
    } else {
        let api: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
        connection
            .block_on(api.delete(&dproc.name, &params))
            .map(|_| ())
    };
    match result {
        Ok(()) => Ok(()),
        Err(error) if super::connection::status_code(&error) == Some(404) => Ok(()),
        Err(error) => Err(connection.explain(error)),
    }
}

fn common(meta: &ObjectMeta, id: String, kind: &str) -> Dproc {
    Dproc {
        id,
        name: meta.name.clone().unwrap_or_default(),
        environment: label(meta, LABEL_ENVIRONMENT).unwrap_or_default(),
        source: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_SOURCE))
            .cloned()
            .unwrap_or_default(),
        kind: kind.to_string(),
        status: String::new(),
        ready: String::new(),
        restarts: 0,
        age_seconds: age(meta.creation_timestamp.as_ref()),
        url: None,
        image: String::new(),
    }
}

fn main_image(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> String {
    spec.and_then(|s| s.containers.iter().find(|c| c.name == "main"))
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn label(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.labels.as_ref()?.get(key).cloned()
}

fn age(created: Option<&Time>) -> i64 {
    let Some(created) = created else { return 0 };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (now - created.0.as_second()).max(0)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |statuses| statuses.iter().map(|c| c.restart_count).sum())
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One word for the state of a dproc's pods, the most telling first.
fn summarize(pods: &[&Pod], all_ready: bool) -> String {
    for pod in pods {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            if let Some(reason) = status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                && reason != "ContainerCreating"
            {
                return reason;
            }
        }
    }
    if all_ready {
        return "Running".to_string();
    }
    pods.first()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| {
            let phase = s.phase.clone()?;
            let terminated = s
                .container_statuses
                .as_ref()
                .and_then(|c| c.first())
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code);
            Some(match (phase.as_str(), terminated) {
                ("Succeeded" | "Failed", Some(code)) => format!("Exited({code})"),
                _ => phase,
            })
        })
        .unwrap_or_else(|| "Pending".to_string())
}

/// An age for people: `45s`, `12m`, `3h`, `2d`.
pub fn human_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
