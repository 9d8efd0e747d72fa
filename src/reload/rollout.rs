//! The rolling-update path of a reload: the new bundle goes into the
//! ConfigMaps and its content hash into the Deployment's pod template, so
//! Kubernetes replaces the pods with ones that unpack the new code. It
//! works wherever kubesh may update Deployments; it costs a pod start.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

use crate::cluster::connection::{ClusterError, explain};
use crate::labels::{ANNOTATION_BUNDLE, ANNOTATION_CHUNK, LABEL_DPROC};
use crate::launch::bundle::Bundle;
use crate::launch::judge::{Progress, assess, last_lines};
use crate::launch::objects::{self, Spec};

/// Rolls the new bundle out: the ConfigMaps, then the Deployment's pod
/// template with the new content hash; waits until a pod running it is
/// ready, or says why none is.
pub async fn roll_out(
    client: &kube::Client,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(), RolloutError> {
    update(client, spec, bundle)
        .await
        .map_err(RolloutError::NotStored)?;
    wait_new_pods(client, spec)
        .await
        .map_err(RolloutError::NotReady)
}

/// Why a rollout did not end with the new code running.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The cluster did not take the new bundle: it still has the old one.
    #[error(transparent)]
    NotStored(StoreError),
    /// The cluster has the new bundle, but no pod runs it yet.
    #[error("{0}")]
    NotReady(String),
}

/// An object holding the new code that the cluster did not take.
#[derive(Debug, thiserror::Error)]
#[error("{what} cannot be {done}: {}", .source.reason())]
pub struct StoreError {
    /// The object, as a message names it (`the ConfigMap web-bundle-0`).
    pub what: String,
    /// What was asked of it (`read`, `updated`, `created`).
    pub done: &'static str,
    #[source]
    pub source: ClusterError,
}

impl StoreError {
    fn new(what: impl Into<String>, done: &'static str, error: kube::Error) -> StoreError {
        StoreError {
            what: what.into(),
            done,
            source: explain("the cluster", error),
        }
    }
}

/// Puts the new bundle in the ConfigMaps and the new pod template (with
/// the new content hash) in the Deployment.
async fn update(client: &kube::Client, spec: &Spec, bundle: &Bundle) -> Result<(), StoreError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
    let current = deployments
        .get(&spec.name)
        .await
        .map_err(|e| StoreError::new("the Deployment", "read", e))?;
    let uid = current.metadata.uid.clone().unwrap_or_default();
    let old_chunks = current
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "bundle"))
        .and_then(|v| v.projected.as_ref())
        .and_then(|p| p.sources.as_ref())
        .map_or(0, Vec::len);
    let owner = objects::owner_reference("apps/v1", "Deployment", &spec.name, &uid);
    store_bundle(client, spec, bundle, old_chunks, Some(owner)).await?;
    let template = objects::deployment(spec).spec.template;
    let patch = serde_json::json!({ "spec": { "template": template } });
    deployments
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| StoreError::new("the Deployment", "updated", e))?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.namespace);
    for index in bundle.chunks().count()..old_chunks {
        let _ = config_maps
            .delete(&spec.config_map_name(index), &DeleteParams::default())
            .await;
    }
    Ok(())
}

/// Writes the bundle into the dproc's ConfigMaps: of the first
/// `existing`, those whose piece changed (by their hash annotation, read
/// in one request) are patched; the others are created (owned by
/// `owner`). A save of one file writes one ConfigMap, not all of them.
pub async fn store_bundle(
    client: &kube::Client,
    spec: &Spec,
    bundle: &Bundle,
    existing: usize,
    owner: Option<OwnerReference>,
) -> Result<(), StoreError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.namespace);
    let chunks: Vec<&[u8]> = bundle.chunks().collect();
    // What each ConfigMap holds now; one that cannot be read is written.
    let stored: BTreeMap<String, String> = if existing > 0 {
        let params = ListParams::default().labels(&format!("{LABEL_DPROC}={}", spec.dproc_id));
        config_maps
            .list_metadata(&params)
            .await
            .map(|list| {
                list.items
                    .into_iter()
                    .filter_map(|item| {
                        let name = item.metadata.name?;
                        let hash = item.metadata.annotations?.remove(ANNOTATION_CHUNK)?;
                        Some((name, hash))
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    for (index, config_map) in objects::config_maps(spec, &chunks, owner)
        .into_iter()
        .enumerate()
    {
        let name = spec.config_map_name(index);
        let hash = config_map
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_CHUNK));
        if index < existing && hash.is_some() && stored.get(&name) == hash {
            continue;
        }
        if index < existing {
            let patch = ConfigMap {
                binary_data: config_map.binary_data.clone(),
                metadata: kube::api::ObjectMeta {
                    annotations: config_map.metadata.annotations.clone(),
                    ..kube::api::ObjectMeta::default()
                },
                ..ConfigMap::default()
            };
            config_maps
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| StoreError::new(format!("the ConfigMap {name}"), "updated", e))?;
        } else {
            config_maps
                .create(&PostParams::default(), &config_map)
                .await
                .map_err(|e| StoreError::new(format!("the ConfigMap {name}"), "created", e))?;
        }
    }
    Ok(())
}

/// Waits until a pod running the new bundle is ready, or reports why not.
async fn wait_new_pods(client: &kube::Client, spec: &Spec) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let config = watcher::Config::default().labels(&format!("{LABEL_DPROC}={}", spec.dproc_id));
    let mut events = std::pin::pin!(watcher(pods.clone(), config));
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut deadline => return Err("no pod with the new code became ready within 2 minutes; `ps` and `logs` tell more".to_string()),
        };
        let Some(event) = event else {
            return Err("the watch on the pods ended".to_string());
        };
        let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event else {
            continue;
        };
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_BUNDLE));
        if hash != Some(&spec.bundle_hash) {
            continue;
        }
        match assess(&pod, true) {
            Progress::Ready => return Ok(()),
            Progress::Failed { reason, logs } => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let tail = match logs {
                    Some((container, previous)) => {
                        last_lines(&pods, &name, &container, previous).await
                    }
                    None => String::new(),
                };
                return Err(format!(
                    "with the new code, {reason}; the next good save brings it back{tail}"
                ));
            }
            // A port the old pod still holds is let go as it stops.
            Progress::Unschedulable(message) => {
                return Err(format!(
                    "with the new code, the pod cannot be scheduled: {message}; the pods with \
                     the old code go on serving"
                ));
            }
            Progress::Phase(_) | Progress::Unready | Progress::Ended(_) => {}
        }
    }
}
