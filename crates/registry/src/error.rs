//! What can go wrong talking to a registry, and the registry's own error bodies.
//!
//! Every request-time variant carries the step (`fetch manifest`, `fetch blob`, `get token
//! for`...) and the reference it was for, so a message read in a pod's events says what was
//! being done to which image. [`RegistryError::kind`] sorts the variants into the classes a
//! caller acts on (not found, unauthorized, rate limited, transport...).

use std::fmt::Write as _;
use std::path::PathBuf;

use oci::Digest;
use serde::Deserialize;

/// The class of a failure, for callers that react differently to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The repository, tag, manifest or blob does not exist (404, `*_UNKNOWN`).
    NotFound,
    /// Credentials are missing, wrong, or not allowed this (401, 403).
    Unauthorized,
    /// The registry kept answering 429 after the retries.
    TooManyRequests,
    /// The connection failed, timed out, or broke mid-body.
    Transport,
    /// Content did not match its digest or size: the registry (or a proxy) lied.
    Integrity,
    /// A body exceeded its size limit.
    TooLarge,
    /// A manifest hoist cannot use (schema 1, unknown type, no matching platform).
    Unsupported,
    /// Any other answer that breaks the protocol, or another HTTP status.
    Protocol,
    /// Local configuration (registries.yaml, auth file) could not be used.
    Config,
}

/// A failed registry operation.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("read {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "parse {} (expected `insecure: [host:port, ...]` and \
         `mirrors: {{registry: [host:port, ...]}}`)",
        path.display()
    )]
    RegistriesFile {
        path: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("registries file {}: {why}", path.display())]
    RegistriesEntry { path: PathBuf, why: String },
    #[error("parse auth file {}", path.display())]
    AuthFile {
        path: PathBuf,
        #[source]
        source: oci::auth::AuthError,
    },
    #[error("build the HTTP client")]
    Build {
        #[source]
        source: reqwest::Error,
    },
    #[error("{step} {reference}: request to {url} failed")]
    Transport {
        step: &'static str,
        reference: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{step} {reference}: registry answered {}",
        describe_status(*status, code, message, *body_too_large, *retries, redirected_to)
    )]
    Status {
        step: &'static str,
        reference: String,
        status: u16,
        /// The first `code` of the registry's error body (`MANIFEST_UNKNOWN`...).
        code: Option<String>,
        /// The messages of the error body, joined.
        message: Option<String>,
        body_too_large: bool,
        /// How many 429 answers were retried before this one.
        retries: u32,
        /// The `host:port` that answered, when a redirect led away from the registry.
        redirected_to: Option<String>,
    },
    #[error("{step} {reference}: {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        step: &'static str,
        reference: String,
        what: &'static str,
        limit: u64,
    },
    #[error("{step} {reference}: content has digest {actual} but {expected} was asked for")]
    DigestMismatch {
        step: &'static str,
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{step} {reference}: registry sent Docker-Content-Digest {header} but the manifest it \
         sent has digest {actual}"
    )]
    HeaderDigestMismatch {
        step: &'static str,
        reference: String,
        header: Digest,
        actual: Digest,
    },
    #[error(
        "{step} {reference}: blob {digest} has {actual} bytes but its descriptor says {expected}"
    )]
    SizeMismatch {
        step: &'static str,
        reference: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{step} {reference}: unusable manifest")]
    Manifest {
        step: &'static str,
        reference: String,
        #[source]
        source: oci::ManifestError,
    },
    #[error(
        "{step} {reference}: the index has no image for platform {wanted} (it offers: {offered})"
    )]
    NoPlatform {
        step: &'static str,
        reference: String,
        wanted: String,
        offered: String,
    },
    #[error(
        "{step} {reference}: the index entry {digest} is not an image manifest (nested indexes \
         are not supported)"
    )]
    NestedIndex {
        step: &'static str,
        reference: String,
        digest: Digest,
    },
    #[error("{step} {reference}: more than {limit} redirects, last to {url}")]
    TooManyRedirects {
        step: &'static str,
        reference: String,
        limit: u32,
        url: String,
    },
    #[error("{step} {reference}: refused redirect from {from} to {location:?}: {why}")]
    BadRedirect {
        step: &'static str,
        reference: String,
        from: String,
        location: String,
        why: &'static str,
    },
    #[error(
        "{step} {reference}: cannot use the registry's authentication challenge {header:?}: {why}"
    )]
    Challenge {
        step: &'static str,
        reference: String,
        header: String,
        why: String,
    },
    #[error("{step} {reference}: token service {realm}: {why}")]
    Token {
        step: &'static str,
        reference: String,
        realm: String,
        why: String,
    },
    #[error("{step} {reference}: registry sent a malformed {header} header {value:?}")]
    BadHeader {
        step: &'static str,
        reference: String,
        header: &'static str,
        value: String,
    },
    #[error("{step} {reference}: cannot build a URL for registry host {host:?}")]
    BadHost {
        step: &'static str,
        reference: String,
        host: String,
    },
}

