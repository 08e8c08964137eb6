use serde_json::{Value, json};

use super::{PatchKind, apply};
use crate::error::ApiError;
use crate::resources::{self, Resource};

fn res(plural: &str) -> &'static Resource {
    resources::RESOURCES
        .iter()
        .find(|r| r.plural == plural)
        .expect("a served resource")
}

fn patch(kind: PatchKind, target: &Value, patch: Value) -> Result<Value, ApiError> {
    apply(kind, target, patch.to_string().as_bytes(), res("pods"))
}

fn json_patch(target: &Value, ops: Value) -> Result<Value, ApiError> {
    patch(PatchKind::Json, target, ops)
}

fn smp(target: &Value, p: Value) -> Value {
    patch(PatchKind::StrategicMerge, target, p).expect("the patch applies")
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}
            ],
            "tolerations": [{"key": "a", "operator": "Exists"}]
        }
    })
}

#[test]
fn content_types_name_the_formats() {
    let cases = [
        ("application/json-patch+json", Some(PatchKind::Json)),
        ("application/merge-patch+json", Some(PatchKind::Merge)),
        (
            "application/strategic-merge-patch+json",
            Some(PatchKind::StrategicMerge),
        ),
        ("application/apply-patch+yaml", Some(PatchKind::Apply)),
        ("application/json", None),
    ];
    for (ct, want) in cases {
        assert_eq!(PatchKind::from_content_type(ct), want, "{ct}");
    }
}

#[test]
fn json_patch_add_inserts_appends_and_sets() {
    let doc = json!({"a": [1, 3], "m": {}});
    let out = json_patch(
        &doc,
        json!([
            {"op": "add", "path": "/a/1", "value": 2},
            {"op": "add", "path": "/a/-", "value": 4},
            {"op": "add", "path": "/a/4", "value": 5},
            {"op": "add", "path": "/m/k", "value": "v"},
        ]),
    )
    .unwrap();
    assert_eq!(out, json!({"a": [1, 2, 3, 4, 5], "m": {"k": "v"}}));

    let root = json_patch(&doc, json!([{"op": "add", "path": "", "value": {"x": 1}}])).unwrap();
    assert_eq!(root, json!({"x": 1}));

    let err = json_patch(&doc, json!([{"op": "add", "path": "/a/7", "value": 0}])).unwrap_err();
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert!(
        err.message.contains("add operation on /a/7"),
        "{}",
        err.message
    );
}

#[test]
fn json_patch_remove_and_replace_need_the_value() {
    let doc = json!({"a": [1, 2, 3], "b": "x"});
    let out = json_patch(
        &doc,
        json!([
            {"op": "remove", "path": "/a/0"},
            {"op": "replace", "path": "/b", "value": "y"},
        ]),
    )
    .unwrap();
    assert_eq!(out, json!({"a": [2, 3], "b": "y"}));

    for op in [
        json!({"op": "remove", "path": "/c"}),
        json!({"op": "replace", "path": "/c", "value": 1}),
    ] {
        let err = json_patch(&doc, json!([op])).unwrap_err();
        assert_eq!(err.code, 422, "{}", err.message);
        assert!(err.message.starts_with("json patch: "), "{}", err.message);
    }
}

#[test]
fn json_patch_move_and_copy() {
    let doc = json!({"a": {"b": 1}, "l": [1, 2]});
    let out = json_patch(
        &doc,
        json!([
            {"op": "copy", "from": "/a/b", "path": "/c"},
            {"op": "move", "from": "/l/0", "path": "/l/-"},
            {"op": "move", "from": "/a", "path": "/z"},
        ]),
    )
    .unwrap();
    assert_eq!(out, json!({"z": {"b": 1}, "c": 1, "l": [2, 1]}));

    let err = json_patch(
        &doc,
        json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    )
    .unwrap_err();
    assert_eq!(err.code, 422);
}

