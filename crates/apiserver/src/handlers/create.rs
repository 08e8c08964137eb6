//! `POST` of a new object: decode, name (`generateName`), namespace checks, admission
//! (validation and defaulting), server-set metadata, then a store create.

use http::Response;
use podspec::FieldValidation;
use serde_json::{Value, json};

use super::{admit, object_body, object_response, set_namespace};
use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req};
use crate::objects;
use crate::resources::Resource;
use crate::router::Target;

/// How a create is checked and stored.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub field_validation: FieldValidation,
    pub dry_run: bool,
}

impl CreateOptions {
    /// The options of objects the server creates itself (system namespaces, events).
    pub fn internal() -> Self {
        CreateOptions {
            field_validation: FieldValidation::Strict,
            dry_run: false,
        }
    }

    pub fn from_request(req: &Req) -> Result<Self, ApiError> {
        Ok(CreateOptions {
            field_validation: super::field_validation(req)?,
            dry_run: super::dry_run(req),
        })
    }
}

/// `POST /api/v1/namespaces/{ns}/{plural}`.
pub async fn handle(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let mut obj = object_body(req, t.res)?;
    set_namespace(&mut obj, t)?;
    let opts = CreateOptions::from_request(req)?;
    let (created, warnings) = create_with_warnings(api, t.res, obj, &opts).await?;
    Ok(object_response(201, &created, &warnings))
}

/// Creates `obj` (its namespace already set) and returns it as stored.
pub async fn create(
    api: &Api,
    res: &Resource,
    obj: Value,
    opts: &CreateOptions,
) -> Result<Value, ApiError> {
    create_with_warnings(api, res, obj, opts)
        .await
        .map(|(v, _)| v)
}

async fn create_with_warnings(
    api: &Api,
    res: &Resource,
    mut obj: Value,
    opts: &CreateOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    name_object(res, &mut obj)?;
    if let Some(ns) = objects::namespace(&obj)
        && res.namespaced
    {
        api.require_namespace(ns).await?;
    }
    let warnings = admit::admit_create(res, &mut obj, opts.field_validation)?;

    let meta = objects::meta_mut(&mut obj);
    for server_set in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        meta.remove(server_set);
    }
    meta.insert("uid".into(), json!(objects::new_uid()));
    meta.insert("creationTimestamp".into(), json!(objects::now()));
    if opts.dry_run {
        return Ok((obj, warnings));
    }
    let stored = api.insert(res, &obj).await?;
    tracing::debug!(kind = res.kind, name = objects::name(&stored), "created");
    if res.kind == "Namespace" {
        api.default_service_account(objects::name(&stored)).await?;
    }
    Ok((stored, warnings))
}

// A name from `generateName` when the object has none, as the API server makes them.
fn name_object(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    if !objects::name(obj).is_empty() {
        return Ok(());
    }
    let meta = objects::meta_mut(obj);
    let prefix = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if prefix.is_empty() {
        return Err(ApiError::invalid(
            res,
            "",
            &[(
                "metadata.name".into(),
                "FieldValueRequired",
                "Required value: name or generateName is required".into(),
            )],
        ));
    }
    // The API server keeps the whole name within 63 characters.
    let keep = prefix.len().min(58);
    let name = format!("{}{}", &prefix[..keep], objects::name_suffix());
    meta.insert("name".into(), json!(name));
    Ok(())
}
