//! Manifests read end to end through the public API: the tutorial's manifest as written,
//! its fixed form, and one test per kind of mistake.

use std::path::PathBuf;

use hoist_podspec as podspec;
use podspec::{ErrorKind, FieldValidation, ManifestError, ManifestErrors, Options};
use serde_json::json;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

fn errors_of(text: &str) -> ManifestErrors {
    podspec::parse("pod.yaml", text).expect_err("the manifest should be refused")
}

/// `POD` with `lines` added to its container, after `image`.
fn with_fields(lines: &[&str]) -> String {
    let extra: String = lines.iter().map(|l| format!("\n      {l}")).collect();
    POD.replace(
        "image: busybox:1.36",
        &format!("image: busybox:1.36{extra}"),
    )
}

fn find<'a>(errs: &'a ManifestErrors, path: &str) -> &'a ManifestError {
    errs.iter()
        .find(|e| e.path() == path)
        .unwrap_or_else(|| panic!("no error at {path:?} in:\n{errs}"))
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: busybox:1.36
";

#[test]
fn tutorial_manifest_as_written_names_every_mistake() {
    let path = script("tutorial-pod.yaml");
    let errs = podspec::load_file(&path).expect_err("Kubernetes refuses the tutorial's pod");
    let text = errs.to_string();
    assert_eq!(
        text.lines().count(),
        errs.len(),
        "one error per line:\n{text}"
    );
    for line in text.lines() {
        assert!(
            line.starts_with(&path.display().to_string()),
            "names the file: {line}"
        );
    }

    // `kind: pod`.
    let kind = find(&errs, "kind");
    assert_eq!(kind.error.kind, ErrorKind::UnknownKind);
    assert!(
        kind.to_string()
            .contains(r#"kind "pod" is not known; did you mean "Pod"?"#)
    );

    // The name, which YAML reads to the end of the line, arrow and all.
    let name = find(&errs, "metadata.name");
    assert_eq!(name.error.kind, ErrorKind::Invalid);
    assert_eq!(
        name.error.value,
        Some(json!("Tesing_for_Image_pull -----------> 1"))
    );
    let fix = name.error.fix.as_deref().unwrap();
    assert!(fix.contains(r#"try "tesing-for-image-pull""#), "{fix}");
    assert!(
        fix.contains("comments"),
        "says the arrow is part of the value: {fix}"
    );

    // `spec` indented under `metadata`.
    let spec = find(&errs, "metadata.spec");
    assert_eq!(spec.error.kind, ErrorKind::UnknownField);
    assert!(
        spec.to_string()
            .contains("`metadata.spec` is not a field of ObjectMeta")
    );
    assert!(
        spec.to_string()
            .contains("did you mean `spec` at the top level?")
    );
    assert_eq!(spec.error.position, Some((5, 4)));

    // `image:` at the column of the `-` of the container's list item: a YAML error.
    let syntax: Vec<&ManifestError> = errs
        .iter()
        .filter(|e| e.error.kind == ErrorKind::Syntax)
        .collect();
    assert_eq!(syntax.len(), 2, "{text}");
    assert_eq!(syntax[0].error.position, Some((8, 10)));
    assert!(syntax[0].error.detail.contains("`image` is at column 10"));
    assert!(
        syntax[0]
            .error
            .fix
            .as_deref()
            .unwrap()
            .contains("to column 12")
    );
    // The note after `command`'s list, which no plain value can absorb.
    assert_eq!(syntax[1].error.position, Some((10, 39)));
    assert!(
        syntax[1]
            .error
            .detail
            .contains("after the value of `command`")
    );

    // The container inside the misplaced spec is still checked, under its real path.
    let cname = find(&errs, "metadata.spec.containers[0].name");
    assert!(
        cname
            .error
            .fix
            .as_deref()
            .unwrap()
            .contains(r#"try "neo4j-server""#)
    );
    let image = find(&errs, "metadata.spec.containers[0].image");
    assert!(image.error.fix.as_deref().unwrap().contains("placeholder"));
    let policy = find(&errs, "metadata.spec.containers[0].imagePullPolicy");
    assert_eq!(policy.error.kind, ErrorKind::NotSupported);
    assert!(
        policy
            .error
            .fix
            .as_deref()
            .unwrap()
            .contains(r#"try "Always""#)
    );

    // Errors come in file order.
    let lines: Vec<usize> = errs
        .iter()
        .filter_map(|e| e.error.position)
        .map(|p| p.0)
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn fixed_tutorial_manifest_parses_and_is_defaulted() {
    let text = std::fs::read_to_string(script("tutorial-pod-fixed.yaml")).unwrap();
    let text = text.replace("IMAGE", "127.0.0.1:5000/tutorial/busybox");
    let pods = podspec::parse("tutorial-pod-fixed.yaml", &text).expect("valid");
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(pod.metadata.name.as_deref(), Some("testing-for-image-pull"));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        spec.restart_policy.as_deref(),
        Some("Never"),
        "set by the manifest"
    );
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    let c = &spec.containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        c.command.as_deref(),
        Some(&["echo".to_string(), "SUCCESS".to_string()][..])
    );
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
}

#[test]
fn defaults_follow_the_api_server() {
    let text = with_fields(&[
        "ports: [{containerPort: 80}]",
        "resources: {limits: {memory: 128974848, cpu: 0.5}}",
    ]) + "    - name: side\n      image: busybox\n";
    let pods = podspec::parse("pod.yaml", &text).unwrap();
    let spec = pods[0].spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    let app = &spec.containers[0];
    assert_eq!(
        app.image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "tagged 1.36"
    );
    assert_eq!(
        spec.containers[1].image_pull_policy.as_deref(),
        Some("Always"),
        "no tag"
    );
    assert_eq!(
        app.ports.as_ref().unwrap()[0].protocol.as_deref(),
        Some("TCP")
    );
    let res = app.resources.as_ref().unwrap();
    let requests = res.requests.as_ref().expect("requests default to limits");
    assert_eq!(
        requests["memory"].0, "128974848",
        "a numeric quantity becomes its string"
    );
    assert_eq!(requests["cpu"].0, "0.5");
}

#[test]
fn several_documents_each_named_in_errors() {
    let second = POD.replace("name: web", "name: Web2");
    let text = format!("# two pods\n---\n{POD}---\n{second}---\n");
    let errs = errors_of(&text);
    assert_eq!(errs.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!(e.document, Some(2));
    assert_eq!(
        e.error.position,
        Some((15, 3)),
        "line in the file, not in the document"
    );
    assert!(
        e.to_string()
            .starts_with("pod.yaml:15:3 (document 2): Pod \"Web2\": metadata.name")
    );

    let both = format!("{POD}---\n{}", POD.replace("web", "db"));
    let pods = podspec::parse("pods.yaml", &both).unwrap();
    let names: Vec<_> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web", "db"]);
}

#[test]
fn a_broken_document_hides_no_other() {
    let text = format!("{POD}---\nkind: [\n---\n{}", POD.replace("app", "App"));
    let errs = errors_of(&text);
    assert!(
        errs.iter()
            .any(|e| e.document == Some(2) && e.error.kind == ErrorKind::Syntax)
    );
    let e = find(&errs, "spec.containers[0].name");
    assert_eq!(e.document, Some(3));
}

#[test]
fn json_input() {
    let body = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "j"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Never"}]}
    });
    let pods = podspec::parse("pod.json", &body.to_string()).unwrap();
    let c = &pods[0].spec.as_ref().unwrap().containers[0];
    assert_eq!(
        c.image_pull_policy.as_deref(),
        Some("Never"),
        "an explicit policy stays"
    );

    let errs = podspec::parse("pod.json", "{\"kind\": \"Pod\",\n \"apiVersion\": }").unwrap_err();
    assert_eq!(errs.0[0].error.kind, ErrorKind::Syntax);
    assert_eq!(errs.0[0].error.position.map(|p| p.0), Some(2));
}

#[test]
fn container_name_invalid_reads_like_kubectl() {
    let errs = errors_of(&POD.replace("name: app", "name: Neo4j"));
    let line = errs.to_string();
    assert!(
        line.starts_with(
            "pod.yaml:7:7: Pod \"web\": spec.containers[0].name: Invalid value: \"Neo4j\": a \
             lowercase RFC 1123 label must consist of"
        ),
        "{line}"
    );
    assert!(line.ends_with("; try \"neo4j\""), "{line}");
}

#[test]
fn duplicate_container_names() {
    let text = format!("{POD}    - name: app\n      image: nginx:1.27\n");
    let errs = errors_of(&text);
    let e = find(&errs, "spec.containers[1].name");
    assert_eq!(e.error.kind, ErrorKind::Duplicate);
    assert_eq!(e.error.value, Some(json!("app")));
    assert!(e.error.detail.contains("spec.containers[0].name"));
}

#[test]
fn missing_image() {
    let errs = errors_of(&POD.replace("      image: busybox:1.36\n", ""));
    let e = find(&errs, "spec.containers[0].image");
    assert_eq!(e.error.kind, ErrorKind::Required);
    assert!(
        e.to_string()
            .ends_with("spec.containers[0].image: Required value")
    );
}

#[test]
fn unknown_fields_with_their_path() {
    let text = with_fields(&[
        "imagePulPolicy: Never",
        "colour: blue",
        "ImagePullPolicy: Always",
    ]);
    let errs = errors_of(&text);
    let typo = find(&errs, "spec.containers[0].imagePulPolicy");
    assert_eq!(typo.error.kind, ErrorKind::UnknownField);
    assert_eq!(
        typo.error.fix.as_deref(),
        Some("did you mean `imagePullPolicy`?")
    );
    let case = find(&errs, "spec.containers[0].ImagePullPolicy");
    assert!(
        case.error
            .fix
            .as_deref()
            .unwrap()
            .contains("case-sensitive")
    );
    let plain = find(&errs, "spec.containers[0].colour");
    assert!(
        plain
            .to_string()
            .contains("`spec.containers[0].colour` is not a field of Container")
    );
    assert!(
        errs.iter().all(|e| e.error.kind == ErrorKind::UnknownField),
        "{errs}"
    );
}

#[test]
fn misplaced_fields_say_where_they_belong() {
    // `containers` directly under the Pod: one level too high.
    let text =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\ncontainers:\n- {name: a, image: b}\n";
    let errs = errors_of(text);
    let e = find(&errs, "containers");
    assert_eq!(
        e.error.fix.as_deref(),
        Some("did you mean `spec.containers`?")
    );

    // `restartPolicy` inside a container: a field of the enclosing PodSpec.
    let errs = errors_of(&with_fields(&[
        "restartPolicy: Never",
        "dnsPolicy: Default",
    ]));
    let e = find(&errs, "spec.containers[0].dnsPolicy");
    assert!(
        e.error.fix.as_deref().unwrap().contains("`spec.dnsPolicy`"),
        "{e}"
    );
}

#[test]
fn wrong_types_are_refused_with_the_fix() {
    let text = with_fields(&[
        "env: [{name: PORT, value: 8080}]",
        "command: echo hi",
        "ports: [{containerPort: \"80\"}]",
    ]);
    let errs = errors_of(&text);
    let env = find(&errs, "spec.containers[0].env[0].value");
    assert_eq!(env.error.kind, ErrorKind::TypeInvalid);
    assert_eq!(env.error.fix.as_deref(), Some("quote it: \"8080\""));
    let cmd = find(&errs, "spec.containers[0].command");
    assert_eq!(
        cmd.error.fix.as_deref(),
        Some("write a list, e.g. [\"echo\", \"hi\"]")
    );
    let port = find(&errs, "spec.containers[0].ports[0].containerPort");
    assert_eq!(
        port.error.fix.as_deref(),
        Some("write it without quotes: 80")
    );
}

#[test]
fn duplicate_yaml_keys_are_refused() {
    let errs = errors_of(&POD.replace("  name: web\n", "  name: web\n  name: web2\n"));
    let e = errs
        .iter()
        .find(|e| e.error.kind == ErrorKind::Syntax)
        .expect("a syntax error");
    assert!(e.error.detail.contains("\"name\" is already set"), "{e}");
    assert_eq!(e.error.position.map(|p| p.0), Some(5));
}

#[test]
fn yaml_reads_as_kubernetes_reads_it() {
    let text = POD.to_string()
        + "  volumes:\n    - name: s\n"
        + "      secret: {secretName: s, defaultMode: 0400}\n    - name: scratch\n";
    let pods = podspec::parse("pod.yaml", &text).unwrap();
    let vols = pods[0].spec.as_ref().unwrap().volumes.as_ref().unwrap();
    assert_eq!(
        vols[0].secret.as_ref().unwrap().default_mode,
        Some(0o400),
        "YAML 1.1 octal"
    );
    assert!(
        vols[1].empty_dir.is_some(),
        "a volume without a source is an emptyDir"
    );
}

#[test]
fn kinds_and_versions() {
    let errs = errors_of(&POD.replace("kind: Pod", "kind: Deployment"));
    assert_eq!(errs.len(), 1, "a Deployment is not read as a Pod: {errs}");
    let errs = errors_of(&POD.replace("apiVersion: v1", "apiVersion: apps/v1"));
    assert!(
        find(&errs, "apiVersion")
            .to_string()
            .contains("Pods are in `apiVersion: v1`")
    );
    let errs = errors_of(&POD.replace("kind: Pod\n", ""));
    assert_eq!(find(&errs, "kind").error.kind, ErrorKind::Required);
}

#[test]
fn api_bodies_validate_to_a_typed_defaulted_pod() {
    let body = json!({
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "extra": 1}]}
    });
    let strict = podspec::validate_and_default(&body, &Options::for_api(FieldValidation::Strict));
    let errs = strict.expect_err("unknown field refused");
    assert!(errs.is_decode_error(), "an API server answers 400");
    assert_eq!(errs.0[0].path, "spec.containers[0].extra");

    let warn = podspec::validate_and_default(&body, &Options::for_api(FieldValidation::Warn))
        .expect("accepted with a warning");
    assert_eq!(warn.warnings.len(), 1);
    let spec = warn.pod.spec.unwrap();
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));

    let invalid = json!({"metadata": {"name": "x"}, "spec": {"containers": []}});
    let errs = podspec::validate_and_default(&invalid, &Options::for_api(FieldValidation::Strict))
        .unwrap_err();
    assert!(!errs.is_decode_error(), "an API server answers 422");
    assert_eq!(errs.to_string(), "spec.containers: Required value");
    let status = errs.to_status("x");
    assert_eq!(status.code, Some(422));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod \"x\" is invalid: spec.containers: Required value")
    );
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(cause.field.as_deref(), Some("spec.containers"));
    assert_eq!(cause.reason.as_deref(), Some("FieldValueRequired"));
}

