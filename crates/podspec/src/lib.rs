//! Pod manifests: read, strictly decoded, validated and defaulted as the Kubernetes API
//! server does it, with every mistake of a manifest reported at once.
//!
//! - [`load_file`] and [`parse`] read YAML (several documents per file) or JSON into
//!   k8s-openapi [`Pod`]s, or return [`ManifestErrors`]: every problem of every document,
//!   each with the file, document, line, field path and a proposed fix.
//! - [`validate_and_default`] does the same for one JSON body, for the API server;
//!   [`validate_pod`] for a Pod that is already typed.
//! - [`default_pull_policy`] is the API server's `imagePullPolicy` rule.
//!
//! The stages are the API server's: the type (`apiVersion`/`kind`), strict decoding of the
//! raw value against a field schema ([`strict`], [`schema`]), typed decoding, defaulting
//! ([`defaults`]) and validation ([`validate`]). Later stages still run after an earlier one
//! found problems, on a best-effort copy, so that one run names every mistake.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

pub mod defaults;
pub mod error;
pub mod names;
pub mod quantity;
pub mod schema;
pub mod source;
pub mod strict;
pub mod validate;

pub use defaults::{default_pull_policy, qos_class};
pub use error::{ErrorKind, FieldError, FieldErrors, ManifestError, ManifestErrors};
pub use quantity::Quantity;

/// What the API server does with fields the schema does not know (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Refuse the object (kubectl's default since 1.27, `--validate=strict`).
    #[default]
    Strict,
    /// Accept it and return each unknown field as a warning.
    Warn,
    /// Accept it silently.
    Ignore,
}

/// How strictly to read a Pod.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Unknown and misplaced fields.
    pub field_validation: FieldValidation,
    /// Whether `apiVersion` and `kind` must be present: true for files (kubectl needs them),
    /// false for a request body, whose URL says what it is.
    pub require_type_meta: bool,
    /// Whether an image that is not a valid reference is refused up front (see
    /// [`validate::Checks::image_references`]).
    pub check_image_references: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            field_validation: FieldValidation::Strict,
            require_type_meta: true,
            check_image_references: true,
        }
    }
}

impl Options {
    /// The options an API server uses for a request body with `?fieldValidation=`.
    pub fn for_api(field_validation: FieldValidation) -> Self {
        Options {
            field_validation,
            require_type_meta: false,
            check_image_references: false,
        }
    }
}

/// A Pod that passed validation, with defaults applied.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The typed, defaulted Pod.
    pub pod: Pod,
    /// Problems that do not refuse the Pod (unknown fields under [`FieldValidation::Warn`]).
    pub warnings: Vec<FieldError>,
}

/// Reads a manifest file: every Pod in it, or every problem of it.
pub fn load_file(path: impl AsRef<Path>) -> Result<Vec<Pod>, ManifestErrors> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ManifestErrors::whole_file(
            &name,
            ErrorKind::Unreadable,
            format!("cannot read the manifest: {e}"),
        )
    })?;
    parse(&name, &text)
}

/// Reads manifest text (YAML or JSON, told apart by its first character); `source_name`
/// names it in errors.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Pod>, ManifestErrors> {
    parse_with(source_name, text, &Options::default())
}

/// [`parse`] with explicit options.
pub fn parse_with(
    source_name: &str,
    text: &str,
    opts: &Options,
) -> Result<Vec<Pod>, ManifestErrors> {
    let _span = tracing::debug_span!("manifest", source = source_name).entered();
    let docs = source::read_documents(text);
    if docs.is_empty() {
        let detail = "the manifest holds no object: expected a Pod in YAML or JSON";
        return Err(ManifestErrors::whole_file(
            source_name,
            ErrorKind::Required,
            detail,
        ));
    }
    let several = docs.len() > 1;
    let mut pods = Vec::new();
    let mut all = Vec::new();
    for doc in docs {
        let mut errors = doc.errors;
        let mut object = None;
        if !doc.value.is_null() {
            object = describe(&doc.value);
            match validate_and_default(&doc.value, opts) {
                Ok(v) if errors.is_empty() => pods.push(v.pod),
                Ok(_) => {}
                Err(e) => {
                    let mut found = e.0;
                    for err in &mut found {
                        err.position = position_of(&doc.positions, &err.path);
                    }
                    errors.extend(found);
                }
            }
        }
        errors.sort_by_key(|e| e.position.map_or(usize::MAX, |p| p.0));
        all.extend(errors.into_iter().map(|error| ManifestError {
            source: source_name.to_string(),
            document: several.then_some(doc.index),
            object: if error.path.is_empty() {
                None
            } else {
                object.clone()
            },
            error,
        }));
    }
    if all.is_empty() {
        tracing::debug!(pods = pods.len(), "manifest accepted");
        Ok(pods)
    } else {
        Err(ManifestErrors(all))
    }
}

/// `Pod "name"` for error lines.
fn describe(v: &Value) -> Option<String> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    let kind = if kind.eq_ignore_ascii_case("pod") {
        "Pod"
    } else {
        kind
    };
    match v.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) => Some(format!("{kind} {n:?}")),
        None => Some(kind.to_string()),
    }
}

