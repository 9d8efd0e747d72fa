//! Linux executables on the local cluster with the real `kubesh` binary:
//! judged by what the cluster's nodes are and what the images hold, and
//! refused with the reason before anything is created.

mod common;

use common::{LocalCluster, Sandbox, bounded};
use predicates::str::contains;

/// Compiles `source` (C) with `cc` into `name` in the sandbox's work
/// directory, with any extra `flags`.
fn compile(sandbox: &Sandbox, name: &str, source: &str, flags: &[&str]) {
    let file = sandbox.write(&format!("{name}.c"), source);
    let compiled = std::process::Command::new("cc")
        .current_dir(sandbox.work())
        .args(["-o", name])
        .arg(&file)
        .args(flags)
        .status()
        .expect("a C compiler (cc) builds the test binary");
    assert!(compiled.success(), "cc {name}.c");
    std::fs::remove_file(file).unwrap();
}

const HELLO_C: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from a binary\"); return 0; }\n";

/// The architecture this machine's binaries are built for, as Kubernetes
/// names it.
fn this_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The pods kubesh made for binaries.
fn binary_pods(cluster: &LocalCluster) -> String {
    cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-A",
        "-l",
        "kubesh.dev/runtime=binary",
        "-o",
        "name",
    ])
}

#[test]
fn a_binary_runs_on_nodes_of_its_architecture_and_is_refused_where_no_node_has_it() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    compile(&sandbox, "hello", HELLO_C, &[]);
    bounded(cluster.kubesh(&sandbox), &["-c", "KEEP_POD=1 ./hello"])
        .assert()
        .success()
        .stdout("hello from a binary\n");
    let selector = cluster.kubectl_stdout(&[
        "get",
        "pods",
        "-A",
        "-l",
        "kubesh.dev/runtime=binary",
        "-o",
        "jsonpath={.items[*].spec.nodeSelector}",
    ]);
    assert_eq!(
        selector,
        format!("{{\"kubernetes.io/arch\":\"{}\"}}", this_arch()),
        "the pod is pinned to the binary's architecture"
    );

    // The cluster's nodes, not this machine, say what runs there.
    let relabelled = cluster
        .kubectl()
        .args([
            "label",
            "node",
            "kubesh-local",
            "kubernetes.io/arch=s390x",
            "--overwrite",
        ])
        .status()
        .expect("kubectl runs");
    assert!(relabelled.success());
    let config_maps = || cluster.kubectl_stdout(&["get", "configmaps", "-A", "-o", "name"]);
    let before = (binary_pods(&cluster), config_maps());
    bounded(cluster.kubesh(&sandbox), &["-c", "./hello"])
        .assert()
        .code(126)
        .stdout("")
        .stderr(contains(format!(
            "kubesh: hello: is built for {}, but the cluster's nodes are s390x; build it for \
             s390x (e.g. `GOOS=linux GOARCH=s390x go build`",
            this_arch()
        )));
    assert_eq!(
        (binary_pods(&cluster), config_maps()),
        before,
        "nothing was created for the refused binary"
    );
}

const GREET_C: &str = "const char *greeting(void) { return \"hello from a library\"; }\n";
const TOOL_C: &str = "#include <stdio.h>\nconst char *greeting(void);\nint main(void) { puts(greeting()); return 0; }\n";

/// Builds `libgreet.so.1` at `library` (relative to the work directory)
/// and `tool` at `binary` linked with it, finding it through `rpath`.
fn build_with_library(sandbox: &Sandbox, library: &str, binary: &str, rpath: &str) {
    let work = sandbox.work();
    let run = |args: &[&str]| {
        let status = std::process::Command::new("cc")
            .current_dir(&work)
            .args(args)
            .status()
            .expect("a C compiler (cc) builds the test binary");
        assert!(status.success(), "cc {args:?}");
    };
    sandbox.write("greet.c", GREET_C);
    sandbox.write("tool.c", TOOL_C);
    if let Some(parent) = std::path::Path::new(library).parent() {
        std::fs::create_dir_all(work.join(parent)).unwrap();
    }
    if let Some(parent) = std::path::Path::new(binary).parent() {
        std::fs::create_dir_all(work.join(parent)).unwrap();
    }
    run(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so.1",
        "-o",
        library,
        "greet.c",
    ]);
    run(&[
        "-o",
        binary,
        "tool.c",
        library,
        &format!("-Wl,-rpath,{rpath}"),
    ]);
    std::fs::remove_file(work.join("greet.c")).unwrap();
    std::fs::remove_file(work.join("tool.c")).unwrap();
}

#[test]
fn a_binary_needing_a_library_the_images_lack_is_refused_before_anything_is_created() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // The library is this machine's, not shipped with the program.
    let outside = sandbox.path("libs/libgreet.so.1");
    build_with_library(
        &sandbox,
        &outside.display().to_string(),
        "bin/tool",
        &sandbox.path("libs").display().to_string(),
    );
    let config_maps = || cluster.kubectl_stdout(&["get", "configmaps", "-A", "-o", "name"]);
    let before = (binary_pods(&cluster), config_maps());
    bounded(cluster.kubesh(&sandbox), &["-c", "./bin/tool"])
        .assert()
        .code(126)
        .stdout("")
        .stderr(contains(
            "kubesh: ./bin/tool: needs libgreet.so.1, which the images kubesh runs binaries in \
             lack (buildpack-deps:bookworm-curl, buildpack-deps:trixie-curl): link it statically",
        ))
        .stderr(contains(
            "or run it in an image that has it: `BINARY_IMAGE=IMAGE ./bin/tool`",
        ));
    assert_eq!(
        (binary_pods(&cluster), config_maps()),
        before,
        "nothing was created for the refused binary"
    );
    // An image the user names is theirs to know.
    bounded(
        sandbox.command(),
        &[
            "--dry-run",
            "-c",
            "BINARY_IMAGE=registry.example/tools:1 ./bin/tool",
        ],
    )
    .assert()
    .success()
    .stdout(contains("image: registry.example/tools:1"));
}

