//! Pulls from the fake registry while it misbehaves: blobs and manifests whose bytes do not
//! match their digests, blobs redirected to a host that asks for credentials, bodies far past
//! every limit, and 429s. Each fault must end in an error that names what was wrong, with
//! nothing of the bad content kept, or (for 429) in a pull that succeeds after waiting.

use std::path::Path;
use std::time::{Duration, Instant};

use hoist_image as image;
use image::{NoProgress, PullError, PulledImage, Store};
use oci::{Credentials, Digest, Platform, Reference};
use testkit::fake::OVERSIZE;
use testkit::image::{BuiltImage, Compression, ImageBuilder};
use testkit::layer::LayerBuilder;
use testkit::{FakeRegistry, Fault};

fn client(opts: registry::ClientOptions) -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(opts).expect("registry client")
}

fn anonymous() -> registry::Client {
    client(registry::ClientOptions::default())
}

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

fn two_layers(compression: Compression) -> BuiltImage {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/os", b"fake")
                .into_layer(compression),
        )
        .layer(
            LayerBuilder::new()
                .file("app/data", &[7u8; 100_000])
                .into_layer(compression),
        )
        .build()
}

async fn pull(store: &Store, client: &registry::Client, r: &str) -> Result<PulledImage, PullError> {
    let r = Reference::parse(r).unwrap();
    image::pull(store, client, &r, &Platform::host(), &NoProgress).await
}

use image::error_chain as chain;

/// Names of the entries of `dir` not starting with a dot.
fn visible_entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {dir:?}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// The snapshot directory names (chain ID hex) of an image's layers, bottom first.
fn chain_ids(img: &BuiltImage) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for layer in &img.layers {
        let chain = match out.last() {
            None => layer.diff_id.clone(),
            Some(below) => testkit::image::sha256_digest(
                format!("sha256:{below} {}", layer.diff_id).as_bytes(),
            ),
        };
        out.push(chain.trim_start_matches("sha256:").to_string());
    }
    out
}

