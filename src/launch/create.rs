//! Creating a dproc's objects: the ConfigMaps holding its bundle first
//! (so that its pods find their files when they start), then the
//! Deployment and Service of a background dproc or the Pod of a foreground
//! one, which then owns the ConfigMaps, so they go with it. Nothing
//! half-created stays when a step fails; an object of the same name is
//! never overwritten.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use super::LaunchError;
use super::bundle::Bundle;
use super::objects::{self, Spec};
use crate::cluster::connection::{ClusterError, Connection, status_code};
use crate::labels::{LABEL_DPROC, is_owned};

/// Creates a background dproc's ConfigMaps, Deployment and Service;
/// returns the Service as the cluster created it.
pub async fn background(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<Service, LaunchError> {
    let client = connection.client.clone();
    // The files first: a pod whose ConfigMaps are not there yet waits for
    // its volume until the kubelet tries the mount again, seconds later.
    config_maps(connection, spec, bundle).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
    let created = match deployments
        .create(&PostParams::default(), &objects::deployment(spec))
        .await
    {
        Ok(created) => created,
        Err(error) => {
            delete_config_maps(connection, spec, bundle.chunks().count()).await;
            if status_code(&error) == Some(409) {
                let existing = deployments.get(&spec.name).await.ok();
                return Err(LaunchError::NameTaken(name_taken(
                    "Deployment",
                    &spec.name,
                    existing.as_ref().map(|d| &d.metadata),
                )));
            }
            return Err(creation_error(connection, spec, error));
        }
    };
    let uid = created.metadata.uid.unwrap_or_default();
    let owner = objects::owner_reference("apps/v1", "Deployment", &spec.name, &uid);
    let rest = async {
        adopt_config_maps(connection, spec, bundle, &owner).await?;
        let services: Api<Service> = Api::namespaced(client.clone(), &spec.namespace);
        match services
            .create(&PostParams::default(), &objects::service(spec, Some(owner)))
            .await
        {
            Ok(service) => Ok(service),
            Err(error) if status_code(&error) == Some(409) => {
                let existing = services.get(&spec.name).await.ok();
                Err(LaunchError::NameTaken(name_taken(
                    "Service",
                    &spec.name,
                    existing.as_ref().map(|s| &s.metadata),
                )))
            }
            Err(error) => Err(LaunchError::Cluster(connection.explain(error))),
        }
    };
    match rest.await {
        Ok(service) => Ok(service),
        Err(error) => {
            // Nothing half-created stays.
            let _ = deployments
                .delete(&spec.name, &DeleteParams::background())
                .await;
            delete_config_maps(connection, spec, bundle.chunks().count()).await;
            Err(error)
        }
    }
}

/// Creates a foreground dproc's ConfigMaps and Pod.
pub async fn foreground(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(), LaunchError> {
    // The files first, as for a background dproc.
    config_maps(connection, spec, bundle).await?;
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let created = match pods
        .create(&PostParams::default(), &objects::pod(spec))
        .await
    {
        Ok(created) => created,
        Err(error) => {
            delete_config_maps(connection, spec, bundle.chunks().count()).await;
            return Err(creation_error(connection, spec, error));
        }
    };
    let uid = created.metadata.uid.unwrap_or_default();
    let owner = objects::owner_reference("v1", "Pod", &spec.name, &uid);
    if let Err(error) = adopt_config_maps(connection, spec, bundle, &owner).await {
        let _ = pods
            .delete(&spec.name, &DeleteParams::default().grace_period(0))
            .await;
        delete_config_maps(connection, spec, bundle.chunks().count()).await;
        return Err(error);
    }
    Ok(())
}

/// Makes `owner` the owner of the bundle's ConfigMaps, so that they go
/// with it (all at once).
async fn adopt_config_maps(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
    owner: &OwnerReference,
) -> Result<(), LaunchError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let patch = serde_json::json!({ "metadata": { "ownerReferences": [owner] } });
    let patches = (0..bundle.chunks().count()).map(|index| {
        let name = spec.config_map_name(index);
        let (config_maps, patch) = (&config_maps, &patch);
        async move {
            config_maps
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
        }
    });
    for patched in futures_util::future::join_all(patches).await {
        patched.map_err(|e| connection.explain(e))?;
    }
    Ok(())
}

/// Deletes the first `count` of the bundle's ConfigMaps (a launch that did
/// not get as far as an owner for them).
async fn delete_config_maps(connection: &Connection, spec: &Spec, count: usize) {
    let config_maps: Api<ConfigMap> = Api::namespaced(connection.client.clone(), &spec.namespace);
    for index in 0..count {
        let _ = config_maps
            .delete(&spec.config_map_name(index), &DeleteParams::default())
            .await;
    }
}

/// Creates the bundle's ConfigMaps, without an owner yet. One of the same
/// name is never overwritten; those created before a failure are deleted.
async fn config_maps(
    connection: &Connection,
    spec: &Spec,
    bundle: &Bundle,
) -> Result<(), LaunchError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let chunks: Vec<&[u8]> = bundle.chunks().collect();
    let parts = chunks.len();
    let made = objects::config_maps(spec, &chunks, None);
    for ((index, config_map), chunk) in made.into_iter().enumerate().zip(&chunks) {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        let failure = match config_maps
            .create(&PostParams::default(), &config_map)
            .await
        {
            Ok(_) => continue,
            Err(error) if status_code(&error) == Some(409) => {
                taken_config_map(connection, spec, &name).await
            }
            Err(error) if status_code(&error) == Some(404) => {
                LaunchError::NoNamespace(spec.namespace.clone())
            }
            Err(error) => LaunchError::BundleRefused {
                name: spec.name.clone(),
                part: index + 1,
                parts,
                size: chunk.len(),
                source: connection.explain(error),
            },
        };
        delete_config_maps(connection, spec, index).await;
        return Err(failure);
    }
    Ok(())
}

