//! Connections to the cluster that break while kubesh waits on a program:
//! a load balancer or proxy on the way resets them, or an API server ends
//! a watch. The program runs on; kubesh resumes its watches and the output
//! stream, loses nothing and shows nothing twice.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{LocalCluster, Sandbox};

/// A TCP relay to the cluster's API server, as a load balancer on the
/// way; [`Relay::cut`] breaks every connection through it at once.
struct Relay {
    port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
        let port = listener.local_addr().expect("relay address").port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let kept = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = kept.lock().expect("relay list");
                for stream in [&client, &server] {
                    list.push(stream.try_clone().expect("clone"));
                }
                drop(list);
                for (mut from, mut to) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, open }
    }

    /// Breaks every connection open through the relay.
    fn cut(&self) {
        for stream in self.open.lock().expect("relay list").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// The cluster's kubeconfig, with its server reached through `relay`.
fn through(cluster: &LocalCluster, sandbox: &Sandbox, relay_port: u16) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let server = server_of(&text);
    let relayed = text.replace(&server, &format!("127.0.0.1:{relay_port}"));
    let path = sandbox.path("relayed-kubeconfig");
    std::fs::write(&path, relayed).expect("relayed kubeconfig");
    path
}

/// `127.0.0.1:PORT` of the kubeconfig's server.
fn server_of(kubeconfig: &str) -> String {
    let at = kubeconfig.find("https://").expect("a server") + "https://".len();
    kubeconfig[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect()
}

#[test]
fn a_foreground_program_s_output_survives_broken_connections() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let relay = Relay::to(server_of(&text));
    let kubeconfig = through(&cluster, &sandbox, relay.port);
    // Each line after the first waits until the test has seen the one
    // before and cut the connections: the cut falls mid-stream.
    sandbox.write(
        "ticks.py",
        "import os, time\n\
         for i in range(1, 7):\n\
         \x20   print(f'tick {i}', flush=True)\n\
         \x20   while i < 6 and not os.path.exists(f'{os.environ[\"GO\"]}/go-{i}'):\n\
         \x20       time.sleep(0.05)\n\
         print('done', flush=True)\n",
    );
    // Where the test says "go on": a directory of this machine, which
    // the local cluster's pods see.
    let go = sandbox.path("go");
    std::fs::create_dir_all(&go).expect("go directory");
    let mut child = sandbox
        .command()
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "-c",
            &format!("GO={} python3 ticks.py; echo status=$?", go.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubesh runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(Ok(line)) = lines.next() {
        assert!(Instant::now() < deadline, "kubesh ran too long: {seen:?}");
        if let Some(i) = line.strip_prefix("tick ") {
            relay.cut();
            std::fs::write(go.join(format!("go-{i}")), "").expect("go file");
        }
        seen.push(line);
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    child.wait().expect("kubesh ends");
    assert_eq!(
        seen,
        [
            "tick 1", "tick 2", "tick 3", "tick 4", "tick 5", "tick 6", "done", "status=0"
        ],
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("lost the connection"), "{stderr}");
}

#[test]
fn a_background_launch_waits_on_through_broken_connections() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let relay = Relay::to(server_of(&text));
    let kubeconfig = through(&cluster, &sandbox, relay.port);
    let go = sandbox.path("go");
    std::fs::create_dir_all(&go).expect("go directory");
    // Says it started, then listens only once the test has cut the
    // connections kubesh waits on.
    sandbox.write(
        "late.py",
        "import http.server, os, time\n\
         go = os.environ['GO']\n\
         open(f'{go}/started', 'w').close()\n\
         while not os.path.exists(f'{go}/listen'):\n\
         \x20   time.sleep(0.05)\n\
         http.server.HTTPServer(('', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
    );
    let child = sandbox
        .command()
        .env("KUBECONFIG", &kubeconfig)
        .args(["-c", &format!("GO={} python3 late.py &", go.display())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubesh runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.join("started").exists() {
        assert!(Instant::now() < deadline, "the program did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.cut();
    std::fs::write(go.join("listen"), "").expect("listen file");
    let output = child.wait_with_output().expect("kubesh ends");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("late  ready in"), "{stdout}{stderr}");
}
