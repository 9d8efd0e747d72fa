//! From the words of a command to a program kubesh can launch: which file
//! (if any), which runtime, which image and which command line.
//! `node service.js a b`, `./stock-gen`, `./tool.py` (by extension or `#!`
//! line), `python job.py`; after a runtime's command, the interpreter's own
//! options are passed on (`python -u -W ignore job.py`, `node -r x app.js`)
//! and the forms its runtime declares run with what they name: a program
//! typed on the line (`python -c CODE`, `node -e CODE`) and a module
//! (`python -m http.server`, `python -m mod` with a `mod.py` beside it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::executable::{self, FileKind, Linkage};
use crate::runtimes::{Runtime, Runtimes};
use crate::syntax::quote_all;

/// The longest `source` of a program typed on the command line, for `ps`.
const SHOWN_AT_MOST: usize = 60;

/// A program ready to be turned into cluster objects.
#[derive(Debug, Clone)]
pub struct Program {
    pub runtime: Runtime,
    /// The files shipped with it; none for a program typed on the command
    /// line (`python -c CODE`) or a module of the image (`python -m
    /// http.server`).
    pub files: Option<Files>,
    /// What its dproc is named after unless `SERVICE_NAME` says otherwise:
    /// the file's stem, the module, or the interpreter as typed.
    pub name: String,
    /// Where it comes from, as `ps` shows it: the file, absolute, or the
    /// command as typed (shortened).
    pub source: String,
    /// Arguments after the program (its file, text or module), exactly as
    /// typed.
    pub args: Vec<String>,
    pub image: String,
    /// The container's command: the runtime's interpreter, the options
    /// typed after its command, then the program: `run`'s `{file}` filled
    /// in, or the words giving its text or module, as typed.
    pub command: Vec<String>,
    /// The architecture a binary is built for (`amd64`, `arm64`).
    pub built_for: Option<String>,
    /// The architecture its pods must run on (`kubernetes.io/arch`): set by
    /// [`place`] when the cluster's nodes are known.
    pub node_arch: Option<String>,
}

/// A program's files: the directory shipped with it and the file it runs.
#[derive(Debug, Clone)]
pub struct Files {
    /// The program file, absolute (for a module, its file or package
    /// directory).
    pub file: PathBuf,
    /// The directory shipped (the file's directory; for a module, the
    /// current directory).
    pub root: PathBuf,
    /// The file's path inside `root`.
    pub relative: String,
}

impl Program {
    /// The program as messages name it: its file (`job.py`), else the
    /// command as typed.
    pub fn shown(&self) -> &str {
        self.files
            .as_ref()
            .map_or(self.source.as_str(), |files| files.relative.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    #[error("name the program file to run, e.g. `{command} {example}`")]
    NoFile { command: String, example: String },
    #[error(
        "`{command} {option}` needs the program's text after it: `{command} {option} CODE [ARG…]`"
    )]
    NoCode { command: String, option: String },
    #[error(
        "`{command} {option}` needs the module to run after it: `{command} {option} MODULE [ARG…]`"
    )]
    NoModule { command: String, option: String },
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: is a directory; name the program file in it")]
    Directory(String),
    #[error(
        "{file}: needs glibc {needs}, newer than any image kubesh runs binaries in ({newest}): \
         build it on an older distribution, or statically (Go: `CGO_ENABLED=0 go build`; \
         Rust: `--target x86_64-unknown-linux-musl`)"
    )]
    GlibcTooNew {
        file: String,
        needs: String,
        newest: String,
    },
    #[error(
        "{file}: needs {missing}, which the images kubesh runs binaries in lack ({images}): \
         link it statically (Go: `CGO_ENABLED=0 go build`; Rust: `--target \
         x86_64-unknown-linux-musl`), or run it in an image that has it: `BINARY_IMAGE=IMAGE \
         {file}`"
    )]
    MissingLibraries {
        file: String,
        /// The sonames, listed for the message.
        missing: String,
        /// The images that have the glibc it needs, listed.
        images: String,
    },
    #[error("{0}: is not a regular file (a device, a pipe or a socket); name a program file")]
    NotAFile(String),
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
        "{file}: is built for {built_for}, but the cluster's nodes are {nodes}; build it for \
         {target} (e.g. `GOOS=linux GOARCH={target} go build`, or `cargo build --target \
         {rust_target}`)"
    )]
    WrongArchitecture {
        file: String,
        built_for: String,
        /// The nodes' architectures, listed for the message.
        nodes: String,
        target: String,
        rust_target: String,
    },
    #[error(
        "{0}: is a command of this machine (in {1}), not a program of yours: kubesh runs a \
         program in the cluster with the directory it is in, and does not ship {1}; put your \
         program in a directory of its own"
    )]
    SystemCommand(String, String),
}

