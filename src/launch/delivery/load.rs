//! Loading an image into nodes that are containers on the same Docker
//! engine (kind; minikube with the Docker driver), as `kind load
//! docker-image` and `minikube image load` do: the image is exported from
//! the engine (`docker save`) and streamed into an exec in each node
//! container, to the node runtime's own import (`ctr … images import`,
//! `docker load`, `podman load`), unless the node has it already. One
//! updating line shows how much has gone to which node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{Delivered, DeliveryError, EngineContainer, LoadFailure, Loader, NodeTarget};
use crate::launch::bundle::human;
use crate::launch::spinner::Spinner;
use kubesh_engine::engine_message;

/// How much of a command's output is kept for its message.
const OUTPUT_KEPT: usize = 8 * 1024;

/// The containers running on the engine.
///
/// # Errors
/// The engine refuses to list them.
pub async fn containers(
    docker: &Docker,
    address: &str,
) -> Result<Vec<EngineContainer>, DeliveryError> {
    let listed = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .map_err(|e| DeliveryError::Engine {
            address: address.to_string(),
            doing: "list its containers".into(),
            message: engine_message(&e),
        })?;
    Ok(listed
        .into_iter()
        .map(|summary| EngineContainer {
            id: summary.id.unwrap_or_default(),
            name: summary
                .names
                .unwrap_or_default()
                .first()
                .map(|name| name.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            labels: summary.labels.unwrap_or_else(HashMap::new),
        })
        .collect())
}

/// What a command run in a node container came to.
struct Ran {
    /// Its exit status, when the engine tells it.
    status: Option<i64>,
    /// Its output and error output, the last `OUTPUT_KEPT` bytes.
    output: String,
}

impl Ran {
    fn succeeded(&self) -> bool {
        self.status == Some(0)
    }

    /// The status, for a sentence: `exited with status 1`.
    fn status_said(&self) -> String {
        match self.status {
            Some(code) => format!("exited with status {code}"),
            None => "ended without a status".to_string(),
        }
    }
}

/// Why feeding an image to a command stopped.
enum Feed {
    /// The engine's export failed.
    Export(bollard::errors::Error),
    /// The command stopped reading (it ended: its status says why).
    Write,
}

/// Runs `command` in `container`; with `image`, feeds the engine's export
/// of it to the command's stdin, reporting how much has gone.
async fn run(
    docker: &Docker,
    container: &str,
    command: &[String],
    image: Option<&str>,
    progress: &dyn Fn(u64),
) -> Result<(Ran, Option<bollard::errors::Error>), bollard::errors::Error> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(command.to_vec()),
                attach_stdin: Some(image.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..CreateExecOptions::default()
            },
        )
        .await?;
    let StartExecResults::Attached {
        mut output,
        input: mut stdin,
    } = docker.start_exec(&exec.id, None).await?
    else {
        return Ok((
            Ran {
                status: None,
                output: String::new(),
            },
            None,
        ));
    };
    let write = async {
        let mut fed = Ok(());
        if let Some(image) = image {
            let mut export = docker.export_image(image);
            let mut sent = 0u64;
            while let Some(chunk) = export.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        fed = Err(Feed::Export(error));
                        break;
                    }
                };
                if stdin.write_all(&chunk).await.is_err() {
                    fed = Err(Feed::Write);
                    break;
                }
                sent += chunk.len() as u64;
                progress(sent);
            }
        }
        // However it went, the command sees the end of its input.
        let _ = stdin.shutdown().await;
        fed
    };
    let read = async {
        let mut text: Vec<u8> = Vec::new();
        while let Some(Ok(item)) = output.next().await {
            text.extend_from_slice(&item.into_bytes());
            if text.len() > 2 * OUTPUT_KEPT {
                text.drain(..text.len() - OUTPUT_KEPT);
            }
        }
        if text.len() > OUTPUT_KEPT {
            text.drain(..text.len() - OUTPUT_KEPT);
        }
        String::from_utf8_lossy(&text).trim_end().to_string()
    };
    // The output ends when the command does, whether or not it read all
    // of its input: the rest is not sent.
    tokio::pin!(write, read);
    let mut fed = None;
    let output = loop {
        tokio::select! {
            result = &mut write, if fed.is_none() => fed = Some(result),
            output = &mut read => break output,
        }
    };
    // The output ends as the command does; the engine may record its
    // status a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let inspected = docker.inspect_exec(&exec.id).await?;
        if inspected.running != Some(true) || Instant::now() > deadline {
            break inspected.exit_code;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let export_failed = match fed {
        Some(Err(Feed::Export(error))) => Some(error),
        Some(Ok(()) | Err(Feed::Write)) | None => None,
    };
    Ok((Ran { status, output }, export_failed))
}

/// The command that imports an image archive from stdin on a node.
fn import_command(loader: Loader, snapshotter: Option<&str>) -> Vec<String> {
    let words: Vec<String> = match loader {
        Loader::Containerd => {
            let mut words: Vec<String> = [
                "ctr",
                "--namespace=k8s.io",
                "images",
                "import",
                "--all-platforms",
                "--digests",
            ]
            .map(String::from)
            .to_vec();
            if let Some(snapshotter) = snapshotter {
                words.push(format!("--snapshotter={snapshotter}"));
            }
            words.push("-".into());
            words
        }
        Loader::Docker => ["docker", "load"].map(String::from).to_vec(),
        Loader::Podman => ["podman", "load"].map(String::from).to_vec(),
    };
    words
}

