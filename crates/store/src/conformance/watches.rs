//! Checks of watches: history, live events, prefixes, compaction, the seam between history
//! and live events, slow watchers, and the end of a watch.
//!
//! That a watch delivers nothing more than expected is shown without waiting: the check
//! writes one more key and expects it to be the next event.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{Harness, STEP, next_event, ok, open, v};
use crate::{Backend, Event, EventKind, KeyValue, StoreError};

/// The event a create, update or delete that returned `kv` makes.
fn added(kv: &KeyValue) -> Event {
    Event {
        kind: EventKind::Added,
        kv: kv.clone(),
        prev: None,
    }
}

fn modified(kv: &KeyValue, prev: &KeyValue) -> Event {
    Event {
        kind: EventKind::Modified,
        kv: kv.clone(),
        prev: Some(prev.clone()),
    }
}

fn deleted(prev: &KeyValue, revision: i64) -> Event {
    let kv = KeyValue {
        value: bytes::Bytes::new(),
        mod_revision: revision,
        ..prev.clone()
    };
    Event {
        kind: EventKind::Deleted,
        kv,
        prev: Some(prev.clone()),
    }
}

/// A watch from revision 0 replays every write in revision order, with the old version on
/// updates and deletes, and then goes on with live writes.
pub async fn watch_from_zero_sees_all_history(harness: &dyn Harness) {
    let store = open(harness).await;
    let a1 = ok("create a", store.create("/c/history/a", v("1")).await);
    let a2 = ok("update a", store.update("/c/history/a", v("2"), None).await);
    let b = ok("create b", store.create("/c/history/b", v("1")).await);
    ok("delete a", store.delete("/c/history/a", None).await);
    let delete_revision = b.mod_revision + 1;

    let mut watch = ok("watch", store.watch("/c/history/", 0).await);
    assert_eq!(next_event("first", &mut watch).await, added(&a1));
    assert_eq!(next_event("second", &mut watch).await, modified(&a2, &a1));
    assert_eq!(next_event("third", &mut watch).await, added(&b));
    assert_eq!(
        next_event("fourth", &mut watch).await,
        deleted(&a2, delete_revision)
    );

    let c = ok("create c", store.create("/c/history/c", v("1")).await);
    assert_eq!(next_event("live", &mut watch).await, added(&c));
}

/// A watch after revision N starts with the write at N + 1.
pub async fn watch_from_a_middle_revision_starts_after_it(harness: &dyn Harness) {
    let store = open(harness).await;
    let mut written = Vec::new();
    for i in 0..5 {
        let key = format!("/c/middle/{i}");
        written.push(ok("create", store.create(&key, v("x")).await));
    }

    let mut watch = ok(
        "watch",
        store.watch("/c/middle/", written[1].mod_revision).await,
    );
    for kv in &written[2..] {
        assert_eq!(next_event("history", &mut watch).await, added(kv));
    }
    let live = ok("create", store.create("/c/middle/live", v("x")).await);
    assert_eq!(next_event("live", &mut watch).await, added(&live));
}

/// A watch from the current revision receives later writes as they happen; a delete comes
/// with the deleted version as `prev`.
pub async fn watch_receives_live_events(harness: &dyn Harness) {
    let store = open(harness).await;
    ok(
        "unrelated history",
        store.create("/c/live/old", v("x")).await,
    );
    let now = ok("current revision", store.current_revision().await);
    let mut watch = ok("watch", store.watch("/c/live/", now).await);

    let a1 = ok("create", store.create("/c/live/a", v("1")).await);
    assert_eq!(next_event("create", &mut watch).await, added(&a1));
    let a2 = ok(
        "update",
        store
            .update("/c/live/a", v("2"), Some(a1.mod_revision))
            .await,
    );
    assert_eq!(next_event("update", &mut watch).await, modified(&a2, &a1));
    let gone = ok(
        "delete",
        store.delete("/c/live/a", Some(a2.mod_revision)).await,
    );
    let event = next_event("delete", &mut watch).await;
    assert_eq!(event, deleted(&gone, a2.mod_revision + 1));
    assert!(
        event.kv.value.is_empty(),
        "a delete event's kv has no value"
    );
}

/// A watch sees only keys under its prefix, in history and live, and `/pods/default/` does
/// not see `/pods/default-x/…`.
pub async fn watch_filters_by_prefix(harness: &dyn Harness) {
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);
    let outside = [
        "/pods/default-x/web",
        "/pods/default",
        "/pods/other/web",
        "/pod/default/w",
    ];

    for key in outside {
        ok("create outside", store.create(key, v("x")).await);
    }
    let inside = ok(
        "create inside",
        store.create("/pods/default/web", v("x")).await,
    );
    let mut watch = ok("watch", store.watch("/pods/default/", start).await);
    assert_eq!(next_event("history", &mut watch).await, added(&inside));

    for key in outside {
        ok("update outside", store.update(key, v("y"), None).await);
    }
    let live = ok(
        "update inside",
        store.update("/pods/default/web", v("y"), None).await,
    );
    assert_eq!(
        next_event("live", &mut watch).await,
        modified(&live, &inside)
    );
}

