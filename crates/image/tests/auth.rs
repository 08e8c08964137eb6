//! Authentication on pulls: bearer tokens from a `WWW-Authenticate` challenge (the fake
//! registry's token service, anonymous and behind Basic credentials), Basic auth against
//! Debian's `docker-registry` with an htpasswd file and credentials from a docker
//! `config.json`, and manifests hoist cannot use (schema 1, unknown types) named in the error.

use hoist_image as image;
use image::{NoProgress, PullError, PulledImage, Store};
use oci::{Credentials, Platform, Reference};
use testkit::image::{BuiltImage, Compression, ImageBuilder};
use testkit::layer::LayerBuilder;
use testkit::{FakeRegistry, Fault, Registry};

fn client(opts: registry::ClientOptions) -> registry::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    registry::Client::new(opts).expect("registry client")
}

fn with_credentials(host: &str, user: &str, pass: &str) -> registry::Client {
    let mut opts = registry::ClientOptions::default();
    opts.credentials
        .insert(host, Credentials::basic(user, pass));
    client(opts)
}

fn small_image() -> BuiltImage {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/secret-app", b"private")
                .into_layer(Compression::Gzip),
        )
        .build()
}

async fn pull(store: &Store, client: &registry::Client, r: &str) -> Result<PulledImage, PullError> {
    let r = Reference::parse(r).unwrap();
    image::pull(store, client, &r, &Platform::host(), &NoProgress).await
}

use image::error_chain as chain;

/// base64 of `alice:s3cret`, as docker writes it into `auth` and sends it in `Basic`.
const ALICE: &str = "YWxpY2U6czNjcmV0";
/// base64 of `alice:wrong`.
const ALICE_WRONG: &str = "YWxpY2U6d3Jvbmc=";

