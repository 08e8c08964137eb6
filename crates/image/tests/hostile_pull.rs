//! Hostile layers through a real pull (issue 2, point 6): a few representative cases of
//! `hostile.rs`, pushed to Debian's `docker-registry` on loopback and pulled with
//! [`ensure`]. The pull must fail with a message naming the layer digest and the entry,
//! leave no snapshot (nor temp dir) for the layer's chain ID and no image record, and leave
//! the canary beside the data directory unchanged. Each image is pulled twice: once
//! streaming from the registry, once more after the first attempt, when the blob may come
//! from the content store; both must refuse alike.

#[path = "hostile/canary.rs"]
mod canary;
#[allow(
    dead_code,
    reason = "this file takes the layers and reasons, not the table runner"
)]
#[path = "hostile/harness.rs"]
mod harness;

use hoist_image::unpack::{Refusal, UnpackError};
use hoist_image::{NoProgress, PolicyError, PullError, PullPolicy, Store, ensure};
use oci::{Digest, Platform};
use testkit::Registry;
use testkit::image::{Compression, ImageBuilder, Layer};

use canary::Fixture;
use harness::E::{self, *};
use harness::{build, dotdot, target_via_symlink, via_symlink};

fn client() -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(registry::ClientOptions::default()).expect("registry client")
}

struct Hostile {
    name: &'static str,
    /// Well-formed layers below the hostile one, bottom first.
    lowers: &'static [&'static [E]],
    layer: &'static [E],
    compression: Compression,
    /// The refused entry as written (`@C` is the canary's absolute path).
    entry: &'static str,
    reason: fn(&Refusal) -> bool,
}

const CASES: &[Hostile] = &[
    Hostile {
        name: "../ into the canary",
        lowers: &[],
        layer: &[Dir("etc"), File("../../../canary/pwned", b"x")],
        compression: Compression::Gzip,
        entry: "../../../canary/pwned",
        reason: dotdot,
    },
    Hostile {
        name: "a file written through a symlink to the canary",
        lowers: &[],
        layer: &[Sym("l", "@C"), File("l/f", b"pwned")],
        compression: Compression::Zstd,
        entry: "l/f",
        reason: via_symlink,
    },
    Hostile {
        name: "a hardlink through a lower layer's symlink to the canary",
        lowers: &[&[File("ok", b"fine"), Sym("l", "@C")]],
        layer: &[Hard("h", "l/f")],
        compression: Compression::Gzip,
        entry: "h",
        reason: target_via_symlink,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_layer_fails_the_pull_and_leaves_nothing_behind() {
    let Some(reg) = Registry::start() else { return };
    let client = client();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let fx = Fixture::new();
        let before = fx.state();
        let mut builder = ImageBuilder::new();
        for lower in case.lowers {
            builder = builder.layer(Layer::from_tar(&build(&fx, lower), Compression::Gzip));
        }
        let hostile = Layer::from_tar(&build(&fx, case.layer), case.compression);
        let img = builder.layer(hostile).build();
        reg.push("hostile", &i.to_string(), &img).await.unwrap();
        let r = format!("{}/hostile:{i}", reg.host());

        let store = Store::open(&fx.data).unwrap();
        for attempt in ["first", "second"] {
            let err = ensure(
                &store,
                &client,
                &r,
                PullPolicy::Always,
                &Platform::host(),
                &NoProgress,
            )
            .await
            .expect_err("a hostile layer must fail the pull");
            let mut problems = check_error(&fx, case, &img, &err);
            problems.extend(leftovers(&fx, &store, &img));
            if let Some(d) = canary::diff(&before, &fx.state()) {
                problems.push(format!("the canary changed:\n  {d}"));
            }
            if !problems.is_empty() {
                let name = case.name;
                failures.push(format!(
                    "case {name}, {attempt} pull: {}",
                    problems.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The error names the hostile (top) layer's digest and the entry, with the right reason.
fn check_error(
    fx: &Fixture,
    case: &Hostile,
    img: &testkit::BuiltImage,
    err: &PolicyError,
) -> Vec<String> {
    let digest = &img.layers.last().unwrap().digest;
    let entry = fx.expand(case.entry);
    let text = err.to_string();
    let mut problems = Vec::new();
    if !text.contains(digest.as_str()) || !text.contains(&format!("{entry:?}")) {
        problems.push(format!(
            "the message does not name {digest} and {entry:?}: {text}"
        ));
    }
    match err {
        PolicyError::Pull {
            source:
                PullError::Unpack(UnpackError::Refused {
                    layer,
                    entry: e,
                    reason,
                }),
            ..
        } if layer == digest && *e == entry && (case.reason)(reason) => {}
        other => problems.push(format!("expected {entry:?} refused, got {other:?}")),
    }
    problems
}

/// What a failed pull left in the data directory that it should not have: a snapshot or a
/// temp dir of the hostile layer's chain ID, a temp dir of any layer, or an image record.
fn leftovers(fx: &Fixture, store: &Store, img: &testkit::BuiltImage) -> Vec<String> {
    let diff_ids: Vec<Digest> = img
        .layers
        .iter()
        .map(|l| Digest::parse(&l.diff_id).unwrap())
        .collect();
    let top = oci::config::chain_ids(&diff_ids).pop().unwrap();
    let mut problems = Vec::new();
    if store.snapshots().exists(&top) {
        problems.push(format!("a snapshot of the hostile chain {top} exists"));
    }
    let snapshots = fx.data.join("snapshots");
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") || name.contains(top.hex()) {
            problems.push(format!("{name} left in {snapshots:?}"));
        }
    }
    if !store.list().unwrap().is_empty() {
        problems.push("an image record exists for a failed pull".to_string());
    }
    problems
}
