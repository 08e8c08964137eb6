//! `PUT` and `PATCH` of an object or its `status`: a replacement must carry the
//! `resourceVersion` it read (or none, to overwrite), a patch applies to the latest version
//! and is retried when another write lands in between. Writes to `status` change only the
//! status; writes to the object keep the status. Server-side apply creates what is missing.

use http::Response;
use serde_json::{Value, json};

use super::{admit, create, object_body, object_response, set_namespace};
use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req};
use crate::objects;
use crate::patch::{self, PatchKind};
use crate::router::Target;

/// How often a patch is re-applied when the object changed under it.
const PATCH_TRIES: usize = 5;

/// `PUT .../{name}` and `PUT .../{name}/status`.
pub async fn put(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let mut new = object_body(req, t.res)?;
    set_namespace(&mut new, t)?;
    let name = super::name(t);
    if objects::name(&new) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            objects::name(&new)
        )));
    }
    let expected = objects::resource_version(&new)?;
    let (old, rev) = api.read(t.res, t.namespace.as_deref(), name).await?;
    if expected.is_some_and(|e| e != rev) {
        return Err(ApiError::stale(t.res, name));
    }
    let validation = super::field_validation(req)?;
    let (stored, warnings) = write(api, t, &old, rev, new, validation, super::dry_run(req)).await?;
    Ok(object_response(200, &stored, &warnings))
}

/// `PATCH .../{name}` and `PATCH .../{name}/status`, in every patch format kubectl sends.
pub async fn patch(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let kind = || {
        PatchKind::from_content_type(req.content_type())
            .ok_or_else(|| ApiError::unsupported_media_type(req.content_type()))
    };
    let is_apply = matches!(kind()?, PatchKind::Apply);
    let validation = super::field_validation(req)?;
    let name = super::name(t);
    for _ in 0..PATCH_TRIES {
        let current = match api.read(t.res, t.namespace.as_deref(), name).await {
            Ok(found) => Some(found),
            Err(e) if e.code == 404 && is_apply && t.sub.is_none() => None,
            Err(e) => return Err(e),
        };
        let Some((old, rev)) = current else {
            // Server-side apply of an object that does not exist creates it.
            let mut obj = patch::apply(kind()?, &Value::Null, &req.body, t.res)?;
            set_namespace(&mut obj, t)?;
            objects::meta_mut(&mut obj).insert("name".into(), json!(name));
            let opts = create::CreateOptions::from_request(req)?;
            let created = create::create(api, t.res, obj, &opts).await?;
            return Ok(object_response(201, &created, &[]));
        };
        let mut new = patch::apply(kind()?, &old, &req.body, t.res)?;
        // A patch that names a resourceVersion is a precondition, as in Kubernetes.
        if objects::resource_version(&new)?.is_some_and(|e| e != rev) {
            return Err(ApiError::stale(t.res, name));
        }
        objects::set_resource_version(&mut new, rev);
        match write(api, t, &old, rev, new, validation, super::dry_run(req)).await {
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
            Ok((stored, warnings)) => return Ok(object_response(200, &stored, &warnings)),
        }
    }
    Err(ApiError::conflict(
        t.res,
        name,
        "the object kept changing while the patch was applied; try again",
    ))
}

/// Stores `new` over `old` (at `rev`) after admission; an unchanged object is not written.
async fn write(
    api: &Api,
    t: &Target,
    old: &Value,
    rev: i64,
    mut new: Value,
    validation: podspec::FieldValidation,
    dry_run: bool,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    if t.sub.as_deref() == Some("status") {
        let status = new.get("status").cloned().unwrap_or(json!({}));
        new = old.clone();
        new["status"] = status;
    } else {
        warnings = admit::admit_update(t.res, old, &mut new, validation)?;
    }
    keep_server_metadata(old, &mut new);
    if strip_rv(&new) == strip_rv(old) || dry_run {
        return Ok((if dry_run { new } else { old.clone() }, warnings));
    }
    let stored = api.replace(t.res, &new, Some(rev)).await?;
    Ok((stored, warnings))
}

fn strip_rv(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}

// What a client may not change: identity, creation time, a deletion in progress.
fn keep_server_metadata(old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let meta = objects::meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
}
