//! Request bodies in the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which kubectl 1.32 and later use for `create secret|configmap|namespace|serviceaccount`.
//!
//! Such a body is the four bytes `k8s\0`, then a `runtime.Unknown` whose `typeMeta` names the
//! kind and whose `raw` is the object as protobuf. [`decode`] turns it into the JSON kubectl
//! would have sent, so the handlers see one form. The messages are read by hand ([`wire`])
//! for the four kinds kubectl sends this way; field numbers are those of the `generated.proto`
//! files of k8s.io/api core/v1 and k8s.io/apimachinery (meta/v1, runtime). The `k8s-pb` crate
//! has every type, but it compiles 3 MB of generated code and has no JSON form, so the
//! mapping to JSON would be written here all the same.
//!
//! As in Kubernetes' decoder, fields this reader does not know are skipped; a known field
//! with the wrong wire type, a string that is not UTF-8 or a cut body is a 400.

#[cfg(test)]
mod tests;
mod wire;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use self::wire::{Field, Fields, Malformed};
use crate::error::ApiError;

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

type Object = Map<String, Value>;

/// Decodes a protobuf request body into the object's JSON form (apiVersion, kind, metadata,
/// ...), as if kubectl had sent JSON.
///
/// # Errors
///
/// 400 BadRequest for a body without the `k8s\0` prefix or that is not a valid message;
/// 415 UnsupportedMediaType for a kind other than v1 Secret, ConfigMap, Namespace and
/// ServiceAccount (Pods are not decoded: no kubectl sends them as protobuf), and for a
/// compressed `contentEncoding`.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let Some(envelope) = body.strip_prefix(MAGIC) else {
        return Err(ApiError::bad_request(
            "the protobuf body does not start with the \"k8s\\x00\" prefix",
        ));
    };
    let unknown = Unknown::read(envelope).map_err(|e| malformed("runtime.Unknown", &e))?;
    if unknown.kind.is_empty() {
        return Err(ApiError::bad_request("the protobuf body names no kind"));
    }
    if !unknown.content_encoding.is_empty() {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the protobuf body has content encoding {:?}, which is not supported",
                unknown.content_encoding
            ),
        ));
    }

    let read: fn(&[u8]) -> Result<Object, Malformed> = match (unknown.api_version, unknown.kind) {
        ("v1", "Secret") => secret,
        ("v1", "ConfigMap") => config_map,
        ("v1", "Namespace") => namespace,
        ("v1", "ServiceAccount") => service_account,
        (api_version, kind) => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the protobuf body holds a {kind} ({api_version}), which is only accepted \
                     as JSON; protobuf bodies are decoded for v1 Secret, ConfigMap, Namespace \
                     and ServiceAccount"
                ),
            ));
        }
    };
    let fields = read(unknown.raw).map_err(|e| malformed(unknown.kind, &e))?;

    let mut obj = Object::new();
    obj.insert("apiVersion".into(), json!(unknown.api_version));
    obj.insert("kind".into(), json!(unknown.kind));
    obj.extend(fields);
    Ok(Value::Object(obj))
}

fn malformed(message: &str, why: &Malformed) -> ApiError {
    ApiError::bad_request(format!("the protobuf body is not a valid {message}: {why}"))
}

/// `runtime.Unknown`: `typeMeta` 1 (`apiVersion` 1, `kind` 2), `raw` 2,
/// `contentEncoding` 3, `contentType` 4 (ignored: `raw` is protobuf in a protobuf body).
struct Unknown<'a> {
    api_version: &'a str,
    kind: &'a str,
    raw: &'a [u8],
    content_encoding: &'a str,
}

impl<'a> Unknown<'a> {
    fn read(buf: &'a [u8]) -> Result<Self, Malformed> {
        let mut u = Unknown {
            api_version: "",
            kind: "",
            raw: &[],
            content_encoding: "",
        };
        for f in Fields::new(buf) {
            let f = f?;
            match f.number {
                1 => {
                    for t in Fields::new(f.bytes()?) {
                        let t = t?;
                        match t.number {
                            1 => u.api_version = t.string()?,
                            2 => u.kind = t.string()?,
                            _ => {}
                        }
                    }
                }
                2 => u.raw = f.bytes()?,
                3 => u.content_encoding = f.string()?,
                _ => {}
            }
        }
        Ok(u)
    }
}

/// A string field, left out when empty as `omitempty` leaves it out of the JSON.
fn put_str(obj: &mut Object, key: &str, f: &Field) -> Result<(), Malformed> {
    let s = f.string()?;
    if !s.is_empty() {
        obj.insert(key.into(), json!(s));
    }
    Ok(())
}

/// One element of a repeated field.
fn push(obj: &mut Object, key: &str, value: Value) {
    let list = obj.entry(key).or_insert_with(|| json!([]));
    if let Value::Array(list) = list {
        list.push(value);
    }
}

/// One entry (key 1, value 2) of a `map<string, string>` or, when `binary`, of a
/// `map<string, bytes>`, whose values JSON carries as base64.
fn put_entry(obj: &mut Object, key: &str, f: &Field, binary: bool) -> Result<(), Malformed> {
    let (mut k, mut v) = ("", Value::String(String::new()));
    for e in Fields::new(f.bytes()?) {
        let e = e?;
        match e.number {
            1 => k = e.string()?,
            2 if binary => v = json!(BASE64.encode(e.bytes()?)),
            2 => v = json!(e.string()?),
            _ => {}
        }
    }
    let map = obj.entry(key).or_insert_with(|| json!({}));
    if let Value::Object(map) = map {
        map.insert(k.to_string(), v);
    }
    Ok(())
}