/// A bundle ConfigMap of the dproc's name exists: said of the dproc when
/// its Deployment is there (running already), else of the ConfigMap.
async fn taken_config_map(connection: &Connection, spec: &Spec, name: &str) -> LaunchError {
    if spec.background {
        let deployments: Api<Deployment> =
            Api::namespaced(connection.client.clone(), &spec.namespace);
        if let Ok(Some(existing)) = deployments.get_opt(&spec.name).await {
            return LaunchError::NameTaken(name_taken(
                "Deployment",
                &spec.name,
                Some(&existing.metadata),
            ));
        }
    }
    LaunchError::NameTaken(format!(
        "a ConfigMap named {name} already exists and kubesh will not overwrite it; \
         set SERVICE_NAME to launch under another name"
    ))
}

fn creation_error(connection: &Connection, spec: &Spec, error: kube::Error) -> LaunchError {
    if status_code(&error) == Some(404) {
        return LaunchError::NoNamespace(spec.namespace.clone());
    }
    LaunchError::Cluster(connection.explain(error))
}

fn name_taken(kind: &str, name: &str, existing: Option<&ObjectMeta>) -> String {
    let labels = existing.and_then(|m| m.labels.as_ref());
    let ours = labels.is_some_and(is_owned);
    if ours {
        let dproc = labels
            .and_then(|l| l.get(LABEL_DPROC))
            .cloned()
            .unwrap_or_default();
        format!(
            "{name} is already running ({dproc}); `kill {name}` first, or set SERVICE_NAME to run another copy"
        )
    } else {
        format!(
            "a {kind} named {name} already exists and was not created by kubesh, which will not \
             touch it; set SERVICE_NAME to launch under another name"
        )
    }
}

/// Points a background dproc at `spec.listen_port`: the Deployment's pod
/// template (its container port and readiness probe, so new pods replace
/// the unready ones) and the Service's target port. The Service's own port
/// and the program's `PORT` stay.
pub async fn retarget(connection: &Connection, spec: &Spec) -> Result<(), ClusterError> {
    let deployments: Api<Deployment> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let template = objects::deployment(spec).spec.template;
    let patch = serde_json::json!({ "spec": { "template": template } });
    deployments
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| connection.explain(e))?;
    let services: Api<Service> = Api::namespaced(connection.client.clone(), &spec.namespace);
    let ports = objects::service(spec, None).spec.and_then(|s| s.ports);
    let patch = serde_json::json!({ "spec": { "ports": ports } });
    services
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| connection.explain(e))?;
    Ok(())
}
