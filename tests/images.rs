//! Programs that bring a Dockerfile: built through the local Docker
//! engine, run in that image on the local cluster (which runs images
//! through the same engine), never built twice from the same files; and
//! without an engine, one sentence and nothing created. The tests that
//! need an engine say why they are skipped where none answers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::assert::OutputAssertExt;
use common::images::base_image;
use common::{LocalCluster, Sandbox, SharedCluster, bounded};
use predicates::str::contains;

#[test]
fn without_an_engine_a_program_with_a_dockerfile_gets_one_sentence_and_nothing_is_made() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    sandbox.write("app/app.sh", "echo hello\n");
    sandbox.write("app/Dockerfile", "FROM scratch\n");
    let socket = sandbox.path("no-engine.sock");
    let output = cluster
        .kubesh(&sandbox)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(["-c", "bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("there is none at unix://{}", socket.display()))
            && stderr.contains("start Docker"),
        "{stderr}"
    );
    let about_it: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("Dockerfile") || line.contains("Docker engine"))
        .collect();
    assert_eq!(about_it.len(), 1, "one sentence: {stderr}");
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

#[test]
fn a_program_with_a_dockerfile_runs_in_the_image_built_from_it_once() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!(
                "skipped a_program_with_a_dockerfile_runs_in_the_image_built_from_it_once: {why}"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write(
        "app/app.sh",
        "cat /etc/os-release\necho \"greeting: $(cat /greeting)\"\n",
    );
    sandbox.write("app/greeting.txt", "from the image\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nCOPY greeting.txt /greeting\n"),
    );
    let dry = cluster
        .kubesh(&sandbox)
        .args(["--dry-run", "-c", "bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let dry_out = String::from_utf8_lossy(&dry.stdout).to_string();
    let tag = dry_out
        .lines()
        .find_map(|line| line.trim().strip_prefix("image: kubesh-build/app:"))
        .map(|hash| format!("kubesh-build/app:{hash}"))
        .unwrap_or_else(|| panic!("--dry-run shows the image it would build: {dry_out}"));
    // Built by an earlier run of this test, it would not be built again.
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    let first = cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .success()
        .stdout(contains(
            "NAME=\"kubesh test image\"\nID=kubesh-test\ngreeting: from the image\n",
        ));
    let said = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(
        said.contains(&format!("built {tag}")),
        "the build is said: {said}"
    );
    let second = cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .success()
        .stdout(contains("greeting: from the image\n"));
    let said = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(
        !said.contains("built"),
        "the same files are not built again: {said}"
    );
    // A failing step is shown with its output in full.
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nRUN echo first line; echo second line; exit 3\n"),
    );
    cluster
        .kubesh(&sandbox)
        .args(["-c", "bash app/app.sh"])
        .assert()
        .failure()
        .stderr(contains(
            "building Dockerfile failed at Step 2/2 : RUN echo first line",
        ))
        .stderr(contains("first line\nsecond line\n"));
}

#[test]
fn build_args_reach_the_build_and_make_their_own_tag() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!("skipped build_args_reach_the_build_and_make_their_own_tag: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write("app/app.sh", "echo \"greeting: $(cat /greeting)\"\n");
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n"),
    );
    let dry_run = |args: &str| {
        let out = cluster
            .kubesh(&sandbox)
            .env("BUILD_ARGS", args)
            .args(["--dry-run", "-c", "bash app/app.sh"])
            .output()
            .expect("kubesh runs");
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        out.lines()
            .find(|line| line.contains("would be built"))
            .unwrap_or_else(|| panic!("--dry-run shows the build: {out}"))
            .to_string()
    };
    let plain = dry_run("");
    let with_args = dry_run("GREETING='hello there'");
    assert!(
        with_args.ends_with("with the build arguments GREETING='hello there'"),
        "{with_args}"
    );
    let tag_of = |line: &str| {
        line.split_whitespace()
            .find(|word| word.starts_with("kubesh-build/"))
            .expect("a tag")
            .to_string()
    };
    assert_ne!(tag_of(&plain), tag_of(&with_args), "another tag");
    let _ = Command::new("docker")
        .args(["rmi", "-f", &tag_of(&with_args)])
        .output();
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            "BUILD_ARGS=\"GREETING='hello there'\" bash app/app.sh",
        ])
        .assert()
        .success()
        .stdout(contains("greeting: hello there\n"));
    // A word that is not KEY=VALUE: one sentence, nothing built or made.
    let refused = cluster
        .kubesh(&sandbox)
        .args(["-c", "BUILD_ARGS='GREETING hello' bash app/app.sh"])
        .output()
        .expect("kubesh runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("BUILD_ARGS: `GREETING` is not KEY=VALUE"),
        "{stderr}"
    );
    assert!(!stderr.contains("built"), "{stderr}");
    let left = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=kubesh",
    ]);
    assert_eq!(left, "", "nothing is created");
}

