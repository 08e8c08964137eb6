//! The end of a pod on this node: graceful termination when the API marks it deleted, and
//! clean-up when it vanished from the API without that.
//!
//! As the kubelet does, a pod with a `deletionTimestamp` gets its running containers
//! stopped (SIGTERM, then SIGKILL after the grace period, with a `Killing` event each),
//! its sandbox and logs removed, and is then deleted with `gracePeriodSeconds=0` (and a
//! UID precondition, so a new pod of the same name is never touched), which lets the API
//! server remove it for good.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use runtime::ContainerStatus;

use crate::blocking;
use crate::events::PodEvent;
use crate::worker::PodWorker;

/// The kubelet's default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: i64 = 30;
/// The grace given to containers of a pod that vanished from the API.
const GONE_GRACE: Duration = Duration::from_secs(2);

impl PodWorker {
    pub(crate) fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE);
        Duration::from_secs(secs.max(0) as u64)
    }

    /// Stops the pod's containers with its grace period, removes what it left, and
    /// deletes it from the API.
    pub(crate) async fn terminate(mut self) {
        let grace = self.grace();
        let running: Vec<_> = self
            .shared
            .runtime
            .list_containers()
            .into_iter()
            .filter(|c| c.pod_uid == self.uid)
            .filter(|c| {
                matches!(
                    self.shared.runtime.container_status(&c.id),
                    Ok(ContainerStatus::Running { .. })
                )
            })
            .collect();
        for c in &running {
            let event = PodEvent::killing(&c.name).about(&c.name);
            self.shared.recorder.record(&self.pod, event).await;
        }
        let stops = running.into_iter().map(|c| {
            let rt = self.shared.runtime.clone();
            blocking(move || rt.stop_container(&c.id, grace))
        });
        for r in futures_util::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %crate::chain(&e), "stopping a container");
            }
        }
        self.remove_everything(Duration::ZERO).await;

        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => tracing::debug!("pod deleted"),
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => {}
            Err(e) => tracing::warn!(error = %e, "deleting the pod"),
        }
        self.shared.recorder.forget(&self.uid);
        self.sandbox = None;
    }

    /// The pod left the API without a graceful deletion (forced, or while the agent was
    /// down): its containers get a short grace, then everything goes.
    pub(crate) async fn gone(mut self) {
        tracing::debug!("pod gone from the API; removing its sandbox");
        self.remove_everything(GONE_GRACE).await;
        self.shared.recorder.forget(&self.uid);
    }

    async fn remove_everything(&mut self, grace: Duration) {
        let rt = self.shared.runtime.clone();
        let uid = self.uid.clone();
        let (ns, name) = (self.namespace.clone(), self.name.clone());
        let removed = blocking(move || {
            for s in rt.list_sandboxes().into_iter().filter(|s| s.pod_uid == uid) {
                rt.remove_pod_sandbox(s.id.as_str(), grace)?;
            }
            // Containers whose sandbox went first (a crash midway through a removal).
            for c in rt
                .list_containers()
                .into_iter()
                .filter(|c| c.pod_uid == uid)
            {
                rt.remove_container(&c.id)?;
            }
            rt.remove_pod_logs(&ns, &name, &uid);
            Ok::<_, runtime::RuntimeError>(())
        })
        .await;
        if let Err(e) = removed {
            tracing::warn!(error = %crate::chain(&e), "removing the pod's sandbox");
        }
        self.sandbox = None;
    }
}

/// Removes the sandboxes (and containers) of pods that are no longer in the API, as found
/// at the agent's start. Sandboxes with an owner process (`hoist run`'s) are left alone.
pub(crate) async fn remove_stale(rt: std::sync::Arc<runtime::Runtime>, live: Vec<String>) {
    let removed = blocking(move || {
        let mut n = 0;
        for s in rt.list_sandboxes() {
            if s.owner.is_some() || live.contains(&s.pod_uid) {
                continue;
            }
            rt.remove_pod_sandbox(s.id.as_str(), GONE_GRACE)?;
            rt.remove_pod_logs(&s.namespace, &s.pod_name, &s.pod_uid);
            n += 1;
        }
        Ok::<_, runtime::RuntimeError>(n)
    })
    .await;
    match removed {
        Ok(0) => {}
        Ok(n) => tracing::info!(sandboxes = n, "removed the sandboxes of pods that are gone"),
        Err(e) => tracing::warn!(error = %crate::chain(&e), "removing stale sandboxes"),
    }
}
