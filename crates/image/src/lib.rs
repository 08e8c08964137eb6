//! The image service: content store, layer unpack, snapshots, pulls and the pull policy.
//!
//! - [`content`]: blobs by digest, written through verified ingest files.
//! - [`snapshot`]: unpacked layers by chain ID, the runtime's overlayfs lower dirs.
//! - [`store`]: image records (what a reference resolved to), removal and GC.
//! - [`unpack`]: applying one layer tarball into an empty directory, safely.
//! - [`pull`]: resolve, fetch and unpack an image, layers concurrently.
//! - [`policy`]: the kubelet's pull policies on top of [`pull`].

pub mod content;
pub mod lock;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use store::{ImageRecord, LayerRecord, Store, StoreError};
pub mod policy;
pub mod pull;

pub use policy::{EnsureOutcome, PolicyError, PullPolicy, chain as error_chain, ensure};
pub use pull::{LayerFetch, NoProgress, Progress, PullError, PulledImage, pull};
