//! One layer of a pull: from the registry (or the content store) into its snapshot.
//!
//! The bytes of a layer go through one pipe: the async side reads the registry's body and
//! sends its chunks over a bounded channel to a blocking thread, where a [`TeeReader`] writes
//! each chunk to the blob's ingest file (hashing it) and hands the same bytes to
//! [`unpack::apply_layer`], which decompresses and applies them into a temp snapshot dir.
//! Download, hashing, decompression and apply so overlap; the channel's bound keeps memory
//! flat when the disk is slower than the network.
//!
//! Locks, always in this order: the chain ID's, then the blob's (see [`crate::lock`]). The
//! chain ID's lock is held until the snapshot is committed, the blob's until the blob is.
//! Whoever waits on them finds the work done when they get them and skips it, so pulls of
//! one image, in one process or several, download each blob once.

use std::io::{self, Read};
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use oci::{Compression, Descriptor, Digest, Reference};
use tokio::sync::{mpsc, watch};

use super::source::{ImageSource, SourceError};
use super::{LayerFetch, Progress, PullError};
use crate::content::{ContentError, Ingest};
use crate::lock::FileLock;
use crate::snapshot::TempSnapshot;
use crate::store::Store;
use crate::unpack::{self, AppliedLayer, ApplyOptions, UnpackError};

/// Chunks in flight between the network and the unpacking thread, per layer. A chunk is
/// what the connection yields at once (up to about 400 KiB from a loopback registry), and
/// the download outruns the unpacker, so a deeper queue only holds memory: 16 held about
/// 32 MiB across a five-layer pull without making it faster; 4 keeps TCP's back-pressure
/// close behind the unpacker.
const CHANNEL_CHUNKS: usize = 2;

/// What one layer task needs to know.
pub(super) struct LayerJob<'a> {
    pub index: usize,
    pub descriptor: &'a Descriptor,
    pub compression: Compression,
    pub diff_id: &'a Digest,
    pub chain_id: &'a Digest,
    /// Chain IDs of the layers below, bottom first.
    pub lower_chains: &'a [Digest],
    /// One receiver per lower layer, `true` once its snapshot is committed.
    pub lowers_ready: Vec<watch::Receiver<bool>>,
}

/// Makes sure the layer's snapshot exists, pulling the blob when needed.
pub(super) async fn ensure_layer<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    job: LayerJob<'_>,
    progress: &dyn Progress,
) -> Result<LayerFetch, PullError> {
    let snapshots = store.snapshots();
    let digest = &job.descriptor.digest;
    if snapshots.exists(job.chain_id) {
        tracing::debug!(%digest, chain_id = %job.chain_id, "snapshot present");
        return Ok(LayerFetch::Present);
    }
    let chain_lock = snapshots.lock(job.chain_id).await?;
    if snapshots.exists(job.chain_id) {
        tracing::debug!(%digest, "snapshot committed by another pull while waiting");
        return Ok(LayerFetch::Present);
    }
    let tmp = snapshots.temp_dir(job.chain_id, &chain_lock)?;

    let (tmp, applied, how) =
        fetch_and_apply(store, source, reference, &job, tmp, progress).await?;

    if applied.diff_id != *job.diff_id {
        return Err(PullError::DiffIdMismatch {
            layer: digest.clone(),
            expected: job.diff_id.clone(),
            got: applied.diff_id,
        });
    }
    if !applied.pending_hardlinks.is_empty() {
        link_to_lowers(store, &job, &tmp, applied.pending_hardlinks).await?;
    }
    snapshots.commit(tmp, job.chain_id)?;
    drop(chain_lock);
    Ok(how)
}

/// Hardlinks to files of lower layers can only be made once those layers are committed.
async fn link_to_lowers(
    store: &Store,
    job: &LayerJob<'_>,
    tmp: &TempSnapshot,
    pending: Vec<unpack::PendingHardlink>,
) -> Result<(), PullError> {
    for rx in &job.lowers_ready {
        let mut rx = rx.clone();
        if rx.wait_for(|ready| *ready).await.is_err() {
            return Err(PullError::LowerFailed {
                layer: job.descriptor.digest.clone(),
            });
        }
    }
    let lowers: Vec<PathBuf> = job
        .lower_chains
        .iter()
        .rev()
        .map(|c| store.snapshots().path(c))
        .collect();
    let dest = tmp.path().to_path_buf();
    let label = job.descriptor.digest.to_string();
    tokio::task::spawn_blocking(move || {
        unpack::resolve_pending_hardlinks(&dest, &lowers, &pending, &label)
    })
    .await
    .map_err(PullError::join)?
    .map_err(PullError::Unpack)
}

/// Applies the layer from the content store when the blob is there, else downloads it.
async fn fetch_and_apply<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    job: &LayerJob<'_>,
    tmp: TempSnapshot,
    progress: &dyn Progress,
) -> Result<(TempSnapshot, AppliedLayer, LayerFetch), PullError> {
    let content = store.content();
    let digest = &job.descriptor.digest;
    let opts = ApplyOptions::new(digest.to_string());
    if !content.contains(digest) {
        let blob_lock = content.lock(digest).await?;
        if !content.contains(digest) {
            return download(
                store, source, reference, job, tmp, blob_lock, opts, progress,
            )
            .await;
        }
    }

    tracing::debug!(%digest, "blob present, unpacking from the content store");
    let file = content.open_blob(digest)?;
    let compression = job.compression;
    let (tmp, applied) = tokio::task::spawn_blocking(move || {
        let applied = unpack::apply_layer(io::BufReader::new(file), compression, tmp.path(), &opts);
        (tmp, applied)
    })
    .await
    .map_err(PullError::join)?;
    Ok((tmp, applied?, LayerFetch::FromContentStore))
}

