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
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
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
    if let Some(m) = obj["data"].as_object() {
        for (k, v) in m {
            let s = v.as_str().unwrap_or("");
            let bytes = if kind == "secret" {
                base64::decode(s).unwrap_or_default()
            } else {
                s.as_bytes().to_vec()
            };
            out.push((k.clone(), bytes));
        }
    }
    if let Some(m) = obj["binaryData"].as_object() {
        for (k, v) in m {
            out.push((
                k.clone(),
                base64::decode(v.as_str().unwrap_or("")).unwrap_or_default(),
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
            for it in items {
                let key = it["key"].as_str().unwrap_or("");
                let path = it["path"].as_str().unwrap_or(key);
                let m = it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
                match data.iter().find(|(k, _)| k == key) {
                    Some((_, bytes)) => write(path, bytes, m)?,
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
            for (k, bytes) in &data {
                write(k, bytes, mode)?;
            }
        }
    }
    Ok(())
}

fn downward(pod: &Value, items: &Value, dir: &Path, mode: u32) -> Result<(), String> {
    for it in items.as_array().into_iter().flatten() {
        let path = it["path"].as_str().unwrap_or("");
        let field = it["fieldRef"]["fieldPath"].as_str().unwrap_or("");
        let value = super::env::field_value(pod, field).unwrap_or_default();
        write_file(dir, path, value.as_bytes(), mode).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes every volume of the pod under `root/volumes/NAME`.
pub fn materialise(store: &Store, pod: &Value, root: &Path) -> Result<(), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        if name.is_empty() || name.contains('/') || name == ".." {
            continue;
        }
        let dir = root.join("volumes").join(name);
        if v["emptyDir"].is_object() || v.get("emptyDir").is_some() {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            continue;
        }
        // Sourced volumes are rewritten on every start (fresh content).
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if v["configMap"].is_object() {
            project(store, "configmap", ns, &v["configMap"], &dir, 0o644)?;
        } else if v["secret"].is_object() {
            let mut src = v["secret"].clone();
            src["name"] = src["secretName"].clone();
            project(store, "secret", ns, &src, &dir, 0o644)?;
        } else if v["downwardAPI"].is_object() {
            downward(pod, &v["downwardAPI"]["items"], &dir, 0o644)?;
        } else if v["projected"].is_object() {
            let mode = v["projected"]["defaultMode"]
                .as_u64()
                .map(|m| m as u32)
                .unwrap_or(0o644);
            for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                if s["configMap"].is_object() {
                    project(store, "configmap", ns, &s["configMap"], &dir, mode)?;
                } else if s["secret"].is_object() {
                    project(store, "secret", ns, &s["secret"], &dir, mode)?;
                } else if s["downwardAPI"].is_object() {
                    downward(pod, &s["downwardAPI"]["items"], &dir, mode)?;
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
        .filter_map(|m| {
            let name = m["name"].as_str()?;
            let target = m["mountPath"].as_str()?.to_string();
            if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
                return None;
            }
            let mut host = root.join("volumes").join(name);
            if let Some(sub) = m["subPath"]
                .as_str()
                .filter(|s| !s.is_empty() && !s.contains(".."))
            {
                host = host.join(sub);
                let _ = std::fs::create_dir_all(&host);
            }
            Some(Mount {
                host,
                target,
                read_only: m["readOnly"] == true,
            })
        })
        .collect();
    out.sort_by_key(|m| m.target.matches('/').count());
    out
}
