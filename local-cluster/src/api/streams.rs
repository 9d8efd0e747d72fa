//! `pods/exec` and `pods/attach` (and the plumbing `pods/portforward`
//! shares) with the channel protocols kubectl, kube-rs and the Python
//! client speak: `v5.channel.k8s.io` and `v4.channel.k8s.io` over
//! WebSocket, where every message starts with its channel — 0 stdin,
//! 1 stdout, 2 stderr, 3 error (a `Status` at the end), 4 resize, 255 close
//! (v5: the client has no more input on the channel that follows) — and
//! `v4.channel.k8s.io` over SPDY/3.1 (kubectl 1.29 and older), where each
//! channel is a stream the client opens, named by its `streamType` header.
//! A session reads and writes a [`Link`], whatever carries it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::message::{Body, full, percent_decode};
use super::spdy;
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::kubelet::stdin::stdin_task;
use crate::resources;

/// The channel protocols of exec and attach over WebSocket that an API
/// server of Kubernetes 1.30 or later speaks, best first.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// Those of an API server before 1.30: v4 only, where a client can end
/// stdin only by closing the whole stream, the output and exit status
/// still to come included.
pub const PROTOCOLS_BEFORE_1_30: &[&str] = &["v4.channel.k8s.io"];

/// The variable that makes the local cluster speak exec and attach as an
/// older API server: `v4` (Kubernetes before 1.30); unset or `v5,v4`, as
/// a current one.
pub const PROTOCOLS_VARIABLE: &str = "KUBESH_LOCAL_EXEC_PROTOCOLS";

/// The channel protocols [`PROTOCOLS_VARIABLE`] asks for.
pub fn protocols_from_env() -> anyhow::Result<&'static [&'static str]> {
    match std::env::var(PROTOCOLS_VARIABLE) {
        Err(_) => Ok(PROTOCOLS),
        Ok(value) => match value.replace(' ', "").as_str() {
            "" | "v5,v4" => Ok(PROTOCOLS),
            "v4" => Ok(PROTOCOLS_BEFORE_1_30),
            other => anyhow::bail!(
                "{PROTOCOLS_VARIABLE}={other}: give `v4` (exec and attach as an API server \
                 before Kubernetes 1.30 speaks them) or `v5,v4` (as a current one)"
            ),
        },
    }
}

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Options of an exec or attach request.
#[derive(Clone)]
pub struct StreamOpts {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

fn truthy(value: &str) -> bool {
    value == "true" || value == "1"
}

/// Parses the query (with `command` repeated).
pub fn parse_opts(query: Option<&str>) -> StreamOpts {
    let mut opts = StreamOpts {
        command: Vec::new(),
        container: None,
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match percent_decode(key).as_str() {
            "command" => opts.command.push(value),
            "container" => opts.container = Some(value).filter(|c| !c.is_empty()),
            "stdin" => opts.stdin = truthy(&value),
            "stdout" => opts.stdout = truthy(&value),
            "stderr" => opts.stderr = truthy(&value),
            "tty" => opts.tty = truthy(&value),
            _ => {}
        }
    }
    opts
}

/// The upgraded connection of a streaming request.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The protocols offered in a header (comma-separated, maybe repeated).
fn offered(req: &Request<Incoming>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect()
}

fn upgrade_header_is(req: &Request<Incoming>, protocol: &str) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| {
            h.to_ascii_lowercase()
                .contains(&protocol.to_ascii_lowercase())
        })
}

/// Whether the request asks for a SPDY/3.1 connection.
pub fn wants_spdy(req: &Request<Incoming>) -> bool {
    upgrade_header_is(req, spdy::UPGRADE)
}

/// The WebSocket subprotocol both sides speak (the server's first choice
/// among those offered) and the accept key, if the request is a WebSocket
/// upgrade offering one of `served`.
pub fn negotiate_websocket(
    req: &Request<Incoming>,
    served: &[&'static str],
) -> ApiResult<(&'static str, String)> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|h| h.to_str().ok());
    let (true, Some(key)) = (upgrade_header_is(req, "websocket"), key) else {
        return Err(ApiError::bad_request(
            "unable to upgrade connection: the request must upgrade to WebSocket or SPDY/3.1",
        ));
    };
    let offered = offered(req, "sec-websocket-protocol");
    let proto = served
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unsupported streaming protocols {offered:?}; the local cluster speaks {served:?}"
            ))
        })?;
    Ok((proto, derive_accept_key(key.as_bytes())))
}

