//! Checks of single writes and reads: revision numbering, create, get, compare-and-swap
//! update and delete, argument checks, and many writers at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Harness, ok, open, v};
use crate::{Backend, KeyValue, StoreError};

/// Each successful write advances the revision by exactly one, a failed write by none, and
/// the store's current revision is that of the latest write.
pub async fn revisions_increase_by_one_per_write(harness: &dyn Harness) {
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);
    assert!(start >= 0, "a new store is at revision {start}");

    let a = ok("create a", store.create("/c/rev/a", v("1")).await);
    assert_eq!((a.create_revision, a.mod_revision), (start + 1, start + 1));
    let a2 = ok("update a", store.update("/c/rev/a", v("2"), None).await);
    assert_eq!(
        (a2.create_revision, a2.mod_revision),
        (start + 1, start + 2)
    );

    let failed = store.create("/c/rev/a", v("again")).await;
    assert!(
        matches!(failed, Err(StoreError::AlreadyExists { .. })),
        "got {failed:?}"
    );
    let failed = store.update("/c/rev/a", v("3"), Some(start + 1)).await;
    assert!(
        matches!(failed, Err(StoreError::Conflict { .. })),
        "got {failed:?}"
    );
    let failed = store.update("/c/rev/missing", v("3"), None).await;
    assert!(
        matches!(failed, Err(StoreError::NotFound { .. })),
        "got {failed:?}"
    );
    assert_eq!(
        ok("current revision", store.current_revision().await),
        start + 2
    );

    let b = ok("create b", store.create("/c/rev/b", v("1")).await);
    assert_eq!(b.mod_revision, start + 3);
    let deleted = ok("delete a", store.delete("/c/rev/a", None).await);
    assert_eq!(deleted, a2, "delete returns the version it deleted");
    assert_eq!(
        ok("current revision", store.current_revision().await),
        start + 4
    );

    let page = ok("list", store.list("/c/rev/", None, 0, None).await);
    assert_eq!(
        page.revision,
        start + 4,
        "a list reads at the current revision"
    );
}

/// Creating a live key fails and changes nothing; after a delete the key can be created
/// again, as a new incarnation.
pub async fn create_of_a_live_key_is_already_exists(harness: &dyn Harness) {
    let store = open(harness).await;
    let first = ok("create", store.create("/c/exists/a", v("first")).await);

    match store.create("/c/exists/a", v("second")).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/c/exists/a"),
        other => panic!("a second create gave {other:?}"),
    }
    let got = ok("get", store.get("/c/exists/a").await);
    assert_eq!(
        got.as_ref(),
        Some(&first),
        "a failed create left the value alone"
    );

    ok("delete", store.delete("/c/exists/a", None).await);
    let again = ok(
        "create after delete",
        store.create("/c/exists/a", v("third")).await,
    );
    assert!(again.mod_revision > first.mod_revision);
    assert_eq!(
        again.create_revision, again.mod_revision,
        "a new incarnation starts anew"
    );
    assert_eq!(ok("get", store.get("/c/exists/a").await), Some(again));
}

/// A key never written, and one deleted, read as `None`; a live one as it was written.
pub async fn get_of_a_missing_key_is_none(harness: &dyn Harness) {
    let store = open(harness).await;
    assert_eq!(ok("get missing", store.get("/c/get/none").await), None);

    let created = ok("create", store.create("/c/get/a", v("hello")).await);
    assert_eq!(
        ok("get", store.get("/c/get/a").await),
        Some(created.clone())
    );
    assert_eq!(created.value, v("hello"));
    assert_eq!(created.key, "/c/get/a");

    ok("delete", store.delete("/c/get/a", None).await);
    assert_eq!(ok("get deleted", store.get("/c/get/a").await), None);
    assert_eq!(ok("get a neighbour", store.get("/c/get/a/b").await), None);
}

/// `update` with the right expected revision succeeds; with a wrong one it fails with
/// Conflict carrying both revisions, and changes nothing; without one it always succeeds.
pub async fn update_checks_the_expected_revision(harness: &dyn Harness) {
    let store = open(harness).await;
    let v1 = ok("create", store.create("/c/cas/a", v("1")).await);

    let v2 = ok("update at the right revision", {
        store
            .update("/c/cas/a", v("2"), Some(v1.mod_revision))
            .await
    });
    assert_eq!(v2.value, v("2"));
    assert_eq!(v2.create_revision, v1.create_revision);

    match store
        .update("/c/cas/a", v("stale"), Some(v1.mod_revision))
        .await
    {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
            ..
        }) => {
            assert_eq!(key, "/c/cas/a");
            assert_eq!((expected, actual), (v1.mod_revision, v2.mod_revision));
        }
        other => panic!("an update at a stale revision gave {other:?}"),
    }
    assert_eq!(ok("get", store.get("/c/cas/a").await), Some(v2.clone()));

    let v3 = ok(
        "unconditional update",
        store.update("/c/cas/a", v("3"), None).await,
    );
    assert_eq!(v3.mod_revision, v2.mod_revision + 1);
    assert_eq!(ok("get", store.get("/c/cas/a").await), Some(v3));
}

