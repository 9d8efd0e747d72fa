//! Images for the local cluster's pods, obtained through the local Docker
//! engine with bollard: an image is used if the engine has it and pulled
//! if it can pull it (as `imagePullPolicy` says), its root file system is
//! exported once per image id and kept unpacked under the cluster's state
//! directory, and its config (entrypoint, command, environment, working
//! directory, user) is read for the kubelet. Also owns the setting that
//! chooses between this and running commands from this machine
//! (`KUBESH_LOCAL_IMAGES=engine|host`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kubesh_engine::{Docker, engine_address, engine_message};

/// The variable that chooses how pods get their files.
pub const IMAGES_VARIABLE: &str = "KUBESH_LOCAL_IMAGES";

/// How the cluster is asked to run pods' images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImagesSetting {
    /// In their images where a Docker engine answers, else from this
    /// machine.
    #[default]
    Auto,
    /// In their images, through the Docker engine.
    Engine,
    /// Commands from this machine's PATH, images recorded only.
    Host,
}

impl ImagesSetting {
    /// The setting named by `KUBESH_LOCAL_IMAGES` (unset: auto).
    ///
    /// # Errors
    /// A value other than `engine` or `host`, as one sentence.
    pub fn from_env() -> Result<ImagesSetting, String> {
        match std::env::var(IMAGES_VARIABLE) {
            Err(_) => Ok(ImagesSetting::Auto),
            Ok(value) => match value.as_str() {
                "" | "auto" => Ok(ImagesSetting::Auto),
                "engine" => Ok(ImagesSetting::Engine),
                "host" => Ok(ImagesSetting::Host),
                other => Err(format!(
                    "{IMAGES_VARIABLE}={other} is not a mode: use engine (pods run in their \
                     images, through the Docker engine) or host (commands run from this \
                     machine's PATH)"
                )),
            },
        }
    }
}

/// A connection to the engine, checked: `Err` says why there is none.
///
/// # Errors
/// No engine answers at [`engine_address`], as one sentence.
pub async fn connect() -> Result<Docker, String> {
    kubesh_engine::connect().await.map_err(|e| e.to_string())
}

/// An image ready to run: its unpacked root file system and its config.
#[derive(Debug)]
pub struct Image {
    pub id: String,
    pub rootfs: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub user: String,
}

/// How the image came to be there (for the kubelet's events).
pub enum Obtained {
    AlreadyPresent,
    Pulled(Duration),
}

/// Why a container's image cannot be had.
#[derive(Debug)]
pub enum ImageError {
    /// `imagePullPolicy: Never` and the engine does not have it.
    NeverPull(String),
    /// The engine could not pull it: its message.
    Pull(String),
    /// It is there but its files could not be unpacked here.
    Unpack(String),
}

/// The engine, the unpacked images and what is known of them.
pub struct Engine {
    docker: Docker,
    address: String,
    cache: PathBuf,
    /// Image id → the image, once unpacked.
    known: Mutex<HashMap<String, Arc<Image>>>,
    /// One export at a time per image id.
    exporting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A reference split as the engine's pull takes it: a tag, or a digest.
fn repository_and_tag(reference: &str) -> (&str, &str) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo, digest);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

impl Engine {
    /// Uses `docker`; unpacked images are kept under `cache`.
    pub fn new(docker: Docker, cache: PathBuf) -> Engine {
        Engine {
            docker,
            address: engine_address(),
            cache,
            known: Mutex::new(HashMap::new()),
            exporting: Mutex::new(HashMap::new()),
        }
    }