/// The `X-Stream-Protocol-Version` of a SPDY upgrade: the client's first
/// choice the server serves, as the API server's handshake picks it.
pub fn negotiate_spdy(req: &Request<Incoming>, served: &[&'static str]) -> ApiResult<&'static str> {
    let offered = offered(req, "x-stream-protocol-version");
    if offered.is_empty() {
        return Err(ApiError::bad_request(
            "unable to upgrade: X-Stream-Protocol-Version is required",
        ));
    }
    offered
        .iter()
        .find_map(|o| served.iter().find(|p| *p == o).copied())
        .ok_or_else(|| {
            ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {served:?}"
                ),
            )
        })
}

/// Answers a WebSocket upgrade with 101 (and the chosen subprotocol) and
/// hands the WebSocket to `session` once the connection has switched.
pub fn upgrade_websocket<F, Fut>(
    mut req: Request<Incoming>,
    proto: &'static str,
    accept: String,
    session: F,
) -> Response<Body>
where
    F: FnOnce(WebSocketStream<Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws).await;
    });
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert("sec-websocket-protocol", HeaderValue::from_static(proto));
    if let Ok(accept_value) = HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", accept_value);
    }
    response
}

/// Answers a SPDY upgrade with 101 (and the chosen stream protocol) and
/// hands the SPDY session to `session` once the connection has switched.
pub fn upgrade_spdy<F, Fut>(
    mut req: Request<Incoming>,
    proto: &'static str,
    session: F,
) -> Response<Body>
where
    F: FnOnce(spdy::Session) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        session(spdy::Session::start(TokioIo::new(upgraded))).await;
    });
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static(spdy::UPGRADE));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert("x-stream-protocol-version", HeaderValue::from_static(proto));
    response
}

/// The one of exec and attach over SPDY (kubectl offers it first; v1 to
/// v3 predate the `Status` on the error stream and are not served).
const SPDY_CHANNEL_PROTOCOLS: &[&str] = &["v4.channel.k8s.io"];

/// Upgrades an exec or attach request to whichever transport it asks for
/// (WebSocket, speaking one of `served`, or SPDY) and runs `session` on
/// the resulting [`Link`].
fn upgrade_channels<F, Fut>(
    req: Request<Incoming>,
    served: &[&'static str],
    opts: &StreamOpts,
    session: F,
) -> ApiResult<Response<Body>>
where
    F: FnOnce(Link) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if wants_spdy(&req) {
        let proto = negotiate_spdy(&req, SPDY_CHANNEL_PROTOCOLS)?;
        let expected = SpdyChannels::expected(opts);
        return Ok(upgrade_spdy(req, proto, move |session_conn| async move {
            if let Some(link) = spdy_link(session_conn, expected).await {
                session(link).await;
            }
        }));
    }
    let (proto, accept) = negotiate_websocket(&req, served)?;
    Ok(upgrade_websocket(req, proto, accept, move |ws| {
        session(websocket_link(ws))
    }))
}

/// A client's channels, whatever carries them: what the session sends
/// (channel, bytes) and what the client sent. The session ends by
/// dropping `tx` and awaiting `done`, which closes the connection once
/// everything sent has gone out.
pub struct Link {
    pub tx: mpsc::Sender<Chunk>,
    pub input: mpsc::Receiver<Input>,
    pub done: JoinHandle<()>,
}

impl Link {
    /// The next thing the client did; `Gone` once it went away.
    async fn next(&mut self) -> Input {
        self.input.recv().await.unwrap_or(Input::Gone)
    }

    /// Sends what is left, then closes (bounded: a client that stopped
    /// reading does not hold the session).
    async fn finish(self) {
        let Link { tx, input, done } = self;
        drop(tx);
        drop(input);
        let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
    }
}

