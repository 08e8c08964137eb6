//! Reads of the log: a key's latest version, a page of a list at a revision, and the events
//! after a revision that a watch catches up on. Each function that reads more than one
//! statement does so in one read transaction, which in WAL mode is one snapshot: the
//! revisions it checks against are those of the rows it returns.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};

use super::schema::revisions;
use super::sqlite_error;
use crate::error::{Result, StoreError};
use crate::keys::KeyRange;
use crate::types::{Event, EventKind, KeyValue, ListPage};

const LATEST: &str = "SELECT revision, value, create_revision, deleted FROM kv WHERE key = ?1 \
                      ORDER BY revision DESC LIMIT 1";

/// A key's row is in the list when it is the key's latest at or below the read revision and
/// not a tombstone. The correlated form walks the `(key, revision)` index in key order, so a
/// page stops after `limit` keys instead of grouping the whole range first.
const LIST: &str = "SELECT k.key, k.value, k.create_revision, k.revision FROM kv AS k \
                    WHERE k.key >= ?1 AND k.key < ?2 AND k.deleted = 0 \
                    AND k.revision = (SELECT MAX(n.revision) FROM kv AS n \
                                      WHERE n.key = k.key AND n.revision <= ?3) \
                    ORDER BY k.key LIMIT ?4";

const EVENTS: &str = "SELECT k.revision, k.key, k.value, k.create_revision, k.deleted, \
                      k.prev_revision, p.value, p.create_revision \
                      FROM kv AS k LEFT JOIN kv AS p ON p.revision = k.prev_revision \
                      WHERE k.revision > ?1 AND k.key >= ?2 AND k.key < ?3 \
                      ORDER BY k.revision LIMIT ?4";

/// Keys are UTF-8, whose bytes never reach `0xff`: this bound stands for "no end".
const NO_END: &[u8] = &[0xff];

/// The live version of `key`, or `None` when it was never written or its latest row is a
/// tombstone.
pub(super) fn latest_live(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    let mut select = conn.prepare_cached(LATEST)?;
    let row = select
        .query_row([key.as_bytes()], |row| {
            let deleted: bool = row.get(3)?;
            if deleted {
                return Ok(None);
            }
            Ok(Some(KeyValue {
                key: key.to_owned(),
                value: Bytes::from(row.get::<_, Vec<u8>>(1)?),
                create_revision: row.get(2)?,
                mod_revision: row.get(0)?,
            }))
        })
        .optional()?;
    Ok(row.flatten())
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    latest_live(conn, key).map_err(sqlite_error(format!("getting {key}")))
}

/// One page of the live keys in `range` as they were at `at` (the current revision when
/// `None`). `limit` 0 means every key.
pub(super) fn list(
    conn: &mut Connection,
    range: &KeyRange,
    limit: usize,
    at: Option<i64>,
) -> Result<ListPage> {
    let op = || format!("listing {}", String::from_utf8_lossy(&range.start));
    let tx = conn.transaction().map_err(sqlite_error(op()))?;

    let (current, compact_revision) = revisions(&tx).map_err(sqlite_error(op()))?;
    let revision = match at {
        None => current,
        Some(requested) if requested > current => {
            return Err(StoreError::FutureRevision { requested, current });
        }
        Some(requested) if requested < compact_revision => {
            return Err(StoreError::Compacted {
                requested,
                compact_revision,
            });
        }
        Some(requested) => requested,
    };

    // One row more than asked tells whether another page follows.
    let fetch = match limit {
        0 => -1,
        n => i64::try_from(n).map_or(i64::MAX, |n| n.saturating_add(1)),
    };
    let end = range.end.as_deref().unwrap_or(NO_END);
    let mut items = {
        let mut select = tx.prepare_cached(LIST).map_err(sqlite_error(op()))?;
        let rows = select
            .query_map(
                rusqlite::params![range.start, end, revision, fetch],
                |row| {
                    Ok(KeyValue {
                        key: utf8_key(row, 0)?,
                        value: Bytes::from(row.get::<_, Vec<u8>>(1)?),
                        create_revision: row.get(2)?,
                        mod_revision: row.get(3)?,
                    })
                },
            )
            .map_err(sqlite_error(op()))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite_error(op()))?
    };
    tx.finish().map_err(sqlite_error(op()))?;

    let more = limit > 0 && items.len() > limit;
    items.truncate(if more { limit } else { items.len() });
    Ok(ListPage {
        items,
        revision,
        more,
    })
}