#[test]
fn a_binary_that_ships_its_library_beside_it_runs() {
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    build_with_library(&sandbox, "app/lib/libgreet.so.1", "app/tool", "$ORIGIN/lib");
    bounded(cluster.kubesh(&sandbox), &["-c", "./app/tool"])
        .assert()
        .success()
        .stdout("hello from a library\n");
}

#[test]
fn a_static_binary_runs_in_an_image_with_a_shell_and_a_ca_bundle() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("fetch.c", HELLO_C);
    let built = std::process::Command::new("cc")
        .current_dir(sandbox.work())
        .args(["-static", "-o", "fetch"])
        .arg(&file)
        .status()
        .is_ok_and(|status| status.success());
    if !built {
        eprintln!("skipped: no C compiler able to link statically (gcc, libc6-dev)");
        return;
    }
    std::fs::remove_file(file).unwrap();
    // Alpine's, where Go, OpenSSL and rustls look for the roots of trust
    // at /etc/ssl/certs/ca-certificates.crt; busybox has none.
    bounded(sandbox.command(), &["--dry-run", "-c", "./fetch &"])
        .assert()
        .success()
        .stdout(contains("image: alpine:3.21"));
}

#[test]
fn a_glibc_binary_runs_in_an_image_with_a_shell_and_a_ca_bundle() {
    let sandbox = Sandbox::new();
    compile(&sandbox, "fetch", HELLO_C, &[]);
    // debian:12-slim has no CA bundle: a glibc Go or Rust binary could
    // verify no server. buildpack-deps' curl image is Debian 12 with
    // ca-certificates, at /etc/ssl/certs/ca-certificates.crt.
    let output = bounded(sandbox.command(), &["--dry-run", "-c", "./fetch &"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let yaml = String::from_utf8(output.stdout).unwrap();
    // (trixie-curl where this machine's glibc is newer than 2.36)
    assert_eq!(
        yaml.matches("image: buildpack-deps:").count(),
        2,
        "the unpack step and the program in:\n{yaml}"
    );
    assert!(!yaml.contains("slim"), "{yaml}");
}

/// An image with this machine's glibc (its `libc.so.6` and loader) and a
/// static busybox, built on the local Docker engine; or why it cannot be.
fn image_with_this_machines_glibc() -> Result<&'static str, String> {
    let answers = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !answers {
        return Err("no Docker engine answers (`docker version` failed)".into());
    }
    let context = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = context.path();
    let libc = std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6");
    let loader = std::path::Path::new("/lib64/ld-linux-x86-64.so.2");
    if !libc.exists() || !loader.exists() || !std::path::Path::new("/bin/busybox").exists() {
        return Err("needs x86_64 glibc at /lib/x86_64-linux-gnu and a static /bin/busybox".into());
    }
    for (from, to) in [
        (libc, "libc.so.6"),
        (loader, "ld-linux-x86-64.so.2"),
        (std::path::Path::new("/bin/busybox"), "busybox"),
    ] {
        std::fs::copy(from, dir.join(to)).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2\n",
    )
    .map_err(|e| e.to_string())?;
    let tag = "kubesh-test/this-glibc:1";
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !built.status.success() {
        return Err(format!(
            "docker build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    Ok(tag)
}

/// A glibc binary that needs a newer glibc than its image has fails on the
/// local cluster as on a node (the image's own loader refuses it), and
/// kubesh says why and what to do. (The binary is this machine's build of
/// a C program whose glibc version need is raised to 2.99, which no glibc
/// has.)
#[test]
fn a_binary_needing_a_newer_glibc_than_its_image_fails_as_on_a_node_and_kubesh_says_why() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: the test image is made for x86_64");
        return;
    }
    let image = match image_with_this_machines_glibc() {
        Ok(image) => image,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let sandbox = Sandbox::new();
    compile(&sandbox, "hello", HELLO_C, &[]);
    let path = sandbox.work().join("hello");
    let mut elf = std::fs::read(&path).unwrap();
    let needed = b"GLIBC_2.34\0";
    let at = elf
        .windows(needed.len())
        .position(|w| w == needed)
        .expect("the binary needs GLIBC_2.34 (__libc_start_main)");
    elf[at..at + needed.len()].copy_from_slice(b"GLIBC_2.99\0");
    std::fs::write(&path, elf).unwrap();

    let cluster = LocalCluster::start_with_images(&sandbox);
    let output = bounded(
        cluster.kubesh(&sandbox),
        &["-c", &format!("BINARY_IMAGE={image} ./hello")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    // The image's loader said it, as on a node.
    assert!(
        format!("{stdout}{stderr}").contains("version `GLIBC_2.99' not found"),
        "{stdout}{stderr}"
    );
    // And kubesh explains it; a program that has ended has no input to
    // be told about.
    assert!(
        stderr.contains(&format!(
            "kubesh: hello needs glibc 2.99, and its image {image} has an older one"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("what you type cannot reach"), "{stderr}");

    // In the background, the crash is reported with the loader's words and
    // the same explanation.
    let output = bounded(
        cluster.kubesh(&sandbox),
        &["-c", &format!("BINARY_IMAGE={image} ./hello &")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("version `GLIBC_2.99' not found")
            && stderr.contains(&format!(
                "\nhello needs glibc 2.99, and its image {image} has an older one"
            )),
        "{stderr}"
    );
}
