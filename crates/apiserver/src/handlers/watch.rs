//! `GET ...?watch=true`: a chunked stream of `{"type": ..., "object": ...}` lines fed from
//! the store's revision log. Without a `resourceVersion` (or with `0`) the stream starts with
//! the current objects as `ADDED`; with one it resumes after it, and a revision the log no
//! longer holds ends the stream with a 410 `Expired` event, which makes clients list again.
//!
//! Selectors are applied to both sides of a change, as the Kubernetes API server does: an
//! object that starts to match arrives as `ADDED`, one that stops matching as `DELETED`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use store::{Event, EventKind, StoreError};

use super::read::Filter;
use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req};
use crate::objects;
use crate::resources::Resource;
use crate::router::Target;
use crate::table;

/// How long a watch without `timeoutSeconds` stays open; clients resume after it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How a watch writes each object.
#[derive(Clone)]
struct Encoder {
    res: &'static Resource,
    table: bool,
    filter: std::sync::Arc<Filter>,
}

impl Encoder {
    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let object = if self.table {
            let rv = objects::meta_str(obj, "resourceVersion")
                .unwrap_or("")
                .to_string();
            table::table(self.res, std::slice::from_ref(obj), &rv, None)
        } else {
            obj.clone()
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    // The line for one store event, if the selectors let anything through.
    fn event(&self, ev: &Event) -> Option<Bytes> {
        let decode = |kv: &store::KeyValue| objects::from_kv(kv).ok();
        let prev = ev.prev.as_ref().and_then(decode);
        let was = prev.as_ref().is_some_and(|p| self.filter.matches(p));
        match ev.kind {
            EventKind::Deleted => {
                let mut obj = prev?;
                objects::set_resource_version(&mut obj, ev.revision());
                was.then(|| self.line("DELETED", &obj))
            }
            EventKind::Added | EventKind::Modified => {
                let obj = decode(&ev.kv)?;
                match (was, self.filter.matches(&obj)) {
                    (true, true) => Some(self.line("MODIFIED", &obj)),
                    (false, true) => Some(self.line("ADDED", &obj)),
                    (true, false) => Some(self.line("DELETED", &obj)),
                    (false, false) => None,
                }
            }
        }
    }

    fn expired(&self, message: String) -> Bytes {
        let status = ApiError::expired(message).to_status();
        let mut line =
            serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// `GET .../{plural}?watch=true`.
pub async fn watch(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let enc = Encoder {
        res: t.res,
        table: req.wants_table(),
        filter: std::sync::Arc::new(Filter::from_request(req, t.res)?),
    };
    let timeout = req
        .query
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64));
    let prefix = t.res.list_prefix(t.namespace.as_deref());

    let mut first = Vec::new();
    let after = match req.query.non_empty("resourceVersion") {
        Some("0") | None => {
            let (items, rev) = api.list_all(t.res, &prefix).await?;
            for obj in items.iter().filter(|o| enc.filter.matches(o)) {
                first.push(enc.line("ADDED", obj));
            }
            rev
        }
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("resourceVersion: invalid value {v:?}")))?,
    };

    let live = match api.store.watch(&prefix, after).await {
        Ok(s) => s,
        Err(StoreError::Compacted {
            requested,
            compact_revision,
        }) => {
            let m = format!("too old resource version: {requested} ({compact_revision})");
            let line = enc.expired(m);
            return Ok(stream_response(&enc, stream::iter([line]).boxed()));
        }
        Err(e) => return Err(ApiError::from_store(e, t.res, "")),
    };
    let events_enc = enc.clone();
    let live = live
        .take_while(|item| {
            let go = !matches!(item, Err(e) if !matches!(e, StoreError::Compacted { .. }));
            async move { go }
        })
        .filter_map(move |item| {
            let line = match item {
                Ok(ev) => events_enc.event(&ev),
                Err(e) => Some(events_enc.expired(e.to_string())),
            };
            async move { line }
        });
    let lines = stream::iter(first)
        .chain(live)
        .take_until(tokio::time::sleep(timeout))
        .boxed();
    Ok(stream_response(&enc, lines))
}

fn stream_response(
    enc: &Encoder,
    lines: futures_util::stream::BoxStream<'static, Bytes>,
) -> Response<Body> {
    let frames = lines.map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    let ct = if enc.table {
        table::CONTENT_TYPE
    } else {
        "application/json"
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ct),
    );
    resp
}