impl ProgramError {
    /// The exit status: 127 for a file that does not exist, as for an
    /// unknown command; 2 for a command line missing a word; 126 for a
    /// file that cannot run here.
    pub fn status(&self) -> i32 {
        match self {
            ProgramError::Missing(_) => crate::status::STATUS_NOT_FOUND,
            ProgramError::NoFile { .. }
            | ProgramError::NoCode { .. }
            | ProgramError::NoModule { .. } => crate::status::STATUS_USAGE,
            _ => 126,
        }
    }
}

/// Resolves a command's words into a program. `Ok(None)`: the command is
/// neither a runtime's command nor a file. `image_for` gives a session
/// override of a runtime's image (`NODE_IMAGE`). A binary is then
/// [`place`]d on the cluster's nodes.
pub fn resolve(
    args: &[String],
    runtimes: &Runtimes,
    image_for: &dyn Fn(&Runtime) -> Option<String>,
) -> Result<Option<Program>, ProgramError> {
    let Some(first) = args.first() else {
        return Ok(None);
    };
    if let Some(runtime) = runtimes.by_command(first) {
        return interpreted(first, &args[1..], runtime, image_for).map(Some);
    }
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
    shippable(first)?;
    let contents = readable(first)?;
    let (runtime, image, built_for) = select_runtime(first, &contents, runtimes, image_for)?;
    let image = image_for(&runtime).unwrap_or(image);
    let mut program = from_file(first, runtime, image, Vec::new(), &args[1..])?;
    program.built_for = built_for;
    Ok(Some(program))
}

/// Checks that a binary can run on the cluster's nodes, whose
/// architectures are `nodes`, and pins its pods to its architecture there.
/// `nodes` is `None` when they cannot be known (a user who may not list
/// nodes, no cluster for `--dry-run`): nothing is pinned, as a selector no
/// node may have would leave the pods Pending.
pub fn place(program: &mut Program, nodes: Option<&BTreeSet<String>>) -> Result<(), ProgramError> {
    let (Some(built_for), Some(nodes)) = (&program.built_for, nodes) else {
        return Ok(());
    };
    if !nodes.contains(built_for) {
        let target = nodes
            .first()
            .cloned()
            .unwrap_or_else(|| executable::host_arch().to_string());
        return Err(ProgramError::WrongArchitecture {
            file: program.shown().to_string(),
            built_for: built_for.clone(),
            nodes: nodes.iter().cloned().collect::<Vec<_>>().join(", "),
            rust_target: rust_target(&target),
            target,
        });
    }
    program.node_arch = Some(built_for.clone());
    Ok(())
}

/// A runtime's command and the words after it: the interpreter's options,
/// then a program file, a program's text or a module.
fn interpreted(
    command: &str,
    words: &[String],
    runtime: &Runtime,
    image_for: &dyn Fn(&Runtime) -> Option<String>,
) -> Result<Program, ProgramError> {
    let sorted = sort(command, words, runtime)?;
    // The user's options after the runtime's own (`python -u`), each once.
    let interpreter = runtime.interpreter();
    let runtime_s_own = |option: &[String]| match option {
        [single] => single.starts_with('-') && interpreter.contains(single),
        _ => false,
    };
    let options: Vec<String> = sorted
        .options
        .iter()
        .filter(|option| !runtime_s_own(option))
        .flat_map(|option| option.iter().cloned())
        .collect();
    let image = image_for(runtime).unwrap_or_else(|| runtime.image.clone());
    let (words, args, name, files) = match sorted.target {
        Target::File { file, args } => {
            shippable(file)?;
            readable(file)?;
            return from_file(file, runtime.clone(), image, options, args);
        }
        Target::Nothing => {
            let example = runtime
                .extensions
                .first()
                .map_or("program".to_string(), |e| format!("program.{e}"));
            return Err(ProgramError::NoFile {
                command: command.to_string(),
                example,
            });
        }
        Target::Inline { words, args } => (words, args, command, None),
        Target::Module {
            words,
            module,
            args,
        } => (words, args, module, local_module(module, runtime)?),
    };
    // The interpreter's words, or the command as typed for a runtime
    // whose `run` starts with the file.
    let mut line = if interpreter.is_empty() {
        vec![command.to_string()]
    } else {
        interpreter.to_vec()
    };
    line.extend(options);
    line.extend(words.iter().cloned());
    let typed: Vec<&String> = words.iter().chain(args).collect();
    Ok(Program {
        runtime: runtime.clone(),
        files,
        name: name.to_string(),
        source: shortened(&format!("{command} {}", quote_all(typed))),
        args: args.to_vec(),
        image,
        command: line,
        built_for: None,
        node_arch: None,
    })
}

