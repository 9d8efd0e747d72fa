//! The images kubesh built that the local Docker engine has: those tagged
//! `kubesh-build/NAME:HASH`, and the same pushed to a registry
//! (`REGISTRY/kubesh-build/NAME:HASH`), for `img`.

use kubesh_engine::{ConnectError, engine_address, engine_message};

/// One tag of an image kubesh built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The tag as the engine has it: `kubesh-build/web:0a1b…` or
    /// `registry.example:5000/kubesh-build/web:0a1b…`.
    pub reference: String,
    /// Bytes on the engine's disk.
    pub size: i64,
    /// When it was built, in seconds since the epoch.
    pub created: i64,
}

/// Why the engine's images could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(
        "no Docker engine at {address} ({reason}), so there are no built images to list; start \
         Docker (or point DOCKER_HOST at the engine kubesh builds with)"
    )]
    NoEngine { address: String, reason: String },
    #[error("the Docker engine at {address} refused the connection ({reason}); {advice}")]
    Refused {
        address: String,
        reason: String,
        advice: &'static str,
    },
    #[error("cannot start the client of the Docker engine: {0}")]
    Client(#[source] std::io::Error),
    #[error(
        "the Docker engine at {address} did not list its images ({message}); try again, or see \
         `docker images`"
    )]
    Listing { address: String, message: String },
}

/// The `kubesh-build/NAME:HASH` part of an image reference kubesh built,
/// with or without a registry before it; `None` for any other image.
pub fn built_part(reference: &str) -> Option<&str> {
    const REPOSITORY: &str = "kubesh-build/";
    let start = if reference.starts_with(REPOSITORY) {
        0
    } else {
        reference.find(&format!("/{REPOSITORY}"))? + 1
    };
    let part = &reference[start..];
    let name = part.strip_prefix(REPOSITORY)?;
    (!name.is_empty() && !name.contains('/')).then_some(part)
}

/// [`list`], waited for on a runtime of its own (a builtin runs outside
/// any).
///
/// # Errors
/// As [`list`], or no runtime can be started.
pub fn list_now() -> Result<Vec<BuiltImage>, ListError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ListError::Client)?
        .block_on(list())
}

/// The tags of the images kubesh built that the engine has, newest first.
///
/// # Errors
/// No engine answers, it refuses this user, or the listing fails.
pub async fn list() -> Result<Vec<BuiltImage>, ListError> {
    let docker = connect().await?;
    let summaries = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .map_err(|e| ListError::Listing {
            address: engine_address(),
            message: engine_message(&e),
        })?;
    let mut images: Vec<BuiltImage> = summaries
        .iter()
        .flat_map(|summary| {
            summary
                .repo_tags
                .iter()
                .filter(|tag| built_part(tag).is_some())
                .map(|tag| BuiltImage {
                    reference: tag.clone(),
                    size: summary.size,
                    created: summary.created,
                })
        })
        .collect();
    images.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    Ok(images)
}

/// What became of one image `img prune` asked the engine to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub reference: String,
    /// The engine's words where it kept the image (a container uses it).
    pub kept: Option<String>,
}

/// Removes these tags from the engine (an image goes with its last tag),
/// one after the other, each refusal kept with the engine's words.
///
/// # Errors
/// No engine answers, it refuses this user, or no runtime can be started.
pub fn remove_now(references: &[String]) -> Result<Vec<Removal>, ListError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ListError::Client)?;
    runtime.block_on(async {
        let docker = connect().await?;
        let mut removals = Vec::new();
        for reference in references {
            let removed = docker
                .remove_image(
                    reference,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
            removals.push(Removal {
                reference: reference.clone(),
                kept: removed.err().map(|e| engine_message(&e)),
            });
        }
        Ok(removals)
    })
}

async fn connect() -> Result<kubesh_engine::Docker, ListError> {
    kubesh_engine::connect().await.map_err(|e| match e {
        ConnectError::Refused { address, reason } => ListError::Refused {
            address,
            reason,
            advice: "add this user to the docker group, or point DOCKER_HOST at an engine it may use",
        },
        other => ListError::NoEngine {
            address: other.address().to_string(),
            reason: other.reason(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_images_are_known_with_or_without_a_registry() {
        assert_eq!(
            built_part("kubesh-build/web:0a1b"),
            Some("kubesh-build/web:0a1b")
        );
        assert_eq!(
            built_part("registry.example:5000/kubesh-build/web:0a1b"),
            Some("kubesh-build/web:0a1b")
        );
        assert_eq!(
            built_part("registry.example/team/kubesh-build/web:0a1b"),
            Some("kubesh-build/web:0a1b")
        );
        for other in [
            "python:3.12-slim",
            "kubesh-test/busybox-bash:1",
            "my-kubesh-build/web:1",
            "kubesh-build/",
            "<none>:<none>",
        ] {
            assert_eq!(built_part(other), None, "{other}");
        }
    }
}