/// The position of `path`, or of the nearest enclosing field that has one.
fn position_of(positions: &source::Positions, path: &str) -> Option<(usize, usize)> {
    let mut p = path;
    loop {
        if let Some(at) = positions.get(p) {
            return Some(*at);
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

/// Validates and defaults one Pod given as raw JSON (an API request body or one document of
/// a manifest): strict decoding, typed decoding, defaulting, validation. Returns the typed,
/// defaulted Pod, or every problem found.
pub fn validate_and_default(body: &Value, opts: &Options) -> Result<Validated, FieldErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    if !type_meta(body, opts, &mut errors) {
        return Err(FieldErrors(errors));
    }

    let checked = strict::check_pod(body);
    for e in checked.errors {
        match (e.kind, opts.field_validation) {
            (ErrorKind::UnknownField, FieldValidation::Warn) => warnings.push(e),
            (ErrorKind::UnknownField, FieldValidation::Ignore) => {}
            _ => errors.push(e),
        }
    }

    // The type was checked above; k8s-openapi refuses any other spelling of it.
    let mut value = checked.value;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("apiVersion".into(), Value::from("v1"));
        obj.insert("kind".into(), Value::from("Pod"));
    }
    let mut pod: Pod = match serde_json::from_value(value) {
        Ok(p) => p,
        Err(e) => {
            let detail = format!("cannot decode as a Pod: {e}");
            errors.push(FieldError::new("", ErrorKind::TypeInvalid, detail));
            return Err(FieldErrors(dedup(errors)));
        }
    };
    defaults::apply(&mut pod);
    let checks = validate::Checks {
        image_references: opts.check_image_references,
    };
    for mut e in validate::validate(&pod, "spec", checks) {
        for r in &checked.relocations {
            if let Some(rest) = e.path.strip_prefix(r.to.as_str())
                && (rest.is_empty() || rest.starts_with(['.', '[']))
            {
                e.path = format!("{}{rest}", r.from);
                break;
            }
        }
        errors.push(e);
    }

    if errors.is_empty() {
        Ok(Validated { pod, warnings })
    } else {
        Err(FieldErrors(dedup(errors)))
    }
}

/// Validates and defaults a Pod that is already typed (a Pod built in code, or read without
/// strict decoding). Unknown fields cannot be seen here: they were dropped when it was typed.
pub fn validate_pod(pod: &mut Pod, opts: &Options) -> Result<(), FieldErrors> {
    defaults::apply(pod);
    let checks = validate::Checks {
        image_references: opts.check_image_references,
    };
    let errors = validate::validate(pod, "spec", checks);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FieldErrors(dedup(errors)))
    }
}

// The strict walk and validation may both see the same missing field.
fn dedup(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    errors
        .into_iter()
        .filter(|e| {
            seen.insert((
                e.path.clone(),
                e.kind,
                e.detail.clone(),
                e.value.clone().map(|v| v.to_string()),
            ))
        })
        .collect()
}

/// Checks `apiVersion` and `kind`; false when the document is not a Pod at all, so that
/// reading it as one would only produce noise.
fn type_meta(body: &Value, opts: &Options, errors: &mut Vec<FieldError>) -> bool {
    let Some(obj) = body.as_object() else {
        let e = FieldError::new(
            "",
            ErrorKind::TypeInvalid,
            "a manifest must be an object (a map of fields)",
        )
        .with_value(body.clone());
        errors.push(e);
        return false;
    };
    let kind = obj.get("kind");
    let version = obj.get("apiVersion");

    match kind {
        None if opts.require_type_meta => {
            errors.push(
                FieldError::required("kind", "Object 'Kind' is missing")
                    .with_fix("add `kind: Pod`"),
            );
        }
        None => {}
        Some(Value::String(k)) if k == "Pod" => {}
        Some(Value::String(k))
            if k.eq_ignore_ascii_case("pod") || names::edit_distance(k, "Pod") <= 1 =>
        {
            let e = FieldError::new(
                "kind",
                ErrorKind::UnknownKind,
                format!("kind {k:?} is not known"),
            )
            .with_fix("did you mean \"Pod\"? kinds are case-sensitive");
            errors.push(e);
        }
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), |s| format!("{s:?}"));
            let e = FieldError::new(
                "kind",
                ErrorKind::UnknownKind,
                format!("kind {shown} is not one hoist runs"),
            )
            .with_fix("hoist reads Pods: `apiVersion: v1`, `kind: Pod`");
            errors.push(e);
            return false;
        }
    }

    match version {
        None if opts.require_type_meta => {
            let e = FieldError::required("apiVersion", "Object 'apiVersion' is missing")
                .with_fix("add `apiVersion: v1`");
            errors.push(e);
        }
        None => {}
        Some(Value::String(v)) if v == "v1" => {}
        Some(v) => {
            let shown = v
                .as_str()
                .map_or_else(|| v.to_string(), |s| format!("{s:?}"));
            let e = FieldError::new(
                "apiVersion",
                ErrorKind::UnknownKind,
                format!("no kind \"Pod\" is registered for version {shown}"),
            )
            .with_fix("Pods are in `apiVersion: v1`");
            errors.push(e);
        }
    }
    true
}
