//! Errors of a manifest, shaped like the API server's field errors.
//!
//! A [`FieldError`] is one problem at one field path (`spec.containers[0].name`), printed as
//! kubectl prints the API server's causes: `path: Invalid value: "Neo4j": detail; try
//! "neo4j"`. [`FieldErrors`] is every problem of one object, as `validate_and_default`
//! returns them to an API server. [`ManifestError`] adds where the object came from (file,
//! document, line) and [`ManifestErrors`] is every problem of every document of a file.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde_json::Value;

/// What kind of problem a field has: the API server's `field.ErrorType`, plus the
/// decoding problems a strict decoder reports before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The value is malformed (`field.Invalid`).
    Invalid,
    /// The field is missing or empty (`field.Required`).
    Required,
    /// The value is not one of a fixed set (`field.NotSupported`).
    NotSupported,
    /// The value repeats one that must be unique (`field.Duplicate`).
    Duplicate,
    /// The value refers to something that does not exist (`field.NotFound`).
    NotFound,
    /// The value is well-formed but not allowed here (`field.Forbidden`).
    Forbidden,
    /// The value is longer than allowed (`field.TooLong`).
    TooLong,
    /// The field is not one the object type has (strict decoding).
    UnknownField,
    /// The value has the wrong JSON type, e.g. a number where a string belongs.
    TypeInvalid,
    /// The text is not YAML or JSON.
    Syntax,
    /// The `apiVersion`/`kind` pair is not one hoist serves.
    UnknownKind,
    /// The file could not be read.
    Unreadable,
}

impl ErrorKind {
    /// The words kubectl prints for this kind, as in `Invalid value`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::Required => "Required value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::UnknownField => "Unknown field",
            ErrorKind::Syntax => "Syntax error",
            ErrorKind::UnknownKind => "Unknown kind",
            ErrorKind::Unreadable => "Unreadable",
        }
    }

    /// The `metav1.StatusCause` type an API server puts in its `Status` for this kind.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            ErrorKind::UnknownField
            | ErrorKind::Syntax
            | ErrorKind::UnknownKind
            | ErrorKind::Unreadable => "FieldValueInvalid",
        }
    }

    /// Whether the API server refuses this before validation, as a decoding failure
    /// (HTTP 400 `BadRequest`) rather than as an invalid object (HTTP 422 `Invalid`).
    pub fn is_decode_error(self) -> bool {
        matches!(
            self,
            ErrorKind::UnknownField
                | ErrorKind::TypeInvalid
                | ErrorKind::Syntax
                | ErrorKind::UnknownKind
                | ErrorKind::Unreadable
        )
    }
}

/// One problem at one field of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path as the API server writes it, e.g. `spec.containers[0].name`; empty
    /// for a problem of the whole document (a YAML syntax error).
    pub path: String,
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// The offending value, when there is one to show.
    pub value: Option<Value>,
    /// What is wrong, in the API server's words where it has them.
    pub detail: String,
    /// What would be right, e.g. `try "neo4j"`; `None` when there is nothing to propose.
    pub fix: Option<String>,
    /// Line and column (1-based) in the source text, when known.
    pub position: Option<(usize, usize)>,
}

