//! Admission: what the server checks and fills in on an object before it is written, per
//! kind. Pods go through `podspec` (strict decoding, defaulting, validation, as the
//! Kubernetes API server does them); the other kinds get a strict check of their fields, a
//! name check and their few defaults here.
//!
//! Each function returns the warnings to send back (unknown fields under
//! `fieldValidation=Warn`).

use base64::Engine;
use podspec::FieldValidation;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects;
use crate::resources::Resource;

const META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// The top-level fields of each kind that is not a Pod.
fn top_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Namespace" | "Node" => &["spec", "status"],
        "Secret" => &["data", "stringData", "type", "immutable"],
        "ConfigMap" => &["data", "binaryData", "immutable"],
        "ServiceAccount" => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        "Event" => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        "Lease" => &["spec"],
        _ => &[],
    }
}

/// Checks and defaults a new object of `res`.
pub fn admit_create(
    res: &Resource,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if res.kind == "Pod" {
        let warnings = admit_pod(obj, validation)?;
        let pod: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(obj.clone()).unwrap_or_default();
        obj["status"] = json!({"phase": "Pending", "qosClass": podspec::qos_class(&pod)});
        // The service account admission plugin's default.
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            let sa = spec
                .entry("serviceAccountName")
                .or_insert_with(|| json!("default"))
                .clone();
            spec.entry("serviceAccount").or_insert(sa);
        }
        return Ok(warnings);
    }
    let warnings = strict(res, obj, validation)?;
    check_name(res, obj)?;
    default_kind(res, obj)?;
    Ok(warnings)
}

/// Checks and defaults a replacement `new` of the stored `old`.
pub fn admit_update(
    res: &Resource,
    old: &Value,
    new: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if res.kind == "Pod" {
        // A write to the pod itself does not change its status, and the node it was bound
        // to stays: kubectl replace and apply send manifests without either.
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        if let Some(node) = old.pointer("/spec/nodeName")
            && new.pointer("/spec/nodeName").is_none()
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("nodeName".into(), node.clone());
        }
        let warnings = admit_pod(new, validation)?;
        check_pod_spec_unchanged(res, old, new)?;
        return Ok(warnings);
    }
    let warnings = strict(res, new, validation)?;
    default_kind(res, new)?;
    Ok(warnings)
}

/// Validates and defaults a pod in place through podspec.
pub fn admit_pod(obj: &mut Value, validation: FieldValidation) -> Result<Vec<String>, ApiError> {
    let opts = podspec::Options::for_api(validation);
    match podspec::validate_and_default(obj, &opts) {
        Ok(v) => {
            *obj = serde_json::to_value(&v.pod)
                .map_err(|e| ApiError::internal(format!("encoding the defaulted pod: {e}")))?;
            Ok(v.warnings.iter().map(ToString::to_string).collect())
        }
        Err(errors) => Err(ApiError::from_status(&errors.to_status(objects::name(obj)))),
    }
}

// The fields of a pod's spec that an update may change; everything else is fixed once the
// pod exists, as in Kubernetes (which also allows adding tolerations, not checked apart
// here).
fn check_pod_spec_unchanged(res: &Resource, old: &Value, new: &Value) -> Result<(), ApiError> {
    let masked = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or(json!({}));
        for list in ["containers", "initContainers"] {
            if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    c["image"] = Value::Null;
                }
            }
        }
        if let Some(s) = spec.as_object_mut() {
            for f in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
            ] {
                s.remove(f);
            }
        }
        spec
    };
    if masked(old) == masked(new) {
        return Ok(());
    }
    let message = "Forbidden: pod updates may not change fields other than \
                   `spec.containers[*].image`, `spec.initContainers[*].image`, \
                   `spec.activeDeadlineSeconds`, `spec.tolerations` and \
                   `spec.terminationGracePeriodSeconds`";
    Err(ApiError::invalid(
        res,
        objects::name(new),
        &[(
            "spec".to_string(),
            "FieldValueForbidden",
            message.to_string(),
        )],
    ))
}

/// Refuses (or warns about) fields the kind does not have, as strict decoding does.
fn strict(
    res: &Resource,
    obj: &Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let mut unknown = Vec::new();
    let allowed = top_fields(res.kind);
    if let Some(map) = obj.as_object() {
        for k in map.keys() {
            let known = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || allowed.contains(&k.as_str());
            if !known {
                unknown.push(format!("unknown field \"{k}\""));
            }
        }
    }
    if let Some(meta) = obj.get("metadata").and_then(Value::as_object) {
        for k in meta.keys() {
            if !META_FIELDS.contains(&k.as_str()) {
                unknown.push(format!("unknown field \"metadata.{k}\""));
            }
        }
    }
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    match validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = res.kind,
            v = res.version,
        ))),
        FieldValidation::Warn => Ok(unknown),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

fn check_name(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    let name = objects::name(obj);
    let problems = if res.kind == "Namespace" {
        podspec::names::dns1123_label_problems(name)
    } else {
        podspec::names::dns1123_subdomain_problems(name)
    };
    if problems.is_empty() {
        return Ok(());
    }
    let causes: Vec<(String, &str, String)> = problems
        .into_iter()
        .map(|p| {
            let m = format!("Invalid value: \"{name}\": {p}");
            ("metadata.name".to_string(), "FieldValueInvalid", m)
        })
        .collect();
    Err(ApiError::invalid(res, name, &causes))
}

fn default_kind(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let name = objects::name(obj).to_string();
    match res.kind {
        "Namespace" => {
            let labels = objects::meta_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        "Secret" => default_secret(res, obj, &name)?,
        _ => {}
    }
    Ok(())
}

// `stringData` is write-only: its entries move into `data`, base64-encoded, as in
// Kubernetes.
fn default_secret(res: &Resource, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let string_data = map.remove("stringData");
    let data = map.entry("data").or_insert_with(|| json!({}));
    if data.is_null() {
        *data = json!({});
    }
    let Some(data) = data.as_object_mut() else {
        return Err(ApiError::bad_request(
            "Secret in version \"v1\" cannot be handled as a Secret: data must be a map",
        ));
    };
    for (k, v) in data.iter() {
        let ok = v.as_str().is_some_and(|s| b64.decode(s).is_ok());
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: data[{k:?}] is not \
                 valid base64"
            )));
        }
    }
    if let Some(Value::Object(sd)) = string_data {
        for (k, v) in sd {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, json!(b64.encode(text)));
        }
    }
    let keys: Vec<String> = data.keys().cloned().collect();
    if map.get("type").and_then(Value::as_str).is_none() {
        map.insert("type".into(), json!("Opaque"));
    }
    if map.get("type").and_then(Value::as_str) == Some("kubernetes.io/dockerconfigjson")
        && !keys.iter().any(|k| k == ".dockerconfigjson")
    {
        let m = "Required value: a secret of type kubernetes.io/dockerconfigjson needs \
                 data[.dockerconfigjson]";
        return Err(ApiError::invalid(
            res,
            name,
            &[(
                "data[.dockerconfigjson]".into(),
                "FieldValueRequired",
                m.into(),
            )],
        ));
    }
    Ok(())
}
