//! `services/proxy` and `pods/proxy`: forwards an HTTP request (method,
//! headers without the API credentials, body and query) to a ready endpoint
//! of a service or to a pod's port, and streams the response back.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::Body;
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::resources;

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A response body that ends (instead of failing) when the upstream breaks.
struct EndOnError(Incoming);

impl HttpBody for EndOnError {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unavailable(msg: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", msg)
}

/// Splits `[scheme:]name[:port]` as the proxy path segment spells it.
fn split_name(seg: &str) -> (Option<&str>, &str, Option<&str>) {
    let parts: Vec<&str> = seg.split(':').collect();
    match parts.as_slice() {
        [n] => (None, n, None),
        [n, p] => (None, n, Some(*p).filter(|p| !p.is_empty())),
        [s, n, p] => (Some(*s), n, Some(*p).filter(|p| !p.is_empty())),
        _ => (None, seg, None),
    }
}

/// The `host:port` behind `services/NAME[:PORT]`: a ready endpoint,
/// round-robin.
pub(crate) fn service_target(
    s: &Shared,
    ns: &str,
    name: &str,
    port: Option<&str>,
) -> ApiResult<String> {
    let svc = s.store.get(resources::services(), ns, name)?;
    let ports: Vec<&Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let sp = match port {
        None if ports.len() == 1 => ports[0],
        None => {
            return Err(ApiError::bad_request(format!(
                "service {name} has several ports: name one (services/{name}:PORT/proxy)"
            )));
        }
        Some(p) => ports
            .iter()
            .find(|sp| {
                sp["name"].as_str() == Some(p)
                    || p.parse::<i64>()
                        .is_ok_and(|n| sp["port"].as_i64() == Some(n))
            })
            .copied()
            .ok_or_else(|| {
                ApiError::bad_request(format!("no service port {p:?} found for service {name:?}"))
            })?,
    };
    let pname = sp["name"].as_str().unwrap_or("");
    let ep = s
        .store
        .try_get(resources::endpoints(), ns, name)
        .unwrap_or(Value::Null);
    let mut targets = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let Some(port) = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == pname)
            .and_then(|p| p["port"].as_i64())
        else {
            continue;
        };
        for a in subset["addresses"].as_array().into_iter().flatten() {
            if let Some(ip) = a["ip"].as_str() {
                targets.push(format!("{ip}:{port}"));
            }
        }
    }
    if targets.is_empty() {
        return Err(unavailable(format!(
            "no endpoints available for service \"{name}\""
        )));
    }
    Ok(targets[NEXT.fetch_add(1, Ordering::Relaxed) % targets.len()].clone())
}

/// The `host:port` behind `pods/NAME[:PORT]`.
fn pod_target(s: &Shared, ns: &str, name: &str, port: Option<&str>) -> ApiResult<String> {
    let pod = s.store.get(resources::pods(), ns, name)?;
    let container_ports: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    let n = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) => n as i64,
            Err(_) => container_ports
                .iter()
                .find(|cp| cp["name"].as_str() == Some(p))
                .and_then(|cp| cp["containerPort"].as_i64())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("no port named {p:?} in pod {name:?}"))
                })?,
        },
        None => container_ports
            .first()
            .and_then(|cp| cp["containerPort"].as_i64())
            .unwrap_or(80),
    };
    if pod["status"]["phase"] != "Running" {
        return Err(unavailable(format!("pod {name} is not running")));
    }
    let ip = pod["status"]["podIP"].as_str().unwrap_or("127.0.0.1");
    Ok(format!("{ip}:{n}"))
}

/// Serves `/api/v1/namespaces/NS/{services,pods}/NAME/proxy[/PATH]`.
/// `rest` is the raw (still percent-encoded) path after `/proxy`.
pub async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    kind: &str,
    seg: &str,
    rest: &str,
) -> ApiResult<Response<Body>> {
    let (scheme, name, port) = split_name(seg);
    if scheme == Some("https") {
        return Err(ApiError::bad_request(
            "the local cluster proxies plain HTTP only (https: is not supported)",
        ));
    }
    let target = if kind == "services" {
        service_target(&shared, ns, name, port)?
    } else {
        pod_target(&shared, ns, name, port)?
    };
    let path = if rest.is_empty() { "/" } else { rest };
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let (parts, body) = req.into_parts();
    let client_version = parts.version;
    let uri: Uri = pq
        .parse()
        .map_err(|_| ApiError::bad_request("invalid proxy path"))?;
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for (k, v) in &parts.headers {
        let n = k.as_str();
        if n == "authorization" || n == "host" || HOP_BY_HOP.contains(&n) {
            continue;
        }
        out.headers_mut().append(k.clone(), v.clone());
    }
    if let Ok(h) = HeaderValue::from_str(&target) {
        out.headers_mut().insert(header::HOST, h);
    }
    let stream = tokio::net::TcpStream::connect(&target).await.map_err(|e| {
        unavailable(format!(
            "error trying to reach {kind} {name}: dial tcp {target}: {e}"
        ))
    })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unavailable(format!("error trying to reach {kind} {name}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(out)
        .await
        .map_err(|e| unavailable(format!("error trying to reach {kind} {name}: {e}")))?;
    let (mut parts, body) = resp.into_parts();
    // The client talks to the API server, not to the upstream.
    parts.version = client_version;
    for h in HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    Ok(Response::from_parts(parts, EndOnError(body).boxed()))
}
