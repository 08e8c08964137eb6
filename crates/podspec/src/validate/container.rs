//! Validation of containers: names, images, policies, ports, env, mounts, resources and
//! probes, for `containers` and `initContainers` alike.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::{Validator, note_fix, split_note};
use crate::error::{ErrorKind, FieldError};
use crate::names;
use crate::quantity::Quantity;
use crate::strict::{child, index};

impl Validator {
    pub(super) fn container(
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
}
