//! Compaction of the store's history, as the Kubernetes API server asks etcd for it: every
//! interval, the history older than the previous tick's revision is dropped. A watch that
//! resumes from before that revision gets 410 Expired and lists again.

use std::sync::Arc;
use std::time::Duration;

use store::Backend;
use tokio::sync::watch;

/// How often history is compacted; the Kubernetes API server's default.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Runs until `stop` turns true.
pub async fn run(store: Arc<dyn Backend>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut previous: Option<i64> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Some(rev) = previous {
            match store.compact(rev).await {
                Ok(()) => tracing::debug!(revision = rev, "compacted the store's history"),
                Err(e) => tracing::warn!(error = %e, "compacting the store failed; going on"),
            }
        }
        previous = store.current_revision().await.ok();
    }
}
