//! `services/proxy` and `pods/proxy`: forwards an HTTP request (method,
//! headers without the API credentials, body and query) to a ready endpoint
//! of a service or to a pod's port, and streams the response back.
//! `https:` upstreams get TLS without certificate verification, as the
//! Kubernetes API server does for its proxies (pods serve self-signed
//! certificates).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::message::{Body, BodyError};
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

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unavailable(msg: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", msg)
}

/// Splits `[scheme:]name[:port]` as the proxy path segment spells it.
fn split_name(seg: &str) -> (Option<&str>, &str, Option<&str>) {
    let parts: Vec<&str> = seg.split(':').collect();
    match parts.as_slice() {
        [name] => (None, name, None),
        [name, port] => (None, name, Some(*port).filter(|port| !port.is_empty())),
        [scheme, name, port] => (
            Some(*scheme),
            name,
            Some(*port).filter(|port| !port.is_empty()),
        ),
        _ => (None, seg, None),
    }
}

/// The `host:port` behind `services/NAME[:PORT]`: a ready endpoint,
/// round-robin, chosen as the API server chooses it: a port number names
/// the service port with that number; then the endpoints' port of that
/// name is used — so without a port, only an unnamed port matches.
pub(crate) fn service_target(
    shared: &Shared,
    ns: &str,
    name: &str,
    port: Option<&str>,
) -> ApiResult<String> {
    let svc = shared.store.get(resources::services(), ns, name)?;
    let pname = match port.map(|wanted| (wanted, wanted.parse::<i64>())) {
        None => String::new(),
        Some((_, Ok(number))) => svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|candidate| candidate["port"].as_i64() == Some(number))
            .map(|candidate| candidate["name"].as_str().unwrap_or("").to_string())
            .ok_or_else(|| {
                unavailable(format!(
                    "no service port {number} found for service \"{name}\""
                ))
            })?,
        Some((wanted, Err(_))) => wanted.to_string(),
    };
    let ep = shared
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
        for address in subset["addresses"].as_array().into_iter().flatten() {
            if let Some(ip) = address["ip"].as_str() {
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
fn pod_target(shared: &Shared, ns: &str, name: &str, port: Option<&str>) -> ApiResult<String> {
    let pod = shared.store.get(resources::pods(), ns, name)?;
    let container_ports: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    let target_port = match port {
        Some(wanted) => match wanted.parse::<u16>() {
            Ok(number) => number as i64,
            Err(_) => container_ports
                .iter()
                .find(|cp| cp["name"].as_str() == Some(wanted))
                .and_then(|cp| cp["containerPort"].as_i64())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("no port named {wanted:?} in pod {name:?}"))
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
    Ok(format!("{ip}:{target_port}"))
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
    let tls = match scheme {
        None | Some("http") | Some("") => false,
        Some("https") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported scheme {other:?} in {kind}/{seg}/proxy: use http or https"
            )));
        }
    };
    let target = if kind == "services" {
        service_target(&shared, ns, name, port)?
    } else {
        pod_target(&shared, ns, name, port)?
    };
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let (parts, body) = req.into_parts();
    let client_version = parts.version;
    let uri: Uri = path_and_query
        .parse()
        .map_err(|_| ApiError::bad_request("invalid proxy path"))?;
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for (field, value) in &parts.headers {
        let header_name = field.as_str();
        if header_name == "authorization"
            || header_name == "host"
            || HOP_BY_HOP.contains(&header_name)
        {
            continue;
        }
        out.headers_mut().append(field.clone(), value.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&target) {
        out.headers_mut().insert(header::HOST, host);
    }
    let reach = |e: &dyn std::fmt::Display| {
        unavailable(format!("error trying to reach {kind} {name}: {e}"))
    };
    let key = (target.clone(), tls);
    // An idle kept-alive connection first; a request it could not send
    // (the upstream had closed it) goes on a fresh one.
    let pooled = match checkout(&key) {
        Some(mut conn) => match conn.try_send_request(out).await {
            Ok(response) => {
                checkin(key.clone(), conn);
                Ok(response)
            }
            Err(mut e) => match e.take_message() {
                Some(req) => Err(req),
                None => return Err(reach(e.error())),
            },
        },
        None => Err(out),
    };
    let resp = match pooled {
        Ok(response) => response,
        Err(out) => {
            let addr: std::net::SocketAddr = target
                .parse()
                .map_err(|_| reach(&format!("{target} is not an address")))?;
            let stream = shared
                .kubelet
                .dial(addr)
                .await
                .map_err(|e| reach(&format!("dial tcp {target}: {e}")))?;
            let _ = stream.set_nodelay(true);
            let mut conn = if tls {
                let host = target.rsplit_once(':').map_or(target.as_str(), |(h, _)| h);
                let server_name = ServerName::try_from(host.to_string())
                    .map_err(|_| reach(&format!("{host} is not a valid TLS server name")))?;
                let stream = tls_connector()
                    .map_err(|e| reach(&e))?
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| reach(&format!("TLS handshake with {target}: {e}")))?;
                handshake(stream).await.map_err(|e| reach(&e))?
            } else {
                handshake(stream).await.map_err(|e| reach(&e))?
            };
            let response = conn.send_request(out).await.map_err(|e| reach(&e))?;
            checkin(key, conn);
            response
        }
    };
    let (mut parts, body) = resp.into_parts();
    // The client talks to the API server, not to the upstream.
    parts.version = client_version;
    for hop in HOP_BY_HOP {
        parts.headers.remove(*hop);
    }
    // An upstream that breaks off mid-response cuts the client's
    // connection too (as the API server does), so the client sees an
    // incomplete response, never a short one that looks complete.
    let body = body.map_err(|e| Box::new(e) as BodyError).boxed();
    Ok(Response::from_parts(parts, body))
}

type Conn = hyper::client::conn::http1::SendRequest<Incoming>;

/// Kept-alive upstream connections by `(host:port, tls)`, busy or idle.
type Pool = Mutex<HashMap<(String, bool), Vec<Conn>>>;

/// Connections kept per upstream.
const POOL_PER_UPSTREAM: usize = 32;

fn pool() -> std::sync::MutexGuard<'static, HashMap<(String, bool), Vec<Conn>>> {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// An idle connection to the upstream (its last response read to the end);
/// closed ones are dropped on the way.
fn checkout(key: &(String, bool)) -> Option<Conn> {
    let mut pool = pool();
    let conns = pool.get_mut(key)?;
    conns.retain(|c| !c.is_closed());
    let index = conns.iter().position(|c| c.is_ready())?;
    Some(conns.swap_remove(index))
}

/// Keeps a connection for later requests (it serves them once its current
/// response is done); connections to a pod that is gone close and are
/// dropped at the next checkout.
fn checkin(key: (String, bool), conn: Conn) {
    let mut pool = pool();
    pool.retain(|_, kept| {
        kept.retain(|c| !c.is_closed());
        !kept.is_empty()
    });
    let conns = pool.entry(key).or_default();
    if conns.len() < POOL_PER_UPSTREAM {
        conns.push(conn);
    }
}

/// An HTTP/1.1 client connection to the upstream.
async fn handshake<T>(io: T) -> Result<Conn, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Accepts any upstream certificate: pods serve self-signed ones, and the
/// API server's proxy does not verify them either. Signatures are still
/// checked, so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONNECTOR: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .clone()
}
