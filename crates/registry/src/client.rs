//! The pull operations: resolve a reference to a digest, fetch and verify manifests, pick a
//! platform from an index, fetch small blobs whole and stream large ones.
//!
//! Each operation tries the registry's mirrors (from `registries.yaml`) in order and then the
//! registry itself, moving on after any failure of a mirror. Content is addressed by digest,
//! so whichever endpoint answers, what it sends is checked against the digest asked for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use oci::media_type::MANIFEST_ACCEPT;
use oci::{
    Credentials, Descriptor, Digest, ImageManifest, Manifest, MediaType, Platform, Reference,
};
use reqwest::Url;
use tracing::{debug, warn};

use crate::blob::BlobStream;
use crate::error::RegistryError;
use crate::options::ClientOptions;
use crate::transport::{read_limited, status_error};

/// Manifests and indexes are refused beyond 4 MiB.
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// The usual limit for configs passed to [`Client::fetch_blob_bytes`].
pub const CONFIG_LIMIT: u64 = 8 << 20;

/// A registry client. Cloning is cheap and clones share connections and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub opts: ClientOptions,
    /// Bearer tokens by (API host, repository).
    tokens: Mutex<HashMap<(String, String), Token>>,
    /// Hosts that asked for Basic auth: credentials are sent to them up front.
    basic_hosts: Mutex<HashSet<String>>,
}

pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// What a request is for, for error messages.
pub(crate) struct Ctx<'a> {
    pub step: &'static str,
    pub reference: &'a Reference,
}

/// One place to send requests for a reference: a mirror or the registry itself.
pub(crate) struct Endpoint {
    /// `host[:port]` as used in URLs.
    pub host: String,
    pub scheme: &'static str,
    pub credentials: Option<Credentials>,
}

impl Endpoint {
    pub fn url(&self, ctx: &Ctx<'_>, path: &str) -> Result<Url, RegistryError> {
        Url::parse(&format!("{}://{}{}", self.scheme, self.host, path)).map_err(|_| {
            RegistryError::BadHost {
                step: ctx.step,
                reference: ctx.reference.to_string(),
                host: self.host.clone(),
            }
        })
    }
}

impl Inner {
    pub(crate) fn lock_tokens(&self) -> MutexGuard<'_, HashMap<(String, String), Token>> {
        // The maps hold no invariant a panic could break; keep using them.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_basic(&self) -> MutexGuard<'_, HashSet<String>> {
        self.basic_hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A manifest or index as fetched, verified against its digest.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: MediaType,
    pub bytes: Bytes,
    pub manifest: Manifest,
}

/// A reference resolved to one platform's image manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The top-level digest (the index's when there is one): the image's pull digest.
    pub digest: Digest,
    /// The chosen image manifest's digest (equal to `digest` without an index).
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub manifest_bytes: Bytes,
    /// The index, when the reference named one.
    pub index: Option<FetchedManifest>,
}

