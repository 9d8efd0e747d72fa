//! The image built for a program reaches the cluster before anything is
//! created: pushed to the registry `KUBESH_REGISTRY` names (a real
//! registry, Debian's `docker-registry`, started by the test) and named
//! there by the pods, once; loaded into the nodes of a kind cluster whose
//! node containers are on the same engine; refused in one sentence for a
//! cluster that can see neither. The tests need a Docker engine and say
//! why they are skipped where none answers.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::images::base_image;
use common::{LocalCluster, Sandbox, bounded, free_port};

/// A program served by busybox's httpd from the image's files.
const SERVE_SH: &str = "mkdir -p /tmp/www\ncat /greeting > /tmp/www/index.html\nexec httpd -f -p \"$PORT\" -h /tmp/www\n";

/// Writes a program that serves a greeting from its image, built `FROM base`.
fn write_served_program(sandbox: &Sandbox, base: &str) {
    sandbox.write("app/app.sh", SERVE_SH);
    sandbox.write("app/greeting.txt", "served from the built image\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nCOPY greeting.txt /greeting\n"),
    );
}

/// The tag `--dry-run` shows for the program's image, as built.
fn built_tag(cluster: &LocalCluster, sandbox: &Sandbox) -> String {
    let dry = cluster
        .kubesh(sandbox)
        .args(["--dry-run", "-c", "bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let out = String::from_utf8_lossy(&dry.stdout).to_string();
    out.lines()
        .find_map(|line| line.trim().strip_prefix("image: kubesh-build/app:"))
        .map(|hash| format!("kubesh-build/app:{hash}"))
        .unwrap_or_else(|| panic!("--dry-run shows the image: {out}"))
}

/// A GET of `path` on 127.0.0.1:`port`: the status line and the body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// A registry (Debian's `docker-registry`) on a free loopback port with
/// its storage in a temporary directory; stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A user of the registries that ask for credentials, and the bcrypt hash
/// of their password as `htpasswd` keeps it.
const USER: &str = "ada";
const PASSWORD: &str = "kubesh-test-password";
const PASSWORD_BCRYPT: &str = "$2b$04$NW1/fMetWkUHqMkETpjK5uwdGLCXNlnAUsYiJOcUpk3Z7zEBPpEmS";

impl Registry {
    /// A registry that asks for no credentials.
    fn start() -> Result<Registry, String> {
        Registry::start_with(false)
    }

    /// A registry that lets only `USER` push and pull.
    fn start_with_credentials() -> Result<Registry, String> {
        Registry::start_with(true)
    }

    fn start_with(credentials: bool) -> Result<Registry, String> {
        let program = ["/usr/bin/docker-registry", "docker-registry"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .ok_or("no docker-registry (Debian's docker-registry package) to push to")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let config = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if credentials {
            let users = dir.path().join("htpasswd");
            std::fs::write(&users, format!("{USER}:{PASSWORD_BCRYPT}\n"))
                .map_err(|e| e.to_string())?;
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kubesh-test\n    path: {}\n",
                users.display()
            ));
        }
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("log")).map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("docker-registry cannot start: {e}"))?;
        let registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Up once `/v2/` answers (401 where it asks for credentials).
        while http_get(port, "/v2/")
            .is_none_or(|(status, _)| !status.contains(" 200") && !status.contains(" 401"))
        {
            if Instant::now() > deadline {
                return Err(format!("docker-registry did not answer on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_built_image_is_pushed_to_the_registry_kubesh_registry_names_once() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!(
                "skipped a_built_image_is_pushed_to_the_registry_kubesh_registry_names_once: {why}"
            );
            return;
        }
    };
    let registry = match Registry::start() {
        Ok(registry) => registry,
        Err(why) => {
            println!(
                "skipped a_built_image_is_pushed_to_the_registry_kubesh_registry_names_once: {why}"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    write_served_program(&sandbox, base);
    let prefix = format!("127.0.0.1:{}/kubesh-test", registry.port);
    let tag = built_tag(&cluster, &sandbox);
    let reference = format!("{prefix}/{tag}");
    let kubesh_with = |args: &[&str]| {
        let mut command = cluster.kubesh(&sandbox);
        command.env("KUBESH_REGISTRY", &prefix);
        bounded(command, args)
    };
    let kubesh = |script: &str| kubesh_with(&["-c", script]);

    let dry = kubesh_with(&["--dry-run", "-c", "bash app/app.sh &"])
        .output()
        .expect("kubesh runs");
    let shown = String::from_utf8_lossy(&dry.stdout);
    assert!(
        shown.contains(&format!(
            "# app: the image would be pushed to {prefix} as {reference}\n"
        )) && shown.contains(&format!("image: {reference}")),
        "--dry-run says where the image goes, and the pods name it there: {shown}"
    );

    let port = free_port();
    let first = kubesh(&format!("SERVICE_PORT={port} bash app/app.sh &"))
        .assert()
        .success();
    let said = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(said.contains(&format!("pushed {reference} in ")), "{said}");
    let image = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=app",
        "-o",
        "jsonpath={.items[0].spec.containers[0].image}",
    ]);
    assert_eq!(image, reference, "the pod names the registry");
    let (status, catalog) = http_get(registry.port, "/v2/_catalog").expect("the registry answers");
    assert!(
        status.contains(" 200") && catalog.contains("\"kubesh-test/kubesh-build/app\""),
        "the registry lists the repository: {status} {catalog}"
    );
    kubesh(&format!("curl app:{port}/"))
        .assert()
        .success()
        .stdout("served from the built image\n");

    // The same files again: built and pushed already.
    kubesh("kill app").assert().success();
    let second = kubesh(&format!("SERVICE_PORT={port} bash app/app.sh &"))
        .assert()
        .success();
    let said = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(
        !said.contains("push") && !said.contains("built"),
        "not built nor pushed again: {said}"
    );
    kubesh("kill app").assert().success();
}

/// A registry that asks for credentials gets those of the user's Docker
/// config (`$DOCKER_CONFIG/config.json`): an `auths` entry, or what the
/// credential helper `credHelpers` names for it prints, as the docker CLI
/// asks one; without any, its refusal in its own words and nothing made.
#[test]
fn a_registry_that_asks_for_credentials_gets_those_of_the_docker_config() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!(
                "skipped a_registry_that_asks_for_credentials_gets_those_of_the_docker_config: {why}"
            );
            return;
        }
    };
    let registry = match Registry::start_with_credentials() {
        Ok(registry) => registry,
        Err(why) => {
            println!(
                "skipped a_registry_that_asks_for_credentials_gets_those_of_the_docker_config: {why}"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    let host = format!("127.0.0.1:{}", registry.port);
    let docker_config = sandbox.path("docker-config");
    std::fs::create_dir_all(&docker_config).expect("a Docker config directory");
    let config = |json: String| {
        std::fs::write(docker_config.join("config.json"), json).expect("a Docker config")
    };
    let launch = |greeting: &str| {
        sandbox.write("app/app.sh", "cat /greeting\n");
        sandbox.write("app/greeting.txt", greeting);
        sandbox.write(
            "app/Dockerfile",
            format!("FROM {base}\nCOPY greeting.txt /greeting\n"),
        );
        let mut command = cluster.kubesh(&sandbox);
        command
            .env("KUBESH_REGISTRY", format!("{host}/creds"))
            .env("DOCKER_CONFIG", &docker_config)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    sandbox.path("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        let output = bounded(command, &["-c", "bash app/app.sh"])
            .output()
            .expect("kubesh runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };

    config("{}".into());
    let (ok, _, said) = launch("nobody\n");
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!("kubesh: pushing {host}/creds/kubesh-build/app:"))
            && said.contains(&format!(
                "check KUBESH_REGISTRY and that `docker login {host}` works"
            )),
        "the registry's refusal: {said}"
    );
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods,configmaps",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created");

    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    };
    config(format!(
        r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#
    ));
    let (ok, out, said) = launch("from the auths entry\n");
    assert!(ok && out == "from the auths entry\n", "{out}{said}");
    assert!(
        said.contains(&format!("pushed {host}/creds/kubesh-build/app:")),
        "{said}"
    );

    let asked = sandbox.path("helper-asked");
    sandbox.write(
        "../bin/docker-credential-kubesh-test",
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {}\nprintf '{{\"ServerURL\":\"{host}\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}\\n'\n",
            asked.display()
        ),
    );
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(sandbox.path("bin/docker-credential-kubesh-test"))
        .status()
        .expect("chmod runs");
    config(format!(r#"{{"credHelpers": {{"{host}": "kubesh-test"}}}}"#));
    let (ok, out, said) = launch("from the credential helper\n");
    assert!(ok && out == "from the credential helper\n", "{out}{said}");
    assert!(
        said.contains(&format!("pushed {host}/creds/kubesh-build/app:")),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&asked).expect("the helper was asked"),
        host,
        "the helper is asked for the registry"
    );
}

/// The files of a stand-in for a kind node: `ctr` and `crictl` scripts.
/// `ctr` writes what it reads on stdin to /loaded.tar (and its arguments
/// to /ctr-args); `crictl inspecti IMAGE` succeeds once /loaded.tar names
/// IMAGE, as the real one does once the image is imported.
const STAND_IN_DOCKERFILE: &str = "FROM {base}\n\
RUN printf '#!/bin/sh\\necho \"$*\" > /ctr-args\\ncat > /loaded.tar\\n' > /bin/ctr && chmod +x /bin/ctr\n\
RUN printf '#!/bin/sh\\ntest -s /loaded.tar && grep -q \"$2\" /loaded.tar\\n' > /bin/crictl && chmod +x /bin/crictl\n";

/// A container on the engine, removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// Stands in for a kind node: kind runs each node as a container on the
/// engine, labelled `io.x-k8s.kind.cluster=CLUSTER` and named as its
/// Node, and loads an image by streaming `docker save` into `ctr images
/// import` there. No kind can run here, so the node container is a
/// busybox one named as the local cluster's Node (`kubesh-local`), whose
/// `ctr` keeps what it is sent; a run against a real kind cluster is in
/// the end-to-end plan of docs/real-clusters.md.
#[test]
fn the_image_is_loaded_into_a_kind_node_container_on_the_engine() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!("skipped the_image_is_loaded_into_a_kind_node_container_on_the_engine: {why}");
            return;
        }
    };
    let context = tempfile::tempdir().expect("a build context");
    std::fs::write(
        context.path().join("Dockerfile"),
        STAND_IN_DOCKERFILE.replace("{base}", base),
    )
    .expect("the stand-in's Dockerfile");
    let stand_in = "kubesh-test/kind-node-stand-in:1";
    let built = Command::new("docker")
        .args(["build", "-q", "-t", stand_in])
        .arg(context.path())
        .output()
        .expect("docker runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let _ = Command::new("docker")
        .args(["rm", "-f", "kubesh-local"])
        .output();
    let started = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            "kubesh-local",
            "--label",
            "io.x-k8s.kind.cluster=kubesh-test",
            stand_in,
            "sleep",
            "3600",
        ])
        .output()
        .expect("docker runs");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let node = Container("kubesh-local".into());

    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write("app/app.sh", "cat /greeting\n");
    sandbox.write("app/greeting.txt", "loaded into the node\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nCOPY greeting.txt /greeting\n"),
    );
    let tag = built_tag(&cluster, &sandbox);

    let first = bounded(cluster.kubesh(&sandbox), &["-c", "bash app/app.sh"])
        .assert()
        .success()
        .stdout("loaded into the node\n");
    let said = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(
        said.contains(&format!("loaded {tag} into the kind node kubesh-local in ")),
        "{said}"
    );
    let args = Command::new("docker")
        .args(["exec", &node.0, "cat", "/ctr-args"])
        .output()
        .expect("docker runs");
    assert_eq!(
        String::from_utf8_lossy(&args.stdout).trim(),
        "--namespace=k8s.io images import --all-platforms --digests -",
        "imported as kind does"
    );
    let archive = Command::new("docker")
        .args(["exec", &node.0, "cat", "/loaded.tar"])
        .output()
        .expect("docker runs");
    let manifest = manifest(&archive.stdout);
    assert!(
        manifest.contains(&format!("\"{tag}\"")),
        "the archive's manifest.json names {tag}: {manifest}"
    );

    // The node has it now: not loaded again.
    let second = bounded(cluster.kubesh(&sandbox), &["-c", "bash app/app.sh"])
        .assert()
        .success();
    let said = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(!said.contains("loaded"), "not loaded again: {said}");

    // A node that refuses the import: its own words, and nothing made.
    let broken = Command::new("docker")
        .args([
            "exec",
            &node.0,
            "sh",
            "-c",
            "printf '#!/bin/sh\\necho \"ctr: image might be filtered out\" >&2\\nexit 1\\n' > /bin/ctr",
        ])
        .output()
        .expect("docker runs");
    assert!(
        broken.status.success(),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    sandbox.write("app/greeting.txt", "changed\n");
    let tag = built_tag(&cluster, &sandbox);
    let refused = bounded(cluster.kubesh(&sandbox), &["-c", "bash app/app.sh"])
        .assert()
        .failure();
    let said = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(
        said.contains(&format!(
            "kubesh: loading {tag} into the kind node kubesh-local failed: `ctr \
             --namespace=k8s.io images import --all-platforms --digests -` there exited with \
             status 1:\nctr: image might be filtered out\n"
        )),
        "{said}"
    );
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods,configmaps",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created: {left}");
}

