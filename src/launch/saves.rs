//! Saves to a program's files, as both kinds of hot reload see them: file
//! events (reads excluded) gathered until the files have been quiet for a
//! moment, so that a burst of writes — an editor's rename dance, a linker
//! writing a binary — is one save, and a binary still being written is
//! not reported until it is whole.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::bundle::{own_data_dir, own_output_files};
use super::executable::{FileKind, inspect};

/// How long the files must be quiet before a save is reported. Editors
/// write a file in one burst of a few milliseconds (a rename dance, or a
/// truncation and a write); a write later than this is a second save, and
/// its reload follows the first.
const QUIET: Duration = Duration::from_millis(10);
/// The longest a save waits for quiet: files written without pause (a
/// long build) are reported at this pace rather than never.
const GATHER_AT_MOST: Duration = Duration::from_secs(1);

/// Why a program's files cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the files cannot be watched: {0}")]
    Watcher(#[source] notify::Error),
    #[error("{} cannot be watched: {source}", root.display())]
    Root {
        root: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("the watcher cannot start: {0}")]
    Thread(#[source] std::io::Error),
    /// A program typed on the command line, or a module of the image.
    #[error(
        "it ships no files (its program is on its command line, or in its image): nothing to watch"
    )]
    NoFiles,
}

/// A watch on the directory a program was launched from.
pub struct Saves {
    events: mpsc::Receiver<Change>,
    program: PathBuf,
    _watcher: notify::RecommendedWatcher,
}

impl Saves {
    /// Watches everything under `root`; `program` is the file launched,
    /// which must be whole before a save counts.
    pub fn watch(root: &Path, program: &Path) -> Result<Saves, WatchError> {
        let (sender, events) = mpsc::channel();
        let mut own_data = own_data_under(root);
        own_data.extend(own_output_files_under(root));
        let mut watcher = notify::recommended_watcher(move |event| {
            if changes_files(&event, &own_data) {
                let paths = event.map(|event| event.paths).unwrap_or_default();
                let _ = sender.send(Change {
                    at: Instant::now(),
                    paths,
                });
            }
        })
        .map_err(WatchError::Watcher)?;
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|source| WatchError::Root {
                root: root.to_path_buf(),
                source,
            })?;
        Ok(Saves {
            events,
            program: program.to_path_buf(),
            _watcher: watcher,
        })
    }

    /// Waits up to `wait` for a change, then until the files are quiet;
    /// `true` when there was one and the program file is whole. A binary
    /// still being linked gives `false`: the linker's last write is
    /// another change, and that one is reported.
    pub fn saved_within(&self, wait: Duration) -> bool {
        self.changed_within(wait).is_some() && self.settled(|_| {})
    }

    /// Waits up to `wait` for the first change of a save.
    /// [`Saves::settled`] then waits for the rest of it.
    pub fn changed_within(&self, wait: Duration) -> Option<Change> {
        match self.events.recv_timeout(wait) {
            Ok(change) => Some(change),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The watcher has stopped; nothing more will come.
                std::thread::sleep(wait);
                None
            }
        }
    }

    /// Waits until the files have been quiet for a moment (a save is one
    /// burst of writes), showing `each` further change as it comes; `true`
    /// when the program file is whole then.
    pub fn settled(&self, mut each: impl FnMut(&Change)) -> bool {
        let deadline = Instant::now() + GATHER_AT_MOST;
        while Instant::now() < deadline {
            match self.events.recv_timeout(QUIET) {
                Ok(change) => each(&change),
                Err(_) => break,
            }
        }
        !being_written(&self.program)
    }
}

/// A file event that may change what is shipped.
pub struct Change {
    /// When it came.
    pub at: Instant,
    /// The paths it names (none when the watcher reported an error).
    pub paths: Vec<PathBuf>,
}

/// kubesh's own data directory as file events under `root` name it: as
/// configured, resolved, and as reached through `root` when that is a
/// link to a directory above it.
fn own_data_under(root: &Path) -> Vec<PathBuf> {
    let Some(data) = own_data_dir() else {
        return Vec::new();
    };
    let mut paths = vec![data.clone()];
    if let Ok(resolved) = data.canonicalize() {
        if let Ok(root_resolved) = root.canonicalize()
            && let Ok(inside) = resolved.strip_prefix(&root_resolved)
        {
            paths.push(root.join(inside));
        }
        paths.push(resolved);
    }
    paths
}

