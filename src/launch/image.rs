//! Programs whose directory brings a Dockerfile (or names one with
//! `BUILD=path`): the image built from it through the local Docker engine
//! (bollard), from the same files the bundle ships, with the engine's
//! cache, tagged by content so that the same inputs never build twice.

use futures_util::StreamExt;
use kubesh_engine::{ConnectError, engine_address, engine_message};
use sha2::{Digest, Sha256};

use super::bundle::Bundle;
use super::program::Program;
use super::spinner::Spinner;

/// An image to build for a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The Dockerfile's path inside the program's directory.
    pub dockerfile: String,
    /// The image's tag: its repository and a hash of what it is built from.
    pub tag: String,
}

/// Why the image of a program cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{program} comes with {dockerfile}, which needs a Docker engine to be built, and there \
         is none at {address} ({reason}); start Docker (or point DOCKER_HOST at an engine), or \
         move {dockerfile} out of the directory to run the program in its runtime's image"
    )]
    NoEngine {
        program: String,
        dockerfile: String,
        address: String,
        reason: String,
    },
    #[error("BUILD={0:?} names no file shipped with the program (in {1})")]
    NoDockerfile(String, String),
    #[error("the Docker engine at {address} refused to build {tag}: {message}")]
    Refused {
        address: String,
        tag: String,
        message: String,
    },
    #[error("building {dockerfile} failed{}:\n{output}", match .step { Some(step) => format!(" at {step}"), None => String::new() })]
    Failed {
        dockerfile: String,
        step: Option<String>,
        output: String,
    },
}

/// The image a program needs built, if any: `BUILD` (a path inside its
/// directory), else a `Dockerfile` shipped beside it.
///
/// # Errors
/// `BUILD` names a file that is not shipped.
pub fn wanted(
    program: &Program,
    build: Option<&str>,
    bundle: &Bundle,
) -> Result<Option<Build>, BuildError> {
    let Some(files) = &program.files else {
        return Ok(None);
    };
    let dockerfile = match build {
        Some(path) => {
            let path = path.trim_start_matches("./");
            if !bundle.files.contains_key(path) {
                return Err(BuildError::NoDockerfile(
                    path.to_string(),
                    files.root.display().to_string(),
                ));
            }
            path.to_string()
        }
        None if bundle.files.contains_key("Dockerfile") => "Dockerfile".to_string(),
        None => return Ok(None),
    };
    let name = super::names::service_name(&program.name).unwrap_or_else(|| "program".into());
    let mut hash = Sha256::new();
    hash.update(bundle.hash.as_bytes());
    hash.update([0]);
    hash.update(dockerfile.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(Some(Build {
        dockerfile,
        tag: format!("kubesh-build/{name}:{hex}"),
    }))
}

/// What a build came to.
pub enum Built {
    /// The engine had the image of these inputs already.
    AlreadyThere,
    /// Built now, in this long.
    Now(std::time::Duration),
}

/// Builds `build` from the bundle's files unless the engine has its tag
/// already, showing the build's progress as one line that updates.
///
/// # Errors
/// No engine answers, it refuses, or the build fails (with the failing
/// step and its output in full).
pub async fn build(program: &str, build: &Build, bundle: &Bundle) -> Result<Built, BuildError> {
    let docker = kubesh_engine::connect().await.map_err(|e| match e {
        // An engine that is there but refuses (the socket's permissions)
        // is named with its own words; otherwise there is none.
        ConnectError::Refused { address, reason } => BuildError::Refused {
            address,
            tag: build.tag.clone(),
            message: reason,
        },
        other => BuildError::NoEngine {
            program: program.to_string(),
            dockerfile: build.dockerfile.clone(),
            address: other.address().to_string(),
            reason: other.reason(),
        },
    })?;
    let address = engine_address();
    if docker.inspect_image(&build.tag).await.is_ok() {
        return Ok(Built::AlreadyThere);
    }
    let began = std::time::Instant::now();
    let spinner = Spinner::new(&format!("building {} ({})", build.tag, build.dockerfile));
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: build.dockerfile.clone(),
        t: Some(build.tag.clone()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_full(bytes::Bytes::from(bundle.archive.clone()));
    let mut stream = docker.build_image(options, None, Some(body));
    let mut step: Option<String> = None;
    let mut output = String::new();
    let result = loop {
        let Some(item) = stream.next().await else {
            break Ok(());
        };
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    output.push_str(&detail);
                    break Err(detail);
                }
                if let Some(text) = info.stream {
                    for line in text.lines() {
                        if line.starts_with("Step ") {
                            step = Some(line.to_string());
                            output.clear();
                            spinner.set_message(format!("building {}: {line}", build.tag));
                        } else if !line.trim().is_empty() {
                            output.push_str(line);
                            output.push('\n');
                        }
                    }
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                output.push_str(&error);
                break Err(error);
            }
            Err(other) => {
                spinner.finish_and_clear();
                return Err(BuildError::Refused {
                    address,
                    tag: build.tag.clone(),
                    message: engine_message(&other),
                });
            }
        }
    };
    spinner.finish_and_clear();
    match result {
        Ok(()) => Ok(Built::Now(began.elapsed())),
        Err(_) => Err(BuildError::Failed {
            dockerfile: build.dockerfile.clone(),
            step,
            output: output.trim_end().to_string(),
        }),
    }
}
