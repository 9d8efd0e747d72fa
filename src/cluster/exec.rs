//! Running a command in a pod's container over `pods/exec`: bytes in on
//! stdin, then its output and how it ended; or started first and given
//! its stdin later, when the connection should be made in advance.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess};
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
/// closing it; with no bytes to write, the command gets no stdin at all
/// (as `kubectl exec` without `-i`): over the older exec protocol (v4)
/// closing stdin closes the whole stream, and the output with it. An
/// `Err` means the exec itself was refused or failed (RBAC, no such pod,
/// the connection); it names the pod.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: &[u8],
) -> Result<ExecOutput, ExecError> {
    Ok(open(
        client,
        namespace,
        pod,
        container,
        command,
        !stdin.is_empty(),
    )
    .await?
    .finish(stdin, StdinEnd::Close)
    .await)
}

/// The most stdin bytes sent in one WebSocket message (the client's
/// framing). A second message can wait for the server to acknowledge the
/// first, tens of milliseconds when the connection delays small packets:
/// whoever needs stdin quickly sends at most this much.
pub const STDIN_MESSAGE: usize = 4096;

/// How much stdin is buffered before the connection takes it: enough that
/// a message is always full, never cut at the buffer's size.
const STDIN_BUFFER: usize = 64 * 1024;

/// A command started in a container over `pods/exec`, its stdin not yet
/// written: the connection and the process exist, so that writing to it
/// later costs no round trip. Dropped unfinished, the connection closes
/// and the command sees its stdin end (or is killed).
pub struct Started {
    process: AttachedProcess,
}

/// Starts `command` in `container` of `pod` with its stdin open (see
/// [`Started::finish`]). An `Err` means the exec itself was refused or
/// failed (RBAC, no such pod, the connection); it names the pod.
pub async fn start(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: Vec<String>,
) -> Result<Started, ExecError> {
    open(client, namespace, pod, container, command, true).await
}

/// Starts `command`, with a stdin or without.
async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: bool,
) -> Result<Started, ExecError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(true)
        .max_stdin_buf_size(STDIN_BUFFER);
    let process = pods
        .exec(pod, command, &params)
        .await
        .map_err(|error| ExecError {
            pod: pod.to_string(),
            source: explain("the cluster", error),
        })?;
    Ok(Started { process })
}

/// What becomes of a command's stdin once its bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinEnd {
    /// Closed: the command reads to its end.
    Close,
    /// Left open until the command has ended, for a command that knows
    /// how much to read. Over the older exec protocol (v4) the client can
    /// close stdin only by closing the whole connection, and the output or
    /// exit status sent after that may be lost; and the message that
    /// closes it can be held back behind the bytes.
    KeepOpen,
}

impl Started {
    /// Writes `stdin` to the command, closes it or not (`end`), and waits
    /// for the command to end: what it printed and how it ended.
    pub async fn finish(mut self, stdin: &[u8], end: StdinEnd) -> ExecOutput {
        let process = &mut self.process;
        let status = process.take_status();
        let mut input = process.stdin();
        let mut stdout = process.stdout();
        let mut stderr = process.stderr();
        let write = async {
            let mut input = input.take()?;
            // A command that exits without reading everything is not an error.
            let _ = input.write_all(stdin).await;
            match end {
                StdinEnd::Close => {
                    let _ = input.shutdown().await;
                    None
                }
                StdinEnd::KeepOpen => Some(input),
            }
        };
        let read_out = read_all(stdout.as_mut());
        let read_err = read_all(stderr.as_mut());
        let (open, out, err) = tokio::join!(write, read_out, read_err);
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        drop(open);
        let _ = self.process.join().await;
        ExecOutput {
            exit: exit_of(status),
            stdout: out,
            stderr: err,
        }
    }
}

/// How a command ended, from the status the API server sent at its end.
fn exit_of(status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>) -> Exit {
    match status {
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
    }
}

async fn read_all(reader: Option<&mut (impl tokio::io::AsyncRead + Unpin)>) -> String {
    let mut bytes = Vec::new();
    if let Some(reader) = reader {
        let _ = reader.read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
