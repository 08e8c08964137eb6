//! A small registry that misbehaves on purpose, for the faults a real registry will not
//! produce on demand: lying digests, redirects to a host that asks for credentials, bodies
//! beyond any sane limit, 429s and stalls.
//!
//! [`FakeRegistry`] serves images held in memory over enough of the distribution API v2 for a
//! pulling client (`/v2/`, manifests by tag and digest, blobs with ranges, a token endpoint),
//! on its own thread and tokio runtime, so it works from sync and async tests alike. Faults
//! ([`Fault`]) are switched on per test. Every request is recorded (method, path and any
//! `Authorization` header) so tests can count requests and see which credentials arrived.

mod serve;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::image::{BuiltImage, BuiltIndex, sha256_digest};

/// The size of the bodies the `Oversize*` faults send: 16 MiB, beyond any sane limit for
/// manifests, tokens or error bodies.
pub const OVERSIZE: usize = 16 << 20;

/// A way to misbehave. Several may be on at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Serves the blob with this digest with other bytes of the same length (its last byte
    /// flipped), so only a digest check catches it.
    BlobBytesLie(String),
    /// Serves every manifest with a byte appended (still valid JSON) while
    /// `Docker-Content-Digest` names the stored digest: the body's digest then differs both
    /// from a digest asked for and from the header.
    ManifestDigestLie,
    /// Answers blob requests with `302 Found` to `<base>/v2/<repo>/blobs/<digest>`, `base`
    /// being e.g. another fake's [`FakeRegistry::url`].
    RedirectBlobsTo(String),
    /// Answers every request with `401` and both a Basic and a Bearer challenge. Meant for the
    /// target of a redirect: it records the `Authorization` headers it receives, so a test
    /// can assert that none arrived.
    Unauthorized,
    /// Demands `Authorization: Bearer <token>` on `/v2/…`, answering `401` with
    /// `WWW-Authenticate: Bearer realm="http://<host>/token",service="fake-registry",
    /// scope="repository:<repo>:pull"`. `/token` issues the token, to anyone when
    /// `credentials` is `None`, else only for matching Basic credentials.
    RequireBearer {
        token: String,
        credentials: Option<(String, String)>,
    },
    /// Serves manifests as the stored bytes followed by [`OVERSIZE`] bytes of spaces (valid
    /// JSON), chunked, without Content-Length.
    OversizeManifest,
    /// `/token` answers with a token of [`OVERSIZE`] bytes, chunked.
    OversizeToken,
    /// Requests for manifests and blobs answer `404` with an error body of [`OVERSIZE`]
    /// bytes, chunked.
    OversizeError,
    /// Requests whose path starts with `path_prefix` answer `429` with `Retry-After: 1`,
    /// `times` times (forever when `None`), then normally.
    Status429 {
        path_prefix: String,
        times: Option<usize>,
    },
    /// Blob GETs of blobs longer than this send this many bytes (with the full
    /// Content-Length) and then hang until the server is dropped.
    StallAfter(usize),
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The `Range` header, for counting resumed downloads.
    pub range: Option<String>,
}

#[derive(Clone)]
pub(crate) struct StoredManifest {
    pub media_type: String,
    pub bytes: Bytes,
    pub digest: String,
}

#[derive(Default)]
pub(crate) struct State {
    /// By `(repo, tag or digest)`.
    pub manifests: HashMap<(String, String), StoredManifest>,
    /// By digest, shared by all repositories.
    pub blobs: HashMap<String, Bytes>,
    pub faults: Vec<Fault>,
    pub seen: Vec<SeenRequest>,
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub host: String,
    /// Bytes of `Oversize*` bodies handed to the connection so far.
    pub oversize_sent: Arc<AtomicUsize>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A misbehaving registry on `127.0.0.1:<free port>`, stopped on drop.
pub struct FakeRegistry {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistry {
    /// Starts a well-behaved, empty fake.
    pub fn start() -> FakeRegistry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            host: format!("127.0.0.1:{port}"),
            oversize_sent: Arc::new(AtomicUsize::new(0)),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("fake-registry-{port}"))
            .spawn({
                let shared = shared.clone();
                move || serve::run(listener, shared, rx)
            })
            .expect("spawn fake registry thread");
        FakeRegistry {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Starts a fake with these faults on.
    pub fn start_with(faults: impl IntoIterator<Item = Fault>) -> FakeRegistry {
        let fake = FakeRegistry::start();
        for f in faults {
            fake.add_fault(f);
        }
        fake
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.shared.host.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.host)
    }

    /// Switches a fault on.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Switches every fault off.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Stores a blob; returns its digest.
    pub fn put_blob(&self, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let digest = sha256_digest(&bytes);
        self.shared.lock().blobs.insert(digest.clone(), bytes);
        digest
    }

    /// Stores a manifest (or index) under `reference` and under its own digest; returns the
    /// digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> String {
        let bytes = bytes.into();
        let stored = StoredManifest {
            media_type: media_type.to_string(),
            digest: sha256_digest(&bytes),
            bytes,
        };
        let digest = stored.digest.clone();
        let mut state = self.shared.lock();
        state
            .manifests
            .insert((repo.to_string(), digest.clone()), stored.clone());
        state
            .manifests
            .insert((repo.to_string(), reference.to_string()), stored);
        digest
    }

    /// Stores an image's blobs and its manifest under `tag` (and its digest).
    pub fn push(&self, repo: &str, tag: &str, image: &BuiltImage) {
        for (_, bytes) in image.blobs() {
            self.put_blob(bytes.to_vec());
        }
        self.put_manifest(
            repo,
            tag,
            &image.manifest_media_type,
            image.manifest_bytes.clone(),
        );
    }

    /// Stores an index, its images by digest, and the index under `tag`.
    pub fn push_index(&self, repo: &str, tag: &str, index: &BuiltIndex) {
        for image in &index.images {
            self.push(repo, &image.manifest_digest, image);
        }
        self.put_manifest(repo, tag, &index.media_type, index.bytes.clone());
    }

    /// How many requests had a path starting with `path_prefix` (query excluded).
    pub fn requests(&self, path_prefix: &str) -> usize {
        let state = self.shared.lock();
        state
            .seen
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .count()
    }

    /// Every request so far, in order.
    pub fn request_log(&self) -> Vec<SeenRequest> {
        self.shared.lock().seen.clone()
    }

    /// How many bytes of `Oversize*` bodies the fake has handed to its connections: a client
    /// that stops reading at its limit leaves this well below [`OVERSIZE`].
    pub fn oversize_bytes_sent(&self) -> usize {
        self.shared.oversize_sent.load(Ordering::Relaxed)
    }

    /// Every `Authorization` header received, in order.
    pub fn authorizations_seen(&self) -> Vec<String> {
        let state = self.shared.lock();
        state
            .seen
            .iter()
            .filter_map(|r| r.authorization.clone())
            .collect()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
