//! The SQLite backend against the conformance suite, twice: with the default options, and
//! with buffers so small that every watch goes through many catch-up batches and falls
//! behind the live broadcast. Then what only SQLite has: the lock file, the schema version
//! and what compaction leaves in the file.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use hoist_store::conformance::Harness;
use hoist_store::{Backend, Result, SqliteBackend, SqliteOptions, StoreError};
use tempfile::TempDir;

/// A store file in a fresh temporary directory.
struct Sqlite {
    dir: TempDir,
    options: SqliteOptions,
}

impl Sqlite {
    fn new(options: SqliteOptions) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        Sqlite { dir, options }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }
}

impl Harness for Sqlite {
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Backend>>> {
        let (path, options) = (self.path(), self.options.clone());
        Box::pin(async move {
            let store: Arc<dyn Backend> = Arc::new(SqliteBackend::open_with(path, options)?);
            Ok(store)
        })
    }
}

mod defaults {
    use super::*;

    hoist_store::conformance_tests!(Sqlite::new(SqliteOptions::default()));
}

mod small_buffers {
    use super::*;

    hoist_store::conformance_tests!(Sqlite::new(SqliteOptions {
        watch_buffer: 4,
        catch_up_batch: 3,
        idle_readers: 1,
    }));
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_until_the_first_closes() {
    let harness = Sqlite::new(SqliteOptions::default());
    let first = SqliteBackend::open(harness.path()).expect("first open");

    let second = SqliteBackend::open(harness.path());
    match second {
        Err(StoreError::Backend { op, source, .. }) => {
            assert!(op.starts_with("locking "), "{op}");
            assert!(source.to_string().contains("has the file open"), "{source}");
        }
        other => panic!("a second open gave {other:?}"),
    }

    drop(first);
    SqliteBackend::open(harness.path()).expect("open after the first closed");
}

#[tokio::test]
async fn a_file_of_a_newer_schema_is_refused() {
    let harness = Sqlite::new(SqliteOptions::default());
    drop(SqliteBackend::open(harness.path()).expect("creating the store"));
    let conn = rusqlite::Connection::open(harness.path()).expect("opening the file");
    conn.pragma_update(None, "user_version", 99)
        .expect("setting the schema version");
    drop(conn);

    match SqliteBackend::open(harness.path()) {
        Err(e @ StoreError::Backend { .. }) => {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            assert!(
                source.is_some_and(|s| s.contains("schema version 99")),
                "{e:?}"
            );
        }
        other => panic!("opening a newer file gave {other:?}"),
    }
}

#[tokio::test]
async fn compaction_removes_superseded_rows_and_tombstones_from_the_file() {
    let harness = Sqlite::new(SqliteOptions::default());
    let store = SqliteBackend::open(harness.path()).expect("open");
    let value = || Bytes::from_static(b"x");
    store.create("/a", value()).await.expect("create a");
    for _ in 0..10 {
        store.update("/a", value(), None).await.expect("update a");
    }
    store.create("/b", value()).await.expect("create b");
    store.delete("/b", None).await.expect("delete b");
    let rows = || -> i64 {
        let conn = rusqlite::Connection::open(harness.path()).expect("opening the file");
        conn.query_row("SELECT COUNT(*) FROM kv", [], |row| row.get(0))
            .expect("counting")
    };
    assert_eq!(rows(), 13);

    let current = store.current_revision().await.expect("current revision");
    store.compact(current).await.expect("compact");
    assert_eq!(rows(), 1, "only the latest version of /a is left");
}
