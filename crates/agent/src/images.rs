//! The agent's image manager: makes a container's image present as its
//! `imagePullPolicy` says, with the pod's pull secrets, posting the kubelet's events, and
//! backing off per pod and image after a failure.
//!
//! As in the kubelet, a failed pull makes the container wait with `ErrImagePull` and the
//! registry's error; while the back-off (10 s doubling to 300 s) runs it waits with
//! `ImagePullBackOff`, its message naming the last error; then the pull is tried again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::{EnsureOutcome, NoProgress, PullPolicy, Store};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Container, Pod, Secret, ServiceAccount};
use kube::api::Api;
use oci::Platform;
use oci::auth::DockerConfig;
use registry::ClientOptions;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::events::{PodEvent, Recorder};

/// Why a container waits for its image: the waiting reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWait {
    pub reason: String,
    pub message: String,
    /// When a pull may be tried again (the back-off's end), if it can be.
    pub retry_in: Option<Duration>,
}

pub struct ImageManager {
    store: Store,
    client: kube::Client,
    /// The node's own registry settings and credentials.
    options: ClientOptions,
    platform: Platform,
    backoff: Mutex<Backoff>,
    /// The last error per back-off key, for the `ImagePullBackOff` message.
    last_error: Mutex<HashMap<String, (Instant, String)>>,
    recorder: Arc<Recorder>,
}

impl ImageManager {
    pub fn new(
        store: Store,
        client: kube::Client,
        options: ClientOptions,
        recorder: Arc<Recorder>,
    ) -> Self {
        ImageManager {
            store,
            client,
            options,
            platform: Platform::host(),
            backoff: Mutex::new(Backoff::default()),
            last_error: Mutex::new(HashMap::new()),
            recorder,
        }
    }

    /// Makes `container`'s image present, or says why the container waits.
    pub async fn ensure(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<EnsureOutcome, ImageWait> {
        let begun = Instant::now();
        let image = container.image.clone().unwrap_or_default();
        let name = container.name.as_str();
        let policy = container
            .image_pull_policy
            .as_deref()
            .unwrap_or(podspec::default_pull_policy(&image));
        let policy: PullPolicy = policy.parse().map_err(|message| ImageWait {
            reason: "InvalidImageName".into(),
            message,
            retry_in: None,
        })?;

        // Present and not to be checked again: no pull, no back-off.
        if policy != PullPolicy::Always && self.present(&image) {
            let outcome = self.run_ensure(&image, policy, &self.options).await;
            if let Ok(o) = outcome {
                self.recorder
                    .record(pod, PodEvent::already_present(&image).about(name))
                    .await;
                return Ok(o);
            }
        }
        if policy == PullPolicy::Never {
            let message =
                format!("Container image {image:?} is not present with pull policy of Never");
            let event = PodEvent::never_pull(&image).about(name);
            self.recorder.record(pod, event).await;
            self.recorder
                .record(pod, PodEvent::error("ErrImageNeverPull").about(name))
                .await;
            return Err(ImageWait {
                reason: "ErrImageNeverPull".into(),
                message,
                retry_in: None,
            });
        }

        let key = format!(
            "{}/{image}",
            pod.metadata.uid.as_deref().unwrap_or_default()
        );
        let now = Instant::now();
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((failed_at, error)) = &last {
            let retry_at = self
                .backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retry_at(&key, *failed_at, now);
            if let Some(at) = retry_at {
                self.recorder
                    .record(pod, PodEvent::pull_backoff(&image).about(name))
                    .await;
                self.recorder
                    .record(pod, PodEvent::error("ImagePullBackOff").about(name))
                    .await;
                return Err(ImageWait {
                    reason: "ImagePullBackOff".into(),
                    message: format!("Back-off pulling image {image:?}: ErrImagePull: {error}"),
                    retry_in: Some(at.saturating_duration_since(now)),
                });
            }
        }

        self.recorder
            .record(pod, PodEvent::pulling(&image).about(name))
            .await;
        let options = match self.options_for(pod).await {
            Ok(o) => o,
            Err(message) => return Err(self.failed(pod, name, &key, message).await),
        };
        let pull_started = Instant::now();
        match self.run_ensure(&image, policy, &options).await {
            Ok(outcome) => {
                self.backoff
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .reset(&key);
                self.last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                let event = PodEvent::pulled(
                    &image,
                    pull_started.elapsed(),
                    begun.elapsed(),
                    outcome.size,
                );
                self.recorder.record(pod, event.about(name)).await;
                Ok(outcome)
            }
            Err((reason, message)) => {
                let mut wait = self.failed(pod, name, &key, message).await;
                if reason != "ErrImagePull" {
                    wait.reason = reason.into();
                }
                Err(wait)
            }
        }
    }

    async fn failed(&self, pod: &Pod, container: &str, key: &str, message: String) -> ImageWait {
        let now = Instant::now();
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(key, now);
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (now, message.clone()));
        self.recorder
            .record(pod, PodEvent::pull_failed(&message).about(container))
            .await;
        self.recorder
            .record(pod, PodEvent::error("ErrImagePull").about(container))
            .await;
        // The kubelet shows ErrImagePull until its next sync, then ImagePullBackOff.
        ImageWait {
            reason: "ErrImagePull".into(),
            message,
            retry_in: Some(Duration::from_secs(1)),
        }
    }