#[test]
fn typed_pods_are_validated_too() {
    let mut pod = podspec::parse("pod.yaml", POD).unwrap().remove(0);
    pod.spec.as_mut().unwrap().containers[0].image_pull_policy = Some("Sometimes".into());
    let errs = podspec::validate_pod(&mut pod, &Options::default()).unwrap_err();
    assert_eq!(errs.0[0].kind, ErrorKind::NotSupported);
}

#[test]
fn a_list_is_read_as_its_items() {
    let item = POD.replace('\n', "\n  ");
    let text = format!("apiVersion: v1\nkind: List\nitems:\n- {}", item.trim_end());
    let text = text.replace("name: app", "name: App");
    let errs = errors_of(&text);
    let e = find(&errs, "spec.containers[0].name");
    assert_eq!(e.error.position, Some((10, 9)), "{errs}");
}

#[test]
fn hostile_yaml_is_refused_not_followed() {
    let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let errs = errors_of(&deep);
    assert_eq!(errs.0[0].error.kind, ErrorKind::Syntax);

    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let errs = errors_of(&bomb);
    assert_eq!(errs.0[0].error.kind, ErrorKind::Syntax, "{errs}");

    let tabs = errors_of("apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n");
    assert!(
        tabs.0[0].error.fix.as_deref().unwrap().contains("spaces"),
        "{tabs}"
    );
}

