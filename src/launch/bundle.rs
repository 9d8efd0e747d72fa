//! The bundle: the program file and the files beside it, packed as a
//! gzipped tar to be stored in ConfigMaps.
//!
//! The program's directory is walked with the same ignore rules as ripgrep
//! (`.gitignore`, `.ignore`, plus `.kubeshignore`), without `.git`,
//! dependency folders (`node_modules`, `__pycache__`, virtualenvs) or
//! kubesh's own `.kubesh`. Files that look like credentials, by name or by
//! content ([`super::credentials`]), are left out unless the program file is
//! one of them, and the caller says which.
//! A bundle over the limits is refused before anything is created.
//!
//! Each file is its own gzip member (their concatenation is one gzip
//! stream of one tar, as `tar -xzf` reads it), and the ConfigMap pieces
//! are cut between members at places chosen by the files' names: a save
//! of one file changes its own piece only, so only that ConfigMap is
//! written again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::credentials::{self, LeftOut};

/// Largest piece of a bundle stored in one ConfigMap (the API server refuses
/// ConfigMaps over 1 MiB).
pub const CHUNK_SIZE: usize = 900 * 1024;
/// A piece holds at least this much before a file's name may end it.
const CHUNK_MIN: usize = 256 * 1024;

/// How big a bundle may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Compressed size, in bytes.
    pub max_compressed: u64,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_compressed: 32 * 1024 * 1024,
            max_files: 5_000,
        }
    }
}

/// A packed program directory.
#[derive(Clone)]
pub struct Bundle {
    /// tar + gzip of the files: one gzip member per file.
    pub archive: Vec<u8>,
    /// Where the archive is cut into ConfigMap pieces, in order.
    pub pieces: Vec<std::ops::Range<usize>>,
    /// Hex SHA-256 of every file's path, mode and content, in order.
    pub hash: String,
    /// The files inside, relative to the root, with their sizes.
    pub files: BTreeMap<String, u64>,
    /// Each file's SHA-256, to tell which files a new bundle changes.
    pub digests: BTreeMap<String, [u8; 32]>,
    /// Files left out because they look like credentials, in order.
    pub credentials_left_out: Vec<LeftOut>,
    /// Symbolic links left out because they point outside the program's
    /// directory (`name -> target`), in order.
    pub links_left_out: Vec<String>,
}

/// What `collect` found to pack.
struct Collected {
    /// Regular files: relative name → path.
    files: BTreeMap<String, PathBuf>,
    /// Symbolic links that stay inside the directory: relative name →
    /// their target, as written (made relative when it was absolute).
    links: BTreeMap<String, String>,
    credentials: Vec<LeftOut>,
    links_left_out: Vec<String>,
}

impl Bundle {
    /// The bundle of a program with no files (`python -c CODE`): nothing
    /// to store, no ConfigMaps, nothing to unpack.
    pub fn nothing() -> Bundle {
        Bundle {
            archive: Vec::new(),
            pieces: Vec::new(),
            hash: hex(&Sha256::new().finalize()),
            files: BTreeMap::new(),
            digests: BTreeMap::new(),
            credentials_left_out: Vec::new(),
            links_left_out: Vec::new(),
        }
    }

    /// The archive in pieces of at most [`CHUNK_SIZE`] bytes, one per
    /// ConfigMap.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|range| &self.archive[range.clone()])
    }

    /// A short form of the hash, for labels and annotations.
    pub fn short_hash(&self) -> &str {
        &self.hash[..16]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "{root}: more than {limit} files beside the program; kubesh ships the program's \
         whole directory. Move the program into its own directory, or list what it does not \
         need in a .kubeshignore file there (largest folders: {largest})"
    )]
    TooManyFiles {
        root: String,
        limit: usize,
        largest: String,
    },
    #[error(
        "{root}: the bundle is {size} compressed, over the {limit} limit; largest files: \
         {largest}. List what the program does not need in {root}/.kubeshignore"
    )]
    TooLarge {
        root: String,
        size: String,
        limit: String,
        largest: String,
    },
    #[error("{path}: cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Packs `root` for the program at `program` (a path inside `root`).
