//! JSON patch (RFC 6902) with JSON pointers (RFC 6901), and JSON merge patch (RFC 7386).

use serde_json::{Map, Value};

use super::{PatchKind, invalid};
use crate::error::ApiError;

/// Applies a list of RFC 6902 operations in order; the first that fails fails the patch
/// and nothing of it is applied.
pub(super) fn apply_json_patch(target: &Value, ops: &Value) -> Result<Value, ApiError> {
    let Some(ops) = ops.as_array() else {
        return Err(ApiError::bad_request(
            "json patch: the body must be a list of operations",
        ));
    };
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut doc, op, i)?;
    }
    Ok(doc)
}

/// One operation, the `i`th of the patch.
fn apply_op(doc: &mut Value, op: &Value, i: usize) -> Result<(), ApiError> {
    let field = |name: &str| op.get(name).and_then(Value::as_str);
    let Some(name) = field("op") else {
        return Err(ApiError::bad_request(format!(
            "json patch: operation {i} has no \"op\""
        )));
    };
    let path = field("path").ok_or_else(|| {
        ApiError::bad_request(format!("json patch: {name} operation {i} has no \"path\""))
    })?;
    let value = || {
        op.get("value").cloned().ok_or_else(|| {
            ApiError::bad_request(format!("json patch: {name} operation {i} has no \"value\""))
        })
    };
    let from = || {
        field("from").ok_or_else(|| {
            ApiError::bad_request(format!("json patch: {name} operation {i} has no \"from\""))
        })
    };
    let fail = |why: String| {
        invalid(
            PatchKind::Json,
            format!("{name} operation on {path}: {why}"),
        )
    };

    match name {
        "add" => add(doc, path, value()?).map_err(fail),
        "remove" => remove(doc, path).map(drop).map_err(fail),
        "replace" => {
            let value = value()?;
            remove(doc, path).map_err(&fail)?;
            add(doc, path, value).map_err(fail)
        }
        "move" => {
            let from = from()?;
            if path != from && path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err(fail(format!(
                    "{from} cannot be moved into one of its children"
                )));
            }
            let moved = remove(doc, from).map_err(&fail)?;
            add(doc, path, moved).map_err(fail)
        }
        "copy" => {
            let copied = get(doc, from()?).map_err(&fail)?.clone();
            add(doc, path, copied).map_err(fail)
        }
        "test" => {
            let want = value()?;
            let have = get(doc, path).map_err(&fail)?;
            if same(have, &want) {
                Ok(())
            } else {
                Err(fail(format!(
                    "test failed: the value is {have}, not {want}"
                )))
            }
        }
        other => Err(ApiError::bad_request(format!(
            "json patch: operation {i} has an unknown op {other:?}"
        ))),
    }
}

/// The reference tokens of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (it must start with /)"
        ));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// An array index token: digits without a leading zero.
fn index(token: &str, len: usize) -> Result<usize, String> {
    let ok = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    match token.parse::<usize>() {
        Ok(i) if ok && i < len => Ok(i),
        Ok(_) if ok => Err(format!("index {token} is out of range (length {len})")),
        _ => Err(format!("{token:?} is not an array index")),
    }
}

/// The value a pointer names.
fn get<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in tokens(pointer)? {
        cur = match cur {
            Value::Object(m) => m.get(&t).ok_or_else(|| format!("{t:?} does not exist"))?,
            Value::Array(a) => &a[index(&t, a.len())?],
            _ => {
                return Err(format!(
                    "{t:?} is under a value that is not an object or array"
                ));
            }
        };
    }
    Ok(cur)
}

/// The parent of the value a pointer names, and the last token; `None` for the root.
fn parent<'a>(
    doc: &'a mut Value,
    pointer: &str,
) -> Result<Option<(&'a mut Value, String)>, String> {
    let mut toks = tokens(pointer)?;
    let Some(last) = toks.pop() else {
        return Ok(None);
    };
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(&t)
                .ok_or_else(|| format!("{t:?} does not exist"))?,
            Value::Array(a) => {
                let i = index(&t, a.len())?;
                &mut a[i]
            }
            _ => {
                return Err(format!(
                    "{t:?} is under a value that is not an object or array"
                ));
            }
        };
    }
    Ok(Some((cur, last)))
}

/// RFC 6902 `add`: sets a member, inserts into an array (`-` appends), or replaces the root.
fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    let Some((parent, last)) = parent(doc, pointer)? else {
        *doc = value;
        return Ok(());
    };
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) if last == "-" => {
            a.push(value);
            Ok(())
        }
        Value::Array(a) => {
            // Inserting at the length appends; anything past it is out of range.
            let i = index(&last, a.len() + 1)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err("the parent is not an object or array".to_string()),
    }
}

/// RFC 6902 `remove`: the value must exist; returns it.
fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let Some((parent, last)) = parent(doc, pointer)? else {
        return Ok(std::mem::take(doc));
    };
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("{last:?} does not exist")),
        Value::Array(a) => {
            let i = index(&last, a.len())?;
            Ok(a.remove(i))
        }
        _ => Err("the parent is not an object or array".to_string()),
    }
}

/// Equality for `test`: numbers compare by value, so `1` equals `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// RFC 7386: objects merge member by member, `null` removes a member, anything else
/// (arrays included) replaces.
pub(super) fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}
