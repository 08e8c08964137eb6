//! Checks of lists: order, prefixes, pages of one snapshot, reads at old, compacted and
//! future revisions, and what compaction keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Harness, ok, open, v};
use crate::{Backend, KeyValue, StoreError};

/// A list returns the live keys of its prefix in byte order of the keys, whatever order
/// they were written in, each as its latest version.
pub async fn list_is_in_key_order(harness: &dyn Harness) {
    let store = open(harness).await;
    let mut written = Vec::new();
    for key in [
        "/c/order/b",
        "/c/order/a/x",
        "/c/order/c",
        "/c/order/a",
        "/c/order/B",
    ] {
        written.push(ok("create", store.create(key, v(key)).await));
    }
    let updated = ok("update", store.update("/c/order/c", v("c2"), None).await);
    written[2] = updated;
    ok(
        "create a deleted key",
        store.create("/c/order/d", v("d")).await,
    );
    ok("delete", store.delete("/c/order/d", None).await);

    let page = ok("list", store.list("/c/order/", None, 0, None).await);
    written.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    assert_eq!(page.items, written);
    assert!(!page.more, "a list without a limit has no more");
    assert_eq!(
        page.revision,
        ok("current revision", store.current_revision().await)
    );

    let all = ok("list everything", store.list("", None, 0, None).await);
    assert_eq!(all.items, written, "the empty prefix matches every key");
}

/// A prefix matches exactly the keys that start with it: `/pods/default/` does not match
/// `/pods/default-x/…`. Callers end directory prefixes with `/` for that reason.
pub async fn list_prefix_does_not_match_a_longer_name(harness: &dyn Harness) {
    let store = open(harness).await;
    for key in [
        "/pods/default-x/web",
        "/pods/default",
        "/pods/default/web",
        "/pods/defaulu/web",
        "/pods/default/web/x",
        "/pods/dafault/web",
    ] {
        ok("create", store.create(key, v(key)).await);
    }

    let page = ok("list", store.list("/pods/default/", None, 0, None).await);
    let keys: Vec<&str> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/pods/default/web", "/pods/default/web/x"]);

    let page = ok("list", store.list("/pods/default-x/", None, 0, None).await);
    let keys: Vec<&str> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/pods/default-x/web"]);
}

/// Pages read with `start_after` and `limit` at the first page's revision see one snapshot,
/// however much is written in the meantime, and `more` is true exactly until the last page.
pub async fn list_pages_at_a_fixed_revision_see_one_snapshot(harness: &dyn Harness) {
    let store = open(harness).await;
    let mut before = Vec::new();
    for i in 0..10 {
        let key = format!("/c/pages/k{i:02}");
        before.push(ok("create", store.create(&key, v(&format!("v{i}"))).await));
    }

    // A writer keeps changing the range while the pages are read.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store: Arc<dyn Backend> = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                ok(
                    "background update",
                    store.update("/c/pages/k05", v(&n.to_string()), None).await,
                );
                ok(
                    "background create",
                    store.create(&format!("/c/pages/k03.{n}"), v("new")).await,
                );
                n += 1;
                tokio::task::yield_now().await;
            }
        })
    };

    for limit in [3, 5, 1, 10, 11] {
        let first = ok(
            "first page",
            store.list("/c/pages/", None, limit, None).await,
        );
        let at = first.revision;
        let snapshot = ok(
            "whole list",
            store.list("/c/pages/", None, 0, Some(at)).await,
        );

        // Changes that later pages must not see.
        ok(
            "update k07",
            store.update("/c/pages/k07", v("later"), None).await,
        );
        ok("delete k08", store.delete("/c/pages/k08", None).await);
        ok(
            "create k09a",
            store.create("/c/pages/k09a", v("later")).await,
        );

        let mut items = first.items.clone();
        let mut more = first.more;
        let mut pages = 1;
        while more {
            let after = items.last().map(|kv| kv.key.clone());
            let page = ok(
                "next page",
                store
                    .list("/c/pages/", after.as_deref(), limit, Some(at))
                    .await,
            );
            assert_eq!(
                page.revision, at,
                "a page read at a revision reports that revision"
            );
            assert!(
                page.items.len() <= limit && !page.items.is_empty(),
                "page of {limit}"
            );
            items.extend(page.items);
            more = page.more;
            pages += 1;
        }
        assert_eq!(
            items, snapshot.items,
            "the pages of limit {limit} are one snapshot"
        );
        assert_eq!(
            pages,
            snapshot.items.len().div_ceil(limit).max(1),
            "pages of {limit}"
        );

        // Undo the changes for the next round, as new writes.
        ok("recreate k08", store.create("/c/pages/k08", v("v8")).await);
        ok("delete k09a", store.delete("/c/pages/k09a", None).await);
    }

    stop.store(true, Ordering::Relaxed);
    if let Err(e) = writer.await {
        panic!("the background writer failed: {e}");
    }

    let page = ok("list at the first revision", {
        store
            .list("/c/pages/", None, 0, Some(before[9].mod_revision))
            .await
    });
    assert_eq!(
        page.items, before,
        "a list at the revision of the tenth create"
    );
}

