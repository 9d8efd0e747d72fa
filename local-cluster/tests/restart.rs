//! A cluster with a state directory keeps what it is given: killed with
//! SIGKILL and started again on the same directory, it has every object,
//! its resourceVersions go on upward, a watch from before gets 410 Gone,
//! its pods run again (started afresh, restart counted), and the
//! kubeconfig written before still works. Real kubectl against the
//! standalone server binary, as a user runs it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::wait_for;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// The standalone server on a state directory, killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

/// How a start ended: serving, or exited with its error output.
enum Started {
    Serving(Server),
    Refused(String),
}

fn start(state: &Path, kubeconfig: &Path) -> Started {
    start_as(
        Command::new(env!("CARGO_BIN_EXE_local-cluster")),
        state,
        kubeconfig,
    )
}

/// Starts the server by `command` (the server's binary, or a command that
/// runs it).
fn start_as(mut command: Command, state: &Path, kubeconfig: &Path) -> Started {
    let mut child = command
        // Its pods run their commands from this machine (no registry here).
        .env("KUBESH_LOCAL_IMAGES", "host")
        .arg("--state")
        .arg(state)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let (ready_tx, ready) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("kubeconfig:") {
                let _ = ready_tx.send(());
            }
        }
    });
    let (err_tx, stderr) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    // Ready, or exited: whichever comes first, within T.
    let deadline = std::time::Instant::now() + T;
    loop {
        if ready.recv_timeout(Duration::from_millis(50)).is_ok() {
            return Started::Serving(Server { child, stderr });
        }
        if let Ok(Some(_)) = child.try_wait() {
            let text: Vec<String> = stderr.iter().collect();
            return Started::Refused(text.join("\n"));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server neither served nor exited within {T:?}"
        );
    }
}

fn serving(state: &Path, kubeconfig: &Path) -> Server {
    match start(state, kubeconfig) {
        Started::Serving(server) => server,
        Started::Refused(why) => panic!("the server did not start: {why}"),
    }
}

fn refused(state: &Path, kubeconfig: &Path) -> String {
    match start(state, kubeconfig) {
        Started::Serving(_) => panic!("a server started where it must be refused"),
        Started::Refused(why) => why,
    }
}

impl Server {
    /// SIGKILL, as a crash or `kill -9` ends it.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the server ends");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.stderr.try_recv();
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("kubectl runs")
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(kubeconfig: &Path, manifest: &str) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("manifest written");
    let out = child.wait_with_output().expect("kubectl ends");
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(kubeconfig: &Path, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend(["-o", "json"]);
    serde_json::from_str(&ok(kubeconfig, &args)).expect("JSON from kubectl")
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

/// The one pod of the Deployment `web`.
fn web_pod(kubeconfig: &Path) -> Option<Value> {
    let pods = json(kubeconfig, &["pods", "-l", "app=web"]);
    let items = pods["items"].as_array()?;
    (items.len() == 1).then(|| items[0].clone())
}

fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && pod["status"]["containerStatuses"][0]["ready"] == true
}

/// The start line the web pod's program printed in its current run.
fn start_line(kubeconfig: &Path, pod: &str) -> Option<String> {
    let out = kubectl(kubeconfig, &["logs", pod]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("started "))
        .map(String::from)
}

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "echo started $(date +%s%N); exec sleep 1000"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["true"]}]
"#;

