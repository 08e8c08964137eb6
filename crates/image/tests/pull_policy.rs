//! The pull policies, concurrent pulls, refused layers and removal, against Debian's
//! `docker-registry` on loopback.

use hoist_image as image;
use image::{
    LayerFetch, NoProgress, PolicyError, PullError, PullPolicy, Store, StoreError, ensure,
};
use oci::{Digest, Platform};
use testkit::Registry;
use testkit::image::{BuiltImage, Compression, ImageBuilder};
use testkit::layer::LayerBuilder;

fn client() -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(registry::ClientOptions::default()).expect("registry client")
}

fn two_layer_image(tag: &str) -> BuiltImage {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/os", tag.as_bytes())
                .into_layer(Compression::Gzip),
        )
        .layer(
            LayerBuilder::new()
                .file("app/bin", &[7u8; 100_000])
                .into_layer(Compression::Zstd),
        )
        .build()
}

fn blob_gets(reg: &Registry, img: &BuiltImage) -> Vec<usize> {
    img.blobs().iter().map(|(d, _)| reg.blob_gets(d)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_on_a_present_image_downloads_no_blob() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let img = two_layer_image("always");
    reg.push("app", "1", &img).await.unwrap();
    let r = format!("{}/app:1", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let host = Platform::host();

    let first = ensure(&store, &client, &r, PullPolicy::Always, &host, &NoProgress)
        .await
        .unwrap();
    assert!(first.pulled);
    assert_eq!(
        blob_gets(&reg, &img),
        vec![1, 1, 1],
        "config and layers fetched once"
    );

    let again = ensure(&store, &client, &r, PullPolicy::Always, &host, &NoProgress)
        .await
        .unwrap();
    assert!(
        !again.pulled,
        "a present image with the same digest is not pulled again"
    );
    assert_eq!(again.record, first.record);
    assert_eq!(
        blob_gets(&reg, &img),
        vec![1, 1, 1],
        "no blob GET on a warm Always"
    );

    // A lost snapshot is missing content: Always pulls again, from the content store.
    let top = first.record.lower_dirs()[0].clone();
    std::fs::remove_dir_all(&top).unwrap();
    let repaired = ensure(&store, &client, &r, PullPolicy::Always, &host, &NoProgress)
        .await
        .unwrap();
    assert!(repaired.pulled);
    assert!(top.is_dir());
    assert_eq!(
        blob_gets(&reg, &img),
        vec![1, 1, 1],
        "the blob came from the content store"
    );

    // The tag moves: Always pulls the new image, fetching only the layer that changed.
    let moved = ImageBuilder::new()
        .layer(img.layers[0].clone())
        .layer(
            LayerBuilder::new()
                .file("app/bin", b"v2")
                .into_layer(Compression::Gzip),
        )
        .build();
    reg.push("app", "1", &moved).await.unwrap();
    let out = image::pull::pull(
        &store,
        &client,
        &oci::Reference::parse(&r).unwrap(),
        &host,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(out.layers[0], LayerFetch::Present);
    assert!(matches!(
        out.layers[1],
        LayerFetch::Downloaded { resumed_from: 0 }
    ));
    assert_eq!(
        reg.blob_gets(&img.layers[0].digest),
        1,
        "the shared base layer is not fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_and_if_not_present_use_what_is_there() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let img = two_layer_image("never");
    reg.push("app", "2", &img).await.unwrap();
    let r = format!("{}/app:2", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let host = Platform::host();

    let err = ensure(&store, &client, &r, PullPolicy::Never, &host, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ErrImageNeverPull");
    assert_eq!(
        err.to_string(),
        format!("Container image \"{r}\" is not present with pull policy of Never")
    );

    let bad = ensure(
        &store,
        &client,
        "Bad//Name",
        PullPolicy::IfNotPresent,
        &host,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(bad.reason(), "InvalidImageName");

    let missing = format!("{}/nope:1", reg.host());
    let err = ensure(
        &store,
        &client,
        &missing,
        PullPolicy::IfNotPresent,
        &host,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        err.to_string()
            .starts_with(&format!("Failed to pull image \"{missing}\"")),
        "{err}"
    );

    let pulled = ensure(
        &store,
        &client,
        &r,
        PullPolicy::IfNotPresent,
        &host,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(pulled.pulled);
    let requests = reg.requests().len();
    for policy in [PullPolicy::IfNotPresent, PullPolicy::Never] {
        let out = ensure(&store, &client, &r, policy, &host, &NoProgress)
            .await
            .unwrap();
        assert!(!out.pulled);
        assert_eq!(out.record.lower_dirs().len(), 2);
    }
    assert_eq!(
        reg.requests().len(),
        requests,
        "{:?}",
        "no request to the registry at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_pulls_download_each_blob_once() {
    let Some(reg) = Registry::start() else { return };
    let img = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("a", &[1u8; 300_000])
                .into_layer(Compression::Gzip),
        )
        .layer(
            LayerBuilder::new()
                .file("b", &[2u8; 300_000])
                .into_layer(Compression::Zstd),
        )
        .layer(
            LayerBuilder::new()
                .file("c", b"c")
                .into_layer(Compression::None),
        )
        .build();
    reg.push("many", "1", &img).await.unwrap();
    let r = format!("{}/many:1", reg.host());
    let dir = tempfile::tempdir().unwrap();

    let mut tasks = Vec::new();
    for _ in 0..10 {
        // Each task opens the store itself, as ten agents or CLI runs would.
        let (path, r) = (dir.path().to_path_buf(), r.clone());
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&path).unwrap();
            let host = Platform::host();
            ensure(
                &store,
                &client(),
                &r,
                PullPolicy::Always,
                &host,
                &NoProgress,
            )
            .await
        }));
    }
    let mut records = Vec::new();
    for t in tasks {
        records.push(t.await.unwrap().unwrap().record);
    }
    assert!(
        records
            .windows(2)
            .all(|w| w[0].config_digest == w[1].config_digest)
    );
    assert_eq!(
        blob_gets(&reg, &img),
        vec![1, 1, 1, 1],
        "one GET per blob (config and three layers) for ten pulls"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.snapshots().list().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_whose_diff_id_differs_from_the_config_leaves_no_snapshot() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let wrong = Digest::sha256_of(b"not this layer").to_string();
    let img = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("x", b"x")
                .into_layer(Compression::Gzip),
        )
        .edit_config(move |c| c["rootfs"]["diff_ids"][0] = wrong.into())
        .build();
    reg.push("liar", "1", &img).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = format!("{}/liar:1", reg.host());
    let err = ensure(
        &store,
        &client,
        &r,
        PullPolicy::Always,
        &Platform::host(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    let PolicyError::Pull {
        source: PullError::DiffIdMismatch { layer, .. },
        ..
    } = &err
    else {
        panic!("expected a diff ID mismatch, got {err:?}");
    };
    assert_eq!(layer.to_string(), img.layers[0].digest);
    assert!(
        store.snapshots().list().unwrap().is_empty(),
        "no snapshot for a refused layer"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".locks")
        .collect();
    assert!(leftovers.is_empty(), "temp dirs left: {leftovers:?}");
    assert!(
        store.list().unwrap().is_empty(),
        "no record for a failed pull"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_refuses_an_image_with_a_lease_and_collects_garbage_otherwise() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let img = two_layer_image("rm");
    reg.push("app", "rm", &img).await.unwrap();
    let r = format!("{}/app:rm", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let host = Platform::host();
    let out = ensure(&store, &client, &r, PullPolicy::Always, &host, &NoProgress)
        .await
        .unwrap();

    let lease = dir.path().join("leases/container-1");
    std::fs::write(&lease, out.record.config_digest.to_string()).unwrap();
    let err = store.remove(&r).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("container-1"), "{err}");
    assert!(out.record.snapshots_present());

    std::fs::remove_file(&lease).unwrap();
    let removed = store.remove(&out.record.id()[..12]).unwrap();
    assert_eq!(removed.removed, vec![r.clone()]);
    assert_eq!(removed.gc.snapshots, 2);
    assert!(store.list().unwrap().is_empty());
    assert!(store.snapshots().list().unwrap().is_empty());
    assert!(
        store.content().list().unwrap().is_empty(),
        "blobs of the image collected"
    );
}
