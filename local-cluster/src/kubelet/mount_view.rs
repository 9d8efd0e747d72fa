//! A container's view of the file system, built in its own mount
//! namespace: a fresh tmpfs root with this machine's top-level entries
//! bound back, `/dev` and a `/proc` of the container's own PID namespace,
//! every volume bound at its `mountPath`, and the pod's `/etc/hosts` and
//! `/etc/resolv.conf`. A directory that must gain a new entry (such as
//! `/kubesh` or `/etc/config`) is replaced in the view by a tmpfs holding
//! binds of its entries, so nothing is ever created on this machine's own
//! file system.
//!
//! A container that runs in its image gets the image's files instead:
//! an overlay whose lower layer is the image's unpacked root file system
//! and whose upper layer is the container's own (so what it writes is its
//! own, as in any container), with `/dev`, `/proc` and `/sys` of this
//! machine, the volumes and the pod's files bound in (see
//! [`MountPlan::in_image`]).
//!
//! The plan is computed before the fork (it reads this machine's
//! directories and allocates); [`MountPlan::apply`] runs between fork and
//! exec and makes system calls only.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::volumes::Mount;

enum Op {
    Tmpfs(CString),
    Dir(CString),
    File(CString),
    Symlink {
        target: CString,
        path: CString,
    },
    Bind {
        src: CString,
        dst: CString,
        read_only: bool,
    },
    /// A tmpfs made read-only once filled.
    ReadOnly(CString),
    /// A mount made read-only (its own flags; the file system's stay).
    ReadOnlyMount(CString),
}

/// What the view's root is.
enum Root {
    /// A fresh tmpfs (this machine's entries are bound into it).
    Tmpfs,
    /// An overlay of an image's files (`lowerdir=…,upperdir=…,workdir=…`).
    Overlay(CString),
}

/// The steps that build one container's view, in order.
pub struct MountPlan {
    root: CString,
    base: Root,
    ops: Vec<Op>,
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// Builds plans; paths are as the container sees them.
struct Builder {
    root: PathBuf,
    ops: Vec<Op>,
    /// Directories replaced by a tmpfs (new entries may be made there).
    exploded: Vec<PathBuf>,
    /// Targets something is bound at.
    mounted: Vec<PathBuf>,
    /// This machine's files are bound read-only (`readOnlyRootFilesystem`).
    read_only_root: bool,
}

impl Builder {
    fn at(&self, path: &Path) -> CString {
        cstr(&self.root.join(path.strip_prefix("/").unwrap_or(path)))
    }

    /// Binds this machine's `path` (a file, a directory or a symlink) at
    /// the same place in the view.
    fn entry(&mut self, path: &Path) {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.file_type().is_symlink() => {
                if let Ok(link) = std::fs::read_link(path) {
                    self.ops.push(Op::Symlink {
                        target: cstr(&link),
                        path: self.at(path),
                    });
                }
            }
            Ok(md) if md.is_dir() => {
                self.ops.push(Op::Dir(self.at(path)));
                // /dev and /proc stay writable, as in any container.
                let read_only =
                    self.read_only_root && path != Path::new("/dev") && path != Path::new("/proc");
                self.bind(path, path, read_only);
            }
            Ok(_) => {
                self.ops.push(Op::File(self.at(path)));
                self.bind(path, path, self.read_only_root);
            }
            Err(_) => {}
        }
    }

    fn bind(&mut self, src: &Path, dst: &Path, read_only: bool) {
        self.ops.push(Op::Bind {
            src: cstr(src),
            dst: self.at(dst),
            read_only,
        });
    }

    /// Replaces `dir` in the view by a tmpfs holding its entries (the root
    /// is a tmpfs already), so new entries can be made there.
    fn explode(&mut self, dir: &Path) {
        if dir != Path::new("/") {
            self.ops.push(Op::Tmpfs(self.at(dir)));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for name in names {
                self.entry(&dir.join(name));
            }
        }
        self.exploded.push(dir.to_path_buf());
    }

