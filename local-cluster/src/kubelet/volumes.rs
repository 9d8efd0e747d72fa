//! Volumes materialised as files in the pod directory (configMap, secret
//! with items/paths/defaultMode, emptyDir, projected, downwardAPI) and the
//! mounts of each container (see `mount_view` for how they are made visible
//! at their mountPath).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::base64;
use crate::resources;
use crate::store::Store;

/// One volume mount of a container, resolved to a host directory.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub target: String,
    pub read_only: bool,
}

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return Ok(());
    }
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, data)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
}

/// Key → bytes of a ConfigMap or Secret.
fn source_data(store: &Store, kind: &str, ns: &str, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let rt = if kind == "secret" {
        resources::secrets()
    } else {
        resources::configmaps()
    };
    let obj = store.try_get(rt, ns, name)?;
    let mut out = Vec::new();
    if let Some(entries) = obj["data"].as_object() {
        for (key, value) in entries {
            let text = value.as_str().unwrap_or("");
            let bytes = if kind == "secret" {
                base64::decode(text).unwrap_or_default()
            } else {
                text.as_bytes().to_vec()
            };
            out.push((key.clone(), bytes));
        }
    }
    if let Some(entries) = obj["binaryData"].as_object() {
        for (key, value) in entries {
            out.push((
                key.clone(),
                base64::decode(value.as_str().unwrap_or("")).unwrap_or_default(),
            ));
        }
    }
    Some(out)
}

fn project(
    store: &Store,
    kind: &str,
    ns: &str,
    src: &Value,
    dir: &Path,
    default_mode: u32,
) -> Result<(), String> {
    let name = src["name"].as_str().unwrap_or("");
    let optional = src["optional"] == true;
    let Some(data) = source_data(store, kind, ns, name) else {
        if optional {
            return Ok(());
        }
        return Err(format!("{kind} \"{name}\" not found"));
    };
    let mode = src["defaultMode"]
        .as_u64()
        .map(|m| m as u32)
        .unwrap_or(default_mode);
    let write = |rel: &str, bytes: &[u8], mode: u32| {
        write_file(dir, rel, bytes, mode).map_err(|e| e.to_string())
    };
    match src["items"].as_array() {
        Some(items) => {
            for item in items {
                let key = item["key"].as_str().unwrap_or("");
                let path = item["path"].as_str().unwrap_or(key);
                let item_mode = item["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
                match data.iter().find(|(k, _)| k == key) {
                    Some((_, bytes)) => write(path, bytes, item_mode)?,
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {key}"
                        ));
                    }
                }
            }
        }
        None => {
            for (key, bytes) in &data {
                write(key, bytes, mode)?;
            }
        }
    }
    Ok(())
}

fn downward(pod: &Value, items: &Value, dir: &Path, mode: u32) -> Result<(), String> {
    for item in items.as_array().into_iter().flatten() {
        let path = item["path"].as_str().unwrap_or("");
        let field = item["fieldRef"]["fieldPath"].as_str().unwrap_or("");
        let value = super::env::field_value(pod, field).unwrap_or_default();
        write_file(dir, path, value.as_bytes(), mode).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes every volume of the pod under `root/volumes/NAME`.
pub fn materialise(store: &Store, pod: &Value, root: &Path) -> Result<(), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or("");
        if name.is_empty() || name.contains('/') || name == ".." {
            continue;
        }
        let dir = root.join("volumes").join(name);
        if volume["emptyDir"].is_object() || volume.get("emptyDir").is_some() {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            // Writable by any user, as the kubelet makes it: a container
            // running as a non-root user writes there.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| e.to_string())?;
            continue;
        }
        // Sourced volumes are rewritten on every start (fresh content).
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if volume["configMap"].is_object() {
            project(store, "configmap", ns, &volume["configMap"], &dir, 0o644)?;
        } else if volume["secret"].is_object() {
            let mut src = volume["secret"].clone();
            src["name"] = src["secretName"].clone();
            project(store, "secret", ns, &src, &dir, 0o644)?;
        } else if volume["downwardAPI"].is_object() {
            downward(pod, &volume["downwardAPI"]["items"], &dir, 0o644)?;
        } else if volume["projected"].is_object() {
            let mode = volume["projected"]["defaultMode"]
                .as_u64()
                .map(|m| m as u32)
                .unwrap_or(0o644);
            for source in volume["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if source["configMap"].is_object() {
                    project(store, "configmap", ns, &source["configMap"], &dir, mode)?;
                } else if source["secret"].is_object() {
                    project(store, "secret", ns, &source["secret"], &dir, mode)?;
                } else if source["downwardAPI"].is_object() {
                    downward(pod, &source["downwardAPI"]["items"], &dir, mode)?;
                }
            }
        }
        // hostPath and other kinds: an empty directory.
    }
    Ok(())
}

/// The mounts of one container.
pub fn mounts(container: &Value, root: &Path) -> Vec<Mount> {
    let mut out: Vec<Mount> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mount| {
            let name = mount["name"].as_str()?;
            let target = mount["mountPath"].as_str()?.to_string();
            if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
                return None;
            }
            let mut host = root.join("volumes").join(name);
            if let Some(sub) = mount["subPath"]
                .as_str()
                .filter(|s| !s.is_empty() && !s.contains(".."))
            {
                host = host.join(sub);
                let _ = std::fs::create_dir_all(&host);
            }
            Some(Mount {
                host,
                target,
                read_only: mount["readOnly"] == true,
            })
        })
        .collect();
    out.sort_by_key(|m| m.target.matches('/').count());
    out
}
