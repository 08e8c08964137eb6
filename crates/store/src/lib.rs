//! The object store under the API server: a revisioned log of key-value writes, with watches
//! that resume from any revision still in the log.
//!
//! - [`Backend`]: what every store offers. The API server holds one as `Arc<dyn Backend>`.
//! - [`SqliteBackend`]: the embedded default, one SQLite file in the data directory.
//! - [`types`]: the values that cross the trait ([`KeyValue`], [`ListPage`], [`Event`]).
//! - [`error`]: [`StoreError`], one enum for every backend.
//! - [`keys`]: how a prefix becomes a key range, shared by the backends.
//! - `conformance` (cargo feature `conformance`): the checks every backend must pass. The
//!   crate's own tests turn the feature on through a dev-dependency on the crate itself, so
//!   it never reaches a release build.
//!
//! # Revisions
//!
//! Every successful write (create, update, delete) advances one store-wide counter by exactly
//! one and is stored under that revision; a write that fails (`AlreadyExists`, `Conflict`,
//! `NotFound`) advances nothing. The current revision is that of the latest write, so an
//! object's `mod_revision` is always at or below it. A Kubernetes `resourceVersion` is the
//! revision as a decimal string.
//!
//! A new SQLite store is at revision 0 and its first write is revision 1. Other backends may
//! start higher (a fresh etcd cluster is at revision 1, its first write at 2), so nothing
//! outside a backend may assume that the first write is revision 1; the conformance checks
//! only ever compare revisions with the one a check started at. Compaction does not change
//! the current revision.
//!
//! # Keys and prefixes
//!
//! Keys are non-empty UTF-8 strings, ordered byte by byte. A prefix matches every key that
//! starts with it, nothing more: `/pods/default` would match `/pods/default-x/web` too, so
//! callers end a prefix that names a directory with `/` (`/pods/default/`).

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod keys;
pub mod sqlite;
pub mod types;

pub use error::{BoxError, Result, StoreError};
pub use sqlite::{SqliteBackend, SqliteOptions};
pub use types::{Event, EventKind, KeyValue, ListPage};

/// A revisioned key-value store with watches: what the API server needs of a datastore.
///
/// Object-safe; the API server holds one as `Arc<dyn Backend>`. Every method checks its
/// arguments and answers [`StoreError::Invalid`] for an empty key or a negative revision.
pub trait Backend: Send + Sync + 'static {
    /// Creates `key`; AlreadyExists if live. Returns the new KeyValue (mod_revision = new
    /// revision).
    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<KeyValue>>;

    /// The live value of `key`, or None.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>>>;

    /// Live keys starting with `prefix` in key order, after `start_after` (exclusive), at
    /// most `limit` items (0 = no limit), read at `at_revision` (None = current; Compacted if
    /// below the compact revision, FutureRevision if above current).
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        at_revision: Option<i64>,
    ) -> BoxFuture<'_, Result<ListPage>>;

    /// Replaces the live `key`; if `expected` is Some(rev), Conflict unless mod_revision ==
    /// rev. NotFound if not live.
    fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<i64>,
    ) -> BoxFuture<'_, Result<KeyValue>>;

    /// Deletes the live `key` (same `expected` rule); returns the deleted KeyValue (as it
    /// was).
    fn delete(&self, key: &str, expected: Option<i64>) -> BoxFuture<'_, Result<KeyValue>>;

    /// Every event on keys under `prefix` with revision > `after`, in revision order, then
    /// live events as they happen. Compacted if `after` < compact revision (history gone).
    /// The stream ends (None) only when the backend closes; a watcher that falls too far
    /// behind gets an Err(Compacted) item and the stream ends.
    ///
    /// `after` may lie beyond the current revision; the stream then starts with the first
    /// write past it.
    fn watch(
        &self,
        prefix: &str,
        after: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<Event>>>>;

    /// The current (latest) revision.
    fn current_revision(&self) -> BoxFuture<'_, Result<i64>>;

    /// Drops history at and below `revision` (keeps each key's latest version). Watches from
    /// below it then get Compacted.
    ///
    /// Reads at `revision` itself still work. Compacting at or below the compact revision
    /// already reached does nothing; above the current revision is FutureRevision.
    fn compact(&self, revision: i64) -> BoxFuture<'_, Result<()>>;
}
