//! Pushing built images to a registry over the distribution API v2, the way a client such as
//! skopeo does: each blob is checked with HEAD, uploaded with POST then PUT `?digest=`, and the
//! manifest is PUT last with its media type as Content-Type. Plain HTTP only (loopback test
//! registries), with optional Basic credentials for an htpasswd registry.

use reqwest::{Client, Method, StatusCode};

use crate::image::{BuiltImage, BuiltIndex};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{step} {url}: request failed")]
    Request {
        step: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{step} {url}: registry answered {status}: {body}")]
    Status {
        step: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{step} {url}: registry sent no Location header")]
    NoLocation { step: &'static str, url: String },
}

/// Builds a reqwest client for tests. Installs rustls' ring provider first (harmless when
/// one is installed), because reqwest is built without a provider of its own.
pub fn http_client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client builds")
}

/// A push session to one registry.
#[derive(Clone)]
pub struct Pusher {
    client: Client,
    base: String,
    auth: Option<(String, String)>,
}

impl Pusher {
    /// Pushes to `host` (`127.0.0.1:PORT`) over plain HTTP, anonymously.
    pub fn new(host: &str) -> Pusher {
        Pusher {
            client: http_client(),
            base: format!("http://{host}"),
            auth: None,
        }
    }

    /// Sends Basic credentials with every request.
    pub fn basic_auth(mut self, user: &str, pass: &str) -> Pusher {
        self.auth = Some((user.to_string(), pass.to_string()));
        self
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url);
        match &self.auth {
            Some((u, p)) => req.basic_auth(u, Some(p)),
            None => req,
        }
    }

    async fn send(
        &self,
        step: &'static str,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PushError> {
        let resp = req.send().await.map_err(|source| PushError::Request {
            step,
            url: url.to_string(),
            source,
        })?;
        Ok(resp)
    }

    async fn expect_ok(
        step: &'static str,
        url: &str,
        resp: reqwest::Response,
        want: StatusCode,
    ) -> Result<reqwest::Response, PushError> {
        if resp.status() == want {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(PushError::Status {
            step,
            url: url.to_string(),
            status,
            body,
        })
    }

    /// Uploads one blob unless the registry has it already.
    pub async fn push_blob(&self, repo: &str, digest: &str, bytes: &[u8]) -> Result<(), PushError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self
            .send("check blob", &url, self.request(Method::HEAD, &url))
            .await?;
        if resp.status() == StatusCode::OK {
            return Ok(());
        }

        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self
            .send("start upload", &url, self.request(Method::POST, &url))
            .await?;
        let resp = Self::expect_ok("start upload", &url, resp, StatusCode::ACCEPTED).await?;
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PushError::NoLocation {
                step: "start upload",
                url: url.clone(),
            })?;
        let mut put_url = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        };
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(digest);

        let req = self
            .request(Method::PUT, &put_url)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        let resp = self.send("finish upload", &put_url, req).await?;
        Self::expect_ok("finish upload", &put_url, resp, StatusCode::CREATED).await?;
        Ok(())
    }

    /// PUTs a manifest (or index) under `reference`, a tag or a digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), PushError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let req = self
            .request(Method::PUT, &url)
            .header(http::header::CONTENT_TYPE, media_type)
            .body(bytes.to_vec());
        let resp = self.send("put manifest", &url, req).await?;
        Self::expect_ok("put manifest", &url, resp, StatusCode::CREATED).await?;
        Ok(())
    }

    /// Pushes the image's blobs, then its manifest under `tag` (a tag or its digest).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        image: &BuiltImage,
    ) -> Result<(), PushError> {
        for (digest, bytes) in image.blobs() {
            self.push_blob(repo, digest, bytes).await?;
        }
        self.push_manifest(repo, tag, &image.manifest_media_type, &image.manifest_bytes)
            .await
    }

    /// Pushes every image of the index by digest, then the index under `tag`.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        index: &BuiltIndex,
    ) -> Result<(), PushError> {
        for image in &index.images {
            self.push_image(repo, &image.manifest_digest, image).await?;
        }
        self.push_manifest(repo, tag, &index.media_type, &index.bytes)
            .await
    }
}

/// Pushes `image` to `host` anonymously, its manifest under `tag`.
pub async fn push(host: &str, repo: &str, tag: &str, image: &BuiltImage) -> Result<(), PushError> {
    Pusher::new(host).push_image(repo, tag, image).await
}

/// Pushes `index` and its images to `host` anonymously, the index under `tag`.
pub async fn push_index(
    host: &str,
    repo: &str,
    tag: &str,
    index: &BuiltIndex,
) -> Result<(), PushError> {
    Pusher::new(host).push_index(repo, tag, index).await
}