/// The files kubesh's standard output and error go to, when they are
/// files (`kubesh app.kubesh > app.log` in the program's directory):
/// writing a reload line there is not a save, or each reload would cause
/// the next. Named as resolved, and as reached through `root`.
fn own_output_files_under(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for target in own_output_files() {
        if let Ok(root_resolved) = root.canonicalize()
            && let Ok(inside) = target.strip_prefix(&root_resolved)
        {
            paths.push(root.join(inside));
        }
        paths.push(target);
    }
    paths
}

/// Whether a file event may change what is shipped: opening or reading a
/// file (as packing the bundle does) must not count as a save, nor a write
/// to kubesh's own data (`never`), which is never shipped. Closing a file
/// written to counts: a linker writing through a memory map says nothing
/// else when it is done.
fn changes_files(event: &notify::Result<notify::Event>, never: &[PathBuf]) -> bool {
    use notify::event::{AccessKind, AccessMode};
    let Ok(event) = event else {
        return true;
    };
    let outside = |path: &PathBuf| !never.iter().any(|dir| path.starts_with(dir));
    let only_access = match event.kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        notify::EventKind::Access(_) => true,
        _ => false,
    };
    !only_access && (event.paths.is_empty() || event.paths.iter().any(outside))
}

/// Whether the program is a binary still being written: its headers point
/// past the end of the file, or are not all there yet.
pub fn being_written(program: &Path) -> bool {
    std::fs::read(program).is_ok_and(|bytes| {
        bytes.starts_with(b"\x7fELF")
            && !matches!(inspect(&bytes), FileKind::Elf(elf) if elf.complete)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kubesh-saves-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits for a save for up to `limit`, as the reloaders do.
    fn saved(saves: &Saves, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if saves.saved_within(Duration::from_millis(100)) {
                return true;
            }
        }
        false
    }

    #[test]
    fn a_burst_of_writes_is_one_save_and_reads_are_none() {
        let dir = scratch("burst");
        let program = dir.join("app.py");
        std::fs::write(&program, "print(1)\n").unwrap();
        let saves = Saves::watch(&dir, &program).unwrap();
        for n in 0..5 {
            std::fs::write(&program, format!("print({n})\n")).unwrap();
        }
        assert!(
            saved(&saves, Duration::from_secs(10)),
            "the burst is a save"
        );
        // Once, or twice if this thread stalled longer than the quiet time
        // between two writes on a loaded machine; never once per write.
        let mut more = 0;
        while saves.saved_within(Duration::from_millis(300)) {
            more += 1;
        }
        assert!(more <= 1, "five writes in a burst made {} saves", more + 1);
        std::fs::read(&program).unwrap();
        assert!(
            !saves.saved_within(Duration::from_millis(300)),
            "reading a file is not a save"
        );
        std::fs::write(dir.join("new.txt"), "data").unwrap();
        assert!(saved(&saves, Duration::from_secs(10)), "a new file counts");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_and_kubesh_s_own_data_are_not_changes() {
        use notify::event::{AccessKind, ModifyKind};
        use notify::{Event, EventKind};
        let data = PathBuf::from("/home/ada/.local/share/kubesh");
        let never = [data.clone()];
        let modify =
            |path: &str| Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(path.into()));
        assert!(changes_files(&modify("/home/ada/web.py"), &never));
        assert!(!changes_files(
            &modify("/home/ada/.local/share/kubesh/local-cluster/state/web.log"),
            &never
        ));
        let read =
            Ok(Event::new(EventKind::Access(AccessKind::Any)).add_path("/home/ada/web.py".into()));
        assert!(!changes_files(&read, &never));
        let rename = Event::new(EventKind::Modify(ModifyKind::Any))
            .add_path(data.join("history"))
            .add_path("/home/ada/web.py".into());
        assert!(
            changes_files(&Ok(rename), &never),
            "one path outside is enough"
        );
    }

    #[test]
    fn a_binary_counts_once_it_is_whole() {
        let dir = scratch("binary");
        let program = dir.join("server");
        // This test binary, cut short as while a linker writes it.
        let whole = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let half = &whole[..whole.len() / 2];
        std::fs::write(&program, half).unwrap();
        assert!(
            being_written(&program),
            "a binary cut short is being written"
        );
        let saves = Saves::watch(&dir, &program).unwrap();
        std::fs::write(&program, &whole[..whole.len() * 3 / 4]).unwrap();
        assert!(
            !saved(&saves, Duration::from_secs(1)),
            "a half-written binary is not a save"
        );
        std::fs::write(&program, &whole).unwrap();
        assert!(!being_written(&program));
        assert!(
            saved(&saves, Duration::from_secs(10)),
            "the whole binary is a save"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