/// A `meta/v1.Time` (`seconds` 1, `nanos` 2) as RFC 3339; the zero time, which Go writes
/// for an unset one, is left out as JSON's `null` is.
fn put_time(obj: &mut Object, key: &str, f: &Field) -> Result<(), Malformed> {
    let mut seconds = 0;
    for t in Fields::new(f.bytes()?) {
        let t = t?;
        if t.number == 1 {
            seconds = t.int()?;
        }
    }
    if seconds != 0
        && let Ok(ts) = jiff::Timestamp::from_second(seconds)
    {
        obj.insert(key.into(), json!(ts.to_string()));
    }
    Ok(())
}

/// `meta/v1.ObjectMeta`. `managedFields` (17) is skipped: the server sets its own.
fn object_meta(buf: &[u8]) -> Result<Object, Malformed> {
    let mut m = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => put_str(&mut m, "name", &f)?,
            2 => put_str(&mut m, "generateName", &f)?,
            3 => put_str(&mut m, "namespace", &f)?,
            4 => put_str(&mut m, "selfLink", &f)?,
            5 => put_str(&mut m, "uid", &f)?,
            6 => put_str(&mut m, "resourceVersion", &f)?,
            7 if f.int()? != 0 => _ = m.insert("generation".into(), json!(f.int()?)),
            8 => put_time(&mut m, "creationTimestamp", &f)?,
            9 => put_time(&mut m, "deletionTimestamp", &f)?,
            10 => _ = m.insert("deletionGracePeriodSeconds".into(), json!(f.int()?)),
            11 => put_entry(&mut m, "labels", &f, false)?,
            12 => put_entry(&mut m, "annotations", &f, false)?,
            13 => push(&mut m, "ownerReferences", owner_reference(f.bytes()?)?),
            14 => push(&mut m, "finalizers", json!(f.string()?)),
            _ => {}
        }
    }
    Ok(m)
}

/// `meta/v1.OwnerReference`.
fn owner_reference(buf: &[u8]) -> Result<Value, Malformed> {
    let mut r = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => put_str(&mut r, "kind", &f)?,
            3 => put_str(&mut r, "name", &f)?,
            4 => put_str(&mut r, "uid", &f)?,
            5 => put_str(&mut r, "apiVersion", &f)?,
            6 => _ = r.insert("controller".into(), json!(f.bool()?)),
            7 => _ = r.insert("blockOwnerDeletion".into(), json!(f.bool()?)),
            _ => {}
        }
    }
    Ok(Value::Object(r))
}

/// `core/v1.Secret`: `data` values become base64 strings as in JSON.
fn secret(buf: &[u8]) -> Result<Object, Malformed> {
    let mut s = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => _ = s.insert("metadata".into(), Value::Object(object_meta(f.bytes()?)?)),
            2 => put_entry(&mut s, "data", &f, true)?,
            3 => put_str(&mut s, "type", &f)?,
            4 => put_entry(&mut s, "stringData", &f, false)?,
            5 => _ = s.insert("immutable".into(), json!(f.bool()?)),
            _ => {}
        }
    }
    Ok(s)
}

/// `core/v1.ConfigMap`.
fn config_map(buf: &[u8]) -> Result<Object, Malformed> {
    let mut c = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => _ = c.insert("metadata".into(), Value::Object(object_meta(f.bytes()?)?)),
            2 => put_entry(&mut c, "data", &f, false)?,
            3 => put_entry(&mut c, "binaryData", &f, true)?,
            4 => _ = c.insert("immutable".into(), json!(f.bool()?)),
            _ => {}
        }
    }
    Ok(c)
}

/// `core/v1.Namespace`: `spec.finalizers` and `status.phase`; the status conditions are
/// skipped, as the server sets a namespace's status itself.
fn namespace(buf: &[u8]) -> Result<Object, Malformed> {
    let mut n = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => _ = n.insert("metadata".into(), Value::Object(object_meta(f.bytes()?)?)),
            2 => {
                let mut spec = Object::new();
                for g in Fields::new(f.bytes()?) {
                    let g = g?;
                    if g.number == 1 {
                        push(&mut spec, "finalizers", json!(g.string()?));
                    }
                }
                n.insert("spec".into(), Value::Object(spec));
            }
            3 => _ = n.insert("status".into(), strings(f.bytes()?, &["phase"])?),
            _ => {}
        }
    }
    Ok(n)
}

/// `core/v1.ServiceAccount`.
fn service_account(buf: &[u8]) -> Result<Object, Malformed> {
    let mut a = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        match f.number {
            1 => _ = a.insert("metadata".into(), Value::Object(object_meta(f.bytes()?)?)),
            2 => push(&mut a, "secrets", strings(f.bytes()?, OBJECT_REFERENCE)?),
            3 => push(&mut a, "imagePullSecrets", strings(f.bytes()?, &["name"])?),
            4 => _ = a.insert("automountServiceAccountToken".into(), json!(f.bool()?)),
            _ => {}
        }
    }
    Ok(a)
}

/// The fields of `core/v1.ObjectReference`, numbered from 1.
const OBJECT_REFERENCE: &[&str] = &[
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

/// A message of string fields only, `names[i]` being field `i + 1`
/// (`LocalObjectReference` is `["name"]`).
fn strings(buf: &[u8], names: &[&str]) -> Result<Value, Malformed> {
    let mut r = Object::new();
    for f in Fields::new(buf) {
        let f = f?;
        let i = (f.number as usize).wrapping_sub(1);
        if let Some(key) = names.get(i) {
            put_str(&mut r, key, &f)?;
        }
    }
    Ok(Value::Object(r))
}