pub fn build(root: &Path, program: &Path, limits: Limits) -> Result<Bundle, BundleError> {
    let Collected {
        files,
        links,
        credentials: mut credentials_left_out,
        mut links_left_out,
    } = collect(root, program, limits, &own_data())?;
    let mut hasher = Sha256::new();
    let mut members = Members::default();
    let mut listing = BTreeMap::new();
    let mut digests = BTreeMap::new();
    {
        let mut tar = tar::Builder::new(&mut members);
        tar.mode(tar::HeaderMode::Deterministic);
        for (relative, path) in &files {
            let unreadable = |e: std::io::Error| BundleError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            };
            let contents = std::fs::read(path).map_err(unreadable)?;
            if path != program
                && let Some(kind) = credentials::by_content(&contents)
            {
                credentials_left_out.push(LeftOut {
                    path: relative.clone(),
                    kind,
                });
                continue;
            }
            let mode = file_mode(path);
            // The file's own time, so that caches keyed by it (Python's
            // bytecode) see an edit; it is not part of the hash.
            let modified = std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_secs());
            hasher.update(relative.as_bytes());
            hasher.update([0]);
            hasher.update(mode.to_le_bytes());
            hasher.update((contents.len() as u64).to_le_bytes());
            hasher.update(&contents);
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(mode);
            header.set_mtime(modified);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, relative, contents.as_slice())
                .map_err(unreadable)?;
            tar.get_mut().cut(relative).map_err(unreadable)?;
            listing.insert(relative.clone(), contents.len() as u64);
            digests.insert(relative.clone(), Sha256::digest(&contents).into());
        }
        // Links after the files, in order: a link to a file is unpacked as
        // the same link, so saving through either name is one file.
        for (relative, target) in &links {
            hasher.update(relative.as_bytes());
            hasher.update(b"\0link\0");
            hasher.update(target.as_bytes());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            tar.append_link(&mut header, relative, target)
                .and_then(|()| tar.get_mut().cut(relative))
                .map_err(|e| BundleError::Unreadable {
                    path: relative.clone(),
                    reason: e.to_string(),
                })?;
            listing.insert(relative.clone(), 0);
            digests.insert(
                relative.clone(),
                Sha256::digest(format!("link\0{target}")).into(),
            );
        }
        // The tar's end, a member of its own, joins the last piece.
        tar.finish()
            .and_then(|()| tar.get_mut().cut(""))
            .map_err(|e| BundleError::Unreadable {
                path: root.display().to_string(),
                reason: e.to_string(),
            })?;
    }
    let (archive, pieces) = members.into_pieces();
    if archive.len() as u64 > limits.max_compressed {
        return Err(BundleError::TooLarge {
            root: root.display().to_string(),
            size: human(archive.len() as u64),
            limit: human(limits.max_compressed),
            largest: largest(listing.iter().map(|(n, s)| (n.as_str(), *s))),
        });
    }
    credentials_left_out.sort_by(|a, b| a.path.cmp(&b.path));
    links_left_out.sort();
    let hash = hex(&hasher.finalize());
    Ok(Bundle {
        archive,
        pieces,
        hash,
        files: listing,
        digests,
        credentials_left_out,
        links_left_out,
    })
}

/// The tar of a bundle as it is written, compressed one member per file
/// (see [`Members::cut`]).
#[derive(Default)]
struct Members {
    /// The tar's bytes since the last cut.
    pending: Vec<u8>,
    /// The gzip members so far, concatenated.
    archive: Vec<u8>,
    /// Each member's end in `archive` and whether a piece may start
    /// after it (chosen by its file's name).
    ends: Vec<(usize, bool)>,
}

