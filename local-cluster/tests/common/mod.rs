//! Shared test helpers: a private cluster per test, kubectl runs, waiting on
//! conditions with a deadline.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use local_cluster::{ImagesSetting, LocalCluster, Options};

pub struct TestCluster {
    pub cluster: LocalCluster,
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// A cluster whose pods run their commands from this machine (the
    /// tests' images are not pulled from anywhere).
    pub fn start() -> TestCluster {
        TestCluster::start_with(ImagesSetting::Host)
    }

    pub fn start_with(images: ImagesSetting) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = LocalCluster::start(Options {
            port: 0,
            kubeconfig: Some(dir.path().join("kubeconfig")),
            state_dir: Some(dir.path().join("state")),
            images,
            images_cache: None,
        })
        .expect("local cluster starts");
        TestCluster { cluster, dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.cluster.kubeconfig_path().to_path_buf()
    }

    /// Runs kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("kubectl runs")
    }

    /// Runs kubectl with stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, manifest: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The process `pid` and every process below it (its children, theirs…),
/// alive (not zombies).
pub fn processes_under(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Zombies are already dead; only their parent has not reaped them.
        if fields.first() == Some(&"Z") {
            continue;
        }
        if let Some(ppid) = fields.get(1).and_then(|f| f.parse::<u32>().ok()) {
            parent_of.push((p, ppid));
        }
    }
    let mut out: Vec<u32> = parent_of
        .iter()
        .filter(|(p, _)| *p == pid)
        .map(|(p, _)| *p)
        .collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// Whether none of `pids` is alive any more (zombies count as gone).
pub fn all_gone(pids: &[u32]) -> bool {
    pids.iter().all(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |stat| {
            stat.rfind(')')
                .and_then(|c| stat[c + 1..].split_whitespace().next())
                == Some("Z")
        })
    })
}

pub const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: python:3.12
        command: ["sh", "-c", "echo started $GREETING; exec sleep 1000"]
        env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: web-config, key: greeting}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"#;

/// A pod `name` (label `app: NAME`) running `python3 SCRIPT PORT`, ready
/// once it listens on `port`, behind a Service `name` whose `service_port`
/// leads to it.
pub fn python_behind_service(
    c: &TestCluster,
    name: &str,
    script: &std::path::Path,
    port: u16,
    service_port: u16,
) {
    c.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  containers:
  - name: {name}
    image: python:3.12
    command: ["python3", "{script}", "{port}"]
    readinessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: {service_port}, targetPort: {port}}}]
"#,
        script = script.display()
    ));
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestCluster {
    /// The server's `host:port` (it also speaks plain HTTP there) and the
    /// bearer token, from the kubeconfig.
    pub fn plain_http(&self) -> (String, String) {
        let kc = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
        let token = kc
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
            .expect("token")
            .trim_matches('"')
            .to_string();
        let server = kc
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .expect("server")
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string();
        (server, token)
    }

    /// A JSON field of an object, through `kubectl get -o jsonpath`.
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let p = format!("jsonpath={path}");
        args.extend(["-o", p.as_str()]);
        let out = self.kubectl(&args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The test base image, built from scratch with this machine's static
/// busybox through the Docker engine (no registry is reachable here):
/// its tag, or why the image tests cannot run (they print it and skip).
pub fn busybox_image() -> Result<String, String> {
    let tag = "kubesh-test/busybox:1".to_string();
    let answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !answers {
        return Err(
            "no Docker engine answers (`docker version` failed); scripts/start-docker-engine.sh starts one"
                .into(),
        );
    }
    let busybox = PathBuf::from("/bin/busybox");
    let elf = std::fs::read(&busybox).map_err(|e| format!("no {}: {e}", busybox.display()))?;
    if has_interpreter(&elf) {
        return Err(format!(
            "{} is not statically linked (install busybox-static)",
            busybox.display()
        ));
    }
    let context = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = context.path();
    std::fs::copy(&busybox, dir.join("busybox")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("rootfs/etc")).map_err(|e| e.to_string())?;
    for (file, text) in [
        ("os-release", "NAME=\"kubesh test image\"\nID=kubesh-test\n"),
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        ("group", "root:x:0:\napp:x:1000:\n"),
    ] {
        std::fs::write(dir.join("rootfs/etc").join(file), text).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY rootfs/ /\n",
    )
    .map_err(|e| e.to_string())?;
    build_image(dir, &tag)?;
    Ok(tag)
}

/// Builds the context `dir` into `tag` with the docker CLI.
pub fn build_image(dir: &std::path::Path, tag: &str) -> Result<(), String> {
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .output()
        .map_err(|e| format!("docker build: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker build of {tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether an ELF file names a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let read = |at: usize, len: usize| -> u64 {
        elf.get(at..at + len).map_or(0, |b| {
            b.iter()
                .rev()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
        })
    };
    let (phoff, phentsize, phnum) = (
        read(0x20, 8) as usize,
        read(0x36, 2) as usize,
        read(0x38, 2) as usize,
    );
    (0..phnum).any(|i| read(phoff + i * phentsize, 4) == 3)
}
