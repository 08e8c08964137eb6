//! Images assembled in code from layers: an [`ImageBuilder`] turns layers and a few config
//! fields into the exact bytes a registry stores (config blob, manifest), an [`IndexBuilder`]
//! groups several images by platform, and [`push`](crate::push) sends them to a registry.
//!
//! The JSON is built by hand with `serde_json` rather than through hoist's own types, on
//! purpose: it is what a registry would hand hoist, not what hoist thinks it should be.
//! Tests that need broken documents can edit the JSON before it is serialised with
//! [`ImageBuilder::edit_config`] and [`ImageBuilder::edit_manifest`].

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub use crate::busybox::{busybox_image, busybox_rootfs_layer};
pub use crate::push::{PushError, Pusher, push, push_index};

/// OCI media types.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }
}

/// A layer blob as a registry holds it: the (compressed) bytes, their digest, and the
/// digest of the uncompressed tar (the diff ID the image config lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob as stored and served.
    pub bytes: Vec<u8>,
    /// An OCI layer media type; Docker-format images translate it.
    pub media_type: String,
    /// `sha256:` of `bytes`.
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

impl Layer {
    /// Compresses a finished tar stream into a layer.
    pub fn from_tar(tar: &[u8], compression: Compression) -> Layer {
        let bytes = match compression {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(tar).expect("gzip into memory");
                enc.finish().expect("gzip into memory")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd into memory"),
        };
        Layer {
            digest: sha256_digest(&bytes),
            diff_id: sha256_digest(tar),
            media_type: compression.oci_media_type().to_string(),
            bytes,
        }
    }

    /// The media type this layer gets in a manifest of `format`. Docker's schema 2 has no
    /// zstd type; such layers keep the OCI type, as mixed images in the wild do.
    pub fn media_type_for(&self, format: Format) -> &str {
        match (format, self.media_type.as_str()) {
            (Format::Docker, media::OCI_LAYER_GZIP) => media::DOCKER_LAYER_GZIP,
            (Format::Docker, media::OCI_LAYER) => media::DOCKER_LAYER,
            (_, other) => other,
        }
    }
}

/// Which family of media types an image or index uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Oci,
    Docker,
}

/// An image platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "os": self.os, "architecture": self.architecture });
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }
}

impl Default for Platform {
    fn default() -> Platform {
        Platform::new("linux", "amd64", None)
    }
}

/// The runtime part of an image config (`config` in the JSON). Unset fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
}

impl RunConfig {
    /// Sets the entrypoint from string slices.
    pub fn entrypoint(&mut self, args: &[&str]) -> &mut Self {
        self.entrypoint = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets the cmd from string slices.
    pub fn cmd(&mut self, args: &[&str]) -> &mut Self {
        self.cmd = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Appends one `KEY=value`.
    pub fn env(&mut self, kv: &str) -> &mut Self {
        self.env.push(kv.to_string());
        self
    }

    fn to_json(&self) -> Value {
        let mut c = serde_json::Map::new();
        if let Some(e) = &self.entrypoint {
            c.insert("Entrypoint".into(), json!(e));
        }
        if let Some(cmd) = &self.cmd {
            c.insert("Cmd".into(), json!(cmd));
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), json!(self.env));
        }
        if let Some(u) = &self.user {
            c.insert("User".into(), json!(u));
        }
        if let Some(w) = &self.working_dir {
            c.insert("WorkingDir".into(), json!(w));
        }
        let set = |keys: &[String]| -> Value {
            Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect())
        };
        if !self.volumes.is_empty() {
            c.insert("Volumes".into(), set(&self.volumes));
        }
        if !self.exposed_ports.is_empty() {
            c.insert("ExposedPorts".into(), set(&self.exposed_ports));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(s));
        }
        Value::Object(c)
    }
}

type Edit = Box<dyn FnOnce(&mut Value)>;

/// Builds one image (config blob + manifest) from layers.
#[derive(Default)]
pub struct ImageBuilder {
    layers: Vec<Layer>,
    run: RunConfig,
    platform: Platform,
    format: Format,
    edit_config: Vec<Edit>,
    edit_manifest: Vec<Edit>,
}

impl ImageBuilder {
    /// An empty linux/amd64 OCI image.
    pub fn new() -> ImageBuilder {
        ImageBuilder::default()
    }

    /// Appends a layer (the last one is the top).
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Changes the runtime config: `.config(|c| { c.cmd(&["sh"]); c.user = Some("1000".into()) })`.
    pub fn config(mut self, f: impl FnOnce(&mut RunConfig)) -> Self {
        f(&mut self.run);
        self
    }

