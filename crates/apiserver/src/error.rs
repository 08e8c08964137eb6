//! Errors: [`ApiError`] is what a request handler returns, and it is always answered as a
//! `metav1.Status` with the HTTP code and reason kubectl expects; [`StartError`] is why the
//! server did not start.

use serde_json::{Value, json};
use store::StoreError;

use crate::resources::Resource;

/// A failed request, answered as a `metav1.Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// The Status `details` (name, kind, group, causes), when there are any.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, res: &Resource, name: &str) -> Self {
        let mut d = json!({"name": name, "kind": res.plural});
        if !res.group.is_empty() {
            d["group"] = json!(res.group);
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        let m = format!("{} \"{name}\" not found", res.qualified());
        ApiError::new(404, "NotFound", m).with_details(res, name)
    }

    pub fn already_exists(res: &Resource, name: &str) -> Self {
        let m = format!("{} \"{name}\" already exists", res.qualified());
        ApiError::new(409, "AlreadyExists", m).with_details(res, name)
    }

    pub fn conflict(res: &Resource, name: &str, why: &str) -> Self {
        let m = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            res.qualified()
        );
        ApiError::new(409, "Conflict", m).with_details(res, name)
    }

    /// The conflict of a stale `resourceVersion`, in the Kubernetes API server's words.
    pub fn stale(res: &Resource, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version \
             and try again",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 422 Invalid with one cause per `(field, cause type, message)`.
    pub fn invalid(res: &Resource, name: &str, causes: &[(String, &str, String)]) -> Self {
        let parts: Vec<String> = causes.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let m = format!("{} \"{name}\" is invalid: {joined}", res.kind);
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, r, m)| json!({"field": f, "reason": r, "message": m}))
            .collect();
        let mut e = ApiError::new(422, "Invalid", m);
        e.details = Some(json!({"name": name, "kind": res.kind, "causes": causes}));
        if !res.group.is_empty() {
            e.details.as_mut().expect("just set")["group"] = json!(res.group);
        }
        e
    }

    pub fn method_not_allowed(what: &str) -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn path_not_found(path: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource: {path}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// A store failure on object `name` of `res`, as the matching Status.
    pub fn from_store(err: StoreError, res: &Resource, name: &str) -> Self {
        match err {
            StoreError::AlreadyExists { .. } => Self::already_exists(res, name),
            StoreError::NotFound { .. } => Self::not_found(res, name),
            StoreError::Conflict { .. } => Self::stale(res, name),
            StoreError::Compacted {
                requested,
                compact_revision,
            } => Self::expired(format!(
                "too old resource version: {requested} ({compact_revision})"
            )),
            StoreError::FutureRevision { requested, .. } => ApiError::new(
                504,
                "Timeout",
                format!("Too large resource version: {requested}"),
            ),
            other => Self::internal(error_chain(&other)),
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    /// An error from a Status that another part (podspec) built.
    pub fn from_status(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> Self {
        let code = status.code.unwrap_or(500) as u16;
        let reason = match status.reason.as_deref() {
            Some("BadRequest") => "BadRequest",
            Some("Invalid") => "Invalid",
            _ => "InternalError",
        };
        let mut e = ApiError::new(code, reason, status.message.clone().unwrap_or_default());
        e.details = status
            .details
            .as_ref()
            .and_then(|d| serde_json::to_value(d).ok());
        e
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// Why [`crate::Server::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the server's certificates and token")]
    Pki(#[from] crate::pki::PkiError),
    #[error("binding {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the kubeconfig {path}")]
    Kubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the built-in objects")]
    Bootstrap(#[source] ApiError),
}
