//! Strict decoding: the raw JSON value of a Pod walked against [`crate::schema`].
//!
//! Each field the schema does not know is refused with its path, and where it belongs
//! elsewhere (a field of an enclosing object indented too far, a field of a nested object
//! written too high, a different spelling) the error says so. A misplaced field's content is
//! still checked against the type it was meant to have, so one run names the mistakes
//! inside it too. Values of the wrong JSON type are refused as Go's decoder refuses them.
//!
//! The walk also returns a cleaned copy for typed decoding: nulls dropped (as the API server
//! reads them, as absent), numeric quantities turned into strings, and each misplaced field
//! moved to where it was meant to be, so that validation can go on to look at its values.
//! Such a copy is only used to find more errors: the unknown field itself is always an error.

use serde_json::{Map, Value};

use crate::error::{ErrorKind, FieldError};
use crate::names::closest;
use crate::quantity::{QUANTITY_FMT, Quantity};
use crate::schema::{Schema, Ty, schema};

/// A field written under `from` that was meant to be at `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The path the field was meant to have, e.g. `spec`.
    pub to: String,
    /// The path where it was written, e.g. `metadata.spec`.
    pub from: String,
}

/// The outcome of a strict walk.
#[derive(Debug, Default)]
pub struct Checked {
    /// The cleaned value, ready for typed decoding.
    pub value: Value,
    /// Every decoding problem found.
    pub errors: Vec<FieldError>,
    /// Misplaced fields moved in `value`, to map later error paths back to the source.
    pub relocations: Vec<Relocation>,
}

/// Walks `value` as a `Pod`.
pub fn check_pod(value: &Value) -> Checked {
    let mut w = Walker {
        schema: schema(),
        errors: Vec::new(),
        hoists: Vec::new(),
        relocations: Vec::new(),
    };
    let mut ancestors = Vec::new();
    let cleaned = w
        .walk(value, &Ty::Object("Pod"), "", &mut ancestors)
        .unwrap_or(Value::Object(Map::new()));
    Checked {
        value: cleaned,
        errors: w.errors,
        relocations: w.relocations,
    }
}

/// `parent.key`, or `key` at the top level.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `parent[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

struct Hoist {
    target: String,
    key: &'static str,
    value: Value,
    from: String,
}

struct Walker {
    schema: &'static Schema,
    errors: Vec<FieldError>,
    hoists: Vec<Hoist>,
    relocations: Vec<Relocation>,
}

