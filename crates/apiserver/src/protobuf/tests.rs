use serde_json::json;

use super::decode;

/// A varint.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A length-delimited field.
fn bytes(n: u64, value: &[u8]) -> Vec<u8> {
    [
        varint(n << 3 | 2),
        varint(value.len() as u64),
        value.to_vec(),
    ]
    .concat()
}

fn string(n: u64, value: &str) -> Vec<u8> {
    bytes(n, value.as_bytes())
}

/// A varint field.
fn int(n: u64, value: u64) -> Vec<u8> {
    [varint(n << 3), varint(value)].concat()
}

/// A map entry field.
fn entry(n: u64, key: &str, value: &[u8]) -> Vec<u8> {
    bytes(n, &[string(1, key), bytes(2, value)].concat())
}

/// ObjectMeta as Go writes it for kubectl: every non-pointer field, empty ones included.
fn meta(name: &str, namespace: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut m = [
        string(1, name),
        string(2, ""),
        string(3, namespace),
        string(4, ""),
        string(5, ""),
        string(6, ""),
        int(7, 0),
        bytes(8, &[]),
    ]
    .concat();
    m.extend(extra.concat());
    m
}

/// The `k8s\0` + runtime.Unknown envelope kubectl 1.32 sends.
fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [string(1, "v1"), string(2, kind)].concat();
    let unknown = [
        bytes(1, &type_meta),
        bytes(2, raw),
        string(3, ""),
        string(4, ""),
    ]
    .concat();
    [b"k8s\0".to_vec(), unknown].concat()
}

/// A body recorded from `kubectl.1.32 --server http://... create ...`, decoded.
macro_rules! fixture {
    ($name:literal) => {
        decode(include_bytes!(concat!(
            "../../tests/fixtures/",
            $name,
            ".kubectl-1.32.pb"
        )))
        .expect($name)
    };
}

const DOCKERCONFIG: &str =
    r#"{"auths":{"reg.example":{"username":"u","password":"p","email":"e@x","auth":"dTpw"}}}"#;

#[test]
fn a_docker_registry_secret_decodes_with_base64_data() {
    let raw = [
        bytes(1, &meta("regcred", "", &[])),
        entry(2, ".dockerconfigjson", DOCKERCONFIG.as_bytes()),
        string(3, "kubernetes.io/dockerconfigjson"),
    ]
    .concat();
    let obj = decode(&envelope("Secret", &raw)).unwrap();
    let want = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": concat!(
            "eyJhdXRocyI6eyJyZWcuZXhhbXBsZSI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJlbWFp",
            "bCI6ImVAeCIsImF1dGgiOiJkVHB3In19fQ=="
        )},
    });
    assert_eq!(obj, want);
}

#[test]
fn secret_string_data_binary_bytes_and_immutable() {
    let raw = [
        bytes(1, &meta("s", "ns1", &[])),
        entry(2, "bin", &[0, 159, 146, 150]),
        entry(4, "plain", b"text"),
        int(5, 1),
    ]
    .concat();
    let obj = decode(&envelope("Secret", &raw)).unwrap();
    assert_eq!(obj["metadata"], json!({"name": "s", "namespace": "ns1"}));
    assert_eq!(obj["data"], json!({"bin": "AJ+Slg=="}));
    assert_eq!(obj["stringData"], json!({"plain": "text"}));
    assert_eq!(obj["immutable"], json!(true));
}

#[test]
fn object_meta_fields_and_unknown_fields() {
    let owner = [
        string(5, "v1"),
        string(1, "Namespace"),
        string(3, "ns1"),
        string(4, "u-1"),
        int(6, 1),
    ]
    .concat();
    let time = [int(1, 1_700_000_000), int(2, 0)].concat();
    let extra = [
        entry(11, "app", b"web"),
        entry(11, "tier", b"front"),
        entry(12, "note", b"hi"),
        bytes(13, &owner),
        string(14, "example.com/f"),
        bytes(17, b"\x0a\x07kubectl"),
        int(99, 7),
    ];
    let mut m = meta("c", "default", &extra);
    m.extend(bytes(8, &time));
    let raw = [bytes(1, &m), entry(2, "k", b"v"), int(42, 1)].concat();
    let obj = decode(&envelope("ConfigMap", &raw)).unwrap();
    assert_eq!(
        obj["metadata"],
        json!({
            "name": "c",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": "hi"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "ns1",
                                 "uid": "u-1", "controller": true}],
            "finalizers": ["example.com/f"],
            "creationTimestamp": "2023-11-14T22:13:20Z",
        })
    );
}

