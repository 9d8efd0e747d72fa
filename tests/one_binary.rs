//! One binary for every sandbox: the static build of
//! `scripts/build-static.sh` runs in an empty root filesystem (the binary,
//! `/proc` and a kubeconfig, nothing else) against a local cluster running
//! outside it; `install.sh` installs a release from a `file://` URL and
//! refuses a binary whose checksum does not match.
//!
//! The static binary is built by the test (or taken from
//! `KUBESH_STATIC_BINARY`). Where it cannot be built or run (no glibc
//! static library, no namespaces), the test says why and passes, unless
//! `KUBESH_STATIC_TEST=required` (CI) makes that a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{LocalCluster, Sandbox};
use sha2::{Digest, Sha256};

/// Where the static test cannot run here; a failure where it is required.
fn cannot(reason: &str) {
    assert!(
        std::env::var("KUBESH_STATIC_TEST").as_deref() != Ok("required"),
        "KUBESH_STATIC_TEST=required, but {reason}"
    );
    eprintln!("skipped: {reason}");
}

/// The target directory the test binaries were built in.
fn target_dir() -> PathBuf {
    let binary = common::kubesh_binary();
    binary
        .parent()
        .and_then(Path::parent)
        .expect("the kubesh binary is in TARGET/PROFILE/")
        .to_path_buf()
}

/// The static binary: given, or built now; `Err` says why there is none.
fn static_binary() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("KUBESH_STATIC_BINARY") {
        return Ok(PathBuf::from(given));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static.sh");
    let mut build = Command::new(&script);
    build.env("CARGO_TARGET_DIR", target_dir());
    let mut build = assert_cmd::Command::from_std(build);
    // A release build from nothing is long on a small machine.
    build.timeout(Duration::from_secs(3600));
    let output = build.output().expect("scripts/build-static.sh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        // Another architecture or C library; no libc.a.
        Some(2 | 3) => return Err(stderr.trim().to_string()),
        _ => panic!("scripts/build-static.sh failed:\n{stderr}"),
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .last()
        .expect("the script prints the binary's path");
    Ok(PathBuf::from(path))
}

/// Runs `kubesh ARGS` as `/kubesh` in `root`, an otherwise empty root
/// filesystem with `/proc` bound in: in a mount namespace of its own (and a
/// user namespace when not run as root), so nothing stays mounted.
fn in_empty_root(root: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut command = Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args(["--mount", "--propagation", "private", "--"])
        .args([
            "sh",
            "-c",
            r#"root=$1; shift; mount --rbind /proc "$root/proc" && exec chroot "$root" /kubesh "$@""#,
            "sh",
        ])
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/")
        .env("KUBECONFIG", "/kubeconfig");
    let mut bounded = assert_cmd::Command::from_std(command);
    bounded.timeout(Duration::from_secs(120));
    bounded
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether this machine lets the test make an empty root: `unshare` and
/// `chroot` there, and the namespaces allowed.
fn empty_root_possible(root: &Path) -> Result<(), String> {
    let output = in_empty_root(root, &["--version"]).output();
    match output {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("unshare:") || stderr.contains("mount:") {
                Err(format!(
                    "an empty root filesystem cannot be made here (unshare, mount --rbind /proc, chroot): {}",
                    stderr.trim()
                ))
            } else {
                panic!(
                    "the static binary does not run in an empty root filesystem:\n{stderr}\n{}",
                    String::from_utf8_lossy(&output.stdout)
                )
            }
        }
        Err(error) => Err(format!("unshare cannot run here: {error}")),
    }
}

/// Whether `unshare` can make the namespaces here: asked before the
/// long build, which is for nothing where they cannot be made.
fn namespaces_possible() -> Result<(), String> {
    let mut command = Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    let output = command
        .args(["--mount", "--propagation", "private", "--", "true"])
        .output()
        .map_err(|error| format!("unshare cannot run here: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the namespaces for an empty root filesystem cannot be made here: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn the_static_binary_runs_alone_in_an_empty_root_against_a_cluster_outside() {
    if let Err(reason) = namespaces_possible() {
        return cannot(&reason);
    }
    let binary = match static_binary() {
        Ok(binary) => binary,
        Err(reason) => return cannot(&format!("no static binary: {reason}")),
    };
    let readelf = Command::new("readelf")
        .args(["-l"])
        .arg(&binary)
        .output()
        .expect("readelf runs");
    let headers = String::from_utf8_lossy(&readelf.stdout);
    // A static-pie executable relocates itself: it names no loader.
    assert!(!headers.contains("program interpreter"), "{headers}");

    let sandbox = Sandbox::new();
    // The local cluster runs outside, from the static binary too.
    let cluster = LocalCluster::start_binary(&sandbox, &binary);
    let root = sandbox.path("root");
    std::fs::create_dir_all(root.join("proc")).expect("the root's /proc");
    std::fs::copy(&binary, root.join("kubesh")).expect("the binary into the root");
    std::fs::copy(&cluster.kubeconfig, root.join("kubeconfig")).expect("the kubeconfig");
    if let Err(reason) = empty_root_possible(&root) {
        return cannot(&reason);
    }
    let names: Vec<String> = std::fs::read_dir(&root)
        .expect("the root")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names.len(),
        3,
        "only the binary, /proc and the kubeconfig: {names:?}"
    );

    let version = in_empty_root(&root, &["--version"]).output().expect("runs");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(version.starts_with("kubesh "), "{version}");
    assert!(version.contains("(commit "), "{version}");
    assert!(version.contains("static build"), "{version}");
    assert!(version.contains("built-in TLS roots"), "{version}");

    // A port of its own, for where pods share this machine's network.
    let port = common::free_port();
    let script = format!(
        "python3 -c 'print(6 * 7)'\n\
         SERVICE_PORT={port} python3 -m http.server {port} &\n\
         ps\n\
         curl http-server:{port}/\n\
         kill http-server\n"
    );
    let output = in_empty_root(&root, &["-c", &script])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\n42\n") || stdout.starts_with("42\n"),
        "{stdout}"
    );
    assert!(stdout.contains("http-server  ready in"), "{stdout}");
    assert!(stdout.contains("Directory listing"), "{stdout}");
    assert!(stdout.contains("killed http-server"), "{stdout}\n{stderr}");
    let ps = stdout
        .lines()
        .find(|line| line.contains("http-server") && line.contains("Running"));
    assert!(ps.is_some(), "ps lists the service:\n{stdout}");
}

/// A release directory as the release workflow makes it: a binary per
/// architecture and their SHA256SUMS. This machine's answers `--version`
/// as kubesh does (a small stand-in: install.sh looks only at the bytes),
/// the other is a file that does not run here.
fn release(dir: &Path) -> (&'static str, Vec<u8>) {
    let this = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no release binary for {other}"),
    };
    let other = if this == "amd64" { "arm64" } else { "amd64" };
    std::fs::create_dir_all(dir).expect("release directory");
    let kubesh =
        b"#!/bin/sh\necho 'kubesh 0.1.0 (commit 1a2b3c4d5e6f, static build, built-in TLS roots)'\n"
            .to_vec();
    std::fs::write(dir.join(format!("kubesh-linux-{this}")), &kubesh).expect("binary");
    std::fs::write(
        dir.join(format!("kubesh-linux-{other}")),
        b"not for this machine\n",
    )
    .expect("binary");
    let sums: String = [this, other]
        .iter()
        .map(|arch| {
            let name = format!("kubesh-linux-{arch}");
            let digest = Sha256::digest(std::fs::read(dir.join(&name)).expect("binary"));
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}  {name}\n")
        })
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), sums).expect("SHA256SUMS");
    (this, kubesh)
}

