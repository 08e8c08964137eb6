//! Platforms (`os/architecture[/variant]`) in Go's naming, as image indexes use them, and the
//! rules for picking one from an index.
//!
//! Names are normalised on the way in (`x86_64` -> `amd64`, `aarch64` -> `arm64/v8`), so
//! comparison is plain equality plus two defaults that containerd also applies: an `arm64`
//! entry without a variant is `v8`, and `amd64` variants (`v2`, `v3` ...) are ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a platform string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "platform {input:?} is not allowed: expected os/architecture[/variant], such as \
         \"linux/amd64\" or \"linux/arm64/v8\""
    )]
    Malformed { input: String },
}

/// An image's target platform, as in an index entry or an image config.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

impl Platform {
    /// A platform from its parts, normalised.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, implied) = normalize_arch(architecture);
        let variant = variant.map(str::to_string).or(implied.map(str::to_string));
        let variant = match (architecture.as_str(), variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            ("arm64", Some("8")) => Some("v8".to_string()),
            _ => variant,
        };
        Platform {
            architecture,
            os: os.to_ascii_lowercase(),
            variant,
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// The platform this binary runs on, in Go's names (x86_64 -> amd64, aarch64 ->
    /// arm64/v8). The 32-bit arm variant cannot be read from the target triple alone, so
    /// `arm` hosts are taken to be v7.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = if arch == "arm" { Some("v7") } else { None };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Parses `os/architecture[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = input.split('/').collect();
        let ok =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let malformed = || PlatformError::Malformed {
            input: input.to_string(),
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(malformed()),
        }
    }

    /// How well `candidate` (an index entry's platform) serves this wanted platform: `None`
    /// if it cannot run here, otherwise a rank where lower is better.
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        let cand = Platform::new(
            &candidate.os,
            &candidate.architecture,
            candidate.variant.as_deref(),
        );
        if cand.os != self.os || cand.architecture != self.architecture {
            return None;
        }
        if self.architecture == "amd64" {
            return Some(0);
        }
        match (self.variant.as_deref(), cand.variant.as_deref()) {
            (None, _) => Some(0),
            (Some(w), Some(c)) if w == c => Some(0),
            (Some(_), None) => Some(10),
            // 32-bit arm runs older variants: v7 can run v6 and v5 images, less preferred.
            (Some(w), Some(c)) if self.architecture == "arm" => {
                let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
                match (level(w), level(c)) {
                    (Some(w), Some(c)) if c < w => Some(w - c),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Whether `candidate` can run where this platform is wanted.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.match_rank(candidate).is_some()
    }
}

/// Go architecture names for common aliases, with the variant an alias implies.
fn normalize_arch(arch: &str) -> (String, Option<&'static str>) {
    let lower = arch.to_ascii_lowercase();
    match lower.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), None),
        "aarch64" | "arm64" => ("arm64".into(), None),
        "armhf" => ("arm".into(), Some("v7")),
        "armel" => ("arm".into(), Some("v6")),
        "i386" | "i686" | "x86" => ("386".into(), None),
        _ => (lower, None),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases: &[(&str, &str, &str)] = &[
            ("amd64", "linux/amd64", "linux/amd64"),
            ("x86_64 alias", "linux/x86_64", "linux/amd64"),
            ("arm64 implies v8", "linux/arm64", "linux/arm64/v8"),
            ("aarch64 alias", "linux/aarch64", "linux/arm64/v8"),
            ("arm64 v8", "linux/arm64/v8", "linux/arm64/v8"),
            ("armhf", "linux/armhf", "linux/arm/v7"),
            ("arm v6", "linux/arm/v6", "linux/arm/v6"),
            ("uppercase os", "Linux/AMD64", "linux/amd64"),
        ];
        for (name, input, want) in cases {
            let p = Platform::parse(input).unwrap_or_else(|e| panic!("case {name}: {e}"));
            assert_eq!(p.to_string(), *want, "case {name}");
        }
        for bad in [
            "linux",
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "linux/am d64",
        ] {
            let err = Platform::parse(bad).expect_err(bad).to_string();
            assert!(
                err.contains("os/architecture[/variant]"),
                "case {bad:?}: {err}"
            );
        }
    }

    #[test]
    fn host_uses_go_names() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(host.to_string(), "linux/arm64/v8");
        }
    }

    #[test]
    fn matching_rules() {
        let p = |s: &str| {
            let mut parts = s.split('/');
            let os = parts.next().unwrap();
            let arch = parts.next().unwrap();
            // Build candidates raw, as they come from an index, without normalising.
            Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: parts.next().map(Into::into),
                os_version: None,
                os_features: vec![],
            }
        };
        let want = |s: &str| Platform::parse(s).unwrap();
        let cases: &[(&str, &str, &str, bool)] = &[
            ("same", "linux/amd64", "linux/amd64", true),
            (
                "amd64 ignores variant",
                "linux/amd64",
                "linux/amd64/v3",
                true,
            ),
            ("arm64 implied v8", "linux/arm64/v8", "linux/arm64", true),
            ("arm64 aarch64 entry", "linux/arm64", "linux/aarch64", true),
            ("different arch", "linux/amd64", "linux/arm64", false),
            ("different os", "linux/amd64", "windows/amd64", false),
            (
                "unknown attestation",
                "linux/amd64",
                "unknown/unknown",
                false,
            ),
            ("arm v7 runs v6", "linux/arm/v7", "linux/arm/v6", true),
            (
                "arm v6 does not run v7",
                "linux/arm/v6",
                "linux/arm/v7",
                false,
            ),
            (
                "arm64 v9 entry for v8 host",
                "linux/arm64/v8",
                "linux/arm64/v9",
                false,
            ),
        ];
        for (name, w, c, ok) in cases {
            assert_eq!(want(w).matches(&p(c)), *ok, "case {name}");
        }
        let v7 = want("linux/arm/v7");
        assert!(v7.match_rank(&p("linux/arm/v7")) < v7.match_rank(&p("linux/arm/v6")));
    }

    #[test]
    fn serde_uses_spec_names() {
        let json = r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1",
            "os.features":["win32k"],"extra":1}"#;
        let p: Platform = serde_json::from_str(json).unwrap();
        assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(p.os_features, vec!["win32k"]);
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["os.version"], "10.0.17763.1");
    }
}
