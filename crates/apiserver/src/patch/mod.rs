//! The four patch formats of `PATCH`: JSON patch (RFC 6902) and JSON merge patch
//! (RFC 7386) in [`json`], the Kubernetes strategic merge patch in [`strategic`], and
//! server-side apply, which is answered here with a strategic merge (see [`apply`]).
//!
//! Every format works on the object as JSON and returns the patched object; the caller
//! checks, admits and stores it as it would a `PUT`.

mod json;
mod strategic;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::Resource;

/// A patch format, named by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`: a list of RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386.
    Merge,
    /// `application/strategic-merge-patch+json`: what `kubectl apply` (client side),
    /// `edit`, `label` and `annotate` send.
    StrategicMerge,
    /// `application/apply-patch+yaml`: `kubectl apply --server-side`.
    Apply,
}

impl PatchKind {
    /// The format of a media type given without parameters; `None` for any other type.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        match ct.trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchKind::Apply),
            _ => None,
        }
    }

    /// The format's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            PatchKind::Json => "json patch",
            PatchKind::Merge => "merge patch",
            PatchKind::StrategicMerge => "strategic merge patch",
            PatchKind::Apply => "apply patch",
        }
    }
}

/// Applies `patch` (the raw request body) to `target` (the live object as JSON) and
/// returns the patched object.
///
/// For [`PatchKind::Apply`] on an object that does not exist yet, `target` is
/// `Value::Null` or an empty object, and the applied configuration is returned as the new
/// object.
///
/// Server-side apply is not what Kubernetes does: there is no `managedFields` tracking, so
/// the applied configuration is strategic-merged into the live object and its fields win.
/// What that misses: field ownership per manager, the conflicts a second manager's apply
/// should raise (so `force` changes nothing), and the removal of fields that a manager
/// applied before and has stopped applying. The cost is that `kubectl apply --server-side`
/// of a configuration with a container, a label or an env entry removed leaves it on the
/// live object, where Kubernetes would delete it; client-side apply (which computes the
/// deletions from `last-applied-configuration`) does not have that gap.
///
/// # Errors
///
/// 400 BadRequest for a body that does not decode as the format; 422 Invalid for a JSON
/// patch operation that fails (a `test` that does not match, a path that does not exist)
/// and for a strategic merge patch that breaks the format's rules (a list element without
/// its merge key, a directive with a wrong value).
pub fn apply(
    kind: PatchKind,
    target: &Value,
    patch: &[u8],
    res: &Resource,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => {
            let ops = decode_json(kind, patch)?;
            json::apply_json_patch(target, &ops)
        }
        PatchKind::Merge => {
            let patch = decode_json(kind, patch)?;
            Ok(json::merge_patch(target, &patch))
        }
        PatchKind::StrategicMerge => {
            let patch = decode_json(kind, patch)?;
            strategic::merge(target, &patch, res.kind, kind)
        }
        PatchKind::Apply => {
            let applied = decode_apply(patch)?;
            if !applied.is_object() {
                return Err(ApiError::bad_request(
                    "apply patch: the applied configuration must be an object",
                ));
            }
            let missing = match target {
                Value::Null => true,
                Value::Object(m) => m.is_empty(),
                _ => false,
            };
            if missing {
                // Directives and nulls mean nothing in a new object: merging into nothing
                // drops them as Kubernetes' apply would ignore them.
                return strategic::merge(&Value::Null, &applied, res.kind, kind);
            }
            strategic::merge(target, &applied, res.kind, kind)
        }
    }
}

/// A JSON body, or a 400 naming the patch format.
fn decode_json(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{}: the body is empty",
            kind.name()
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("{}: the body is not valid JSON: {e}", kind.name()))
    })
}

/// An apply body: JSON as kubectl sends it, or YAML as the media type names.
fn decode_apply(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("apply patch: the body is empty"));
    }
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("apply patch: the body is not UTF-8 YAML or JSON"))?;
    serde_saphyr::from_str(text).map_err(|e| {
        ApiError::bad_request(format!(
            "apply patch: the body is not valid YAML or JSON: {e}"
        ))
    })
}

/// A 422 for a patch that decoded but cannot be applied.
fn invalid(kind: PatchKind, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(422, "Invalid", format!("{}: {message}", kind.name()))
}