    /// Makes sure `target` exists in the view, as a directory or a file,
    /// without creating anything on this machine.
    fn ensure(&mut self, target: &Path, dir: bool) {
        // Inside a volume, what is missing is made in the volume's own
        // directory, as the kubelet does.
        let volume = self
            .mounted
            .iter()
            .filter(|m| target.starts_with(m))
            .max_by_key(|m| m.as_os_str().len())
            .cloned();
        let anc = match volume {
            Some(mounted) => mounted,
            None => {
                if std::fs::symlink_metadata(target).is_ok() {
                    return;
                }
                // The deepest ancestor that exists on this machine.
                let mut anc = target
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| "/".into());
                while anc.symlink_metadata().is_err() {
                    anc = anc
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| "/".into());
                }
                if !self.exploded.contains(&anc) && anc.is_dir() {
                    self.explode(&anc);
                }
                anc
            }
        };
        // The components below the ancestor (existing ones are kept).
        let rel = target.strip_prefix(&anc).unwrap_or(target);
        let parts: Vec<_> = rel.components().collect();
        let mut cur = anc.clone();
        for (i, part) in parts.iter().enumerate() {
            cur.push(part);
            let op = if i + 1 == parts.len() && !dir {
                Op::File(self.at(&cur))
            } else {
                Op::Dir(self.at(&cur))
            };
            self.ops.push(op);
        }
    }
}

impl MountPlan {
    /// The plan for a container with `mounts` (shallowest first, as
    /// [`super::volumes::mounts`] gives them), starting in `workdir`;
    /// `root` is an empty directory of the pod the view is built on, and
    /// `files` are single files bound over the view's (`/etc/hosts`…);
    /// with `read_only_root`, everything but the volumes, `/dev` and
    /// `/proc` is read-only.
    pub fn new(
        root: &Path,
        mounts: &[Mount],
        workdir: &Path,
        files: &[(PathBuf, &str)],
        read_only_root: bool,
    ) -> Self {
        let mut builder = Builder {
            root: root.to_path_buf(),
            ops: Vec::new(),
            exploded: Vec::new(),
            mounted: Vec::new(),
            read_only_root,
        };
        // This machine's /proc comes along, until the container's own is
        // mounted on top (where the kernel allows that).
        builder.explode(Path::new("/"));
        for mount in mounts {
            let target = PathBuf::from(mount.target.trim_end_matches('/'));
            if target.as_os_str().is_empty() || target == Path::new("/") {
                continue;
            }
            builder.ensure(&target, mount.host.is_dir());
            builder.bind(&mount.host, &target, mount.read_only);
            builder.mounted.push(target);
        }
        for (src, dst) in files {
            let dst = Path::new(dst);
            builder.ensure(dst, false);
            builder.bind(src, dst, true);
        }
        builder.ensure(workdir, true);
        if read_only_root {
            for dir in std::mem::take(&mut builder.exploded) {
                builder.ops.push(Op::ReadOnly(builder.at(&dir)));
            }
        }
        MountPlan {
            root: cstr(root),
            base: Root::Tmpfs,
            ops: builder.ops,
        }
    }

