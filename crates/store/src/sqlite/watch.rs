//! Watch streams: history from the table, then live events from the broadcast that every
//! commit feeds.
//!
//! Why nothing is lost or repeated between the two: the writer sends each event after its
//! commit, while it still holds the writer lock, so the broadcast carries events in revision
//! order. A watch subscribes *before* it reads the table. An event sent before the
//! subscription was committed before it, hence before the read began, and the read sees it;
//! an event sent after the subscription is on the channel. So the table read and the channel
//! together hold every event, in order, and the only overlap is events that were committed
//! and read from the table but also sent after the subscription. The stream keeps the
//! revision of the last event it passed on and drops any channel event at or below it.
//!
//! The table is read in batches until one comes back short. A watcher that reads too slowly
//! for the broadcast's buffer sees `Lagged`; it subscribes again and goes back to the table
//! from its last revision, by the same argument. Only when compaction has removed that
//! history does it get `Compacted` and end.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::debug;

use super::{Inner, blocking, read};
use crate::error::Result;
use crate::keys::{KeyRange, check_revision};
use crate::types::Event;

/// Opens a watch of `prefix` after revision `after`. The first catch-up read happens here,
/// so that a compacted `after` is refused before a stream exists.
pub(super) async fn watch(
    inner: Arc<Inner>,
    prefix: String,
    after: i64,
) -> Result<BoxStream<'static, Result<Event>>> {
    check_revision("watching", "after", after)?;
    let range = KeyRange::prefix(&prefix);
    let batch = inner.options.catch_up_batch;

    // Subscribe first: see the module header.
    let live = inner.events.subscribe();
    let backlog = catch_up(Arc::clone(&inner), range.clone(), after, batch).await?;
    debug!(prefix, after, backlog = backlog.len(), "watch started");

    let watch = Watch {
        store: Arc::downgrade(&inner),
        range,
        batch,
        last: after,
        caught_up: backlog.len() < batch,
        backlog: backlog.into(),
        live,
        ended: false,
    };
    Ok(stream::unfold(watch, Watch::next).boxed())
}

/// The state of one watch stream between items.
struct Watch {
    /// Weak, so that an open watch does not keep the store (and the broadcast sender) alive:
    /// when the store closes, the channel closes and the stream ends.
    store: Weak<Inner>,
    range: KeyRange,
    batch: usize,
    /// The revision of the last event passed on or skipped as outside the range.
    last: i64,
    /// Events read from the table and not yet passed on.
    backlog: VecDeque<Event>,
    /// False while the table may hold events after `last` that the channel will not carry.
    caught_up: bool,
    live: broadcast::Receiver<Arc<Event>>,
    ended: bool,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Event>, Self)> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.backlog.pop_front() {
                self.last = event.revision();
                return Some((Ok(event), self));
            }

            if !self.caught_up {
                let inner = self.store.upgrade()?;
                match catch_up(inner, self.range.clone(), self.last, self.batch).await {
                    Ok(events) => {
                        self.caught_up = events.len() < self.batch;
                        self.backlog = events.into();
                    }
                    Err(e) => {
                        self.ended = true;
                        return Some((Err(e), self));
                    }
                }
                continue;
            }

            match self.live.recv().await {
                Ok(event) if event.revision() <= self.last => {}
                Ok(event) => {
                    self.last = event.revision();
                    if self.range.contains(event.kv.key.as_bytes()) {
                        return Some((Ok(Event::clone(&event)), self));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    debug!(
                        missed,
                        last = self.last,
                        "watch fell behind; reading the table again"
                    );
                    self.live = self.live.resubscribe();
                    self.caught_up = false;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Reads up to `batch` events after `after` from the table on a blocking thread.
async fn catch_up(
    inner: Arc<Inner>,
    range: KeyRange,
    after: i64,
    batch: usize,
) -> Result<Vec<Event>> {
    blocking("watching", move || {
        inner.read(|conn| read::events_after(conn, &range, after, batch))
    })
    .await
}