/// A watch from below the compact revision is Compacted, naming both revisions; from the
/// compact revision itself it works.
pub async fn watch_from_a_compacted_revision_is_compacted(harness: &dyn Harness) {
    let store = open(harness).await;
    let a1 = ok("create", store.create("/c/wcompact/a", v("1")).await);
    let a2 = ok("update", store.update("/c/wcompact/a", v("2"), None).await);
    let a3 = ok("update", store.update("/c/wcompact/a", v("3"), None).await);
    ok("compact", store.compact(a2.mod_revision).await);

    for after in [0, a1.mod_revision, a2.mod_revision - 1] {
        match store.watch("/c/wcompact/", after).await {
            Err(StoreError::Compacted {
                requested,
                compact_revision,
            }) => {
                assert_eq!((requested, compact_revision), (after, a2.mod_revision));
            }
            Err(e) => panic!("a watch after {after} failed with {e}"),
            Ok(_) => panic!("a watch after {after}, below the compaction, was opened"),
        }
    }
    let mut watch = ok("watch", store.watch("/c/wcompact/", a2.mod_revision).await);
    assert_eq!(
        next_event("after compaction", &mut watch).await,
        modified(&a3, &a2)
    );
}

/// Watches opened while writes go on, some from far back and some from the current
/// revision, each see every later write exactly once, in order: nothing falls between the
/// history a watch reads first and the live events it switches to.
pub async fn watch_passes_from_history_to_live_without_gap_or_repeat(harness: &dyn Harness) {
    const WRITES: i64 = 600;
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);

    let writer = {
        let store: Arc<dyn Backend> = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 0..WRITES {
                ok(
                    "create",
                    store.create(&format!("/c/seam/{i:04}"), v("x")).await,
                );
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    // Open watches at different moments of the writing, all from `start`, and one from
    // wherever the writer is.
    let mut watches = Vec::new();
    for _ in 0..4 {
        let from_start = ok("watch from start", store.watch("/c/seam/", start).await);
        watches.push((start, from_start));
        let now = ok("current revision", store.current_revision().await);
        watches.push((
            now,
            ok("watch from now", store.watch("/c/seam/", now).await),
        ));
        tokio::task::yield_now().await;
    }
    if let Err(e) = writer.await {
        panic!("the writer failed: {e}");
    }

    for (n, (after, mut watch)) in watches.into_iter().enumerate() {
        for revision in after + 1..=start + WRITES {
            let event = next_event(&format!("watch {n} from {after}"), &mut watch).await;
            assert_eq!(
                event.revision(),
                revision,
                "watch {n} from {after} is gap-free"
            );
            assert_eq!(event.kind, EventKind::Added);
        }
    }
}

/// A watch that is never read does not hold up writers; when it is read at last, it
/// delivers every event in order, or, where a backend cannot keep that much, ends with
/// Compacted after a gap-free run.
pub async fn a_watcher_that_never_reads_does_not_block_writers(harness: &dyn Harness) {
    const WRITES: i64 = 2_000;
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);
    let mut idle = ok("watch", store.watch("/c/idle/", start).await);

    let writes = async {
        for i in 0..WRITES {
            ok(
                "create",
                store.create(&format!("/c/idle/{i:05}"), v("x")).await,
            );
        }
    };
    let bound = STEP * 6;
    if tokio::time::timeout(bound, writes).await.is_err() {
        panic!("{WRITES} writes beside an idle watch did not finish within {bound:?}");
    }

    let mut expected = start + 1;
    loop {
        match tokio::time::timeout(STEP, idle.next()).await {
            Ok(Some(Ok(event))) => {
                assert_eq!(event.revision(), expected, "the idle watch is gap-free");
                expected += 1;
                if expected > start + WRITES {
                    break;
                }
            }
            Ok(Some(Err(StoreError::Compacted { .. }))) => {
                let after = tokio::time::timeout(STEP, idle.next()).await;
                assert!(matches!(after, Ok(None)), "a watch ends after Compacted");
                break;
            }
            Ok(Some(Err(e))) => panic!("the idle watch failed: {e}"),
            Ok(None) => panic!("the idle watch ended after revision {}", expected - 1),
            Err(_) => panic!(
                "the idle watch gave nothing after {} in {STEP:?}",
                expected - 1
            ),
        }
    }
}

/// A watch ends (the stream yields `None`) once the store it came from is closed, that is
/// once the last handle to it is dropped.
pub async fn watch_ends_when_the_store_closes(harness: &dyn Harness) {
    let store = open(harness).await;
    let a = ok("create", store.create("/c/close/a", v("x")).await);
    let mut watch = ok("watch", store.watch("/c/close/", 0).await);
    assert_eq!(next_event("history", &mut watch).await, added(&a));

    drop(store);
    match tokio::time::timeout(STEP, watch.next()).await {
        Ok(None) => {}
        Ok(Some(item)) => panic!("a watch of a closed store gave {item:?}"),
        Err(_) => panic!("a watch of a closed store did not end within {STEP:?}"),
    }
}
