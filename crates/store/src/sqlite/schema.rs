//! The layout of the SQLite file and how connections to it are opened.
//!
//! One table, `kv`, is the log: one row per revision, never updated, deleted only by
//! compaction. A row is a version of a key (`deleted = 0`) or the tombstone of a delete
//! (`deleted = 1`, empty value, the deleted incarnation's `create_revision`).
//! `prev_revision` points at the version the write replaced, so a watch can carry the old
//! object without a second lookup by key. The index on `(key, revision)` answers "the latest
//! version of a key at or below a revision" for gets, lists and writes. Keys are BLOBs so
//! that comparisons are plain byte order, the same as etcd's.
//!
//! `meta` holds the compact revision, which must survive a restart: without it a reopened
//! store would serve reads below the compaction from a log with holes.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tracing::debug;

use super::sqlite_error;
use crate::error::{Result, StoreError};

/// The layout this code reads and writes, kept in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE kv (
    revision        INTEGER PRIMARY KEY,
    key             BLOB    NOT NULL,
    value           BLOB    NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER,
    deleted         INTEGER NOT NULL
);
CREATE INDEX kv_key_revision ON kv (key, revision);
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('compact_revision', 0);
";

/// How long a connection waits for a lock SQLite holds briefly (a checkpoint, WAL recovery)
/// before it reports SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the one connection that writes, creating the file and its schema if needed.
pub(super) fn open_writer(path: &Path) -> Result<Connection> {
    let op = || format!("opening {}", path.display());
    let conn = Connection::open(path).map_err(sqlite_error(op()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite_error(op()))?;

    // WAL: readers work on a snapshot and never block the writer, and a commit appends to
    // the log instead of rewriting pages in place.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sqlite_error(op()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend {
            op: op(),
            backend: "sqlite",
            source: format!("the file stays in journal mode {mode:?} instead of wal").into(),
        });
    }

    // synchronous=NORMAL: in WAL mode a commit is then written to the WAL but not fsynced;
    // the WAL is synced at each checkpoint. A crash of hoist loses nothing and the file
    // never corrupts, but a power loss or kernel crash can undo the last commits before the
    // checkpoint. FULL would add an fsync to every write, which costs milliseconds on these
    // disks and would hold creates far below the 1,000 a second the API server must reach.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite_error(op()))?;

    migrate(&conn).map_err(|source| match source {
        MigrateError::Sqlite(e) => sqlite_error(op())(e),
        MigrateError::Newer(found) => StoreError::Backend {
            op: op(),
            backend: "sqlite",
            source: format!(
                "the file has schema version {found}; this hoist reads only up to \
                 {SCHEMA_VERSION}"
            )
            .into(),
        },
    })?;
    Ok(conn)
}

enum MigrateError {
    Sqlite(rusqlite::Error),
    Newer(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// Creates the schema in a new file and refuses a file written by a newer layout.
fn migrate(conn: &Connection) -> std::result::Result<(), MigrateError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    match version {
        0 => {
            debug!("creating the store schema");
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        newer => Err(MigrateError::Newer(newer)),
    }
}

/// Opens a connection that only reads. The file must exist (the writer opens first).
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let op = || format!("opening {} for reading", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite_error(op()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite_error(op()))?;
    Ok(conn)
}

/// The revision of the latest write and the compact revision. The latest write's row can be
/// a tombstone that compaction removed, and then the compact revision stands in for it.
pub(super) fn revisions(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let compact: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'compact_revision'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let latest: Option<i64> =
        conn.query_row("SELECT MAX(revision) FROM kv", [], |row| row.get(0))?;
    Ok((latest.unwrap_or(0).max(compact), compact))
}

/// An exclusive lock on `<file>.lock`, held while the store is open, so that a second hoist
/// on the same data directory fails at start instead of numbering revisions twice. A
/// separate file because closing any descriptor of the database file would drop SQLite's
/// own POSIX locks on it.
pub(super) struct FileLock {
    _file: File,
}

impl FileLock {
    pub(super) fn acquire(db: &Path) -> Result<Self> {
        let path = lock_path(db);
        let op = || format!("locking {}", path.display());
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Backend {
                op: op(),
                backend: "sqlite",
                source: e.into(),
            })?;
        match file.try_lock() {
            Ok(()) => Ok(FileLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Backend {
                op: op(),
                backend: "sqlite",
                source: "another store (in this process or another) has the file open".into(),
            }),
            Err(TryLockError::Error(e)) => Err(StoreError::Backend {
                op: op(),
                backend: "sqlite",
                source: e.into(),
            }),
        }
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
