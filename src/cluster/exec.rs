//! Running a command in a pod's container over `pods/exec`: bytes in on
//! stdin, then its output and how it ended.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connection::{ClusterError, explain};

/// The exec itself was refused or failed (RBAC, no such pod, the
/// connection).
#[derive(Debug, thiserror::Error)]
#[error("exec in pod {pod} failed: {}", .source.reason())]
pub struct ExecError {
    pub pod: String,
    #[source]
    pub source: ClusterError,
}

/// How a command run in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It ran and exited with this status.
    Status(i32),
    /// The container runtime could not run it (no such executable, the
    /// container is not running…); the cluster's message.
    NotRun(String),
}

/// What the command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` in `container` of `pod`, writing `stdin` to it and then
/// closing it. An `Err` means the exec itself was refused or failed (RBAC,
/// no such pod, the connection); it names the pod.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: &[u8],
) -> Result<ExecOutput, ExecError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let mut process = pods
        .exec(pod, command, &params)
        .await
        .map_err(|error| ExecError {
            pod: pod.to_string(),
            source: explain("the cluster", error),
        })?;
    let status = process.take_status();
    let mut input = process.stdin();
    let mut stdout = process.stdout();
    let mut stderr = process.stderr();
    let write = async {
        if let Some(mut input) = input.take() {
            // A command that exits without reading everything is not an error.
            let _ = input.write_all(stdin).await;
            let _ = input.shutdown().await;
        }
    };
    let read_out = read_all(stdout.as_mut());
    let read_err = read_all(stderr.as_mut());
    let ((), out, err) = tokio::join!(write, read_out, read_err);
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    let _ = process.join().await;
    let exit = match status {
        None => Exit::NotRun("the connection ended before the command's status arrived".into()),
        Some(status) if status.status.as_deref() == Some("Success") => Exit::Status(0),
        Some(status) => {
            let code = status
                .details
                .as_ref()
                .and_then(|d| d.causes.as_ref())
                .and_then(|causes| {
                    causes
                        .iter()
                        .find(|c| c.reason.as_deref() == Some("ExitCode"))
                })
                .and_then(|c| c.message.as_deref())
                .and_then(|m| m.parse().ok());
            match code {
                Some(code) => Exit::Status(code),
                None => Exit::NotRun(if status.message.is_some() {
                    status.message.unwrap_or_default()
                } else {
                    status.reason.unwrap_or_default()
                }),
            }
        }
    };
    Ok(ExecOutput {
        exit,
        stdout: out,
        stderr: err,
    })
}

async fn read_all(reader: Option<&mut (impl tokio::io::AsyncRead + Unpin)>) -> String {
    let mut bytes = Vec::new();
    if let Some(reader) = reader {
        let _ = reader.read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
