//! Registry credentials from a docker `config.json`, which is also the payload of a
//! Kubernetes pull secret of type `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`).
//!
//! `DockerConfig::from_slice` checks every entry of `auths` up front (an undecodable `auth`
//! names its key), and [`DockerConfig::credentials_for`] finds the entry for a registry host,
//! accepting the key forms docker writes: `host`, `host:port`, `https://host/v1/`, and
//! `https://index.docker.io/v1/` for Docker Hub.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run: hoist would have to execute
//! `docker-credential-*` programs, so registries configured only through a helper are pulled
//! anonymously.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

/// Why a docker config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("decode docker config JSON (expected {{\"auths\": {{\"host\": {{\"auth\": ...}}}}}})")]
    Json(#[source] serde_json::Error),
    #[error("auths entry {key:?}: \"auth\" is not valid base64")]
    Base64 {
        key: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("auths entry {key:?}: \"auth\" must decode to \"username:password\" in UTF-8")]
    AuthFormat { key: String },
}

/// Credentials for one registry. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token), sent as HTTP Basic to the
    /// registry or to its token service.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token service.
    IdentityToken { token: String },
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Credentials::Basic {{ username: {username:?}, password: <hidden> }}"
                )
            }
            Credentials::IdentityToken { .. } => {
                f.write_str("Credentials::IdentityToken(<hidden>)")
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawEntry>,
}

/// The `auths` of a docker config, keyed by normalised registry host.
#[derive(Clone, Default)]
pub struct DockerConfig {
    entries: BTreeMap<String, Credentials>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("hosts", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The registry host a config key names: scheme and path dropped, Docker Hub's aliases
/// folded into `docker.io`.
pub fn normalize_registry_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

impl DockerConfig {
    /// Parses a `config.json` or a `.dockerconfigjson` pull secret payload.
    pub fn from_slice(bytes: &[u8]) -> Result<DockerConfig, AuthError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(AuthError::Json)?;
        let mut entries = BTreeMap::new();
        for (key, entry) in raw.auths {
            if let Some(creds) = entry_credentials(&key, entry)? {
                // The first of equivalent keys wins; BTreeMap order makes this deterministic.
                entries
                    .entry(normalize_registry_host(&key))
                    .or_insert(creds);
            }
        }
        Ok(DockerConfig { entries })
    }

    /// Credentials for a registry as named in a reference (`docker.io`, `host:5000`).
    pub fn credentials_for(&self, registry_host: &str) -> Option<Credentials> {
        self.entries
            .get(&normalize_registry_host(registry_host))
            .cloned()
    }

    /// Adds (or replaces) credentials for a registry host.
    pub fn insert(&mut self, registry_host: &str, credentials: Credentials) {
        self.entries
            .insert(normalize_registry_host(registry_host), credentials);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries of `other` fill in hosts this config does not have.
    pub fn merge_missing(&mut self, other: &DockerConfig) {
        for (host, creds) in &other.entries {
            self.entries
                .entry(host.clone())
                .or_insert_with(|| creds.clone());
        }
    }
}

fn entry_credentials(key: &str, entry: RawEntry) -> Result<Option<Credentials>, AuthError> {
    if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken { token }));
    }
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|source| AuthError::Base64 {
                key: key.to_string(),
                source,
            })?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::AuthFormat {
            key: key.to_string(),
        })?;
        let Some((user, pass)) = text.split_once(':') else {
            return Err(AuthError::AuthFormat {
                key: key.to_string(),
            });
        };
        return Ok(Some(Credentials::basic(user, pass)));
    }
    match (entry.username, entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::basic(u, p))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn finds_credentials_by_host() {
        let json = format!(
            r#"{{"auths":{{
              "https://index.docker.io/v1/":{{"auth":"{}"}},
              "127.0.0.1:5000":{{"auth":"{}"}},
              "https://quay.io":{{"username":"q","password":"pw"}},
              "ghcr.io":{{"identitytoken":"refresh"}},
              "empty.example":{{}}
            }},"credsStore":"desktop"}}"#,
            b64("hub:secret:with:colons"),
            b64("local:pw")
        );
        let cfg = DockerConfig::from_slice(json.as_bytes()).unwrap();
        let cases: &[(&str, &str, Option<Credentials>)] = &[
            (
                "hub via docker.io",
                "docker.io",
                Some(Credentials::basic("hub", "secret:with:colons")),
            ),
            (
                "hub via api host",
                "registry-1.docker.io",
                Some(Credentials::basic("hub", "secret:with:colons")),
            ),
            (
                "host port",
                "127.0.0.1:5000",
                Some(Credentials::basic("local", "pw")),
            ),
            ("other port", "127.0.0.1:5001", None),
            ("url key", "quay.io", Some(Credentials::basic("q", "pw"))),
            (
                "identity token",
                "ghcr.io",
                Some(Credentials::IdentityToken {
                    token: "refresh".into(),
                }),
            ),
            ("entry without secrets", "empty.example", None),
            ("absent", "example.com", None),
        ];
        for (name, host, want) in cases {
            assert_eq!(&cfg.credentials_for(host), want, "case {name}");
        }
        let shown = format!("{:?}", cfg.credentials_for("docker.io").unwrap());
        assert!(
            !shown.contains("secret"),
            "debug output leaks the password: {shown}"
        );
    }

    #[test]
    fn refuses_bad_entries() {
        let no_colon = format!(r#"{{"auths":{{"h":{{"auth":"{}"}}}}}}"#, b64("nocolon"));
        let cases: &[(&str, &str, &str)] = &[
            ("not json", "{", "decode docker config"),
            (
                "bad base64",
                r#"{"auths":{"h":{"auth":"!!!"}}}"#,
                "entry \"h\": \"auth\" is not valid base64",
            ),
            (
                "no colon",
                &no_colon,
                "must decode to \"username:password\"",
            ),
        ];
        for (name, json, want) in cases {
            let err = DockerConfig::from_slice(json.as_bytes())
                .expect_err(name)
                .to_string();
            assert!(
                err.contains(want),
                "case {name}: {err:?} should contain {want:?}"
            );
        }
    }
}
