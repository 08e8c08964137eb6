//! The pull: reference → manifest → config → every layer at once → image record.
//!
//! [`pull`] resolves the reference for a platform, keeps the manifest (and index) and the
//! config in the content store, then runs one task per layer concurrently (see `layer.rs`):
//! each makes sure the snapshot of its chain ID exists, streaming its blob from the registry
//! into the content store and the unpacker at once when it does not. Layers whose snapshot
//! is already there cost one `stat`. The diff ID unpack computes must equal the config's
//! `rootfs.diff_ids` entry, or the layer is refused and no snapshot is made. Last, the image
//! record is written, so a reader never sees a record whose snapshots are missing.
//!
//! The whole pull holds the store's shared lock, so garbage collection waits for it.

mod client;
mod layer;
pub mod source;

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use oci::{Descriptor, Digest, ImageConfig, Platform, Reference};
use tokio::sync::watch;
use tracing::Instrument;

pub use source::{BlobBody, ImageSource, Resolved, SourceError};

use crate::content::ContentError;
use crate::snapshot::SnapshotError;
use crate::store::{ImageRecord, LayerRecord, Store, StoreError};
use crate::unpack::UnpackError;

/// Configs are a few KiB; anything past this is not a config.
const CONFIG_LIMIT: u64 = 8 << 20;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("resolve {reference} at its registry")]
    Resolve {
        reference: String,
        #[source]
        source: SourceError,
    },
    #[error("fetch {what} blob {digest}")]
    Fetch {
        what: &'static str,
        digest: Digest,
        #[source]
        source: SourceError,
    },
    #[error("config blob {digest} is not an image config")]
    BadConfig {
        digest: Digest,
        #[source]
        source: oci::config::ConfigError,
    },
    #[error(
        "manifest lists {layers} layers but the config's rootfs.diff_ids has {diff_ids}: \
         they must match one to one"
    )]
    LayerCount { layers: usize, diff_ids: usize },
    #[error(
        "layer {digest} has media type {media_type}, which is not a layer hoist can unpack \
         (tar, tar+gzip or tar+zstd)"
    )]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error(
        "layer {layer} unpacks to diff ID {got}, but the config says {expected}: the layer \
         is not the one the image was built with"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        got: Digest,
    },
    #[error("layer {layer} links to files of a lower layer that failed")]
    LowerFailed { layer: Digest },
    #[error("unpack")]
    Unpack(#[source] UnpackError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("pull task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl PullError {
    fn join(e: tokio::task::JoinError) -> Self {
        PullError::Task(e)
    }
}

/// How a layer's snapshot came to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerFetch {
    /// The snapshot was already there (this or another image, or a concurrent pull).
    Present,
    /// Unpacked from a blob already in the content store: nothing downloaded.
    FromContentStore,
    /// Downloaded, from byte `resumed_from` on (0 unless a killed pull left a partial file).
    Downloaded { resumed_from: u64 },
}

/// Reports a pull's progress; every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// The image is resolved; `layers` are its layer descriptors, bottom first.
    fn resolved(&self, _digest: &Digest, _layers: &[Descriptor]) {}
    /// `bytes` more bytes of layer `index` arrived (or were found in a partial file).
    fn layer_bytes(&self, _index: usize, _bytes: u64) {}
    /// Layer `index` is in place.
    fn layer_done(&self, _index: usize, _how: LayerFetch) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub record: ImageRecord,
    /// Per layer, bottom first, how its snapshot came to be there.
    pub layers: Vec<LayerFetch>,
    pub elapsed: Duration,
}

impl PulledImage {
    /// Whether any layer had to be downloaded.
    pub fn downloaded(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, LayerFetch::Downloaded { .. }))
    }
}

/// Pulls `reference` for `platform` into the store (see the module header).
pub async fn pull<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<PulledImage, PullError> {
    let span = tracing::debug_span!("pull", image = %reference, %platform);
    pull_in_span(store, source, reference, platform, progress)
        .instrument(span)
        .await
}

