//! Reading a script file (`kubesh FILE`, `source FILE`) with messages that
//! say what is wrong with the path.

use std::io::ErrorKind;
use std::path::Path;

/// Why a file cannot be read as a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFileError {
    #[error("{0}: is a directory, not a script")]
    Directory(String),
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: permission denied")]
    Denied(String),
    #[error("{name}: cannot be read: {source}")]
    Unreadable {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// The file's bytes, or why it cannot be read as a script.
pub fn read(name: &str) -> Result<Vec<u8>, ScriptFileError> {
    let path = Path::new(name);
    if path.is_dir() {
        return Err(ScriptFileError::Directory(name.to_string()));
    }
    std::fs::read(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => ScriptFileError::Missing(name.to_string()),
        ErrorKind::PermissionDenied => ScriptFileError::Denied(name.to_string()),
        _ => ScriptFileError::Unreadable {
            name: name.to_string(),
            source: error,
        },
    })
}
