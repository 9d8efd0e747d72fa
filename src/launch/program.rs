//! From the words of a command to a program kubesh can launch: which file,
//! which runtime, which image and which command line. `node service.js a b`,
//! `./stock-gen`, `./tool.py` (by extension or `#!` line), `python job.py`.

use std::path::{Path, PathBuf};

use super::executable::{self, FileKind, Linkage};
use crate::runtimes::{Runtime, Runtimes};

/// A program ready to be turned into cluster objects.
#[derive(Debug, Clone)]
pub struct Program {
    pub runtime: Runtime,
    /// The program file, absolute.
    pub file: PathBuf,
    /// The directory shipped with it (the file's directory).
    pub root: PathBuf,
    /// The file's path inside `root`.
    pub relative: String,
    /// Arguments after the file, exactly as typed.
    pub args: Vec<String>,
    pub image: String,
    /// The container's command: the runtime's `run` with `{file}` filled in.
    pub command: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    #[error("name the program file to run, e.g. `{command} {example}`")]
    NoFile { command: String, example: String },
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: is a directory; name the program file in it")]
    Directory(String),
    #[error("{0}: cannot be read: {1}")]
    Unreadable(String, String),
    #[error(
        "{0}: kubesh does not know how to run this file: no known extension (`runtimes` lists \
         them), no `#!` line, and not a Linux executable"
    )]
    Unknown(String),
    #[error("{0}: its `#!` line names `{1}`, which is not a known runtime (`runtimes` lists them)")]
    UnknownInterpreter(String, String),
    #[error(
        "{0}: is a {1} executable, but the cluster's nodes run Linux; build it for Linux \
         (e.g. `GOOS=linux GOARCH={2} go build`, or `cargo build --target {3}`)"
    )]
    NotLinux(String, &'static str, String, String),
    #[error(
        "{0}: is built for {1}, but the cluster's nodes are {2}; build it for {2} \
         (e.g. `GOOS=linux GOARCH={2} go build`, or `cargo build --target {3}`)"
    )]
    WrongArchitecture(String, String, String, String),
    #[error(
        "{0}: is a command of this machine (in {1}), not a program of yours: kubesh runs a \
         program in the cluster with the directory it is in, and does not ship {1}; put your \
         program in a directory of its own"
    )]
    SystemCommand(String, String),
}

impl ProgramError {
    /// The exit status: 127 for a file that does not exist, as for an
    /// unknown command; 126 for one that cannot run here.
    pub fn status(&self) -> i32 {
        match self {
            ProgramError::Missing(_) => crate::status::STATUS_NOT_FOUND,
            ProgramError::NoFile { .. } => crate::status::STATUS_USAGE,
            _ => 126,
        }
    }
}

/// Resolves a command's words into a program. `Ok(None)`: the command is
/// neither a runtime's command nor a file. `image_for` gives a session
/// override of a runtime's image (`NODE_IMAGE`); `node_arch` is the
/// architecture of the cluster's nodes.
pub fn resolve(
    args: &[String],
    runtimes: &Runtimes,
    image_for: &dyn Fn(&Runtime) -> Option<String>,
    node_arch: &str,
) -> Result<Option<Program>, ProgramError> {
    let Some(first) = args.first() else {
        return Ok(None);
    };
    let (runtime, file, rest) = if let Some(runtime) = runtimes.by_command(first) {
        let Some(file) = args.get(1) else {
            let example = runtime
                .extensions
                .first()
                .map_or("program".to_string(), |e| format!("program.{e}"));
            return Err(ProgramError::NoFile {
                command: first.clone(),
                example,
            });
        };
        check_file(file)?;
        (Some(runtime.clone()), file, &args[2..])
    } else {
        let path = Path::new(first);
        if !path.exists() {
            let looks_like_a_file = first.contains('/')
                || path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| runtimes.by_extension(e).is_some());
            return if looks_like_a_file {
                Err(ProgramError::Missing(first.clone()))
            } else {
                Ok(None)
            };
        }
        check_file(first)?;
        (None, first, &args[1..])
    };
    // Before anything is read: the directory is what would be shipped.
    if let Some(dir) = system_directory(Path::new(file)) {
        return Err(ProgramError::SystemCommand(file.clone(), dir));
    }
    let contents =
        std::fs::read(file).map_err(|e| ProgramError::Unreadable(file.clone(), e.to_string()))?;
    let (runtime, image) = match runtime {
        Some(runtime) => {
            let image = runtime.image.clone();
            (runtime, image)
        }
        None => select_runtime(file, &contents, runtimes, node_arch)?,
    };
    let image = image_for(&runtime).unwrap_or(image);
    let absolute = std::path::absolute(file)
        .map_err(|e| ProgramError::Unreadable(file.clone(), e.to_string()))?;
    let root = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let relative = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let command = runtime
        .run
        .iter()
        .map(|word| word.replace("{file}", &relative))
        .collect();
    Ok(Some(Program {
        runtime,
        file: absolute,
        root,
        relative,
        args: rest.to_vec(),
        image,
        command,
    }))
}