/// The `manifest.json` of an image archive (`docker save`'s format).
fn manifest(archive: &[u8]) -> String {
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("an entry of the archive");
        if entry.path().is_ok_and(|p| p == Path::new("manifest.json")) {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("manifest.json");
            return text;
        }
    }
    panic!("the archive has no manifest.json");
}

/// A cluster with a node that is neither kubesh's local one nor a node
/// container on this engine (a Node object of a machine elsewhere) cannot
/// pull what is built here: one sentence, and nothing is created.
#[test]
fn without_a_registry_a_cluster_that_cannot_see_local_images_is_refused() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!(
                "skipped without_a_registry_a_cluster_that_cannot_see_local_images_is_refused: {why}"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    cluster.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-far-away\n");
    write_served_program(&sandbox, base);
    let output = bounded(cluster.kubesh(&sandbox), &["-c", "bash app/app.sh &"])
        .env_remove("KUBESH_REGISTRY")
        .output()
        .expect("kubesh runs");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success());
    let about: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("KUBESH_REGISTRY"))
        .collect();
    assert_eq!(about.len(), 1, "one sentence: {said}");
    assert!(
        about[0].starts_with(
            "kubesh: the cluster of context kubesh-local cannot pull images built on this machine ("
        ) && about[0].contains("worker-far-away")
            && about[0]
                .contains("set KUBESH_REGISTRY=HOST[:PORT][/PATH] to a registry it can pull from"),
        "{said}"
    );
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods,deployments,services,configmaps",
        "-A",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created");
}
