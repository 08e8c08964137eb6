//! Pulls from Debian's `docker-registry` on loopback: formats, compressions, platforms, the
//! pull policies, concurrent pulls and removal.

use std::path::Path;

use hoist_image as image;
use image::{NoProgress, PullPolicy, Store, ensure};
use oci::{Digest, Platform, Reference};
use testkit::Registry;
use testkit::image::{Compression, Format, ImageBuilder, IndexBuilder, Layer};
use testkit::layer::LayerBuilder;

fn client() -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(registry::ClientOptions::default()).expect("registry client")
}

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

fn layer(files: &[(&str, &[u8])], compression: Compression) -> Layer {
    let mut b = LayerBuilder::new();
    for (path, data) in files {
        b = b.file(path, data);
    }
    b.into_layer(compression)
}

fn read(dir: &Path, path: &str) -> Vec<u8> {
    std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("read {path} in {dir:?}: {e}"))
}

async fn pull_always(store: &Store, client: &registry::Client, r: &str) -> image::EnsureOutcome {
    ensure(
        store,
        client,
        r,
        PullPolicy::Always,
        &Platform::host(),
        &NoProgress,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_multi_layer_images_in_every_format_and_compression() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    for (format, name) in [(Format::Oci, "oci"), (Format::Docker, "docker")] {
        let zstd_or_none = if format == Format::Oci {
            Compression::Zstd
        } else {
            Compression::None
        };
        let img = ImageBuilder::new()
            .layer(layer(
                &[("etc/base", b"base"), ("bin/tool", b"v1")],
                Compression::Gzip,
            ))
            .layer(layer(&[("bin/tool", b"v2")], zstd_or_none))
            .layer(layer(&[("data/raw", b"raw bytes")], Compression::None))
            .format(format)
            .build();
        reg.push(name, "v1", &img).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = format!("{}/{name}:v1", reg.host());
        let out = pull_always(&store, &client, &r).await;
        assert!(out.pulled);
        let rec = &out.record;
        assert_eq!(rec.digest, digest(&img.manifest_digest));
        assert_eq!(rec.config_digest, digest(&img.config_digest));
        let lowers = rec.lower_dirs();
        assert_eq!(lowers.len(), 3, "{name}");
        // lower_dirs is top first, as overlayfs wants it.
        assert_eq!(read(&lowers[0], "data/raw"), b"raw bytes");
        assert_eq!(read(&lowers[1], "bin/tool"), b"v2");
        assert_eq!(read(&lowers[2], "bin/tool"), b"v1");
        assert_eq!(read(&lowers[2], "etc/base"), b"base");
        for l in &img.layers {
            let blob = store.content().read(&digest(&l.digest)).unwrap();
            assert_eq!(blob, l.bytes, "{name}: blob {} stored as served", l.digest);
        }
        let config = rec.config().unwrap();
        assert_eq!(config.rootfs.diff_ids.len(), 3);
        assert_eq!(
            store.get(&Reference::parse(&r).unwrap()).unwrap().as_ref(),
            Some(rec)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_yields_the_hosts_image_or_the_platform_asked_for() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let amd = ImageBuilder::new()
        .layer(layer(&[("arch", b"amd64")], Compression::Gzip))
        .platform("linux", "amd64", None)
        .build();
    let arm = ImageBuilder::new()
        .layer(layer(&[("arch", b"arm64")], Compression::Gzip))
        .platform("linux", "arm64", Some("v8"))
        .build();
    let index = IndexBuilder::new()
        .image(amd.clone())
        .image(arm.clone())
        .build();
    reg.push_index("multi", "latest", &index).await.unwrap();
    let r = format!("{}/multi", reg.host());

    let host = Platform::host();
    let (mine, mine_arch, other, other_platform) = if host.architecture == "arm64" {
        (&arm, "arm64", &amd, Platform::parse("linux/amd64").unwrap())
    } else {
        (&amd, "amd64", &arm, Platform::parse("linux/arm64").unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let out = pull_always(&store, &client, &r).await;
    assert_eq!(
        out.record.digest,
        digest(&index.digest),
        "the record names the index"
    );
    assert_eq!(out.record.manifest_digest, digest(&mine.manifest_digest));
    assert_eq!(
        read(&out.record.lower_dirs()[0], "arch"),
        mine_arch.as_bytes()
    );

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let out = ensure(
        &store,
        &client,
        &r,
        PullPolicy::Always,
        &other_platform,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(out.record.manifest_digest, digest(&other.manifest_digest));
    assert_eq!(out.record.config_digest, digest(&other.config_digest));
    let other_arch = if mine_arch == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    assert_eq!(
        read(&out.record.lower_dirs()[0], "arch"),
        other_arch.as_bytes()
    );
}