#[test]
fn json_patch_test_compares_and_a_failure_applies_nothing() {
    let doc = json!({"metadata": {"name": "web"}, "n": 1});
    let ok = json!([
        {"op": "test", "path": "/metadata/name", "value": "web"},
        {"op": "test", "path": "/n", "value": 1.0},
    ]);
    assert_eq!(json_patch(&doc, ok).unwrap(), doc);

    let err = json_patch(
        &doc,
        json!([
            {"op": "replace", "path": "/n", "value": 2},
            {"op": "test", "path": "/metadata/name", "value": "db"},
        ]),
    )
    .unwrap_err();
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert!(
        err.message.contains("test operation on /metadata/name"),
        "{}",
        err.message
    );
}

#[test]
fn json_patch_pointers_unescape_slash_and_tilde() {
    let doc = json!({"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}});
    let out = json_patch(
        &doc,
        json!([
            {"op": "remove", "path": "/metadata/annotations/a~1b"},
            {"op": "replace", "path": "/metadata/annotations/c~0d", "value": "3"},
            {"op": "add", "path": "/metadata/annotations/~01", "value": "4"},
        ]),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"metadata": {"annotations": {"c~d": "3", "~1": "4"}}})
    );
}

#[test]
fn json_patch_refuses_undecodable_bodies_with_400() {
    let target = json!({});
    let bodies: [&[u8]; 4] = [
        b"",
        b"{not json",
        b"{}",
        br#"[{"op": "frob", "path": "/a"}]"#,
    ];
    for body in bodies {
        let err = apply(PatchKind::Json, &target, body, res("pods")).unwrap_err();
        assert_eq!(err.code, 400, "{}", err.message);
    }
}

#[test]
fn merge_patch_merges_objects_and_null_deletes() {
    let out = patch(
        PatchKind::Merge,
        &pod(),
        json!({"metadata": {"labels": {"tier": null, "new": "x"}}, "spec": {"tolerations": []}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
    assert_eq!(out["spec"]["tolerations"], json!([]));
    // A merge patch replaces lists, containers included.
    let out = patch(
        PatchKind::Merge,
        &pod(),
        json!({"spec": {"containers": [{"name": "x"}]}}),
    );
    assert_eq!(out.unwrap()["spec"]["containers"], json!([{"name": "x"}]));
}

#[test]
fn strategic_merge_matches_containers_by_name_and_keeps_unnamed_fields() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [
            {"name": "app", "image": "nginx:1.28", "env": [{"name": "B", "value": "3"}]},
            {"name": "new", "image": "redis"}
        ]}}),
    );
    let c = &out["spec"]["containers"];
    assert_eq!(c[0]["image"], "nginx:1.28");
    assert_eq!(c[0]["ports"], json!([{"containerPort": 80}]));
    assert_eq!(
        c[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
    assert_eq!(c[1]["args"], json!(["sleep", "3600"]));
    assert_eq!(c[2], json!({"name": "new", "image": "redis"}));
    assert_eq!(out["metadata"]["labels"]["tier"], "front");
}

#[test]
fn strategic_merge_replaces_lists_without_a_merge_key() {
    let out = smp(
        &pod(),
        json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "sidecar", "args": ["true"]}]}}),
    );
    assert_eq!(out["spec"]["containers"][1]["args"], json!(["true"]));
}

#[test]
fn strategic_merge_set_element_order_reorders_the_named_elements() {
    let out = smp(
        &pod(),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "nginx:1.28"}]
        }}),
    );
    let names: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sidecar", "app"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.28");
    assert!(
        !out["spec"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with('$'))
    );
}

#[test]
fn strategic_merge_patch_delete_removes_a_list_element() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [
            {"name": "sidecar", "$patch": "delete"},
            {"name": "app", "env": [{"name": "A", "$patch": "delete"}]}
        ]}}),
    );
    assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
}

#[test]
fn strategic_merge_patch_replace_on_a_map_and_a_list() {
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "replace", "only": "me"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"only": "me"}));
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "x"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "solo", "image": "x"}])
    );
}

#[test]
fn strategic_merge_retain_keys_clears_the_other_fields() {
    let mut target = pod();
    target["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    let out = smp(
        &target,
        json!({"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/d"}}
        ]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "data", "hostPath": {"path": "/d"}}])
    );
}

