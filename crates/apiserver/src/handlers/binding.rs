//! `POST pods/{name}/binding`: what a scheduler sends to put a pod on a node.

use http::Response;
use serde_json::{Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req, json, json_body};
use crate::router::Target;

/// Binds the pod to `target.name`, once.
pub async fn bind(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let body = json_body(req)?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("binding: target.name is required"))?;
    bind_pod(
        api,
        t.namespace.as_deref().unwrap_or(""),
        crate::handlers::name(t),
        node,
    )
    .await?;
    Ok(json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}),
    ))
}

/// Sets `spec.nodeName` of a pod that has none; a pod bound elsewhere is a 409.
pub async fn bind_pod(api: &Api, ns: &str, name: &str, node: &str) -> Result<Value, ApiError> {
    let pods = crate::resources::pods();
    let (mut pod, rev) = api.read(pods, Some(ns), name).await?;
    match pod.pointer("/spec/nodeName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => {
            let why = format!("pod {name} is already assigned to node \"{n}\"");
            return Err(ApiError::conflict(pods, name, &why));
        }
        _ => {}
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(pods, name, "the pod is being deleted"));
    }
    pod["spec"]["nodeName"] = json!(node);
    let conditions = pod["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(cs)) = conditions {
        cs.retain(|c| c["type"] != "PodScheduled");
        cs.push(json!({"type": "PodScheduled", "status": "True",
                       "lastTransitionTime": crate::objects::now()}));
    }
    api.replace(pods, &pod, Some(rev)).await
}
