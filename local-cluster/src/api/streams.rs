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

fn truthy(v: &str) -> bool {
    v == "true" || v == "1"
}

/// Parses the query (with `command` repeated).
pub fn parse_opts(query: Option<&str>) -> StreamOpts {
    let mut o = StreamOpts {
        command: Vec::new(),
        container: None,
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match percent_decode(k).as_str() {
            "command" => o.command.push(v),
            "container" => o.container = Some(v).filter(|c| !c.is_empty()),
            "stdin" => o.stdin = truthy(&v),
            "stdout" => o.stdout = truthy(&v),
            "stderr" => o.stderr = truthy(&v),
            "tty" => o.tty = truthy(&v),
            _ => {}
        }
    }
    o
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
    let c = match container {
        Some(cn) => containers
            .iter()
            .find(|c| c["name"].as_str() == Some(cn))
            .copied()
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {cn} is not valid for pod {name}"))
            })?,
        None => containers
            .first()
            .copied()
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers")))?,
    };
    let cname = c["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let h = shared
        .kubelet
        .handle(uid)
        .filter(|h| h.is_running(cname))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container {cname} of pod {name} is not running"
            ))
        })?;
    let c = c.clone();
    Ok((pod, c, h))
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
    let mut r = Response::new(full(""));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert("sec-websocket-protocol", HeaderValue::from_static(proto));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    Ok(r)
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
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(ch);
    v.extend_from_slice(data);
    Message::Binary(Bytes::from(v))
}

