//! The API's HTTP messages: response bodies (whole or streamed from a
//! channel), JSON responses and errors, query parameters, and reading
//! request bodies. Every part of `api` speaks through these.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Body as _, Frame, Incoming};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};

/// Why a response body ended early (a proxied upstream that broke off):
/// the connection to the client is then cut, so it sees an incomplete
/// response rather than a short one that looks whole.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

pub type Body = BoxBody<Bytes, BodyError>;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    json_response_ct(code, value, "application/json")
}

pub fn json_response_ct(code: u16, value: &Value, ct: &str) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(header_value) = HeaderValue::from_str(ct) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header_value);
    }
    response
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

/// Decoded query parameters.
pub type Query = HashMap<String, String>;

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(query: Option<&str>) -> Query {
    let mut out = Query::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(key), percent_decode(value));
    }
    out
}

/// Reads a request body, at most [`MAX_BODY`] bytes.
///
/// A body whose declared length (`Content-Length`) is over the limit is
/// refused before any of it is read, as the API server does: hyper sends
/// `100 Continue` to a client that asked for it (`Expect: 100-continue`)
/// only once the body is read, so that client gets the 413 instead and
/// never sends the body. A body of unknown length (chunked) is refused
/// once it passes the limit.
pub async fn read_body(body: Incoming) -> ApiResult<Bytes> {
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(ApiError::too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large())
            } else {
                Err(ApiError::bad_request("could not read the request body"))
            }
        }
    }
}

/// Parses a JSON request body into an object.
pub fn parse_json(bytes: &[u8], content_type: &str) -> ApiResult<Value> {
    if content_type.contains("protobuf") {
        return crate::protobuf::decode(bytes);
    }
    if content_type.contains("cbor") {
        // Clients fall back to JSON on 415.
        return Err(ApiError::unsupported_media(content_type));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => Ok(value),
        Err(e) if content_type.contains("yaml") => Err(ApiError::bad_request(format!(
            "the local cluster accepts YAML bodies only in their JSON form: {e}"
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "error decoding the request body as JSON: {e}"
        ))),
    }
}

/// A streaming body fed by a channel of chunks.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let chunks = stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    StreamBody::new(chunks).map_err(|e| match e {}).boxed()
}
