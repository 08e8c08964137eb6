//! The embedded backend: the revision log in one SQLite file.
//!
//! - [`schema`]: the table layout, how connections open, the lock file.
//! - [`write`]: the one writer connection and the revision counter it owns.
//! - [`read`]: gets, list pages and catch-up reads, on a small pool of read connections.
//! - [`watch`]: watch streams, from the table and then from a broadcast of each commit.
//!
//! SQLite calls block, so every operation runs in `tokio::task::spawn_blocking`. Writes
//! take the writer behind a `std::sync::Mutex` (held only inside the blocking task, never
//! across an await); reads take a connection of their own, and in WAL mode they neither wait
//! for the writer nor make it wait.

mod read;
mod schema;
mod watch;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures_util::future::{self, BoxFuture};
use futures_util::stream::BoxStream;
use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::Backend;
use crate::error::{Result, StoreError};
use crate::keys::{KeyRange, check_key, check_revision};
use crate::types::{Event, KeyValue, ListPage};
use schema::FileLock;
use write::{Writer, Written};

/// Tunables of a [`SqliteBackend`]; the defaults suit the API server.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How many recent events the live broadcast keeps for watchers that are slow to read.
    /// A watcher that falls further behind reads the missed events from the table again, so
    /// this bounds memory, not correctness.
    pub watch_buffer: usize,
    /// How many events one catch-up read takes from the table.
    pub catch_up_batch: usize,
    /// How many idle read connections are kept open for the next read.
    pub idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            watch_buffer: 1024,
            catch_up_batch: 512,
            idle_readers: 4,
        }
    }
}

/// A store in one SQLite file. Cheap to clone; the file closes when the last clone (and the
/// last operation in flight) is gone, and open watch streams then end.
#[derive(Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

/// What the clones share. Fields drop in order: the connections close before the lock is
/// released.
struct Inner {
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    options: SqliteOptions,
    /// The revision of the last commit, for `current_revision` without a query.
    revision: AtomicI64,
    /// Every committed write, in revision order.
    events: broadcast::Sender<Arc<Event>>,
    _lock: FileLock,
}

impl SqliteBackend {
    /// Opens the store in `path` with the default options, creating the file if needed.
    /// Blocks briefly (the file is opened and its schema checked).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store in `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let lock = FileLock::acquire(&path)?;
        let writer = Writer::new(schema::open_writer(&path)?)?;
        let revision = AtomicI64::new(writer.revision());

        // broadcast::channel refuses a capacity of 0 or above usize::MAX / 2.
        let (events, _) = broadcast::channel(options.watch_buffer.clamp(1, 1 << 20));
        let options = SqliteOptions {
            catch_up_batch: options.catch_up_batch.max(1),
            ..options
        };
        let inner = Inner {
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            path,
            options,
            revision,
            events,
            _lock: lock,
        };
        Ok(SqliteBackend {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a blocking thread.
    fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { blocking(op, move || f(&inner)).await })
    }
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Runs `f` on tokio's blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) if e.is_cancelled() => Err(StoreError::Closed { op }),
        Err(e) => Err(StoreError::Backend {
            op: op.to_owned(),
            backend: "sqlite",
            source: e.into(),
        }),
    }
}

impl Inner {
    /// The writer. A panic while it was held cannot have left the counter behind the file
    /// (a failed transaction rolls back, and the counter moves right after a commit), so a
    /// poisoned lock is taken as it is.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one write and publishes its event.
    fn write(&self, f: impl FnOnce(&mut Writer) -> Result<Written>) -> Result<KeyValue> {
        let mut writer = self.writer();
        let written = f(&mut writer)?;

        // Published after the commit and before the writer is released, so that watchers
        // receive events in revision order and never one the table does not hold yet.
        self.revision.store(writer.revision(), Ordering::Release);
        // An error only means that nobody watches.
        let _ = self.events.send(Arc::new(written.event));
        Ok(written.result)
    }

    /// Runs `f` on an idle read connection, opening one if none is idle.
    fn read<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let out = f(&mut conn);

        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.options.idle_readers {
            idle.push(conn);
        }
        out
    }
}

/// Maps a rusqlite error into [`StoreError::Backend`] for the step `op`.
fn sqlite_error(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        op: op.into(),
        backend: "sqlite",
        source: e.into(),
    }
}

fn check_expected(op: &'static str, expected: Option<i64>) -> Result<()> {
    expected.map_or(Ok(()), |revision| {
        check_revision(op, "expected revision", revision)
    })
}

impl Backend for SqliteBackend {
    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<KeyValue>> {
        let key = key.to_owned();
        self.run("creating", move |inner| {
            check_key("creating", &key)?;
            inner.write(|writer| writer.create(&key, value))
        })
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>>> {
        let key = key.to_owned();
        self.run("getting", move |inner| {
            check_key("getting", &key)?;
            inner.read(|conn| read::get(conn, &key))
        })
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        at_revision: Option<i64>,
    ) -> BoxFuture<'_, Result<ListPage>> {
        let range = KeyRange::prefix_after(prefix, start_after);
        self.run("listing", move |inner| {
            if let Some(revision) = at_revision {
                check_revision("listing", "at_revision", revision)?;
            }
            inner.read(|conn| read::list(conn, &range, limit, at_revision))
        })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<i64>,
    ) -> BoxFuture<'_, Result<KeyValue>> {
        let key = key.to_owned();
        self.run("updating", move |inner| {
            check_key("updating", &key)?;
            check_expected("updating", expected)?;
            inner.write(|writer| writer.update(&key, value, expected))
        })
    }

    fn delete(&self, key: &str, expected: Option<i64>) -> BoxFuture<'_, Result<KeyValue>> {
        let key = key.to_owned();
        self.run("deleting", move |inner| {
            check_key("deleting", &key)?;
            check_expected("deleting", expected)?;
            inner.write(|writer| writer.delete(&key, expected))
        })
    }

    fn watch(
        &self,
        prefix: &str,
        after: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<Event>>>> {
        Box::pin(watch::watch(
            Arc::clone(&self.inner),
            prefix.to_owned(),
            after,
        ))
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(future::ready(Ok(self
            .inner
            .revision
            .load(Ordering::Acquire))))
    }

    fn compact(&self, revision: i64) -> BoxFuture<'_, Result<()>> {
        self.run("compacting", move |inner| {
            check_revision("compacting", "revision", revision)?;
            inner.writer().compact(revision).map(drop)
        })
    }
}
