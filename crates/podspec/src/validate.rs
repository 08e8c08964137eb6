//! Validation of a typed Pod, as the API server's `ValidatePodCreate` does it.
//!
//! Every check runs and every problem is returned, each with the API server's wording
//! where it has one, and with a proposed fix where one can be derived (a valid name made
//! from the bad one, the nearest supported value). The Pod spec's path is a parameter
//! because a spec written under `metadata` is still validated, under its real path.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde_json::Value;

use crate::error::{ErrorKind, FieldError};
use crate::names;
use crate::quantity::Quantity;
use crate::strict::{child, index};

/// Splits `s` into the value and a trailing note such as `-----------> 1`, the way the
/// tutorial annotates its lines; `None` when there is no such note.
pub fn split_note(s: &str) -> Option<(&str, &str)> {
    let arrow = s.find("->")?;
    let start = s[..arrow].trim_end_matches('-').len();
    let head = s[..start].trim_end();
    (!head.is_empty()).then(|| (head, s[head.len()..].trim()))
}

fn note_fix(s: &str, proposal: Option<String>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some((_, note)) = split_note(s) {
        parts.push(format!(
            "{note:?} is part of the value: YAML reads a plain value to the end of the line, so \
             write notes as comments after \" #\""
        ));
    }
    if let Some(p) = proposal {
        parts.push(format!("try {p:?}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What to check beyond the API server's own checks.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Refuse an image that is not a valid reference. The API server accepts any string
    /// and the kubelet later fails the container with `InvalidImageName`; checking up
    /// front names the mistake before anything runs.
    pub image_references: bool,
}

/// Validates `pod`, with its spec at `spec_path` (`spec` unless it was misplaced).
pub fn validate(pod: &Pod, spec_path: &str, checks: Checks) -> Vec<FieldError> {
    let mut v = Validator {
        errors: Vec::new(),
        checks,
    };
    v.metadata(pod);
    match &pod.spec {
        Some(spec) => v.spec(spec, spec_path),
        None => v.errors.push(FieldError::required("spec", "")),
    }
    v.errors
}

struct Validator {
    errors: Vec<FieldError>,
    checks: Checks,
}

impl Validator {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn metadata(&mut self, pod: &Pod) {
        let m = &pod.metadata;
        let name = m.name.as_deref().unwrap_or("");
        let generate = m.generate_name.as_deref().unwrap_or("");
        if name.is_empty() && generate.is_empty() {
            self.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        if !name.is_empty() {
            for problem in names::dns1123_subdomain_problems(name) {
                let base = split_note(name).map_or(name, |(h, _)| h);
                let fix = note_fix(name, names::suggest_name(base));
                let mut e = FieldError::invalid("metadata.name", name, problem);
                e.fix = fix;
                self.push(e);
            }
        }
        if !generate.is_empty() {
            // The API server validates the prefix with its trailing dashes masked.
            let prefix = generate.trim_end_matches('-');
            if !prefix.is_empty() {
                for problem in names::dns1123_subdomain_problems(prefix) {
                    self.push(FieldError::invalid(
                        "metadata.generateName",
                        generate,
                        problem,
                    ));
                }
            }
        }
        if let Some(ns) = m.namespace.as_deref().filter(|n| !n.is_empty()) {
            for problem in names::dns1123_label_problems(ns) {
                let fix = names::suggest_label(ns).map(|s| format!("try {s:?}"));
                let mut e = FieldError::invalid("metadata.namespace", ns, problem);
                e.fix = fix;
                self.push(e);
            }
        }
        if let Some(labels) = &m.labels {
            self.label_map(labels, "metadata.labels");
        }
        if let Some(annotations) = &m.annotations {
            for k in annotations.keys() {
                for problem in names::qualified_name_problems(k) {
                    self.push(FieldError::invalid(
                        "metadata.annotations",
                        k.as_str(),
                        problem,
                    ));
                }
            }
        }
    }

    fn label_map(&mut self, labels: &std::collections::BTreeMap<String, String>, path: &str) {
        for (k, val) in labels {
            for problem in names::qualified_name_problems(k) {
                self.push(FieldError::invalid(path, k.as_str(), problem));
            }
            for problem in names::label_value_problems(val) {
                self.push(FieldError::invalid(
                    format!("{path}[{k}]"),
                    val.as_str(),
                    problem,
                ));
            }
        }
    }

    fn spec(&mut self, spec: &PodSpec, sp: &str) {
        let volumes = self.volumes(spec, sp);
        if spec.containers.is_empty() {
            self.push(FieldError::required(child(sp, "containers"), ""));
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let init = spec.init_containers.as_deref().unwrap_or(&[]);
        for (i, c) in init.iter().enumerate() {
            let p = index(&child(sp, "initContainers"), i);
            self.container(c, &p, true, &volumes, &mut seen, spec);
        }
        for (i, c) in spec.containers.iter().enumerate() {
            let p = index(&child(sp, "containers"), i);
            self.container(c, &p, false, &volumes, &mut seen, spec);
        }

        if let Some(rp) = spec.restart_policy.as_deref() {
            self.one_of(
                &child(sp, "restartPolicy"),
                rp,
                &["Always", "OnFailure", "Never"],
            );
        }
        let dns = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
        if let Some(dp) = spec.dns_policy.as_deref() {
            self.one_of(&child(sp, "dnsPolicy"), dp, &dns);
            if dp == "None" && spec.dns_config.is_none() {
                let msg = "must provide `dnsConfig` when `dnsPolicy` is None";
                self.push(FieldError::required(child(sp, "dnsConfig"), msg));
            }
        }
        if let Some(t) = spec.termination_grace_period_seconds
            && t < 0
        {
            let msg = "must be greater than or equal to 0";
            self.push(FieldError::invalid(
                child(sp, "terminationGracePeriodSeconds"),
                t,
                msg,
            ));
        }
        if let Some(t) = spec.active_deadline_seconds
            && !(1..=i64::from(i32::MAX)).contains(&t)
        {
            let msg = "must be between 1 and 2147483647, inclusive";
            self.push(FieldError::invalid(
                child(sp, "activeDeadlineSeconds"),
                t,
                msg,
            ));
        }
        for (field, val) in [
            ("serviceAccountName", spec.service_account_name.as_deref()),
            ("nodeName", spec.node_name.as_deref()),
        ] {
            if let Some(val) = val.filter(|s| !s.is_empty()) {
                for problem in names::dns1123_subdomain_problems(val) {
                    let mut e = FieldError::invalid(child(sp, field), val, problem);
                    e.fix = names::suggest_name(val).map(|s| format!("try {s:?}"));
                    self.push(e);
                }
            }
        }
        for (field, val) in [
            ("hostname", spec.hostname.as_deref()),
            ("subdomain", spec.subdomain.as_deref()),
        ] {
            if let Some(val) = val.filter(|s| !s.is_empty()) {
                for problem in names::dns1123_label_problems(val) {
                    self.push(FieldError::invalid(child(sp, field), val, problem));
                }
            }
        }
        if let Some(sel) = &spec.node_selector {
            self.label_map(sel, &child(sp, "nodeSelector"));
        }
        for (i, t) in spec.tolerations.iter().flatten().enumerate() {
            let p = index(&child(sp, "tolerations"), i);
            if let Some(op) = t.operator.as_deref() {
                self.one_of(&child(&p, "operator"), op, &["Exists", "Equal"]);
                if op == "Exists" && t.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    let msg = "value must be empty when `operator` is 'Exists'";
                    self.push(FieldError::invalid(child(&p, "operator"), op, msg));
                }
            }
            if let Some(eff) = t.effect.as_deref().filter(|e| !e.is_empty()) {
                self.one_of(
                    &child(&p, "effect"),
                    eff,
                    &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                );
            }
        }
        if let Some(sc) = &spec.security_context {
            for (field, id) in [
                ("runAsUser", sc.run_as_user),
                ("runAsGroup", sc.run_as_group),
                ("fsGroup", sc.fs_group),
            ] {
                self.id(&child(&child(sp, "securityContext"), field), id);
            }
        }
    }

    fn volumes(&mut self, spec: &PodSpec, sp: &str) -> HashSet<String> {
        let mut names = HashSet::new();
        for (i, vol) in spec.volumes.iter().flatten().enumerate() {
            let p = index(&child(sp, "volumes"), i);
            if vol.name.is_empty() {
                self.push(FieldError::required(child(&p, "name"), ""));
            } else {
                for problem in names::dns1123_label_problems(&vol.name) {
                    let mut e = FieldError::invalid(child(&p, "name"), vol.name.as_str(), problem);
                    e.fix = names::suggest_label(&vol.name).map(|s| format!("try {s:?}"));
                    self.push(e);
                }
                if !names.insert(vol.name.clone()) {
                    let e = FieldError::new(child(&p, "name"), ErrorKind::Duplicate, "")
                        .with_value(vol.name.as_str());
                    self.push(e);
                }
            }
            let sources = match serde_json::to_value(vol) {
                Ok(Value::Object(m)) => m.keys().filter(|k| *k != "name").count(),
                _ => 0,
            };
            if sources > 1 {
                self.push(FieldError::new(
                    p,
                    ErrorKind::Forbidden,
                    "may not specify more than 1 volume type",
                ));
            }
        }
        names
    }

    #[allow(clippy::too_many_arguments)]
    fn container(
        &mut self,
        c: &Container,
        p: &str,
        init: bool,
        volumes: &HashSet<String>,
        seen: &mut HashMap<String, String>,
        spec: &PodSpec,
    ) {
        let np = child(p, "name");
        if c.name.is_empty() {
            self.push(FieldError::required(&np, ""));
        } else {
            for problem in names::dns1123_label_problems(&c.name) {
                let base = split_note(&c.name).map_or(c.name.as_str(), |(h, _)| h);
                let mut e = FieldError::invalid(&np, c.name.as_str(), problem);
                e.fix = note_fix(&c.name, names::suggest_label(base));
                self.push(e);
            }
            if let Some(first) = seen.get(&c.name) {
                let e = FieldError::new(
                    &np,
                    ErrorKind::Duplicate,
                    format!("{first} has the same name"),
                )
                .with_value(c.name.as_str())
                .with_fix("container names must be unique within the pod: rename one");
                self.push(e);
            } else {
                seen.insert(c.name.clone(), np.clone());
            }
        }

        let ip = child(p, "image");
        match c.image.as_deref() {
            None | Some("") => self.push(FieldError::required(&ip, "")),
            Some(image) if image.trim() != image => {
                let msg = "must not have leading or trailing whitespace";
                self.push(
                    FieldError::invalid(&ip, image, msg)
                        .with_fix(format!("try {:?}", image.trim())),
                );
            }
            Some(image) if self.checks.image_references => {
                if let Err(err) = oci::Reference::parse(image) {
                    let mut e = FieldError::invalid(
                        &ip,
                        image,
                        format!("not a valid image reference: {err}"),
                    );
                    let placeholder = image.contains('<') && image.contains('>');
                    e.fix = note_fix(image, None);
                    if placeholder {
                        let hint = "`<...>` looks like a placeholder: put an image's name there, \
                                    e.g. \"busybox:1.36\"";
                        e.fix = Some(e.fix.map_or(hint.to_string(), |f| format!("{f}; {hint}")));
                    }
                    e.fix = e.fix.or(Some(
                        "name an image as a registry would, e.g. \"busybox:1.36\" or \
                         \"registry.example:5000/team/app@sha256:...\""
                            .into(),
                    ));
                    self.push(e);
                }
            }
            Some(_) => {}
        }
        if let Some(pol) = c.image_pull_policy.as_deref() {
            self.one_of(
                &child(p, "imagePullPolicy"),
                pol,
                &["Always", "IfNotPresent", "Never"],
            );
        }
        if let Some(pol) = c.termination_message_policy.as_deref() {
            self.one_of(
                &child(p, "terminationMessagePolicy"),
                pol,
                &["File", "FallbackToLogsOnError"],
            );
        }
        if let Some(rp) = c.restart_policy.as_deref() {
            let rpp = child(p, "restartPolicy");
            if init {
                self.one_of(&rpp, rp, &["Always"]);
            } else {
                let msg = "may not be set for non-init containers";
                self.push(FieldError::new(rpp, ErrorKind::Forbidden, msg));
            }
        }

        self.ports(c, p, spec.host_network == Some(true));
        for (field, probe) in [
            ("livenessProbe", &c.liveness_probe),
            ("readinessProbe", &c.readiness_probe),
            ("startupProbe", &c.startup_probe),
        ] {
            if let Some(pr) = probe {
                self.probe(&child(p, field), pr);
                let liveish = field != "readinessProbe";
                if liveish && pr.success_threshold.is_some_and(|v| v != 1) {
                    let v = pr.success_threshold.unwrap_or(1);
                    let e = FieldError::invalid(
                        child(&child(p, field), "successThreshold"),
                        v,
                        "must be 1",
                    );
                    self.push(e);
                }
            }
        }
        self.env(c, p);
        self.mounts(c, p, volumes);
        self.resources(c, p);
        if let Some(sc) = &c.security_context {
            for (field, id) in [
                ("runAsUser", sc.run_as_user),
                ("runAsGroup", sc.run_as_group),
            ] {
                self.id(&child(&child(p, "securityContext"), field), id);
            }
        }
    }

    fn ports(&mut self, c: &Container, p: &str, host_network: bool) {
        let mut names = HashSet::new();
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let pp = index(&child(p, "ports"), i);
            if port.container_port == 0 {
                self.push(FieldError::required(child(&pp, "containerPort"), ""));
            } else if !(1..=65535).contains(&port.container_port) {
                let msg = "must be between 1 and 65535, inclusive";
                self.push(FieldError::invalid(
                    child(&pp, "containerPort"),
                    port.container_port,
                    msg,
                ));
            }
            if let Some(hp) = port.host_port {
                if !(0..=65535).contains(&hp) {
                    let msg = "must be between 0 and 65535, inclusive";
                    self.push(FieldError::invalid(child(&pp, "hostPort"), hp, msg));
                } else if host_network && hp != 0 && hp != port.container_port {
                    let msg = "must match `containerPort` when `hostNetwork` is true";
                    self.push(FieldError::invalid(child(&pp, "hostPort"), hp, msg));
                }
            }
            if let Some(proto) = port.protocol.as_deref() {
                self.one_of(&child(&pp, "protocol"), proto, &["SCTP", "TCP", "UDP"]);
            }
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                for problem in names::port_name_problems(name) {
                    self.push(FieldError::invalid(child(&pp, "name"), name, problem));
                }
                if !names.insert(name) {
                    self.push(
                        FieldError::new(child(&pp, "name"), ErrorKind::Duplicate, "")
                            .with_value(name),
                    );
                }
            }
        }
    }

    fn env(&mut self, c: &Container, p: &str) {
        for (i, env) in c.env.iter().flatten().enumerate() {
            let ep = index(&child(p, "env"), i);
            if env.name.is_empty() {
                self.push(FieldError::required(child(&ep, "name"), ""));
            } else if let Some(problem) = names::env_var_name_problem(&env.name) {
                self.push(FieldError::invalid(
                    child(&ep, "name"),
                    env.name.as_str(),
                    problem,
                ));
            }
            if let Some(from) = &env.value_from {
                let n = [
                    from.field_ref.is_some(),
                    from.resource_field_ref.is_some(),
                    from.config_map_key_ref.is_some(),
                    from.secret_key_ref.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                let vp = child(&ep, "valueFrom");
                if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    let msg = "may not be specified when `value` is not empty";
                    self.push(FieldError::new(&vp, ErrorKind::Invalid, msg));
                }
                if n == 0 {
                    let msg = "must specify one of: `fieldRef`, `resourceFieldRef`, \
                               `configMapKeyRef` or `secretKeyRef`";
                    self.push(FieldError::new(&vp, ErrorKind::Invalid, msg));
                } else if n > 1 {
                    let msg = "may not have more than one field specified at a time";
                    self.push(FieldError::new(&vp, ErrorKind::Invalid, msg));
                }
            }
        }
    }

    fn mounts(&mut self, c: &Container, p: &str, volumes: &HashSet<String>) {
        let mut paths = HashSet::new();
        for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
            let mp = index(&child(p, "volumeMounts"), i);
            if !m.name.is_empty() && !volumes.contains(&m.name) {
                let mut e = FieldError::new(child(&mp, "name"), ErrorKind::NotFound, "")
                    .with_value(m.name.as_str());
                e.fix = Some(
                    match names::closest(&m.name, volumes.iter().map(String::as_str)) {
                        Some(near) => format!("did you mean {near:?}?"),
                        None => "add a volume of that name under `spec.volumes`".to_string(),
                    },
                );
                self.push(e);
            }
            if !m.mount_path.is_empty() && !paths.insert(m.mount_path.as_str()) {
                let e = FieldError::invalid(
                    child(&mp, "mountPath"),
                    m.mount_path.as_str(),
                    "must be unique",
                );
                self.push(e);
            }
        }
    }

    fn resources(&mut self, c: &Container, p: &str) {
        let Some(r) = &c.resources else { return };
        let rp = child(p, "resources");
        let get = |m: &Option<std::collections::BTreeMap<String, _>>, k: &str| {
            m.as_ref().and_then(|m| m.get(k)).and_then(
                |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
                    Quantity::parse(&q.0).ok()
                },
            )
        };
        for (kind, list) in [("limits", &r.limits), ("requests", &r.requests)] {
            for (name, q) in list.iter().flatten() {
                self.resource_name(&format!("{rp}.{kind}[{name}]"), name);
                if Quantity::parse(&q.0).is_ok_and(|q| q.is_negative()) {
                    let msg = "must be greater than or equal to 0";
                    self.push(FieldError::invalid(
                        format!("{rp}.{kind}[{name}]"),
                        q.0.as_str(),
                        msg,
                    ));
                }
            }
        }
        for name in ["cpu", "memory", "ephemeral-storage"] {
            if let (Some(req), Some(lim)) = (get(&r.requests, name), get(&r.limits, name))
                && req.millis() > lim.millis()
            {
                let lim_text = &r.limits.as_ref().expect("present")[name].0;
                let req_text = &r.requests.as_ref().expect("present")[name].0;
                let msg = format!("must be less than or equal to {name} limit of {lim_text}");
                self.push(FieldError::invalid(
                    format!("{rp}.requests[{name}]"),
                    req_text.as_str(),
                    msg,
                ));
            }
        }
    }

    /// A resource name is a standard one or a domain-qualified extended resource.
    fn resource_name(&mut self, path: &str, name: &str) {
        const STANDARD: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
        if STANDARD.contains(&name) || name.starts_with("hugepages-") || name.contains('/') {
            return;
        }
        let msg = "must be a standard resource type or fully qualified";
        let mut e = FieldError::invalid(path, name, msg);
        e.fix = match names::closest(name, STANDARD) {
            Some(near) => Some(format!("did you mean {near:?}?")),
            None => {
                Some("name an extended resource with its domain, e.g. \"example.com/gpu\"".into())
            }
        };
        self.push(e);
    }

    /// A probe names exactly one handler.
    fn probe(&mut self, path: &str, probe: &k8s_openapi::api::core::v1::Probe) {
        let handlers = [
            probe.exec.is_some(),
            probe.http_get.is_some(),
            probe.tcp_socket.is_some(),
            probe.grpc.is_some(),
        ];
        match handlers.iter().filter(|h| **h).count() {
            0 => self.push(
                FieldError::required(path, "must specify a handler type")
                    .with_fix("give one of `exec`, `httpGet`, `tcpSocket` or `grpc`"),
            ),
            1 => {}
            _ => self.push(FieldError::new(
                path,
                ErrorKind::Forbidden,
                "may not specify more than 1 handler type",
            )),
        }
        for (field, v) in [
            ("periodSeconds", probe.period_seconds),
            ("timeoutSeconds", probe.timeout_seconds),
            ("successThreshold", probe.success_threshold),
            ("failureThreshold", probe.failure_threshold),
        ] {
            if let Some(v) = v
                && v < 1
            {
                let msg = "must be greater than or equal to 1";
                self.push(FieldError::invalid(child(path, field), v, msg));
            }
        }
    }

    fn id(&mut self, path: &str, id: Option<i64>) {
        if let Some(id) = id
            && !(0..=i64::from(i32::MAX)).contains(&id)
        {
            self.push(FieldError::invalid(
                path,
                id,
                "must be between 0 and 2147483647, inclusive",
            ));
        }
    }

    fn one_of(&mut self, path: &str, value: &str, supported: &[&str]) {
        if !supported.contains(&value) {
            let mut e = FieldError::not_supported(path, value, supported);
            if let Some((head, _)) = split_note(value)
                && supported.contains(&head)
            {
                e.fix = note_fix(value, Some(head.to_string()));
            }
            self.push(e);
        }
    }
}
