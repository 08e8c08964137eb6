//! The behaviour every [`Backend`] must show, one async function per behaviour, so that the
//! SQLite and etcd backends are held to the same contract.
//!
//! A backend's test file implements [`Harness`] and expands [`conformance_tests!`] once,
//! which makes one `#[tokio::test]` per check:
//!
//! ```ignore
//! hoist_store::conformance_tests!(MyHarness::new().await);
//! ```
//!
//! Each check opens the store through the harness, expects it empty, and compares
//! revisions only with the one it started at, because backends start counting at different
//! numbers (see the crate header). Checks write under `/c/<check>/` or under Kubernetes-like
//! keys, panic with a message saying what was expected, and wait at most [`STEP`] for any
//! one event; that bound only turns a hang into a failure, nothing here measures time.
//!
//! This module exists only with the `conformance` feature: it is test code, and it panics.

mod lists;
mod restart;
mod watches;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

pub use lists::*;
pub use restart::*;
pub use watches::*;
pub use writes::*;

use crate::{Backend, Event, Result};

/// How a check gets the backend under test.
pub trait Harness: Send + Sync {
    /// Opens the backend. The first call in a check must give an empty store. A later call,
    /// made after every handle from the earlier one was dropped, must open the same data
    /// again: that is a restart.
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Backend>>>;
}

/// The longest wait for one event before a check fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(20);

/// Expands to one `#[tokio::test]` per conformance check, each running the check with the
/// harness that `$harness` (an expression, evaluated inside the async test, so it may
/// `.await`) gives. The calling crate needs `tokio` with the `macros` and `rt-multi-thread`
/// features.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@each $harness;
            revisions_increase_by_one_per_write,
            create_of_a_live_key_is_already_exists,
            get_of_a_missing_key_is_none,
            update_checks_the_expected_revision,
            delete_checks_the_expected_revision,
            update_and_delete_of_a_missing_key_are_not_found,
            invalid_arguments_are_refused,
            concurrent_writers_get_gap_free_revisions,
            list_is_in_key_order,
            list_prefix_does_not_match_a_longer_name,
            list_pages_at_a_fixed_revision_see_one_snapshot,
            list_at_an_old_revision_sees_the_old_state,
            list_at_a_compacted_revision_is_compacted,
            list_at_a_future_revision_is_future_revision,
            compaction_keeps_the_latest_version_of_each_key,
            watch_from_zero_sees_all_history,
            watch_from_a_middle_revision_starts_after_it,
            watch_receives_live_events,
            watch_filters_by_prefix,
            watch_from_a_compacted_revision_is_compacted,
            watch_passes_from_history_to_live_without_gap_or_repeat,
            a_watcher_that_never_reads_does_not_block_writers,
            watch_ends_when_the_store_closes,
            restart_keeps_data_revision_and_compaction,
        );
    };
    (@each $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $harness;
                $crate::conformance::$check(&harness).await;
            }
        )*
    };
}

/// Opens the store for a check.
async fn open(harness: &dyn Harness) -> Arc<dyn Backend> {
    match harness.open().await {
        Ok(store) => store,
        Err(e) => panic!("opening the store under test: {e}"),
    }
}

/// Bytes of a string, for values.
fn v(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Unwraps a store result, naming the step that failed.
#[track_caller]
fn ok<T>(step: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{step}: unexpected error: {e} ({e:?})"),
    }
}

/// The next event of a watch, failing the check if the watch fails, ends or stays silent for
/// [`STEP`].
async fn next_event(step: &str, watch: &mut BoxStream<'static, Result<Event>>) -> Event {
    match tokio::time::timeout(STEP, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("{step}: the watch failed: {e}"),
        Ok(None) => panic!("{step}: the watch ended"),
        Err(_) => panic!("{step}: no event within {STEP:?}"),
    }
}