impl Walker {
    fn type_error(&mut self, path: &str, v: &Value, ty: &Ty, fix: Option<String>) {
        let got = match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        };
        let mut e = FieldError::new(
            path,
            ErrorKind::TypeInvalid,
            format!("must be a {}, not {got}", ty.describe()),
        );
        if !matches!(v, Value::Object(_) | Value::Array(_)) {
            e.value = Some(v.clone());
        }
        e.fix = fix;
        self.errors.push(e);
    }

    fn walk(
        &mut self,
        v: &Value,
        ty: &Ty,
        path: &str,
        anc: &mut Vec<(String, &'static str)>,
    ) -> Option<Value> {
        match (ty, v) {
            (_, Value::Null) => None,
            (Ty::Any, _) => Some(v.clone()),
            (Ty::String | Ty::Time, Value::String(_)) => Some(v.clone()),
            (Ty::String | Ty::Time, Value::Number(_) | Value::Bool(_)) => {
                let fix = format!("quote it: \"{v}\"");
                self.type_error(path, v, ty, Some(fix));
                None
            }
            (Ty::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
            (Ty::Int, Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                let fix = format!("write it without quotes: {}", s.trim());
                self.type_error(path, v, ty, Some(fix));
                None
            }
            (Ty::Number, Value::Number(_)) | (Ty::Bool, Value::Bool(_)) => Some(v.clone()),
            (Ty::Bool, Value::String(s)) if matches!(s.as_str(), "true" | "false") => {
                let fix = format!("write it without quotes: {s}");
                self.type_error(path, v, ty, Some(fix));
                None
            }
            (Ty::IntOrString, Value::String(_)) => Some(v.clone()),
            (Ty::IntOrString, Value::Number(n)) if n.is_i64() => Some(v.clone()),
            (Ty::Quantity, Value::String(s)) => self.quantity(path, v, s),
            (Ty::Quantity, Value::Number(n)) => self.quantity(path, v, &n.to_string()),
            (Ty::List(inner), Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = self.walk(item, inner, &index(path, i), anc) {
                        out.push(c);
                    }
                }
                Some(Value::Array(out))
            }
            (Ty::List(inner), _) => {
                let fix = match (inner.as_ref(), v) {
                    (Ty::String, Value::String(s)) => {
                        let words: Vec<String> =
                            s.split_whitespace().map(|w| format!("{w:?}")).collect();
                        Some(format!("write a list, e.g. [{}]", words.join(", ")))
                    }
                    (Ty::Object(_), Value::Object(_)) => {
                        Some("start the item with \"- \" to make it a list of one".to_string())
                    }
                    _ => None,
                };
                self.type_error(path, v, ty, fix);
                None
            }
            (Ty::Map(inner), Value::Object(map)) => {
                let mut out = Map::new();
                for (k, item) in map {
                    if let Some(c) = self.walk(item, inner, &format!("{path}[{k}]"), anc) {
                        out.insert(k.clone(), c);
                    }
                }
                Some(Value::Object(out))
            }
            (Ty::Object(name), Value::Object(map)) => Some(self.object(name, map, path, anc)),
            _ => {
                self.type_error(path, v, ty, None);
                None
            }
        }
    }

    fn quantity(&mut self, path: &str, v: &Value, s: &str) -> Option<Value> {
        match Quantity::parse(s) {
            Ok(_) => Some(Value::String(s.to_string())),
            Err(msg) => {
                let msg = if msg == QUANTITY_FMT {
                    msg
                } else {
                    format!("{msg}; {QUANTITY_FMT}")
                };
                self.errors.push(FieldError::invalid(path, v.clone(), msg));
                None
            }
        }
    }

    fn object(
        &mut self,
        name: &'static str,
        map: &Map<String, Value>,
        path: &str,
        anc: &mut Vec<(String, &'static str)>,
    ) -> Value {
        anc.push((path.to_string(), name));
        let mut out = Map::new();
        for (k, v) in map {
            let p = child(path, k);
            match self.schema.field(name, k) {
                Some(f) => {
                    if let Some(c) = self.walk(v, &f.ty, &p, anc) {
                        out.insert(k.clone(), c);
                    }
                }
                None => {
                    if let Some((key, c)) = self.unknown(name, k, v, &p, anc)
                        && !map.contains_key(key)
                        && !out.contains_key(key)
                    {
                        out.insert(key.to_string(), c);
                    }
                }
            }
        }
        anc.pop();

        let (mine, rest): (Vec<_>, Vec<_>) = self.hoists.drain(..).partition(|h| h.target == path);
        self.hoists = rest;
        // A field given where it belongs wins over a misplaced copy.
        for h in mine {
            if !out.contains_key(h.key) {
                out.insert(h.key.to_string(), h.value);
                self.relocations.push(Relocation {
                    to: child(path, h.key),
                    from: h.from,
                });
            }
        }

        for f in self.schema.fields(name).iter().filter(|f| f.required) {
            let missing = match out.get(f.name) {
                None => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            // A required field that was given but refused is already reported.
            let refused = map
                .get(f.name)
                .is_some_and(|v| !v.is_null() && !out.contains_key(f.name));
            if missing && !refused {
                self.errors
                    .push(FieldError::required(child(path, f.name), ""));
            }
        }
        Value::Object(out)
    }

    /// Reports an unknown field and says where it belongs. Returns the field's intended
    /// name and checked value when it belongs in this object under another spelling.
    fn unknown(
        &mut self,
        type_name: &'static str,
        key: &str,
        v: &Value,
        path: &str,
        anc: &mut Vec<(String, &'static str)>,
    ) -> Option<(&'static str, Value)> {
        let detail = format!("`{path}` is not a field of {type_name}");
        let mut err = FieldError::new(path, ErrorKind::UnknownField, detail);
        let own: Vec<&'static str> = self
            .schema
            .fields(type_name)
            .iter()
            .map(|f| f.name)
            .collect();

        // The same name in another case: field names are case-sensitive.
        if let Some(f) = own.iter().copied().find(|f| f.eq_ignore_ascii_case(key)) {
            err.fix = Some(format!(
                "did you mean `{f}`? field names are case-sensitive"
            ));
            self.errors.push(err);
            return self.respelled(type_name, f, v, path, anc);
        }

        // A field of an enclosing object, written one level too deep.
        let ancestor = anc
            .iter()
            .rev()
            .find_map(|(p, t)| self.schema.field(t, key).map(|f| (p.clone(), f)));
        if let Some((at, field)) = ancestor {
            let parent = path.rsplit_once('.').map_or(path, |(p, _)| p);
            let parent_key = parent.rsplit('.').next().unwrap_or(parent);
            let parent_key = parent_key.split('[').next().unwrap_or(parent_key);
            err.fix = Some(if at.is_empty() {
                format!(
                    "did you mean `{key}` at the top level? it is indented under \
                     `{parent_key}`: in YAML, move it left to the column of `{parent_key}`"
                )
            } else {
                format!(
                    "did you mean `{}`, a field of the enclosing object?",
                    child(&at, key)
                )
            });
            self.errors.push(err);
            let ty = field.ty.clone();
            if let Some(checked) = self.walk(v, &ty, path, anc) {
                self.hoists.push(Hoist {
                    target: at,
                    key: field.name,
                    value: checked,
                    from: path.to_string(),
                });
            }
            return None;
        }

        // A field of a nested object, written too high.
        if let Some((sub, ty)) = self.find_below(type_name, key) {
            let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
            err.fix = Some(format!("did you mean `{}`?", child(parent, &sub)));
            self.errors.push(err);
            self.walk(v, &ty, path, anc);
            return None;
        }

        // Another spelling of one of this object's own fields.
        if let Some(f) = closest(key, own.iter().copied()) {
            err.fix = Some(format!("did you mean `{f}`?"));
            self.errors.push(err);
            return self.respelled(type_name, f, v, path, anc);
        }

        self.errors.push(err);
        None
    }

    fn respelled(
        &mut self,
        type_name: &'static str,
        field: &'static str,
        v: &Value,
        path: &str,
        anc: &mut Vec<(String, &'static str)>,
    ) -> Option<(&'static str, Value)> {
        let ty = self.schema.field(type_name, field).map(|f| f.ty.clone())?;
        let checked = self.walk(v, &ty, path, anc)?;
        Some((field, checked))
    }

    /// The shortest path below `type_name` that ends in a field named `key`, e.g.
    /// `spec.containers[].image` for `image` under `Pod`, with the field's type.
    fn find_below(&self, type_name: &'static str, key: &str) -> Option<(String, Ty)> {
        let mut queue: std::collections::VecDeque<(&'static str, String, usize)> =
            [(type_name, String::new(), 0)].into();
        let mut seen = std::collections::HashSet::from([type_name]);
        while let Some((t, prefix, depth)) = queue.pop_front() {
            if depth > 0
                && let Some(f) = self.schema.field(t, key)
            {
                return Some((child(&prefix, f.name), f.ty.clone()));
            }
            if depth >= 3 {
                continue;
            }
            for f in self.schema.fields(t) {
                let (inner, suffix) = match &f.ty {
                    Ty::Object(n) => (*n, ""),
                    Ty::List(b) => match b.as_ref() {
                        Ty::Object(n) => (*n, "[]"),
                        _ => continue,
                    },
                    _ => continue,
                };
                // Status types hold copies of spec field names; a user never means them.
                if inner.ends_with("Status") || !seen.insert(inner) {
                    continue;
                }
                queue.push_back((
                    inner,
                    format!("{}{suffix}", child(&prefix, f.name)),
                    depth + 1,
                ));
            }
        }
        None
    }
}