    /// Where the engine is.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The image `reference`, as `policy` (`Always`, `IfNotPresent`,
    /// `Never`) says to get it, unpacked and ready.
    ///
    /// # Errors
    /// The engine does not have it and may not or cannot pull it, or its
    /// files cannot be unpacked.
    pub async fn image(
        &self,
        reference: &str,
        policy: &str,
    ) -> Result<(Arc<Image>, Obtained), ImageError> {
        let present = match policy {
            "Always" => None,
            _ => self.docker.inspect_image(reference).await.ok(),
        };
        let (inspect, obtained) = match present {
            Some(inspect) => (inspect, Obtained::AlreadyPresent),
            None if policy == "Never" => {
                return Err(ImageError::NeverPull(format!(
                    "Container image \"{reference}\" is not present with pull policy of Never"
                )));
            }
            None => {
                let began = std::time::Instant::now();
                self.pull(reference).await?;
                let inspect = self
                    .docker
                    .inspect_image(reference)
                    .await
                    .map_err(|e| ImageError::Pull(engine_message(&e)))?;
                (inspect, Obtained::Pulled(began.elapsed()))
            }
        };
        let id = inspect.id.clone().unwrap_or_default();
        if let Some(image) = self.lock_known().get(&id) {
            return Ok((image.clone(), obtained));
        }
        let config = inspect.config.unwrap_or_default();
        let rootfs = self.unpacked(&id, reference).await?;
        let image = Arc::new(Image {
            id: id.clone(),
            rootfs,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            env: config
                .env
                .unwrap_or_default()
                .iter()
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) => (name.to_string(), value.to_string()),
                    None => (pair.clone(), String::new()),
                })
                .collect(),
            workdir: config.working_dir.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
        });
        self.lock_known().insert(id, image.clone());
        Ok((image, obtained))
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Image>>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn pull(&self, reference: &str) -> Result<(), ImageError> {
        let (repo, tag) = repository_and_tag(reference);
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(step) = stream.next().await {
            step.map_err(|e| {
                ImageError::Pull(format!(
                    "{} (this local cluster gets images through the Docker engine; where the \
                     engine cannot pull, start the cluster with {IMAGES_VARIABLE}=host to run \
                     pods' commands from this machine: `kubesh local-cluster stop`, then \
                     `{IMAGES_VARIABLE}=host kubesh --local`)",
                    engine_message(&e)
                ))
            })?;
        }
        Ok(())
    }

    /// The unpacked root file system of image `id`: from the cache, or
    /// exported through a container made (not started) for it.
    async fn unpacked(&self, id: &str, reference: &str) -> Result<PathBuf, ImageError> {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        let dir = self.cache.join(hex);
        let rootfs = dir.join("rootfs");
        let lock = self
            .exporting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hex.to_string())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        let unpack_error = |what: &str, e: &dyn std::fmt::Display| {
            ImageError::Unpack(format!(
                "cannot unpack image \"{reference}\" into {}: {what}: {e}",
                self.cache.display()
            ))
        };
        std::fs::create_dir_all(&self.cache)
            .map_err(|e| unpack_error("making the directory", &e))?;
        let work = self
            .cache
            .join(format!(".unpacking-{hex}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("rootfs"))
            .map_err(|e| unpack_error("making the directory", &e))?;
        // The export is unpacked as it arrives: no tarball is written, and
        // the engine's writing and the unpacking overlap.
        let (chunks, received) = tokio::sync::mpsc::channel(64);
        let target = work.join("rootfs");
        let unpacking = tokio::task::spawn_blocking(move || {
            unpack(
                Chunks {
                    received,
                    current: bytes::Bytes::new(),
                },
                &target,
            )
        });
        let exported = self.export(id, chunks).await;
        let unpacked = unpacking.await;
        let result = match (exported, unpacked) {
            (Err(message), _) => Err(ImageError::Pull(message)),
            (Ok(()), Err(e)) => Err(unpack_error("unpacking", &e)),
            (Ok(()), Ok(Err(e))) => Err(unpack_error("unpacking", &e)),
            (Ok(()), Ok(Ok(()))) => Ok(()),
        };
        if let Err(error) = result {
            let _ = std::fs::remove_dir_all(&work);
            return Err(error);
        }
        // Another cluster sharing the cache may have put the same image in
        // place meanwhile: its files are these files, and its pods may be
        // using them, so they stay and this copy goes.
        if let Err(e) = std::fs::rename(&work, &dir) {
            let _ = std::fs::remove_dir_all(&work);
            if !rootfs.is_dir() {
                return Err(unpack_error("moving it into place", &e));
            }
        }
        Ok(rootfs)
    }

    /// Sends image `id`'s flattened file system (a tar), chunk by chunk, to
    /// `to`. A receiver that stops early (the unpacking failed) ends the
    /// export without an error of its own: the unpacking says why.
    async fn export(
        &self,
        id: &str,
        to: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<(), String> {
        let body = bollard::models::ContainerCreateBody {
            image: Some(id.to_string()),
            // Never started: only there to be exported.
            cmd: Some(vec!["/kubesh-export".to_string()]),
            entrypoint: Some(Vec::new()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| engine_message(&e))?;
        let sent = async {
            let mut stream = self.docker.export_container(&created.id);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| engine_message(&e))?;
                if to.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop(to);
        let remove = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = self
            .docker
            .remove_container(&created.id, Some(remove))
            .await;
        sent
    }
}

/// The chunks of an export, read as one stream by the unpacking (on a
/// blocking thread) as the engine sends them.
struct Chunks {
    received: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.received.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Unpacks a container export into `target`, owners kept where this
/// process may set them; device nodes are left out (the container's
/// `/dev` is bound from this machine).
fn unpack(export: impl std::io::Read, target: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(export);
    archive.set_preserve_permissions(true);
    // SAFETY: geteuid has no side effects.
    archive.set_preserve_ownerships(unsafe { libc::geteuid() } == 0);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if matches!(
            entry.header().entry_type(),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        ) {
            continue;
        }
        entry.unpack_in(target)?;
    }
    Ok(())
}

/// Resolves `path` inside the root file system `root` as the kernel would
/// after a chroot there: symbolic links followed within `root`, `..` never
/// above it. Gives the path on this machine, which may not exist yet.
pub fn resolve_in(root: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&parts);
        here.push(&part);
        match std::fs::read_link(&here) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                for component in target.components().rev() {
                    match component {
                        Component::Normal(name) => pending.push(name.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

/// The user and group an image's `USER` names (`name`, `uid`,
/// `name:group`, `uid:gid`), found in its `/etc/passwd` and `/etc/group`,
/// and that user's home directory.
///
/// # Errors
/// A name the image does not know, in the container runtime's words.
pub fn image_user(rootfs: &Path, user: &str) -> Result<(u32, u32, String), String> {
    let read = |file: &str| {
        std::fs::read_to_string(resolve_in(rootfs, Path::new(file))).unwrap_or_default()
    };
    let passwd = read("/etc/passwd");
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 7)
        .collect();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let found = entries
        .iter()
        .find(|fields| match user_part.parse::<u32>() {
            Ok(uid) => fields[2].parse::<u32>().ok() == Some(uid),
            Err(_) => fields[0] == user_part,
        });
    let (uid, mut gid, home) = match (found, user_part.parse::<u32>()) {
        (Some(fields), _) => (
            fields[2].parse().unwrap_or(0),
            fields[3].parse().unwrap_or(0),
            fields[5].to_string(),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string()),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ));
        }
    };
    if let Some(group) = group_part {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read("/etc/group")
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() >= 3 && fields[0] == group)
                .and_then(|fields| fields[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {group}: no matching entries in group file")
                })?,
        };
    }
    Ok((uid, gid, home))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(repository_and_tag("busybox"), ("busybox", "latest"));
        assert_eq!(repository_and_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            repository_and_tag("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team/app", "latest")
        );
        assert_eq!(
            repository_and_tag("127.0.0.1:5000/app:v2"),
            ("127.0.0.1:5000/app", "v2")
        );
        assert_eq!(
            repository_and_tag("app@sha256:abcd"),
            ("app", "sha256:abcd")
        );
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).expect("dirs");
        std::fs::create_dir_all(root.join("run")).expect("dirs");
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).expect("link");
        std::os::unix::fs::symlink("/run", root.join("etc-run")).expect("link");
        std::os::unix::fs::symlink("../../..", root.join("run/up")).expect("link");
        assert_eq!(
            resolve_in(root, Path::new("/bin/sh")),
            root.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in(root, Path::new("/etc-run/x")),
            root.join("run/x")
        );
        assert_eq!(resolve_in(root, Path::new("/run/up/etc")), root.join("etc"));
        assert_eq!(resolve_in(root, Path::new("/../../etc")), root.join("etc"));
    }

    #[test]
    fn users_come_from_the_image() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).expect("etc");
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        assert_eq!(image_user(root, ""), Ok((0, 0, "/root".into())));
        assert_eq!(
            image_user(root, "app"),
            Ok((1000, 1001, "/home/app".into()))
        );
        assert_eq!(
            image_user(root, "1000:staff"),
            Ok((1000, 50, "/home/app".into()))
        );
        assert_eq!(image_user(root, "4242"), Ok((4242, 0, "/".into())));
        assert_eq!(
            image_user(root, "nobody"),
            Err("unable to find user nobody: no matching entries in passwd file".into())
        );
    }
}