impl FieldError {
    /// A new error without a value or a fix.
    pub fn new(path: impl Into<String>, kind: ErrorKind, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind,
            value: None,
            detail: detail.into(),
            fix: None,
            position: None,
        }
    }

    /// `field.Invalid`: the value is malformed.
    pub fn invalid(
        path: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(path, ErrorKind::Invalid, detail).with_value(value)
    }

    /// `field.Required`: the field is missing or empty.
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Required, detail)
    }

    /// `field.NotSupported`: the value is not one of `supported`.
    pub fn not_supported(path: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let mut e = Self::new(
            path,
            ErrorKind::NotSupported,
            format!("supported values: {}", list.join(", ")),
        )
        .with_value(value);
        if let Some(near) = crate::names::closest(value, supported.iter().copied()) {
            e.fix = Some(format!("did you mean {near:?}?"));
        }
        e
    }

    /// Attaches the offending value.
    pub fn with_value(mut self, value: impl Into<Value>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Attaches what would be right.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The message without the path, for a `StatusCause.message`.
    pub fn message(&self) -> String {
        // A kind error reads as a sentence of its own: `kind "pod" is not known`.
        let mut out = match self.kind {
            ErrorKind::UnknownKind => String::new(),
            ErrorKind::Syntax if self.path.is_empty() => "syntax error".to_string(),
            k => k.label().to_string(),
        };
        if let Some(v) = &self.value {
            out.push_str(": ");
            out.push_str(&v.to_string());
        }
        if !self.detail.is_empty() {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&self.detail);
        }
        if let Some(fix) = &self.fix {
            out.push_str("; ");
            out.push_str(fix);
        }
        out
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.kind == ErrorKind::UnknownKind {
            write!(f, "{}", self.message())
        } else {
            write!(f, "{}: {}", self.path, self.message())
        }
    }
}

/// Every problem of one object, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// Whether an API server should answer 400 (the body does not decode as a Pod) rather
    /// than 422 (a Pod that fails validation).
    pub fn is_decode_error(&self) -> bool {
        self.0.iter().any(|e| e.kind.is_decode_error())
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FieldErrors {
    /// The `metav1.Status` an API server answers with for these errors about Pod `name`:
    /// 400 `BadRequest` with the strict decoder's wording when the body does not decode as
    /// a Pod, else 422 `Invalid` with one cause per error, which kubectl lists.
    pub fn to_status(&self, name: &str) -> Status {
        let causes = self
            .0
            .iter()
            .map(|e| StatusCause {
                field: (!e.path.is_empty()).then(|| e.path.clone()),
                message: Some(e.message()),
                reason: Some(e.kind.cause_type().to_string()),
            })
            .collect();
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        let (code, reason, message) = if self.is_decode_error() {
            let m = format!(
                "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: {}",
                all.join(", ")
            );
            (400, "BadRequest", m)
        } else if all.len() == 1 {
            (
                422,
                "Invalid",
                format!("Pod {name:?} is invalid: {}", all[0]),
            )
        } else {
            (
                422,
                "Invalid",
                format!("Pod {name:?} is invalid: [{}]", all.join(", ")),
            )
        };
        Status {
            code: Some(code),
            details: Some(StatusDetails {
                causes: Some(causes),
                kind: Some("Pod".into()),
                name: Some(name.to_string()),
                ..StatusDetails::default()
            }),
            message: Some(message),
            reason: Some(reason.into()),
            status: Some("Failure".into()),
            ..Status::default()
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// One problem of a manifest file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    /// The file name (or whatever name the caller gave the text).
    pub source: String,
    /// The 1-based index of the document in a file of several; `None` in a one-document file.
    pub document: Option<usize>,
    /// `Pod "name"` when the document got far enough to say what it is.
    pub object: Option<String>,
    /// The problem.
    pub error: FieldError,
}

impl ManifestError {
    /// The field path (empty for a problem of the whole document).
    pub fn path(&self) -> &str {
        &self.error.path
    }

    /// The message without location or path.
    pub fn message(&self) -> String {
        self.error.message()
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some((line, col)) = self.error.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(d) = self.document {
            write!(f, " (document {d})")?;
        }
        write!(f, ": ")?;
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        write!(f, "{}", self.error)
    }
}

/// Every problem of a manifest file; `Display` prints one per line.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl ManifestErrors {
    /// A file-level failure (unreadable, empty) as a one-item list.
    pub fn whole_file(source: &str, kind: ErrorKind, detail: impl Into<String>) -> Self {
        ManifestErrors(vec![ManifestError {
            source: source.to_string(),
            document: None,
            object: None,
            error: FieldError::new("", kind, detail),
        }])
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ManifestError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl IntoIterator for ManifestErrors {
    type Item = ManifestError;
    type IntoIter = std::vec::IntoIter<ManifestError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ManifestErrors {
    type Item = &'a ManifestError;
    type IntoIter = std::slice::Iter<'a, ManifestError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
