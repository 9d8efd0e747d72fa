//! Proxies on the way to the API server, used as kubectl uses them:
//! loopback never goes through `HTTPS_PROXY`, another server does unless
//! `NO_PROXY` names it, and the kubeconfig's `proxy-url` carries every
//! request. A small CONNECT proxy in the test records what it was asked.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{LocalCluster, Sandbox};
use predicates::prelude::*;
use predicates::str::contains;

/// A CONNECT proxy that tunnels every request to one address (the local
/// cluster's) whatever host it names, and keeps each request's first line.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                let target = target.clone();
                std::thread::spawn(move || tunnel(client, &target, &log));
            }
        });
        Proxy { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn tunnel(mut client: TcpStream, target: &str, log: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    log.lock().unwrap().push(line.clone());
    if !line.starts_with("CONNECT ") {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    }
    let Ok(mut server) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut from_client), Ok(mut to_client)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut server);
        let _ = server.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut to_client, &mut client);
    let _ = client.shutdown(Shutdown::Write);
}

/// The `host:port` of the local cluster's API server, from its kubeconfig.
fn server_address(cluster: &LocalCluster) -> String {
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("the cluster's kubeconfig");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("server: https://"))
        .expect("a server line")
        .trim_end_matches('/')
        .to_string()
}

/// A copy of the cluster's kubeconfig at `name` in the sandbox, its
/// cluster's lines changed by `edit`.
fn kubeconfig_with(
    sandbox: &Sandbox,
    cluster: &LocalCluster,
    name: &str,
    edit: impl Fn(&str) -> String,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("the cluster's kubeconfig");
    let edited: String = text.lines().map(|line| edit(line) + "\n").collect();
    let path = sandbox.path(name);
    std::fs::write(&path, edited).expect("the edited kubeconfig");
    path
}

/// `command`, killed if it runs for more than 90 s.
fn bounded(command: std::process::Command) -> assert_cmd::Command {
    let mut bounded = assert_cmd::Command::from_std(command);
    bounded.timeout(Duration::from_secs(90));
    bounded
}

#[test]
fn the_local_cluster_is_reached_directly_with_a_proxy_set() {
    let sandbox = Sandbox::new();
    sandbox.write("hi.py", "print('hello through no proxy')\n");
    let _cluster = common::SharedCluster::guard(&sandbox);
    let mut command = sandbox.command();
    command
        .args(["--local", "-c", "echo hi; python hi.py; ps"])
        // Nothing listens on port 9: a request sent there would fail.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "example.com,.svc");
    bounded(command)
        .assert()
        .success()
        .stdout(contains("hi\n").and(contains("hello through no proxy\n")))
        .stdout(contains("DPID"));
}

#[test]
fn a_server_that_is_not_loopback_is_reached_through_https_proxy_unless_no_proxy_names_it() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let address = server_address(&cluster);
    let proxy = Proxy::start(address.clone());
    let port = address.rsplit_once(':').expect("a port").1.to_string();
    // `kubesh-local` is a name in the server's certificate that resolves
    // nowhere: only the proxy, which sends it to the cluster, reaches it.
    let kubeconfig = kubeconfig_with(&sandbox, &cluster, "remote-kubeconfig", |line| {
        line.replace("https://127.0.0.1:", "https://kubesh-local:")
    });
    sandbox.write("hi.py", "print('hello through the proxy')\n");
    let mut command = sandbox.command();
    command
        .env("KUBECONFIG", &kubeconfig)
        .env("HTTPS_PROXY", proxy.url())
        .env("NO_PROXY", "example.com, .svc,10.0.0.0/8,kubesh-local:1")
        .args(["-c", "python hi.py; ps"]);
    bounded(command)
        .assert()
        .success()
        .stdout(contains("hello through the proxy\n").and(contains("DPID")));
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|line| line == &format!("CONNECT kubesh-local:{port} HTTP/1.1")),
        "{seen:?}"
    );

    // Named by NO_PROXY, the server is asked for directly (and not found).
    let before = proxy.seen().len();
    let mut command = sandbox.command();
    command
        .env("KUBECONFIG", &kubeconfig)
        .env("https_proxy", proxy.url())
        .env("no_proxy", "example.com,KUBESH-LOCAL")
        .args(["-c", "ps"]);
    bounded(command).assert().failure().stderr(contains(
        "cannot reach the cluster at https://kubesh-local:",
    ));
    assert_eq!(proxy.seen().len(), before, "{:?}", proxy.seen());
}

#[test]
fn the_kubeconfig_s_proxy_url_carries_every_request_even_to_loopback() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let address = server_address(&cluster);
    let proxy = Proxy::start(address.clone());
    let proxy_line = format!("    proxy-url: {}", proxy.url());
    let kubeconfig = kubeconfig_with(&sandbox, &cluster, "proxied-kubeconfig", |line| {
        if line.trim_start().starts_with("server:") {
            format!("{line}\n{proxy_line}")
        } else {
            line.to_string()
        }
    });
    sandbox.write("hi.py", "print('hello through proxy-url')\n");
    let mut command = sandbox.command();
    command
        .env("KUBECONFIG", &kubeconfig)
        // The kubeconfig's proxy wins over the environment's and NO_PROXY.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "*")
        .args(["-c", "python hi.py; ps; version"]);
    bounded(command)
        .assert()
        .success()
        .stdout(contains("hello through proxy-url\n").and(contains("DPID")))
        .stdout(contains(format!(
            "at https://{address}/ through the proxy {}",
            proxy.url()
        )));
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|line| line == &format!("CONNECT {address} HTTP/1.1")),
        "{seen:?}"
    );
}

#[test]
fn an_unusable_proxy_is_named_by_its_variable() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command();
    command
        .env("HTTPS_PROXY", "ftp://proxy.example")
        .args(["-c", "ps"]);
    bounded(command).assert().failure().stderr(contains(
        "HTTPS_PROXY is not a usable proxy URL (ftp://proxy.example): the scheme \"ftp\" is not supported; use http, https or socks5",
    ));
    // kube-rs refuses a NO_PROXY with an empty entry: said with its name.
    let mut command = sandbox.command();
    command
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("no_proxy", ",example.com")
        .args(["-c", "ps"]);
    bounded(command)
        .assert()
        .failure()
        .stderr(contains("no_proxy cannot be used (\",example.com\"): "));
}

#[test]
fn a_proxy_that_cannot_be_reached_is_named_in_the_message() {
    let sandbox = Sandbox::new();
    let kubeconfig = common::KUBECONFIG.replace(
        "cluster: {server: 'https://127.0.0.1:9'}",
        "cluster: {server: 'https://127.0.0.1:9', proxy-url: 'http://127.0.0.1:9'}",
    );
    assert_ne!(kubeconfig, common::KUBECONFIG);
    std::fs::write(sandbox.path("kubeconfig"), kubeconfig).unwrap();
    let mut command = sandbox.command();
    command.args(["-c", "ps"]);
    bounded(command).assert().failure().stderr(contains(
        "cannot reach the cluster at https://127.0.0.1:9/ through the proxy http://127.0.0.1:9: ",
    ));
}