impl Write for Members {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Members {
    /// Ends the member holding the tar since the last cut (the entry of
    /// `name`): a gzip member of its own, so that its bytes do not depend
    /// on any other file's.
    fn cut(&mut self, name: &str) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&self.pending)?;
        self.archive.extend(encoder.finish()?);
        self.pending.clear();
        // About one name in four may end a piece: where pieces end
        // follows the names, so a file that grows moves no other cut.
        let may_end = !name.is_empty() && Sha256::digest(name.as_bytes())[0] < 64;
        self.ends.push((self.archive.len(), may_end));
        Ok(())
    }

    /// The archive and its pieces: members joined up to [`CHUNK_SIZE`],
    /// ended after a member whose name allows it once they hold
    /// [`CHUNK_MIN`]; a member over [`CHUNK_SIZE`] is cut in pieces of its
    /// own.
    fn into_pieces(self) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut member_start = 0;
        for &(end, may_end) in &self.ends {
            if end - start > CHUNK_SIZE && member_start > start {
                pieces.push(start..member_start);
                start = member_start;
            }
            if end - start > CHUNK_SIZE {
                while end - start > CHUNK_SIZE {
                    pieces.push(start..start + CHUNK_SIZE);
                    start += CHUNK_SIZE;
                }
                pieces.push(start..end);
                start = end;
            } else if may_end && end - start >= CHUNK_MIN {
                pieces.push(start..end);
                start = end;
            }
            member_start = end;
        }
        if start < self.archive.len() {
            pieces.push(start..self.archive.len());
        }
        (self.archive, pieces)
    }
}

/// Bytes in hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar of the entries of `archive` (a bundle) named in `names`, with
/// their modes: what a live update writes into a running container. Not
/// compressed: a save changes a few small files, and a plain tar is
/// unpacked without a gzip process; [`gzip`] it when it is large.
pub fn subset(archive: &[u8], names: &BTreeSet<String>) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    out.mode(tar::HeaderMode::Deterministic);
    let mut input = tar::Archive::new(flate2::read::MultiGzDecoder::new(archive));
    for entry in input.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if !names.contains(&name) {
            continue;
        }
        let mut header = entry.header().clone();
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents)?;
        out.append_data(&mut header, &name, contents.as_slice())?;
    }
    out.into_inner()
}

/// `bytes` compressed with gzip, favouring speed.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// kubesh's own data directory: its history, the local cluster's state
/// and pod logs. Never shipped, not even from a directory above it such as
/// the home directory; and the local cluster's logs changing under a
/// watched program must not count as saves.
pub fn own_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "kubesh").map(|dirs| dirs.data_dir().to_path_buf())
}

/// The files kubesh's standard output and error go to, when they are
/// files (`kubesh app.kubesh > app.log`).
pub fn own_output_files() -> Vec<PathBuf> {
    ["1", "2"]
        .into_iter()
        .filter_map(|stream| std::fs::read_link(Path::new("/proc/self/fd").join(stream)).ok())
        .filter(|target| target.is_file())
        .collect()
}

/// [`own_data_dir`], and the files kubesh's standard output and error go
/// to (`kubesh app.kubesh > app.log` in the program's directory), as
/// (device, inode), to know them however they are reached: never shipped,
/// or each reload line would change the bundle.
fn own_data() -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let output_files = own_output_files()
        .into_iter()
        .filter_map(|file| std::fs::metadata(file).ok());
    own_data_dir()
        .and_then(|dir| std::fs::metadata(dir).ok())
        .into_iter()
        .chain(output_files)
        .map(|meta| (meta.dev(), meta.ino()))
        .collect()
}

