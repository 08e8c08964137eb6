//! The field schema of a v1 Pod: which fields each object type has and of what type.
//!
//! k8s-openapi's structs drop fields they do not know, so strict decoding cannot lean on
//! them. The schema lives in `pod.schema` (one line per type, read at first use) and
//! [`crate::strict`] walks the raw JSON value against it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The type of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// A JSON string.
    String,
    /// A JSON integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// Any JSON number.
    Number,
    /// A resource quantity: a string such as `"100m"`, or a number.
    Quantity,
    /// An integer or a string (a port number or a port name).
    IntOrString,
    /// An RFC 3339 time as a string.
    Time,
    /// Anything; not checked.
    Any,
    /// A list of the inner type.
    List(Box<Ty>),
    /// A map from strings to the inner type.
    Map(Box<Ty>),
    /// An object type of the schema, by name.
    Object(&'static str),
}

impl Ty {
    /// How the type reads in a message: `string`, `list of Container`, `ObjectMeta`.
    pub fn describe(&self) -> String {
        match self {
            Ty::String | Ty::Time => "string".into(),
            Ty::Int => "integer".into(),
            Ty::Bool => "boolean".into(),
            Ty::Number => "number".into(),
            Ty::Quantity => "quantity".into(),
            Ty::IntOrString => "integer or string".into(),
            Ty::Any => "any value".into(),
            Ty::List(t) => format!("list of {}", t.describe()),
            Ty::Map(t) => format!("map of {}", t.describe()),
            Ty::Object(n) => format!("object ({n})"),
        }
    }
}

/// One field of an object type.
#[derive(Debug, Clone)]
pub struct Field {
    /// The JSON name, e.g. `imagePullPolicy`.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Whether the API server refuses the object without it.
    pub required: bool,
}

/// Every object type of a Pod, by name.
#[derive(Debug)]
pub struct Schema {
    types: HashMap<&'static str, Vec<Field>>,
}

const SOURCE: &str = include_str!("pod.schema");

/// The schema, parsed once.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse(SOURCE))
}

impl Schema {
    /// The fields of `type_name`; empty for an unknown name.
    pub fn fields(&self, type_name: &str) -> &[Field] {
        self.types.get(type_name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The field `name` of `type_name`.
    pub fn field(&self, type_name: &str, name: &str) -> Option<&Field> {
        self.fields(type_name).iter().find(|f| f.name == name)
    }

    /// Whether `type_name` is a type of the schema.
    pub fn has_type(&self, type_name: &str) -> bool {
        self.types.contains_key(type_name)
    }

    // The file is ours and checked by a unit test, so a malformed line is a bug: panicking
    // at first use says exactly which line.
    fn parse(src: &'static str) -> Schema {
        let mut entries: Vec<(&'static str, String)> = Vec::new();
        for line in src.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with(' ') {
                let last = entries
                    .last_mut()
                    .expect("pod.schema: continuation before any type");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else {
                let (name, rest) = line.split_once(':').expect("pod.schema: line without ':'");
                entries.push((name.trim(), rest.trim().to_string()));
            }
        }

        let mut types = HashMap::new();
        for (name, rest) in entries {
            let mut fields = Vec::new();
            for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (fname, ty) = part
                    .split_once(' ')
                    .expect("pod.schema: field without type");
                let required = ty.ends_with('!');
                let ty = parse_ty(leak_trim(ty.trim_end_matches('!'), src));
                fields.push(Field {
                    name: leak_trim(fname, src),
                    ty,
                    required,
                });
            }
            types.insert(name, fields);
        }
        Schema { types }
    }
}

// Field and type names are slices of the static source; `find` gets them back as
// `&'static str` without copying or leaking.
fn leak_trim(s: &str, src: &'static str) -> &'static str {
    let s = s.trim();
    let at = src.find(s).expect("a slice of the source is in the source");
    &src[at..at + s.len()]
}

fn parse_ty(s: &'static str) -> Ty {
    if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return Ty::List(Box::new(parse_ty(inner)));
    }
    if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        return Ty::Map(Box::new(parse_ty(inner)));
    }
    match s {
        "string" => Ty::String,
        "int" => Ty::Int,
        "bool" => Ty::Bool,
        "number" => Ty::Number,
        "quantity" => Ty::Quantity,
        "intOrString" => Ty::IntOrString,
        "time" => Ty::Time,
        "any" => Ty::Any,
        other => Ty::Object(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object_names(ty: &Ty) -> Option<&'static str> {
        match ty {
            Ty::Object(n) => Some(n),
            Ty::List(t) | Ty::Map(t) => object_names(t),
            _ => None,
        }
    }

    #[test]
    fn every_named_type_is_defined() {
        let s = schema();
        for fields in s.types.values() {
            for f in fields {
                if let Some(n) = object_names(&f.ty) {
                    assert!(s.has_type(n), "field {} names undefined type {n}", f.name);
                }
            }
        }
    }

    #[test]
    fn container_fields_are_typed() {
        let s = schema();
        assert_eq!(
            s.field("Container", "imagePullPolicy").unwrap().ty,
            Ty::String
        );
        assert_eq!(
            s.field("PodSpec", "containers").unwrap().ty,
            Ty::List(Box::new(Ty::Object("Container")))
        );
        assert!(s.field("ObjectMeta", "spec").is_none());
        assert!(s.field("VolumeMount", "mountPath").unwrap().required);
        assert_eq!(
            s.field("HTTPGetAction", "port").unwrap().ty,
            Ty::IntOrString
        );
    }
}
