//! The request as handlers see it ([`Req`]: method, path, query, headers and the whole body)
//! and the helpers that build responses: JSON objects, Status errors, streams.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::Value;

use crate::error::ApiError;

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// One request with its body read.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn new(parts: http::request::Parts, body: Bytes) -> Self {
        Req {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: Query::parse(parts.uri.query().unwrap_or("")),
            headers: parts.headers,
            body,
        }
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Accept` header, or "".
    pub fn accept(&self) -> &str {
        self.header(header::ACCEPT)
    }

    /// The media type of the body, without parameters.
    pub fn content_type(&self) -> &str {
        let ct = self.header(header::CONTENT_TYPE);
        ct.split(';').next().unwrap_or("").trim()
    }

    /// Whether the client asked for a `meta.k8s.io` Table (`kubectl get`).
    pub fn wants_table(&self) -> bool {
        self.accept()
            .split(',')
            .any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"))
    }
}

/// The query string, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Self {
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name`.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// `name=true` (or `name` with `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    /// `name` as an integer; a malformed one is a 400.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {name}: {v:?} is not an integer"))
            }),
        }
    }
}

/// A body of bytes given at once.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with a body and content type.
pub fn response(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response.
pub fn json(code: u16, value: &Value) -> Response<Body> {
    json_as(code, "application/json", value)
}

/// A JSON response with another JSON content type (Table, aggregated discovery).
pub fn json_as(code: u16, content_type: &str, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    response(code, content_type, body)
}

/// A Status error response.
pub fn error_response(err: &ApiError) -> Response<Body> {
    tracing::debug!(code = err.code, reason = err.reason, message = %err.message, "refused");
    json(err.code, &err.to_status())
}

/// Reads a JSON body.
pub fn json_body(req: &Req) -> Result<Value, ApiError> {
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}
