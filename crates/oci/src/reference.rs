//! Image references in the Docker grammar, normalised the way `docker pull` does.
//!
//! A `Reference` is always complete: `busybox` parses to registry `docker.io`, repository
//! `library/busybox` and tag `latest`. The grammar (from the distribution project's reference
//! package, rewritten here) is
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]       host: DNS labels joined by ".", or "[" IPv6 "]"
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! The first `/`-separated part is a domain only if it contains `.` or `:`, is `localhost`,
//! or has an uppercase letter (as docker decides); otherwise the name is on Docker Hub, where
//! a single component gets the `library/` prefix. Unlike oci-spec's parser, an uppercase
//! repository is refused rather than accepted into a reference no registry would serve.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestError};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's distribution API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_MAX: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty: expected a name such as \"busybox\" or \"host:5000/x:tag\"")]
    Empty,
    #[error("image reference {input:?} names {len} characters: at most {NAME_MAX} are allowed")]
    TooLong { input: String, len: usize },
    #[error(
        "image reference {input:?} has repository {repository:?} with uppercase letters: \
         repository names must be lowercase"
    )]
    Uppercase { input: String, repository: String },
    #[error(
        "image reference {input:?} has path component {component:?}, which is not allowed: a \
         component is lowercase letters and digits, separated by '.', '_', '__' or dashes, and \
         may not be empty"
    )]
    BadComponent { input: String, component: String },
    #[error(
        "image reference {input:?} has registry {domain:?}, which is not allowed: expected a \
         host name, an IPv4 address or a bracketed IPv6 address, optionally with \":port\""
    )]
    BadDomain { input: String, domain: String },
    #[error(
        "image reference {input:?} has tag {tag:?}, which is not allowed: a tag is 1 to 128 \
         letters, digits, '_', '.' or '-', and does not start with '.' or '-'"
    )]
    BadTag { input: String, tag: String },
    #[error("image reference {input:?} has an invalid digest")]
    BadDigest {
        input: String,
        #[source]
        source: DigestError,
    },
    #[error(
        "image reference {input:?} is a 64-digit hex string, which looks like an image ID: a \
         repository name cannot be one"
    )]
    HexName { input: String },
}

/// A normalised image reference: registry, repository, optional tag and optional digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `input`; a reference with neither tag nor digest gets `latest`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let err_input = || input.to_string();

        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::BadDigest {
                    input: err_input(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };

        // A tag is after the last ':' only when that ':' comes after the last '/', so a
        // registry port is never mistaken for a tag.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|s| colon > s) => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::BadTag {
                input: err_input(),
                tag: tag.to_string(),
            });
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::TooLong {
                input: err_input(),
                len: name.len(),
            });
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName { input: err_input() });
        }

        let (registry, path) = split_domain(name);
        if !valid_domain(registry) {
            return Err(ReferenceError::BadDomain {
                input: err_input(),
                domain: registry.to_string(),
            });
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: err_input(),
                repository: path.to_string(),
            });
        }
        if let Some(bad) = path.split('/').find(|c| !valid_component(c)) {
            return Err(ReferenceError::BadComponent {
                input: err_input(),
                component: bad.to_string(),
            });
        }

        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry as named in the reference, e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The host (and port) to send API requests to: Docker Hub's API lives on
    /// `registry-1.docker.io`, every other registry on its own name.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to put after `/v2/<repository>/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same image pinned to `digest`, keeping the tag for display.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::BadTag {
                input: self.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form docker prints: Docker Hub's registry and `library/` are dropped, e.g.
    /// `busybox:latest`, `user/app:1`, `127.0.0.1:5000/x:tag`.
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d.as_str());
        }
    }
}

/// Splits off the domain as docker does; names without one are on Docker Hub.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_component(component: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = component.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Runs of separators: one '.', one or two '_', or any number of '-'.
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let Some(host) = host else { return true };
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

