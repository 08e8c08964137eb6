//! The Kubernetes strategic merge patch, as `kubectl apply`, `edit`, `label` and
//! `annotate` send it: objects merge member by member and `null` deletes, as in a merge
//! patch; lists merge by the patch merge key the API types declare for them (containers by
//! `name`, ports by `containerPort`, ...) or as sets of scalars, and every other list is
//! replaced. The directives `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
//! `$setElementOrder/<field>` are honoured and never stored.
//!
//! The merge keys come from [`list_merge`], a table by kind and field path built from the
//! `+patchMergeKey`/`+patchStrategy` tags of k8s.io/api core/v1 and apimachinery meta/v1
//! for the kinds served. The Kubernetes server reads them from the Go types instead, so a
//! kind added to the server needs its lists added here, or its lists are replaced.

use serde_json::{Map, Value};

use super::{PatchKind, invalid};
use crate::error::ApiError;

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    /// The patch's list replaces the live one.
    Replace,
    /// Elements are objects matched by this field; matched ones merge, new ones append.
    ByKey(&'static str),
    /// Elements are scalars kept as a set: the patch's new ones append.
    Set,
}

/// The merge strategy of the list at `path` (field names from the object's root, list
/// elements not counted) in an object of `kind`.
fn list_merge(kind: &str, path: &[String]) -> ListMerge {
    use ListMerge::{ByKey, Replace, Set};

    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, path.as_slice()) {
        (_, ["metadata", "finalizers"]) => Set,
        (_, ["metadata", "ownerReferences"]) => ByKey("uid"),
        (
            "Pod",
            [
                "spec",
                "containers" | "initContainers" | "ephemeralContainers",
            ],
        ) => ByKey("name"),
        (
            "Pod",
            [
                "spec",
                "containers" | "initContainers" | "ephemeralContainers",
                field,
            ],
        ) => match *field {
            "env" => ByKey("name"),
            "ports" => ByKey("containerPort"),
            "volumeMounts" => ByKey("mountPath"),
            "volumeDevices" => ByKey("devicePath"),
            _ => Replace,
        },
        (
            "Pod",
            [
                "spec",
                "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims",
            ],
        ) => ByKey("name"),
        ("Pod", ["spec", "hostAliases"]) => ByKey("ip"),
        ("Pod", ["spec", "topologySpreadConstraints"]) => ByKey("topologyKey"),
        ("Pod" | "Node" | "Namespace", ["status", "conditions"]) => ByKey("type"),
        ("Pod", ["status", "podIPs" | "hostIPs"]) => ByKey("ip"),
        ("Pod", ["status", "resourceClaimStatuses"]) => ByKey("name"),
        ("Node", ["spec", "podCIDRs"]) => Set,
        ("Node", ["status", "addresses"]) => ByKey("type"),
        ("ServiceAccount", ["secrets"]) => ByKey("name"),
        _ => Replace,
    }
}

/// Where a merge is: the patch format (for messages), the kind and the field path.
struct Cx<'a> {
    format: PatchKind,
    kind: &'a str,
    path: Vec<String>,
}

impl Cx<'_> {
    fn invalid(&self, message: impl std::fmt::Display) -> ApiError {
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.path.join("."))
        };
        invalid(self.format, format!("{message}{at}"))
    }
}

/// Merges `patch` into `target` (an object of `kind`; `Null` merges into nothing).
pub(super) fn merge(
    target: &Value,
    patch: &Value,
    kind: &str,
    format: PatchKind,
) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(format!(
            "{}: the body must be a JSON object",
            format.name()
        )));
    };
    let original = target.as_object().cloned().unwrap_or_default();
    let mut cx = Cx {
        format,
        kind,
        path: Vec::new(),
    };
    // `$patch: delete` of the whole object leaves an empty one, as in Kubernetes.
    let merged = merge_map(original, patch, &mut cx)?.unwrap_or_default();
    Ok(Value::Object(merged))
}

const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

