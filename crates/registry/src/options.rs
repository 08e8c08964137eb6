//! Client configuration: `registries.yaml` in the data directory and the docker auth file.
//!
//! The file format is described in the crate documentation. Hosts are compared as written in
//! image references (`host` or `host:port`, lower case); an `insecure` entry without a port
//! covers every port of that host.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use oci::auth::DockerConfig;
use serde::Deserialize;

use crate::error::RegistryError;

/// The name of the registries file inside the data directory.
pub const REGISTRIES_FILE: &str = "registries.yaml";

/// How a [`Client`](crate::Client) reaches registries.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Registries reached over plain HTTP besides the loopback ones (`host` or `host:port`).
    pub insecure_hosts: Vec<String>,
    /// Credentials by registry host.
    pub credentials: DockerConfig,
    /// The `User-Agent` header; empty means `hoist/<version>`.
    pub user_agent: String,
    /// Per registry as named in references (`docker.io`), endpoints (`host[:port]`) tried in
    /// order before the registry itself.
    pub mirrors: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RegistriesFile {
    #[serde(default)]
    insecure: Vec<String>,
    #[serde(default)]
    mirrors: BTreeMap<String, Vec<String>>,
}

impl ClientOptions {
    /// Reads `data_dir/registries.yaml` (absent means defaults) and the credentials of
    /// `authfile`, or when none is given of `$HOME/.docker/config.json` if that exists.
    pub fn load(data_dir: &Path, authfile: Option<&Path>) -> Result<ClientOptions, RegistryError> {
        let mut opts = ClientOptions::default();

        let path = data_dir.join(REGISTRIES_FILE);
        if let Some(text) = read_optional(&path)? {
            let file = parse_registries(&path, &text)?;
            opts.insecure_hosts = file.insecure;
            opts.mirrors = file.mirrors;
        }

        let default_authfile = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".docker").join("config.json"));
        let auth_bytes = match (authfile, default_authfile) {
            (Some(p), _) => Some((p.to_path_buf(), read(p)?)),
            (None, Some(p)) => read_optional(&p)?.map(|t| (p, t.into_bytes())),
            (None, None) => None,
        };
        if let Some((path, bytes)) = auth_bytes {
            opts.credentials = DockerConfig::from_slice(&bytes)
                .map_err(|source| RegistryError::AuthFile { path, source })?;
        }
        Ok(opts)
    }

    /// Whether requests to `host` (as in a reference, with its port) go over plain HTTP:
    /// loopback hosts always, others when listed insecure.
    pub fn plain_http(&self, host: &str) -> bool {
        is_loopback(host) || self.insecure_hosts.iter().any(|h| host_matches(h, host))
    }
}

fn parse_registries(path: &Path, text: &str) -> Result<RegistriesFile, RegistryError> {
    if text.trim().is_empty() {
        return Ok(RegistriesFile::default());
    }
    let mut file: RegistriesFile =
        serde_saphyr::from_str(text).map_err(|source| RegistryError::RegistriesFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    let bad = |why: String| RegistryError::RegistriesEntry {
        path: path.to_path_buf(),
        why,
    };
    for host in file
        .insecure
        .iter_mut()
        .chain(file.mirrors.values_mut().flatten())
    {
        *host = host.trim().to_ascii_lowercase();
        if host.is_empty() || host.contains('/') || host.contains("://") {
            return Err(bad(format!(
                "{host:?} is not a registry host: write host or host:port, without a scheme \
                 or path"
            )));
        }
    }
    Ok(file)
}

fn read(path: &Path) -> Result<Vec<u8>, RegistryError> {
    std::fs::read(path).map_err(|source| RegistryError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, RegistryError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RegistryError::ReadFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `host:port` split into the host (brackets of IPv6 removed) and the port if any.
pub(crate) fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((addr, after)) = rest.split_once(']') {
            return (addr, after.strip_prefix(':'));
        }
        return (rest, None);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (host, None),
    }
}

/// 127.0.0.0/8, ::1 and localhost.
pub(crate) fn is_loopback(host: &str) -> bool {
    let (name, _) = split_host(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn host_matches(entry: &str, host: &str) -> bool {
    let entry = entry.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if entry == host {
        return true;
    }
    let (entry_name, entry_port) = split_host(&entry);
    entry_port.is_none() && split_host(&host).0 == entry_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_plain_http() {
        let opts = ClientOptions {
            insecure_hosts: vec!["registry.lan:5000".into(), "any-port.lan".into()],
            ..ClientOptions::default()
        };
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1:5000", true),
            ("127.8.9.10", true),
            ("[::1]:5000", true),
            ("localhost:5000", true),
            ("LocalHost", true),
            ("registry.lan:5000", true),
            ("REGISTRY.lan:5000", true),
            ("registry.lan:5001", false),
            ("registry.lan", false),
            ("any-port.lan:1234", true),
            ("any-port.lan", true),
            ("128.0.0.1:5000", false),
            ("docker.io", false),
            ("localhost.example.com", false),
        ];
        for (host, want) in cases {
            assert_eq!(opts.plain_http(host), *want, "host {host}");
        }
    }

    #[test]
    fn loads_registries_file_and_authfile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(REGISTRIES_FILE),
            "# local registries\ninsecure:\n  - Registry.LAN:5000\nmirrors:\n  docker.io:\n    \
             - mirror.lan:5000\n",
        )
        .unwrap();
        let auth = dir.path().join("auth.json");
        std::fs::write(&auth, r#"{"auths":{"registry.lan:5000":{"auth":"dTpw"}}}"#).unwrap();

        let opts = ClientOptions::load(dir.path(), Some(&auth)).unwrap();
        assert_eq!(opts.insecure_hosts, vec!["registry.lan:5000"]);
        assert_eq!(opts.mirrors["docker.io"], vec!["mirror.lan:5000"]);
        assert_eq!(
            opts.credentials.credentials_for("registry.lan:5000"),
            Some(oci::Credentials::basic("u", "p"))
        );
    }

    #[test]
    fn refuses_bad_files() {
        let cases: &[(&str, &str, &str)] = &[
            ("typo", "insecur: [a]\n", "parse"),
            (
                "scheme",
                "insecure: [\"http://a:5000\"]\n",
                "without a scheme",
            ),
            (
                "path",
                "mirrors: {docker.io: [\"m/x\"]}\n",
                "not a registry host",
            ),
        ];
        for (name, text, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(REGISTRIES_FILE), text).unwrap();
            let err = ClientOptions::load(dir.path(), Some(Path::new("/dev/null/x")))
                .expect_err(name)
                .to_string();
            assert!(
                err.contains(want),
                "case {name}: {err:?} should contain {want:?}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = ClientOptions::load(dir.path(), Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("missing.json"), "{err}");
    }
}
