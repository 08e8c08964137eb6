//! Image types that do no IO: what the registry client, the content store and the runtime
//! agree on.
//!
//! - [`Digest`] and [`Digester`]: checked content addresses and how to compute them.
//! - [`Reference`]: an image name in the Docker grammar, normalised (`busybox` is
//!   `docker.io/library/busybox:latest`).
//! - [`MediaType`] and [`Compression`]: what a descriptor points at.
//! - [`manifest`]: descriptors, image manifests, indexes and platform selection.
//! - [`Platform`]: `os/architecture[/variant]` with Go's names.
//! - [`config`]: the image config document and [`chain_ids`].
//! - [`auth`]: credentials from a docker `config.json` or a pull secret.
//!
//! Every type with a grammar is built through a parser that refuses bad input with a message
//! naming the offending part; serde goes through the same parsers.

pub mod auth;
pub mod config;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use auth::{Credentials, DockerConfig};
pub use config::{ImageConfig, chain_ids};
pub use digest::{Algorithm, Digest, DigestError, Digester};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError};
pub use media_type::{Compression, MediaType};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