/// Directories of this machine's own commands and files, which are never
/// a program's directory to ship.
const SYSTEM_DIRECTORIES: &[&str] = &[
    "/",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/etc",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/libexec",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/games",
];

/// The system directory `file` is in (as typed, or once links are
/// followed), if it is in one.
fn system_directory(file: &Path) -> Option<String> {
    let absolute = std::path::absolute(file).ok()?;
    let parents = [
        absolute.parent().map(Path::to_path_buf),
        absolute
            .canonicalize()
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf)),
    ];
    parents
        .into_iter()
        .flatten()
        .find(|dir| {
            SYSTEM_DIRECTORIES
                .iter()
                .any(|system| dir == Path::new(system))
        })
        .map(|dir| dir.display().to_string())
}

fn check_file(file: &str) -> Result<(), ProgramError> {
    let path = Path::new(file);
    if path.is_dir() {
        Err(ProgramError::Directory(file.to_string()))
    } else if !path.exists() {
        Err(ProgramError::Missing(file.to_string()))
    } else {
        Ok(())
    }
}

/// The runtime (and its image) for a file named without a runtime command.
fn select_runtime(
    file: &str,
    contents: &[u8],
    runtimes: &Runtimes,
    node_arch: &str,
) -> Result<(Runtime, String), ProgramError> {
    let by_extension = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| runtimes.by_extension(e));
    if let Some(runtime) = by_extension {
        return Ok((runtime.clone(), runtime.image.clone()));
    }
    match executable::inspect(contents) {
        FileKind::Shebang(interpreter) => {
            let runtime = runtimes
                .by_command(&interpreter)
                .ok_or_else(|| ProgramError::UnknownInterpreter(file.to_string(), interpreter))?;
            Ok((runtime.clone(), runtime.image.clone()))
        }
        FileKind::Elf(elf) => {
            if elf.arch != node_arch {
                return Err(ProgramError::WrongArchitecture(
                    file.to_string(),
                    elf.arch,
                    node_arch.to_string(),
                    rust_target(node_arch),
                ));
            }
            let runtime = runtimes
                .iter()
                .find(|r| r.elf_images.is_some())
                .ok_or_else(|| ProgramError::Unknown(file.to_string()))?;
            let image = match (&runtime.elf_images, &elf.linkage) {
                (Some(images), Linkage::Static) => images.static_linked.clone(),
                (Some(images), Linkage::Musl) => images.musl.clone(),
                (Some(images), _) => images.glibc.clone(),
                (None, _) => runtime.image.clone(),
            };
            Ok((runtime.clone(), image))
        }
        FileKind::MachO => Err(ProgramError::NotLinux(
            file.to_string(),
            "macOS",
            node_arch.to_string(),
            rust_target(node_arch),
        )),
        FileKind::Windows => Err(ProgramError::NotLinux(
            file.to_string(),
            "Windows",
            node_arch.to_string(),
            rust_target(node_arch),
        )),
        FileKind::Other => Err(ProgramError::Unknown(file.to_string())),
    }
}

