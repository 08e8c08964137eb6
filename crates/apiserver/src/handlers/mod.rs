//! The verbs, one module each, over the shared [`crate::api::Api`] state. The helpers here
//! are what several verbs share: decoding a request body (JSON, or protobuf from kubectl
//! 1.32+), the `fieldValidation` and `dryRun` options, and answering with an object plus the
//! warnings admission produced.

pub mod admit;
pub mod binding;
pub mod create;
pub mod delete;
pub mod logs;
pub mod read;
pub mod update;
pub mod watch;

use http::{HeaderValue, Response};
use podspec::FieldValidation;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{Body, Req, json_body};
use crate::resources::Resource;
use crate::router::Target;

/// `?fieldValidation=`; absent means `Warn`, as in the Kubernetes API server.
pub fn field_validation(req: &Req) -> Result<FieldValidation, ApiError> {
    match req.query.get("fieldValidation") {
        None | Some("" | "Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: invalid value {other:?}: must be one of Strict, Warn or Ignore"
        ))),
    }
}

/// Whether `?dryRun=All` asks for a write that is checked but not stored.
pub fn dry_run(req: &Req) -> bool {
    req.query.get("dryRun") == Some("All")
}

/// The body as a JSON object of the target's kind: JSON, or protobuf (kubectl 1.32+ sends
/// `create secret|configmap|namespace|serviceaccount` that way). Fills in `apiVersion` and
/// `kind` when the body has none, and refuses a body of another kind.
pub fn object_body(req: &Req, res: &Resource) -> Result<Value, ApiError> {
    let mut obj = match req.content_type() {
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(&req.body)?,
        "" | "application/json" | "*/*" => json_body(req)?,
        "application/yaml" => std::str::from_utf8(&req.body)
            .ok()
            .and_then(|text| serde_saphyr::from_str(text).ok())
            .ok_or_else(|| ApiError::bad_request("the request body is not valid YAML"))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the request body must be a {} object",
            res.kind
        )));
    };
    let api_version = res.api_version();
    let kind = map.entry("kind").or_insert_with(|| json!(res.kind));
    if kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the body's kind {kind} does not match the resource {} (kind {})",
            res.plural, res.kind
        )));
    }
    let version = map
        .entry("apiVersion")
        .or_insert_with(|| json!(api_version));
    if version != api_version.as_str() {
        return Err(ApiError::bad_request(format!(
            "the body's apiVersion {version} does not match the resource's {api_version}"
        )));
    }
    Ok(obj)
}

/// Checks the body's `metadata.namespace` against the path's and fills it in.
pub fn set_namespace(obj: &mut Value, t: &Target) -> Result<(), ApiError> {
    let meta = crate::objects::meta_mut(obj);
    match (&t.namespace, meta.get("namespace").and_then(Value::as_str)) {
        (Some(path_ns), Some(body_ns)) if !body_ns.is_empty() && body_ns != path_ns => {
            Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace \
                 sent on the request ({path_ns})"
            )))
        }
        (Some(ns), _) => {
            meta.insert("namespace".into(), json!(ns));
            Ok(())
        }
        (None, _) if t.res.namespaced => Err(ApiError::bad_request(format!(
            "{} are namespaced: write them under /namespaces/{{namespace}}/",
            t.res.plural
        ))),
        (None, _) => {
            meta.remove("namespace");
            Ok(())
        }
    }
}

/// An object response with the admission warnings as `Warning` headers.
pub fn object_response(code: u16, obj: &Value, warnings: &[String]) -> Response<Body> {
    let mut resp = crate::http::json(code, obj);
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

/// The target's object name; the router only sends named targets here.
pub fn name(t: &Target) -> &str {
    t.name.as_deref().unwrap_or("")
}
