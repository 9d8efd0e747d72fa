//! `curl [-X METHOD] [-H HEADER]… [-d DATA] [-i] URL`: an HTTP request to a
//! service in the cluster, through the API server's service proxy — no jump
//! pod, no port to open. `URL` is `[http://]SERVICE[.NAMESPACE][:PORT][/PATH]`.
//! `localhost` and `127.0.0.1` are this machine (where `forward` listens):
//! those requests go there directly.

use std::io::{ErrorKind, Write};
use std::time::Duration;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;

const USAGE: &str = "usage: curl [-X METHOD] [-H 'Name: value']… [-d DATA] [-i] URL";

/// A parsed `curl` command line.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    headers: Vec<(String, String)>,
    data: Option<String>,
    include_headers: bool,
    service: String,
    namespace: Option<String>,
    port: Option<String>,
    /// Path and query, starting with `/`.
    path: String,
    /// `localhost`, `127.0.0.1` or `[::1]`: this machine, not a service.
    local: bool,
}

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let request = parse(args).map_err(Failure::Usage)?;
    if request.local {
        return local(shell, &request, streams);
    }
    let namespace = request
        .namespace
        .clone()
        .unwrap_or_else(|| shell.target.namespace.clone());
    let interrupt = shell.interrupt.clone();
    let connection = shell.connect()?;
    let target = match &request.port {
        Some(port) => format!("{}:{port}", request.service),
        None => request.service.clone(),
    };
    let uri = format!(
        "/api/v1/namespaces/{namespace}/services/{target}/proxy{}",
        request.path
    );
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(&uri);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = request.data.clone().unwrap_or_default().into_bytes();
    let http_request = builder
        .body(body)
        .map_err(|e| Failure::Usage(format!("the request cannot be built: {e}; {USAGE}")))?;
    let client = connection.client.clone();
    let response = connection.until_interrupted(&interrupt, async move {
        let response = client
            .send(http_request.map(kube::client::Body::from))
            .await?;
        let (parts, body) = response.into_parts();
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .map_err(|e| kube::Error::Service(e.into()))?
            .to_bytes();
        Ok::<_, kube::Error>((parts, bytes))
    })?;
    let (parts, bytes) = response.map_err(|e| connection.explain(e))?;
    if !parts.status.is_success()
        && let Ok(status) = serde_json::from_slice::<kube::core::Status>(&bytes)
        && !status.message.is_empty()
    {
        // The API server answered, not the service: say why, without its JSON.
        let no_service = status.reason == "NotFound"
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "services");
        let hint = match parts.status.as_u16() {
            503 => "; `ps` shows whether its pods are ready",
            404 if no_service => "; `ps` lists the dprocs and their URLs",
            _ => "",
        };
        return Err(Failure::Failed(format!(
            "{target}: {}{hint}",
            status.message
        )));
    }
    let out = &mut *streams.out;
    if request.include_headers {
        writeln!(out, "HTTP/1.1 {}", parts.status)?;
        for (name, value) in &parts.headers {
            writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        writeln!(out)?;
    }
    out.write_all(&bytes)?;
    out.flush()?;
    if parts.status.is_success() || parts.status.is_redirection() {
        Ok(0)
    } else {
        let _ = writeln!(
            streams.err,
            "kubesh: curl: {target}{}: HTTP {}",
            request.path, parts.status
        );
        Ok(22)
    }
}

fn parse(args: &[String]) -> Result<Request, String> {
    let mut method = None;
    let mut headers = Vec::new();
    let mut data = None;
    let mut include_headers = false;
    let mut url = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
        };
        match arg.as_str() {
            "-X" | "--request" => method = Some(value(arg)?.to_uppercase()),
            "-H" | "--header" => {
                let header = value(arg)?;
                let (name, text) = header
                    .split_once(':')
                    .ok_or_else(|| format!("{header:?} is not a header (Name: value); {USAGE}"))?;
                headers.push((name.trim().to_string(), text.trim().to_string()));
            }
            "-d" | "--data" => data = Some(value(arg)?),
            "-i" | "--include" => include_headers = true,
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("{other}: not an option kubesh's curl has; {USAGE}"));
            }
            other if url.is_none() => url = Some(other.to_string()),
            other => return Err(format!("{other:?}: one URL only; {USAGE}")),
        }
    }
    let url = url.ok_or_else(|| USAGE.to_string())?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(&url);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_string()),
        Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.to_string())),
        None => (authority, None),
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let host = if local { "local" } else { host };
    let mut labels = host.split('.');
    let service = labels.next().unwrap_or_default().to_string();
    let namespace = labels.next().filter(|n| *n != "svc").map(str::to_string);
    if service.is_empty() {
        return Err(format!(
            "{url:?} names no service; e.g. `curl stock-gen:9999/stockdata`"
        ));
    }
    Ok(Request {
        method: method.unwrap_or_else(|| {
            if data.is_some() {
                "POST".into()
            } else {
                "GET".into()
            }
        }),
        headers,
        data,
        include_headers,
        service,
        namespace,
        port,
        path,
        local,
    })
}

