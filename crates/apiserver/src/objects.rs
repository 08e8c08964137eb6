//! Objects as the server keeps them: JSON values, stored without `resourceVersion` (the store's
//! revision is the version and is put back on every read). Helpers here read and set the
//! metadata every kind has, and make uids, times and generated names.

use bytes::Bytes;
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};
use store::KeyValue;

use crate::error::ApiError;

/// The object stored under `kv`, with its `resourceVersion`.
pub fn from_kv(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("the stored object {} is not JSON: {e}", kv.key))
    })?;
    set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// The bytes to store: the object without `resourceVersion`.
pub fn to_bytes(obj: &Value) -> Bytes {
    let mut obj = obj.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// `metadata`, made an object if it was missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let m = obj
        .as_object_mut()
        .expect("made an object above")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("made an object above")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

/// The object's `resourceVersion` as a revision, when it has a valid one.
pub fn resource_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "metadata.resourceVersion: Invalid value: {v:?}: must be a decimal revision"
            ))
        }),
    }
}

pub fn set_resource_version(obj: &mut Value, revision: i64) {
    meta_mut(obj).insert("resourceVersion".into(), json!(revision.to_string()));
}

/// A label of the object.
pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

/// Now, as Kubernetes writes times: RFC 3339 in UTC with whole seconds.
pub fn now() -> String {
    format_time(jiff::Timestamp::now())
}

/// A time as Kubernetes writes it.
pub fn format_time(t: jiff::Timestamp) -> String {
    let secs = jiff::Timestamp::from_second(t.as_second()).unwrap_or(t);
    secs.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system random source does not fail on Linux once the kernel's pool is ready; a
    // zeroed value would only make a uid or name collide, which the store then refuses.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b
}

/// A random version 4 UUID.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Five random characters from the alphabet the Kubernetes API server uses for
/// `generateName` (no vowels, no look-alike digits), so that no word is spelt by chance.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The field of `obj` at a dotted path such as `spec.nodeName`, as a string for field
/// selectors: strings as they are, other scalars as JSON, missing as "".
pub fn field_string(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_suffixes_have_their_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn times_have_whole_seconds() {
        let t: jiff::Timestamp = "2024-01-02T03:04:05.678Z".parse().unwrap();
        assert_eq!(format_time(t), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn stored_bytes_drop_the_resource_version() {
        let v = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let back: Value = serde_json::from_slice(&to_bytes(&v)).unwrap();
        assert_eq!(back, json!({"metadata": {"name": "a"}}));
    }
}