/// The command whose success says the node has `image` already.
fn has_command(loader: Loader, image: &str) -> Vec<String> {
    let words: &[&str] = match loader {
        Loader::Containerd | Loader::Podman => &["crictl", "inspecti", image],
        Loader::Docker => &["docker", "image", "inspect", image],
    };
    words.iter().map(|word| word.to_string()).collect()
}

/// The snapshotter the node's containerd gives the CRI's images, from
/// its `containerd config dump` (config version 2, or 3 and later), as
/// kind passes it to `ctr images import`; `None` when it cannot be told,
/// and `ctr` uses its default.
fn snapshotter(config: &str) -> Option<String> {
    let parsed: toml::Table = toml::from_str(config).ok()?;
    let version = parsed.get("version")?.as_integer()?;
    let plugins = parsed.get("plugins")?;
    let found = match version {
        2 => plugins
            .get("io.containerd.grpc.v1.cri")?
            .get("containerd")?
            .get("snapshotter")?,
        _ => plugins
            .get("io.containerd.cri.v1.images")?
            .get("snapshotter")?,
    };
    found
        .as_str()
        .filter(|s| !s.is_empty())
        .map(ToString::to_string)
}

/// Loads `tag` into each of `targets` that does not have it yet.
///
/// # Errors
/// The engine refuses an exec or the export, or a node's import fails
/// (with its own output).
pub async fn load(
    docker: &Docker,
    address: &str,
    tag: &str,
    targets: &[NodeTarget],
    show_progress: bool,
) -> Result<Delivered, DeliveryError> {
    let began = Instant::now();
    let engine = |doing: String, error: &bollard::errors::Error| DeliveryError::Engine {
        address: address.to_string(),
        doing,
        message: engine_message(error),
    };
    let spinner = if show_progress {
        Spinner::new(&format!("loading {tag} into the nodes"))
    } else {
        Spinner::silent()
    };
    let mut loaded = Vec::new();
    for target in targets {
        let on = |what: &str| format!("{what} in the {} node {}", target.flavour, target.node);
        let quiet = |_: u64| {};
        let (has, _) = run(
            docker,
            &target.container,
            &has_command(target.loader, tag),
            None,
            &quiet,
        )
        .await
        .map_err(|e| engine(on("run a command"), &e))?;
        if has.succeeded() {
            continue;
        }
        let snapshotter = if target.loader == Loader::Containerd {
            let dump = ["containerd", "config", "dump"].map(String::from);
            let (dumped, _) = run(docker, &target.container, &dump, None, &quiet)
                .await
                .map_err(|e| engine(on("run a command"), &e))?;
            dumped
                .succeeded()
                .then(|| snapshotter(&dumped.output))
                .flatten()
        } else {
            None
        };
        let command = import_command(target.loader, snapshotter.as_deref());
        let node = format!("{tag} into the {} node {}", target.flavour, target.node);
        spinner.set_message(format!("loading {node}"));
        // The size first: a narrow terminal cuts the end of the line.
        let progress =
            |sent: u64| spinner.set_message(format!("loading {} of {node}", human(sent)));
        let (ran, export_failed) = run(docker, &target.container, &command, Some(tag), &progress)
            .await
            .map_err(|e| engine(on("run the image's import"), &e))?;
        if let Some(error) = export_failed {
            spinner.finish_and_clear();
            return Err(engine(format!("export {tag}"), &error));
        }
        if !ran.succeeded() {
            spinner.finish_and_clear();
            return Err(DeliveryError::LoadFailed(Box::new(LoadFailure {
                tag: tag.to_string(),
                flavour: target.flavour.to_string(),
                node: target.node.clone(),
                command: command.join(" "),
                status: ran.status_said(),
                output: ran.output,
            })));
        }
        loaded.push(target.node.clone());
    }
    spinner.finish_and_clear();
    match (loaded.is_empty(), targets.first()) {
        (false, Some(first)) => Ok(Delivered::Loaded {
            flavour: first.flavour.clone(),
            nodes: loaded,
            took: began.elapsed(),
        }),
        _ => Ok(Delivered::AlreadyLoaded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_is_the_node_runtime_s_own() {
        assert_eq!(
            import_command(Loader::Containerd, Some("overlayfs")).join(" "),
            "ctr --namespace=k8s.io images import --all-platforms --digests \
             --snapshotter=overlayfs -"
        );
        assert_eq!(
            import_command(Loader::Containerd, None).join(" "),
            "ctr --namespace=k8s.io images import --all-platforms --digests -"
        );
        assert_eq!(
            import_command(Loader::Docker, None).join(" "),
            "docker load"
        );
        assert_eq!(
            import_command(Loader::Podman, None).join(" "),
            "podman load"
        );
    }

    #[test]
    fn the_snapshotter_is_read_from_containerd_s_config_of_either_version() {
        let v2 = r#"
version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
"#;
        assert_eq!(snapshotter(v2).as_deref(), Some("overlayfs"));
        let v3 = r#"
version = 3
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"
"#;
        assert_eq!(snapshotter(v3).as_deref(), Some("native"));
        assert_eq!(snapshotter("not toml ["), None);
        assert_eq!(snapshotter("version = 2\n"), None);
    }
}