#[test]
fn resources_and_probes() {
    let text = with_fields(&[
        "resources: {limits: {memroy: 1Gi, cpu: 10 cores}, requests: {cpu: 2, memory: 2Gi}}",
        "livenessProbe: {periodSeconds: 5}",
        "readinessProbe: {exec: {command: [true]}, tcpSocket: {port: http}}",
    ]);
    let errs = errors_of(&text);
    let name = find(&errs, "spec.containers[0].resources.limits[memroy]");
    assert_eq!(name.error.fix.as_deref(), Some("did you mean \"memory\"?"));
    let cpu = find(&errs, "spec.containers[0].resources.limits[cpu]");
    assert!(cpu.error.detail.contains("regular expression"), "{cpu}");
    assert_eq!(
        find(&errs, "spec.containers[0].livenessProbe").error.kind,
        ErrorKind::Required
    );
    let both = find(&errs, "spec.containers[0].readinessProbe");
    assert_eq!(both.error.kind, ErrorKind::Forbidden);

    let text = with_fields(&["resources: {limits: {cpu: 500m}, requests: {cpu: 1}}"]);
    let errs = errors_of(&text);
    let e = find(&errs, "spec.containers[0].resources.requests[cpu]");
    assert!(
        e.error
            .detail
            .contains("must be less than or equal to cpu limit of 500m")
    );
}

#[test]
fn a_misplaced_copy_does_not_shadow_the_real_field() {
    let text = POD
        .replace("  name: web\n", "  name: web\n  spec: {}\n")
        .replace("name: app", "name: App");
    let errs = errors_of(&text);
    assert_eq!(
        find(&errs, "metadata.spec").error.kind,
        ErrorKind::UnknownField
    );
    let e = find(&errs, "spec.containers[0].name");
    assert_eq!(
        e.error.value,
        Some(json!("App")),
        "the real spec is the one validated"
    );
}