/// A program file, with the interpreter's `options` before it.
fn from_file(
    file: &str,
    runtime: Runtime,
    image: String,
    options: Vec<String>,
    args: &[String],
) -> Result<Program, ProgramError> {
    let absolute = std::path::absolute(file)
        .map_err(|e| ProgramError::Unreadable(file.to_string(), e.to_string()))?;
    let root = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let relative = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = absolute
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A name starting with `-` would be read as options.
    let as_argument = if relative.starts_with('-') {
        format!("./{relative}")
    } else {
        relative.clone()
    };
    let interpreter = runtime.interpreter();
    let mut command = interpreter.to_vec();
    command.extend(options);
    command.extend(runtime.run[interpreter.len()..].iter().map(|word| {
        if word == "{file}" {
            as_argument.clone()
        } else {
            word.replace("{file}", &relative)
        }
    }));
    Ok(Program {
        source: absolute.display().to_string(),
        files: Some(Files {
            file: absolute,
            root,
            relative,
        }),
        name,
        args: args.to_vec(),
        image,
        command,
        runtime,
        built_for: None,
        node_arch: None,
    })
}

/// The files of `python -m MODULE` when the module is beside the user
/// (`./MODULE.py` or `./MODULE/`, for its first dotted part): the current
/// directory. `None`: a module of the image.
fn local_module(module: &str, runtime: &Runtime) -> Result<Option<Files>, ProgramError> {
    let top = module.split('.').next().unwrap_or_default();
    if top.is_empty() || top.contains('/') {
        return Ok(None);
    }
    let found = runtime
        .extensions
        .iter()
        .map(|extension| PathBuf::from(format!("{top}.{extension}")))
        .find(|file| file.is_file())
        .or_else(|| Some(PathBuf::from(top)).filter(|dir| dir.is_dir()));
    let Some(found) = found else {
        return Ok(None);
    };
    let relative = found.display().to_string();
    let file = std::path::absolute(&found)
        .map_err(|e| ProgramError::Unreadable(relative.clone(), e.to_string()))?;
    if let Some(dir) = system_directory(&file) {
        return Err(ProgramError::SystemCommand(relative, dir));
    }
    let root = file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Ok(Some(Files {
        file,
        root,
        relative,
    }))
}

/// The words after a runtime's command, sorted.
#[derive(Debug, PartialEq)]
struct Sorted<'a> {
    /// The interpreter's options, in order: each one word, or an option
    /// and its value.
    options: Vec<&'a [String]>,
    target: Target<'a>,
}

/// What the interpreter runs.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    /// A program file, then its arguments.
    File { file: &'a str, args: &'a [String] },
    /// The words giving the program's text (`-c CODE`, `-cCODE`,
    /// `--eval=CODE`), then its arguments.
    Inline {
        words: &'a [String],
        args: &'a [String],
    },
    /// The words naming a module (`-m MODULE`), the module, then its
    /// arguments.
    Module {
        words: &'a [String],
        module: &'a str,
        args: &'a [String],
    },
    /// Options only, or nothing.
    Nothing,
}

/// What a word starting with `-` is to the interpreter.
#[derive(Debug, PartialEq)]
enum Word<'a> {
    /// Options, with any value, in this one word.
    Whole,
    /// An option whose value is the next word.
    ValueNext,
    /// The program's text follows, in this word or (not `attached`) the next.
    Inline { attached: bool },
    /// A module to run, named in this word or the next.
    Module(Option<&'a str>),
}

/// Sorts the words after `command`, a runtime's command: options up to
/// the first word that is not one (the file), `--` (the file follows), or
/// the option of a form (`-c`, `-m`), which ends them as it does for the
/// interpreter.
fn sort<'a>(
    command: &str,
    words: &'a [String],
    runtime: &Runtime,
) -> Result<Sorted<'a>, ProgramError> {
    let mut options = Vec::new();
    let mut at = 0;
    while let Some(word) = words.get(at) {
        if word == "--" {
            at += 1;
            break;
        }
        if !word.starts_with('-') || word == "-" {
            break;
        }
        match classify(word, runtime) {
            Word::Whole => {
                options.push(&words[at..=at]);
                at += 1;
            }
            Word::ValueNext => {
                let end = (at + 2).min(words.len());
                options.push(&words[at..end]);
                at = end;
            }
            Word::Inline { attached } => {
                let end = if attached { at + 1 } else { at + 2 };
                if end > words.len() {
                    return Err(ProgramError::NoCode {
                        command: command.to_string(),
                        option: word.clone(),
                    });
                }
                let target = Target::Inline {
                    words: &words[at..end],
                    args: &words[end..],
                };
                return Ok(Sorted { options, target });
            }
            Word::Module(attached) => {
                let (module, end) = match attached {
                    Some(module) => (Some(module), at + 1),
                    None => (words.get(at + 1).map(String::as_str), at + 2),
                };
                let Some(module) = module.filter(|m| !m.is_empty()) else {
                    return Err(ProgramError::NoModule {
                        command: command.to_string(),
                        option: word.clone(),
                    });
                };
                let target = Target::Module {
                    words: &words[at..end],
                    module,
                    args: &words[end..],
                };
                return Ok(Sorted { options, target });
            }
        }
    }
    let target = match words.get(at) {
        Some(file) => Target::File {
            file,
            args: &words[at + 1..],
        },
        None => Target::Nothing,
    };
    Ok(Sorted { options, target })
}

