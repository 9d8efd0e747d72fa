//! `pods/exec` (and the shared WebSocket plumbing) with the channel
//! protocols kubectl and kube-rs speak: `v5.channel.k8s.io` and
//! `v4.channel.k8s.io`. Every binary message starts with its channel:
//! 0 stdin, 1 stdout, 2 stderr, 3 error (a `Status` at the end), 4 resize,
//! 255 close (v5: the client has no more input on the channel that follows).

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
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::message::{Body, full, percent_decode};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::kubelet::stdin::stdin_task;
use crate::resources;

const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Options of an exec or attach request.
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

/// The channel protocol both sides speak, if the request is a WebSocket
/// upgrade offering one the local cluster knows.
fn negotiate(req: &Request<Incoming>) -> ApiResult<(&'static str, String)> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("websocket"));
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|h| h.to_str().ok());
    let (true, Some(key)) = (upgrade, key) else {
        return Err(ApiError::bad_request(
            "the local cluster streams over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); SPDY is not supported",
        ));
    };
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(',').map(|p| p.trim().to_string()))
        .collect();
    let proto = PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unsupported streaming protocols {offered:?}; the local cluster speaks {PROTOCOLS:?}"
            ))
        })?;
    Ok((proto, derive_accept_key(key.as_bytes())))
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

/// Answers the upgrade with 101 and hands the WebSocket to `session` once
/// the connection has switched.
pub fn upgrade<F, Fut>(mut req: Request<Incoming>, session: F) -> ApiResult<Response<Body>>
where
    F: FnOnce(WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (proto, accept) = negotiate(&req)?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws, proto.starts_with("v5")).await;
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
    Ok(response)
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

pub fn frame(ch: u8, data: &[u8]) -> Message {
    let mut framed = Vec::with_capacity(data.len() + 1);
    framed.push(ch);
    framed.extend_from_slice(data);
    Message::Binary(Bytes::from(framed))
}

