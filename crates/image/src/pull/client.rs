//! [`ImageSource`] for the registry client.

use bytes::Bytes;
use futures_util::StreamExt;
use oci::{Descriptor, Digest, Platform, Reference};

use super::source::{BlobBody, ImageSource, Resolved, SourceError};

impl ImageSource for registry::Client {
    async fn resolve_digest(&self, reference: &Reference) -> Result<Digest, SourceError> {
        Ok(registry::Client::resolve_digest(self, reference).await?)
    }

    async fn resolve_image(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Resolved, SourceError> {
        let r = registry::Client::resolve_image(self, reference, platform).await?;
        Ok(Resolved {
            digest: r.digest,
            manifest_digest: r.manifest_digest,
            manifest: r.manifest,
            manifest_bytes: r.manifest_bytes,
            index_bytes: r.index.map(|i| i.bytes),
        })
    }

    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Bytes, SourceError> {
        Ok(self.fetch_blob_bytes(reference, descriptor, limit).await?)
    }

    async fn blob_stream(
        &self,
        reference: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobBody, SourceError> {
        let stream = registry::Client::blob_stream(self, reference, digest, offset).await?;
        let offset = stream.offset();
        let stream = stream.map(|chunk| chunk.map_err(SourceError::from));
        Ok(BlobBody {
            offset,
            stream: Box::pin(stream),
        })
    }
}
