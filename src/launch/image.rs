//! Programs whose directory brings a Dockerfile (or names one with
//! `BUILD=path`): the image built from it through the local Docker engine
//! (bollard), from the same files the bundle ships and the build arguments
//! of `BUILD_ARGS`, with the engine's cache, tagged by content so that the
//! same inputs never build twice.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use kubesh_engine::{ConnectError, engine_address, engine_message};
use sha2::{Digest, Sha256};

use super::bundle::Bundle;
use super::program::Program;
use super::spinner::Spinner;
use crate::printer::Printer;

/// An image to build for a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The Dockerfile's path inside the program's directory.
    pub dockerfile: String,
    /// The build arguments (`BUILD_ARGS`), by name.
    pub args: BTreeMap<String, String>,
    /// The image's tag: its repository and a hash of what it is built from.
    pub tag: String,
}

/// What a save needs to build a dproc's image again and deliver it as
/// its launch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    pub build: Build,
    /// `KUBESH_REGISTRY` as the launch had it.
    pub registry: Option<String>,
    /// The cluster, as messages name it ("the cluster of context X").
    pub cluster: String,
    /// The API server's address, for messages.
    pub server: String,
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
    #[error(
        "BUILD_ARGS: `{0}` is not KEY=VALUE; give each build argument as NAME=value, separated \
         by spaces, and quote a value with spaces in it: BUILD_ARGS='GREETING=\"hello there\"'"
    )]
    NotKeyValue(String),
    #[error(
        "BUILD_ARGS has a quote that is not closed ({0}); quote each value that has spaces in \
         it whole: BUILD_ARGS='GREETING=\"hello there\"'"
    )]
    UnclosedQuote(String),
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
/// directory), else a `Dockerfile` shipped beside it; built with the
/// arguments of `BUILD_ARGS`.
///
/// # Errors
/// `BUILD` names a file that is not shipped, or `BUILD_ARGS` has a word
/// that is not `KEY=VALUE`.
pub fn wanted(
    program: &Program,
    build: Option<&str>,
    build_args: Option<&str>,
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
    let args = build_args_of(build_args.unwrap_or(""))?;
    let mut build = Build {
        dockerfile,
        args,
        tag: String::new(),
    };
    build.tag = build.tag_for(&program.name, bundle);
    Ok(Some(build))
}

/// The build arguments of `BUILD_ARGS`: words split as a shell splits
/// them, each `KEY=VALUE`; a name given twice has its last value, as with
/// `docker build --build-arg`.
///
/// # Errors
/// A word that is not `KEY=VALUE` (a name of letters, digits and `_`, not
/// starting with a digit), or a quote left open.
pub fn build_args_of(text: &str) -> Result<BTreeMap<String, String>, BuildError> {
    let words = shlex::split(text).ok_or_else(|| BuildError::UnclosedQuote(text.to_string()))?;
    let mut args = BTreeMap::new();
    for word in words {
        let shown = || {
            if word.is_empty() {
                "''".to_string()
            } else {
                word.clone()
            }
        };
        let Some((key, value)) = word.split_once('=') else {
            return Err(BuildError::NotKeyValue(shown()));
        };
        let name = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name {
            return Err(BuildError::NotKeyValue(shown()));
        }
        args.insert(key.to_string(), value.to_string());
    }
    Ok(args)
}

impl Build {
    /// The tag of this build from `bundle`, for the program `program`:
    /// `kubesh-build/NAME:HASH`, the hash of the files, the Dockerfile's
    /// path and the build arguments.
    pub fn tag_for(&self, program: &str, bundle: &Bundle) -> String {
        let name = super::names::service_name(program).unwrap_or_else(|| "program".into());
        let mut hash = Sha256::new();
        hash.update(bundle.hash.as_bytes());
        hash.update([0]);
        hash.update(self.dockerfile.as_bytes());
        for (key, value) in &self.args {
            hash.update([0]);
            hash.update(key.as_bytes());
            hash.update([b'=']);
            hash.update(value.as_bytes());
        }
        let digest = hash.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("kubesh-build/{name}:{hex}")
    }

