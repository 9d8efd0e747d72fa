//! The store on disk, when the cluster has a state directory: every object
//! in one SQLite database (`STATE/store.db`, mode 0600), written before a
//! request is answered, with the last resourceVersion; and the cluster's
//! identity (CA, server certificate, token, port), so a kubeconfig stays
//! valid across restarts. One server at a time holds a state directory
//! (a lock on `STATE/lock`).
//!
//! Durability: the database is in WAL mode with `synchronous=NORMAL`. A
//! commit is written to the WAL file (the kernel holds it) before the
//! request is answered, so a killed server (`kill -9`, a crash) loses no
//! acknowledged write; the WAL is synced to the disk at checkpoints, so a
//! power cut may lose the last moments of writes but never leaves a
//! half-written store. A sync on every write (`synchronous=FULL`) costs
//! 4–6 ms on a cloud disk, more than a write may take.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use serde_json::Value;

use crate::resources::{self, ResourceType};

/// The database's file name in the state directory.
pub const FILE: &str = "store.db";

/// The lock file's name in the state directory.
const LOCK_FILE: &str = "lock";

/// What the `format` row of a store says.
const FORMAT: &str = "kubesh-local-cluster";

/// The layout of the tables this build reads and writes.
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE objects (
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;
";

/// Why a store cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "the state directory {dir} is in use by another local cluster{}; stop it, or start this one with another state directory",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    InUse { dir: PathBuf, holder: Option<i32> },
    #[error(
        "cannot take the lock of the state directory {dir} (a local cluster writes there: make it writable, or start with another state directory)"
    )]
    Lock {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot create the local cluster's store {path} (a local cluster writes there: make the state directory writable, or start with another one)"
    )]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a store of kubesh's local cluster ({what}); start with another state directory, or move this one away to start afresh"
    )]
    UnknownFormat { path: PathBuf, what: String },
    #[error(
        "{path} was written by a newer kubesh (store format {found}; this kubesh reads format {VERSION}); run the kubesh that wrote it, or start with another state directory"
    )]
    Newer { path: PathBuf, found: i64 },
    #[error(
        "{path} is a store of an older format ({found}) that this kubesh cannot upgrade (it reads format {VERSION}); move the state directory away to start afresh (its objects are lost)"
    )]
    Older { path: PathBuf, found: i64 },
    #[error(
        "{path} holds objects of a type this kubesh does not know ({resource}); run the kubesh that wrote it, or start with another state directory"
    )]
    UnknownResource { path: PathBuf, resource: String },
    #[error(
        "{path} holds an object that cannot be read ({resource} {namespace}/{name}); the store is damaged: move the state directory away to start afresh"
    )]
    Damaged {
        path: PathBuf,
        resource: String,
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read the local cluster's store {path}: {}", plain(.source))]
    Read {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "cannot write the local cluster's store {path}: {}; nothing was changed",
        plain(.source)
    )]
    Write {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// What a database failure means, in words a user acts on.
fn plain(error: &rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full; free some space and try again".into(),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => {
            "the state directory is read-only or not writable; make it writable".into()
        }
        Some(ErrorCode::SystemIoFailure) => {
            "the disk refused a read or write (input/output error)".into()
        }
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
            "the file is damaged or not a database".into()
        }
        Some(ErrorCode::CannotOpen) => "the file cannot be opened".into(),
        _ => error.to_string(),
    }
}

/// The cluster's identity: what its kubeconfig names.
#[derive(Clone)]
pub struct Identity {
    pub token: String,
    /// The CA certificate (PEM) clients trust.
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    /// The server's certificate (DER) and its key (PKCS #8 DER).
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// What a store held when it was opened.
pub struct Loaded {
    /// The last resourceVersion given out.
    pub rv: u64,
    /// Whether the store was made just now (nothing was in it).
    pub fresh: bool,
    pub objects: Vec<(&'static ResourceType, String, String, Value)>,
}

pub struct Database {
    conn: Connection,
    path: PathBuf,
    /// Held while the database is open: one server per state directory.
    _lock: File,
}

/// Takes the lock of a state directory: a POSIX record lock, which the
/// kernel drops when this process ends however it ends, and which pod
/// processes (forked from this one) do not inherit.
fn lock(dir: &Path) -> Result<File, DatabaseError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| DatabaseError::Lock {
            dir: dir.to_path_buf(),
            source,
        })?;
    // SAFETY: a zeroed flock is a valid value; every field used is set.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = libc::F_WRLCK as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: the descriptor is open and `request` lives through the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &request) } == 0 {
        return Ok(file);
    }
    let error = std::io::Error::last_os_error();
    if !matches!(
        error.raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::EACCES)
    ) {
        return Err(DatabaseError::Lock {
            dir: dir.to_path_buf(),
            source: error,
        });
    }
    // SAFETY: as above; F_GETLK fills `request` with the holder's lock.
    let holder = (unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut request) } == 0
        && request.l_type != libc::F_UNLCK as libc::c_short)
        .then_some(request.l_pid);
    Err(DatabaseError::InUse {
        dir: dir.to_path_buf(),
        holder,
    })
}

