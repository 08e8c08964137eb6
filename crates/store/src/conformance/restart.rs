//! The check of a restart: closing the store and opening it again loses nothing.

use super::{Harness, next_event, ok, open, v};
use crate::{EventKind, StoreError};

/// After the store is closed and opened again, every object, the revision counter and the
/// compact revision are as they were. The last write before the restart is a delete that
/// the compaction covers, so the counter cannot be read back from the newest surviving
/// object.
pub async fn restart_keeps_data_revision_and_compaction(harness: &dyn Harness) {
    let store = open(harness).await;
    let a1 = ok("create a", store.create("/c/restart/a", v("1")).await);
    let a2 = ok("update a", store.update("/c/restart/a", v("2"), None).await);
    let b = ok("create b", store.create("/c/restart/b", v("1")).await);
    ok("create c", store.create("/c/restart/c", v("1")).await);
    let compact = ok("update b", store.update("/c/restart/b", v("2"), None).await).mod_revision;
    ok("delete c", store.delete("/c/restart/c", None).await);
    ok("compact", store.compact(compact).await);
    let b2 = ok("get b", store.get("/c/restart/b").await);
    ok("delete b", store.delete("/c/restart/b", None).await);
    let current = ok("current revision", store.current_revision().await);
    let before = ok("list", store.list("/c/restart/", None, 0, None).await);
    ok("compact at current", store.compact(current).await);
    drop(store);

    let store = open(harness).await;
    assert_eq!(
        ok("current revision", store.current_revision().await),
        current
    );
    assert_eq!(
        ok("get a", store.get("/c/restart/a").await),
        Some(a2.clone())
    );
    assert_eq!(ok("get b", store.get("/c/restart/b").await), None);
    let after = ok("list", store.list("/c/restart/", None, 0, None).await);
    assert_eq!(after, before, "the list reads the same after a restart");
    assert!(b2.is_some_and(|kv| kv.create_revision == b.create_revision));

    match store
        .list("/c/restart/", None, 0, Some(a1.mod_revision))
        .await
    {
        Err(StoreError::Compacted {
            compact_revision, ..
        }) => {
            assert_eq!(
                compact_revision, current,
                "the compact revision survives a restart"
            );
        }
        other => panic!("a list below the compaction after a restart gave {other:?}"),
    }
    let watch = store.watch("/c/restart/", current - 1).await;
    assert!(
        matches!(watch, Err(StoreError::Compacted { .. })),
        "watch below the compaction"
    );

    let mut watch = ok(
        "watch from current",
        store.watch("/c/restart/", current).await,
    );
    let a3 = ok(
        "update a",
        store
            .update("/c/restart/a", v("3"), Some(a2.mod_revision))
            .await,
    );
    assert_eq!(
        a3.mod_revision,
        current + 1,
        "the counter goes on where it was"
    );
    let event = next_event("after the restart", &mut watch).await;
    assert_eq!(
        (event.kind, event.revision()),
        (EventKind::Modified, current + 1)
    );
    assert_eq!(event.prev, Some(a2));
}
