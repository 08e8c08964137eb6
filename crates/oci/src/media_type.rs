//! Media types of manifests, indexes, configs and layers, OCI and Docker schema 2.
//!
//! Unknown types are kept as `Other` so that documents carrying them still parse; the code
//! that must act on a type (manifest parsing, layer unpacking) refuses `Other` there, naming
//! the type. Docker schema 1 types are recognised only so they can be refused clearly.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

macro_rules! media_types {
    ($($variant:ident => $s:literal,)*) => {
        /// A known media type, or `Other` with the string as given.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MediaType {
            $(#[doc = $s] $variant,)*
            Other(String),
        }

        impl MediaType {
            /// The media type string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(MediaType::$variant => $s,)*
                    MediaType::Other(s) => s,
                }
            }

            /// Parses a media type; parameters such as `; charset=utf-8` are dropped and
            /// unknown types become `Other`.
            pub fn parse(s: &str) -> MediaType {
                let essence = s.split(';').next().unwrap_or("").trim();
                match essence.to_ascii_lowercase().as_str() {
                    $($s => MediaType::$variant,)*
                    _ => MediaType::Other(essence.to_string()),
                }
            }
        }
    };
}

media_types! {
    OciManifest => "application/vnd.oci.image.manifest.v1+json",
    OciIndex => "application/vnd.oci.image.index.v1+json",
    OciConfig => "application/vnd.oci.image.config.v1+json",
    OciLayer => "application/vnd.oci.image.layer.v1.tar",
    OciLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    OciLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    OciForeignLayer => "application/vnd.oci.image.layer.nondistributable.v1.tar",
    OciForeignLayerGzip => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    OciForeignLayerZstd => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    OciEmpty => "application/vnd.oci.empty.v1+json",
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
    DockerConfig => "application/vnd.docker.container.image.v1+json",
    DockerLayer => "application/vnd.docker.image.rootfs.diff.tar",
    DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    DockerLayerZstd => "application/vnd.docker.image.rootfs.diff.tar.zstd",
    DockerForeignLayerGzip => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    DockerSchema1 => "application/vnd.docker.distribution.manifest.v1+json",
    DockerSchema1Signed => "application/vnd.docker.distribution.manifest.v1+prettyjws",
}

/// The manifest types hoist can use, most preferred first: what a client sends in `Accept`.
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

impl MediaType {
    /// A single-platform image manifest (OCI or Docker schema 2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// A multi-platform index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// A Docker schema 1 manifest, which hoist refuses.
    pub fn is_schema1(&self) -> bool {
        matches!(
            self,
            MediaType::DockerSchema1 | MediaType::DockerSchema1Signed
        )
    }

    /// An image config document.
    pub fn is_config(&self) -> bool {
        matches!(self, MediaType::OciConfig | MediaType::DockerConfig)
    }

    /// A non-distributable ("foreign") layer, which registries usually do not serve.
    pub fn is_foreign_layer(&self) -> bool {
        matches!(
            self,
            MediaType::OciForeignLayer
                | MediaType::OciForeignLayerGzip
                | MediaType::OciForeignLayerZstd
                | MediaType::DockerForeignLayerGzip
        )
    }

    /// For a layer type, how it is compressed; `None` for anything that is not a layer.
    pub fn layer_compression(&self) -> Option<Compression> {
        match self {
            MediaType::OciLayer | MediaType::OciForeignLayer | MediaType::DockerLayer => {
                Some(Compression::None)
            }
            MediaType::OciLayerGzip
            | MediaType::OciForeignLayerGzip
            | MediaType::DockerLayerGzip
            | MediaType::DockerForeignLayerGzip => Some(Compression::Gzip),
            MediaType::OciLayerZstd
            | MediaType::OciForeignLayerZstd
            | MediaType::DockerLayerZstd => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        MediaType::parse(s)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MediaType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(MediaType::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_classifies() {
        let cases: &[(&str, &str, MediaType, Option<Compression>)] = &[
            (
                "oci gzip",
                "application/vnd.oci.image.layer.v1.tar+gzip",
                MediaType::OciLayerGzip,
                Some(Compression::Gzip),
            ),
            (
                "oci zstd",
                "application/vnd.oci.image.layer.v1.tar+zstd",
                MediaType::OciLayerZstd,
                Some(Compression::Zstd),
            ),
            (
                "oci tar",
                "application/vnd.oci.image.layer.v1.tar",
                MediaType::OciLayer,
                Some(Compression::None),
            ),
            (
                "docker gzip",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                MediaType::DockerLayerGzip,
                Some(Compression::Gzip),
            ),
            (
                "docker foreign",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                MediaType::DockerForeignLayerGzip,
                Some(Compression::Gzip),
            ),
            (
                "oci nondistributable zstd",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                MediaType::OciForeignLayerZstd,
                Some(Compression::Zstd),
            ),
            (
                "manifest with params",
                "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
                MediaType::DockerManifest,
                None,
            ),
            (
                "config",
                "application/vnd.oci.image.config.v1+json",
                MediaType::OciConfig,
                None,
            ),
            (
                "unknown",
                "text/plain",
                MediaType::Other("text/plain".into()),
                None,
            ),
        ];
        for (name, s, want, compression) in cases {
            let got = MediaType::parse(s);
            assert_eq!(&got, want, "case {name}");
            assert_eq!(got.layer_compression(), *compression, "case {name}");
        }
        assert!(
            MediaType::parse("application/vnd.docker.distribution.manifest.v1+prettyjws")
                .is_schema1()
        );
        assert!(MediaType::DockerManifestList.is_index());
        assert!(MediaType::OciManifest.is_manifest());
        for accept in MANIFEST_ACCEPT {
            let t = MediaType::parse(accept);
            assert!(t.is_index() || t.is_manifest(), "{accept}");
        }
    }

    #[test]
    fn serde_round_trips_as_string() {
        let t: MediaType =
            serde_json::from_str("\"application/vnd.oci.image.index.v1+json\"").unwrap();
        assert_eq!(t, MediaType::OciIndex);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"application/vnd.oci.image.index.v1+json\""
        );
        let o: MediaType = serde_json::from_str("\"x/y\"").unwrap();
        assert_eq!(o.as_str(), "x/y");
    }
}