impl Database {
    /// Opens (or makes) the store in `dir` and reads every object.
    ///
    /// # Errors
    /// The directory is another server's, the file is not a store of this
    /// format, or it cannot be read.
    pub fn open(dir: &Path) -> Result<(Database, Loaded), DatabaseError> {
        let lock = lock(dir)?;
        let path = dir.join(FILE);
        let read = |source| DatabaseError::Read {
            path: path.clone(),
            source,
        };
        // Made with mode 0600 before SQLite opens it: SQLite gives its WAL
        // and shared-memory files the same mode.
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .and_then(|file| file.set_permissions(std::fs::Permissions::from_mode(0o600)))
                .map_err(|source| DatabaseError::Create {
                    path: path.clone(),
                    source,
                })?;
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(read)?;
        let unknown = |what: &str| DatabaseError::UnknownFormat {
            path: path.clone(),
            what: what.to_string(),
        };
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => unknown("it is not a database"),
                _ => read(e),
            })?;
        let fresh = tables == 0;
        if !fresh {
            let has_meta: bool = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(read)?
                > 0;
            if !has_meta {
                return Err(unknown("a database without the store's tables"));
            }
            let format: Option<String> = meta_text(&conn, "format").map_err(read)?;
            if format.as_deref() != Some(FORMAT) {
                return Err(unknown(&match format {
                    Some(other) => format!("its format is {other:?}"),
                    None => "it names no format".to_string(),
                }));
            }
            let version: i64 = conn
                .query_row("SELECT value FROM meta WHERE key = 'version'", [], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(read)?
                .unwrap_or(0);
            if version > VERSION {
                return Err(DatabaseError::Newer {
                    path,
                    found: version,
                });
            }
            if version < VERSION {
                return Err(DatabaseError::Older {
                    path,
                    found: version,
                });
            }
        }
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })
        .map_err(read)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(read)?;
        let mut db = Database {
            conn,
            path: path.clone(),
            _lock: lock,
        };
        if fresh {
            let init = |conn: &mut Connection| -> rusqlite::Result<()> {
                let tx = conn.transaction()?;
                tx.execute_batch(SCHEMA)?;
                for (key, value) in [
                    ("format", rusqlite::types::Value::from(FORMAT.to_string())),
                    ("version", VERSION.into()),
                    ("rv", 1i64.into()),
                ] {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        params![key, value],
                    )?;
                }
                tx.commit()
            };
            init(&mut db.conn).map_err(|e| db.write_error(e))?;
        }
        let loaded = db.load(fresh)?;
        Ok((db, loaded))
    }

    fn write_error(&self, source: rusqlite::Error) -> DatabaseError {
        DatabaseError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn read_error(&self, source: rusqlite::Error) -> DatabaseError {
        DatabaseError::Read {
            path: self.path.clone(),
            source,
        }
    }

    fn load(&self, fresh: bool) -> Result<Loaded, DatabaseError> {
        let rv: i64 = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'rv'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.read_error(e))?
            .unwrap_or(1);
        let mut statement = self
            .conn
            .prepare("SELECT resource, namespace, name, body FROM objects")
            .map_err(|e| self.read_error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.read_error(e))?;
        let mut objects = Vec::new();
        for row in rows {
            let (resource, namespace, name, body) = row.map_err(|e| self.read_error(e))?;
            let Some(rt) = resources::RESOURCES.iter().find(|r| r.key() == resource) else {
                return Err(DatabaseError::UnknownResource {
                    path: self.path.clone(),
                    resource,
                });
            };
            let object = serde_json::from_str(&body).map_err(|source| DatabaseError::Damaged {
                path: self.path.clone(),
                resource: resource.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
            objects.push((rt, namespace, name, object));
        }
        Ok(Loaded {
            rv: u64::try_from(rv).unwrap_or(1),
            fresh,
            objects,
        })
    }

    /// Writes the current version of an object (`Some`) or its removal
    /// (`None`), with the last resourceVersion, in one transaction.
    ///
    /// # Errors
    /// The write failed and nothing was changed.
    pub fn write(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        object: Option<&Value>,
        rv: u64,
    ) -> Result<(), DatabaseError> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            match object {
                Some(object) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO objects (resource, namespace, name, body) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![resource, namespace, name, object.to_string()])?;
                }
                None => {
                    tx.prepare_cached(
                        "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                    )?
                    .execute(params![resource, namespace, name])?;
                }
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'rv'")?
                .execute(params![i64::try_from(rv).unwrap_or(i64::MAX)])?;
            tx.commit()
        })();
        result.map_err(|e| self.write_error(e))
    }

    /// The identity kept in the store, if it has one.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn identity(&self) -> Result<Option<Identity>, DatabaseError> {
        let text = |key| meta_text(&self.conn, key).map_err(|e| self.read_error(e));
        let blob = |key| meta_blob(&self.conn, key).map_err(|e| self.read_error(e));
        let (Some(token), Some(ca_pem), Some(ca_der), Some(cert_der), Some(key_der)) = (
            text("token")?,
            text("ca_pem")?,
            blob("ca_der")?,
            blob("cert_der")?,
            blob("key_der")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Identity {
            token,
            ca_pem,
            ca_der,
            cert_der,
            key_der,
        }))
    }

    /// Keeps the identity, all of it or nothing.
    ///
    /// # Errors
    /// The write failed and nothing was changed.
    pub fn save_identity(&mut self, identity: &Identity) -> Result<(), DatabaseError> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            for (key, value) in [
                (
                    "token",
                    rusqlite::types::Value::from(identity.token.clone()),
                ),
                ("ca_pem", identity.ca_pem.clone().into()),
                ("ca_der", identity.ca_der.clone().into()),
                ("cert_der", identity.cert_der.clone().into()),
                ("key_der", identity.key_der.clone().into()),
            ] {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![key, value],
                )?;
            }
            tx.commit()
        })();
        result.map_err(|e| self.write_error(e))
    }

    /// The port the server listened on last time, if it was kept.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn port(&self) -> Result<Option<u16>, DatabaseError> {
        let port: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'port'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.read_error(e))?;
        Ok(port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0))
    }

    /// Keeps the port the server listens on.
    ///
    /// # Errors
    /// The write failed.
    pub fn save_port(&mut self, port: u16) -> Result<(), DatabaseError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('port', ?1)",
                params![i64::from(port)],
            )
            .map(|_| ())
            .map_err(|e| self.write_error(e))
    }
}

