//! What kubectl reads before it acts: `/version`, and the discovery documents in both forms.
//!
//! kubectl 1.27-1.29 ask `/api` and `/apis` for the aggregated `v2beta1` form, 1.30 and later
//! for `v2` first. Both are answered from the one resource table; a client that does not ask
//! for an aggregated form gets the old documents (`APIVersions`, `APIGroupList`, and an
//! `APIResourceList` per group version). Neither path ever answers 404 or 406: kubectl does
//! not fall back, it retries and fails.

use http::Response;
use serde_json::{Value, json};

use crate::http::{Body, Req, json, json_as};
use crate::resources::{self, Resource, VERBS};

/// The Kubernetes version hoist answers as. The minor decides which kubectl the dispatcher
/// at `/usr/bin/kubectl` runs, so it is the newest one hoist is tested with.
pub const MINOR: &str = "33";

/// `GET /version`.
pub fn version() -> Response<Body> {
    json(
        200,
        &json!({
            "major": "1",
            "minor": MINOR,
            "gitVersion": format!("v1.{MINOR}.0+hoist"),
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "rust",
            "compiler": "rustc",
            "platform": format!("linux/{}", go_arch()),
        }),
    )
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Which aggregated form the client asked for, if any.
fn aggregated(req: &Req) -> Option<&'static str> {
    for part in req.accept().split(',') {
        if !part.contains("g=apidiscovery.k8s.io") || !part.contains("as=APIGroupDiscoveryList") {
            continue;
        }
        if part.contains("v=v2beta1") {
            return Some("v2beta1");
        }
        if part.contains("v=v2") {
            return Some("v2");
        }
    }
    None
}

fn aggregated_response(version: &str, items: Vec<Value>) -> Response<Body> {
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    json_as(200, &ct, &body)
}

/// `GET /api`.
pub fn core_versions(req: &Req, url: &str) -> Response<Body> {
    if let Some(v) = aggregated(req) {
        let group = json!({"metadata": {}, "versions": [group_version_entry("", "v1")]});
        return aggregated_response(v, vec![group]);
    }
    let address = url.trim_start_matches("https://");
    json(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }),
    )
}

/// `GET /apis`.
pub fn groups(req: &Req) -> Response<Body> {
    let groups = resources::groups();
    if let Some(v) = aggregated(req) {
        let items = groups
            .iter()
            .map(|(g, ver)| {
                json!({"metadata": {"name": g}, "versions": [group_version_entry(g, ver)]})
            })
            .collect();
        return aggregated_response(v, items);
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json(
        200,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

fn group_version_entry(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = resources::in_group(group, version)
        .map(aggregated_resource)
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn aggregated_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": r.version, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
        "subresources": subresources,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    v
}

/// `GET /api/v1` or `/apis/{group}/{version}`: the old-style resource list.
pub fn resource_list(group: &str, version: &str) -> Response<Body> {
    let mut list = Vec::new();
    for r in resources::in_group(group, version) {
        let mut v = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        list.push(v);
        for s in r.subresources {
            list.push(json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": list}),
    )
}
