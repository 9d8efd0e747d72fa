//! The API server's HTTP edges, seen by a raw client as a real API server's
//! would be: bodies over the 3 MiB limit get a 413 `Status` (before
//! `100 Continue` when the declared length is already over) and a clean
//! end of the connection, never a reset; connections that never finish a
//! TLS handshake or never send a request's headers are closed.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestCluster;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// The server's limit on request bodies.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// What the refused bodies below send in all: far more than the kernel
/// buffers of a loopback connection hold, so a server that stops reading
/// and closes makes these writes fail with a reset.
const OVERSIZED_BODY: usize = 32 * 1024 * 1024;

/// The server's bound on a connection's first byte and TLS handshake
/// (`server::HANDSHAKE_TIMEOUT`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's bound on sending a request's headers
/// (`server::REQUEST_HEADER_TIMEOUT`).
const REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(32);

/// How much earlier than its bound, or later, the server may close a
/// connection (timer and scheduling slack).
const SLACK: Duration = Duration::from_secs(1);

/// How long a test waits for an answer that needs no timeout to pass.
const ANSWER_WAIT: Duration = Duration::from_secs(20);

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The server's `127.0.0.1:PORT`.
fn address(cluster: &TestCluster) -> String {
    cluster
        .cluster
        .server_url()
        .trim_start_matches("https://")
        .to_string()
}

/// A TCP connection to the server whose reads and writes give up after
/// `io_wait`.
fn connect_tcp(cluster: &TestCluster, io_wait: Duration) -> TcpStream {
    let socket = TcpStream::connect(address(cluster)).expect("connect to the API server");
    socket
        .set_read_timeout(Some(io_wait))
        .expect("read timeout");
    socket
        .set_write_timeout(Some(io_wait))
        .expect("write timeout");
    socket
}

/// A TLS connection to the server, trusting the cluster's CA, with its
/// handshake done.
fn connect_tls(cluster: &TestCluster, io_wait: Duration) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(cluster.cluster.ca_pem().as_bytes()).expect("CA PEM");
    roots.add(ca).expect("CA certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name = ServerName::try_from("127.0.0.1").expect("server name");
    let connection =
        rustls::ClientConnection::new(Arc::new(config), server_name).expect("TLS client");
    let mut stream = rustls::StreamOwned::new(connection, connect_tcp(cluster, io_wait));
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// A request head for a ConfigMap create, with `extra_headers` (each
/// ending in CRLF) describing the body.
fn create_configmap_head(cluster: &TestCluster, extra_headers: &str) -> String {
    format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n\
         Host: {host}\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n\
         Accept: application/json\r\n\
         {extra_headers}\r\n",
        host = address(cluster),
        token = cluster.cluster.token(),
    )
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response (an interim `100 Continue` counts as one).
fn read_response(stream: &mut impl Read) -> Response {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "the connection ended within a response head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(error) => panic!(
                "no response head ({error}) after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let content_length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; content_length];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|error| panic!("the body of {head:?}: {error}"));
    Response { status, head, body }
}

/// Asserts a 413 with the API server's `Status`.
fn assert_request_entity_too_large(response: &Response) {
    assert!(
        response
            .head
            .starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"),
        "expected 413 Request Entity Too Large, got {:?}",
        response.head
    );
    let status: Value = serde_json::from_slice(&response.body).expect("a JSON Status");
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["code"], 413, "{status}");
    assert_eq!(status["reason"], "RequestEntityTooLarge", "{status}");
}

/// Asserts that the server ends the connection cleanly (TLS close_notify,
/// then end of stream), not with a reset.
fn assert_clean_end(stream: &mut TlsStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "unexpected bytes after the answer: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(error) => panic!("the connection did not end cleanly: {error}"),
    }
}

/// Writes `total` bytes of body in chunks, as chunked transfer coding when
/// `chunked`; a failed write fails the test.
fn send_body(stream: &mut TlsStream, total: usize, chunked: bool) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let size = chunk.len().min(total - sent);
        let written = if chunked {
            stream
                .write_all(format!("{size:x}\r\n").as_bytes())
                .and_then(|()| stream.write_all(&chunk[..size]))
                .and_then(|()| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(&chunk[..size])
        };
        if let Err(error) = written {
            panic!("the server broke the connection after {sent} bytes of body: {error}");
        }
        sent += size;
    }
    let ended = if chunked {
        stream.write_all(b"0\r\n\r\n")
    } else {
        Ok(())
    };
    ended.and_then(|()| stream.flush()).unwrap_or_else(|error| {
        panic!("the server broke the connection at the body's end: {error}")
    });
}

