//! Which handler a request reaches: the discovery and OpenAPI documents, `/version` and the
//! health checks, and the resource paths of the Kubernetes API
//! (`/api/v1/namespaces/{ns}/pods/{name}/log`, `/apis/{group}/{version}/...`), parsed once
//! into a [`Target`] that the verb handlers take.

use http::{Method, Response};

use crate::api::Api;
use crate::error::ApiError;
use crate::handlers;
use crate::http::{Body, Req, response};
use crate::resources::{self, Resource};
use crate::{discovery, openapi};

/// A resource path, parsed.
#[derive(Debug, Clone)]
pub struct Target {
    pub res: &'static Resource,
    /// The namespace of the path; `None` for cluster-scoped objects and all-namespace lists.
    pub namespace: Option<String>,
    /// The object's name; `None` for collections.
    pub name: Option<String>,
    /// The subresource (`status`, `log`, `binding`).
    pub sub: Option<String>,
}

/// Answers one authenticated request.
pub async fn route(api: &Api, req: Req) -> Result<Response<Body>, ApiError> {
    let path = req.path.trim_end_matches('/').to_string();
    match path.as_str() {
        "/version" => return Ok(discovery::version()),
        "/healthz" | "/livez" | "/readyz" => return Ok(response(200, "text/plain", "ok")),
        "/api" => return Ok(discovery::core_versions(&req, &api.url)),
        "/apis" => return Ok(discovery::groups(&req)),
        "/api/v1" => return Ok(discovery::resource_list("", "v1")),
        "/openapi/v2" | "/swagger-2.0.0.pb-v1" => return Ok(openapi::v2()),
        "/openapi/v3" => return Ok(openapi::v3_root(&req)),
        _ => {}
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        return openapi::v3_group_version(&req, gv);
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let ["apis", group, version] = segments.as_slice() {
        if resources::in_group(group, version).next().is_none() {
            return Err(ApiError::path_not_found(&path));
        }
        return Ok(discovery::resource_list(group, version));
    }
    let target = parse(&segments).ok_or_else(|| ApiError::path_not_found(&path))?;
    dispatch(api, req, target).await
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` into a target.
pub fn parse(segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let find = |plural: &str| resources::find(group, version, plural);
    let owned = |s: &&str| Some(s.to_string());
    let target = match rest {
        [plural] => Target {
            res: find(plural)?,
            namespace: None,
            name: None,
            sub: None,
        },
        // `/namespaces/{ns}/{plural}`, unless the third segment is a subresource of the
        // namespace itself (`/namespaces/{name}/status`).
        ["namespaces", ns, third] if !resources::namespaces().has_subresource(third) => Target {
            res: find(third)?,
            namespace: owned(ns),
            name: None,
            sub: None,
        },
        [plural, name] => Target {
            res: find(plural)?,
            namespace: None,
            name: owned(name),
            sub: None,
        },
        [plural, name, sub] => Target {
            res: find(plural)?,
            namespace: None,
            name: owned(name),
            sub: owned(sub),
        },
        ["namespaces", ns, plural, name] => Target {
            res: find(plural)?,
            namespace: owned(ns),
            name: owned(name),
            sub: None,
        },
        ["namespaces", ns, plural, name, sub] => Target {
            res: find(plural)?,
            namespace: owned(ns),
            name: owned(name),
            sub: owned(sub),
        },
        _ => return None,
    };
    // A namespaced resource asked for by name without a namespace, or a cluster-scoped one
    // under a namespace, is not a path the API has.
    let scoped_right = match (&target.name, &target.namespace) {
        (Some(_), None) => !target.res.namespaced,
        (_, Some(_)) => target.res.namespaced,
        (None, None) => true,
    };
    let sub_known = target
        .sub
        .as_deref()
        .is_none_or(|s| target.res.has_subresource(s));
    (scoped_right && sub_known).then_some(target)
}

async fn dispatch(api: &Api, req: Req, t: Target) -> Result<Response<Body>, ApiError> {
    use handlers::{binding, create, delete, logs, read, update, watch};
    let sub = t.sub.as_deref();
    match (&req.method, t.name.is_some(), sub) {
        (&Method::GET, false, None) if req.query.flag("watch") => watch::watch(api, &req, &t).await,
        (&Method::GET, false, None) => read::list(api, &req, &t).await,
        (&Method::GET, true, None | Some("status")) => read::get(api, &req, &t).await,
        (&Method::GET, true, Some("log")) => logs::logs(api, &req, &t).await,
        (&Method::POST, false, None) => create::handle(api, &req, &t).await,
        (&Method::POST, true, Some("binding")) => binding::bind(api, &req, &t).await,
        (&Method::PUT, true, None | Some("status")) => update::put(api, &req, &t).await,
        (&Method::PATCH, true, None | Some("status")) => update::patch(api, &req, &t).await,
        (&Method::DELETE, true, None) => delete::delete(api, &req, &t).await,
        (&Method::DELETE, false, None) => delete::delete_collection(api, &req, &t).await,
        _ => Err(ApiError::method_not_allowed(&format!(
            "{} {}",
            req.method, req.path
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (String, Option<String>, Option<String>, Option<String>);

    fn p(path: &str) -> Option<Parsed> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        parse(&segs).map(|t| (t.res.plural.to_string(), t.namespace, t.name, t.sub))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn resource_paths_of_each_shape() {
        let pods = || "pods".to_string();
        assert_eq!(p("/api/v1/pods"), Some((pods(), None, None, None)));
        assert_eq!(
            p("/api/v1/namespaces/default/pods"),
            Some((pods(), s("default"), None, None))
        );
        assert_eq!(
            p("/api/v1/namespaces/default/pods/web/log"),
            Some((pods(), s("default"), s("web"), s("log")))
        );
        assert_eq!(
            p("/api/v1/namespaces/kube-system"),
            Some(("namespaces".into(), None, s("kube-system"), None))
        );
        assert_eq!(
            p("/api/v1/namespaces/x/status"),
            Some(("namespaces".into(), None, s("x"), s("status")))
        );
        assert_eq!(
            p("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
            Some(("leases".into(), s("kube-node-lease"), s("n1"), None))
        );
        assert_eq!(
            p("/api/v1/nodes/n1/status"),
            Some(("nodes".into(), None, s("n1"), s("status")))
        );
    }

    #[test]
    fn paths_the_api_does_not_have() {
        assert_eq!(p("/api/v1/pods/web"), None, "a pod needs its namespace");
        assert_eq!(p("/api/v1/namespaces/default/nodes/n1"), None);
        assert_eq!(p("/api/v1/namespaces/default/pods/web/exec2"), None);
        assert_eq!(p("/api/v1/widgets"), None);
        assert_eq!(p("/apis/coordination.k8s.io/v2/leases"), None);
    }
}