/// What `word`, which starts with `-`, is to `runtime`'s interpreter.
fn classify<'a>(word: &'a str, runtime: &Runtime) -> Word<'a> {
    let listed = |list: &[String], option: &str| list.iter().any(|o| o == option);
    if word.starts_with("--")
        && let Some((option, value)) = word.split_once('=')
    {
        return if listed(&runtime.inline, option) {
            Word::Inline { attached: true }
        } else if listed(&runtime.module, option) {
            Word::Module(Some(value))
        } else {
            Word::Whole
        };
    }
    if listed(&runtime.inline, word) {
        return Word::Inline { attached: false };
    }
    if listed(&runtime.module, word) {
        return Word::Module(None);
    }
    if listed(&runtime.options_with_value, word) {
        return Word::ValueNext;
    }
    if runtime.flag_letters.is_empty() || word.starts_with("--") {
        return Word::Whole;
    }
    // Letters combined in one word, getopt-style: `-uc`, `-lne`, `-Wignore`.
    let letters = &word[1..];
    for (at, letter) in letters.char_indices() {
        let option = format!("-{letter}");
        let rest = &letters[at + letter.len_utf8()..];
        if listed(&runtime.inline, &option) {
            return Word::Inline {
                attached: !rest.is_empty(),
            };
        }
        if listed(&runtime.module, &option) {
            return Word::Module((!rest.is_empty()).then_some(rest));
        }
        if listed(&runtime.options_with_value, &option) {
            return if rest.is_empty() {
                Word::ValueNext
            } else {
                Word::Whole
            };
        }
        if !runtime.flag_letters.contains(letter) {
            return Word::Whole;
        }
    }
    Word::Whole
}

/// `text`, cut to [`SHOWN_AT_MOST`] characters.
fn shortened(text: &str) -> String {
    if text.chars().count() <= SHOWN_AT_MOST {
        return text.to_string();
    }
    let mut short: String = text.chars().take(SHOWN_AT_MOST - 1).collect();
    short.push('…');
    short
}

/// Whether `file` is a file whose directory may be shipped; checked
/// before anything is read.
fn shippable(file: &str) -> Result<(), ProgramError> {
    check_file(file)?;
    match system_directory(Path::new(file)) {
        Some(dir) => Err(ProgramError::SystemCommand(file.to_string(), dir)),
        None => Ok(()),
    }
}

fn readable(file: &str) -> Result<Vec<u8>, ProgramError> {
    std::fs::read(file).map_err(|e| ProgramError::Unreadable(file.to_string(), e.to_string()))
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
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(ProgramError::Directory(file.to_string())),
        // Reading a device (`/dev/zero`) or a pipe would never end.
        Ok(meta) if !meta.is_file() => Err(ProgramError::NotAFile(file.to_string())),
        Ok(_) => Ok(()),
        Err(_) => Err(ProgramError::Missing(file.to_string())),
    }
}

/// The image for a glibc binary: the first of the runtime's images by
/// glibc version that has the glibc it needs and every library it needs
/// but ships itself (`needed`).
fn glibc_image(
    file: &str,
    images: &crate::runtimes::ElfImages,
    needs: Option<(u32, u32)>,
    needed: &[String],
) -> Result<String, ProgramError> {
    if images.glibc_versions.is_empty() {
        return Ok(images.glibc.clone());
    }
    let fitting: Vec<_> = images
        .glibc_versions
        .iter()
        .filter(|image| needs.is_none_or(|needs| image.parsed().is_some_and(|has| has >= needs)))
        .collect();
    let Some(newest_fitting) = fitting.last() else {
        let newest = images
            .glibc_versions
            .iter()
            .max_by_key(|image| image.parsed())
            .map(|image| format!("{} has {}", image.image, image.version))
            .unwrap_or_default();
        let needs = needs.map_or_else(String::new, |(major, minor)| format!("{major}.{minor}"));
        return Err(ProgramError::GlibcTooNew {
            file: file.to_string(),
            needs,
            newest,
        });
    };
    if let Some(fits) = fitting.iter().find(|image| image.lacks(needed).is_empty()) {
        return Ok(fits.image.clone());
    }
    // What no image has; else what the newest lacks.
    let mut missing: Vec<&str> = newest_fitting.lacks(needed);
    let everywhere: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|name| {
            fitting
                .iter()
                .all(|image| image.lacks(needed).contains(name))
        })
        .collect();
    if !everywhere.is_empty() {
        missing = everywhere;
    }
    let images: Vec<&str> = fitting.iter().map(|image| image.image.as_str()).collect();
    Err(ProgramError::MissingLibraries {
        file: file.to_string(),
        missing: missing.join(", "),
        images: images.join(", "),
    })
}

