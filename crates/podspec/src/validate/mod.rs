//! Validation of a typed Pod, as the API server's `ValidatePodCreate` does it.
//!
//! Every check runs and every problem is returned, each with the API server's wording
//! where it has one, and with a proposed fix where one can be derived (a valid name made
//! from the bad one, the nearest supported value). The Pod spec's path is a parameter
//! because a spec written under `metadata` is still validated, under its real path.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::Value;

use crate::error::{ErrorKind, FieldError};
use crate::names;
use crate::strict::{child, index};

mod container;

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
