//! Defaulting of a Pod, as the API server's v1 defaulters (`SetDefaults_Pod`,
//! `SetDefaults_PodSpec`, `SetDefaults_Container` and those of the nested types) fill in
//! what a manifest leaves out, so that `kubectl get pod -o yaml` against hoist shows what
//! it shows against a cluster.
//!
//! Admission plugins (the service account token volume, the default not-ready tolerations,
//! `priority`) are not defaulting and are not done here; the API server owns them.

use crate::quantity::Quantity;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSecurityContext, PodSpec, Probe, Volume,
};

/// Mode 0644, the API server's default for secret, config map, downward API and projected
/// volume files.
const DEFAULT_MODE: i32 = 0o644;

/// The pull policy the API server gives a container that sets none: `Always` for an image
/// tagged `latest` or with neither tag nor digest, `IfNotPresent` otherwise (a digest, or
/// another tag). As in Kubernetes, `name:latest@sha256:…` counts as tagged `latest`, and an
/// image that does not parse gets `IfNotPresent` (validation refuses it anyway).
pub fn default_pull_policy(image: &str) -> &'static str {
    match oci::Reference::parse(image) {
        Ok(r) if r.tag() == Some("latest") => "Always",
        _ => "IfNotPresent",
    }
}

/// Fills in every default the API server fills in.
pub fn apply(pod: &mut Pod) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    pod_spec(spec);
}

fn set<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn set_str(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value.to_string());
    }
}

fn pod_spec(spec: &mut PodSpec) {
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.restart_policy, "Always");
    set(&mut spec.termination_grace_period_seconds, 30);
    set(&mut spec.security_context, PodSecurityContext::default());
    set_str(&mut spec.scheduler_name, "default-scheduler");
    set(&mut spec.enable_service_links, true);

    let host_network = spec.host_network == Some(true);
    for c in spec.init_containers.iter_mut().flatten() {
        container(c, host_network);
    }
    for c in spec.containers.iter_mut() {
        container(c, host_network);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
}

fn container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = default_pull_policy(c.image.as_deref().unwrap_or(""));
        c.image_pull_policy = Some(policy.to_string());
    }
    set_str(&mut c.termination_message_path, "/dev/termination-log");
    set_str(&mut c.termination_message_policy, "File");

    for p in c.ports.iter_mut().flatten() {
        set_str(&mut p.protocol, "TCP");
        // With the host's network, the container's port is the host's port.
        if host_network && p.host_port.unwrap_or(0) == 0 {
            p.host_port = Some(p.container_port);
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_str(&mut f.api_version, "v1");
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ] {
        if let Some(p) = probe.as_mut() {
            self::probe(p);
        }
    }

    // Requests default to the limits for each resource that has a limit and no request.
    if let Some(r) = c.resources.as_mut()
        && let Some(limits) = &r.limits
    {
        let requests = r.requests.get_or_insert_with(Default::default);
        for (k, v) in limits {
            requests.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

fn probe(p: &mut Probe) {
    set(&mut p.timeout_seconds, 1);
    set(&mut p.period_seconds, 10);
    set(&mut p.success_threshold, 1);
    set(&mut p.failure_threshold, 3);
    if let Some(h) = p.http_get.as_mut() {
        set_str(&mut h.path, "/");
        set_str(&mut h.scheme, "HTTP");
    }
}

fn volume(v: &mut Volume) {
    // A volume that names no source is an emptyDir.
    let has_source =
        matches!(serde_json::to_value(&*v), Ok(serde_json::Value::Object(m)) if m.len() > 1);
    if !has_source {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(s) = v.secret.as_mut() {
        set(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        set(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        set(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(s) = v.projected.as_mut() {
        set(&mut s.default_mode, DEFAULT_MODE);
        for src in s.sources.iter_mut().flatten() {
            if let Some(t) = src.service_account_token.as_mut() {
                set(&mut t.expiration_seconds, 3600);
            }
        }
    }
    if let Some(h) = v.host_path.as_mut() {
        set(&mut h.type_, String::new());
    }
}

/// The pod's quality-of-service class, as the API server records it in `status.qosClass`:
/// `Guaranteed` when every container has CPU and memory limits equal to its requests,
/// `BestEffort` when no container requests or limits CPU or memory, `Burstable` otherwise.
/// Call it on a defaulted Pod (requests default to limits).
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        let limits = r.and_then(|r| r.limits.as_ref());
        let requests = r.and_then(|r| r.requests.as_ref());
        for name in ["cpu", "memory"] {
            let lim = limits
                .and_then(|m| m.get(name))
                .and_then(|q| Quantity::parse(&q.0).ok());
            let req = requests
                .and_then(|m| m.get(name))
                .and_then(|q| Quantity::parse(&q.0).ok());
            any |= lim.is_some_and(|q| q.millis() != 0) || req.is_some_and(|q| q.millis() != 0);
            match (lim, req) {
                (Some(l), Some(q)) if l.millis() == q.millis() => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("127.0.0.1:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(
            default_pull_policy("127.0.0.1:5000/busybox:1.36"),
            "IfNotPresent"
        );
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(default_pull_policy(&digest), "IfNotPresent");
        let both = format!("busybox:latest@sha256:{}", "a".repeat(64));
        assert_eq!(
            default_pull_policy(&both),
            "Always",
            "Kubernetes keys on the tag alone"
        );
    }

    fn pod_with(resources: serde_json::Value) -> Pod {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "q"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
        }))
        .unwrap();
        apply(&mut pod);
        pod
    }

    #[test]
    fn qos_classes() {
        let none = pod_with(serde_json::json!({}));
        assert_eq!(qos_class(&none), "BestEffort");
        let limits = pod_with(serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}}));
        assert_eq!(
            qos_class(&limits),
            "Guaranteed",
            "requests default to limits"
        );
        let some = pod_with(serde_json::json!({"requests": {"cpu": "100m"}}));
        assert_eq!(qos_class(&some), "Burstable");
    }
}