#[test]
fn a_configmap_decodes_data_and_binary_data() {
    let raw = [
        bytes(1, &meta("cm1", "", &[])),
        entry(2, "k", b"v"),
        entry(3, "b", b"\xff\x00"),
        int(4, 0),
    ]
    .concat();
    let obj = decode(&envelope("ConfigMap", &raw)).unwrap();
    let want = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
        "data": {"k": "v"}, "binaryData": {"b": "/wA="}, "immutable": false,
    });
    assert_eq!(obj, want);
}

#[test]
fn a_namespace_decodes_its_finalizers() {
    let raw = [
        bytes(1, &meta("ns1", "", &[])),
        bytes(2, &string(1, "kubernetes")),
        bytes(3, &string(1, "")),
    ]
    .concat();
    let obj = decode(&envelope("Namespace", &raw)).unwrap();
    let want = json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {},
    });
    assert_eq!(obj, want);
}

#[test]
fn a_service_account_decodes_its_references() {
    let secret_ref = [string(1, "Secret"), string(3, "tok"), string(7, "")].concat();
    let raw = [
        bytes(1, &meta("sa1", "default", &[])),
        bytes(2, &secret_ref),
        bytes(3, &string(1, "regcred")),
        int(4, 0),
    ]
    .concat();
    let obj = decode(&envelope("ServiceAccount", &raw)).unwrap();
    let want = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "sa1", "namespace": "default"},
        "secrets": [{"kind": "Secret", "name": "tok"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "automountServiceAccountToken": false,
    });
    assert_eq!(obj, want);
}

#[test]
fn bodies_recorded_from_kubectl_1_32_decode() {
    let generic = fixture!("create-secret-generic");
    assert_eq!(generic["kind"], "Secret");
    assert_eq!(generic["metadata"], json!({"name": "x"}));
    assert_eq!(generic["data"], json!({"a": "Yg=="}));
    assert!(generic.get("type").is_none());

    let registry = fixture!("create-secret-docker-registry");
    assert_eq!(registry["type"], "kubernetes.io/dockerconfigjson");
    let data = registry["data"][".dockerconfigjson"].as_str().unwrap();
    use base64::Engine;
    let config = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(config, DOCKERCONFIG.as_bytes());

    let cm = fixture!("create-configmap");
    assert_eq!(cm["data"], json!({"k": "v"}));
    let ns = fixture!("create-namespace");
    assert_eq!(ns["metadata"], json!({"name": "ns1"}));
    assert_eq!(ns["spec"], json!({}));
    let sa = fixture!("create-serviceaccount");
    assert_eq!(
        sa,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}})
    );
}

#[test]
fn a_truncated_body_is_a_bad_request() {
    let raw = [bytes(1, &meta("x", "", &[])), entry(2, "a", b"b")].concat();
    let body = envelope("Secret", &raw);
    // Cut inside the Secret: the envelope's `raw` length points past the end.
    let err = decode(&body[..body.len() - 8]).unwrap_err();
    assert_eq!((err.code, err.reason), (400, "BadRequest"));
    assert!(
        err.message.contains("ends inside a field"),
        "{}",
        err.message
    );
    // No cut panics; each either fails with 400 or ends at a field boundary.
    for n in 0..body.len() {
        if let Err(e) = decode(&body[..n]) {
            assert_eq!(e.code, 400, "cut at {n}: {}", e.message);
        }
    }
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("no prefix", b"{\"kind\":\"Secret\"}".to_vec()),
        ("no kind", [b"k8s\0".to_vec(), bytes(2, b"")].concat()),
        ("wrong wire type", envelope("Secret", &int(1, 5))),
        (
            "not utf-8",
            envelope("Secret", &bytes(1, &bytes(1, b"\xff\xfe"))),
        ),
    ];
    for (what, body) in cases {
        let err = decode(&body).unwrap_err();
        assert_eq!(err.code, 400, "{what}: {}", err.message);
    }
}

#[test]
fn other_kinds_are_unsupported_media_types() {
    let err = decode(&envelope("Pod", &bytes(1, &meta("p", "", &[])))).unwrap_err();
    assert_eq!((err.code, err.reason), (415, "UnsupportedMediaType"));
    assert!(err.message.contains("Pod"), "{}", err.message);

    let gzip = [
        b"k8s\0".to_vec(),
        bytes(1, &string(2, "Secret")),
        string(3, "gzip"),
    ]
    .concat();
    let err = decode(&gzip).unwrap_err();
    assert_eq!(err.code, 415, "{}", err.message);
}
