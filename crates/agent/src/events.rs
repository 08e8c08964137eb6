//! Events about pods, worded as the kubelet 1.33 words them, and the [`Recorder`] that
//! posts them to `core/v1` events.
//!
//! A repeat of an event already posted (same pod, container, reason, type and message)
//! bumps that event's `count` and `lastTimestamp` instead of making a new one, as the
//! kubelet's event correlator does. Events are best effort: a failure to post is logged
//! and otherwise ignored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::backoff::go_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event about a pod, or about one of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
    /// The container the event is about (`spec.containers{name}` in `involvedObject`).
    pub container: Option<String>,
}

impl PodEvent {
    fn new(kind: EventType, reason: &'static str, message: String) -> Self {
        PodEvent {
            kind,
            reason,
            message,
            container: None,
        }
    }

    /// The same event with another message.
    pub fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }

    /// The event about container `name`.
    pub fn about(mut self, name: &str) -> Self {
        self.container = Some(name.to_string());
        self
    }

    pub fn pulling(image: &str) -> Self {
        Self::new(
            EventType::Normal,
            "Pulling",
            format!("Pulling image {image:?}"),
        )
    }

    pub fn pulled(image: &str, pull: Duration, total: Duration, size: u64) -> Self {
        let message = format!(
            "Successfully pulled image {image:?} in {} ({} including waiting). \
             Image size: {size} bytes.",
            go_duration(pull),
            go_duration(total)
        );
        Self::new(EventType::Normal, "Pulled", message)
    }

    pub fn already_present(image: &str) -> Self {
        let message = format!("Container image {image:?} already present on machine");
        Self::new(EventType::Normal, "Pulled", message)
    }

    /// `message` is the pull error as the image service words it
    /// (`Failed to pull image "…": …`).
    pub fn pull_failed(message: &str) -> Self {
        Self::new(EventType::Warning, "Failed", message.to_string())
    }

    /// `Error: ErrImagePull`, `Error: ImagePullBackOff`, `Error: <start error>`.
    pub fn error(what: &str) -> Self {
        Self::new(EventType::Warning, "Failed", format!("Error: {what}"))
    }

    pub fn never_pull(image: &str) -> Self {
        let message = format!("Container image {image:?} is not present with pull policy of Never");
        Self::new(EventType::Warning, "ErrImageNeverPull", message)
    }

    pub fn sandbox_failed(error: &str) -> Self {
        let message = format!("Failed to create pod sandbox: {error}");
        Self::new(EventType::Warning, "FailedCreatePodSandBox", message)
    }

    pub fn pull_backoff(image: &str) -> Self {
        let message = format!("Back-off pulling image {image:?}");
        Self::new(EventType::Normal, "BackOff", message)
    }

    pub fn restart_backoff(container: &str, pod: &str, namespace: &str, uid: &str) -> Self {
        let message = format!(
            "Back-off restarting failed container {container} in pod {pod}_{namespace}({uid})"
        );
        Self::new(EventType::Warning, "BackOff", message)
    }

    pub fn created(container: &str) -> Self {
        Self::new(
            EventType::Normal,
            "Created",
            format!("Created container: {container}"),
        )
    }

    pub fn started(container: &str) -> Self {
        Self::new(
            EventType::Normal,
            "Started",
            format!("Started container {container}"),
        )
    }

    pub fn killing(container: &str) -> Self {
        Self::new(
            EventType::Normal,
            "Killing",
            format!("Stopping container {container}"),
        )
    }
}

/// The `fieldPath` the kubelet gives events about a container.
fn field_path(pod: &Pod, container: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

/// Builds the Event object posted for `event` (pure, for tests and the [`Recorder`]).
pub fn event_object(pod: &Pod, event: &PodEvent, host: &str, now: jiff::Timestamp) -> Event {
    let meta = &pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let nanos = now.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{nanos:x}")),
            namespace: meta.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: event.container.as_deref().map(|c| field_path(pod, c)),
        },
        reason: Some(event.reason.to_string()),
        message: Some(event.message.clone()),
        type_: Some(event.kind.as_str().to_string()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(host.to_string()),
        }),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(host.to_string()),
        ..Default::default()
    }
}

