//! One pod's worker: the loop that brings the node in line with the pod as the API shows
//! it, and reports back.
//!
//! Each pass ([`PodWorker::sync`]) finds (or creates) the pod's sandbox, reads its
//! containers from the runtime, runs the init containers one after another to success,
//! then starts each app container, restarts those that exited as `restartPolicy` says
//! (with CrashLoopBackOff), and patches the pod's status when it changed. The worker
//! holds no state the runtime does not also keep, except back-off timers and waiting
//! reasons, so a restarted agent adopts running pods where it left them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, Patch, PatchParams};
use runtime::{ContainerRecord, ContainerRequest, ContainerStatus, SandboxConfig, SandboxRecord};
use tokio::sync::watch;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::events::PodEvent;
use crate::status::{self, ContainerView, Instance, PodView};
use crate::{Shared, blocking};

/// How often a pod with running containers is looked at (the runtime has no exit events).
const POLL: Duration = Duration::from_millis(500);
/// How often a pod with nothing to watch is looked at again.
const IDLE: Duration = Duration::from_secs(10);

/// What the dispatcher tells a worker.
#[derive(Debug, Clone)]
pub enum Signal {
    /// The pod as the API shows it now.
    Pod(Box<Pod>),
    /// The pod is gone from the API.
    Gone,
}

pub struct PodWorker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pod: Pod,
    pub(crate) uid: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) sandbox: Option<SandboxRecord>,
    crash: Backoff,
    /// Why a container waits, when the worker knows (image errors, CrashLoopBackOff).
    waiting: HashMap<String, (String, String)>,
    /// When each container instance was seen to start.
    started_at: HashMap<String, String>,
    /// The pod's containers by ID, once scanned (see [`PodWorker::instances`]).
    known: Option<HashMap<String, ContainerRecord>>,
    last_status: Option<serde_json::Value>,
}

impl PodWorker {
    pub fn new(shared: Arc<Shared>, pod: Pod) -> Self {
        let meta = &pod.metadata;
        PodWorker {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            shared,
            pod,
            sandbox: None,
            crash: Backoff::default(),
            waiting: HashMap::new(),
            started_at: HashMap::new(),
            known: None,
            last_status: None,
        }
    }