#[test]
fn strategic_merge_finalizers_are_a_set_with_deletions() {
    let target = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
    let out = smp(
        &target,
        json!({"metadata": {
            "finalizers": ["b", "c"],
            "$deleteFromPrimitiveList/finalizers": ["a"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
}

#[test]
fn strategic_merge_of_a_kubectl_apply_patch() {
    let mut target = pod();
    target["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}\n", "keep": "me"});
    let body = json!({
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Pod\"}\n"
        }},
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{"image": "busybox:1.37", "name": "sidecar"}]
        }
    });
    let out = smp(&target, body);
    let annotations = &out["metadata"]["annotations"];
    assert_eq!(annotations["keep"], "me");
    assert_eq!(
        annotations["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"kind\":\"Pod\"}\n"
    );
    assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(out["spec"]["containers"][1]["image"], "busybox:1.37");
    assert_eq!(
        out["spec"]["containers"][1]["args"],
        json!(["sleep", "3600"])
    );
    assert_eq!(out["spec"]["tolerations"], pod()["spec"]["tolerations"]);
}

#[test]
fn strategic_merge_keys_depend_on_the_kind() {
    let sa = json!({"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "p"}]});
    let body = json!({"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "q"}]});
    let out = apply(
        PatchKind::StrategicMerge,
        &sa,
        body.to_string().as_bytes(),
        res("serviceaccounts"),
    );
    let out = out.unwrap();
    assert_eq!(out["secrets"], json!([{"name": "a"}, {"name": "b"}]));
    // A ServiceAccount's imagePullSecrets have no merge key, unlike a Pod's.
    assert_eq!(out["imagePullSecrets"], json!([{"name": "q"}]));

    let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"},
                                                 {"type": "MemoryPressure", "status": "False"}]}});
    let body = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let out = apply(
        PatchKind::StrategicMerge,
        &node,
        body.to_string().as_bytes(),
        res("nodes"),
    );
    let conditions = out.unwrap()["status"]["conditions"].clone();
    assert_eq!(conditions[0], json!({"type": "Ready", "status": "True"}));
    assert_eq!(conditions[1]["type"], "MemoryPressure");
}

#[test]
fn strategic_merge_refuses_an_element_without_its_merge_key() {
    let err = patch(
        PatchKind::StrategicMerge,
        &pod(),
        json!({"spec": {"containers": [{"image": "x"}]}}),
    )
    .unwrap_err();
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert!(err.message.contains("spec.containers"), "{}", err.message);
    let err = apply(PatchKind::StrategicMerge, &pod(), b"[]", res("pods")).unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn server_side_apply_creates_then_merges() {
    let applied = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ssa"},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}
    });
    let created = patch(PatchKind::Apply, &Value::Null, applied.clone()).unwrap();
    assert_eq!(created, applied);
    let created = patch(PatchKind::Apply, &json!({}), applied.clone()).unwrap();
    assert_eq!(created, applied);

    let mut live = applied.clone();
    live["metadata"]["uid"] = json!("u1");
    live["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    live["status"] = json!({"phase": "Running"});
    let update = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ssa", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}
    });
    let out = patch(PatchKind::Apply, &live, update).unwrap();
    assert_eq!(out["metadata"]["uid"], "u1");
    assert_eq!(out["metadata"]["labels"], json!({"a": "b"}));
    assert_eq!(out["spec"]["containers"][0]["image"], "busybox:1.37");
    assert_eq!(
        out["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(out["status"]["phase"], "Running");
}

#[test]
fn server_side_apply_accepts_yaml() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
    let out = apply(
        PatchKind::Apply,
        &Value::Null,
        yaml.as_bytes(),
        res("configmaps"),
    )
    .unwrap();
    assert_eq!(out["data"], json!({"k": "v"}));
    let err = apply(
        PatchKind::Apply,
        &Value::Null,
        b"- a list",
        res("configmaps"),
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
}
