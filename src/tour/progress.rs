//! How far the tour got, kept in kubesh's data directory
//! (`$XDG_DATA_HOME/kubesh/tour.json`) so that `kubesh tour` goes on
//! where it stopped, in another session.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// How many steps are done.
    pub done: usize,
    /// Where the tour's files are.
    pub directory: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("the tour's progress in {path} cannot be read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the tour's progress in {path} is not what kubesh wrote: {source}")]
    Garbled {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the tour's progress cannot be saved to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file the progress is kept in, when there is a data directory.
pub fn file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "kubesh").map(|dirs| dirs.data_dir().join("tour.json"))
}

/// The progress saved in `path`; `None` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Progress>, ProgressError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ProgressError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| ProgressError::Garbled {
            path: path.to_path_buf(),
            source,
        })
}

/// Saves `progress` to `path` whole: written beside it, then renamed.
pub fn save(path: &Path, progress: &Progress) -> Result<(), ProgressError> {
    let failed = |source| ProgressError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_vec_pretty(progress)
        .map_err(|error| failed(std::io::Error::other(error)))?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_saved_and_read_back_and_none_before_the_first_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubesh/tour.json");
        assert_eq!(load(&path).unwrap(), None);
        let progress = Progress {
            done: 3,
            directory: PathBuf::from("/home/ada/kubesh-tour"),
        };
        save(&path, &progress).unwrap();
        assert_eq!(load(&path).unwrap(), Some(progress));
        std::fs::write(&path, "{ not json").unwrap();
        let garbled = load(&path).unwrap_err().to_string();
        assert!(garbled.contains("is not what kubesh wrote"), "{garbled}");
    }
}