/// Data for one channel.
pub type Chunk = (u8, Bytes);

/// The task that owns a WebSocket's sending half: it sends each chunk as
/// a binary message, channel byte first, then — once every sender is gone
/// — a normal closure, which the client reads as the end of every channel.
pub fn websocket_writer(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<Upgraded>, Message>,
) -> (mpsc::Sender<Chunk>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Chunk>(64);
    let done = tokio::spawn(async move {
        while let Some((ch, data)) = rx.recv().await {
            if sink.send(frame(ch, &data)).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        let _ = sink.close().await;
    });
    (tx, done)
}

/// A WebSocket as a [`Link`].
fn websocket_link(ws: WebSocketStream<Upgraded>) -> Link {
    let (sink, mut stream) = ws.split();
    let (tx, writer) = websocket_writer(sink);
    let (input_tx, input) = mpsc::channel::<Input>(64);
    let reader = tokio::spawn(async move {
        loop {
            let Some(decoded) = decode_input(stream.next().await) else {
                continue;
            };
            let gone = matches!(decoded, Input::Gone);
            if input_tx.send(decoded).await.is_err() || gone {
                return;
            }
        }
    });
    let done = tokio::spawn(async move {
        let _ = writer.await;
        reader.abort();
    });
    Link { tx, input, done }
}

/// How long a SPDY client has to open the streams its request asked for,
/// as the kubelet's default `streamCreationTimeout`.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The SPDY streams of an exec or attach, by channel.
#[derive(Default)]
struct SpdyChannels {
    expected: Vec<(&'static str, u8)>,
    ids: HashMap<u8, u32>,
}

impl SpdyChannels {
    /// The streams the kubelet waits for: error, and the requested ones
    /// (resize with a terminal, which carries no stderr).
    fn expected(opts: &StreamOpts) -> SpdyChannels {
        let mut expected = vec![("error", ERROR)];
        if opts.stdin {
            expected.push(("stdin", STDIN));
        }
        if opts.stdout {
            expected.push(("stdout", STDOUT));
        }
        if opts.stderr && !opts.tty {
            expected.push(("stderr", STDERR));
        }
        if opts.tty {
            expected.push(("resize", RESIZE));
        }
        SpdyChannels {
            expected,
            ids: HashMap::new(),
        }
    }

    fn channel_of(&self, id: u32) -> Option<u8> {
        self.ids
            .iter()
            .find(|(_, sid)| **sid == id)
            .map(|(ch, _)| *ch)
    }
}

/// What a SPDY client sent on a stream, as channel input.
fn spdy_input(
    channels: &SpdyChannels,
    event: spdy::Event,
    resize: &mut Vec<u8>,
    out: &mut Vec<Input>,
) {
    match event {
        spdy::Event::Data { id, data } => match channels.channel_of(id) {
            Some(STDIN) => out.push(Input::Stdin(data)),
            Some(RESIZE) => {
                // A stream of JSON objects, split anywhere.
                resize.extend_from_slice(&data);
                let mut values = serde_json::Deserializer::from_slice(resize).into_iter::<Value>();
                let mut used = 0;
                while let Some(Ok(size)) = values.next() {
                    used = values.byte_offset();
                    out.push(Input::Resize(
                        size["Width"].as_u64().unwrap_or(80).min(u16::MAX as u64) as u16,
                        size["Height"].as_u64().unwrap_or(24).min(u16::MAX as u64) as u16,
                    ));
                }
                resize.drain(..used);
            }
            _ => {}
        },
        spdy::Event::Finished { id } | spdy::Event::Reset { id } => {
            if channels.channel_of(id) == Some(STDIN) {
                out.push(Input::CloseStdin);
            }
        }
        spdy::Event::Opened { .. } => {}
    }
}

/// Waits for the streams a SPDY exec or attach asked for, then runs the
/// connection as a [`Link`]; None (the connection closed) if they do not
/// all come within [`STREAM_CREATION_TIMEOUT`].
async fn spdy_link(mut session: spdy::Session, mut channels: SpdyChannels) -> Option<Link> {
    let mut pending = Vec::new();
    let mut resize = Vec::new();
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while channels.ids.len() < channels.expected.len() {
        let event = match tokio::time::timeout_at(deadline, session.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => {
                session.close().await;
                return None;
            }
        };
        if let spdy::Event::Opened { id, headers } = &event {
            let kind = headers.get("streamtype").map(String::as_str).unwrap_or("");
            if let Some((_, ch)) = channels.expected.iter().find(|(name, _)| *name == kind) {
                channels.ids.insert(*ch, *id);
            }
        }
        spdy_input(&channels, event, &mut resize, &mut pending);
    }
    let (tx, mut rx) = mpsc::channel::<Chunk>(64);
    let (input_tx, input) = mpsc::channel::<Input>(64 + pending.len());
    for early in pending {
        let _ = input_tx.try_send(early);
    }
    let done = tokio::spawn(async move {
        let sender = session.sender.clone();
        let mut input_tx = Some(input_tx);
        let mut finished = Vec::new();
        loop {
            tokio::select! {
                chunk = rx.recv() => {
                    let Some((ch, data)) = chunk else { break };
                    let Some(id) = channels.ids.get(&ch).copied() else { continue };
                    if !sender.data(id, data).await {
                        break;
                    }
                    // The error stream carries one Status, then ends.
                    if ch == ERROR {
                        sender.finish(id).await;
                        finished.push(id);
                    }
                }
                event = session.events.recv(), if input_tx.is_some() => {
                    let mut out = Vec::new();
                    match event {
                        Some(event) => spdy_input(&channels, event, &mut resize, &mut out),
                        None => out.push(Input::Gone),
                    }
                    for decoded in out {
                        let gone = matches!(decoded, Input::Gone);
                        if let Some(inputs) = &input_tx && inputs.send(decoded).await.is_err() {
                            input_tx = None;
                        }
                        if gone {
                            input_tx = None;
                        }
                    }
                }
            }
        }
        // The end of every stream, then of the connection.
        for id in channels.ids.values() {
            if !finished.contains(id) {
                sender.finish(*id).await;
            }
        }
        drop(sender);
        session.close().await;
    });
    Some(Link { tx, input, done })
}

/// The pod (running, on this node) and the container a stream goes to.
pub fn find_container(
    shared: &Shared,
    ns: &str,
    name: &str,
    container: Option<&str>,
) -> ApiResult<(Value, Value, Arc<crate::kubelet::PodHandle>)> {
    let pod = shared.store.get(resources::pods(), ns, name)?;
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let container_spec = match container {
        Some(wanted) => containers
            .iter()
            .find(|candidate| candidate["name"].as_str() == Some(wanted))
            .copied()
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {wanted} is not valid for pod {name}"))
            })?,
        None => containers
            .first()
            .copied()
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers")))?,
    };
    let cname = container_spec["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let handle = shared
        .kubelet
        .handle(uid)
        .filter(|handle| handle.is_running(cname))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container {cname} of pod {name} is not running"
            ))
        })?;
    let container_spec = container_spec.clone();
    Ok((pod, container_spec, handle))
}

