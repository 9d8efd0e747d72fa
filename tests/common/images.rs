//! The test base image: busybox from scratch, built on the local Docker
//! engine (no registry is reachable here), for the tests of programs that
//! bring a Dockerfile.

use std::process::Command;

/// Builds the test base image (busybox from scratch, with a `bash` that is
/// its `sh`: no registry is reachable here); or says why the test cannot
/// run.
pub fn base_image() -> Result<&'static str, String> {
    let answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !answers {
        return Err("no Docker engine answers (`docker version` failed); scripts/start-docker-engine.sh starts one".into());
    }
    let elf = std::fs::read("/bin/busybox").map_err(|e| format!("no /bin/busybox: {e}"))?;
    if elf
        .windows(15)
        .any(|w| w == b"/lib64/ld-linux" || w == b"/lib/ld-linux-a")
    {
        return Err("/bin/busybox is not statically linked (install busybox-static)".into());
    }
    let context = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = context.path();
    std::fs::copy("/bin/busybox", dir.join("busybox")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("os-release"),
        "NAME=\"kubesh test image\"\nID=kubesh-test\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN printf '#!/bin/sh\\nexec sh \"$@\"\\n' > /bin/bash && chmod +x /bin/bash\nCOPY os-release /etc/os-release\n",
    )
    .map_err(|e| e.to_string())?;
    let tag = "kubesh-test/busybox-bash:1";
    let built = Command::new("docker")
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
