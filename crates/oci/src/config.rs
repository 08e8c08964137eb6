//! The image config document: how to run the image (`config`) and which uncompressed layer
//! contents make its root filesystem (`rootfs.diff_ids`), plus [`chain_ids`] that name the
//! stacked snapshots.
//!
//! Fields the runtime does not use are dropped on parsing; `null` where a list or map is
//! expected reads as empty, as docker writes `"Env": null` in some images.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::Digest;

/// Why an image config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("decode image config JSON")]
    Json(#[source] serde_json::Error),
    #[error("image config has rootfs type {found:?}: only \"layers\" is supported")]
    RootfsType { found: String },
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The image config (`application/vnd.oci.image.config.v1+json` and Docker's equivalent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// Parses a config document, requiring `rootfs.type` to be `layers`.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        let config: ImageConfig = serde_json::from_slice(bytes).map_err(ConfigError::Json)?;
        if config.rootfs.kind != "layers" {
            return Err(ConfigError::RootfsType {
                found: config.rootfs.kind,
            });
        }
        Ok(config)
    }

    /// The chain IDs of this image's layers, base first; the last names the whole image.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.rootfs.diff_ids)
    }
}

/// How to run a container from the image; names follow the spec's capitalised keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// The layers, by the digest of their uncompressed tar streams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

/// One step of how the image was built; `empty_layer` steps added no layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Chain IDs per the OCI image spec (config.md, "Layer ChainID"): the first is the first
/// diff ID; each next one is the sha256 of the previous chain ID, a space and the next diff
/// ID. A chain ID names a whole stack of layers, so equal stacks share a snapshot.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn parses_docker_style_config() {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"User":"1000:1000","Env":["PATH=/bin"],"Entrypoint":null,
            "Cmd":["sh"],"WorkingDir":"/app","Volumes":{{"/data":{{}}}},
            "ExposedPorts":{{"80/tcp":{{}}}},"Labels":null,"StopSignal":"SIGTERM",
            "Unknown":1}},
            "rootfs":{{"type":"layers","diff_ids":["{A}","{B}"]}},
            "history":[{{"created_by":"x","empty_layer":true}}],"container_config":{{}}}}"#
        );
        let c = ImageConfig::from_slice(json.as_bytes()).unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.user.as_deref(), Some("1000:1000"));
        assert_eq!(cc.env, vec!["PATH=/bin"]);
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(cc.working_dir.as_deref(), Some("/app"));
        assert!(cc.volumes.contains_key("/data"));
        assert!(cc.exposed_ports.contains_key("80/tcp"));
        assert!(cc.labels.is_empty());
        assert_eq!(cc.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(c.rootfs.diff_ids.len(), 2);
        assert!(c.history[0].empty_layer);

        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["config"]["WorkingDir"], "/app");
        assert_eq!(back["rootfs"]["type"], "layers");
    }

    #[test]
    fn refuses_bad_configs() {
        let cases: &[(&str, String, &str)] = &[
            (
                "rootfs type",
                r#"{"rootfs":{"type":"other","diff_ids":[]}}"#.into(),
                "\"other\"",
            ),
            ("no rootfs", "{}".into(), "decode image config"),
            (
                "bad diff id",
                r#"{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}"#.into(),
                "decode image config",
            ),
        ];
        for (name, json, want) in cases {
            let err = ImageConfig::from_slice(json.as_bytes())
                .expect_err(name)
                .to_string();
            assert!(
                err.contains(want),
                "case {name}: {err:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::parse(A).unwrap();
        let b = Digest::parse(B).unwrap();
        assert!(chain_ids(&[]).is_empty());
        let ids = chain_ids(&[a.clone(), b.clone(), a.clone()]);
        assert_eq!(ids[0], a);
        let second = Digest::sha256_of(format!("{A} {B}").as_bytes());
        assert_eq!(ids[1], second);
        assert_eq!(
            ids[2],
            Digest::sha256_of(format!("{second} {A}").as_bytes())
        );
        assert_ne!(
            ids[2], ids[0],
            "same diff on a different stack has its own chain"
        );
    }
}
