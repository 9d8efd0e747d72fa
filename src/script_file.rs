//! Reading a script file (`kubesh FILE`, `source FILE`) with messages that
//! say what is wrong with the path.

use std::io::ErrorKind;
use std::path::Path;

/// The file's bytes, or why it cannot be read as a script.
pub fn read(name: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(name);
    if path.is_dir() {
        return Err(format!("{name}: is a directory, not a script"));
    }
    std::fs::read(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => format!("{name}: no such file"),
        ErrorKind::PermissionDenied => format!("{name}: permission denied"),
        _ => format!("{name}: cannot be read: {error}"),
    })
}
