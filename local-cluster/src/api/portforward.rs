//! `pods/portforward`, in the three forms clients speak:
//!
//! - WebSocket channels (`v4.channel.k8s.io`, kube-rs and the Python
//!   client): the ports in the query, port i on data channel 2i and error
//!   channel 2i+1, one connection to the pod per port and WebSocket;
//! - SPDY/3.1 (`portforward.k8s.io`, kubectl up to 1.30): one pair of
//!   streams (`streamType` data and error, the same `port` and
//!   `requestID`) per connection kubectl accepts locally;
//! - the same SPDY tunnelled in a WebSocket (subprotocol
//!   `SPDY/3.1+portforward.k8s.io`, kubectl from 1.31).
//!
//! Each connection is made, as the kubelet makes it, to the port on the
//! pod's loopback inside the pod's network namespace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::message::{Body, percent_decode};
use super::spdy;
use super::streams::{
    Upgraded, channel_message, find_container, negotiate_spdy, negotiate_websocket, pump,
    upgrade_spdy, upgrade_websocket, wants_spdy, websocket_writer,
};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::kubelet::PodHandle;
use crate::kubelet::stdin::stdin_task;

/// The WebSocket subprotocols served: channels, and tunnelled SPDY.
const CHANNELS: &str = "v4.channel.k8s.io";
const TUNNELLED: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of port-forward over SPDY.
const SPDY_PROTOCOL: &str = "portforward.k8s.io";

/// Serves `pods/portforward`.
pub async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let (pod, _, handle) = find_container(&shared, ns, name, None)?;
    let target = Target {
        handle,
        pod: name.to_string(),
        uid: pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
    };
    if wants_spdy(&req) {
        let proto = negotiate_spdy(&req, &[SPDY_PROTOCOL])?;
        return Ok(upgrade_spdy(req, proto, move |session| {
            spdy_session(session, target)
        }));
    }
    let (proto, accept) = negotiate_websocket(&req, &["v5.channel.k8s.io", CHANNELS, TUNNELLED])?;
    if proto == TUNNELLED {
        return Ok(upgrade_websocket(
            req,
            proto,
            accept,
            move |ws| async move {
                spdy_session(spdy::Session::start(tunnel(ws)), target).await;
            },
        ));
    }
    let ports = query_ports(req.uri().query())?;
    Ok(upgrade_websocket(req, proto, accept, move |ws| {
        channel_session(ws, target, ports)
    }))
}

/// The pod port-forward connects into.
struct Target {
    handle: Arc<PodHandle>,
    pod: String,
    uid: String,
}

impl Target {
    /// A connection to the port on the pod's loopback, or the message the
    /// kubelet sends when there is none.
    async fn connect(&self, port: u16) -> Result<tokio::net::TcpStream, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let conn = match self.handle.sandbox() {
            Some(sb) => sb.holder.connect(addr).await,
            None => tokio::net::TcpStream::connect(addr).await,
        };
        conn.map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connect: connection refused".to_string()
            } else {
                e.to_string()
            };
            format!(
                "error forwarding port {port} to pod {}, uid {}: dial tcp4 127.0.0.1:{port}: {why}",
                self.pod, self.uid
            )
        })
    }
}

fn query_ports(query: Option<&str>) -> ApiResult<Vec<u16>> {
    let mut ports = Vec::new();
    for pair in query.unwrap_or("").split('&') {
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
        return Err(ApiError::bad_request(
            "at least one port must be given (?ports=N); kubectl port-forward speaks SPDY, served on the same path",
        ));
    }
    if ports.len() > 127 {
        return Err(ApiError::bad_request("too many ports"));
    }
    Ok(ports)
}

/// Port-forward over WebSocket channels: each port is connected once, at
/// the start; closing the WebSocket closes the connections, and a port
/// where nothing listens gets the message on its error channel.
async fn channel_session(ws: WebSocketStream<Upgraded>, target: Target, ports: Vec<u16>) {
    let (sink, mut stream) = ws.split();
    let (tx, writer) = websocket_writer(sink);
    let mut inputs: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    let mut pumps = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data, err) = ((2 * i) as u8, (2 * i + 1) as u8);
        let port_bytes = Bytes::copy_from_slice(&port.to_le_bytes());
        let _ = tx.send((data, port_bytes.clone())).await;
        let _ = tx.send((err, port_bytes)).await;
        match target.connect(*port).await {
            Ok(conn) => {
                let _ = conn.set_nodelay(true);
                let (from_pod, to_pod) = conn.into_split();
                pumps.push(tokio::spawn(pump(from_pod, data, tx.clone())));
                inputs.push(Some(stdin_task(to_pod)));
            }
            Err(message) => {
                let _ = tx.send((err, Bytes::from(message))).await;
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

/// A WebSocket carrying a byte stream in binary messages (kubectl's
/// tunnelled SPDY), as one duplex byte stream.
fn tunnel(ws: WebSocketStream<Upgraded>) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut sink, mut stream) = ws.split();
    let (mut from_client, mut to_client) = tokio::io::split(theirs);
    let upstream = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) if to_client.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_client.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    let data = Bytes::copy_from_slice(&buf[..count]);
                    if sink.send(Message::Binary(data)).await.is_err() {
                        break;
                    }
                }
            }
        }
        // The server's side is done (it read the client's close first,
        // or gave up waiting): the client has a moment to answer the close.
        let _ = sink.close().await;
        let mut upstream = upstream;
        if tokio::time::timeout(Duration::from_secs(5), &mut upstream)
            .await
            .is_err()
        {
            upstream.abort();
        }
    });
    ours
}

