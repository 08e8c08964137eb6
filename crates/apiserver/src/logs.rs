//! `pods/log`: the options kubectl sends, and [`LogSource`], the extension point through which
//! the node agent serves a container's log. Until a source is set the server answers
//! `pods/log` with 503 ServiceUnavailable, saying that no node agent serves logs.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;

use crate::error::ApiError;
use crate::http::Query;

/// What `kubectl logs` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The container; the server fills it in when the pod has exactly one.
    pub container: String,
    /// Keep the stream open and send new lines as they are written.
    pub follow: bool,
    /// The log of the previous, terminated instance of the container.
    pub previous: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Only lines written in the last N seconds.
    pub since_seconds: Option<i64>,
    /// Only lines written at or after this RFC 3339 time.
    pub since_time: Option<String>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Reads the options from a `pods/NAME/log` query.
    pub fn from_query(q: &Query) -> Result<Self, ApiError> {
        Ok(LogOptions {
            container: q.get("container").unwrap_or("").to_string(),
            follow: q.flag("follow"),
            previous: q.flag("previous"),
            tail_lines: q.int("tailLines")?,
            since_seconds: q.int("sinceSeconds")?,
            since_time: q.non_empty("sinceTime").map(str::to_string),
            timestamps: q.flag("timestamps"),
            limit_bytes: q.int("limitBytes")?,
        })
    }
}

/// The bytes of a log, as they come.
pub type LogStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Why a log could not be served, as the agent reports it.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The request cannot be served as asked, e.g. `previous terminated container "app" in
    /// pod "web" not found` (answered 400, as the kubelet's errors are).
    #[error("{0}")]
    BadRequest(String),
    /// The container or its log does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The node or its agent cannot be reached (503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::BadRequest(m) => ApiError::bad_request(m),
            LogError::NotFound(m) => ApiError::new(404, "NotFound", m),
            LogError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

/// Serves container logs for the API server's `pods/log`. The node agent implements it
/// (over its authenticated log endpoint, or in process) and hands it to
/// [`crate::RunningServer::set_log_source`].
pub trait LogSource: Send + Sync + 'static {
    /// The log of `options.container` of `pod` (a pod bound to a node, with its container
    /// named and checked by the server).
    fn logs<'a>(
        &'a self,
        pod: &'a Pod,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<LogStream, LogError>>;
}

/// Where the server gets logs from; empty until the agent sets one.
#[derive(Default)]
pub struct LogSlot(std::sync::RwLock<Option<Arc<dyn LogSource>>>);

impl LogSlot {
    pub fn set(&self, source: Arc<dyn LogSource>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    pub fn get(&self) -> Option<Arc<dyn LogSource>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for LogSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.get().is_some();
        f.debug_struct("LogSlot").field("set", &set).finish()
    }
}
