//! Authentication material: the random bearer token and the kubeconfig file
//! (context `kubesh-local`, mode 0600) that clients use to reach the server.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

pub const CONTEXT: &str = "kubesh-local";

/// A fresh random token (256 bits, hex).
pub fn new_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// kubesh's data directory for the local cluster.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "kubesh")
        .context("cannot find a home directory for kubesh's data")?;
    Ok(dirs.data_dir().join("local-cluster"))
}

pub fn default_kubeconfig() -> anyhow::Result<PathBuf> {
    Ok(data_dir()?.join("kubeconfig"))
}

pub fn kubeconfig_text(server: &str, token: &str, ca_pem: &str) -> String {
    let ca = crate::base64::encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}
    namespace: default
current-context: {CONTEXT}
users:
- name: {CONTEXT}
  user:
    token: {token}
preferences: {{}}
"
    )
}

/// Writes the kubeconfig with mode 0600 (the token lets its reader run
/// commands on this machine), creating the directory with mode 0700.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    token: &str,
    ca_pem: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write the kubeconfig {}", tmp.display()))?;
    file.write_all(kubeconfig_text(server, token, ca_pem).as_bytes())?;
    file.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the kubeconfig {}", path.display()))?;
    Ok(())
}
