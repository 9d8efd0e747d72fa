//! What the integration tests share: a `kubesh` command with its own home,
//! data and config directories and a kubeconfig naming a known context.

#![allow(dead_code)] // each test file uses its own part of this module

pub mod images;

use std::path::{Path, PathBuf};
use std::process::Command;

pub const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
current-context: test-ctx
contexts:
- name: test-ctx
  context: {cluster: c, user: u, namespace: shop}
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:9'}
users:
- name: u
  user: {token: not-a-real-token}
";

/// An isolated place to run kubesh in.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        for sub in ["home", "data", "config", "cache", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("sandbox directory");
        }
        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).expect("kubeconfig");
        Sandbox { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The working directory kubesh starts in.
    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent directory");
        }
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// `kubesh` with this sandbox's environment and working directory.
    pub fn command(&self) -> Command {
        let mut command = Command::new(kubesh_binary());
        self.apply(&mut command);
        command
    }

    pub fn apply(&self, command: &mut Command) {
        command
            .current_dir(self.work())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("KUBECONFIG", self.path("kubeconfig"))
            // The tests' programs run in stock runtime images no registry
            // here serves: local clusters run their commands from this
            // machine (tests of images ask for the engine themselves).
            .env("KUBESH_LOCAL_IMAGES", "host")
            .env_remove("NO_COLOR");
    }

    pub fn history_file(&self) -> PathBuf {
        self.path("data/kubesh/history")
    }
}

pub fn kubesh_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubesh"))
}

/// A local cluster run by `kubesh local-cluster` for one test; stopped
/// (every pod process with it) when dropped.
pub struct LocalCluster {
    child: std::process::Child,
    pub kubeconfig: PathBuf,
}

impl LocalCluster {
    pub fn start(sandbox: &Sandbox) -> LocalCluster {
        LocalCluster::start_with(sandbox, Command::new(kubesh_binary()))
    }

    /// A local cluster run by another build of kubesh (the static one).
    pub fn start_binary(sandbox: &Sandbox, binary: &Path) -> LocalCluster {
        LocalCluster::start_with(sandbox, Command::new(binary))
    }

    /// A local cluster whose pods run directly on this machine, as where
    /// the kernel refuses namespaces: they share its network.
    pub fn start_without_sandboxes(sandbox: &Sandbox) -> LocalCluster {
        let mut command = Command::new(kubesh_binary());
        command.env("KUBESH_LOCAL_SANDBOX", "off");
        LocalCluster::start_with(sandbox, command)
    }

    /// A local cluster that speaks exec and attach as an API server before
    /// Kubernetes 1.30 does: only `v4.channel.k8s.io`.
    pub fn start_before_1_30(sandbox: &Sandbox) -> LocalCluster {
        let mut command = Command::new(kubesh_binary());
        command.env("KUBESH_LOCAL_EXEC_PROTOCOLS", "v4");
        LocalCluster::start_with(sandbox, command)
    }

    /// A local cluster whose first pull of each image takes `seconds`, as
    /// a real node's does (nothing is downloaded).
    #[allow(dead_code)]
    pub fn start_pulling_for(sandbox: &Sandbox, seconds: u32) -> LocalCluster {
        let mut command = Command::new(kubesh_binary());
        command.env("KUBESH_LOCAL_PULL_SECONDS", seconds.to_string());
        LocalCluster::start_with(sandbox, command)
    }

    /// A local cluster whose pods run in their images, through the
    /// Docker engine (the caller has checked that one answers).
    pub fn start_with_images(sandbox: &Sandbox) -> LocalCluster {
        let mut command = Command::new(kubesh_binary());
        command.env("KUBESH_LOCAL_IMAGES", "engine");
        LocalCluster::start_with(sandbox, command)
    }