#[test]
fn expect_continue_with_a_declared_length_over_the_limit_gets_413_before_100_continue() {
    let cluster = TestCluster::start();
    let mut stream = connect_tls(&cluster, ANSWER_WAIT);
    let head = create_configmap_head(
        &cluster,
        &format!(
            "Content-Length: {}\r\nExpect: 100-continue\r\n",
            MAX_BODY + 1
        ),
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.flush().expect("flush");
    // The body is not sent: the client waits for 100 Continue, which must
    // not come.
    let response = read_response(&mut stream);
    assert_request_entity_too_large(&response);
    assert_clean_end(&mut stream);
}

#[test]
fn a_body_declared_over_the_limit_and_sent_at_once_gets_413_not_a_reset() {
    let cluster = TestCluster::start();
    let mut stream = connect_tls(&cluster, ANSWER_WAIT);
    let head = create_configmap_head(&cluster, &format!("Content-Length: {OVERSIZED_BODY}\r\n"));
    stream.write_all(head.as_bytes()).expect("send the head");
    send_body(&mut stream, OVERSIZED_BODY, false);
    let response = read_response(&mut stream);
    assert_request_entity_too_large(&response);
    assert_clean_end(&mut stream);
}

#[test]
fn a_chunked_body_that_grows_over_the_limit_gets_413_not_a_reset() {
    let cluster = TestCluster::start();
    let mut stream = connect_tls(&cluster, ANSWER_WAIT);
    let head = create_configmap_head(
        &cluster,
        "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n",
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.flush().expect("flush");
    // Nothing says the body is too large yet: the server asks for it.
    let interim = read_response(&mut stream);
    assert_eq!(
        interim.status, 100,
        "expected 100 Continue, got {:?}",
        interim.head
    );
    send_body(&mut stream, OVERSIZED_BODY, true);
    let response = read_response(&mut stream);
    assert_request_entity_too_large(&response);
    assert_clean_end(&mut stream);
}

/// Waits (at most `wait`) for the server to end `stream`'s connection;
/// returns how long that took from `since`. End of stream and a reset both
/// count as the end.
fn time_until_closed(stream: &mut impl Read, since: Instant, wait: Duration) -> Duration {
    let mut buffer = [0u8; 1024];
    match stream.read(&mut buffer) {
        Ok(0) => since.elapsed(),
        Ok(read) => panic!(
            "unexpected bytes from the server: {:?}",
            String::from_utf8_lossy(&buffer[..read])
        ),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the connection was still open after {wait:?}")
        }
        // A TLS connection closed without close_notify, or reset.
        Err(_) => since.elapsed(),
    }
}

fn assert_closed_at(what: &str, elapsed: Duration, bound: Duration) {
    assert!(
        elapsed + SLACK >= bound && elapsed <= bound + 2 * SLACK,
        "{what}: closed after {elapsed:?}, expected about {bound:?}"
    );
}

#[test]
fn connections_that_never_finish_a_tls_handshake_are_closed() {
    let cluster = TestCluster::start();
    let wait = HANDSHAKE_TIMEOUT + 5 * SLACK;
    std::thread::scope(|scope| {
        let silent = scope.spawn(|| {
            let mut socket = connect_tcp(&cluster, wait);
            let opened = Instant::now();
            time_until_closed(&mut socket, opened, wait)
        });
        let stalled = scope.spawn(|| {
            let mut socket = connect_tcp(&cluster, wait);
            let opened = Instant::now();
            // The start of a TLS record header, then nothing.
            socket.write_all(&[0x16, 0x03, 0x01]).expect("send");
            time_until_closed(&mut socket, opened, wait)
        });
        let silent = silent.join().expect("the silent connection");
        let stalled = stalled.join().expect("the stalled handshake");
        assert_closed_at("a connection that sends nothing", silent, HANDSHAKE_TIMEOUT);
        assert_closed_at("a handshake that stalls", stalled, HANDSHAKE_TIMEOUT);
    });
    // The server still serves.
    let mut stream = connect_tls(&cluster, ANSWER_WAIT);
    let request = format!(
        "GET /version HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        address(&cluster),
        cluster.cluster.token()
    );
    stream.write_all(request.as_bytes()).expect("send");
    assert_eq!(read_response(&mut stream).status, 200);
}

#[test]
fn connections_that_never_send_request_headers_are_closed() {
    let cluster = TestCluster::start();
    let wait = REQUEST_HEADER_TIMEOUT + 5 * SLACK;
    std::thread::scope(|scope| {
        let silent_after_handshake = scope.spawn(|| {
            let mut stream = connect_tls(&cluster, wait);
            let handshaken = Instant::now();
            time_until_closed(&mut stream, handshaken, wait)
        });
        let partial_headers = scope.spawn(|| {
            let mut socket = connect_tcp(&cluster, wait);
            let opened = Instant::now();
            socket
                .write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .expect("send");
            time_until_closed(&mut socket, opened, wait)
        });
        let silent_after_handshake = silent_after_handshake
            .join()
            .expect("the silent TLS connection");
        let partial_headers = partial_headers.join().expect("the partial headers");
        assert_closed_at(
            "a TLS connection that sends no request",
            silent_after_handshake,
            REQUEST_HEADER_TIMEOUT,
        );
        assert_closed_at(
            "a request whose headers never end",
            partial_headers,
            REQUEST_HEADER_TIMEOUT,
        );
    });
}
