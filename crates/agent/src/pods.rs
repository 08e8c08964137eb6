//! Watching the pods bound to this node and handing each to its worker.
//!
//! A plain list then watch with `fieldSelector=spec.nodeName=<node>`: the list gives the
//! full set (workers of pods not in it are told the pod is gone), the watch goes on from
//! the list's `resourceVersion`, and ends in a new list when the server says the version
//! expired (410) or the stream fails. One worker task per pod UID.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Shared;
use crate::worker::{PodWorker, Signal};

/// How long to wait before listing again after the API failed.
const RETRY: Duration = Duration::from_secs(2);

/// When to list again after a watch ended.
#[derive(Debug, PartialEq, Eq)]
enum Relist {
    Now,
    Later,
}

struct Entry {
    tx: watch::Sender<Signal>,
    task: JoinHandle<()>,
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    workers: HashMap<String, Entry>,
}

impl Dispatcher {
    pub fn new(shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Self {
        Dispatcher {
            shared,
            stop,
            workers: HashMap::new(),
        }
    }

    /// Lists and watches until `stop` is set; then waits for the workers to stop.
    pub async fn run(mut self) {
        let mut first = true;
        let mut stop = self.stop.clone();
        loop {
            let again = tokio::select! {
                again = self.list_and_watch(&mut first) => again,
                _ = stop.changed() => break,
            };
            // An expired version lists again at once; a failing API gets a pause.
            if again == Relist::Now {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = stop.changed() => break,
            }
        }
        for (_, e) in self.workers.drain() {
            let _ = e.task.await;
        }
    }

    async fn list_and_watch(&mut self, first: &mut bool) -> Relist {
        let api: Api<Pod> = Api::all(self.shared.client.clone());
        let selector = format!("spec.nodeName={}", self.shared.node);
        let list = match api.list(&ListParams::default().fields(&selector)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing this node's pods");
                return Relist::Later;
            }
        };
        let live: Vec<String> = list
            .items
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let stale: Vec<String> = self
            .workers
            .keys()
            .filter(|u| !live.contains(u))
            .cloned()
            .collect();
        for uid in stale {
            self.gone(&uid);
        }
        if std::mem::take(first) {
            // Containers of pods deleted while the agent was down.
            crate::terminate::remove_stale(self.shared.runtime.clone(), live).await;
        }
        for pod in list.items {
            self.dispatch(pod);
        }

        let mut version = list.metadata.resource_version.unwrap_or_default();
        loop {
            let params = WatchParams::default().fields(&selector).timeout(290);
            let mut stream = match api.watch(&params, &version).await {
                Ok(s) => s.boxed(),
                Err(kube::Error::Api(s)) if s.code == 410 => return Relist::Now,
                Err(e) => {
                    tracing::warn!(error = %e, "watching this node's pods");
                    return Relist::Later;
                }
            };
            while let Some(event) = stream.next().await {
                match event {
                    Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) => {
                        version = p.metadata.resource_version.clone().unwrap_or(version);
                        self.dispatch(p);
                    }
                    Ok(WatchEvent::Deleted(p)) => {
                        version = p.metadata.resource_version.clone().unwrap_or(version);
                        if let Some(uid) = &p.metadata.uid {
                            self.gone(uid);
                        }
                    }
                    Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                    Ok(WatchEvent::Error(s)) => {
                        tracing::debug!(code = s.code, message = %s.message, "watch ended");
                        return if s.code == 410 {
                            Relist::Now
                        } else {
                            Relist::Later
                        };
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "watch stream failed");
                        return Relist::Later;
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        self.workers.retain(|_, e| !e.task.is_finished());
        if let Some(e) = self.workers.get(&uid) {
            let _ = e.tx.send(Signal::Pod(Box::new(pod)));
            return;
        }
        let worker = PodWorker::new(self.shared.clone(), pod.clone());
        let (tx, rx) = watch::channel(Signal::Pod(Box::new(pod)));
        let task = tokio::spawn(worker.run(rx, self.stop.clone()));
        self.workers.insert(uid, Entry { tx, task });
    }

    fn gone(&mut self, uid: &str) {
        if let Some(e) = self.workers.get(uid) {
            let _ = e.tx.send(Signal::Gone);
        }
    }
}