fn assert_pulled(out: &PulledImage) {
    let lowers = out.record.lower_dirs();
    assert_eq!(lowers.len(), 1);
    assert_eq!(
        std::fs::read(lowers[0].join("etc/secret-app")).unwrap(),
        b"private"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_bearer_token_is_fetched_once_and_sent_on_every_request() {
    let fake = FakeRegistry::start_with([Fault::RequireBearer {
        token: "anon-token".into(),
        credentials: None,
    }]);
    let img = small_image();
    fake.push("app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let out = pull(
        &store,
        &client(Default::default()),
        &format!("{}/app:1", fake.host()),
    )
    .await
    .unwrap();
    assert_pulled(&out);

    let log = fake.request_log();
    let tokens: Vec<_> = log.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(tokens.len(), 1, "one token for the repository: {log:?}");
    assert_eq!(tokens[0].authorization, None, "anonymous token request");
    // Only the first request goes out bare; every later one carries the token.
    let v2: Vec<_> = log.iter().filter(|r| r.path.starts_with("/v2/")).collect();
    assert_eq!(v2[0].authorization, None);
    for r in &v2[1..] {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer anon-token"),
            "{r:?}"
        );
    }
    assert_eq!(
        fake.requests("/v2/app/blobs/"),
        2,
        "config and layer once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_service_behind_basic_auth_gets_the_registrys_credentials() {
    let fake = FakeRegistry::start_with([Fault::RequireBearer {
        token: "alice-token".into(),
        credentials: Some(("alice".into(), "s3cret".into())),
    }]);
    let img = small_image();
    fake.push("team/app", "1", &img);
    let r = format!("{}/team/app:1", fake.host());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let cases: &[(&str, registry::Client, &str)] = &[
        ("no credentials", client(Default::default()), "401"),
        (
            "wrong password",
            with_credentials(&fake.host(), "alice", "wrong"),
            "401",
        ),
    ];
    for (case, client, want) in cases {
        let err = pull(&store, client, &r).await.unwrap_err();
        let text = chain(&err);
        for want in [*want, "get token for", r.as_str(), "bad credentials"] {
            assert!(
                text.contains(want),
                "{case}: {text} should contain {want:?}"
            );
        }
        assert!(store.list().unwrap().is_empty(), "{case}");
    }

    let tokens_before = fake.requests("/token");
    let out = pull(
        &store,
        &with_credentials(&fake.host(), "alice", "s3cret"),
        &r,
    )
    .await
    .unwrap();
    assert_pulled(&out);
    let token_auth: Vec<_> = fake.request_log()[..]
        .iter()
        .filter(|r| r.path == "/token")
        .skip(tokens_before)
        .map(|r| r.authorization.clone())
        .collect();
    assert_eq!(token_auth, vec![Some(format!("Basic {ALICE}"))]);
    let blob_auth: Vec<_> = fake
        .request_log()
        .into_iter()
        .filter(|r| r.path.starts_with("/v2/team/app/blobs/"))
        .map(|r| r.authorization)
        .collect();
    assert!(
        blob_auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer alice-token")),
        "the password itself never goes to /v2/: {blob_auth:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_refuses_anonymous_pulls_and_accepts_an_authfile() {
    let Some(reg) = Registry::start_with_htpasswd("alice", "s3cret") else {
        return;
    };
    let img = small_image();
    reg.push("private/app", "1", &img).await.unwrap();
    let r = format!("{}/private/app:1", reg.host());
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();

    // Without credentials: a 401 naming the registry (through the reference) and the step.
    let err = pull(&store, &client(Default::default()), &r)
        .await
        .unwrap_err();
    let text = chain(&err);
    for want in [
        format!("fetch manifest {r}: registry answered 401"),
        reg.host(),
    ] {
        assert!(text.contains(&want), "{text} should contain {want:?}");
    }
    assert!(store.list().unwrap().is_empty());

    // Credentials from a docker config.json, as `--authfile` loads it.
    let authfile = data.path().join("auth.json");
    let write_auth = |auth: &str| {
        let json = serde_json::json!({ "auths": { reg.host(): { "auth": auth } } });
        std::fs::write(&authfile, json.to_string()).unwrap();
        registry::ClientOptions::load(data.path(), Some(&authfile)).unwrap()
    };

    let before = reg.requests().len();
    let err = pull(&store, &client(write_auth(ALICE_WRONG)), &r)
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(text.contains("registry answered 401"), "{text}");
    let sent = reg.requests().len() - before;
    assert!(
        sent <= 2,
        "refused credentials are not retried ({sent} requests)"
    );

    let out = pull(&store, &client(write_auth(ALICE)), &r).await.unwrap();
    assert_pulled(&out);
    assert_eq!(reg.blob_gets(&img.layers[0].digest), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_hoist_cannot_use_are_named_by_their_media_type() {
    let fake = FakeRegistry::start();
    let schema1 = serde_json::json!({
        "schemaVersion": 1,
        "name": "old/app",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{ "blobSum": format!("sha256:{}", "a3".repeat(32)) }],
        "history": [{ "v1Compatibility": "{}" }],
    })
    .to_string();
    let signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    let unknown = "application/vnd.example.thing.v1+json";
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("signed schema 1", signed, &schema1, &[signed, "schema 1"]),
        (
            "schema 1 as plain json",
            "application/json",
            &schema1,
            &["schema 1"],
        ),
        (
            "unknown type",
            unknown,
            r#"{"schemaVersion":2,"config":{}}"#,
            &[unknown, "not supported"],
        ),
    ];
    let client = client(Default::default());
    for (i, (case, media_type, body, wants)) in cases.iter().enumerate() {
        let tag = format!("t{i}");
        fake.put_manifest("old/app", &tag, media_type, body.as_bytes().to_vec());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = format!("{}/old/app:{tag}", fake.host());
        let err = pull(&store, &client, &r).await.unwrap_err();
        let text = chain(&err);
        for want in *wants {
            assert!(
                text.contains(want),
                "{case}: {text} should contain {want:?}"
            );
        }
        assert!(text.contains(&r), "{case}: {text} should name {r}");
    }
}