    /// Sets the platform written into the config (and into an index that holds this image).
    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> Self {
        self.platform = Platform::new(os, arch, variant);
        self
    }

    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Edits the config JSON after it is assembled and before it is serialised.
    pub fn edit_config(mut self, f: impl FnOnce(&mut Value) + 'static) -> Self {
        self.edit_config.push(Box::new(f));
        self
    }

    /// Edits the manifest JSON after it is assembled and before it is serialised.
    pub fn edit_manifest(mut self, f: impl FnOnce(&mut Value) + 'static) -> Self {
        self.edit_manifest.push(Box::new(f));
        self
    }

    pub fn build(self) -> BuiltImage {
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|_| json!({ "created": "2024-01-01T00:00:00Z", "created_by": "testkit" }))
            .collect();
        let mut config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": self.run.to_json(),
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        for edit in self.edit_config {
            edit(&mut config);
        }
        let config_bytes = serde_json::to_vec(&config).expect("config serialises");
        let config_digest = sha256_digest(&config_bytes);

        let (manifest_type, config_type) = match self.format {
            Format::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
            Format::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
        };
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                json!({
                    "mediaType": l.media_type_for(self.format),
                    "digest": l.digest,
                    "size": l.bytes.len(),
                })
            })
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {
                "mediaType": config_type,
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers,
        });
        for edit in self.edit_manifest {
            edit(&mut manifest);
        }
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        BuiltImage {
            manifest_digest: sha256_digest(&manifest_bytes),
            manifest_media_type: manifest_type.to_string(),
            manifest_bytes,
            config_digest,
            config_bytes,
            layers: self.layers,
            platform: self.platform,
        }
    }
}

/// The bytes of an image as a registry stores them.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: String,
    /// The Content-Type the manifest is pushed and served with.
    pub manifest_media_type: String,
    pub config_bytes: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<Layer>,
    pub platform: Platform,
}

impl BuiltImage {
    /// Every blob of the image (config first, then layers) as `(digest, bytes)`.
    pub fn blobs(&self) -> Vec<(&str, &[u8])> {
        let mut out = vec![(self.config_digest.as_str(), self.config_bytes.as_slice())];
        out.extend(
            self.layers
                .iter()
                .map(|l| (l.digest.as_str(), l.bytes.as_slice())),
        );
        out
    }

    /// Total size of the layer blobs.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes.len() as u64).sum()
    }
}

/// Builds an OCI index or Docker manifest list over several images.
#[derive(Default)]
pub struct IndexBuilder {
    images: Vec<BuiltImage>,
    format: Format,
    edit: Vec<Edit>,
}

impl IndexBuilder {
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    /// Adds an image; its entry carries the platform it was built for.
    pub fn image(mut self, image: BuiltImage) -> Self {
        self.images.push(image);
        self
    }

    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Edits the index JSON before it is serialised.
    pub fn edit(mut self, f: impl FnOnce(&mut Value) + 'static) -> Self {
        self.edit.push(Box::new(f));
        self
    }

    pub fn build(self) -> BuiltIndex {
        let media_type = match self.format {
            Format::Oci => media::OCI_INDEX,
            Format::Docker => media::DOCKER_LIST,
        };
        let manifests: Vec<Value> = self
            .images
            .iter()
            .map(|img| {
                json!({
                    "mediaType": img.manifest_media_type,
                    "digest": img.manifest_digest,
                    "size": img.manifest_bytes.len(),
                    "platform": img.platform.to_json(),
                })
            })
            .collect();
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": manifests,
        });
        for edit in self.edit {
            edit(&mut index);
        }
        let bytes = serde_json::to_vec(&index).expect("index serialises");
        BuiltIndex {
            digest: sha256_digest(&bytes),
            media_type: media_type.to_string(),
            bytes,
            images: self.images,
        }
    }
}

/// An index and the images it lists.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
    pub images: Vec<BuiltImage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_config_and_layers_by_digest() {
        let layer = Layer::from_tar(&[0u8; 1024], Compression::Gzip);
        let img = ImageBuilder::new()
            .layer(layer.clone())
            .config(|c| {
                c.cmd(&["echo", "hi"]);
            })
            .format(Format::Docker)
            .build();
        let m: Value = serde_json::from_slice(&img.manifest_bytes).unwrap();
        assert_eq!(m["mediaType"], media::DOCKER_MANIFEST);
        assert_eq!(m["config"]["digest"], img.config_digest);
        assert_eq!(m["layers"][0]["digest"], layer.digest);
        assert_eq!(m["layers"][0]["mediaType"], media::DOCKER_LAYER_GZIP);
        assert_eq!(img.manifest_digest, sha256_digest(&img.manifest_bytes));
        let c: Value = serde_json::from_slice(&img.config_bytes).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][0], layer.diff_id);
        assert_eq!(c["config"]["Cmd"], json!(["echo", "hi"]));
        assert_eq!(layer.diff_id, sha256_digest(&[0u8; 1024]));
    }
}