fn is_directive(key: &str) -> bool {
    key == "$patch"
        || key == "$retainKeys"
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Merges a patch object into an object; `None` when the patch deletes it.
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    cx: &mut Cx,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match patch.get("$patch") {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        // The patch is the whole new value; merging it into nothing strips its directives.
        Some(Value::String(d)) if d == "replace" => original = Map::new(),
        Some(other) => return Err(cx.invalid(format!("unknown directive $patch: {other}"))),
    }

    if let Some(keys) = patch.get("$retainKeys") {
        let Some(keys) = keys.as_array().filter(|k| k.iter().all(Value::is_string)) else {
            return Err(cx.invalid("$retainKeys must be a list of field names"));
        };
        original.retain(|k, _| keys.iter().any(|r| r == k));
    }

    for (key, values) in patch {
        let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
            continue;
        };
        let Some(values) = values.as_array() else {
            return Err(cx.invalid(format!("{key} must be a list")));
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|v| !values.contains(v));
        }
    }

    for (key, value) in patch {
        if is_directive(key) {
            continue;
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let live = original.get_mut(key).map(std::mem::take);
        cx.path.push(key.clone());
        let merged = merge_value(live, value, cx);
        cx.path.pop();
        match merged? {
            Some(v) => original.insert(key.clone(), v),
            None => original.remove(key),
        };
    }

    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let Some(order) = order.as_array() else {
            return Err(cx.invalid(format!("{key} must be a list")));
        };
        cx.path.push(field.to_string());
        let merge = list_merge(cx.kind, &cx.path);
        cx.path.pop();
        if let Some(Value::Array(list)) = original.get_mut(field) {
            match merge {
                ListMerge::ByKey(k) => reorder(list, order, |v| v.get(k)),
                ListMerge::Set => reorder(list, order, itself),
                // kubectl sends no order for a replaced list: its order is the patch's.
                ListMerge::Replace => {}
            }
        }
    }
    Ok(Some(original))
}

/// Merges a patch value into the live one (absent when `None`); `None` when deleted.
fn merge_value(live: Option<Value>, patch: &Value, cx: &mut Cx) -> Result<Option<Value>, ApiError> {
    match (live, patch) {
        (Some(Value::Object(live)), Value::Object(p)) => {
            Ok(merge_map(live, p, cx)?.map(Value::Object))
        }
        (_, Value::Object(p)) => Ok(merge_map(Map::new(), p, cx)?.map(Value::Object)),
        (Some(Value::Array(live)), Value::Array(p)) => {
            Ok(Some(Value::Array(merge_list(live, p, cx)?)))
        }
        (_, Value::Array(p)) => Ok(Some(Value::Array(merge_list(Vec::new(), p, cx)?))),
        (_, scalar) => Ok(Some(scalar.clone())),
    }
}

/// The `$patch` directive of a list element, if it is an object that has one.
fn element_directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// Merges a patch list into the live list by the field's strategy.
fn merge_list(mut live: Vec<Value>, patch: &[Value], cx: &mut Cx) -> Result<Vec<Value>, ApiError> {
    let merge = list_merge(cx.kind, &cx.path);

    // `[{"$patch": "replace"}, ...]`: the other elements are the new list, whatever the
    // field's strategy.
    let replace = patch
        .iter()
        .any(|e| element_directive(e) == Some("replace"));
    if replace || merge == ListMerge::Replace {
        let mut out = Vec::with_capacity(patch.len());
        for e in patch
            .iter()
            .filter(|e| element_directive(e) != Some("replace"))
        {
            if let Some(v) = merge_value(None, e, cx)? {
                out.push(v);
            }
        }
        return Ok(out);
    }

    let ListMerge::ByKey(key) = merge else {
        for e in patch {
            if !live.contains(e) {
                live.push(e.clone());
            }
        }
        return Ok(live);
    };

    for e in patch {
        let Value::Object(p) = e else {
            return Err(cx.invalid(format!("the list merges by {key:?}; {e} is not an object")));
        };
        let Some(id) = p.get(key) else {
            return Err(cx.invalid(format!("an element has no merge key {key:?}")));
        };
        match live.iter().position(|l| l.get(key) == Some(id)) {
            Some(i) => {
                let merged = match std::mem::take(&mut live[i]) {
                    Value::Object(l) => merge_map(l, p, cx)?,
                    _ => merge_map(Map::new(), p, cx)?,
                };
                match merged {
                    Some(m) => live[i] = Value::Object(m),
                    None => {
                        live.remove(i);
                    }
                }
            }
            None => {
                // `$patch: delete` of an element that is not there deletes nothing.
                if let Some(m) = merge_map(Map::new(), p, cx)? {
                    live.push(Value::Object(m));
                }
            }
        }
    }
    Ok(live)
}

/// A scalar's identity in a set list is the scalar.
fn itself(v: &Value) -> Option<&Value> {
    Some(v)
}

/// `$setElementOrder`: the elements that `order` names take the places the named elements
/// hold, in the order given; the others (present only on the server) keep their places.
fn reorder(list: &mut [Value], order: &[Value], id: impl Fn(&Value) -> Option<&Value>) {
    let rank = |v: &Value| {
        let v = id(v)?;
        order.iter().position(|o| id(o) == Some(v))
    };
    let slots: Vec<usize> = (0..list.len())
        .filter(|&i| rank(&list[i]).is_some())
        .collect();
    let mut named: Vec<Value> = slots.iter().map(|&i| list[i].clone()).collect();
    named.sort_by_key(|v| rank(v));
    for (slot, v) in slots.into_iter().zip(named) {
        list[slot] = v;
    }
}
