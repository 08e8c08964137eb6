//! hoist's container runtime: pod sandboxes, OCI bundles, runc or crun under a monitor
//! process, CRI-format logs and cgroups. The one crate of hoist that talks to the kernel
//! directly, and so the one allowed `unsafe` (each use carries a `SAFETY` comment).
//!
//! - [`spec`], [`process`], [`user`], [`quantity`], [`bundle`]: a pod's container and its
//!   image config turned into an OCI `config.json` (no IO but confined reads of the
//!   rootfs).
//! - [`volumes`]: emptyDir and hostPath volumes as bind mounts.
//! - [`rootfs`]: overlayfs over the image's snapshots, and path resolution confined to it.
//! - [`sandbox`]: network, IPC and UTS namespaces pinned by bind mounts.
//! - [`oci_runtime`]: finding runc or crun and running their verbs.
//! - [`monitor`]: the process that owns a container's stdio, writes its [`logs`] and
//!   records its exit in a status file.
//! - [`Runtime`]: the API `hoist run` and the agent use, shaped like CRI's RuntimeService.

pub mod bundle;
pub mod cgroups;
mod cleanup;
pub mod ids;
pub mod logs;
pub mod monitor;
pub mod netlink;
pub mod oci_runtime;
pub mod process;
pub mod quantity;
pub mod rootfs;
pub mod sandbox;
mod service;
pub mod spec;
pub mod state;
pub mod time;
pub mod user;
pub mod volumes;

pub use cleanup::CleanupReport;
pub use ids::{Id, Owner};
pub use oci_runtime::{OciError, RuntimeKind};
pub use sandbox::{SandboxConfig, SandboxRecord};
pub use service::{ContainerRequest, MonitorCommand, Runtime, RuntimeError};
pub use state::{ContainerRecord, ContainerStatus};
