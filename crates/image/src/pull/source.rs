//! What a pull needs from a registry, as a trait: resolve a reference, fetch small blobs,
//! stream large ones from an offset.
//!
//! [`registry::Client`] implements it (in `client.rs`); the trait keeps the pull's pipeline
//! apart from the protocol, so the pipeline reads as the steps it takes and not as HTTP.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use oci::{Descriptor, Digest, ImageManifest, Platform, Reference};

/// A registry failure, whatever its kind; its message names the request that failed.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A reference resolved to one platform's image manifest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The digest the reference names at the registry: an index's when there is one.
    pub digest: Digest,
    /// The chosen image manifest's digest (equal to `digest` without an index).
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// The manifest exactly as served (its digest is `manifest_digest`).
    pub manifest_bytes: Bytes,
    /// The index exactly as served, when the reference named one (its digest is `digest`).
    pub index_bytes: Option<Bytes>,
}

/// The body of a blob from `offset` on.
pub struct BlobBody {
    /// Where the body starts: the offset asked for, or 0 when the registry ignored the range.
    pub offset: u64,
    pub stream: Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>,
}

/// The registry operations a pull makes.
pub trait ImageSource: Send + Sync {
    /// The digest a reference names now (a `HEAD` of its manifest).
    fn resolve_digest(
        &self,
        reference: &Reference,
    ) -> impl Future<Output = Result<Digest, SourceError>> + Send;

    /// The reference's image manifest for `platform`, through an index when there is one.
    fn resolve_image(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> impl Future<Output = Result<Resolved, SourceError>> + Send;

    /// A small blob (a config) in memory, refused beyond `limit` bytes or when its bytes do
    /// not match the descriptor.
    fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> impl Future<Output = Result<Bytes, SourceError>> + Send;

    /// A blob's bytes from `offset` on (see [`BlobBody::offset`]).
    fn blob_stream(
        &self,
        reference: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> impl Future<Output = Result<BlobBody, SourceError>> + Send;
}
