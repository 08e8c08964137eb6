//! `GET pods/{name}/log`: checks the container as the Kubernetes API server does, then
//! streams what the node's agent serves through the [`crate::LogSource`].

use futures_util::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req};
use crate::logs::LogOptions;
use crate::router::Target;

/// Serves a container's log.
pub async fn logs(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let name = crate::handlers::name(t);
    let (obj, _) = api.read(t.res, t.namespace.as_deref(), name).await?;
    let mut opts = LogOptions::from_query(&req.query)?;
    opts.container = container(&obj, name, &opts.container)?;
    if opts.tail_lines.is_some_and(|n| n < 0) || opts.limit_bytes.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request(
            "tailLines must be 0 or more and limitBytes 1 or more",
        ));
    }
    if obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "container \"{}\" in pod \"{name}\" is waiting to start: the pod is not yet \
             scheduled to a node",
            opts.container
        )));
    }
    let source = api.logs.get().ok_or_else(|| {
        ApiError::unavailable("no node agent serves logs: start hoist with its agent")
    })?;
    let pod: Pod = serde_json::from_value(obj)
        .map_err(|e| ApiError::internal(format!("decoding the stored pod: {e}")))?;
    let stream = source.logs(&pod, &opts).await?;
    let frames = stream.map(|r| r.map(Frame::data));
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

// The container asked for, or the pod's only one.
fn container(pod: &Value, name: &str, asked: &str) -> Result<String, ApiError> {
    let names: Vec<&str> = ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let app: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    if asked.is_empty() {
        return match app.as_slice() {
            [only] => Ok(only.to_string()),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                app.join(" ")
            ))),
        };
    }
    if !names.contains(&asked) {
        return Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {name}"
        )));
    }
    Ok(asked.to_string())
}