/// Copies a reader to a channel until it ends.
pub async fn pump(mut reader: impl AsyncRead + Unpin, ch: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(count) => {
                if tx.send(frame(ch, &buf[..count])).await.is_err() {
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
    upgrade(req, move |ws, _v5| exec_session(ws, cmd, opts, what))
}

/// The task that owns a session's sending half: it sends what arrives on
/// the returned channel, then — once every sender is gone — a normal
/// closure, which the client reads as the end of every channel.
fn spawn_writer(
    mut sink: futures_util::stream::SplitSink<
        WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        Message,
    >,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
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
    (tx, writer)
}

async fn exec_session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    mut exec: crate::kubelet::runner::ExecCommand,
    opts: StreamOpts,
    what: String,
) {
    use std::process::Stdio;
    let (sink, mut stream) = ws.split();
    let (tx, writer) = spawn_writer(sink);
    let mut pty = None;
    if opts.tty {
        match super::pty::Pty::open() {
            Ok(mut terminal) => match terminal.attach(exec.command()) {
                Ok(()) => pty = Some(terminal),
                Err(e) => {
                    let _ = tx
                        .send(frame(
                            ERROR,
                            failure_status(&e.to_string()).to_string().as_bytes(),
                        ))
                        .await;
                    drop(tx);
                    let _ = writer.await;
                    return;
                }
            },
            Err(e) => {
                let _ = tx
                    .send(frame(
                        ERROR,
                        failure_status(&format!("cannot allocate a terminal: {e}"))
                            .to_string()
                            .as_bytes(),
                    ))
                    .await;
                drop(tx);
                let _ = writer.await;
                return;
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
            let _ = tx
                .send(frame(ERROR, failure_status(&msg).to_string().as_bytes()))
                .await;
            drop(tx);
            let _ = writer.await;
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
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
            message = stream.next() => match decode_input(message) {
                Some(Input::Stdin(chunk)) => {
                    if let Some(sender) = &stdin && sender.send(chunk).await.is_err() {
                        stdin = None;
                    }
                }
                Some(Input::CloseStdin) => stdin = None,
                Some(Input::Resize(width, height)) => {
                    if let Some(terminal) = &pty {
                        terminal.resize(width, height);
                    }
                }
                Some(Input::Gone) => {
                    // Nobody is left to read the output.
                    if pid != 0 {
                        // SAFETY: kill(2) of the process group this exec started.
                        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                    }
                    let _ = child.wait().await;
                    return;
                }
                None => {}
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
        .send(frame(
            ERROR,
            exit_status(code, &what).to_string().as_bytes(),
        ))
        .await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
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

/// Serves `pods/portforward` over WebSocket, as kube-rs's `Portforwarder`
/// speaks it: port number i (in `ports`) uses data channel 2i and error
/// channel 2i+1, each opened by a message holding the port (little endian).
/// One connection to the pod per port and WebSocket.
pub async fn portforward(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let mut ports = Vec::new();
    for pair in req.uri().query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) != "ports" {
            continue;
        }
        for port in percent_decode(value)
            .split(',')
            .filter(|port| !port.is_empty())
        {
            let number: u16 = port
                .trim()
                .parse()
                .ok()
                .filter(|number| *number > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid port {port:?}")))?;
            ports.push(number);
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request("at least one port must be given"));
    }
    if ports.len() > 127 {
        return Err(ApiError::bad_request("too many ports"));
    }
    let (_, _, handle) = find_container(&shared, ns, name, None)?;
    let pod_name = name.to_string();
    upgrade(req, move |ws, _| {
        forward_session(ws, handle, pod_name, ports)
    })
}

/// Port-forwarding, as the kubelet does it: each connection is made to
/// the port on the pod's loopback, inside the pod's network namespace.
async fn forward_session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    handle: Arc<crate::kubelet::PodHandle>,
    pod: String,
    ports: Vec<u16>,
) {
    let ip = "127.0.0.1";
    let (sink, mut stream) = ws.split();
    let (tx, writer) = spawn_writer(sink);
    let mut inputs: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    let mut pumps = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data, err) = ((2 * i) as u8, (2 * i + 1) as u8);
        let port_bytes = port.to_le_bytes();
        let _ = tx.send(frame(data, &port_bytes)).await;
        let _ = tx.send(frame(err, &port_bytes)).await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
        let conn = match handle.sandbox() {
            Some(sb) => sb.holder.connect(addr).await,
            None => tokio::net::TcpStream::connect(addr).await,
        };
        match conn {
            Ok(conn) => {
                let _ = conn.set_nodelay(true);
                let (from_pod, to_pod) = conn.into_split();
                pumps.push(tokio::spawn(pump(from_pod, data, tx.clone())));
                inputs.push(Some(stdin_task(to_pod)));
            }
            Err(e) => {
                let msg = format!(
                    "an error occurred forwarding {port} -> {pod}: dial tcp {ip}:{port}: {e}"
                );
                let _ = tx.send(frame(err, msg.as_bytes())).await;
                inputs.push(None);
            }
        }
    }
    let all_out = futures_util::future::join_all(pumps);
    tokio::pin!(all_out);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                // The client is done: closing the WebSocket ends every connection.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(message)) => {
                    let Some(bytes) = channel_message(message).filter(|b| b.len() > 1) else {
                        continue;
                    };
                    let ch = bytes[0] as usize;
                    if ch.is_multiple_of(2)
                        && let Some(slot) = inputs.get_mut(ch / 2)
                        && let Some(sender) = slot
                        && sender.send(bytes.slice(1..)).await.is_err()
                    {
                        *slot = None;
                    }
                }
            },
            _ = &mut all_out => break,
        }
    }
    drop(inputs);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
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
    upgrade(req, move |ws, _| {
        attach_session(ws, handle, cname, log, stdin, stdin_once, opts)
    })
}

async fn attach_session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
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
    let (sink, mut stream) = ws.split();
    let (tx, writer) = spawn_writer(sink);
    let mut file = std::fs::File::open(&log).ok();
    if let Some(log_file) = &mut file {
        let _ = log_file.seek(SeekFrom::End(0));
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = false;
    loop {
        tokio::select! {
            message = stream.next() => match decode_input(message) {
                Some(Input::Stdin(chunk)) => {
                    if let Some(sender) = &stdin && sender.send(chunk).await.is_err() {
                        stdin = None;
                    }
                }
                Some(Input::CloseStdin) => {
                    stdin = None;
                    close_for_good();
                }
                Some(Input::Resize(..)) | None => {}
                Some(Input::Gone) => {
                    drop(stdin);
                    close_for_good();
                    drop(tx);
                    let _ = writer.await;
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
                    if tx.send(frame(ch, &data)).await.is_err() {
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
        .send(frame(ERROR, exit_status(0, "").to_string().as_bytes()))
        .await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