fn describe_status(
    status: u16,
    code: &Option<String>,
    message: &Option<String>,
    body_too_large: bool,
    retries: u32,
    redirected_to: &Option<String>,
) -> String {
    let mut out = status.to_string();
    match (code, message) {
        (Some(c), Some(m)) => {
            let _ = write!(out, " {c}: {m}");
        }
        (Some(c), None) => {
            let _ = write!(out, " {c}");
        }
        (None, Some(m)) => {
            let _ = write!(out, ": {m}");
        }
        (None, None) => {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason());
            if let Some(reason) = reason {
                let _ = write!(out, " {reason}");
            }
        }
    }
    if body_too_large {
        out.push_str(" (its error body exceeds the 65536-byte limit and was not read)");
    }
    if retries > 0 {
        let _ = write!(out, " (after {retries} retries)");
    }
    if let Some(host) = redirected_to {
        let _ = write!(
            out,
            " (from {host}, where the registry redirected; its credentials are never sent there)"
        );
    }
    out
}

impl RegistryError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        use RegistryError::*;
        match self {
            ReadFile { .. }
            | RegistriesFile { .. }
            | RegistriesEntry { .. }
            | AuthFile { .. }
            | Build { .. } => ErrorKind::Config,
            Transport { .. } => ErrorKind::Transport,
            Status { status, code, .. } => status_kind(*status, code.as_deref()),
            TooLarge { .. } => ErrorKind::TooLarge,
            DigestMismatch { .. } | HeaderDigestMismatch { .. } | SizeMismatch { .. } => {
                ErrorKind::Integrity
            }
            Manifest { .. } | NoPlatform { .. } | NestedIndex { .. } => ErrorKind::Unsupported,
            TooManyRedirects { .. }
            | BadRedirect { .. }
            | Challenge { .. }
            | BadHeader { .. }
            | BadHost { .. } => ErrorKind::Protocol,
            Token { .. } => ErrorKind::Unauthorized,
        }
    }

    /// The HTTP status the registry answered, for `Status` errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// The message with every cause appended (`a: b: c`), for logs and events.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let _ = write!(out, ": {s}");
            source = s.source();
        }
        out
    }
}

fn status_kind(status: u16, code: Option<&str>) -> ErrorKind {
    match (status, code) {
        (404, _) => ErrorKind::NotFound,
        (_, Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN")) => ErrorKind::NotFound,
        (401 | 403, _) => ErrorKind::Unauthorized,
        (_, Some("UNAUTHORIZED" | "DENIED")) => ErrorKind::Unauthorized,
        (429, _) => ErrorKind::TooManyRequests,
        _ => ErrorKind::Protocol,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The code and message of an error body: the OCI form `{"errors":[{"code","message"}]}`,
/// else the start of the text when it is short and printable, else nothing.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
        && !parsed.errors.is_empty()
    {
        let code = parsed.errors.iter().find_map(|e| e.code.clone());
        let messages: Vec<String> = parsed
            .errors
            .iter()
            .filter_map(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .collect();
        let message = (!messages.is_empty()).then(|| messages.join("; "));
        return (code, message);
    }
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() || line.starts_with('<') {
        return (None, None);
    }
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    (None, Some(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, body: &[u8]) -> RegistryError {
        let (code, message) = parse_error_body(body);
        RegistryError::Status {
            step: "fetch manifest",
            reference: "127.0.0.1:5000/private/busybox:latest".into(),
            status,
            code,
            message,
            body_too_large: false,
            retries: 0,
            redirected_to: None,
        }
    }

    #[test]
    fn status_errors_name_step_reference_status_and_registry_error() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required",
            "detail":null}]}"#;
        let cases: &[(&str, u16, &[u8], &str, ErrorKind)] = &[
            (
                "oci body",
                401,
                body,
                "fetch manifest 127.0.0.1:5000/private/busybox:latest: registry answered 401 \
                 UNAUTHORIZED: authentication required",
                ErrorKind::Unauthorized,
            ),
            (
                "no body",
                404,
                b"",
                "registry answered 404 Not Found",
                ErrorKind::NotFound,
            ),
            (
                "code only",
                400,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
                "registry answered 400 MANIFEST_UNKNOWN",
                ErrorKind::NotFound,
            ),
            (
                "html body is not shown",
                502,
                b"<html><body>bad gateway</body></html>",
                "registry answered 502 Bad Gateway",
                ErrorKind::Protocol,
            ),
            (
                "plain text",
                429,
                b"slow   down\n",
                "registry answered 429: slow down",
                ErrorKind::TooManyRequests,
            ),
        ];
        for (name, code, body, want, kind) in cases {
            let err = status(*code, body);
            assert!(
                err.to_string().contains(want),
                "case {name}: {err} should contain {want:?}"
            );
            assert_eq!(err.kind(), *kind, "case {name}");
        }
    }
}