    /// The build arguments as `KEY=VALUE` words, quoted where needed
    /// (empty without any).
    pub fn shown_args(&self) -> String {
        self.args
            .iter()
            .map(|(key, value)| format!("{key}={}", crate::syntax::quote(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where a build's progress goes.
pub enum Progress {
    /// The updating line on stderr, the step it is at (a launch, which
    /// holds the terminal).
    Line,
    /// One line through a printer as the build starts (a rebuild on a
    /// save, while the prompt may be waiting: a line redrawn in place
    /// would be drawn over it).
    Printed(Printer),
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
pub async fn build(
    program: &str,
    build: &Build,
    bundle: &Bundle,
    progress: Progress,
) -> Result<Built, BuildError> {
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
    let starting = format!("building {} ({})", build.tag, build.dockerfile);
    let spinner = match progress {
        Progress::Line => Some(Spinner::new(&starting)),
        Progress::Printed(printer) => {
            printer(starting);
            None
        }
    };
    let say = |step: String| {
        if let Some(spinner) = &spinner {
            spinner.set_message(step);
        }
    };
    let finish = || {
        if let Some(spinner) = &spinner {
            spinner.finish_and_clear();
        }
    };
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: build.dockerfile.clone(),
        t: Some(build.tag.clone()),
        rm: true,
        forcerm: true,
        buildargs: (!build.args.is_empty()).then(|| {
            build
                .args
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        }),
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
                            say(format!("building {}: {line}", build.tag));
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
                finish();
                return Err(BuildError::Refused {
                    address,
                    tag: build.tag.clone(),
                    message: engine_message(&other),
                });
            }
        }
    };
    finish();
    match result {
        Ok(()) => Ok(Built::Now(began.elapsed())),
        Err(_) => Err(BuildError::Failed {
            dockerfile: build.dockerfile.clone(),
            step,
            output: output.trim_end().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<(String, String)> {
        build_args_of(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_iter()
            .collect()
    }

    #[test]
    fn build_args_are_key_value_words_split_as_a_shell_does() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(args(""), []);
        assert_eq!(
            args("GREETING=\"hello there\" VERSION=3 EMPTY="),
            [
                pair("EMPTY", ""),
                pair("GREETING", "hello there"),
                pair("VERSION", "3")
            ]
        );
        assert_eq!(args("A=1 A=2 _B=x=y"), [pair("A", "2"), pair("_B", "x=y")]);
    }

    #[test]
    fn a_word_that_is_not_key_value_is_refused_by_name() {
        for (text, word) in [
            ("GREETING", "GREETING"),
            ("A=1 =2", "=2"),
            ("1A=x", "1A=x"),
            ("A-B=x", "A-B=x"),
            ("A=1 ''", "''"),
        ] {
            let error = build_args_of(text).expect_err(text).to_string();
            assert!(
                error.starts_with(&format!("BUILD_ARGS: `{word}` is not KEY=VALUE;")),
                "{text}: {error}"
            );
        }
        let open = build_args_of("A=\"open").expect_err("open quote");
        assert!(open.to_string().contains("not closed"), "{open}");
    }

    #[test]
    fn different_build_args_make_a_different_tag() {
        let bundle = Bundle::nothing();
        let build = |text: &str| Build {
            dockerfile: "Dockerfile".into(),
            args: build_args_of(text).expect("args"),
            tag: String::new(),
        };
        let tag = |text: &str| build(text).tag_for("web", &bundle);
        assert!(tag("").starts_with("kubesh-build/web:"), "{}", tag(""));
        assert_eq!(tag("A=1 B=2"), tag("B=2 A=1"));
        assert_ne!(tag(""), tag("A=1"));
        assert_ne!(tag("A=1"), tag("A=2"));
        assert_ne!(tag("A=1 B=2"), tag("A=1B=2"));
        assert_eq!(build("B='x y' A=1").shown_args(), "A=1 B='x y'");
    }
}