    fn start_with(sandbox: &Sandbox, mut command: Command) -> LocalCluster {
        use std::io::BufRead;
        if !command
            .get_envs()
            .any(|(name, _)| name == "KUBESH_LOCAL_IMAGES")
        {
            // The tests' programs run in stock runtime images that no
            // registry here serves: their commands run from this machine.
            command.env("KUBESH_LOCAL_IMAGES", "host");
        }
        let kubeconfig = sandbox.path("cluster/kubeconfig");
        let mut child = command
            .args(["local-cluster", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--state")
            .arg(sandbox.path("cluster/state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubesh local-cluster starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        // The kubeconfig line is printed once the server accepts requests.
        let ready = lines.any(|line| line.is_ok_and(|l| l.starts_with("kubeconfig:")));
        assert!(ready, "the local cluster printed its kubeconfig");
        std::thread::spawn(move || for _ in lines {});
        LocalCluster { child, kubeconfig }
    }

    /// `kubesh` in `sandbox`, talking to this cluster.
    pub fn kubesh(&self, sandbox: &Sandbox) -> Command {
        let mut command = sandbox.command();
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// `kubectl` talking to this cluster.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new("kubectl");
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// What `kubectl ARGS` prints, trimmed.
    pub fn kubectl_stdout(&self, args: &[&str]) -> String {
        let output = self.kubectl().args(args).output().expect("kubectl runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// `kubectl apply -f -` of some YAML, which must succeed.
    pub fn apply(&self, yaml: &str) {
        let mut apply = self
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut stdin = apply.stdin.take().expect("piped stdin");
        std::io::Write::write_all(&mut stdin, yaml.as_bytes()).expect("kubectl reads the YAML");
        drop(stdin);
        assert!(
            apply.wait().expect("kubectl ends").success(),
            "kubectl apply of:\n{yaml}"
        );
    }

    /// A page of the Service `name` on `port`, through the API server's
    /// service proxy (as from inside the cluster); `None` when it gives no
    /// answer.
    pub fn fetch_service(&self, name: &str, port: u16, path: &str) -> Option<String> {
        let output = self
            .kubectl()
            .args([
                "get",
                "--request-timeout=5s",
                "--raw",
                &format!("/api/v1/namespaces/default/services/{name}:{port}/proxy{path}"),
            ])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).to_string())
    }

    /// Waits until `kubectl ARGS` prints exactly `expected` (trimmed).
    pub fn wait_for_kubectl(&self, args: &[&str], expected: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            let output = self.kubectl().args(args).output().expect("kubectl runs");
            last = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if last == expected.trim() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("kubectl {args:?} printed {last:?}, not {expected:?}");
    }
}

impl LocalCluster {
    /// Ends the API server at once (SIGKILL), as a crash or a lost network
    /// would: it says nothing to its clients first.
    pub fn crash(mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already ended (`crash`)
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The sandbox's own shared local cluster, the one `kubesh --local` and
/// `kubesh local-cluster start` start in its data directory: stopped when
/// dropped, even when the test fails, so that no test leaves one running.
pub struct SharedCluster<'a> {
    sandbox: &'a Sandbox,
}

impl<'a> SharedCluster<'a> {
    /// Guards the cluster `kubesh --local` will start in `sandbox`.
    pub fn guard(sandbox: &'a Sandbox) -> SharedCluster<'a> {
        SharedCluster { sandbox }
    }

    pub fn dir(&self) -> PathBuf {
        self.sandbox.path("data/kubesh/local-cluster")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir().join("kubeconfig")
    }

    /// The pid the running cluster wrote in its state directory's lock
    /// file (still there after it ended).
    pub fn recorded_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir().join("state/server.lock")).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("pid "))
            .and_then(|pid| pid.parse().ok())
    }

    /// `kubectl` talking to this cluster.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new("kubectl");
        command.env("KUBECONFIG", self.kubeconfig());
        command
    }
}

impl Drop for SharedCluster<'_> {
    fn drop(&mut self) {
        let mut stop = self.sandbox.command();
        stop.args(["local-cluster", "stop"]);
        let _ = bounded(stop, &[]).output();
        // A stop that did not work must still leave nothing running: the
        // process whose command line names this sandbox's state, if any.
        if let Some(pid) = self.recorded_pid() {
            let state = self.dir().join("state");
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&*state.to_string_lossy()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// A TCP port nobody listens on right now.
/// Fetches a page from 127.0.0.1:`port` (HTTP/1.0), waiting at most
/// `timeout` for the answer; its body, or `None` when the connection gives
/// no HTTP answer.
pub fn fetch(port: u16, timeout: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `command` with `args`, killed if it runs for more than 90 s (a launch
/// that waits forever fails the test rather than hanging it).
pub fn bounded(mut command: std::process::Command, args: &[&str]) -> assert_cmd::Command {
    command.args(args);
    let mut bounded = assert_cmd::Command::from_std(command);
    bounded.timeout(std::time::Duration::from_secs(90));
    bounded
}