impl fmt::Display for Reference {
    /// The full normalised form, e.g. `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    #[allow(clippy::type_complexity)]
    fn normalises_like_docker() {
        // (case, input, registry, repository, tag, has digest, full form, familiar form)
        let cases: &[(&str, &str, &str, &str, Option<&str>, bool, &str, &str)] = &[
            (
                "bare",
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "tag",
                "busybox:1.36",
                "docker.io",
                "library/busybox",
                Some("1.36"),
                false,
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "user repo",
                "user/app",
                "docker.io",
                "user/app",
                Some("latest"),
                false,
                "docker.io/user/app:latest",
                "user/app:latest",
            ),
            (
                "explicit hub",
                "docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index alias",
                "index.docker.io/library/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "host port",
                "127.0.0.1:5000/x/y:tag",
                "127.0.0.1:5000",
                "x/y",
                Some("tag"),
                false,
                "127.0.0.1:5000/x/y:tag",
                "127.0.0.1:5000/x/y:tag",
            ),
            (
                "localhost",
                "localhost/x",
                "localhost",
                "x",
                Some("latest"),
                false,
                "localhost/x:latest",
                "localhost/x:latest",
            ),
            (
                "localhost port",
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                false,
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "ipv6",
                "[::1]:5000/x:1",
                "[::1]:5000",
                "x",
                Some("1"),
                false,
                "[::1]:5000/x:1",
                "[::1]:5000/x:1",
            ),
            (
                "dotted host",
                "quay.io/a/b/c",
                "quay.io",
                "a/b/c",
                Some("latest"),
                false,
                "quay.io/a/b/c:latest",
                "quay.io/a/b/c:latest",
            ),
            (
                "separators",
                "a/b.c_d__e--f",
                "docker.io",
                "a/b.c_d__e--f",
                Some("latest"),
                false,
                "docker.io/a/b.c_d__e--f:latest",
                "a/b.c_d__e--f:latest",
            ),
            (
                "uppercase host",
                "Host/x",
                "Host",
                "x",
                Some("latest"),
                false,
                "Host/x:latest",
                "Host/x:latest",
            ),
            (
                "port-like tag",
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
                false,
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
        ];
        for (name, input, registry, repo, tag, _, full, familiar) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("case {name}: {e}"));
            assert_eq!(r.registry(), *registry, "case {name}");
            assert_eq!(r.repository(), *repo, "case {name}");
            assert_eq!(r.tag(), *tag, "case {name}");
            assert_eq!(r.to_string(), *full, "case {name}");
            assert_eq!(r.familiar(), *familiar, "case {name}");
            // The full form parses back to the same reference.
            assert_eq!(Reference::parse(full).unwrap(), r, "case {name} round trip");
        }
    }

    #[test]
    fn digests_pin_content() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.manifest_reference(), D);

        let both = Reference::parse(&format!("h:1/x:v1@{D}")).unwrap();
        assert_eq!(both.tag(), Some("v1"));
        assert_eq!(both.to_string(), format!("h:1/x:v1@{D}"));
        assert_eq!(both.manifest_reference(), D);

        let pinned = Reference::parse("busybox:1")
            .unwrap()
            .with_digest(both.digest().unwrap().clone());
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/busybox:1@{D}")
        );
        assert_eq!(pinned.familiar(), format!("busybox:1@{D}"));
    }

    #[test]
    fn api_host_maps_docker_hub() {
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5000/a").unwrap().api_host(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn refuses_bad_references() {
        let long = format!("a/{}", "b".repeat(260));
        let long_tag = format!("x:{}", "t".repeat(129));
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", "is empty"),
            ("uppercase repo", "Busybox", "must be lowercase"),
            ("uppercase path", "quay.io/Org/app", "must be lowercase"),
            ("trailing slash", "quay.io/x/", "component \"\""),
            ("double slash", "a//b", "component \"\""),
            ("leading separator", "-x", "component \"-x\""),
            ("triple underscore", "a___b", "component \"a___b\""),
            ("dot dot", "a..b", "component \"a..b\""),
            ("space", "bus box", "component \"bus box\""),
            ("empty tag", "busybox:", "tag \"\""),
            ("dot tag", "busybox:.x", "tag \".x\""),
            ("long tag", &long_tag, "1 to 128"),
            ("bad port", "host:50a/x", "registry \"host:50a\""),
            ("empty host label", "a..io/x", "registry \"a..io\""),
            ("bad ipv6", "[zz]:5000/x", "registry \"[zz]:5000\""),
            ("bad digest", "busybox@sha256:abc", "invalid digest"),
            ("unknown algorithm", "busybox@md5:abc", "invalid digest"),
            ("too long", &long, "at most 255"),
            ("image id", &D[7..], "looks like an image ID"),
        ];
        for (name, input, want) in cases {
            let err = Reference::parse(input).expect_err(name);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "case {name}: {msg:?} should contain {want:?}"
            );
        }
        // The digest error says what is wrong with the digest, as its source.
        let err = Reference::parse("busybox@md5:abc").unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("only sha256 and sha512"), "{source}");
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let r: Reference = serde_json::from_str("\"busybox\"").unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"docker.io/library/busybox:latest\""
        );
        assert!(serde_json::from_str::<Reference>("\"UPPER\"").is_err());
    }
}