/// The Status on the error channel for an exit code.
pub fn exit_status(code: i32, what: &str) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{what}], exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

pub fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
}

/// A binary WebSocket message for a channel.
pub fn frame(ch: u8, data: &[u8]) -> Message {
    let mut framed = Vec::with_capacity(data.len() + 1);
    framed.push(ch);
    framed.extend_from_slice(data);
    Message::Binary(Bytes::from(framed))
}

/// Copies a reader to a channel until it ends.
pub async fn pump(mut reader: impl AsyncRead + Unpin, ch: u8, tx: mpsc::Sender<Chunk>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(count) => {
                if tx
                    .send((ch, Bytes::copy_from_slice(&buf[..count])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// What the client sent.
pub enum Input {
    Stdin(Bytes),
    CloseStdin,
    Resize(u16, u16),
    Gone,
}

pub fn decode_input(
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Input> {
    let data = match message {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Some(Input::Gone),
        Some(Ok(message)) => channel_message(message)?,
    };
    decode_channel_message(data)
}

/// The bytes of a data message, channel byte first: a binary message, or a
/// text one (the official Python client sends a `str` written to stdin as
/// text, its channel as the first character), as the API server takes both.
pub fn channel_message(message: Message) -> Option<Bytes> {
    match message {
        Message::Binary(data) => Some(data),
        Message::Text(text) => Some(Bytes::from(text)),
        Message::Close(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
    }
}

/// What a data message (channel byte first) asks for.
pub fn decode_channel_message(data: Bytes) -> Option<Input> {
    match data.first() {
        Some(&STDIN) => Some(Input::Stdin(data.slice(1..))),
        Some(&CLOSE) if data.get(1) == Some(&STDIN) => Some(Input::CloseStdin),
        Some(&RESIZE) => {
            let size: Value = serde_json::from_slice(&data[1..]).ok()?;
            Some(Input::Resize(
                size["Width"].as_u64().unwrap_or(80).min(u16::MAX as u64) as u16,
                size["Height"].as_u64().unwrap_or(24).min(u16::MAX as u64) as u16,
            ))
        }
        _ => None,
    }
}

/// Serves `pods/exec`.
pub async fn exec(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = parse_opts(req.uri().query());
    if opts.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let (pod, container, handle) = find_container(&shared, ns, name, opts.container.as_deref())?;
    let what = opts.command.join(" ");
    let argv = opts.command.clone();
    let cmd = crate::kubelet::runner::exec_command(&shared, &handle, &pod, &container, argv)
        .map_err(ApiError::bad_request)?;
    let session_opts = opts.clone();
    upgrade_channels(req, shared.exec_protocols, &opts, move |link| {
        exec_session(link, cmd, session_opts, what)
    })
}

/// Sends a `Status` on the error channel, then ends the session.
async fn fail(link: Link, status: Value) {
    let _ = link.tx.send((ERROR, Bytes::from(status.to_string()))).await;
    link.finish().await;
}

async fn exec_session(
    mut link: Link,
    mut exec: crate::kubelet::runner::ExecCommand,
    opts: StreamOpts,
    what: String,
) {
    use std::process::Stdio;
    let mut pty = None;
    if opts.tty {
        match super::pty::Pty::open() {
            Ok(mut terminal) => match terminal.attach(exec.command()) {
                Ok(()) => pty = Some(terminal),
                Err(e) => return fail(link, failure_status(&e.to_string())).await,
            },
            Err(e) => {
                let message = format!("cannot allocate a terminal: {e}");
                return fail(link, failure_status(&message)).await;
            }
        }
    } else {
        let cmd = exec.command();
        cmd.stdin(if opts.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(if opts.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stderr(if opts.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    }
    // Spawning consumes the command, which held the terminal's other side.
    let spawned = exec.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let msg = format!("failed to exec in container: {what}: {e}");
            return fail(link, failure_status(&msg)).await;
        }
    };
    let pid = child.id().unwrap_or(0);
    let tx = link.tx.clone();
    let mut pumps = Vec::new();
    let mut stdin = None;
    if let Some(terminal) = &pty {
        if let Ok((output, input)) = terminal.streams() {
            pumps.push(tokio::spawn(pump(output, STDOUT, tx.clone())));
            if opts.stdin {
                stdin = Some(stdin_task(input));
            }
        }
    } else {
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, STDOUT, tx.clone())));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, STDERR, tx.clone())));
        }
        if let Some(input) = child.stdin.take() {
            stdin = Some(stdin_task(input));
        }
    }
    let code = loop {
        tokio::select! {
            input = link.next() => match input {
                Input::Stdin(chunk) => {
                    if let Some(sender) = &stdin && sender.send(chunk).await.is_err() {
                        stdin = None;
                    }
                }
                Input::CloseStdin => stdin = None,
                Input::Resize(width, height) => {
                    if let Some(terminal) = &pty {
                        terminal.resize(width, height);
                    }
                }
                Input::Gone => {
                    // Nobody is left to read the output.
                    if pid != 0 {
                        // SAFETY: kill(2) of the process group this exec started.
                        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                    }
                    let _ = child.wait().await;
                    return;
                }
            },
            status = child.wait() => break exit_code(status),
        }
    };
    drop(stdin);
    drop(pty);
    for task in pumps {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let _ = tx
        .send((ERROR, Bytes::from(exit_status(code, &what).to_string())))
        .await;
    drop(tx);
    link.finish().await;
}

pub fn exit_code(result: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match result {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            _ => 1,
        },
        Err(_) => 1,
    }
}

