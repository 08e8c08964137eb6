//! Helpers for hoist's tests: real registries on loopback, images built in code, a registry
//! that misbehaves on purpose, and the rule for skipping tests outside CI.
//!
//! - [`layer`]: layer tarballs built entry by entry, hostile ones included.
//! - [`registry`]: Debian's `docker-registry` started on a free loopback port.
//! - [`image`]: manifests, configs and indexes assembled from layers, and pushed.
//! - [`fake`]: a small registry that lies, stalls and redirects, for faults a real one
//!   will not produce on demand.
//! - [`push`]: the v2 upload protocol, used by [`registry::Registry::push`].
//! - [`busybox`]: a runnable root filesystem layer from the host's static busybox.
//! - [`ci`]: `require`, which skips a test outside CI and fails it under `CI=true`.
//! - [`kubectl`]: the stock kubectl binaries pointed at a cluster, and what they printed.

pub mod busybox;
pub mod ci;
pub mod fake;
pub mod image;
pub mod kubectl;
pub mod layer;
pub mod push;
pub mod registry;

pub use ci::require;
pub use fake::{FakeRegistry, Fault};
pub use image::{BuiltImage, BuiltIndex, Format, ImageBuilder, IndexBuilder, Layer};
pub use registry::Registry;