/// A failed pull left no image record, none of `digests` in the content store, and no
/// snapshot but those of `good` (layers below the fault, pulled concurrently, may be done).
fn assert_nothing_kept(case: &str, store: &Store, data: &Path, digests: &[&str], good: &[String]) {
    for d in digests {
        assert!(
            !store.content().contains(&digest(d)),
            "{case}: blob {d} was committed"
        );
    }
    let snapshots = visible_entries(&data.join("snapshots"));
    assert!(
        snapshots.iter().all(|s| good.contains(s)),
        "{case}: snapshots {snapshots:?}, only {good:?} may be there"
    );
    assert!(store.list().unwrap().is_empty(), "{case}: an image record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_whose_bytes_lie_is_refused_by_digest_and_a_clean_pull_follows() {
    let client = anonymous();
    let plain = two_layers(Compression::None);
    let gzip = two_layers(Compression::Gzip);
    let cases: &[(&str, &BuiltImage, &str, usize)] = &[
        ("config", &plain, &plain.config_digest, 0),
        ("tar layer", &plain, &plain.layers[1].digest, 1),
        ("gzip layer", &gzip, &gzip.layers[1].digest, 1),
    ];
    for (case, img, lying, good_layers) in cases {
        let fake = FakeRegistry::start_with([Fault::BlobBytesLie(lying.to_string())]);
        fake.push("app", "1", img);
        let r = format!("{}/app:1", fake.host());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();

        let err = pull(&store, &client, &r).await.unwrap_err();
        let text = chain(&err);
        assert!(text.contains(lying), "{case}: {text} should name {lying}");
        assert!(
            text.contains("do not match") || text.contains("has digest"),
            "{case}: {text} should say the bytes do not match the digest"
        );
        let good = &chain_ids(img)[..*good_layers];
        assert_nothing_kept(case, &store, dir.path(), &[lying], good);

        // Whatever the failed pull left in its ingest directory must not spoil the next one.
        fake.clear_faults();
        let out = pull(&store, &client, &r)
            .await
            .unwrap_or_else(|e| panic!("{case}: pull after the fault: {}", chain(&e)));
        let data = std::fs::read(out.record.lower_dirs()[0].join("app/data")).unwrap();
        assert_eq!(data, vec![7u8; 100_000], "{case}");
        let stored = store.content().read(&digest(lying)).unwrap();
        assert_eq!(testkit::image::sha256_digest(&stored), **lying, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_whose_digest_lies_is_refused_by_digest_and_by_tag() {
    let client = anonymous();
    let img = two_layers(Compression::Gzip);
    let fake = FakeRegistry::start_with([Fault::ManifestDigestLie]);
    fake.push("app", "1", &img);
    let by_digest = format!("{}/app@{}", fake.host(), img.manifest_digest);
    let by_tag = format!("{}/app:1", fake.host());
    // The body served is the stored manifest plus one space.
    let mut served = img.manifest_bytes.clone();
    served.push(b' ');
    let served = testkit::image::sha256_digest(&served);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = pull(&store, &client, &by_digest).await.unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains(&format!(
            "content has digest {served} but {} was asked for",
            img.manifest_digest
        )),
        "{text}"
    );

    // By tag there is no digest asked for, only the registry's Docker-Content-Digest. The
    // distribution spec makes that header the canonical digest of the content served; a body
    // with another digest under the same algorithm is not that content, so it is refused (as
    // containerd refuses it: it fetches by the digest HEAD resolved and verifies).
    let err = pull(&store, &client, &by_tag).await.unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains(&format!(
            "registry sent Docker-Content-Digest {} but the manifest it sent has digest {served}",
            img.manifest_digest
        )),
        "{text}"
    );
    assert!(store.content().list().unwrap().is_empty(), "nothing stored");
    assert_nothing_kept("manifest lie", &store, dir.path(), &[], &[]);
    assert_eq!(fake.requests("/v2/app/blobs/"), 0, "no blob fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let img = two_layers(Compression::Gzip);
    let bearer = Fault::RequireBearer {
        token: "origin-token".into(),
        credentials: Some(("alice".into(), "s3cret".into())),
    };
    let elsewhere = FakeRegistry::start_with([Fault::Unauthorized]);
    let origin =
        FakeRegistry::start_with([bearer.clone(), Fault::RedirectBlobsTo(elsewhere.url())]);
    origin.push("app", "1", &img);
    let mut opts = registry::ClientOptions::default();
    opts.credentials
        .insert(&origin.host(), Credentials::basic("alice", "s3cret"));
    let client = client(opts);
    let r = format!("{}/app:1", origin.host());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let err = pull(&store, &client, &r).await.unwrap_err();
    let text = chain(&err);
    let want = format!(
        "registry answered 401 UNAUTHORIZED: authentication required (from {}, where the \
         registry redirected; its credentials are never sent there)",
        elsewhere.host()
    );
    assert!(text.contains(&want), "{text} should contain {want:?}");
    assert!(text.contains(&img.config_digest), "{text}");
    assert_eq!(
        elsewhere.authorizations_seen(),
        Vec::<String>::new(),
        "the other host got credentials"
    );
    assert!(
        elsewhere.requests("/v2/app/blobs/") > 0,
        "the redirect was followed"
    );
    assert_eq!(
        elsewhere.requests("/token"),
        0,
        "its challenge was not answered"
    );
    let origin_auth = origin.authorizations_seen();
    assert!(
        origin_auth.iter().any(|a| a == "Bearer origin-token"),
        "{origin_auth:?}"
    );
    let basic = origin
        .request_log()
        .into_iter()
        .filter(|r| r.path == "/token")
        .filter_map(|r| r.authorization)
        .collect::<Vec<_>>();
    assert_eq!(
        basic,
        vec!["Basic YWxpY2U6czNjcmV0".to_string()],
        "alice:s3cret once"
    );
    assert_nothing_kept(
        "redirect to a 401",
        &store,
        dir.path(),
        &[&img.config_digest],
        &[],
    );

    // A storage host that serves the blobs anonymously gets them fetched, still without
    // credentials, while the origin keeps getting its token.
    let storage = FakeRegistry::start();
    storage.push("app", "1", &img);
    origin.clear_faults();
    origin.add_fault(bearer);
    origin.add_fault(Fault::RedirectBlobsTo(storage.url()));
    let out = pull(&store, &client, &r).await.unwrap();
    assert_eq!(out.record.lower_dirs().len(), 2);
    assert_eq!(storage.authorizations_seen(), Vec::<String>::new());
    assert_eq!(
        storage.requests("/v2/app/blobs/"),
        3,
        "config and two layers"
    );
}

/// The value of `count` once it has not changed for 100 ms (at most 3 s).
fn settled(count: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = count();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_their_limits_are_refused_fast_naming_the_limit() {
    let client = anonymous();
    let img = two_layers(Compression::Gzip);
    let bearer = Fault::RequireBearer {
        token: "t".into(),
        credentials: None,
    };
    let cases: Vec<(&str, Vec<Fault>, &str, String)> = vec![
        (
            "manifest",
            vec![Fault::OversizeManifest],
            "1",
            format!(
                "manifest is larger than the limit of {} bytes",
                registry::MANIFEST_LIMIT
            ),
        ),
        (
            "token",
            vec![bearer, Fault::OversizeToken],
            "1",
            format!(
                "token response is larger than the limit of {} bytes",
                registry::TOKEN_LIMIT
            ),
        ),
        (
            "error body",
            vec![Fault::OversizeError],
            "missing",
            format!(
                "registry answered 404 Not Found (its error body exceeds the {}-byte limit",
                registry::ERROR_BODY_LIMIT
            ),
        ),
    ];
    for (case, faults, tag, want) in cases {
        let fake = FakeRegistry::start_with(faults);
        fake.push("app", "1", &img);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let started = Instant::now();
        let err = pull(&store, &client, &format!("{}/app:{tag}", fake.host()))
            .await
            .unwrap_err();
        let took = started.elapsed();
        let text = chain(&err);
        assert!(
            text.contains(&want),
            "{case}: {text} should contain {want:?}"
        );
        assert!(took < Duration::from_secs(5), "{case}: took {took:?}");
        // The client hung up at its limit instead of reading the whole body: once the fake
        // stops sending, it has handed over the limit plus what the socket buffers took
        // (several MiB on loopback), never the whole 16 MiB.
        let sent = settled(|| fake.oversize_bytes_sent());
        assert!(
            sent < OVERSIZE,
            "{case}: the fake sent {sent} bytes, the whole body"
        );
        assert_nothing_kept(case, &store, dir.path(), &[], &[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_then_reported_when_it_persists() {
    let client = anonymous();
    let img = two_layers(Compression::Gzip);
    let fake = FakeRegistry::start_with([Fault::Status429 {
        path_prefix: "/v2/app/blobs/".into(),
        times: Some(2),
    }]);
    fake.push("app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let started = Instant::now();
    let out = pull(&store, &client, &format!("{}/app:1", fake.host()))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(out.record.lower_dirs().len(), 2);
    assert_eq!(
        fake.requests("/v2/app/blobs/"),
        3 + 2,
        "two answered 429, retried"
    );

    // A registry that never stops answering 429 gets reported after the retries.
    fake.add_fault(Fault::Status429 {
        path_prefix: "/v2/other/".into(),
        times: None,
    });
    fake.push("other", "1", &img);
    let err = pull(&store, &client, &format!("{}/other:1", fake.host()))
        .await
        .unwrap_err();
    let text = chain(&err);
    let retries = registry::MAX_429_RETRIES;
    assert!(
        text.contains(&format!(
            "registry answered 429 TOOMANYREQUESTS: slow down (after {retries} retries)"
        )),
        "{text}"
    );
    assert_eq!(fake.requests("/v2/other/"), retries as usize + 1);
}