/// Streams the blob from the registry into the ingest file and the unpacker at once,
/// going on from a partial file a killed pull left when the registry honours the range.
#[allow(clippy::too_many_arguments)]
async fn download<S: ImageSource>(
    store: &Store,
    source: &S,
    reference: &Reference,
    job: &LayerJob<'_>,
    tmp: TempSnapshot,
    blob_lock: FileLock,
    opts: ApplyOptions,
    progress: &dyn Progress,
) -> Result<(TempSnapshot, AppliedLayer, LayerFetch), PullError> {
    let content = store.content();
    let digest = &job.descriptor.digest;
    let size = job.descriptor.size;
    // A partial file holding the whole blob was never committed, so its bytes are suspect,
    // and a range from its end would lie past the blob (a 416 on every later pull).
    let have = match content.partial_len(digest, size, &blob_lock) {
        n if n == size => 0,
        n => n,
    };
    let body = source
        .blob_stream(reference, digest, have)
        .await
        .map_err(|source| PullError::Fetch {
            what: "layer",
            digest: digest.clone(),
            source,
        })?;

    let (ingest, prefix) = if have > 0 && body.offset == have {
        tracing::debug!(%digest, offset = have, "resuming the download of a killed pull");
        let (ingest, prefix) = content.resume(digest, size, have, &blob_lock)?;
        progress.layer_bytes(job.index, have);
        (ingest, Some(prefix))
    } else if body.offset != 0 {
        let source = format!(
            "asked for bytes from {have} on, the registry sent from {}",
            body.offset
        );
        return Err(PullError::Fetch {
            what: "layer",
            digest: digest.clone(),
            source: source.into(),
        });
    } else {
        if have > 0 {
            tracing::debug!(%digest, "registry ignored the range; downloading from the start");
        }
        (content.ingest(digest, size, &blob_lock)?, None)
    };

    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let compression = job.compression;
    let unpacking = tokio::task::spawn_blocking(move || {
        let mut reader = TeeReader {
            prefix,
            ingest,
            rx,
            chunk: Bytes::new(),
            ended: false,
        };
        let applied = unpack::apply_layer(&mut reader, compression, tmp.path(), &opts);
        // Once every byte has arrived the digest settles it even when unpacking failed: wrong
        // bytes are deleted and reported as such rather than as a corrupt layer, and right
        // ones are kept, so no full-length partial file is left behind.
        let committed = if applied.is_ok() || reader.ingest.written() == size {
            reader.ingest.commit().map(|()| drop(blob_lock))
        } else {
            Ok(())
        };
        (tmp, applied, committed)
    });

    let network = forward(body.stream, &tx, job.index, progress).await;
    drop(tx);
    let (tmp, applied, committed) = unpacking.await.map_err(PullError::join)?;
    // A network failure shows up in the unpacker as a cut stream: report the cause.
    if let Err(source) = network {
        return Err(PullError::Fetch {
            what: "layer",
            digest: digest.clone(),
            source,
        });
    }
    // Bytes that are not the blob explain whatever the unpacker made of them.
    committed?;
    let applied = applied?;
    Ok((
        tmp,
        applied,
        LayerFetch::Downloaded {
            resumed_from: have.min(body.offset),
        },
    ))
}

/// Sends the body's chunks to the unpacker, then the end marker. Stops early (without
/// error) when the unpacker has stopped reading; its error is the one that counts.
async fn forward(
    mut stream: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<Bytes, SourceError>> + Send>,
    >,
    tx: &mpsc::Sender<Chunk>,
    index: usize,
    progress: &dyn Progress,
) -> Result<(), SourceError> {
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let n = chunk.len() as u64;
        if tx.send(Chunk::Data(chunk)).await.is_err() {
            return Ok(());
        }
        progress.layer_bytes(index, n);
    }
    let _ = tx.send(Chunk::End).await;
    Ok(())
}

enum Chunk {
    Data(Bytes),
    End,
}

/// The unpacker's input: first the bytes of a resumed partial file, then the network's
/// chunks, each written to the ingest file (and hashed) as it passes.
struct TeeReader {
    prefix: Option<io::Take<std::fs::File>>,
    ingest: Ingest,
    rx: mpsc::Receiver<Chunk>,
    chunk: Bytes,
    ended: bool,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(prefix) = &mut self.prefix {
            let n = prefix.read(buf)?;
            if n > 0 {
                self.ingest.absorb(&buf[..n]).map_err(content_io)?;
                return Ok(n);
            }
            self.prefix = None;
        }
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(bytes)) => {
                    self.ingest.write(&bytes).map_err(content_io)?;
                    self.chunk = bytes;
                }
                Some(Chunk::End) => self.ended = true,
                None => {
                    return Err(io::Error::other(
                        "the download stopped before the blob's end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn content_io(e: ContentError) -> io::Error {
    io::Error::other(e)
}

impl From<UnpackError> for PullError {
    fn from(e: UnpackError) -> Self {
        PullError::Unpack(e)
    }
}