    fn present(&self, image: &str) -> bool {
        let Ok(reference) = oci::Reference::parse(image) else {
            return false;
        };
        matches!(self.store.get(&reference), Ok(Some(r)) if r.snapshots_present())
    }

    /// `image::ensure` with a registry client for `options`; errors as (reason, message).
    async fn run_ensure(
        &self,
        image: &str,
        policy: PullPolicy,
        options: &ClientOptions,
    ) -> Result<EnsureOutcome, (&'static str, String)> {
        let client = registry::Client::new(options.clone()).map_err(|e| {
            let message = format!("Failed to pull image {image:?}: {}", crate::chain(&e));
            ("ErrImagePull", message)
        })?;
        image::ensure(
            &self.store,
            &client,
            image,
            policy,
            &self.platform,
            &NoProgress,
        )
        .instrument(tracing::debug_span!("ensure", image))
        .await
        .map_err(|e| (e.reason(), e.to_string()))
    }

    /// The node's options with the pod's pull secrets, and its service account's, first.
    async fn options_for(&self, pod: &Pod) -> Result<ClientOptions, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let spec = pod.spec.clone().unwrap_or_default();
        let mut names: Vec<String> = spec
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        let sa_name = spec.service_account_name.as_deref().unwrap_or("default");
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        match sas.get_opt(sa_name).await {
            Ok(Some(sa)) => names.extend(
                sa.image_pull_secrets
                    .iter()
                    .flatten()
                    .map(|r| r.name.clone()),
            ),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "reading the service account's pull secrets"),
        }

        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut creds = DockerConfig::default();
        for name in names {
            let secret = match secrets.get_opt(&name).await {
                Ok(Some(s)) => s,
                // The kubelet goes on without a missing secret, and so does hoist.
                Ok(None) => {
                    tracing::warn!(secret = %name, "pull secret not found");
                    continue;
                }
                Err(e) => return Err(format!("reading the pull secret {name:?}: {e}")),
            };
            if let Some(c) = dockerconfig(&secret) {
                creds.merge_missing(&c);
            }
        }
        let mut options = self.options.clone();
        creds.merge_missing(&options.credentials);
        options.credentials = creds;
        Ok(options)
    }
}

/// The credentials of a `kubernetes.io/dockerconfigjson` secret.
pub fn dockerconfig(secret: &Secret) -> Option<DockerConfig> {
    if secret.type_.as_deref() != Some("kubernetes.io/dockerconfigjson") {
        return None;
    }
    let ByteString(bytes) = secret.data.as_ref()?.get(".dockerconfigjson")?;
    match DockerConfig::from_slice(bytes) {
        Ok(c) => Some(c),
        Err(e) => {
            let name = secret.metadata.name.as_deref().unwrap_or_default();
            tracing::warn!(secret = name, error = %e, "unreadable pull secret");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn secret(kind: &str, payload: &str) -> Secret {
        Secret {
            type_: Some(kind.into()),
            data: Some(BTreeMap::from([(
                ".dockerconfigjson".to_string(),
                ByteString(payload.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn dockerconfigjson_secrets_give_credentials_and_others_none() {
        let payload = r#"{"auths":{"reg.lan:5000":{"auth":"YWxpY2U6czNjcmV0"}}}"#;
        let c = dockerconfig(&secret("kubernetes.io/dockerconfigjson", payload)).unwrap();
        assert!(c.credentials_for("reg.lan:5000").is_some());
        assert!(c.credentials_for("docker.io").is_none());
        assert!(dockerconfig(&secret("Opaque", payload)).is_none());
        assert!(dockerconfig(&secret("kubernetes.io/dockerconfigjson", "not json")).is_none());
    }
}