/// A kubesh session that launched a program in the background with hot
/// reload on and stays, its output (stdout and stderr, where the reload
/// lines go) collected as it comes.
struct Session {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Session {
    fn start(cluster: &LocalCluster, sandbox: &Sandbox, launch: &str) -> Session {
        let mut child = cluster
            .kubesh(sandbox)
            .args(["--watch", "-c", &format!("{launch} & sleep 600")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubesh starts");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let into = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut text = into.lock().expect("output");
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        Session { child, output }
    }

    /// Waits until kubesh has printed a line with all of `texts`, after
    /// the first `skip` such lines; returns that line.
    fn wait_for_line(&self, texts: &[&str], skip: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let output = self.output.lock().expect("output").clone();
            let found = output
                .lines()
                .filter(|line| texts.iter().all(|text| line.contains(text)))
                .nth(skip);
            if let Some(line) = found {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "kubesh printed no line with {texts:?} (after {skip}) in {within:?}:\n{output}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        self.output.lock().expect("output").clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page `curl app/` prints in a new kubesh session, once it has all
/// of `texts`; fails after `within`.
fn wait_for_page(
    cluster: &LocalCluster,
    sandbox: &Sandbox,
    texts: &[&str],
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = cluster
            .kubesh(sandbox)
            .args(["-c", "curl app/"])
            .output()
            .expect("kubesh runs");
        let page = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && texts.iter().all(|text| page.contains(text)) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "`curl app/` did not show {texts:?} in {within:?}; last: {page}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The images of the running containers of the dproc `app`, sorted.
fn running_images(cluster: &LocalCluster) -> String {
    cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=app",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
    ])
}

const SERVE: &str = "mkdir -p www\n{ echo \"page: PAGE\"; echo \"image: $(cat /image-version)\"; echo \"greeting: $(cat /greeting)\"; echo \"note: $(cat /note)\"; cat /etc/os-release; } > www/index.html\nexec httpd -f -p \"$PORT\" -h www\n";

fn dockerfile(base: &str, version: &str) -> String {
    format!(
        "FROM {base}\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\nRUN echo {version} > /image-version\nCOPY note.txt /note\nCOPY . /src/\n"
    )
}

#[test]
fn a_dockerfile_program_in_the_background_reloads_live_and_rebuilds_on_an_edit_to_its_image() {
    let name =
        "a_dockerfile_program_in_the_background_reloads_live_and_rebuilds_on_an_edit_to_its_image";
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!("skipped {name}: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    let launch = "BUILD_ARGS=GREETING=hello-arg bash app/app.sh";
    // The images of the files as they will be, built by an earlier run of
    // this test, would not be built again.
    for (page, version, note) in [
        ("two", "two", "second"),
        ("two", "two", "first"),
        ("one", "one", "first"),
    ] {
        sandbox.write("app/app.sh", SERVE.replace("PAGE", page));
        sandbox.write("app/Dockerfile", dockerfile(base, version));
        sandbox.write("app/note.txt", format!("{note}\n"));
        let dry = cluster
            .kubesh(&sandbox)
            .args(["--dry-run", "-c", &format!("{launch} &")])
            .output()
            .expect("kubesh runs");
        let dry = String::from_utf8_lossy(&dry.stdout).to_string();
        let tag = dry
            .split_whitespace()
            .find(|word| word.starts_with("kubesh-build/app:"))
            .unwrap_or_else(|| panic!("--dry-run shows the image: {dry}"));
        let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
    }
    let session = Session::start(&cluster, &sandbox, launch);
    let built = session.wait_for_line(&["built kubesh-build/app:"], 0, Duration::from_secs(120));
    let first_tag = built
        .split_whitespace()
        .find(|word| word.starts_with("kubesh-build/app:"))
        .expect("the tag")
        .to_string();
    session.wait_for_line(&["ready in"], 0, Duration::from_secs(120));

    // It answers `curl`, from its image: the image's os-release, not this
    // machine's, and the build argument.
    let page = wait_for_page(
        &cluster,
        &sandbox,
        &[
            "page: one",
            "image: one",
            "greeting: hello-arg",
            "note: first",
        ],
        Duration::from_secs(60),
    );
    assert!(page.contains("ID=kubesh-test"), "{page}");
    let host_id = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("ID="))
        .unwrap_or("ID=none")
        .to_string();
    assert!(
        !page.lines().any(|line| line == host_id),
        "the host's {host_id} shows: {page}"
    );
    assert_eq!(running_images(&cluster), first_tag);

    // A source edit (reached only through `COPY . /src/`) reloads live.
    sandbox.write("app/app.sh", SERVE.replace("PAGE", "two"));
    let reload = session.wait_for_line(&["↻ app", "1 file"], 0, Duration::from_secs(60));
    assert!(reload.contains("(live)"), "{reload}");
    wait_for_page(
        &cluster,
        &sandbox,
        &["page: two", "image: one"],
        Duration::from_secs(30),
    );
    assert_eq!(running_images(&cluster), first_tag, "the same image");

    // A Dockerfile edit rebuilds and rolls out.
    sandbox.write("app/Dockerfile", dockerfile(base, "two"));
    let reload = session.wait_for_line(&["↻ app", "rolled out"], 0, Duration::from_secs(180));
    assert!(
        reload.contains("(Dockerfile changed)") && reload.contains("rebuilt kubesh-build/app:"),
        "{reload}"
    );
    let second_tag = reload
        .split_whitespace()
        .find(|word| word.starts_with("kubesh-build/app:"))
        .expect("the new tag")
        .to_string();
    assert_ne!(second_tag, first_tag);
    session.wait_for_line(
        &["↻ app", "building kubesh-build/app:"],
        0,
        Duration::from_secs(1),
    );
    wait_for_page(
        &cluster,
        &sandbox,
        &["page: two", "image: two", "greeting: hello-arg"],
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while running_images(&cluster) != second_tag {
        assert!(
            Instant::now() < deadline,
            "the pods run {}, not {second_tag}",
            running_images(&cluster)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A file the Dockerfile copies by name rebuilds too.
    sandbox.write("app/note.txt", "second\n");
    let reload = session.wait_for_line(&["↻ app", "rolled out"], 1, Duration::from_secs(180));
    assert!(
        reload.contains("(note.txt changed)") && reload.contains("rebuilt kubesh-build/app:"),
        "{reload}"
    );
    let third_tag = reload
        .split_whitespace()
        .find(|word| word.starts_with("kubesh-build/app:"))
        .expect("the new tag")
        .to_string();
    assert_ne!(third_tag, second_tag);
    wait_for_page(
        &cluster,
        &sandbox,
        &["page: two", "image: two", "note: second"],
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while running_images(&cluster) != third_tag {
        assert!(
            Instant::now() < deadline,
            "the pods run {}, not {third_tag}",
            running_images(&cluster)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A Dockerfile that fails to build: said in full, the pods go on.
    sandbox.write(
        "app/Dockerfile",
        format!("FROM {base}\nRUN echo broken step output; exit 4\n"),
    );
    let failed = session.wait_for_line(&["↻ app", "not rebuilt"], 0, Duration::from_secs(120));
    assert!(
        failed.contains("(Dockerfile changed); the pods go on running the old image: building Dockerfile failed at Step 2/2"),
        "{failed}"
    );
    assert!(
        session.output().contains("broken step output\n"),
        "{}",
        session.output()
    );
    wait_for_page(&cluster, &sandbox, &["image: two"], Duration::from_secs(10));
    assert_eq!(running_images(&cluster), third_tag);
    drop(session);

    // The same files launched again are not built again.
    sandbox.write("app/Dockerfile", dockerfile(base, "two"));
    cluster
        .kubesh(&sandbox)
        .args(["-c", "kill app"])
        .assert()
        .success();
    let again = cluster
        .kubesh(&sandbox)
        .args(["-c", &format!("{launch} &")])
        .output()
        .expect("kubesh runs");
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{said}");
    assert!(!said.contains("built"), "not built again: {said}");
    assert_eq!(running_images(&cluster), third_tag);
    wait_for_page(
        &cluster,
        &sandbox,
        &["page: two", "image: two"],
        Duration::from_secs(30),
    );
}

/// The user's local cluster keeps the images its pods ran in unpacked in
/// kubesh's cache directory, not in its state: a cluster started anew
/// (after `local-cluster reset`) finds them and does not unpack them again.
#[test]
fn the_users_cluster_finds_its_unpacked_images_again_after_a_reset() {
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    let _cluster = SharedCluster::guard(&sandbox);
    sandbox.write("hello.sh", "echo hello from the image\n");
    let run = || {
        let mut command = sandbox.command();
        command
            .env("KUBESH_LOCAL_IMAGES", "engine")
            .env("SHELL_IMAGE", base);
        bounded(command, &["--local", "-c", "sh hello.sh"])
            .assert()
            .success()
            .stdout(contains("hello from the image"));
    };
    let unpacked = || {
        use std::os::unix::fs::MetadataExt;
        let cache = sandbox.path("cache/kubesh/images");
        let entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
            .flatten()
            .filter(|entry| entry.path().join("rootfs").is_dir())
            .map(|entry| {
                let meta = std::fs::metadata(entry.path().join("rootfs")).expect("rootfs");
                (entry.file_name(), meta.ino())
            })
            .collect();
        entries
    };
    run();
    let before = unpacked();
    assert_eq!(before.len(), 1, "{before:?}");
    bounded(sandbox.command(), &["local-cluster", "reset", "--yes"])
        .assert()
        .success();
    run();
    assert_eq!(unpacked(), before, "the image was unpacked again");
}

#[test]
fn img_lists_the_image_built_for_a_background_program_with_its_dproc_and_prunes_the_others() {
    let name =
        "img_lists_the_image_built_for_a_background_program_with_its_dproc_and_prunes_the_others";
    let base = match base_image() {
        Ok(base) => base,
        Err(why) => {
            println!("skipped {name}: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start_with_images(&sandbox);
    sandbox.write(
        "shop/shop.sh",
        "mkdir -p www\necho shop > www/index.html\nexec httpd -f -p \"$PORT\" -h www\n",
    );
    sandbox.write("shop/Dockerfile", format!("FROM {base}\n"));
    let dry = cluster
        .kubesh(&sandbox)
        .args(["--dry-run", "-c", "bash shop/shop.sh &"])
        .output()
        .expect("kubesh runs");
    let dry = String::from_utf8_lossy(&dry.stdout).to_string();
    let tag = dry
        .split_whitespace()
        .find(|word| word.starts_with("kubesh-build/shop:"))
        .unwrap_or_else(|| panic!("--dry-run shows the image: {dry}"))
        .to_string();
    cluster
        .kubesh(&sandbox)
        .args(["-c", "bash shop/shop.sh &"])
        .assert()
        .success();

    let listed = cluster
        .kubesh(&sandbox)
        .args(["-c", "img"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&listed.get_output().stdout).to_string();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["IMAGE", "SIZE", "BUILT", "DPROCS"], "{out}");
    let row = out
        .lines()
        .find(|line| line.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("img lists {tag}: {out}"));
    assert!(row.ends_with("  shop"), "its dproc: {row}");
    assert!(row.contains(" ago "), "when it was built: {row}");

    // Without the cluster, the images are still listed, and one line says
    // why their dprocs are not.
    let listed = cluster
        .kubesh(&sandbox)
        .env("KUBECONFIG", sandbox.path("no-kubeconfig"))
        .args(["-c", "img"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&listed.get_output().stdout).to_string();
    let err = String::from_utf8_lossy(&listed.get_output().stderr).to_string();
    let row = out
        .lines()
        .find(|line| line.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("img lists {tag}: {out}"));
    assert!(row.ends_with("  ?"), "{row}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("dprocs of namespace default could not be looked up")
            && err.contains("no-kubeconfig"),
        "{err}"
    );

    // `img prune shop` removes shop's images that no dproc runs, and keeps
    // the one its Deployment runs; without the cluster, nothing.
    let unused = "kubesh-build/shop:0000000000000000";
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    assert!(docker(&["tag", base, unused]), "docker tag {base} {unused}");
    cluster
        .kubesh(&sandbox)
        .env("KUBECONFIG", sandbox.path("no-kubeconfig"))
        .args(["-c", "img prune shop"])
        .assert()
        .failure()
        .stderr(contains("so nothing was removed"));
    assert!(docker(&["image", "inspect", unused]), "{unused} is kept");
    let pruned = cluster
        .kubesh(&sandbox)
        .args(["-c", "img prune shop"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&pruned.get_output().stdout).to_string();
    assert_eq!(out, format!("removed {unused}\n"));
    assert!(
        !docker(&["image", "inspect", unused]),
        "{unused} is removed"
    );
    assert!(docker(&["image", "inspect", &tag]), "{tag} is kept");
}

#[test]
fn img_without_an_engine_says_so_in_one_sentence() {
    let sandbox = Sandbox::new();
    let socket = sandbox.path("no-engine.sock");
    let output = sandbox
        .command()
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(["-c", "set +e; img; echo status=$?"])
        .output()
        .expect("kubesh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stdout, "status=1\n", "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(
        stderr.contains(&format!("no Docker engine at unix://{}", socket.display()))
            && stderr.contains("start Docker"),
        "{stderr}"
    );
}