#[test]
fn objects_pods_and_the_kubeconfig_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let kubeconfig = dir.path().join("kubeconfig");
    let server = serving(&state, &kubeconfig);
    apply(&kubeconfig, APP);
    let before = wait_for("the web pod to run and the done pod to finish", T, || {
        let done = json(&kubeconfig, &["pod", "done"]);
        let web = web_pod(&kubeconfig).filter(running_and_ready)?;
        let line = start_line(&kubeconfig, web["metadata"]["name"].as_str()?)?;
        (done["status"]["phase"] == "Succeeded").then_some((web, line))
    });
    let (web, first_start) = before;
    let web_name = web["metadata"]["name"].as_str().expect("name").to_string();
    let settings = json(&kubeconfig, &["configmap", "settings"]);
    let service = json(&kubeconfig, &["service", "web"]);
    let list: Value =
        serde_json::from_str(&ok(&kubeconfig, &["get", "--raw", "/api/v1/configmaps"]))
            .expect("a list");
    let last_rv = rv(&list);
    let kubeconfig_before = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    // A second server on the same state directory is refused while the
    // first one runs.
    let other = refused(&state, &dir.path().join("other-kubeconfig"));
    assert!(other.contains("in use by another local cluster"), "{other}");

    server.kill();
    let _server = serving(&state, &kubeconfig);

    // The kubeconfig is the same file, and the one from before works.
    let saved: PathBuf = dir.path().join("kubeconfig-before");
    std::fs::write(&saved, &kubeconfig_before).expect("copy");
    assert_eq!(
        std::fs::read_to_string(&kubeconfig).expect("kubeconfig"),
        kubeconfig_before
    );
    // Still for this user only, as are the store (which keeps the CA's
    // key and the token) and the state directory.
    for (path, mode) in [
        (kubeconfig.clone(), 0o600),
        (state.join("store.db"), 0o600),
        (state.clone(), 0o700),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let found = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(found, mode, "{}: {found:o}", path.display());
    }
    // Every object is there, as it was.
    let settings_after = json(&saved, &["configmap", "settings"]);
    assert_eq!(settings_after["data"], settings["data"]);
    assert_eq!(
        settings_after["metadata"]["uid"],
        settings["metadata"]["uid"]
    );
    assert_eq!(rv(&settings_after), rv(&settings));
    let service_after = json(&saved, &["service", "web"]);
    assert_eq!(
        service_after["spec"]["clusterIP"],
        service["spec"]["clusterIP"]
    );
    // resourceVersions go on upward.
    let new_cm = ok(
        &saved,
        &[
            "create",
            "configmap",
            "after",
            "--from-literal=a=b",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    let new_rv: u64 = new_cm.trim().parse().expect("a resourceVersion");
    assert!(new_rv > last_rv, "{new_rv} after {last_rv}");
    // A watch from before the restart is told its version is gone.
    let watch = kubectl(
        &saved,
        &[
            "get",
            "--raw",
            &format!(
                "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}",
                rv(&settings)
            ),
        ],
    );
    let said = String::from_utf8_lossy(&watch.stdout);
    assert!(
        said.contains("\"code\":410") && said.contains("Expired"),
        "{said}{}",
        String::from_utf8_lossy(&watch.stderr)
    );

    // The web pod runs again: the same pod, started afresh, its restart
    // counted, with the events a node's reboot gives.
    let (web_after, second_start) = wait_for("the web pod to run again", T, || {
        let web = web_pod(&saved).filter(running_and_ready)?;
        let line = start_line(&saved, &web_name)?;
        (line != first_start).then_some((web, line))
    });
    assert_eq!(web_after["metadata"]["uid"], web["metadata"]["uid"]);
    let status = &web_after["status"]["containerStatuses"][0];
    assert_eq!(status["restartCount"], 1, "{status}");
    assert_eq!(status["lastState"]["terminated"]["reason"], "Unknown");
    assert_ne!(second_start, first_start);
    let events = ok(
        &saved,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={web_name}"),
        ],
    );
    assert!(events.contains("SandboxChanged"), "{events}");
    // A pod that had finished stays as it was.
    let done = json(&saved, &["pod", "done"]);
    assert_eq!(done["status"]["phase"], "Succeeded");
    assert_eq!(done["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[test]
fn a_kept_port_that_is_taken_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let kubeconfig = dir.path().join("kubeconfig");
    let server = serving(&state, &kubeconfig);
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    let port = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .expect("the server's address")
        .to_string();
    server.kill();
    let taken = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).expect("the port");
    let why = refused(&state, &kubeconfig);
    assert!(
        why.contains(&format!("port {port}")) && why.contains("taken by another program"),
        "{why}"
    );
    drop(taken);
    let _server = serving(&state, &kubeconfig);
    assert_eq!(
        std::fs::read_to_string(&kubeconfig).expect("kubeconfig"),
        text
    );
    ok(&kubeconfig, &["get", "namespaces"]);
}

#[test]
fn a_state_directory_of_another_format_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("store.db"), "a file of something else\n").expect("file");
    let why = refused(&state, &dir.path().join("kubeconfig"));
    assert!(
        why.contains(&state.join("store.db").display().to_string())
            && why.contains("not a store")
            && why.contains("another state directory"),
        "{why}"
    );
    // Nothing was written over it.
    assert_eq!(
        std::fs::read_to_string(state.join("store.db")).expect("file"),
        "a file of something else\n"
    );
}

