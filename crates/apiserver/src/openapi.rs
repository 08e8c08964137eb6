//! The OpenAPI documents kubectl probes before `create -f` and `apply -f`.
//!
//! kubectl leaves field validation to the server (`fieldValidation=Strict`) once it sees that
//! the server supports it: from 1.29 it reads `/openapi/v3` and the group version's document,
//! and looks there for the kind's PATCH operation with a `fieldValidation` parameter.
//! 1.27 and 1.28 need `/openapi/v2` to answer 200 with a protobuf body; an empty one is a
//! valid, empty `openapi_v2.Document`.
//!
//! The documents carry paths and no schemas. What that costs: `kubectl explain` finds
//! nothing, and client-side apply computes its strategic merge patches from the types
//! compiled into kubectl instead of from the server's schema (the same result for the
//! built-in kinds served here).

use http::Response;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{Body, Req, json, response};
use crate::resources::{self, Resource};

const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `GET /openapi/v2`: an empty protobuf document.
pub fn v2() -> Response<Body> {
    response(200, V2_PROTOBUF, Vec::new())
}

/// The group versions served, as `api/v1` and `apis/{group}/{version}`.
fn group_versions() -> Vec<(String, &'static str, &'static str)> {
    let mut out = vec![("api/v1".to_string(), "", "v1")];
    for (g, v) in resources::groups() {
        out.push((format!("apis/{g}/{v}"), g, v));
    }
    out
}

/// A stable hash of a group version's document, so clients can cache it.
fn hash(gv: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA512, document(gv).to_string().as_bytes());
    d.as_ref()[..32]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `GET /openapi/v3`.
pub fn v3_root(_req: &Req) -> Response<Body> {
    let mut paths = Map::new();
    for (gv, _, _) in group_versions() {
        let url = format!("/openapi/v3/{gv}?hash={}", hash(&gv));
        paths.insert(gv, json!({"serverRelativeURL": url}));
    }
    json(200, &json!({"paths": paths}))
}

/// `GET /openapi/v3/{api/v1 | apis/group/version}`; answers 304 to a matching
/// `If-None-Match`.
pub fn v3_group_version(req: &Req, gv: &str) -> Result<Response<Body>, ApiError> {
    if !group_versions().iter().any(|(g, _, _)| g == gv) {
        return Err(ApiError::path_not_found(&format!("/openapi/v3/{gv}")));
    }
    let etag = format!("\"{}\"", hash(gv));
    let matches = req
        .headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == etag);
    let mut resp = if matches {
        response(304, "application/json", Vec::new())
    } else {
        json(200, &document(gv))
    };
    if let Ok(v) = http::HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    Ok(resp)
}

fn document(gv: &str) -> Value {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, _, _)| g == gv)
        .map(|(_, g, v)| (g, v))
        .unwrap_or(("", "v1"));
    let mut paths = Map::new();
    for r in resources::in_group(group, version) {
        paths.insert(object_path(r), object_operations(r));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

fn object_path(r: &Resource) -> String {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{base}/{}/{{name}}", r.plural)
    }
}

fn object_operations(r: &Resource) -> Value {
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
    let op = |verb: &str| {
        json!({
            "operationId": format!("{verb}{}", r.kind),
            "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation")],
            "responses": {},
        })
    };
    json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")})
}
