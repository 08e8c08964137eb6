//! A pull interrupted in the middle of a layer, then pulled again. The fake registry stalls
//! the layer after [`STALL_AT`] bytes; once those bytes are in the blob's ingest file the
//! pull is stopped, either by dropping its future or by SIGKILL of a separate process (this
//! test binary run again as [`child_pull_until_killed`]). The next pull must go on from the
//! partial file with a range request, end with the same snapshot tree as a clean pull, and
//! no blob may ever be visible under `content/blobs` with bytes that do not match its name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hoist_image as image;
use image::{LayerFetch, NoProgress, PullError, PulledImage, Store};
use oci::{Platform, Reference};
use testkit::image::{BuiltImage, Compression, ImageBuilder, sha256_digest};
use testkit::layer::LayerBuilder;
use testkit::{FakeRegistry, Fault};

/// Where the fake stops sending the big layer.
const STALL_AT: usize = 256 << 10;
/// The environment variable that turns [`child_pull_until_killed`] into the killed pull.
const CHILD_ENV: &str = "HOIST_TEST_INTERRUPTED_CHILD";

fn client() -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(registry::ClientOptions::default()).expect("registry client")
}

/// A small base layer and a ~1 MiB gzip layer of incompressible bytes.
fn big_image() -> BuiltImage {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            // xorshift64: cheap bytes that gzip cannot shrink.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/os", b"base")
                .into_layer(Compression::Gzip),
        )
        .layer(
            LayerBuilder::new()
                .dir("big")
                .file("big/noise", &noise)
                .file("big/tail", b"the end")
                .symlink("big/link", "noise")
                .into_layer(Compression::Gzip),
        )
        .build()
}

async fn pull(store: &Store, client: &registry::Client, r: &str) -> Result<PulledImage, PullError> {
    let r = Reference::parse(r).unwrap();
    image::pull(store, client, &r, &Platform::host(), &NoProgress).await
}

fn partial_path(data: &Path, digest: &str) -> PathBuf {
    let name = format!("{}.partial", digest.replace(':', "-"));
    data.join("content/ingest").join(name)
}

/// Waits until the partial file of `digest` holds exactly [`STALL_AT`] bytes.
fn wait_for_stall(data: &Path, digest: &str, mut alive: impl FnMut() -> bool) {
    let path = partial_path(data, digest);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == STALL_AT as u64 {
            return;
        }
        assert!(
            alive(),
            "the pull ended before the stall ({len} bytes in {path:?})"
        );
        assert!(
            Instant::now() < deadline,
            "{len} bytes in {path:?} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Watches `content/blobs/sha256` on a thread for the whole test, hashing every blob the
/// moment it appears: one whose bytes do not match its name was visible half-written.
struct BlobWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl BlobWatcher {
    fn start(data: &Path) -> BlobWatcher {
        let dir = data.join("content/blobs/sha256");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut seen = std::collections::HashSet::new();
                let mut bad = Vec::new();
                loop {
                    let last = stop.load(Ordering::SeqCst);
                    for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                        if seen.insert(name.clone()) {
                            let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
                            if sha256_digest(&bytes) != format!("sha256:{name}") {
                                bad.push(format!("{name} ({} bytes)", bytes.len()));
                            }
                        }
                    }
                    if last {
                        return bad;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        BlobWatcher {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Every path under `dir` with what it is: file contents, symlink target, or a directory.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path);
                "dir".to_string()
            } else {
                sha256_digest(&std::fs::read(&path).unwrap())
            };
            out.insert(rel, what);
        }
    }
    out
}

/// What a pull of `img` from a well-behaved fake gives, per layer top first.
async fn clean_trees(img: &BuiltImage) -> Vec<BTreeMap<String, String>> {
    let fake = FakeRegistry::start();
    fake.push("app", "1", img);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let out = pull(&store, &client(), &format!("{}/app:1", fake.host()))
        .await
        .unwrap();
    out.record.lower_dirs().iter().map(|d| tree(d)).collect()
}

/// The second pull went on from the partial file and left the same tree as a clean pull,
/// no leftovers, and no blob was ever visible half-written.
async fn assert_resumed(fake: &FakeRegistry, img: &BuiltImage, data: &Path, watcher: BlobWatcher) {
    let store = Store::open(data).unwrap();
    let big = &img.layers[1].digest;
    assert!(
        !store.content().contains(&oci::Digest::parse(big).unwrap()),
        "the interrupted layer was committed"
    );
    fake.clear_faults();
    let out = pull(&store, &client(), &format!("{}/app:1", fake.host()))
        .await
        .unwrap();
    assert_eq!(
        out.layers[1],
        LayerFetch::Downloaded {
            resumed_from: STALL_AT as u64
        }
    );
    let ranges: Vec<Option<String>> = fake
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(big.as_str()))
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        vec![None, Some(format!("bytes={STALL_AT}-"))],
        "one full GET, then one from where it stopped"
    );

    let trees: Vec<_> = out.record.lower_dirs().iter().map(|d| tree(d)).collect();
    assert_eq!(
        trees,
        clean_trees(img).await,
        "the snapshots match a clean pull"
    );
    let stored = std::fs::read(store.content().blob_path(&oci::Digest::parse(big).unwrap()));
    assert_eq!(sha256_digest(&stored.unwrap()), *big);
    assert!(
        !partial_path(data, big).exists(),
        "the partial file is gone"
    );
    let leftovers: Vec<_> = std::fs::read_dir(data.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp snapshots left: {leftovers:?}");
    let bad = watcher.finish();
    assert!(bad.is_empty(), "blobs visible with wrong bytes: {bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_dropped_mid_layer_resumes_from_its_partial_file() {
    let img = big_image();
    let fake = FakeRegistry::start_with([Fault::StallAfter(STALL_AT)]);
    fake.push("app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let watcher = BlobWatcher::start(dir.path());

    let task = tokio::spawn({
        let data = dir.path().to_path_buf();
        let r = format!("{}/app:1", fake.host());
        async move {
            let store = Store::open(&data).unwrap();
            pull(&store, &client(), &r).await
        }
    });
    wait_for_stall(dir.path(), &img.layers[1].digest, || !task.is_finished());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    assert_resumed(&fake, &img, dir.path(), watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_killed_mid_layer_resumes_from_its_partial_file() {
    let img = big_image();
    let fake = FakeRegistry::start_with([Fault::StallAfter(STALL_AT)]);
    fake.push("app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let watcher = BlobWatcher::start(dir.path());

    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "child_pull_until_killed", "--nocapture"])
        .env(
            CHILD_ENV,
            format!("{}\n{}/app:1", dir.path().display(), fake.host()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_stall(dir.path(), &img.layers[1].digest, || {
        child.try_wait().unwrap().is_none()
    });
    child.kill().unwrap(); // SIGKILL: no destructor runs, no lock is released by hand.
    child.wait().unwrap();
    let killed_tmp = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp-")
        });
    assert!(killed_tmp, "the killed pull left its temp snapshot");

    assert_resumed(&fake, &img, dir.path(), watcher).await;
}

/// Not a test of its own: [`a_pull_killed_mid_layer_resumes_from_its_partial_file`] runs
/// this test binary again with [`CHILD_ENV`] set, and this then pulls until it is killed.
#[test]
fn child_pull_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (data, r) = spec.split_once('\n').expect("data dir and reference");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let store = Store::open(Path::new(data)).unwrap();
        pull(&store, &client(), r).await
    });
    panic!("the pull should have stalled until killed, it ended with {result:?}");
}