/// A list at an earlier revision shows the keys as they were: old values, deleted keys
/// still there, later keys not yet there.
pub async fn list_at_an_old_revision_sees_the_old_state(harness: &dyn Harness) {
    let store = open(harness).await;
    let a1 = ok("create a", store.create("/c/old/a", v("1")).await);
    let a2 = ok("update a", store.update("/c/old/a", v("2"), None).await);
    let b = ok("create b", store.create("/c/old/b", v("1")).await);
    let gone = ok("delete a", store.delete("/c/old/a", None).await);
    let now = ok("current revision", store.current_revision().await);

    let at = |revision: i64| {
        let store = Arc::clone(&store);
        async move { ok("list", store.list("/c/old/", None, 0, Some(revision)).await).items }
    };
    assert_eq!(at(a1.mod_revision).await, vec![a1.clone()]);
    assert_eq!(at(a2.mod_revision).await, vec![a2.clone()]);
    assert_eq!(at(b.mod_revision).await, vec![a2.clone(), b.clone()]);
    assert_eq!(at(now).await, vec![b]);
    assert_eq!(gone, a2);
    assert_eq!(at(a1.mod_revision - 1).await, Vec::<KeyValue>::new());
}

/// A list below the compact revision is Compacted, naming both revisions; at and above it
/// the list works.
pub async fn list_at_a_compacted_revision_is_compacted(harness: &dyn Harness) {
    let store = open(harness).await;
    let a1 = ok("create", store.create("/c/compacted/a", v("1")).await);
    let a2 = ok("update", store.update("/c/compacted/a", v("2"), None).await);
    let a3 = ok("update", store.update("/c/compacted/a", v("3"), None).await);
    ok("compact", store.compact(a2.mod_revision).await);

    match store
        .list("/c/compacted/", None, 0, Some(a1.mod_revision))
        .await
    {
        Err(StoreError::Compacted {
            requested,
            compact_revision,
        }) => {
            assert_eq!(
                (requested, compact_revision),
                (a1.mod_revision, a2.mod_revision)
            );
        }
        other => panic!("a list below the compaction gave {other:?}"),
    }
    let at = ok("list at compaction", {
        store
            .list("/c/compacted/", None, 0, Some(a2.mod_revision))
            .await
    });
    assert_eq!(at.items, [a2]);
    let now = ok("list now", store.list("/c/compacted/", None, 0, None).await);
    assert_eq!(now.items, [a3]);
}

/// A list above the current revision is FutureRevision, naming both revisions.
pub async fn list_at_a_future_revision_is_future_revision(harness: &dyn Harness) {
    let store = open(harness).await;
    ok("create", store.create("/c/future/a", v("1")).await);
    let current = ok("current revision", store.current_revision().await);

    match store.list("/c/future/", None, 0, Some(current + 1)).await {
        Err(StoreError::FutureRevision {
            requested,
            current: at,
        }) => {
            assert_eq!((requested, at), (current + 1, current));
        }
        other => panic!("a list above the current revision gave {other:?}"),
    }
    let page = ok(
        "list at current",
        store.list("/c/future/", None, 0, Some(current)).await,
    );
    assert_eq!(page.items.len(), 1);
}

/// Compaction drops old versions but keeps each live key's latest one and the current
/// revision; compacting again at or below the compaction does nothing, and above the
/// current revision is FutureRevision.
pub async fn compaction_keeps_the_latest_version_of_each_key(harness: &dyn Harness) {
    let store = open(harness).await;
    ok("create a", store.create("/c/keep/a", v("1")).await);
    let b = ok("create b", store.create("/c/keep/b", v("1")).await);
    ok("delete c", {
        ok("create c", store.create("/c/keep/c", v("1")).await);
        store.delete("/c/keep/c", None).await
    });
    let a2 = ok("update a", store.update("/c/keep/a", v("2"), None).await);
    let current = ok("current revision", store.current_revision().await);

    ok("compact at current", store.compact(current).await);
    assert_eq!(
        ok("current revision", store.current_revision().await),
        current
    );
    assert_eq!(ok("get a", store.get("/c/keep/a").await), Some(a2.clone()));
    assert_eq!(ok("get c", store.get("/c/keep/c").await), None);
    let page = ok("list", store.list("/c/keep/", None, 0, Some(current)).await);
    assert_eq!(page.items, [a2.clone(), b.clone()]);

    ok("compact again", store.compact(current).await);
    ok("compact lower", store.compact(current - 2).await);
    match store.compact(current + 1).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, current + 1),
        other => panic!("a compaction above the current revision gave {other:?}"),
    }

    // Writes go on after a compaction, from the same counter.
    let a3 = ok(
        "update a",
        store
            .update("/c/keep/a", v("3"), Some(a2.mod_revision))
            .await,
    );
    assert_eq!(a3.mod_revision, current + 1);
}
