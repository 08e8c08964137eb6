//! A blob's body as a stream of chunks, for callers that verify and store while it arrives.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Response;

use crate::client::Ctx;
use crate::error::RegistryError;

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The body of a blob from [`offset`](BlobStream::offset) on. Yields chunks as they arrive;
/// a broken connection is a [`RegistryError::Transport`]. Nothing here checks the digest: the
/// caller hashes what it writes.
pub struct BlobStream {
    offset: u64,
    content_length: Option<u64>,
    step: &'static str,
    reference: String,
    url: reqwest::Url,
    chunks: Chunks,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("url", &self.url.as_str())
            .field("offset", &self.offset)
            .field("content_length", &self.content_length)
            .finish()
    }
}

impl BlobStream {
    pub(crate) fn new(ctx: &Ctx<'_>, resp: Response, offset: u64) -> BlobStream {
        BlobStream {
            offset,
            content_length: resp.content_length(),
            step: ctx.step,
            reference: ctx.reference.to_string(),
            url: resp.url().clone(),
            chunks: Box::pin(resp.bytes_stream()),
        }
    }

    /// Where the body starts in the blob: the offset asked for, or 0 when the registry
    /// ignored the range and sends the whole blob.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The length of the body (from `offset`), when the registry announced it.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The next chunk, `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, RegistryError>> {
        self.next().await
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.chunks.as_mut().poll_next(cx).map(|item| {
            item.map(|chunk| {
                chunk.map_err(|source| RegistryError::Transport {
                    step: this.step,
                    reference: this.reference.clone(),
                    url: this.url.to_string(),
                    source,
                })
            })
        })
    }
}