fn meta_text(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

fn meta_blob(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_and_the_version_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cms = resources::configmaps();
        {
            let (mut db, loaded) = Database::open(dir.path()).unwrap();
            assert!(loaded.fresh && loaded.objects.is_empty());
            let object = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
            db.write(cms.key(), "default", "a", Some(&object), 7)
                .unwrap();
            db.write(cms.key(), "default", "b", Some(&object), 8)
                .unwrap();
            db.write(cms.key(), "default", "b", None, 9).unwrap();
        }
        let (_db, loaded) = Database::open(dir.path()).unwrap();
        assert!(!loaded.fresh);
        assert_eq!(loaded.rv, 9);
        assert_eq!(loaded.objects.len(), 1);
        assert_eq!(loaded.objects[0].3["data"]["k"], "v");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn other_files_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "not a database at all, just text").unwrap();
        let error = Database::open(dir.path()).err().unwrap();
        assert!(matches!(error, DatabaseError::UnknownFormat { .. }));
        assert!(error.to_string().contains("store.db"), "{error}");

        let other = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(other.path().join(FILE)).unwrap();
            conn.execute_batch("CREATE TABLE t (x); CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('format', 'kubesh-local-cluster'), ('version', 99);")
                .unwrap();
        }
        let error = Database::open(other.path()).err().unwrap();
        assert!(matches!(error, DatabaseError::Newer { found: 99, .. }));
    }

    #[test]
    fn a_full_disk_is_said_and_the_store_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let cms = resources::configmaps();
        let small = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        {
            let (mut db, _) = Database::open(dir.path()).unwrap();
            db.write(cms.key(), "default", "a", Some(&small), 2)
                .unwrap();
            // Not one page more than the store has: as a disk with no room
            // left, SQLite answers SQLITE_FULL.
            let pages: i64 = db
                .conn
                .query_row("PRAGMA page_count", [], |row| row.get(0))
                .unwrap();
            db.conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap();
            let big = json!({"metadata": {"name": "b"}, "data": {"k": "x".repeat(1 << 20)}});
            let error = db
                .write(cms.key(), "default", "b", Some(&big), 3)
                .err()
                .unwrap();
            let message = error.to_string();
            assert!(
                message.contains("store.db")
                    && message.contains("the disk is full; free some space and try again")
                    && message.ends_with("nothing was changed"),
                "{message}"
            );
        }
        let (_db, loaded) = Database::open(dir.path()).unwrap();
        assert_eq!(loaded.rv, 2);
        assert_eq!(loaded.objects.len(), 1);
        assert_eq!(loaded.objects[0].3, small);
    }

    #[test]
    fn a_store_of_an_older_format_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('format', 'kubesh-local-cluster'), ('version', 0);")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Database::open(dir.path()).err().unwrap();
        assert!(matches!(error, DatabaseError::Older { found: 0, .. }));
        let message = error.to_string();
        assert!(
            message.contains("store.db") && message.contains("move the state directory away"),
            "{message}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