impl Client {
    /// A client; `opts.user_agent` empty means `hoist/<version>`. Needs a rustls crypto
    /// provider installed in the process (hoist installs ring's at start).
    pub fn new(opts: ClientOptions) -> Result<Client, RegistryError> {
        let user_agent = if opts.user_agent.is_empty() {
            concat!("hoist/", env!("CARGO_PKG_VERSION")).to_string()
        } else {
            opts.user_agent.clone()
        };
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| RegistryError::Build { source })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                opts,
                tokens: Mutex::new(HashMap::new()),
                basic_hosts: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// Resolves a reference to the digest of its top-level manifest with HEAD (falls back to
    /// GET). A reference pinned by digest resolves to that digest without a request.
    pub async fn resolve_digest(&self, r: &Reference) -> Result<Digest, RegistryError> {
        if let Some(d) = r.digest() {
            return Ok(d.clone());
        }
        let ctx = Ctx {
            step: "resolve digest of",
            reference: r,
        };
        let endpoints = self.endpoints(r);
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.head_digest(&ctx, ep, r).await {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => break,
                Err(e) if i < last => warn!(endpoint = %ep.host, error = %e.full_message(),
                    "mirror failed, trying the next endpoint"),
                Err(e) if e.is_not_found() || e.status().is_none() => return Err(e),
                Err(e) => {
                    debug!(error = %e, "HEAD of the manifest refused, falling back to GET");
                    break;
                }
            }
        }
        Ok(self.fetch_manifest(r).await?.digest)
    }

    async fn head_digest(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        r: &Reference,
    ) -> Result<Option<Digest>, RegistryError> {
        let path = format!(
            "/v2/{}/manifests/{}",
            r.repository(),
            r.manifest_reference()
        );
        let resp = self
            .inner
            .send(
                ctx,
                ep,
                r.repository(),
                Method::HEAD,
                &path,
                accept_manifests(),
            )
            .await?;
        let Some(value) = resp.headers().get("docker-content-digest") else {
            debug!("HEAD answer has no Docker-Content-Digest, falling back to GET");
            return Ok(None);
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        Digest::parse(text.trim())
            .map(Some)
            .map_err(|_| RegistryError::BadHeader {
                step: ctx.step,
                reference: r.to_string(),
                header: "Docker-Content-Digest",
                value: text.into_owned(),
            })
    }

    /// Fetches and verifies a manifest (by r's digest if it has one, else its tag).
    pub async fn fetch_manifest(&self, r: &Reference) -> Result<FetchedManifest, RegistryError> {
        let ctx = Ctx {
            step: "fetch manifest",
            reference: r,
        };
        let endpoints = self.endpoints(r);
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.fetch_manifest_at(&ctx, ep, r).await {
                Err(e) if i < last => warn!(endpoint = %ep.host, error = %e.full_message(),
                    "mirror failed, trying the next endpoint"),
                done => return done,
            }
        }
        unreachable!("the registry itself is always the last endpoint")
    }

    async fn fetch_manifest_at(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        r: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let path = format!(
            "/v2/{}/manifests/{}",
            r.repository(),
            r.manifest_reference()
        );
        let resp = self
            .inner
            .send(
                ctx,
                ep,
                r.repository(),
                Method::GET,
                &path,
                accept_manifests(),
            )
            .await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| MediaType::parse(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_else(|| MediaType::Other(String::new()));
        let header_digest = match resp.headers().get("docker-content-digest") {
            None => None,
            Some(v) => {
                let text = String::from_utf8_lossy(v.as_bytes());
                match Digest::parse(text.trim()) {
                    Ok(d) => Some(d),
                    Err(_) => {
                        return Err(RegistryError::BadHeader {
                            step: ctx.step,
                            reference: r.to_string(),
                            header: "Docker-Content-Digest",
                            value: text.into_owned(),
                        });
                    }
                }
            }
        };
        let bytes = read_limited(ctx, resp, MANIFEST_LIMIT, "manifest").await?;

        let digest = match (r.digest(), header_digest) {
            (Some(wanted), _) => {
                let actual = Digest::compute(wanted.algorithm(), &bytes);
                if &actual != wanted {
                    return Err(RegistryError::DigestMismatch {
                        step: ctx.step,
                        reference: r.to_string(),
                        expected: wanted.clone(),
                        actual,
                    });
                }
                actual
            }
            (None, Some(header)) => {
                let actual = Digest::compute(header.algorithm(), &bytes);
                if actual != header {
                    return Err(RegistryError::HeaderDigestMismatch {
                        step: ctx.step,
                        reference: r.to_string(),
                        header,
                        actual,
                    });
                }
                actual
            }
            (None, None) => Digest::sha256_of(&bytes),
        };

        let manifest =
            Manifest::parse(&media_type, &bytes).map_err(|source| RegistryError::Manifest {
                step: ctx.step,
                reference: r.to_string(),
                source,
            })?;
        debug!(reference = %r, digest = %digest, media_type = %media_type, "fetched manifest");
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
            manifest,
        })
    }

    /// fetch_manifest, then if it is an index: select `platform` (error listing the platforms
    /// offered) and fetch that image manifest by digest.
    pub async fn resolve_image(
        &self,
        r: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        let top = self.fetch_manifest(r).await?;
        let index = match &top.manifest {
            Manifest::Image(m) => {
                return Ok(ResolvedImage {
                    digest: top.digest.clone(),
                    manifest_digest: top.digest.clone(),
                    manifest: m.clone(),
                    manifest_bytes: top.bytes.clone(),
                    index: None,
                });
            }
            Manifest::Index(index) => index,
        };

        let step = "select platform of";
        let Some(chosen) = index.select(platform) else {
            let offered = index.platforms();
            return Err(RegistryError::NoPlatform {
                step,
                reference: r.to_string(),
                wanted: platform.to_string(),
                offered: if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                },
            });
        };
        debug!(reference = %r, platform = %platform, digest = %chosen.digest, "selected manifest");
        let child_ref = r.with_digest(chosen.digest.clone());
        let child = self.fetch_manifest(&child_ref).await?;
        if child.bytes.len() as u64 != chosen.size {
            return Err(RegistryError::SizeMismatch {
                step: "fetch manifest",
                reference: child_ref.to_string(),
                digest: chosen.digest.clone(),
                expected: chosen.size,
                actual: child.bytes.len() as u64,
            });
        }
        let Manifest::Image(manifest) = child.manifest else {
            return Err(RegistryError::NestedIndex {
                step,
                reference: r.to_string(),
                digest: chosen.digest.clone(),
            });
        };
        Ok(ResolvedImage {
            digest: top.digest.clone(),
            manifest_digest: child.digest,
            manifest,
            manifest_bytes: child.bytes,
            index: Some(top),
        })
    }

    /// Small blob (config) fully read, size-limited, digest-verified.
    pub async fn fetch_blob_bytes(
        &self,
        r: &Reference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Bytes, RegistryError> {
        let ctx = Ctx {
            step: "fetch blob",
            reference: r,
        };
        if desc.size > limit {
            return Err(RegistryError::TooLarge {
                step: ctx.step,
                reference: r.to_string(),
                what: "blob (as its descriptor states)",
                limit,
            });
        }
        let endpoints = self.endpoints(r);
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.fetch_blob_at(&ctx, ep, r, desc, limit).await {
                Err(e) if i < last => warn!(endpoint = %ep.host, error = %e.full_message(),
                    "mirror failed, trying the next endpoint"),
                done => return done,
            }
        }
        unreachable!("the registry itself is always the last endpoint")
    }

    async fn fetch_blob_at(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        r: &Reference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Bytes, RegistryError> {
        let path = format!("/v2/{}/blobs/{}", r.repository(), desc.digest);
        let resp = self
            .inner
            .send(
                ctx,
                ep,
                r.repository(),
                Method::GET,
                &path,
                HeaderMap::new(),
            )
            .await?;
        let bytes = read_limited(ctx, resp, limit, "blob").await?;
        if bytes.len() as u64 != desc.size {
            return Err(RegistryError::SizeMismatch {
                step: ctx.step,
                reference: r.to_string(),
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::compute(desc.digest.algorithm(), &bytes);
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                step: ctx.step,
                reference: r.to_string(),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streaming blob from byte `offset` (Range) — the caller verifies digest and size while
    /// it writes. [`BlobStream::offset`] says where the body really starts.
    pub async fn blob_stream(
        &self,
        r: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, RegistryError> {
        let ctx = Ctx {
            step: "fetch blob",
            reference: r,
        };
        let endpoints = self.endpoints(r);
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.blob_stream_at(&ctx, ep, r, digest, offset).await {
                Err(e) if i < last => warn!(endpoint = %ep.host, error = %e.full_message(),
                    "mirror failed, trying the next endpoint"),
                done => return done,
            }
        }
        unreachable!("the registry itself is always the last endpoint")
    }

    async fn blob_stream_at(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        r: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, RegistryError> {
        let path = format!("/v2/{}/blobs/{}", r.repository(), digest);
        let mut headers = HeaderMap::new();
        if offset > 0 {
            let range = HeaderValue::from_str(&format!("bytes={offset}-")).expect("ASCII range");
            headers.insert(RANGE, range);
        }
        let resp = self
            .inner
            .send(ctx, ep, r.repository(), Method::GET, &path, headers)
            .await?;
        let start = if resp.status() == StatusCode::PARTIAL_CONTENT {
            let value = resp.headers().get(CONTENT_RANGE);
            let text = value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let start = text.as_deref().and_then(content_range_start);
            if start != Some(offset) {
                return Err(RegistryError::BadHeader {
                    step: ctx.step,
                    reference: r.to_string(),
                    header: "Content-Range",
                    value: text.unwrap_or_default(),
                });
            }
            offset
        } else if resp.status() == StatusCode::OK {
            if offset > 0 {
                debug!(digest = %digest, offset, "registry ignored the range, starting over");
            }
            0
        } else {
            return Err(status_error(ctx, resp, 0, None).await);
        };
        Ok(BlobStream::new(ctx, resp, start))
    }

    /// The mirrors configured for r's registry, then the registry itself.
    fn endpoints(&self, r: &Reference) -> Vec<Endpoint> {
        let opts = &self.inner.opts;
        let endpoint = |host: &str, credentials_host: &str| Endpoint {
            host: host.to_string(),
            scheme: if opts.plain_http(host) {
                "http"
            } else {
                "https"
            },
            credentials: opts.credentials.credentials_for(credentials_host),
        };
        let mut out: Vec<Endpoint> = opts
            .mirrors
            .get(r.registry())
            .into_iter()
            .flatten()
            .map(|m| endpoint(m, m))
            .collect();
        out.push(endpoint(r.api_host(), r.registry()));
        out
    }
}

fn accept_manifests() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let accept = HeaderValue::from_str(&MANIFEST_ACCEPT.join(", ")).expect("ASCII media types");
    headers.insert(ACCEPT, accept);
    headers
}

/// The first byte of `bytes START-END/TOTAL`.
fn content_range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_range() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn endpoints_put_mirrors_first_with_their_own_scheme_and_credentials() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut opts = ClientOptions::default();
        opts.mirrors
            .insert("docker.io".into(), vec!["127.0.0.1:5000".into()]);
        opts.credentials
            .insert("docker.io", Credentials::basic("hub", "pw"));
        let client = Client::new(opts).unwrap();

        let r = Reference::parse("busybox").unwrap();
        let eps = client.endpoints(&r);
        let shown: Vec<(String, &str, bool)> = eps
            .iter()
            .map(|e| (e.host.clone(), e.scheme, e.credentials.is_some()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("127.0.0.1:5000".to_string(), "http", false),
                ("registry-1.docker.io".to_string(), "https", true),
            ]
        );
        let other = Reference::parse("quay.io/a/b:1").unwrap();
        assert_eq!(client.endpoints(&other).len(), 1);
    }
}