/// Copies a reader to a channel until it ends.
pub async fn pump(mut r: impl AsyncRead + Unpin, ch: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(ch, &buf[..n])).await.is_err() {
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
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Input> {
    match m {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Some(Input::Gone),
        Some(Ok(Message::Binary(b))) => match b.first() {
            Some(&STDIN) => Some(Input::Stdin(b.slice(1..))),
            Some(&CLOSE) if b.get(1) == Some(&STDIN) => Some(Input::CloseStdin),
            Some(&RESIZE) => {
                let v: Value = serde_json::from_slice(&b[1..]).ok()?;
                Some(Input::Resize(
                    v["Width"].as_u64().unwrap_or(80).min(u16::MAX as u64) as u16,
                    v["Height"].as_u64().unwrap_or(24).min(u16::MAX as u64) as u16,
                ))
            }
            _ => None,
        },
        Some(Ok(_)) => None,
    }
}

/// Serves `pods/exec`.
pub async fn exec(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let o = parse_opts(req.uri().query());
    if o.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !(o.stdin || o.stdout || o.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let (pod, c, h) = find_container(&shared, ns, name, o.container.as_deref())?;
    let what = o.command.join(" ");
    let argv = o.command.clone();
    let cmd = crate::kubelet::runner::exec_command(&shared, &h, &pod, &c, argv)
        .map_err(ApiError::bad_request)?;
    upgrade(req, move |ws, _v5| exec_session(ws, cmd, o, what))
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
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
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
    o: StreamOpts,
    what: String,
) {
    use std::process::Stdio;
    let (sink, mut stream) = ws.split();
    let (tx, writer) = spawn_writer(sink);
    let mut pty = None;
    if o.tty {
        match super::pty::Pty::open() {
            Ok(mut p) => match p.attach(exec.command()) {
                Ok(()) => pty = Some(p),
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
        cmd.stdin(if o.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(if o.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stderr(if o.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    }
    // Spawning consumes the command, which held the terminal's other side.
    let spawned = exec.spawn();
    let mut child = match spawned {
        Ok(c) => c,
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
    if let Some(p) = &pty {
        if let Ok((r, w)) = p.streams() {
            pumps.push(tokio::spawn(pump(r, STDOUT, tx.clone())));
            if o.stdin {
                stdin = Some(stdin_task(w));
            }
        }
    } else {
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, STDOUT, tx.clone())));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, STDERR, tx.clone())));
        }
        if let Some(w) = child.stdin.take() {
            stdin = Some(stdin_task(w));
        }
    }
    let code = loop {
        tokio::select! {
            m = stream.next() => match decode_input(m) {
                Some(Input::Stdin(b)) => {
                    if let Some(s) = &stdin && s.send(b).await.is_err() {
                        stdin = None;
                    }
                }
                Some(Input::CloseStdin) => stdin = None,
                Some(Input::Resize(w, h)) => {
                    if let Some(p) = &pty {
                        p.resize(w, h);
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
            s = child.wait() => break exit_code(s),
        }
    };
    drop(stdin);
    drop(pty);
    for p in pumps {
        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
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

pub fn exit_code(s: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match s {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => c,
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
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k) != "ports" {
            continue;
        }
        for p in percent_decode(v).split(',').filter(|p| !p.is_empty()) {
            let n: u16 = p
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid port {p:?}")))?;
            ports.push(n);
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request("at least one port must be given"));
    }
    if ports.len() > 127 {
        return Err(ApiError::bad_request("too many ports"));
    }
    let (_, _, h) = find_container(&shared, ns, name, None)?;
    let pod_name = name.to_string();
    upgrade(req, move |ws, _| forward_session(ws, h, pod_name, ports))
}

/// Port-forwarding, as the kubelet does it: each connection is made to
/// the port on the pod's loopback, inside the pod's network namespace.
async fn forward_session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    h: Arc<crate::kubelet::PodHandle>,
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
        let pb = port.to_le_bytes();
        let _ = tx.send(frame(data, &pb)).await;
        let _ = tx.send(frame(err, &pb)).await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
        let conn = match h.sandbox() {
            Some(sb) => sb.holder.connect(addr).await,
            None => tokio::net::TcpStream::connect(addr).await,
        };
        match conn {
            Ok(conn) => {
                let _ = conn.set_nodelay(true);
                let (r, w) = conn.into_split();
                pumps.push(tokio::spawn(pump(r, data, tx.clone())));
                inputs.push(Some(stdin_task(w)));
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
            m = stream.next() => match m {
                Some(Ok(Message::Binary(b))) if b.len() > 1 => {
                    let ch = b[0] as usize;
                    if ch.is_multiple_of(2)
                        && let Some(slot) = inputs.get_mut(ch / 2)
                        && let Some(s) = slot
                        && s.send(b.slice(1..)).await.is_err()
                    {
                        *slot = None;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // The client is done: closing the WebSocket ends every connection.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
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
    let o = parse_opts(req.uri().query());
    if !(o.stdin || o.stdout || o.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let (_, c, h) = find_container(&shared, ns, name, o.container.as_deref())?;
    let cname = c["name"].as_str().unwrap_or("").to_string();
    let log = h
        .log_files(&cname)
        .last()
        .cloned()
        .ok_or_else(|| ApiError::bad_request(format!("container {cname} has no output yet")))?;
    let stdin = if o.stdin { h.stdin_of(&cname) } else { None };
    let stdin_once = stdin.is_some() && c["stdinOnce"].as_bool().unwrap_or(false);
    upgrade(req, move |ws, _| {
        attach_session(ws, h, cname, log, stdin, stdin_once, o)
    })
}

async fn attach_session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    h: Arc<crate::kubelet::PodHandle>,
    cname: String,
    log: std::path::PathBuf,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    stdin_once: bool,
    o: StreamOpts,
) {
    use std::io::{Read, Seek, SeekFrom};
    // With `stdinOnce`, the kubelet's end of the pipe goes too: the process
    // reads end of input.
    let close_for_good = || {
        if stdin_once {
            h.stdin
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&cname);
        }
    };
    let (sink, mut stream) = ws.split();
    let (tx, writer) = spawn_writer(sink);
    let mut file = std::fs::File::open(&log).ok();
    if let Some(f) = &mut file {
        let _ = f.seek(SeekFrom::End(0));
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = false;
    loop {
        tokio::select! {
            m = stream.next() => match decode_input(m) {
                Some(Input::Stdin(b)) => {
                    if let Some(s) = &stdin && s.send(b).await.is_err() {
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
                let running = h.is_running(&cname) && h.log_files(&cname).last() == Some(&log);
                let mut buf = Vec::new();
                if let Some(f) = &mut file {
                    let _ = f.read_to_end(&mut buf);
                }
                pending.extend_from_slice(&buf);
                while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let line = &line[..line.len() - 1];
                    let mut parts = line.splitn(4, |b| *b == b' ');
                    let (_, stream_name, tag, content) =
                        (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(b""));
                    let (ch, wanted) = if stream_name == Some(b"stderr".as_slice()) {
                        (STDERR, o.stderr)
                    } else {
                        (STDOUT, o.stdout)
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
