//! `GET` of one object and of lists: label and field selectors, `limit` and `continue`
//! pages read at one revision, and the Table form `kubectl get` asks for.

use base64::Engine;
use http::Response;
use serde_json::{Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req, json, json_as};
use crate::objects;
use crate::resources::Resource;
use crate::router::Target;
use crate::selectors::{FieldSelector, LabelSelector, supported_fields};
use crate::table;

/// `GET .../{plural}/{name}` (and `/status`, which answers the whole object).
pub async fn get(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let (obj, rev) = api
        .read(t.res, t.namespace.as_deref(), super::name(t))
        .await?;
    if req.wants_table() {
        let rv = rev.to_string();
        let include = req.query.get("includeObject");
        let tbl = table::table(t.res, std::slice::from_ref(&obj), &rv, include);
        return Ok(json_as(200, table::CONTENT_TYPE, &tbl));
    }
    Ok(json(200, &obj))
}

/// The selectors of a list or watch request.
#[derive(Debug, Default)]
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_request(req: &Req, res: &Resource) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(req.query.get("fieldSelector").unwrap_or(""))?;
        fields.check(res.kind, supported_fields(res.kind))?;
        Ok(Filter { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

// A `continue` token: the revision the first page was read at and the last key sent.
fn encode_continue(revision: i64, last_key: &str) -> String {
    let raw = json!({"rv": revision, "start": last_key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    Ok((rv, start))
}

/// `GET .../{plural}`: a list, or a Table of it.
pub async fn list(api: &Api, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_request(req, t.res)?;
    let limit = req.query.int("limit")?.unwrap_or(0).max(0) as usize;
    let (at, start) = match req.query.non_empty("continue") {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            (Some(rv), Some(start))
        }
        None => (None, None),
    };
    let prefix = t.res.list_prefix(t.namespace.as_deref());
    let page = api
        .store
        .list(&prefix, start.as_deref(), limit, at)
        .await
        .map_err(|e| ApiError::from_store(e, t.res, ""))?;
    let mut items = Vec::with_capacity(page.items.len());
    for kv in &page.items {
        let obj = objects::from_kv(kv)?;
        if filter.matches(&obj) {
            items.push(obj);
        }
    }
    let rv = page.revision.to_string();
    let mut meta = json!({"resourceVersion": rv});
    if page.more
        && let Some(last) = page.items.last()
    {
        meta["continue"] = json!(encode_continue(page.revision, &last.key));
    }

    if req.wants_table() {
        let mut tbl = table::table(t.res, &items, &rv, req.query.get("includeObject"));
        tbl["metadata"] = meta;
        return Ok(json_as(200, table::CONTENT_TYPE, &tbl));
    }
    Ok(json(
        200,
        &json!({
            "kind": format!("{}List", t.res.kind),
            "apiVersion": t.res.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_refuse_garbage() {
        let t = encode_continue(42, "/pods/default/web");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "/pods/default/web".to_string())
        );
        assert!(decode_continue("not-a-token!").is_err());
    }
}