/// A state directory on a small file system of its own: a tmpfs mounted in
/// a mount namespace that only this test's processes enter, so the disk a
/// server writes to can be filled, made read-only and grown again as a
/// user's disk is, without touching this machine's mounts.
struct SmallDisk {
    /// The process that holds the mount namespace (it ends when its stdin
    /// closes, and the tmpfs with it).
    holder: Child,
    dir: PathBuf,
}

impl SmallDisk {
    /// A tmpfs of `size` at `dir`; or why this process cannot mount one
    /// (not root, no `unshare`).
    fn new(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -t tmpfs -o size=\"$1\",mode=0700 kubesh-test \"$2\" && echo mounted && exec cat >/dev/null")
            .args(["sh", size])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare cannot run: {e}"))?;
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "this process cannot mount a tmpfs in a mount namespace of its own: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk {
            holder,
            dir: dir.to_path_buf(),
        })
    }

    /// `program`, run in the namespace where the tmpfs is mounted.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--mount", "--"])
            .arg(program);
        command
    }

    /// Mounts the tmpfs again with `options` (`ro`, `rw,size=…`).
    fn remount(&self, options: &str) {
        let out = self
            .command("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "remount {options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The server on a state directory of `disk`.
fn start_on(disk: &SmallDisk, kubeconfig: &Path) -> Started {
    start_as(
        disk.command(env!("CARGO_BIN_EXE_local-cluster")),
        &disk.dir,
        kubeconfig,
    )
}

#[test]
fn a_full_or_read_only_disk_is_named_and_the_store_stays_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = match SmallDisk::new(&dir.path().join("state"), "4m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: a full disk cannot be made here: {why}");
            return;
        }
    };
    let kubeconfig = dir.path().join("kubeconfig");
    let Started::Serving(server) = start_on(&disk, &kubeconfig) else {
        panic!("the server did not start on an empty tmpfs");
    };
    // Fill the disk with ConfigMaps of 256 KiB until one is refused.
    let data = dir.path().join("data");
    std::fs::write(&data, "x".repeat(256 * 1024)).expect("data file");
    let from_file = format!("--from-file=data={}", data.display());
    let mut acknowledged = Vec::new();
    let refusal = loop {
        assert!(
            acknowledged.len() < 40,
            "40 ConfigMaps of 256 KiB were all stored on a disk of 4 MiB"
        );
        let name = format!("fill-{}", acknowledged.len());
        let out = kubectl(&kubeconfig, &["create", "configmap", &name, &from_file]);
        if !out.status.success() {
            break (name, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        acknowledged.push(name);
    };
    let (refused_name, message) = refusal;
    assert!(
        message.contains("cannot write the local cluster's store")
            && message.contains("the disk is full; free some space and try again")
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert!(
        !acknowledged.is_empty(),
        "nothing could be stored: {message}"
    );
    // The server goes on answering, and the refused object is not there.
    ok(&kubeconfig, &["get", "configmap", &acknowledged[0]]);
    let missing = kubectl(&kubeconfig, &["get", "configmap", &refused_name]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    server.kill();

    // Read-only: the next start says so and what to do, and writes nothing.
    disk.remount("ro");
    let Started::Refused(why) = start_on(&disk, &kubeconfig) else {
        panic!("a server started on a read-only state directory");
    };
    assert!(why.contains("make it writable"), "{why}");

    // Given room again, every acknowledged write is there, whole.
    disk.remount("rw,size=16m");
    let Started::Serving(_server) = start_on(&disk, &kubeconfig) else {
        panic!("the server did not start again once the disk had room");
    };
    let stored = std::fs::read_to_string(&data).expect("data file");
    for name in &acknowledged {
        let object = json(&kubeconfig, &["configmap", name]);
        assert!(object["data"]["data"] == stored.as_str(), "{name} changed");
    }
    let missing = kubectl(&kubeconfig, &["get", "configmap", &refused_name]);
    assert!(!missing.status.success(), "{refused_name} was stored");
    ok(
        &kubeconfig,
        &["create", "configmap", "after", "--from-literal=a=b"],
    );
}