type Key = (String, Option<String>, &'static str, EventType, String);

/// Posts events, folding repeats into a count.
pub struct Recorder {
    client: kube::Client,
    host: String,
    /// Event name and count by what makes two events the same.
    seen: Mutex<HashMap<Key, (String, i32)>>,
}

impl Recorder {
    pub fn new(client: kube::Client, host: &str) -> Self {
        Recorder {
            client,
            host: host.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub async fn record(&self, pod: &Pod, event: PodEvent) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key: Key = (
            uid,
            event.container.clone(),
            event.reason,
            event.kind,
            event.message.clone(),
        );
        tracing::debug!(reason = event.reason, message = %event.message, "event");
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = jiff::Timestamp::now();

        let repeat = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "count": count + 1,
                "lastTimestamp": Time(now),
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count + 1);
                    return;
                }
                // Gone (expired, deleted): post it afresh.
                Err(e) => tracing::debug!(error = %e, "bumping the event's count"),
            }
        }

        let object = event_object(pod, &event, &self.host, now);
        let name = object.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => self.remember(key, name, 1),
            Err(e) => tracing::warn!(reason = event.reason, error = %e, "posting an event"),
        }
    }

    fn remember(&self, key: Key, name: String, count: i32) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // The kubelet's correlator keeps a bounded cache; so does this one, crudely.
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (name, count));
    }

    /// Forgets the events of a pod that is gone.
    pub fn forget(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k.0 != uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn wording_is_the_kubelets() {
        let d = Duration::from_millis;
        assert_eq!(
            PodEvent::pulling("busybox").message,
            "Pulling image \"busybox\""
        );
        assert_eq!(
            PodEvent::pulled("busybox", d(1234), d(1300), 2_156_826).message,
            "Successfully pulled image \"busybox\" in 1.234s (1.3s including waiting). \
             Image size: 2156826 bytes."
        );
        assert_eq!(
            PodEvent::already_present("busybox").message,
            "Container image \"busybox\" already present on machine"
        );
        assert_eq!(
            PodEvent::error("ErrImagePull").message,
            "Error: ErrImagePull"
        );
        assert_eq!(
            PodEvent::pull_backoff("busybox").message,
            "Back-off pulling image \"busybox\""
        );
        let b = PodEvent::restart_backoff("c", "p", "default", "u-1");
        assert_eq!(
            (b.reason, b.kind, b.message.as_str()),
            (
                "BackOff",
                EventType::Warning,
                "Back-off restarting failed container c in pod p_default(u-1)"
            )
        );
        assert_eq!(PodEvent::created("c").message, "Created container: c");
        assert_eq!(PodEvent::started("c").message, "Started container c");
        assert_eq!(PodEvent::killing("c").message, "Stopping container c");
    }

    #[test]
    fn event_object_names_the_container_and_the_node() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                init_containers: Some(vec![Container {
                    name: "setup".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let e = event_object(
            &pod,
            &PodEvent::started("setup").about("setup"),
            "node1",
            now,
        );
        let o = &e.involved_object;
        assert_eq!(o.field_path.as_deref(), Some("spec.initContainers{setup}"));
        assert_eq!(
            (o.kind.as_deref(), o.uid.as_deref()),
            (Some("Pod"), Some("u-1"))
        );
        assert_eq!(e.source.unwrap().host.as_deref(), Some("node1"));
        assert_eq!((e.count, e.type_.as_deref()), (Some(1), Some("Normal")));
        assert!(e.metadata.name.unwrap().starts_with("p."));
        let e = event_object(&pod, &PodEvent::killing("main").about("main"), "n", now);
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{main}")
        );
    }
}
