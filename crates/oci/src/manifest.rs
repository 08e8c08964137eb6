//! Manifests and indexes: the documents a registry serves for a tag or digest.
//!
//! `Descriptor` points at content by media type, digest and size. An `ImageManifest` names one
//! platform's config and layers; an `ImageIndex` (or Docker manifest list) names one manifest
//! per platform, and [`ImageIndex::select`] picks the one to run. [`Manifest::parse`] decides
//! which of the two a fetched document is, refusing schema 1 and unknown types by name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_type::MediaType;
use crate::platform::Platform;

/// Why a manifest document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "manifest has media type {media_type}: Docker schema 1 manifests are not supported \
         (push the image again with a current client to get schema 2 or OCI)"
    )]
    Schema1 { media_type: String },
    #[error(
        "manifest has media type {media_type:?}, which is not supported: expected an OCI image \
         manifest or index, or a Docker schema 2 manifest or manifest list"
    )]
    Unsupported { media_type: String },
    #[error("manifest has schemaVersion {found}: only 2 is supported")]
    SchemaVersion { found: u64 },
    #[error(
        "manifest was served as {served} but its mediaType field says {document}: refusing an \
         ambiguous document"
    )]
    Mismatch { served: String, document: String },
    #[error("decode {what} JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A reference to content: what it is, its digest and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type,
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            artifact_type: None,
        }
    }
}

/// One platform's image: a config and an ordered list of layers (base first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Sum of the config and layer sizes as the manifest states them.
    pub fn content_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// A multi-platform image: one manifest descriptor per platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// The best manifest for `wanted`: entries without a platform, or whose media type is not
    /// an image manifest (attestations, nested indexes), are skipped; among matches the best
    /// rank wins, and the earlier entry on a tie, as containerd chooses.
    pub fn select(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| d.media_type.is_manifest())
            .filter_map(|d| Some((wanted.match_rank(d.platform.as_ref()?)?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }

    /// The platforms this index offers, for error messages.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| p.to_string())
            .collect()
    }
}

/// A parsed manifest document. Manifests are parsed once per pull, so the size difference
/// between the variants costs nothing worth a box.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Just enough of a document to tell what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

impl Manifest {
    /// Parses `bytes` as served with `media_type` (the Content-Type). When the served type
    /// is generic (`application/json`, empty), the document's own `mediaType` field decides,
    /// and failing that its shape (`manifests` for an index, `config` for an image), as the
    /// OCI spec allows `mediaType` to be absent.
    pub fn parse(media_type: &MediaType, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if media_type.is_schema1() {
            return Err(ManifestError::Schema1 {
                media_type: media_type.to_string(),
            });
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            what: "manifest",
            source,
        })?;
        let document = probe.media_type.as_deref().map(MediaType::parse);
        if probe.schema_version == Some(1) || document.as_ref().is_some_and(|d| d.is_schema1()) {
            let shown = document
                .map(|d| d.to_string())
                .unwrap_or_else(|| media_type.to_string());
            return Err(ManifestError::Schema1 { media_type: shown });
        }

        let generic =
            matches!(media_type, MediaType::Other(s) if s.is_empty() || s == "application/json");
        let kind = if !generic {
            media_type.clone()
        } else if let Some(d) = &document {
            d.clone()
        } else if probe.manifests.is_some() {
            MediaType::OciIndex
        } else if probe.config.is_some() {
            MediaType::OciManifest
        } else {
            return Err(ManifestError::Unsupported {
                media_type: media_type.to_string(),
            });
        };
        if !kind.is_manifest() && !kind.is_index() {
            return Err(ManifestError::Unsupported {
                media_type: kind.to_string(),
            });
        }
        if let Some(d) = &document
            && (d.is_index() != kind.is_index() || (!d.is_index() && !d.is_manifest()))
        {
            return Err(ManifestError::Mismatch {
                served: kind.to_string(),
                document: d.to_string(),
            });
        }
        match probe.schema_version {
            Some(2) => {}
            found => {
                return Err(ManifestError::SchemaVersion {
                    found: found.unwrap_or(0),
                });
            }
        }

        if kind.is_index() {
            let index = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                what: "image index",
                source,
            })?;
            Ok(Manifest::Index(index))
        } else {
            let image = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                what: "image manifest",
                source,
            })?;
            Ok(Manifest::Image(image))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn image_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":
            "application/vnd.oci.image.config.v1+json","digest":"{A}","size":10}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",
            "digest":"{B}","size":20,"unknown":true}}]}}"#
        )
    }

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
             {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{A}",
               "size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},
             {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{C}",
               "size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}},
             {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{B}",
               "size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        )
    }

    #[test]
    fn parses_image_manifests() {
        let served = MediaType::OciManifest;
        let Manifest::Image(m) = Manifest::parse(&served, image_json(None).as_bytes()).unwrap()
        else {
            panic!("expected an image manifest")
        };
        assert_eq!(m.config.digest.as_str(), A);
        assert_eq!(m.layers[0].media_type, MediaType::OciLayerGzip);
        assert_eq!(m.content_size(), 30);

        // Served as generic JSON, the document's own fields decide.
        let generic = MediaType::parse("application/json");
        assert!(matches!(
            Manifest::parse(&generic, image_json(None).as_bytes()).unwrap(),
            Manifest::Image(_)
        ));
        assert!(matches!(
            Manifest::parse(&generic, index_json().as_bytes()).unwrap(),
            Manifest::Index(_)
        ));
    }

    #[test]
    fn selects_platforms() {
        let Manifest::Index(i) =
            Manifest::parse(&MediaType::OciIndex, index_json().as_bytes()).unwrap()
        else {
            panic!("expected an index")
        };
        let pick = |p: &str| {
            i.select(&Platform::parse(p).unwrap())
                .map(|d| d.digest.to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some(B), "amd64");
        assert_eq!(
            pick("linux/arm64/v8").as_deref(),
            Some(A),
            "arm64 with implied v8"
        );
        assert_eq!(pick("linux/s390x"), None, "absent platform");
        assert_eq!(
            i.platforms(),
            vec!["linux/arm64", "unknown/unknown", "linux/amd64"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let image = image_json(None);
        let mismatched = image_json(Some("application/vnd.oci.image.index.v1+json"));
        let cases: &[(&str, MediaType, &[u8], &str)] = &[
            (
                "schema1 served",
                MediaType::DockerSchema1Signed,
                b"{}",
                "schema 1",
            ),
            (
                "schema1 by version",
                MediaType::parse("application/json"),
                schema1,
                "schema 1",
            ),
            (
                "unknown type",
                MediaType::parse("text/html"),
                image.as_bytes(),
                "\"text/html\"",
            ),
            (
                "layer type",
                MediaType::OciLayerGzip,
                image.as_bytes(),
                "not supported",
            ),
            (
                "mismatch",
                MediaType::OciManifest,
                mismatched.as_bytes(),
                "mediaType field says",
            ),
            (
                "not json",
                MediaType::OciManifest,
                b"<html>",
                "decode manifest JSON",
            ),
            (
                "version 3",
                MediaType::OciManifest,
                br#"{"schemaVersion":3,"config":{}}"#,
                "schemaVersion 3",
            ),
            (
                "bad digest",
                MediaType::OciManifest,
                br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:x","size":1}}"#,
                "decode image manifest JSON",
            ),
        ];
        for (name, mt, bytes, want) in cases {
            let err = Manifest::parse(mt, bytes).expect_err(name);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "case {name}: {msg:?} should contain {want:?}"
            );
        }
    }
}
