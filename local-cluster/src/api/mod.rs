//! The HTTP front: bearer-token authentication, request parsing (path,
//! query, body limits) and routing to discovery, the resource handlers,
//! watches and logs. Every failure leaves as a Kubernetes `Status`.

pub mod access;
pub mod handlers;
pub mod logs;
pub mod message;
pub mod portforward;
pub mod proxy;
pub mod pty;
pub mod spdy;
pub mod streams;
pub mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;

use self::message::{
    Body, error_response, full, json_response, json_response_ct, parse_query, percent_decode,
};
use crate::Shared;
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceType};

/// A parsed resource path.
pub struct Target {
    pub rt: &'static ResourceType,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

fn parse_target(group: &str, segs: &[String]) -> ApiResult<Target> {
    let nf = ApiError::path_not_found;
    let (ns, rest) = if segs.len() >= 3
        && segs[0] == "namespaces"
        && !(segs.len() == 3 && (segs[2] == "status" || segs[2] == "finalize"))
    {
        (Some(segs[1].clone()), &segs[2..])
    } else {
        (None, segs)
    };
    if rest.is_empty() || rest.len() > 3 {
        return Err(nf());
    }
    let rt = resources::find(group, &rest[0]).ok_or_else(nf)?;
    if ns.is_some() && !rt.namespaced {
        return Err(nf());
    }
    let name = rest.get(1).cloned();
    let sub = rest.get(2).cloned();
    if rt.namespaced && ns.is_none() && name.is_some() {
        return Err(nf());
    }
    if let Some(sub_name) = &sub
        && !rt
            .subresources
            .iter()
            .any(|(known, _, _)| known == sub_name)
    {
        return Err(nf());
    }
    Ok(Target { rt, ns, name, sub })
}

fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(authorization) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let Some(token) = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
    else {
        return false;
    };
    // Constant-time comparison.
    let (given, expected) = (token.trim().as_bytes(), shared.token.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Entry point of every request.
pub async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if !authorized(&shared, &req) {
        return Ok(error_response(&ApiError::unauthorized()));
    }
    // A bug must cost one request, never the server or stored objects.
    let resp = match std::panic::AssertUnwindSafe(route(shared, req))
        .catch_unwind()
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&ApiError::internal(
            "the local cluster failed to handle this request",
        )),
    };
    let mut resp = resp;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body was not read: this connection cannot be reused.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        // The status line the API server (Go's net/http) sends.
        resp.extensions_mut()
            .insert(ReasonPhrase::from_static(b"Request Entity Too Large"));
    }
    Ok(resp)
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = req.method() == Method::GET;
    match parts.as_slice() {
        ["version"] if get => return Ok(json_response(200, &discovery::version())),
        ["healthz" | "readyz" | "livez", ..] if get => {
            let mut response = Response::new(full("ok"));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Ok(response);
        }
        ["api"] if get => {
            return Ok(match discovery::wants_aggregated(&accept) {
                Some((ct, av)) => json_response_ct(200, &discovery::aggregated(true, av), ct),
                None => json_response(200, &discovery::api_versions(&shared.addr)),
            });
        }
        ["apis"] if get => {
            return Ok(match discovery::wants_aggregated(&accept) {
                Some((ct, av)) => json_response_ct(200, &discovery::aggregated(false, av), ct),
                None => json_response(200, &discovery::api_group_list()),
            });
        }
        ["openapi", "v2"] if get => {
            let (content_type, document) = crate::openapi::v2(&accept);
            let mut response = Response::new(full(document));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            return Ok(response);
        }
        ["openapi", "v3"] if get => return Ok(json_response(200, &crate::openapi::root())),
        ["openapi", "v3", "api", "v1"] if get => {
            return crate::openapi::group_version("")
                .map(|document| json_response(200, &document))
                .ok_or_else(ApiError::path_not_found);
        }
        ["openapi", "v3", "apis", group, "v1"] if get => {
            return crate::openapi::group_version(group)
                .map(|document| json_response(200, &document))
                .ok_or_else(ApiError::path_not_found);
        }
        ["api", "v1"] if get => {
            return discovery::resource_list("", "v1")
                .map(|document| json_response(200, &document))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", group] if get => {
            return discovery::api_group(group)
                .map(|document| json_response(200, &document))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", group, version] if get => {
            return discovery::resource_list(group, version)
                .map(|document| json_response(200, &document))
                .ok_or_else(ApiError::path_not_found);
        }
        _ => {}
    }
    if let [
        "api",
        "v1",
        "namespaces",
        ns,
        kind @ ("services" | "pods"),
        name,
        "proxy",
        ..,
    ] = parts.as_slice()
    {
        // The raw path after `/proxy`, still percent-encoded.
        let raw = req.uri().path().to_string();
        let mut rest = raw.as_str();
        for _ in 0..7 {
            rest = rest.trim_start_matches('/');
            rest = &rest[rest.find('/').unwrap_or(rest.len())..];
        }
        let (ns, kind, name, rest) = (
            ns.to_string(),
            kind.to_string(),
            name.to_string(),
            rest.to_string(),
        );
        return proxy::serve(shared, req, &ns, &kind, &name, &rest).await;
    }
    if let ["api", "v1", "namespaces", ns, "pods", name, "exec"] = parts.as_slice()
        && (req.method() == Method::GET || req.method() == Method::POST)
    {
        let (ns, name) = (ns.to_string(), name.to_string());
        return streams::exec(shared, req, &ns, &name).await;
    }
    if let ["api", "v1", "namespaces", ns, "pods", name, "attach"] = parts.as_slice()
        && (req.method() == Method::GET || req.method() == Method::POST)
    {
        let (ns, name) = (ns.to_string(), name.to_string());
        return streams::attach(shared, req, &ns, &name).await;
    }
    if let ["api", "v1", "namespaces", ns, "pods", name, "portforward"] = parts.as_slice()
        && (req.method() == Method::GET || req.method() == Method::POST)
    {
        let (ns, name) = (ns.to_string(), name.to_string());
        return portforward::serve(shared, req, &ns, &name).await;
    }
    if let [
        "apis",
        "authorization.k8s.io",
        "v1",
        kind @ ("selfsubjectaccessreviews" | "selfsubjectrulesreviews"),
    ] = parts.as_slice()
        && req.method() == Method::POST
    {
        let kind = kind.to_string();
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = message::read_body(req.into_body()).await?;
        let review = message::parse_json(&body, &content_type)?;
        return access::review(&kind, review).map(|review| json_response(201, &review));
    }
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", ..] => ("", &segs[2..]),
        ["apis", "apps", "v1", ..] => ("apps", &segs[3..]),
        ["apis", "batch", "v1", ..] => ("batch", &segs[3..]),
        _ => return Err(ApiError::path_not_found()),
    };
    let target = parse_target(group, rest)?;
    handlers::dispatch(shared, req, target, query, accept).await
}