/// One forwarded connection: its two streams as they open.
#[derive(Default)]
struct Pair {
    data: Option<u32>,
    error: Option<u32>,
    port: Option<String>,
    to_pod: Option<mpsc::Sender<Bytes>>,
    task: Option<JoinHandle<()>>,
}

/// Port-forward over SPDY: a connection to the pod for each pair of
/// streams with the same `requestID`; the pod's end reaches the client as
/// the data stream's end, and a failure as a message on the error stream.
async fn spdy_session(mut session: spdy::Session, target: Target) {
    let target = Arc::new(target);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // Stream id to the pair it belongs to.
    let mut stream_pair: HashMap<u32, String> = HashMap::new();
    while let Some(event) = session.events.recv().await {
        match event {
            spdy::Event::Opened { id, headers } => {
                let request = headers.get("requestid").cloned().unwrap_or_default();
                let pair = pairs.entry(request.clone()).or_default();
                match headers.get("streamtype").map(String::as_str) {
                    Some("data") => pair.data = Some(id),
                    Some("error") => pair.error = Some(id),
                    _ => {
                        session.sender.reset(id).await;
                        continue;
                    }
                }
                if pair.port.is_none() {
                    pair.port = headers.get("port").cloned();
                }
                stream_pair.insert(id, request);
                if let (Some(data), Some(error), None) = (pair.data, pair.error, &pair.task) {
                    let (to_pod, from_client) = mpsc::channel::<Bytes>(64);
                    pair.to_pod = Some(to_pod);
                    let port = pair.port.clone().unwrap_or_default();
                    pair.task = Some(tokio::spawn(forward_one(
                        target.clone(),
                        port,
                        (data, error),
                        from_client,
                        session.sender.clone(),
                    )));
                }
            }
            spdy::Event::Data { id, data } => {
                if let Some(pair) = stream_pair.get(&id).and_then(|r| pairs.get_mut(r))
                    && pair.data == Some(id)
                    && let Some(to_pod) = &pair.to_pod
                    && to_pod.send(data).await.is_err()
                {
                    pair.to_pod = None;
                }
            }
            spdy::Event::Finished { id } => {
                // The client sends nothing more: the pod reads its end.
                if let Some(pair) = stream_pair.get(&id).and_then(|r| pairs.get_mut(r))
                    && pair.data == Some(id)
                {
                    pair.to_pod = None;
                }
            }
            spdy::Event::Reset { id } => {
                // The client gave the connection up (kubectl resets both
                // streams once it is done with them).
                if let Some(request) = stream_pair.remove(&id)
                    && let Some(pair) = pairs.get_mut(&request)
                {
                    pair.to_pod = None;
                    if let Some(task) = pair.task.take() {
                        task.abort();
                    }
                    if stream_pair.values().all(|r| *r != request) {
                        pairs.remove(&request);
                    }
                }
            }
        }
    }
    // The client closed the connection: every forwarded connection ends.
    for pair in pairs.into_values() {
        if let Some(task) = pair.task {
            task.abort();
        }
    }
    session.close().await;
}

/// Forwards one connection: connects to the pod's port, copies both ways,
/// and ends the data stream (then the error stream) when the pod's side
/// ends.
async fn forward_one(
    target: Arc<Target>,
    port: String,
    (data, error): (u32, u32),
    mut from_client: mpsc::Receiver<Bytes>,
    sender: spdy::Sender,
) {
    let connected = match port.parse::<u16>().ok().filter(|p| *p > 0) {
        Some(number) => target.connect(number).await,
        None => Err(format!("invalid port {port:?}")),
    };
    let conn = match connected {
        Ok(conn) => conn,
        Err(message) => {
            sender.data(error, Bytes::from(message)).await;
            sender.finish(error).await;
            sender.finish(data).await;
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    let (mut from_pod, to_pod) = conn.into_split();
    let to_pod = stdin_task(to_pod);
    let upstream = tokio::spawn(async move {
        while let Some(chunk) = from_client.recv().await {
            if to_pod.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from_pod.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(count) => {
                if !sender
                    .data(data, Bytes::copy_from_slice(&buf[..count]))
                    .await
                {
                    break;
                }
            }
        }
    }
    upstream.abort();
    sender.finish(data).await;
    sender.finish(error).await;
}
