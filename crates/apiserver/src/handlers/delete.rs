//! `DELETE` of an object or a collection. A pod bound to a node is deleted gracefully, as in
//! Kubernetes: the server marks it (`deletionTimestamp`, `deletionGracePeriodSeconds`), the
//! node agent stops its containers within the grace period and then deletes it with a grace
//! period of 0, which removes it. Everything else goes at once; a namespace takes its
//! objects with it.
//!
//! Finalizers are not honoured: an object with `metadata.finalizers` is removed like any
//! other. What that costs: a controller that relies on finalizers to clean up first would
//! not get the chance (no such controller runs on hoist yet).

use http::Response;
use serde_json::{Value, json};

use crate::api::{Api, SYSTEM_NAMESPACES};
use crate::error::ApiError;
use crate::http::{Body, Req, json};
use crate::objects;
use crate::resources::{RESOURCES, Resource};
use crate::router::Target;

/// What the body and query of a delete say.
#[derive(Debug, Default)]
struct DeleteOptions {
    grace: Option<i64>,
    rv: Option<i64>,
    uid: Option<String>,
}

impl DeleteOptions {
    fn from_request(req: &Req) -> Result<Self, ApiError> {
        let body: Value = if req.body.is_empty() {
            json!({})
        } else {
            crate::http::json_body(req)?
        };
        let rv = match body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(v) => Some(v.parse().map_err(|_| {
                ApiError::bad_request(format!("preconditions.resourceVersion: invalid {v:?}"))
            })?),
            None => None,
        };
        Ok(DeleteOptions {
            grace: body["gracePeriodSeconds"]
                .as_i64()
                .or(req.query.int("gracePeriodSeconds")?),
            rv,
            uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// `DELETE .../{name}`.
pub async fn delete(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let opts = DeleteOptions::from_request(req)?;
    let name = super::name(t);
    let (obj, rev) = api.read(t.res, t.namespace.as_deref(), name).await?;
    if opts.uid.as_deref().is_some_and(|u| u != objects::uid(&obj)) {
        let why = "Precondition failed: UID in precondition does not match the object's";
        return Err(ApiError::conflict(t.res, name, why));
    }
    if opts.rv.is_some_and(|r| r != rev) {
        return Err(ApiError::stale(t.res, name));
    }
    if super::dry_run(req) {
        return Ok(json(200, &obj));
    }
    let done = delete_one(api, t, obj, rev, opts.grace, Some(rev)).await?;
    Ok(json(200, &done))
}

/// Deletes one object as its kind is deleted: a pod gracefully, a namespace with its
/// objects, anything else at once if it is still at `expected` (when given).
async fn delete_one(
    api: &Api,
    t: &Target,
    obj: Value,
    rev: i64,
    grace: Option<i64>,
    expected: Option<i64>,
) -> Result<Value, ApiError> {
    match t.res.kind {
        "Pod" => delete_pod(api, t, obj, rev, grace).await,
        "Namespace" => delete_namespace(api, t, objects::name(&obj), rev).await,
        _ => {
            let ns = t.namespace.as_deref();
            api.remove(t.res, ns, objects::name(&obj), expected).await
        }
    }
}

async fn delete_pod(
    api: &Api,
    t: &Target,
    mut pod: Value,
    rev: i64,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    let name = objects::name(&pod).to_string();
    let bound = pod.pointer("/spec/nodeName").is_some_and(|n| n != "");
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec_grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    let grace = grace.unwrap_or(spec_grace).max(0);
    // A pod no node runs, or that has finished, has nothing to stop.
    if grace == 0 || !bound || matches!(phase, "Succeeded" | "Failed") {
        return api
            .remove(t.res, t.namespace.as_deref(), &name, Some(rev))
            .await;
    }
    let current = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if current.is_some_and(|c| c <= grace) {
        return Ok(pod);
    }
    let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
    let meta = objects::meta_mut(&mut pod);
    meta.insert(
        "deletionTimestamp".into(),
        json!(objects::format_time(deadline)),
    );
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    tracing::debug!(pod = %name, grace, "marked for graceful deletion");
    api.replace(t.res, &pod, Some(rev)).await
}

async fn delete_namespace(api: &Api, t: &Target, name: &str, rev: i64) -> Result<Value, ApiError> {
    if SYSTEM_NAMESPACES.contains(&name) && name != "kube-node-lease" {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    for res in RESOURCES.iter().filter(|r| r.namespaced) {
        let (items, _) = api.list_all(res, &res.list_prefix(Some(name))).await?;
        for obj in items {
            remove_quietly(api, res, Some(name), objects::name(&obj)).await?;
        }
    }
    api.remove(t.res, None, name, Some(rev)).await
}

async fn remove_quietly(
    api: &Api,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<(), ApiError> {
    match api.remove(res, ns, name, None).await {
        Err(e) if e.code != 404 => Err(e),
        _ => Ok(()),
    }
}

/// `DELETE .../{plural}` with selectors: each matching object as a single delete would.
pub async fn delete_collection(
    api: &Api,
    req: &Req,
    t: &Target,
) -> Result<Response<Body>, ApiError> {
    let filter = super::read::Filter::from_request(req, t.res)?;
    let grace = DeleteOptions::from_request(req)?.grace;
    let (items, _) = api
        .list_all(t.res, &t.res.list_prefix(t.namespace.as_deref()))
        .await?;
    let mut deleted = Vec::new();
    for obj in items.into_iter().filter(|o| filter.matches(o)) {
        let ns = objects::namespace(&obj).map(str::to_string);
        let name = objects::name(&obj).to_string();
        let rev = objects::resource_version(&obj)?.unwrap_or(0);
        let target = Target {
            res: t.res,
            namespace: ns.clone(),
            name: Some(name.clone()),
            sub: None,
        };
        let done = delete_one(api, &target, obj, rev, grace, None).await;
        match done {
            Ok(v) => deleted.push(v),
            Err(e) if e.code == 404 || e.reason == "Conflict" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json(
        200,
        &json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(),
                "metadata": {}, "items": deleted}),
    ))
}
