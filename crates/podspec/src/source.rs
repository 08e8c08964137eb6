//! Manifest text to JSON values: YAML documents (several per file) or a JSON stream.
//!
//! YAML is split into documents at `---` lines by hand, so that one broken document does
//! not hide the others, and each is read through serde-saphyr with a line and column kept
//! for every key and list item. The YAML 1.1 reading Kubernetes uses is kept where it
//! matters for manifests: `0644` is octal (a `defaultMode`), `yes`/`no` are booleans, and a
//! duplicate key is an error.
//!
//! Two syntax errors that hand-written manifests commonly have are repaired after being
//! reported, so the document can still be read and its other mistakes named in the same
//! run: a mapping key written at the column of its list item's `-` (as the tutorial's
//! `image:` is), and text after a complete value on the same line (a note without `#`).
//! A repaired document is never returned as a Pod: its syntax errors stay errors.

use std::collections::HashMap;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::error::{ErrorKind, FieldError};
use crate::strict::{child, index};

/// Field path to its 1-based line and column in the file.
pub type Positions = HashMap<String, (usize, usize)>;

/// One document of a manifest file.
#[derive(Debug, Default)]
pub struct Document {
    /// 1-based position among the file's non-empty documents.
    pub index: usize,
    /// The document's value, `Null` when its syntax could not be read at all.
    pub value: Value,
    /// Where each field path is in the file (YAML only).
    pub positions: Positions,
    /// Syntax errors, positioned in the file.
    pub errors: Vec<FieldError>,
}

/// Whether `text` is JSON rather than YAML: its first non-blank character opens an object
/// or a list. (JSON is YAML too, but serde_json's errors are the clearer for it.)
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with(['{', '['])
}

/// Reads every document of `text`, skipping empty ones.
pub fn read_documents(text: &str) -> Vec<Document> {
    let docs = if looks_like_json(text) {
        read_json(text)
    } else {
        read_yaml(text)
    };
    let mut docs: Vec<Document> = docs.into_iter().flat_map(expand_list).collect();
    for (i, d) in docs.iter_mut().enumerate() {
        d.index = i + 1;
    }
    docs
}

/// A `kind: List` (what `kubectl get -o yaml` writes for several objects) as one document
/// per item, each keeping its positions under its own paths.
fn expand_list(doc: Document) -> Vec<Document> {
    let is_list = doc.value.get("kind").and_then(Value::as_str) == Some("List")
        && doc.value.get("items").is_some_and(Value::is_array);
    if !is_list || !doc.errors.is_empty() {
        return vec![doc];
    }
    let Some(Value::Array(items)) = doc.value.get("items").cloned() else {
        return vec![doc];
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let prefix = format!("items[{i}]");
            let positions = doc
                .positions
                .iter()
                .filter_map(|(p, at)| {
                    let rest = p.strip_prefix(&prefix)?;
                    let rest = rest.strip_prefix('.').unwrap_or(rest);
                    Some((rest.to_string(), *at))
                })
                .collect();
            Document {
                value,
                positions,
                ..Document::default()
            }
        })
        .collect()
}

fn read_json(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match item {
            Ok(Value::Array(items)) => docs.extend(items.into_iter().map(|value| Document {
                value,
                ..Document::default()
            })),
            Ok(value) => docs.push(Document {
                value,
                ..Document::default()
            }),
            Err(e) => {
                let mut err = FieldError::new("", ErrorKind::Syntax, format!("invalid JSON: {e}"));
                err.position = Some((e.line(), e.column()));
                docs.push(Document {
                    errors: vec![err],
                    ..Document::default()
                });
                break;
            }
        }
    }
    docs
}

fn read_yaml(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut lines: Vec<String> = Vec::new();
    let all: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    for (n, line) in all.iter().enumerate() {
        let marker = *line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker || *line == "..." {
            if let Some(d) = read_yaml_doc(&lines, start) {
                docs.push(d);
            }
            lines.clear();
            start = n + 1;
            if marker {
                // Keep what follows the marker on its line, at its column.
                lines.push(format!("   {}", &line[3..]));
                start = n;
            }
            continue;
        }
        lines.push(line.to_string());
    }
    if let Some(d) = read_yaml_doc(&lines, start) {
        docs.push(d);
    }
    docs
}