/// A row of [`EVENTS`] before it becomes an [`Event`].
struct EventRow {
    revision: i64,
    key: String,
    value: Vec<u8>,
    create_revision: i64,
    deleted: bool,
    prev_revision: Option<i64>,
    prev_value: Option<Vec<u8>>,
    prev_create_revision: Option<i64>,
}

/// Up to `limit` events on keys in `range` with revisions above `after`, in revision order;
/// Compacted when the log no longer holds all of them.
pub(super) fn events_after(
    conn: &mut Connection,
    range: &KeyRange,
    after: i64,
    limit: usize,
) -> Result<Vec<Event>> {
    let op = || format!("reading events after revision {after}");
    let tx = conn.transaction().map_err(sqlite_error(op()))?;

    let (_, compact_revision) = revisions(&tx).map_err(sqlite_error(op()))?;
    if after < compact_revision {
        return Err(StoreError::Compacted {
            requested: after,
            compact_revision,
        });
    }

    let end = range.end.as_deref().unwrap_or(NO_END);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = {
        let mut select = tx.prepare_cached(EVENTS).map_err(sqlite_error(op()))?;
        let rows = select
            .query_map(rusqlite::params![after, range.start, end, limit], |row| {
                Ok(EventRow {
                    revision: row.get(0)?,
                    key: utf8_key(row, 1)?,
                    value: row.get(2)?,
                    create_revision: row.get(3)?,
                    deleted: row.get(4)?,
                    prev_revision: row.get(5)?,
                    prev_value: row.get(6)?,
                    prev_create_revision: row.get(7)?,
                })
            })
            .map_err(sqlite_error(op()))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite_error(op()))?
    };
    tx.finish().map_err(sqlite_error(op()))?;

    rows.into_iter()
        .map(|row| {
            event(row).map_err(|reason| StoreError::Backend {
                op: op(),
                backend: "sqlite",
                source: reason.into(),
            })
        })
        .collect()
}

/// The event a row records. Fails only on a damaged file: compaction keeps every version a
/// later row points at.
fn event(row: EventRow) -> std::result::Result<Event, String> {
    let prev = match (row.prev_revision, row.prev_value, row.prev_create_revision) {
        (None, _, _) => None,
        (Some(revision), Some(value), Some(create_revision)) => Some(KeyValue {
            key: row.key.clone(),
            value: Bytes::from(value),
            create_revision,
            mod_revision: revision,
        }),
        (Some(missing), _, _) => {
            return Err(format!(
                "revision {} replaced revision {missing}, which the log lacks",
                row.revision
            ));
        }
    };
    let kind = match (row.deleted, &prev) {
        (true, _) => EventKind::Deleted,
        (false, None) => EventKind::Added,
        (false, Some(_)) => EventKind::Modified,
    };
    let value = if row.deleted {
        Bytes::new()
    } else {
        Bytes::from(row.value)
    };
    let kv = KeyValue {
        key: row.key,
        value,
        create_revision: row.create_revision,
        mod_revision: row.revision,
    };
    Ok(Event { kind, kv, prev })
}

/// Column `idx` as a key: stored as a BLOB, always written from a `&str`.
fn utf8_key(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<String> {
    String::from_utf8(row.get::<_, Vec<u8>>(idx)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(e))
    })
}