    /// Runs until the pod is deleted, gone, or `stop` is set (containers keep running).
    pub async fn run(mut self, mut rx: watch::Receiver<Signal>, mut stop: watch::Receiver<bool>) {
        let span = tracing::info_span!("pod", pod = %format!("{}/{}", self.namespace, self.name));
        async move {
            loop {
                let signal = rx.borrow_and_update().clone();
                match signal {
                    Signal::Gone => return self.gone().await,
                    Signal::Pod(pod) => self.pod = *pod,
                }
                if self.pod.metadata.deletion_timestamp.is_some() {
                    return self.terminate().await;
                }
                let wake = self.sync().await;
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(wake) => {}
                    _ = stop.changed() => return,
                }
            }
        }
        .instrument(span)
        .await
    }

    fn spec_containers(&self) -> (Vec<Container>, Vec<Container>) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        (spec.init_containers.unwrap_or_default(), spec.containers)
    }

    /// The runtime's containers of this pod by name, latest run last. The first call scans
    /// the data directory (adopting what an earlier agent started); later ones read only
    /// the records this worker knows, so a pass costs the same however many pods run.
    fn instances(&mut self) -> HashMap<String, Vec<(ContainerRecord, ContainerStatus)>> {
        let rt = self.shared.runtime.clone();
        let known = self.known.get_or_insert_with(|| {
            let mine = rt
                .list_containers()
                .into_iter()
                .filter(|c| c.pod_uid == self.uid);
            mine.map(|c| (c.id.clone(), c)).collect()
        });
        let mut by_name: HashMap<String, Vec<_>> = HashMap::new();
        let mut lost = Vec::new();
        for r in known.values() {
            let s = match rt.container_status(&r.id) {
                Ok(s) => s,
                Err(runtime::RuntimeError::NoContainer { .. }) => {
                    lost.push(r.id.clone());
                    continue;
                }
                Err(_) => continue,
            };
            if let ContainerStatus::Running { started_at, .. } = &s {
                self.started_at.insert(r.id.clone(), started_at.clone());
            }
            by_name
                .entry(r.name.clone())
                .or_default()
                .push((r.clone(), s));
        }
        for id in lost {
            known.remove(&id);
        }
        for list in by_name.values_mut() {
            list.sort_by_key(|(r, _)| r.restart);
        }
        by_name
    }

    fn instance(&self, (r, s): &(ContainerRecord, ContainerStatus)) -> Instance {
        Instance {
            id: r.id.clone(),
            image: r.image.clone(),
            image_id: r.image_id.clone(),
            status: s.clone(),
            started_at: self.started_at.get(&r.id).cloned(),
            created_at: r.created_at.clone(),
        }
    }

    /// One pass (see the module header); returns how long to wait before the next.
    pub async fn sync(&mut self) -> Duration {
        let terminal = matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if self.sandbox.is_none() {
            let adopted = self
                .shared
                .runtime
                .list_sandboxes()
                .into_iter()
                .find(|s| s.pod_uid == self.uid);
            if adopted.is_some() {
                tracing::debug!("adopted the pod's sandbox");
            }
            self.sandbox = adopted;
        }
        if self.sandbox.is_none() {
            if terminal {
                // Ended before (the data directory lost its sandbox): nothing runs again.
                return IDLE;
            }
            if let Err(e) = self.create_sandbox().await {
                let message = crate::chain(e.as_ref());
                tracing::warn!(error = %message, "creating the sandbox");
                let event = PodEvent::sandbox_failed(&message);
                self.shared.recorder.record(&self.pod, event).await;
                return IDLE;
            }
        }

        let mut wake = IDLE;
        let (init, app) = self.spec_containers();
        let mut instances = self.instances();
        let policy = status::restart_policy(&self.pod).to_string();

        let mut init_done = true;
        for c in &init {
            let latest = instances.get(&c.name).and_then(|l| l.last()).cloned();
            match latest.as_ref().map(|(_, s)| s) {
                Some(ContainerStatus::Exited { code: 0, .. }) => continue,
                Some(ContainerStatus::Exited { .. }) if policy == "Never" => {}
                Some(ContainerStatus::Exited { .. }) => {
                    wake = wake.min(self.restart(c, latest.as_ref()).await);
                }
                Some(ContainerStatus::Created) => {
                    wake = wake.min(self.retry_created(c, latest.as_ref()).await);
                }
                Some(_) => wake = POLL,
                None => wake = wake.min(self.start(c, 0, None).await),
            }
            init_done = false;
            break;
        }
        if init_done {
            for c in &app {
                let latest = instances.get(&c.name).and_then(|l| l.last()).cloned();
                match latest.as_ref().map(|(_, s)| s) {
                    None => wake = wake.min(self.start(c, 0, None).await),
                    Some(ContainerStatus::Exited { code, .. }) => {
                        let again = match policy.as_str() {
                            "Always" => true,
                            "OnFailure" => *code != 0,
                            _ => false,
                        };
                        if again {
                            wake = wake.min(self.restart(c, latest.as_ref()).await);
                        }
                    }
                    Some(ContainerStatus::Running { .. })
                        if latest
                            .as_ref()
                            .is_some_and(|(r, _)| Some(&r.image) != c.image.as_ref()) =>
                    {
                        wake = wake.min(self.replace(c, latest.as_ref()).await);
                    }
                    Some(ContainerStatus::Created) => {
                        wake = wake.min(self.retry_created(c, latest.as_ref()).await);
                    }
                    Some(_) => wake = POLL,
                }
            }
        }

        instances = self.instances();
        if instances.values().flatten().any(|(_, s)| !s.is_exited()) {
            wake = wake.min(POLL);
        }
        self.report(&init, &app, &instances).await;
        wake
    }

    async fn create_sandbox(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let cfg = SandboxConfig {
            pod_uid: self.uid.clone(),
            pod_name: self.name.clone(),
            namespace: self.namespace.clone(),
            hostname: spec.hostname.clone().unwrap_or_else(|| self.name.clone()),
            host_network: spec.host_network.unwrap_or(false),
            owner: None,
        };
        let rt = self.shared.runtime.clone();
        let record = blocking(move || rt.run_pod_sandbox(&cfg)).await?;
        tracing::debug!(sandbox = %record.id, "sandbox created");
        self.sandbox = Some(record);
        Ok(())
    }

    /// Restarts an exited container, unless its back-off still runs.
    async fn restart(
        &mut self,
        c: &Container,
        latest: Option<&(ContainerRecord, ContainerStatus)>,
    ) -> Duration {
        let Some((record, ContainerStatus::Exited { finished_at, .. })) = latest else {
            return POLL;
        };
        let now = Instant::now();
        let finished = instant_of(finished_at, now);
        let key = c.name.clone();
        if let Some(at) = self.crash.retry_at(&key, finished, now) {
            let delay = self.crash.delay(&key).unwrap_or_default();
            let message = format!(
                "back-off {} restarting failed container={} pod={}_{}({})",
                crate::backoff::go_duration(delay),
                c.name,
                self.name,
                self.namespace,
                self.uid
            );
            let first = self
                .waiting
                .get(&c.name)
                .is_none_or(|(r, _)| r != "CrashLoopBackOff");
            self.waiting
                .insert(c.name.clone(), ("CrashLoopBackOff".into(), message));
            if first {
                let event =
                    PodEvent::restart_backoff(&c.name, &self.name, &self.namespace, &self.uid);
                self.shared
                    .recorder
                    .record(&self.pod, event.about(&c.name))
                    .await;
            }
            return at
                .saturating_duration_since(now)
                .max(Duration::from_millis(50));
        }
        self.crash.next(&key, now);
        let restart = record.restart + 1;
        self.start(c, restart, Some(record.id.clone())).await
    }

    /// A container left created but never started (an agent stopped between the two
    /// steps, or a monitor that could not be spawned) is made again, under the same
    /// back-off as a crash so that a start that keeps failing does not spin.
    async fn retry_created(
        &mut self,
        c: &Container,
        latest: Option<&(ContainerRecord, ContainerStatus)>,
    ) -> Duration {
        let Some((record, _)) = latest else {
            return POLL;
        };
        let now = Instant::now();
        let since = instant_of(&record.created_at, now);
        if let Some(at) = self.crash.retry_at(&c.name, since, now) {
            return at.saturating_duration_since(now).max(POLL);
        }
        tracing::debug!(id = %record.id, "container created but never started: making it again");
        self.crash.next(&c.name, now);
        self.start(c, record.restart, None).await
    }

    /// Stops a running container whose spec changed (a new image, the one field of a pod's
    /// container that may change) and starts it anew, as the kubelet does.
    async fn replace(
        &mut self,
        c: &Container,
        latest: Option<&(ContainerRecord, ContainerStatus)>,
    ) -> Duration {
        let Some((record, _)) = latest else {
            return POLL;
        };
        let message = format!("Container {} definition changed, will be restarted", c.name);
        let event = PodEvent::killing(&c.name).with_message(message);
        self.shared
            .recorder
            .record(&self.pod, event.about(&c.name))
            .await;
        let rt = self.shared.runtime.clone();
        let (id, grace) = (record.id.clone(), self.grace());
        if let Err(e) = blocking(move || rt.stop_container(&id, grace)).await {
            tracing::warn!(error = %crate::chain(&e), "stopping the changed container");
        }
        self.start(c, record.restart + 1, Some(record.id.clone()))
            .await
    }

    /// Ensures the image, then creates and starts run number `restart` of `c`.
    async fn start(&mut self, c: &Container, restart: u32, replaces: Option<String>) -> Duration {
        let image = c.image.as_deref().unwrap_or_default();
        let span = tracing::debug_span!("container", container = %c.name, image);
        self.start_inner(c, restart, replaces)
            .instrument(span)
            .await
    }

    async fn start_inner(
        &mut self,
        c: &Container,
        restart: u32,
        replaces: Option<String>,
    ) -> Duration {
        let outcome = match self.shared.images.ensure(&self.pod, c).await {
            Ok(o) => o,
            Err(wait) => {
                self.waiting
                    .insert(c.name.clone(), (wait.reason, wait.message));
                return wait.retry_in.unwrap_or(IDLE).max(POLL);
            }
        };
        self.waiting.remove(&c.name);
        let Some(sandbox) = self.sandbox.clone() else {
            return POLL;
        };

        // Keep one earlier run (the `previous` log and lastState), as the kubelet does.
        let known = self.known.get_or_insert_with(HashMap::new);
        let older: Vec<String> = known
            .values()
            .filter(|r| r.name == c.name && Some(&r.id) != replaces.as_ref())
            .map(|r| r.id.clone())
            .collect();
        for id in &older {
            known.remove(id);
        }
        let rt = self.shared.runtime.clone();
        let removed = blocking(move || older.iter().try_for_each(|id| rt.remove_container(id)));
        if let Err(e) = removed.await {
            tracing::warn!(error = %crate::chain(&e), "removing an earlier run");
        }

        let rt = self.shared.runtime.clone();
        let (pod, container) = (self.pod.clone(), c.clone());
        let created = blocking(move || {
            let config = outcome.record.config().map_err(|e| e.to_string())?;
            let image = container.image.clone().unwrap_or_default();
            let req = ContainerRequest {
                sandbox: &sandbox,
                pod: &pod,
                container: &container,
                image: &image,
                image_id: &outcome.record.config_digest.to_string(),
                image_config: &config,
                lowers: &outcome.record.lower_dirs(),
                restart,
            };
            let record = rt.create_container(&req).map_err(|e| crate::chain(&e))?;
            Ok::<_, String>(record)
        })
        .await;
        let record = match created {
            Ok(r) => r,
            Err(message) => {
                tracing::warn!(error = %message, "creating the container");
                let event = PodEvent::error(&message).about(&c.name);
                self.shared.recorder.record(&self.pod, event).await;
                self.waiting
                    .insert(c.name.clone(), ("CreateContainerError".into(), message));
                return IDLE;
            }
        };
        self.known
            .get_or_insert_with(HashMap::new)
            .insert(record.id.clone(), record.clone());
        self.prune_logs(c, restart);
        let event = PodEvent::created(&c.name).about(&c.name);
        self.shared.recorder.record(&self.pod, event).await;

        let rt = self.shared.runtime.clone();
        let id = record.id.clone();
        match blocking(move || rt.start_container(&id)).await {
            Ok(()) => {
                let event = PodEvent::started(&c.name).about(&c.name);
                self.shared.recorder.record(&self.pod, event).await;
            }
            Err(e) => {
                let message = crate::chain(&e);
                tracing::warn!(error = %message, "starting the container");
                let event = PodEvent::error(&message).about(&c.name);
                self.shared.recorder.record(&self.pod, event).await;
            }
        }
        POLL
    }

    /// Removes the log files (rotated ones too) of runs older than the previous one.
    fn prune_logs(&self, c: &Container, restart: u32) {
        let dir = self
            .shared
            .runtime
            .pod_log_dir(&self.namespace, &self.name, &self.uid)
            .join(&c.name);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let run = name
                .split_once(".log")
                .and_then(|(n, _)| n.parse::<u32>().ok());
            if run.is_some_and(|n| n + 1 < restart) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn view(
        &self,
        c: &Container,
        instances: &HashMap<String, Vec<(ContainerRecord, ContainerStatus)>>,
    ) -> ContainerView {
        let runs = instances
            .get(&c.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let current = runs.last().map(|i| self.instance(i));
        let previous = runs.len().checked_sub(2).map(|i| self.instance(&runs[i]));
        ContainerView {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            restart_count: runs.last().map_or(0, |(r, _)| r.restart as i32),
            current,
            previous,
            waiting: self.waiting.get(&c.name).cloned(),
        }
    }

    /// Patches the pod's status when it changed since the last patch.
    async fn report(
        &mut self,
        init: &[Container],
        app: &[Container],
        instances: &HashMap<String, Vec<(ContainerRecord, ContainerStatus)>>,
    ) {
        let init: Vec<_> = init.iter().map(|c| self.view(c, instances)).collect();
        let app: Vec<_> = app.iter().map(|c| self.view(c, instances)).collect();
        let status = status::build(&PodView {
            pod: &self.pod,
            init: &init,
            containers: &app,
            sandbox_ready: self.sandbox.is_some(),
            host_ip: crate::HOST_IP,
            // The pod's own network namespace has only `lo`: no routable pod IP yet, so
            // the pod reports the node's loopback address, as a hostNetwork pod would.
            pod_ip: Some(crate::HOST_IP),
            now: jiff::Timestamp::now(),
        });
        let json = serde_json::to_value(&status).unwrap_or_default();
        if self.last_status.as_ref() == Some(&json) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let patch = serde_json::json!({ "status": json });
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(pod) => {
                self.pod.status = pod.status;
                self.last_status = Some(json);
            }
            Err(e) => tracing::warn!(error = %e, "patching the pod status"),
        }
    }
}

/// The monotonic instant of an RFC 3339 time, counted back from `now`.
fn instant_of(rfc3339: &str, now: Instant) -> Instant {
    let Ok(t) = rfc3339.parse::<jiff::Timestamp>() else {
        return now;
    };
    let ago = jiff::Timestamp::now().duration_since(t);
    let ago = Duration::try_from(ago).unwrap_or(Duration::ZERO);
    now.checked_sub(ago).unwrap_or(now)
}