    /// The plan for a container that runs in an image: `rootfs` (the
    /// image's unpacked files) under an overlay whose upper layer and work
    /// directory are made in `layer` (empty, the container's own),
    /// mounted at `root`; then this machine's `/dev`, `/proc` (until the
    /// container's own is mounted on top) and `/sys` (read-only), the
    /// `mounts`, the `files` and `workdir`, each path resolved in the
    /// image as it would be inside it.
    pub fn in_image(
        root: &Path,
        rootfs: &Path,
        layer: &Path,
        mounts: &[Mount],
        workdir: &Path,
        files: &[(PathBuf, &str)],
        read_only_root: bool,
    ) -> io::Result<Self> {
        let upper = layer.join("upper");
        let work = layer.join("work");
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&work)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            rootfs.display(),
            upper.display(),
            work.display()
        );
        let options = CString::new(options)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        let mut ops = Vec::new();
        // Where `path` of the image is in the view, its missing parts made
        // (in the container's own layer).
        let ensure = |ops: &mut Vec<Op>, path: &Path, dir: bool| -> CString {
            let resolved = super::images::resolve_in(rootfs, path);
            let rel = resolved.strip_prefix(rootfs).unwrap_or(Path::new(""));
            let mut existing = rootfs.to_path_buf();
            let mut view = root.to_path_buf();
            let parts: Vec<_> = rel.components().collect();
            for (i, part) in parts.iter().enumerate() {
                existing.push(part);
                view.push(part);
                if existing.symlink_metadata().is_ok() {
                    continue;
                }
                ops.push(if i + 1 == parts.len() && !dir {
                    Op::File(cstr(&view))
                } else {
                    Op::Dir(cstr(&view))
                });
            }
            cstr(&view)
        };
        for (path, read_only) in [("/dev", false), ("/proc", false), ("/sys", true)] {
            let dst = ensure(&mut ops, Path::new(path), true);
            ops.push(Op::Bind {
                src: cstr(Path::new(path)),
                dst,
                read_only,
            });
        }
        for mount in mounts {
            let target = PathBuf::from(mount.target.trim_end_matches('/'));
            if target.as_os_str().is_empty() || target == Path::new("/") {
                continue;
            }
            let dst = ensure(&mut ops, &target, mount.host.is_dir());
            ops.push(Op::Bind {
                src: cstr(&mount.host),
                dst,
                read_only: mount.read_only,
            });
        }
        for (src, dst) in files {
            let dst = ensure(&mut ops, Path::new(dst), false);
            ops.push(Op::Bind {
                src: cstr(src),
                dst,
                read_only: true,
            });
        }
        ensure(&mut ops, workdir, true);
        if read_only_root {
            ops.push(Op::ReadOnlyMount(cstr(root)));
        }
        Ok(MountPlan {
            root: cstr(root),
            base: Root::Overlay(options),
            ops,
        })
    }

    /// Builds the view and makes it the root.
    ///
    /// # Safety
    /// Called between fork and exec, in a new mount namespace: system
    /// calls only.
    pub unsafe fn apply(&self) -> io::Result<()> {
        let fail = || Err(io::Error::last_os_error());
        unsafe {
            // Nothing done here may reach this machine's mounts.
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail();
            }
            let base = match &self.base {
                Root::Tmpfs => libc::mount(
                    c"tmpfs".as_ptr(),
                    self.root.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=0755".as_ptr().cast(),
                ),
                Root::Overlay(options) => libc::mount(
                    c"overlay".as_ptr(),
                    self.root.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    options.as_ptr().cast(),
                ),
            };
            if base != 0 {
                return fail();
            }
            for op in &self.ops {
                let result = match op {
                    Op::Tmpfs(path) => libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        c"mode=0755".as_ptr().cast(),
                    ),
                    Op::Dir(path) => {
                        if libc::mkdir(path.as_ptr(), 0o755) != 0
                            && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                        {
                            -1
                        } else {
                            0
                        }
                    }
                    Op::File(path) => {
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        if fd >= 0 {
                            libc::close(fd);
                            0
                        } else {
                            -1
                        }
                    }
                    Op::Symlink { target, path } => {
                        libc::symlink(target.as_ptr(), path.as_ptr());
                        0
                    }
                    Op::Bind {
                        src,
                        dst,
                        read_only,
                    } => bind(src, dst, *read_only),
                    Op::ReadOnly(path) => libc::mount(
                        std::ptr::null(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                        std::ptr::null(),
                    ),
                    Op::ReadOnlyMount(path) => libc::mount(
                        std::ptr::null(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ),
                };
                if result != 0 {
                    return fail();
                }
            }
            if libc::chdir(self.root.as_ptr()) != 0
                || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
                || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                return fail();
            }
        }
        Ok(())
    }

    /// Mounts a `/proc` of the caller's PID namespace over the view's;
    /// where the kernel refuses, this machine's stays.
    ///
    /// # Safety
    /// Called between fork and exec: system calls only.
    pub unsafe fn mount_proc(&self) {
        unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            );
        }
    }
}

/// A recursive bind; read-only binds keep the flags the kernel locked on
/// the source (nosuid, nodev, noexec), or the remount is refused.
///
/// # Safety
/// System calls only.
unsafe fn bind(src: &CString, dst: &CString, read_only: bool) -> libc::c_int {
    unsafe {
        if libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return -1;
        }
        if !read_only {
            return 0;
        }
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(dst.as_ptr(), &mut st) != 0 {
            return -1;
        }
        let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        for (st_flag, ms_flag) in [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if st.f_flag & st_flag != 0 {
                flags |= ms_flag;
            }
        }
        libc::mount(
            std::ptr::null(),
            dst.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    }
}
