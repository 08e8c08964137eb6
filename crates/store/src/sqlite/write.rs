//! The writer: the one connection that appends to the log, and the revision counter it owns.
//!
//! Each write is one IMMEDIATE transaction that reads the key's latest row, checks it (live
//! or not, the expected revision) and inserts the next revision. Nothing else writes to the
//! file (the [`FileLock`](super::schema::FileLock) sees to that), so the counter in memory
//! is the log's last revision and needs no read per write. It moves only after a commit.

use bytes::Bytes;
use rusqlite::{Connection, TransactionBehavior, params};
use tracing::debug;

use super::read::latest_live;
use super::sqlite_error;
use crate::error::{Result, StoreError};
use crate::types::{Event, EventKind, KeyValue};

const INSERT: &str = "INSERT INTO kv (revision, key, value, create_revision, prev_revision, \
                      deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Deletes every row at or below the compact revision that a later row at or below it
/// replaced, and every tombstone at or below it: a read at the compact revision or later,
/// and the `prev` of every later event, need none of them.
const COMPACT: &str = "DELETE FROM kv WHERE revision <= ?1 AND (deleted = 1 OR EXISTS (\
                       SELECT 1 FROM kv AS newer WHERE newer.key = kv.key \
                       AND newer.revision > kv.revision AND newer.revision <= ?1))";

/// The writer connection and the revision of its last commit.
pub(super) struct Writer {
    conn: Connection,
    revision: i64,
    compact_revision: i64,
}

/// What a committed write returns to its caller and sends to watchers.
pub(super) struct Written {
    pub(super) result: KeyValue,
    pub(super) event: Event,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Result<Self> {
        let (revision, compact_revision) =
            super::schema::revisions(&conn).map_err(sqlite_error("reading the revisions"))?;
        debug!(revision, compact_revision, "opened the store");
        Ok(Writer {
            conn,
            revision,
            compact_revision,
        })
    }

    pub(super) fn revision(&self) -> i64 {
        self.revision
    }

    pub(super) fn create(&mut self, key: &str, value: Bytes) -> Result<Written> {
        let op = || format!("creating {key}");
        let next = self.revision + 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error(op()))?;

        if latest_live(&tx, key).map_err(sqlite_error(op()))?.is_some() {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        tx.prepare_cached(INSERT)
            .and_then(|mut insert| {
                insert.execute(params![
                    next,
                    key.as_bytes(),
                    &value[..],
                    next,
                    None::<i64>,
                    0
                ])
            })
            .map_err(sqlite_error(op()))?;
        tx.commit().map_err(sqlite_error(op()))?;
        self.revision = next;

        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: next,
            mod_revision: next,
        };
        let event = Event {
            kind: EventKind::Added,
            kv: kv.clone(),
            prev: None,
        };
        Ok(Written { result: kv, event })
    }

    pub(super) fn update(
        &mut self,
        key: &str,
        value: Bytes,
        expected: Option<i64>,
    ) -> Result<Written> {
        let op = || format!("updating {key}");
        let next = self.revision + 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error(op()))?;

        let prev = live(&tx, "updating", key, expected)?;
        tx.prepare_cached(INSERT)
            .and_then(|mut insert| {
                insert.execute(params![
                    next,
                    key.as_bytes(),
                    &value[..],
                    prev.create_revision,
                    prev.mod_revision,
                    0
                ])
            })
            .map_err(sqlite_error(op()))?;
        tx.commit().map_err(sqlite_error(op()))?;
        self.revision = next;

        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.create_revision,
            mod_revision: next,
        };
        let event = Event {
            kind: EventKind::Modified,
            kv: kv.clone(),
            prev: Some(prev),
        };
        Ok(Written { result: kv, event })
    }

    pub(super) fn delete(&mut self, key: &str, expected: Option<i64>) -> Result<Written> {
        let op = || format!("deleting {key}");
        let next = self.revision + 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error(op()))?;

        let prev = live(&tx, "deleting", key, expected)?;
        tx.prepare_cached(INSERT)
            .and_then(|mut insert| {
                let empty: &[u8] = &[];
                insert.execute(params![
                    next,
                    key.as_bytes(),
                    empty,
                    prev.create_revision,
                    prev.mod_revision,
                    1
                ])
            })
            .map_err(sqlite_error(op()))?;
        tx.commit().map_err(sqlite_error(op()))?;
        self.revision = next;

        let tombstone = KeyValue {
            key: key.to_owned(),
            value: Bytes::new(),
            create_revision: prev.create_revision,
            mod_revision: next,
        };
        let event = Event {
            kind: EventKind::Deleted,
            kv: tombstone,
            prev: Some(prev.clone()),
        };
        Ok(Written {
            result: prev,
            event,
        })
    }

    /// Drops the history at and below `revision` and records it as the compact revision,
    /// in one transaction. Returns the number of rows removed.
    pub(super) fn compact(&mut self, revision: i64) -> Result<usize> {
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision <= self.compact_revision {
            debug!(
                revision,
                compact_revision = self.compact_revision,
                "already compacted"
            );
            return Ok(0);
        }

        let op = || format!("compacting at revision {revision}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error(op()))?;
        let removed = tx
            .execute(COMPACT, [revision])
            .map_err(sqlite_error(op()))?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'compact_revision'",
            [revision],
        )
        .map_err(sqlite_error(op()))?;
        tx.commit().map_err(sqlite_error(op()))?;
        self.compact_revision = revision;
        debug!(revision, removed, "compacted");
        Ok(removed)
    }
}

/// The live version of `key`, checked against the revision the caller expects it at.
fn live(conn: &Connection, op: &'static str, key: &str, expected: Option<i64>) -> Result<KeyValue> {
    let latest = latest_live(conn, key).map_err(sqlite_error(format!("{op} {key}")))?;
    let Some(kv) = latest else {
        return Err(StoreError::NotFound {
            op,
            key: key.to_owned(),
        });
    };
    if let Some(expected) = expected
        && expected != kv.mod_revision
    {
        debug!(
            key,
            expected,
            actual = kv.mod_revision,
            "compare-and-swap failed"
        );
        return Err(StoreError::Conflict {
            op,
            key: key.to_owned(),
            expected,
            actual: kv.mod_revision,
        });
    }
    Ok(kv)
}