/// A request to this machine (a forwarded port), over HTTP/1.0 so that the
/// answer ends with the connection.
fn local(shell: &Shell, request: &Request, streams: &mut Streams<'_>) -> Outcome {
    use std::io::Read;
    let port: u16 = request
        .port
        .as_deref()
        .unwrap_or("80")
        .parse()
        .map_err(|_| {
            Failure::Usage(format!(
                "{} is not a port; {USAGE}",
                request.port.as_deref().unwrap_or_default()
            ))
        })?;
    let address = format!("localhost:{port}");
    let failed = |what: &str, error: std::io::Error| {
        Failure::Failed(format!(
            "{address}: {what}: {error}; `jobs` shows whether a forward listens there"
        ))
    };
    let socket = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(5))
        .map_err(|e| failed("cannot connect", e))?;
    let body = request.data.clone().unwrap_or_default();
    let mut head = format!(
        "{} {} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: kubesh\r\nContent-Length: {}\r\n",
        request.method,
        request.path,
        body.len()
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| failed("cannot send the request", e))?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if shell.interrupt.is_set() {
                    return Ok(crate::status::STATUS_INTERRUPTED);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(failed("the answer broke off", e)),
        }
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&response[..at], &response[at + 4..]),
        None => {
            return Err(Failure::Failed(format!(
                "{address}: the answer is not HTTP"
            )));
        }
    };
    let head = String::from_utf8_lossy(head);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let out = &mut *streams.out;
    if request.include_headers {
        writeln!(out, "{}\n", head.replace("\r\n", "\n"))?;
    }
    out.write_all(body)?;
    out.flush()?;
    if (200..400).contains(&status) {
        Ok(0)
    } else {
        let _ = writeln!(
            streams.err,
            "kubesh: curl: {address}{}: HTTP {status}",
            request.path
        );
        Ok(22)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn urls_name_a_service_its_port_and_a_path() {
        let request = parse(&words(&["stock-gen:9999/stockdata?n=3"])).unwrap();
        assert_eq!(
            (
                request.service.as_str(),
                request.port.as_deref(),
                request.path.as_str()
            ),
            ("stock-gen", Some("9999"), "/stockdata?n=3")
        );
        assert_eq!(request.method, "GET");
        let request = parse(&words(&["http://stock-con.shop.svc.cluster.local/healthz"])).unwrap();
        assert_eq!(
            (
                request.service.as_str(),
                request.namespace.as_deref(),
                request.port
            ),
            ("stock-con", Some("shop"), None)
        );
        let request = parse(&words(&["web"])).unwrap();
        assert_eq!(request.path, "/");
        assert!(!request.local);
        for url in [
            "localhost:8080/x",
            "http://127.0.0.1:8080/x",
            "[::1]:8080/x",
        ] {
            let request = parse(&words(&[url])).unwrap();
            assert!(request.local, "{url}");
            assert_eq!(
                (request.port.as_deref(), request.path.as_str()),
                (Some("8080"), "/x")
            );
        }
    }

    #[test]
    fn options() {
        let request = parse(&words(&[
            "-X",
            "put",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
            "-i",
            "api:80/items",
        ]))
        .unwrap();
        assert_eq!(request.method, "PUT");
        assert_eq!(
            request.headers,
            [("Content-Type".to_string(), "application/json".to_string())]
        );
        assert!(request.include_headers);
        assert_eq!(parse(&words(&["-d", "x", "api"])).unwrap().method, "POST");
        assert!(
            parse(&words(&["--compressed", "api"]))
                .unwrap_err()
                .contains("not an option")
        );
        assert!(
            parse(&words(&["-H", "nocolon", "api"]))
                .unwrap_err()
                .contains("not a header")
        );
        assert!(parse(&words(&[])).is_err());
    }
}
