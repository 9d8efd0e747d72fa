//! Pushing a built image to the registry `KUBESH_REGISTRY` names, through
//! the engine (tagged there as `REGISTRY/kubesh-build/NAME:HASH`), with
//! the credentials of the user's Docker config (`auth`); an image the
//! registry has already under that name is not pushed again. One updating
//! line shows the push.

use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use futures_util::StreamExt;

use super::{Delivered, DeliveryError, Registry, auth};
use crate::launch::bundle::human;
use crate::launch::spinner::Spinner;
use kubesh_engine::engine_message;

/// Pushes `tag` to `registry` unless it has it already.
///
/// # Errors
/// The engine refuses the tag, the Docker config or its helper fails,
/// or the registry refuses the push (in its own words).
pub async fn push(
    docker: &Docker,
    address: &str,
    tag: &str,
    registry: &Registry,
    show_progress: bool,
) -> Result<Delivered, DeliveryError> {
    let reference = registry.reference(tag);
    let (repository, version) = reference
        .rsplit_once(':')
        .unwrap_or((reference.as_str(), "latest"));
    docker
        .tag_image(
            tag,
            Some(TagImageOptions {
                repo: Some(repository.to_string()),
                tag: Some(version.to_string()),
            }),
        )
        .await
        .map_err(|e| DeliveryError::Engine {
            address: address.to_string(),
            doing: format!("tag {tag} as {reference}"),
            message: engine_message(&e),
        })?;
    let credentials = auth::credentials(&registry.host)?;
    // The engine asks the registry for the name's manifest: there, with
    // the same content hash in its tag, it is this very image.
    if docker
        .inspect_registry_image(&reference, credentials.clone())
        .await
        .is_ok()
    {
        return Ok(Delivered::AlreadyPushed);
    }
    let began = Instant::now();
    let spinner = if show_progress {
        Spinner::new(&format!("pushing {reference}"))
    } else {
        Spinner::silent()
    };
    let options = PushImageOptions {
        tag: Some(version.to_string()),
        ..PushImageOptions::default()
    };
    let mut stream = docker.push_image(repository, Some(options), credentials);
    let failed = |message: String| DeliveryError::PushFailed {
        reference: reference.clone(),
        host: registry.host.clone(),
        message,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    spinner.finish_and_clear();
                    return Err(failed(message.trim().to_string()));
                }
                let status = info.status.unwrap_or_default();
                let progress = info
                    .progress_detail
                    .and_then(|p| Some((p.current?, p.total?)))
                    .filter(|(_, total)| *total > 0)
                    .map(|(current, total)| {
                        format!(
                            " {} of {}",
                            human(current.max(0) as u64),
                            human(total as u64)
                        )
                    })
                    .unwrap_or_default();
                if !status.is_empty() {
                    spinner.set_message(format!("pushing {reference}: {status}{progress}"));
                }
            }
            Err(error) => {
                spinner.finish_and_clear();
                return Err(failed(engine_message(&error)));
            }
        }
    }
    spinner.finish_and_clear();
    Ok(Delivered::Pushed {
        reference,
        took: began.elapsed(),
    })
}