fn is_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Reads one document whose first line is line `first + 1` of the file; `None` if empty.
fn read_yaml_doc(lines: &[String], first: usize) -> Option<Document> {
    if lines.iter().all(|l| is_blank(l)) {
        return None;
    }
    let mut lines = lines.to_vec();
    // Columns added by repairs, per line, to report positions in the text as written.
    let mut shift = vec![0usize; lines.len()];
    let mut errors = Vec::new();
    let mut strict_keys = true;

    for _attempt in 0..8 {
        let text = lines.join("\n");
        let mut options = Options::default();
        options.duplicate_keys = if strict_keys {
            DuplicateKeyPolicy::Error
        } else {
            DuplicateKeyPolicy::LastWins
        };
        options.legacy_octal_numbers = true;
        options.with_snippet = false;
        match serde_saphyr::from_str_with_options::<Spanned<Node>>(&text, options) {
            Ok(root) => {
                let mut positions = Positions::new();
                let at = |line: u64, col: u64| {
                    let l = (line as usize).max(1);
                    let s = shift.get(l - 1).copied().unwrap_or(0);
                    (first + l, (col as usize).saturating_sub(s).max(1))
                };
                let value = to_value(root, "", &mut positions, &at);
                if value.is_null() {
                    return None;
                }
                return Some(Document {
                    value,
                    positions,
                    errors,
                    ..Document::default()
                });
            }
            Err(e) => {
                let (line, col) = e
                    .location()
                    .map(|l| (l.line() as usize, l.column() as usize))
                    .unwrap_or((1, 1));
                let message = message_of(&e);
                let s = shift.get(line.saturating_sub(1)).copied().unwrap_or(0);
                let pos = (first + line, col.saturating_sub(s).max(1));
                if message.contains("duplicate mapping key") && strict_keys {
                    let key = message
                        .split("duplicate mapping key: ")
                        .nth(1)
                        .unwrap_or("");
                    let key = key.split(',').next().unwrap_or(key).trim();
                    let mut err = FieldError::new(
                        "",
                        ErrorKind::Syntax,
                        format!("key {key:?} is already set in this map"),
                    )
                    .with_fix("remove one of the two; Kubernetes refuses duplicate keys");
                    err.position = Some(pos);
                    errors.push(err);
                    strict_keys = false;
                    continue;
                }
                if let Some(err) = repair(&mut lines, &mut shift, line, col, &message) {
                    let mut err = err;
                    err.position = Some(pos);
                    errors.push(err);
                    continue;
                }
                let mut err =
                    FieldError::new("", ErrorKind::Syntax, format!("invalid YAML: {message}"));
                if message.contains("tabs") {
                    err.fix = Some("indent with spaces: YAML does not allow tabs there".into());
                }
                err.position = Some(pos);
                errors.push(err);
                return Some(Document {
                    errors,
                    ..Document::default()
                });
            }
        }
    }
    let err = FieldError::new(
        "",
        ErrorKind::Syntax,
        "too many YAML syntax errors to go on",
    );
    errors.push(err);
    Some(Document {
        errors,
        ..Document::default()
    })
}

/// saphyr's message without its `error: line N column M: ` prefix.
fn message_of(e: &serde_saphyr::Error) -> String {
    let full = e.without_snippet().to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

/// Repairs the error at 1-based `line`/`col` when it is one of the two common mistakes,
/// returning the error to report; `None` when it is not.
fn repair(
    lines: &mut [String],
    shift: &mut [usize],
    line: usize,
    col: usize,
    msg: &str,
) -> Option<FieldError> {
    let i = line.checked_sub(1)?;
    let text = lines.get(i)?.clone();
    let ind = indent(&text);

    // A key at the column of the `-` of the list item above it.
    if msg.contains("expected '-' indicator") && col == ind + 1 {
        let item = (0..i)
            .rev()
            .find(|&j| !is_blank(&lines[j]) && indent(&lines[j]) <= ind)?;
        let item_line = lines[item].clone();
        if indent(&item_line) != ind || !item_line.trim_start().starts_with("- ") {
            return None;
        }
        let after_dash = &item_line[ind + 1..];
        let content = ind + 1 + (after_dash.len() - after_dash.trim_start().len());
        let delta = content - ind;
        let key = text
            .trim_start()
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let first_key = item_line[content..]
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut j = i;
        while j < lines.len() {
            let l = &lines[j];
            if !is_blank(l)
                && (indent(l) < ind || indent(l) == ind && l.trim_start().starts_with('-'))
            {
                break;
            }
            if !l.trim().is_empty() {
                lines[j] = format!("{}{}", " ".repeat(delta), lines[j]);
                shift[j] += delta;
            }
            j += 1;
        }
        let detail = format!(
            "`{key}` is at column {col}, the column of the `-` that starts the list item on \
             line {}, so it is neither a field of that item nor a new item",
            item + 1
        );
        let fix = format!(
            "indent it (and the lines after it) by {delta} to column {}, under `{first_key}`, \
             to make it a field of the same item",
            content + 1
        );
        return Some(FieldError::new("", ErrorKind::Syntax, detail).with_fix(fix));
    }

    // Text after a complete value, such as a note written without `#`.
    if msg.contains("did not find expected key") && col > ind + 1 && text[..col - 1].contains(':') {
        let at = col - 1;
        let junk = text.get(at..)?.trim_end().to_string();
        let key = text
            .trim_start()
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let spaced = text[..at].ends_with([' ', '\t']);
        lines[i] = format!(
            "{}{}# {}",
            &text[..at],
            if spaced { "" } else { " " },
            &text[at..]
        );
        let detail = format!("unexpected text {junk:?} after the value of `{key}`");
        let fix = "remove it, or make it a comment: YAML comments start with \" #\"";
        return Some(FieldError::new("", ErrorKind::Syntax, detail).with_fix(fix));
    }
    None
}

/// A YAML node with the position of each key and item.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(x) = a.next_element()? {
            items.push(x);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(x) = a.next_entry()? {
            entries.push(x);
        }
        Ok(Node::Map(entries))
    }
}

fn to_value(
    node: Spanned<Node>,
    path: &str,
    pos: &mut Positions,
    at: &dyn Fn(u64, u64) -> (usize, usize),
) -> Value {
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::from(i),
        Node::UInt(u) => Value::from(u),
        Node::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let p = index(path, i);
                pos.insert(
                    p.clone(),
                    at(item.referenced.line(), item.referenced.column()),
                );
                out.push(to_value(item, &p, pos, at));
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let p = child(path, &k.value);
                pos.insert(p.clone(), at(k.referenced.line(), k.referenced.column()));
                out.insert(k.value, to_value(v, &p, pos, at));
            }
            Value::Object(out)
        }
    }
}