/// The libraries a binary needs that it does not ship: those not found in
/// a directory of its run path relative to its own (`$ORIGIN/lib`),
/// which the bundle carries with it.
fn not_shipped(file: &str, elf: &executable::Elf) -> Vec<String> {
    let dir = std::path::absolute(file)
        .ok()
        .and_then(|path| path.parent().map(Path::to_path_buf));
    let shipped = |name: &str| {
        let Some(dir) = &dir else {
            return false;
        };
        elf.runpath.iter().any(|entry| {
            let rest = entry
                .strip_prefix("$ORIGIN")
                .or_else(|| entry.strip_prefix("${ORIGIN}"));
            rest.is_some_and(|rest| dir.join(rest.trim_start_matches('/')).join(name).is_file())
        })
    };
    elf.needed
        .iter()
        .filter(|name| !shipped(name))
        .cloned()
        .collect()
}

/// The runtime, its image and, for a binary, the architecture it is
/// built for, for a file named without a runtime command.
/// An image the session names for the runtime (`BINARY_IMAGE`) is taken
/// as it is: kubesh does not know what it holds.
fn select_runtime(
    file: &str,
    contents: &[u8],
    runtimes: &Runtimes,
    image_for: &dyn Fn(&Runtime) -> Option<String>,
) -> Result<(Runtime, String, Option<String>), ProgramError> {
    let by_extension = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| runtimes.by_extension(e));
    if let Some(runtime) = by_extension {
        return Ok((runtime.clone(), runtime.image.clone(), None));
    }
    // A build hint for a file that is no Linux executable.
    let node_arch = executable::host_arch();
    match executable::inspect(contents) {
        FileKind::Shebang(interpreter) => {
            let runtime = runtimes
                .by_command(&interpreter)
                .ok_or_else(|| ProgramError::UnknownInterpreter(file.to_string(), interpreter))?;
            Ok((runtime.clone(), runtime.image.clone(), None))
        }
        FileKind::Elf(elf) => {
            let runtime = runtimes
                .iter()
                .find(|r| r.elf_images.is_some())
                .ok_or_else(|| ProgramError::Unknown(file.to_string()))?;
            let image = match (image_for(runtime), &runtime.elf_images, &elf.linkage) {
                (Some(named), _, _) => named,
                (None, Some(images), Linkage::Static) => images.static_linked.clone(),
                (None, Some(images), Linkage::Musl) => images.musl.clone(),
                (None, Some(images), _) => {
                    glibc_image(file, images, elf.glibc, &not_shipped(file, &elf))?
                }
                (None, None, _) => runtime.image.clone(),
            };
            Ok((runtime.clone(), image, Some(elf.arch)))
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

    #[test]
    fn a_glibc_binary_gets_an_image_with_the_glibc_it_needs() {
        let runtimes = runtimes();
        let images = runtimes
            .iter()
            .find_map(|r| r.elf_images.clone())
            .expect("the binary runtime");
        let image = |needs| glibc_image("./tool", &images, needs, &[]);
        assert_eq!(image(None).as_deref(), Ok("buildpack-deps:bookworm-curl"));
        assert_eq!(
            image(Some((2, 34))).as_deref(),
            Ok("buildpack-deps:bookworm-curl")
        );
        assert_eq!(
            image(Some((2, 36))).as_deref(),
            Ok("buildpack-deps:bookworm-curl")
        );
        assert_eq!(
            image(Some((2, 39))).as_deref(),
            Ok("buildpack-deps:trixie-curl")
        );
        let refused = image(Some((2, 45))).unwrap_err().to_string();
        assert!(
            refused.starts_with(
                "./tool: needs glibc 2.45, newer than any image kubesh runs binaries in (buildpack-deps:trixie-curl has 2.41)"
            ),
            "{refused}"
        );
    }

    #[test]
    fn a_glibc_binary_gets_an_image_with_the_libraries_it_needs_or_is_refused_naming_them() {
        let runtimes = runtimes();
        let images = runtimes
            .iter()
            .find_map(|r| r.elf_images.clone())
            .expect("the binary runtime");
        let image = |needs, needed: &[&str]| {
            let needed: Vec<String> = needed.iter().map(|n| n.to_string()).collect();
            glibc_image("./tool", &images, needs, &needed)
        };
        let cpp = ["libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6"];
        assert_eq!(
            image(Some((2, 34)), &cpp).as_deref(),
            Ok("buildpack-deps:bookworm-curl")
        );
        // The loader is the glibc's, whatever the architecture names it.
        let loader = ["libc.so.6", "ld-linux-aarch64.so.1"];
        assert_eq!(
            image(Some((2, 17)), &loader).as_deref(),
            Ok("buildpack-deps:bookworm-curl")
        );
        // OpenSSL 3 is in both: the CA bundle's package needs it.
        let tls = ["libssl.so.3", "libcrypto.so.3", "libc.so.6"];
        assert_eq!(
            image(Some((2, 34)), &tls).as_deref(),
            Ok("buildpack-deps:bookworm-curl")
        );
        assert_eq!(
            image(Some((2, 39)), &tls).as_deref(),
            Ok("buildpack-deps:trixie-curl")
        );
        let refused = image(Some((2, 34)), &["libpq.so.5", "libc.so.6", "libssl.so.3"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            refused,
            "./tool: needs libpq.so.5, which the images kubesh runs binaries in lack \
             (buildpack-deps:bookworm-curl, buildpack-deps:trixie-curl): link it statically (Go: `CGO_ENABLED=0 go \
             build`; Rust: `--target x86_64-unknown-linux-musl`), or run it in an image that \
             has it: `BINARY_IMAGE=IMAGE ./tool`"
        );
        let refused = image(Some((2, 38)), &["libgnutls.so.30"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "./tool: needs libgnutls.so.30, which the images kubesh runs binaries in lack (buildpack-deps:trixie-curl)"
            ),
            "{refused}"
        );
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
        )
        .unwrap()
        .unwrap();
        assert_eq!(program.runtime.name, "node");
        assert_eq!(program.command, ["node", "service.js"]);
        assert_eq!(program.args, ["a b", "--x"]);
        assert_eq!(program.files.unwrap().root, dir.path());
        let image = |_: &Runtime| Some("node:23-alpine".to_string());
        let program = resolve(&words(&["node", &path]), &runtimes(), &image)
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
        let resolve_one = |p: &Path| resolve(&words(&[&p.display().to_string()]), &r, &no_override);
        assert_eq!(resolve_one(&py).unwrap().unwrap().runtime.name, "python");
        assert_eq!(resolve_one(&tool).unwrap().unwrap().runtime.name, "python");
        let binary = resolve_one(&me).unwrap().unwrap();
        assert_eq!(binary.runtime.name, "binary");
        assert_eq!(binary.image, "buildpack-deps:bookworm-curl");
        assert_eq!(
            binary.command[0],
            format!("./{}", binary.files.unwrap().relative)
        );
    }

    #[test]
    fn refusals_say_why_and_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool.exe");
        std::fs::write(&exe, b"MZ\x90\0").unwrap();
        let data = dir.path().join("notes");
        std::fs::write(&data, "just text").unwrap();
        let r = runtimes();
        let run = |w: &[&str]| resolve(&words(w), &r, &no_override);
        let exe = exe.display().to_string();
        assert!(matches!(run(&[&exe]), Err(ProgramError::NotLinux(..))));
        assert!(
            run(&[&exe])
                .unwrap_err()
                .to_string()
                .contains(&format!("GOOS=linux GOARCH={}", executable::host_arch()))
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
    }

    #[test]
    fn a_binary_is_placed_by_the_cluster_s_nodes_not_by_this_machine() {
        let me = std::env::current_exe().unwrap().display().to_string();
        let r = runtimes();
        let binary = || resolve(&words(&[&me]), &r, &no_override).unwrap().unwrap();
        let here = executable::host_arch().to_string();
        assert_eq!(binary().built_for.as_deref(), Some(here.as_str()));
        let nodes = |archs: &[&str]| archs.iter().map(|a| a.to_string()).collect::<BTreeSet<_>>();

        let mut program = binary();
        place(&mut program, Some(&nodes(&["s390x", &here]))).unwrap();
        assert_eq!(program.node_arch.as_deref(), Some(here.as_str()), "pinned");

        let mut program = binary();
        let error = place(&mut program, Some(&nodes(&["riscv64", "s390x"]))).unwrap_err();
        assert!(
            error.to_string().contains(&format!(
                ": is built for {here}, but the cluster's nodes are riscv64, s390x; build it for \
                 riscv64 (e.g. `GOOS=linux GOARCH=riscv64 go build`, or `cargo build --target \
                 riscv64gc-unknown-linux-musl`)"
            )),
            "{error}"
        );
        assert_eq!(error.status(), 126);

        // Nodes kubesh may not list: it runs, pinned to nothing.
        let mut program = binary();
        place(&mut program, None).unwrap();
        assert_eq!(program.node_arch, None);

        // Only a binary is pinned.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.py");
        std::fs::write(&script, "print(1)").unwrap();
        let mut program = resolve(&words(&[&script.display().to_string()]), &r, &no_override)
            .unwrap()
            .unwrap();
        place(&mut program, Some(&nodes(&["s390x"]))).unwrap();
        assert_eq!(program.node_arch, None);
    }

    /// `words` resolved in `dir`'s files: the first word is a runtime's
    /// command, and a word `@NAME` is the path of `dir/NAME`.
    fn in_dir(dir: &Path, line: &[&str]) -> Result<Program, ProgramError> {
        let words: Vec<String> = line
            .iter()
            .map(|w| match w.strip_prefix('@') {
                Some(name) => dir.join(name).display().to_string(),
                None => w.to_string(),
            })
            .collect();
        resolve(&words, &runtimes(), &no_override).map(|p| p.expect("a program"))
    }

    #[test]
    fn options_before_the_file_reach_the_interpreter_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["app.py", "app.js", "app.rb", "app.pl", "app.php", "job.sh"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            // The runtime's own `-u` once; values of options are not the file.
            (
                &[
                    "python", "-u", "-W", "ignore", "-X", "dev", "-O", "@app.py", "a", "-v",
                ],
                &["python", "-u", "-W", "ignore", "-X", "dev", "-O", "app.py"],
                &["a", "-v"],
            ),
            (
                &["python3", "-Wignore", "--", "@app.py"],
                &["python", "-u", "-Wignore", "app.py"],
                &[],
            ),
            (
                &[
                    "node",
                    "--inspect",
                    "-r",
                    "dotenv/config",
                    "--require=x",
                    "--title",
                    "t",
                    "@app.js",
                    "--port",
                    "1",
                ],
                &[
                    "node",
                    "--inspect",
                    "-r",
                    "dotenv/config",
                    "--require=x",
                    "--title",
                    "t",
                    "app.js",
                ],
                &["--port", "1"],
            ),
            (
                &["node", "--no-such-flag", "@app.js"],
                &["node", "--no-such-flag", "app.js"],
                &[],
            ),
            (
                &["ruby", "-w", "-I", "lib", "-rjson", "@app.rb"],
                &["ruby", "-w", "-I", "lib", "-rjson", "app.rb"],
                &[],
            ),
            (
                &["perl", "-I", "lib", "-Mstrict", "-w", "@app.pl"],
                &["perl", "-I", "lib", "-Mstrict", "-w", "app.pl"],
                &[],
            ),
            (
                &[
                    "php",
                    "-d",
                    "memory_limit=1G",
                    "-S",
                    "0.0.0.0:8080",
                    "@app.php",
                ],
                &[
                    "php",
                    "-d",
                    "memory_limit=1G",
                    "-S",
                    "0.0.0.0:8080",
                    "app.php",
                ],
                &[],
            ),
            (
                &["bash", "-o", "pipefail", "-x", "@job.sh"],
                &["bash", "-o", "pipefail", "-x", "job.sh"],
                &[],
            ),
        ];
        for (line, command, args) in cases {
            let program = in_dir(dir.path(), line).unwrap();
            assert_eq!(program.command, *command, "{line:?}");
            assert_eq!(program.args, *args, "{line:?}");
            let files = program.files.expect("a file is shipped");
            assert_eq!(files.root, dir.path(), "{line:?}");
        }
        assert_eq!(
            in_dir(dir.path(), &["python", "-u"]).unwrap_err(),
            ProgramError::NoFile {
                command: "python".into(),
                example: "program.py".into()
            }
        );
        assert_eq!(
            in_dir(dir.path(), &["python", "-W", "ignore"])
                .unwrap_err()
                .status(),
            crate::status::STATUS_USAGE,
            "an option's value is not the file"
        );
    }

    #[test]
    fn a_file_named_with_a_dash_is_given_as_a_path_and_typed_paths_keep_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("-dash.py"), "").unwrap();
        std::fs::write(dir.path().join("sub/app.py"), "").unwrap();
        let dashed = dir.path().join("-dash.py").display().to_string();
        for line in [
            vec!["python", dashed.as_str()],
            vec!["python", "--", dashed.as_str()],
            vec![dashed.as_str()],
        ] {
            let program = in_dir(dir.path(), &line).unwrap();
            assert_eq!(program.command, ["python", "-u", "./-dash.py"], "{line:?}");
            assert_eq!(program.files.unwrap().relative, "-dash.py");
        }
        let program = in_dir(dir.path(), &["python", "@sub/app.py"]).unwrap();
        assert_eq!(program.command, ["python", "-u", "app.py"]);
        assert_eq!(program.files.unwrap().root, dir.path().join("sub"));
        assert_eq!(program.name, "app");
    }

    #[test]
    fn a_program_typed_on_the_line_runs_with_its_words_as_typed_and_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &["python3", "-c", "print(6*7)", "a", "-v"],
                &["python", "-u", "-c", "print(6*7)"],
                &["a", "-v"],
            ),
            (
                &["python", "-W", "ignore", "-uc", "print(1)"],
                &["python", "-u", "-W", "ignore", "-uc", "print(1)"],
                &[],
            ),
            (
                &["python", "-cprint(1)"],
                &["python", "-u", "-cprint(1)"],
                &[],
            ),
            (
                &["node", "-e", "console.log(1+1)"],
                &["node", "-e", "console.log(1+1)"],
                &[],
            ),
            (&["node", "--eval=1", "x"], &["node", "--eval=1"], &["x"]),
            (&["node", "-pe", "1+1"], &["node", "-pe", "1+1"], &[]),
            (&["nodejs", "--print", "1"], &["node", "--print", "1"], &[]),
            (
                &["node", "-r", "-e", "-e", "1"],
                &["node", "-r", "-e", "-e", "1"],
                &[],
            ),
            (
                &["ruby", "-ne", "puts $_"],
                &["ruby", "-ne", "puts $_"],
                &[],
            ),
            (
                &["perl", "-lne", "print", "f"],
                &["perl", "-lne", "print"],
                &["f"],
            ),
            (&["perl", "-E", "say 1"], &["perl", "-E", "say 1"], &[]),
            (&["php", "-r", "echo 1;"], &["php", "-r", "echo 1;"], &[]),
            (
                &["sh", "-c", "echo $1", "sh", "x"],
                &["bash", "-c", "echo $1"],
                &["sh", "x"],
            ),
        ];
        for (line, command, args) in cases {
            let program = in_dir(dir.path(), line).unwrap();
            assert_eq!(program.command, *command, "{line:?}");
            assert_eq!(program.args, *args, "{line:?}");
            assert!(program.files.is_none(), "{line:?}: nothing shipped");
            assert_eq!(program.name, line[0], "named after the interpreter");
        }
        let program = in_dir(dir.path(), &["python3", "-c", "print(6*7)"]).unwrap();
        assert_eq!(program.source, "python3 -c 'print(6*7)'");
        assert_eq!(program.shown(), "python3 -c 'print(6*7)'");
        let long = "x".repeat(100);
        let program = in_dir(dir.path(), &["python3", "-c", &long]).unwrap();
        assert_eq!(program.source.chars().count(), SHOWN_AT_MOST);
        assert!(program.source.ends_with('…'));
        for (line, option) in [
            (&["python", "-c"][..], "-c"),
            (&["python", "-u", "-uc"][..], "-uc"),
            (&["node", "--eval"][..], "--eval"),
            (&["perl", "-lne"][..], "-lne"),
        ] {
            let error = in_dir(dir.path(), line).unwrap_err();
            assert_eq!(
                error,
                ProgramError::NoCode {
                    command: line[0].to_string(),
                    option: option.to_string()
                }
            );
            assert_eq!(error.status(), crate::status::STATUS_USAGE);
            assert!(
                error
                    .to_string()
                    .contains(&format!("`{} {option} CODE", line[0])),
                "{error}"
            );
        }
    }

    /// Runs `f` with `dir` as the process's current directory (where a
    /// module is looked for), and then the one before again, even when `f`
    /// panics. No other unit test depends on the current directory.
    fn in_current_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
        struct Back(PathBuf);
        impl Drop for Back {
            fn drop(&mut self) {
                let _ = std::env::set_current_dir(&self.0);
            }
        }
        let _back = Back(std::env::current_dir().unwrap());
        std::env::set_current_dir(dir).unwrap();
        f()
    }

    #[test]
    fn a_module_beside_the_user_ships_the_directory_and_another_is_the_image_s() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mod.py"), "print(1)").unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/__main__.py"), "").unwrap();
        in_current_dir(dir.path(), || {
            let program = in_dir(dir.path(), &["python3", "-m", "mod", "a"]).unwrap();
            assert_eq!(program.command, ["python", "-u", "-m", "mod"]);
            assert_eq!(program.args, ["a"]);
            assert_eq!(program.name, "mod");
            let files = program.files.expect("the directory is shipped");
            assert_eq!(files.root, std::path::absolute(dir.path()).unwrap());
            assert_eq!(files.relative, "mod.py");

            let program = in_dir(dir.path(), &["python", "-u", "-mpkg.sub"]).unwrap();
            assert_eq!(program.command, ["python", "-u", "-mpkg.sub"]);
            assert_eq!(program.name, "pkg.sub");
            assert_eq!(program.files.expect("a package").relative, "pkg");

            let program = in_dir(dir.path(), &["python", "-m", "http.server", "8080"]).unwrap();
            assert_eq!(program.command, ["python", "-u", "-m", "http.server"]);
            assert_eq!(program.args, ["8080"]);
            assert!(
                program.files.is_none(),
                "a module of the image ships nothing"
            );
            assert_eq!(program.source, "python -m http.server 8080");
        });
        assert!(matches!(
            in_dir(dir.path(), &["python", "-m"]),
            Err(ProgramError::NoModule { .. })
        ));
        assert!(
            matches!(
                in_dir(dir.path(), &["node", "-m", "x"]),
                Err(ProgramError::Missing(_))
            ),
            "`-m` is python's, not node's: for node it is an option, and `x` the file"
        );
    }
}