/// `delete` follows the same rule as `update`, and returns the version it deleted.
pub async fn delete_checks_the_expected_revision(harness: &dyn Harness) {
    let store = open(harness).await;
    let v1 = ok("create", store.create("/c/cas-delete/a", v("1")).await);
    let v2 = ok(
        "update",
        store.update("/c/cas-delete/a", v("2"), None).await,
    );

    match store.delete("/c/cas-delete/a", Some(v1.mod_revision)).await {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (v1.mod_revision, v2.mod_revision));
        }
        other => panic!("a delete at a stale revision gave {other:?}"),
    }
    assert_eq!(
        ok("get", store.get("/c/cas-delete/a").await),
        Some(v2.clone())
    );

    let deleted = ok(
        "delete",
        store.delete("/c/cas-delete/a", Some(v2.mod_revision)).await,
    );
    assert_eq!(deleted, v2);
    assert_eq!(ok("get", store.get("/c/cas-delete/a").await), None);
}

/// Updating or deleting a key that is not live is NotFound, with or without an expected
/// revision.
pub async fn update_and_delete_of_a_missing_key_are_not_found(harness: &dyn Harness) {
    let store = open(harness).await;
    let created = ok("create", store.create("/c/missing/gone", v("1")).await);
    ok("delete", store.delete("/c/missing/gone", None).await);

    for key in ["/c/missing/never", "/c/missing/gone"] {
        for expected in [None, Some(created.mod_revision)] {
            let update = store.update(key, v("x"), expected).await;
            assert!(
                matches!(&update, Err(StoreError::NotFound { key: k, .. }) if k == key),
                "update of {key} at {expected:?} gave {update:?}"
            );
            let delete = store.delete(key, expected).await;
            assert!(
                matches!(&delete, Err(StoreError::NotFound { key: k, .. }) if k == key),
                "delete of {key} at {expected:?} gave {delete:?}"
            );
        }
    }
}

/// An empty key and negative revisions are Invalid, and write nothing.
pub async fn invalid_arguments_are_refused(harness: &dyn Harness) {
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);

    let invalid = |what: &str, result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::Invalid { .. })),
            "{what} gave {result:?}"
        );
    };
    invalid(
        "create of an empty key",
        store.create("", v("x")).await.map(drop),
    );
    invalid("get of an empty key", store.get("").await.map(drop));
    invalid(
        "update of an empty key",
        store.update("", v("x"), None).await.map(drop),
    );
    invalid(
        "delete of an empty key",
        store.delete("", None).await.map(drop),
    );
    invalid(
        "list at -1",
        store.list("/c/", None, 0, Some(-1)).await.map(drop),
    );
    invalid("watch after -1", store.watch("/c/", -1).await.map(drop));
    invalid("compact at -1", store.compact(-1).await);

    assert_eq!(
        ok("current revision", store.current_revision().await),
        start
    );
}

/// Many writers at once get distinct revisions with no gaps, and every write is kept.
pub async fn concurrent_writers_get_gap_free_revisions(harness: &dyn Harness) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let store = open(harness).await;
    let start = ok("current revision", store.current_revision().await);

    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store: Arc<dyn Backend> = Arc::clone(&store);
            tokio::spawn(async move {
                let mut written = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let key = format!("/c/concurrent/{writer}/{i:03}");
                    let kv = ok("create", store.create(&key, v(&key)).await);
                    written.push(kv);
                }
                written
            })
        })
        .collect();

    let mut written: Vec<KeyValue> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(kvs) => written.extend(kvs),
            Err(e) => panic!("a writer failed: {e}"),
        }
    }

    let total = i64::try_from(WRITERS * EACH).unwrap_or(i64::MAX);
    let revisions: BTreeSet<i64> = written.iter().map(|kv| kv.mod_revision).collect();
    let expected: BTreeSet<i64> = (start + 1..=start + total).collect();
    assert_eq!(revisions, expected, "revisions are distinct and gap-free");
    assert_eq!(
        ok("current revision", store.current_revision().await),
        start + total
    );

    let page = ok("list", store.list("/c/concurrent/", None, 0, None).await);
    written.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(page.items, written, "every write is kept");
}