fn install_sh(from: &Path, prefix: &Path) -> assert_cmd::Command {
    let mut command = Command::new("sh");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .arg("--from")
        .arg(format!("file://{}", from.display()))
        .arg("--prefix")
        .arg(prefix)
        .env_remove("KUBESH_RELEASE_URL")
        .env_remove("KUBESH_PREFIX");
    let mut bounded = assert_cmd::Command::from_std(command);
    bounded.timeout(Duration::from_secs(60));
    bounded
}

#[test]
fn install_sh_installs_this_machine_s_binary_after_checking_it() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("release");
    let (_, kubesh) = release(&dir);
    let prefix = sandbox.path("prefix");
    let output = install_sh(&dir, &prefix).output().expect("install.sh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let installed = prefix.join("bin/kubesh");
    assert_eq!(std::fs::read(&installed).expect("installed"), kubesh);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&installed)
            .expect("installed")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    assert!(
        stderr.contains(&format!(
            "installed {}: kubesh 0.1.0 (commit 1a2b3c4d5e6f, static build",
            installed.display()
        )),
        "{stderr}"
    );
}

#[test]
fn install_sh_refuses_a_binary_whose_checksum_does_not_match() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("release");
    let (arch, mut kubesh) = release(&dir);
    // One byte changed on the way.
    let last = kubesh.len() - 1;
    kubesh[last] ^= 0xff;
    std::fs::write(dir.join(format!("kubesh-linux-{arch}")), &kubesh).expect("altered");
    let prefix = sandbox.path("prefix");
    let output = install_sh(&dir, &prefix).output().expect("install.sh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("kubesh-linux-{arch} does not match its checksum")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was installed"), "{stderr}");
    assert!(!prefix.join("bin/kubesh").exists());
}