/// The files to pack (relative name → path), and the credentials left
/// out by their names; the directories and files in `kept_out` (device,
/// inode) are skipped.
fn collect(
    root: &Path,
    program: &Path,
    limits: Limits,
    kept_out: &[(u64, u64)],
) -> Result<Collected, BundleError> {
    use std::os::unix::fs::MetadataExt;
    let mut files = BTreeMap::new();
    let mut links = BTreeMap::new();
    let mut links_left_out = Vec::new();
    let root_resolved = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut credentials = Vec::new();
    let mut folder_counts: BTreeMap<String, u64> = BTreeMap::new();
    let kept_out = kept_out.to_vec();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_global(false)
        .require_git(false)
        .add_custom_ignore_filename(".kubeshignore")
        .filter_entry(move |entry| {
            let kept_out = kept_out.iter().any(|&(device, inode)| {
                entry.ino() == Some(inode) && entry.metadata().is_ok_and(|m| m.dev() == device)
            });
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let skipped_dir = is_dir && is_skipped_dir(entry.path());
            !(kept_out || skipped_dir)
        })
        .build();
    for entry in walker {
        let Ok(entry) = entry else { continue };
        if entry.path_is_symlink() && entry.depth() > 0 {
            let Ok(relative) = entry.path().strip_prefix(root) else {
                continue;
            };
            let relative = relative.to_string_lossy().replace('\\', "/");
            match link_inside(entry.path(), &root_resolved) {
                Some(target) => {
                    links.insert(relative, target);
                }
                None => {
                    let target = std::fs::read_link(entry.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    links_left_out.push(format!("{relative} -> {target}"));
                }
            }
            continue;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        if path != program
            && let Some(kind) = credentials::by_name(path)
        {
            credentials.push(LeftOut {
                path: relative,
                kind,
            });
            continue;
        }
        let top = relative.split('/').next().unwrap_or_default().to_string();
        *folder_counts.entry(top).or_default() += 1;
        files.insert(relative, path.to_path_buf());
        if files.len() > limits.max_files {
            return Err(BundleError::TooManyFiles {
                root: root.display().to_string(),
                limit: limits.max_files,
                largest: largest_counts(&folder_counts),
            });
        }
    }
    // The program file, even where ignore rules leave it out (a module's
    // package directory is walked like any other).
    if !program.is_dir()
        && let Ok(relative) = program.strip_prefix(root)
    {
        files
            .entry(relative.to_string_lossy().into_owned())
            .or_insert_with(|| program.to_path_buf());
    }
    // A program named through a link is shipped as the link (above).
    files.retain(|relative, _| !links.contains_key(relative));
    Ok(Collected {
        files,
        links,
        credentials,
        links_left_out,
    })
}

/// The target of the link at `link`, to be written in the bundle, when it
/// resolves to something inside the directory `root_resolved`: as written
/// when relative, made relative when absolute. `None` for a link that
/// leads outside, or nowhere.
fn link_inside(link: &Path, root_resolved: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    let resolved = link.canonicalize().ok()?;
    if !resolved.starts_with(root_resolved) {
        return None;
    }
    if target.is_relative() {
        return Some(target.to_string_lossy().into_owned());
    }
    // Absolute, but inside: relative to the link's own directory.
    let parent = link.parent()?.canonicalize().ok()?;
    let from = parent.strip_prefix(root_resolved).ok()?;
    let to = resolved.strip_prefix(root_resolved).ok()?;
    let ups = from.components().count();
    let mut relative = PathBuf::new();
    for _ in 0..ups {
        relative.push("..");
    }
    relative.push(to);
    Some(relative.to_string_lossy().into_owned())
}

fn is_skipped_dir(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    matches!(
        name,
        ".git"
            | ".hg"
            | ".svn"
            | "node_modules"
            | "__pycache__"
            | ".venv"
            | "venv"
            | ".tox"
            | ".kubesh"
            | ".kube"
    ) || path.join("pyvenv.cfg").is_file()
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let executable = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    if executable { 0o755 } else { 0o644 }
}

fn largest<'a>(files: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut files: Vec<(&str, u64)> = files.collect();
    files.sort_by_key(|file| std::cmp::Reverse(file.1));
    files
        .iter()
        .take(5)
        .map(|(name, size)| format!("{name} ({})", human(*size)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn largest_counts(counts: &BTreeMap<String, u64>) -> String {
    let mut counts: Vec<(&String, &u64)> = counts.iter().collect();
    counts.sort_by_key(|count| std::cmp::Reverse(*count.1));
    counts
        .iter()
        .take(3)
        .map(|(name, n)| format!("{name} ({n} files)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bytes for people: `512 B`, `3.4 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn a_subset_holds_only_the_named_files_with_their_contents_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let program = write(dir.path(), "app.js", b"console.log(2)");
        write(dir.path(), "lib/util.js", b"module.exports = 1");
        write(dir.path(), "data.txt", b"unchanged");
        let bundle = build(dir.path(), &program, Limits::default()).unwrap();
        let wanted = BTreeSet::from(["app.js".to_string(), "lib/util.js".to_string()]);
        let subset = subset(&bundle.archive, &wanted).unwrap();
        let mut archive = tar::Archive::new(subset.as_slice());
        let mut found = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut contents = String::new();
            entry.read_to_string(&mut contents).unwrap();
            found.insert(name, (contents, mode));
        }
        assert_eq!(found.len(), 2);
        assert_eq!(found["app.js"].0, "console.log(2)");
        assert_eq!(found["lib/util.js"].0, "module.exports = 1");
        assert_eq!(found["app.js"].1, file_mode(&program));
    }

    fn names(bundle: &Bundle) -> Vec<&str> {
        bundle.files.keys().map(String::as_str).collect()
    }

    #[test]
    fn ships_the_directory_without_ignored_dependencies_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let program = write(root, "service.js", b"console.log(1)");
        write(root, "lib/util.js", b"x");
        write(root, "package.json", b"{}");
        write(root, "node_modules/dep/index.js", b"x");
        write(root, ".git/config", b"x");
        write(root, "venv/pyvenv.cfg", b"x");
        write(root, "build/out.bin", b"x");
        write(root, ".gitignore", b"build/\n");
        write(root, "secret.txt", b"x");
        write(root, ".kubeshignore", b"secret.txt\n");
        write(root, ".env", b"TOKEN=x");
        write(root, "tls/server.pem", b"x");
        write(root, "id_ed25519", b"x");
        let bundle = build(root, &program, Limits::default()).unwrap();
        assert_eq!(
            names(&bundle),
            [
                ".gitignore",
                ".kubeshignore",
                "lib/util.js",
                "package.json",
                "service.js"
            ]
        );
        assert_eq!(
            left_out(&bundle),
            [
                ".env (environment file)",
                "id_ed25519 (SSH key)",
                "tls/server.pem (key or certificate)"
            ]
        );
    }

    fn left_out(bundle: &Bundle) -> Vec<String> {
        bundle
            .credentials_left_out
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const KUBECONFIG: &[u8] = b"apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://203.0.113.7:6443
  name: prod
contexts:
- context: {cluster: prod, user: admin}
  name: prod
current-context: prod
users:
- name: admin
  user:
    token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06YWRtaW4ifQ.c2lnbmF0dXJlMTIz
";

    #[test]
    fn credentials_are_left_out_by_content_whatever_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let program = write(root, "app.py", b"print('hello')\n");
        write(root, "admin.conf", KUBECONFIG);
        write(root, "deploy/my-cluster.yaml", KUBECONFIG);
        write(
            root,
            ".aws/credentials",
            b"[default]\naws_access_key_id = AKIAZ7EXAMPLEQWERTYU\n\
              aws_secret_access_key = 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\n",
        );
        write(
            root,
            "frontend/.npmrc",
            b"//registry.npmjs.org/:_authToken=npm_4f9c2b7e1a3d5c6b8e0f2a4c6e8b0d2f4a6c\n",
        );
        write(
            root,
            ".netrc",
            b"machine github.com login ci password ghp_x\n",
        );
        write(
            root,
            ".docker/config.json",
            br#"{"auths": {"https://index.docker.io/v1/": {"auth": "Y2k6c2VjcmV0"}}}"#,
        );
        write(root, ".git-credentials", b"https://ci:ghp_x@github.com\n");
        write(root, ".pgpass", b"db:5432:shop:app:s3cret\n");
        write(
            root,
            ".pypirc",
            b"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n",
        );
        write(
            root,
            "ci/sa.json",
            br#"{"type": "service_account", "project_id": "p", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"}"#,
        );
        write(
            root,
            "infra/terraform.tfstate",
            br#"{"version": 4, "terraform_version": "1.9.5", "resources": []}"#,
        );
        write(root, "android/release.jks", b"\xfe\xed\xfe\xed\0\0\0\x02");
        write(
            root,
            "nginx/htpasswd",
            b"admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n",
        );
        write(
            root,
            ".envrc",
            b"export DATABASE_URL=postgres://app:pw@db/shop\n",
        );
        // The same contents under ordinary names.
        write(
            root,
            "state.json",
            br#"{"terraform_version": "1.9.5", "lineage": "x", "resources": []}"#,
        );
        write(root, "keystore.bin", b"\xfe\xed\xfe\xed\0\0\0\x02");
        write(
            root,
            "users.txt",
            b"admin:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
        );
        write(root, "deploy_key", b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n");
        // Ordinary files that mention credentials stay.
        write(
            root,
            "login.py",
            b"password = input('password: ')\nprint('password ok')\n",
        );
        write(
            root,
            "README.md",
            b"# Deploy\n\nCopy your kubeconfig (clusters:, users: and a token:) to admin.conf.\n",
        );
        write(
            root,
            "k8s/service.yaml",
            b"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
        );
        let bundle = build(root, &program, Limits::default()).unwrap();
        assert_eq!(
            names(&bundle),
            ["README.md", "app.py", "k8s/service.yaml", "login.py"]
        );
        assert_eq!(
            left_out(&bundle),
            [
                ".aws/credentials (AWS credentials)",
                ".docker/config.json (registry login)",
                ".envrc (environment file)",
                ".git-credentials (Git credentials)",
                ".netrc (netrc login)",
                ".pgpass (PostgreSQL passwords)",
                ".pypirc (PyPI password)",
                "admin.conf (kubeconfig)",
                "android/release.jks (keystore)",
                "ci/sa.json (private key)",
                "deploy/my-cluster.yaml (kubeconfig)",
                "deploy_key (private key)",
                "frontend/.npmrc (npm token)",
                "infra/terraform.tfstate (Terraform state)",
                "keystore.bin (keystore)",
                "nginx/htpasswd (password hashes)",
                "state.json (Terraform state)",
                "users.txt (password hashes)",
            ]
        );
    }

    #[test]
    fn a_credential_by_content_named_as_the_program_is_shipped() {
        let dir = tempfile::tempdir().unwrap();
        let program = write(dir.path(), "admin.conf", KUBECONFIG);
        write(dir.path(), "copy.conf", KUBECONFIG);
        let bundle = build(dir.path(), &program, Limits::default()).unwrap();
        assert_eq!(names(&bundle), ["admin.conf"]);
        assert_eq!(left_out(&bundle), ["copy.conf (kubeconfig)"]);
    }

    #[test]
    fn kubesh_s_own_data_directory_is_never_shipped() {
        use std::os::unix::fs::MetadataExt;
        // Launched from the home directory, with kubesh's data below it.
        let home = tempfile::tempdir().unwrap();
        let program = write(home.path(), "web.py", b"print(1)");
        write(home.path(), ".local/share/kubesh/history", b"ls");
        write(
            home.path(),
            ".local/share/kubesh/local-cluster/state/log",
            b"x",
        );
        write(home.path(), ".local/share/other/notes.txt", b"x");
        let data = std::fs::metadata(home.path().join(".local/share/kubesh")).unwrap();
        let kept_out = [(data.dev(), data.ino())];
        let files = collect(home.path(), &program, Limits::default(), &kept_out)
            .unwrap()
            .files;
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, [".local/share/other/notes.txt", "web.py"]);
    }

    #[test]
    fn a_credential_named_as_the_program_is_shipped() {
        let dir = tempfile::tempdir().unwrap();
        let program = write(dir.path(), "deploy.key", b"x");
        let bundle = build(dir.path(), &program, Limits::default()).unwrap();
        assert_eq!(names(&bundle), ["deploy.key"]);
    }

    #[test]
    fn links_inside_the_directory_are_shipped_as_links_and_others_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("main.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("lib/util.py"), "X = 1\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside\n").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        link(Path::new("main.py"), "alias.py");
        link(&root.join("lib/util.py"), "util.py");
        link(Path::new("lib"), "library");
        link(&dir.path().join("secret.txt"), "outside.txt");
        link(Path::new("missing.py"), "dangling.py");
        let bundle = build(&root, &root.join("main.py"), Limits::default()).unwrap();
        assert_eq!(
            bundle.links_left_out,
            [
                "dangling.py -> missing.py".to_string(),
                format!("outside.txt -> {}", dir.path().join("secret.txt").display())
            ]
        );
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bundle.archive[..]));
        let mut links = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.header().entry_type() == tar::EntryType::Symlink {
                links.push(format!(
                    "{} -> {}",
                    entry.path().unwrap().display(),
                    entry.link_name().unwrap().unwrap().display()
                ));
            }
        }
        assert_eq!(
            links,
            [
                "alias.py -> main.py",
                "library -> lib",
                "util.py -> lib/util.py"
            ]
        );
    }

    #[test]
    fn the_archive_unpacks_to_the_same_files_and_the_hash_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let program = write(dir.path(), "job.py", b"print('one')");
        let first = build(dir.path(), &program, Limits::default()).unwrap();
        let again = build(dir.path(), &program, Limits::default()).unwrap();
        assert_eq!(first.hash, again.hash, "same content, same hash");
        assert_eq!(first.archive, again.archive, "the archive is deterministic");
        let mut archive =
            tar::Archive::new(flate2::read::MultiGzDecoder::new(first.archive.as_slice()));
        let entries: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(entries, ["job.py"]);
        write(dir.path(), "job.py", b"print('two')");
        let changed = build(dir.path(), &program, Limits::default()).unwrap();
        assert_ne!(first.hash, changed.hash);
    }

    #[test]
    fn limits_are_enforced_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let program = write(dir.path(), "main.py", b"x");
        for i in 0..5 {
            write(dir.path(), &format!("data/{i}.txt"), b"x");
        }
        let few = Limits {
            max_files: 3,
            ..Limits::default()
        };
        let error = build(dir.path(), &program, few).err().unwrap().to_string();
        assert!(
            error.contains("more than 3 files") && error.contains("data ("),
            "{error}"
        );
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        write(dir.path(), "big.bin", &noise);
        let small = Limits {
            max_compressed: 50_000,
            ..Limits::default()
        };
        let error = build(dir.path(), &program, small)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("big.bin (195.3 KiB)") && error.contains(".kubeshignore"),
            "{error}"
        );
    }

    #[test]
    fn chunks_fit_in_configmaps_and_a_small_edit_changes_one() {
        let dir = tempfile::tempdir().unwrap();
        // Noise does not compress: 3 MiB of it, and small files around it.
        let mut state: u64 = 7;
        let noise: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        write(dir.path(), "blob.bin", &noise);
        let program = write(dir.path(), "app.py", b"print('one')\n");
        for index in 0..40 {
            let text = "x = 1\n".repeat(index * 50);
            write(dir.path(), &format!("lib/m{index}.py"), text.as_bytes());
        }
        let mut first = build(dir.path(), &program, Limits::default()).unwrap();
        let sizes: Vec<usize> = first.chunks().map(<[u8]>::len).collect();
        assert!(sizes.iter().all(|size| *size <= CHUNK_SIZE), "{sizes:?}");
        assert!(sizes.len() >= 4, "{sizes:?}");
        // Whole, in order, the pieces are the archive: one gzip stream.
        let joined: Vec<u8> = first.chunks().flatten().copied().collect();
        assert_eq!(joined, first.archive);
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&joined[..]));
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names.len(), 42, "{names:?}");
        for (file, text) in [
            ("app.py", "print('two, longer')\n"),
            ("lib/m7.py", "y = 2\n"),
        ] {
            write(dir.path(), file, text.as_bytes());
            let second = build(dir.path(), &program, Limits::default()).unwrap();
            let before: Vec<&[u8]> = first.chunks().collect();
            let after: Vec<&[u8]> = second.chunks().collect();
            assert_eq!(before.len(), after.len(), "{file}");
            let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert_eq!(changed, 1, "an edit of {file} changes one piece");
            first = second;
        }
    }
}