/// Serves `pods/attach`: the running container's output from now on (read
/// from its log as it is written) and, for a container with `stdin: true`,
/// its stdin — closed for good when the first attach that had it ends it or
/// goes away, if the container has `stdinOnce: true`.
pub async fn attach(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = parse_opts(req.uri().query());
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let (_, container, handle) = find_container(&shared, ns, name, opts.container.as_deref())?;
    let cname = container["name"].as_str().unwrap_or("").to_string();
    let log = handle
        .log_files(&cname)
        .last()
        .cloned()
        .ok_or_else(|| ApiError::bad_request(format!("container {cname} has no output yet")))?;
    let stdin = if opts.stdin {
        handle.stdin_of(&cname)
    } else {
        None
    };
    let stdin_once = stdin.is_some() && container["stdinOnce"].as_bool().unwrap_or(false);
    let session_opts = opts.clone();
    upgrade_channels(req, shared.exec_protocols, &opts, move |link| {
        attach_session(link, handle, cname, log, stdin, stdin_once, session_opts)
    })
}

async fn attach_session(
    mut link: Link,
    handle: Arc<crate::kubelet::PodHandle>,
    cname: String,
    log: std::path::PathBuf,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    stdin_once: bool,
    opts: StreamOpts,
) {
    use std::io::{Read, Seek, SeekFrom};
    // With `stdinOnce`, the kubelet's end of the pipe goes too: the process
    // reads end of input.
    let close_for_good = || {
        if stdin_once {
            handle
                .stdin
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&cname);
        }
    };
    let tx = link.tx.clone();
    let mut file = std::fs::File::open(&log).ok();
    if let Some(log_file) = &mut file {
        let _ = log_file.seek(SeekFrom::End(0));
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = false;
    loop {
        tokio::select! {
            input = link.next() => match input {
                Input::Stdin(chunk) => {
                    if let Some(sender) = &stdin && sender.send(chunk).await.is_err() {
                        stdin = None;
                    }
                }
                Input::CloseStdin => {
                    stdin = None;
                    close_for_good();
                }
                Input::Resize(..) => {}
                Input::Gone => {
                    drop(stdin);
                    close_for_good();
                    drop(tx);
                    link.finish().await;
                    return;
                }
            },
            _ = tick.tick() => {
                // The process is gone (or restarted): read what is left, then end.
                let running = handle.is_running(&cname) && handle.log_files(&cname).last() == Some(&log);
                let mut buf = Vec::new();
                if let Some(log_file) = &mut file {
                    let _ = log_file.read_to_end(&mut buf);
                }
                pending.extend_from_slice(&buf);
                while let Some(nl) = pending.iter().position(|byte| *byte == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let line = &line[..line.len() - 1];
                    let mut parts = line.splitn(4, |byte| *byte == b' ');
                    let (_, stream_name, tag, content) =
                        (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(b""));
                    let (ch, wanted) = if stream_name == Some(b"stderr".as_slice()) {
                        (STDERR, opts.stderr)
                    } else {
                        (STDOUT, opts.stdout)
                    };
                    if !wanted {
                        continue;
                    }
                    let mut data = content.to_vec();
                    if tag == Some(b"F".as_slice()) {
                        data.push(b'\n');
                    }
                    if tx.send((ch, Bytes::from(data))).await.is_err() {
                        return;
                    }
                }
                if last {
                    break;
                }
                if !running {
                    last = true;
                }
            }
        }
    }
    let _ = tx
        .send((ERROR, Bytes::from(exit_status(0, "").to_string())))
        .await;
    drop(tx);
    link.finish().await;
}