async fn pull_in_span<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<PulledImage, PullError> {
    let started = Instant::now();
    let _guard = store.pull_guard().await?;

    let resolved = source
        .resolve_image(reference, platform)
        .await
        .map_err(|source| PullError::Resolve {
            reference: reference.to_string(),
            source,
        })?;
    let content = store.content();
    content
        .put(&resolved.manifest_digest, &resolved.manifest_bytes)
        .await?;
    if let Some(index) = &resolved.index_bytes {
        content.put(&resolved.digest, index).await?;
    }
    let manifest = &resolved.manifest;
    progress.resolved(&resolved.digest, &manifest.layers);

    let config_bytes = fetch_config(store, source, reference, &manifest.config).await?;
    let config = ImageConfig::from_slice(&config_bytes).map_err(|source| PullError::BadConfig {
        digest: manifest.config.digest.clone(),
        source,
    })?;
    let layers = layer_records(manifest.layers.as_slice(), &config)?;

    let fetched = pull_layers(store, source, reference, &layers, progress).await?;

    let record = ImageRecord::new(
        reference,
        resolved.digest.clone(),
        resolved.manifest_digest.clone(),
        platform_of(&config),
        manifest.config.digest.clone(),
        manifest.config.size,
        layers,
    );
    let record = store.put(record)?;
    tracing::debug!(digest = %record.digest, elapsed = ?started.elapsed(), "pulled");
    Ok(PulledImage {
        record,
        layers: fetched,
        elapsed: started.elapsed(),
    })
}

/// The config from the content store, or fetched under the blob's lock so that concurrent
/// pulls fetch it once.
async fn fetch_config<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    descriptor: &Descriptor,
) -> Result<Vec<u8>, PullError> {
    let content = store.content();
    let digest = &descriptor.digest;
    if !content.contains(digest) {
        let lock = content.lock(digest).await?;
        if !content.contains(digest) {
            let bytes = source
                .fetch_blob(reference, descriptor, CONFIG_LIMIT.min(descriptor.size))
                .await
                .map_err(|source| PullError::Fetch {
                    what: "config",
                    digest: digest.clone(),
                    source,
                })?;
            let mut ingest = content.ingest(digest, descriptor.size, &lock)?;
            ingest.write(&bytes)?;
            ingest.commit()?;
            return Ok(bytes.to_vec());
        }
    }
    Ok(content.read(digest)?)
}

/// Pairs the manifest's layers with the config's diff IDs and their chain IDs.
fn layer_records(
    layers: &[Descriptor],
    config: &ImageConfig,
) -> Result<Vec<LayerRecord>, PullError> {
    let diff_ids = &config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(PullError::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chains = config.chain_ids();
    let mut out = Vec::with_capacity(layers.len());
    for ((layer, diff_id), chain_id) in layers.iter().zip(diff_ids).zip(chains) {
        if layer.media_type.layer_compression().is_none() {
            return Err(PullError::UnsupportedLayer {
                digest: layer.digest.clone(),
                media_type: layer.media_type.to_string(),
            });
        }
        out.push(LayerRecord {
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.to_string(),
            diff_id: diff_id.clone(),
            chain_id,
        });
    }
    Ok(out)
}

/// Runs every layer's task at once; a hardlink into a lower layer makes its task wait for
/// that layer (and only then).
async fn pull_layers<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    layers: &[LayerRecord],
    progress: &dyn Progress,
) -> Result<Vec<LayerFetch>, PullError> {
    let chains: Vec<Digest> = layers.iter().map(|l| l.chain_id.clone()).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        layers.iter().map(|_| watch::channel(false)).unzip();
    let descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|l| {
            Descriptor::new(
                oci::MediaType::parse(&l.media_type),
                l.digest.clone(),
                l.size,
            )
        })
        .collect();

    let tasks = senders.into_iter().enumerate().map(|(index, done)| {
        let job = layer::LayerJob {
            index,
            descriptor: &descriptors[index],
            compression: descriptors[index]
                .media_type
                .layer_compression()
                .expect("checked in layer_records"),
            diff_id: &layers[index].diff_id,
            chain_id: &chains[index],
            lower_chains: &chains[..index],
            lowers_ready: receivers[..index].to_vec(),
        };
        async move {
            let how = layer::ensure_layer(store, source, reference, job, progress).await?;
            let _ = done.send(true);
            progress.layer_done(index, how);
            Ok::<_, PullError>(how)
        }
    });
    try_join_all(tasks).await
}

/// `os/arch[/variant]` as the config states it.
fn platform_of(config: &ImageConfig) -> String {
    match &config.variant {
        Some(v) => format!("{}/{}/{v}", config.os, config.architecture),
        None => format!("{}/{}", config.os, config.architecture),
    }
}