/// A Rust target that builds a static Linux binary for `arch`.
fn rust_target(arch: &str) -> String {
    let cpu = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "riscv64" => "riscv64gc",
        other => other,
    };
    format!("{cpu}-unknown-linux-musl")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtimes() -> Runtimes {
        Runtimes::load(None).0
    }

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    fn no_override(_: &Runtime) -> Option<String> {
        None
    }

    #[test]
    fn runtime_command_and_file_with_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("service.js");
        std::fs::write(&file, "").unwrap();
        let path = file.display().to_string();
        let program = resolve(
            &words(&["node", &path, "a b", "--x"]),
            &runtimes(),
            &no_override,
            "amd64",
        )
        .unwrap()
        .unwrap();
        assert_eq!(program.runtime.name, "node");
        assert_eq!(program.command, ["node", "service.js"]);
        assert_eq!(program.args, ["a b", "--x"]);
        assert_eq!(program.root, dir.path());
        let image = |_: &Runtime| Some("node:23-alpine".to_string());
        let program = resolve(&words(&["node", &path]), &runtimes(), &image, "amd64")
            .unwrap()
            .unwrap();
        assert_eq!(program.image, "node:23-alpine");
    }

    #[test]
    fn file_by_extension_shebang_and_elf() {
        let dir = tempfile::tempdir().unwrap();
        let py = dir.path().join("job.py");
        std::fs::write(&py, "print(1)").unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/usr/bin/env python3\n").unwrap();
        let me = std::env::current_exe().unwrap();
        let r = runtimes();
        let resolve_one = |p: &Path| {
            resolve(
                &words(&[&p.display().to_string()]),
                &r,
                &no_override,
                executable::host_arch(),
            )
        };
        assert_eq!(resolve_one(&py).unwrap().unwrap().runtime.name, "python");
        assert_eq!(resolve_one(&tool).unwrap().unwrap().runtime.name, "python");
        let binary = resolve_one(&me).unwrap().unwrap();
        assert_eq!(binary.runtime.name, "binary");
        assert_eq!(binary.image, "debian:12-slim");
        assert_eq!(binary.command[0], format!("./{}", binary.relative));
    }

    #[test]
    fn refusals_say_why_and_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool.exe");
        std::fs::write(&exe, b"MZ\x90\0").unwrap();
        let data = dir.path().join("notes");
        std::fs::write(&data, "just text").unwrap();
        let r = runtimes();
        let run = |w: &[&str]| resolve(&words(w), &r, &no_override, "amd64");
        let exe = exe.display().to_string();
        assert!(matches!(run(&[&exe]), Err(ProgramError::NotLinux(..))));
        assert!(
            run(&[&exe])
                .unwrap_err()
                .to_string()
                .contains("GOOS=linux GOARCH=amd64")
        );
        assert!(matches!(
            run(&[&data.display().to_string()]),
            Err(ProgramError::Unknown(_))
        ));
        assert!(matches!(run(&["node"]), Err(ProgramError::NoFile { .. })));
        assert!(matches!(run(&["./missing"]), Err(ProgramError::Missing(_))));
        assert!(matches!(
            run(&["missing.py"]),
            Err(ProgramError::Missing(_))
        ));
        assert!(matches!(
            run(&["python", &dir.path().display().to_string()]),
            Err(ProgramError::Directory(_))
        ));
        assert!(matches!(run(&["not-a-command"]), Ok(None)));
        let me = std::env::current_exe().unwrap().display().to_string();
        let other_arch = if executable::host_arch() == "arm64" {
            "amd64"
        } else {
            "arm64"
        };
        let error = resolve(&words(&[&me]), &r, &no_override, other_arch).unwrap_err();
        assert!(
            matches!(error, ProgramError::WrongArchitecture(..)),
            "{error}"
        );
    }
}
