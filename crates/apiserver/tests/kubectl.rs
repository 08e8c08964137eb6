//! The stock kubectl (1.27, 1.30 and 1.33) against a hoist API server, through the flows of
//! `kubectl-wire.md` that need no node: each test asserts on what kubectl prints.

mod common;

use common::{Cluster, VERSIONS, have_kubectl, pod_yaml};

#[test]
fn version_discovery_and_the_built_in_objects() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    for v in VERSIONS {
        let out = c.kubectl(v, &["version"]).ok().to_string();
        assert!(out.contains("v1.33.0+hoist"), "{v}: {out}");
        let ns = c.kubectl(v, &["get", "ns"]).ok().to_string();
        for want in [
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "Active",
        ] {
            assert!(ns.contains(want), "{v}: {ns}");
        }
        let sa = c
            .kubectl(v, &["get", "sa", "-n", "kube-system"])
            .ok()
            .to_string();
        assert!(sa.lines().any(|l| l.starts_with("default ")), "{v}: {sa}");
        let none = c.kubectl(v, &["get", "pods"]);
        assert!(none.ok().is_empty());
        assert!(
            none.stderr
                .contains("No resources found in default namespace.")
        );
        let nodes = c.kubectl(v, &["get", "nodes"]);
        assert!(
            nodes.stderr.contains("No resources found"),
            "{v}: {nodes:?}"
        );
    }
}

#[test]
fn create_get_describe_and_delete_a_pod() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    for v in VERSIONS {
        let name = format!("web{}", v.replace('.', ""));
        let f = c.file(&format!("{name}.yaml"), &pod_yaml(&name, "app: web"));
        let f = f.to_str().unwrap();
        assert_eq!(
            c.kubectl(v, &["create", "-f", f]).ok(),
            format!("pod/{name} created\n")
        );
        let again = c.kubectl(v, &["create", "-f", f]).fails().to_string();
        assert!(
            again.contains(&format!(
                "Error from server (AlreadyExists): error when creating \"{f}\": pods \"{name}\" \
                 already exists"
            )),
            "{v}: {again}"
        );

        let table = c.kubectl(v, &["get", "pods"]).ok().to_string();
        let header = table.lines().next().unwrap_or("");
        for col in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
            assert!(header.contains(col), "{v}: {table}");
        }
        let row = table.lines().find(|l| l.starts_with(&name)).expect("a row");
        assert!(row.contains("0/1") && row.contains("Pending"), "{v}: {row}");
        let wide = c
            .kubectl(v, &["get", "pods", "-o", "wide"])
            .ok()
            .to_string();
        assert!(
            wide.contains("NOMINATED NODE") && wide.contains("READINESS GATES"),
            "{wide}"
        );

        let yaml = c
            .kubectl(v, &["get", "pod", &name, "-o", "yaml"])
            .ok()
            .to_string();
        for want in [
            "imagePullPolicy: IfNotPresent",
            "restartPolicy: Always",
            "uid:",
        ] {
            assert!(yaml.contains(want), "{v}: {yaml}");
        }
        assert!(yaml.contains("serviceAccountName: default"), "{v}: {yaml}");
        let labelled = c
            .kubectl(v, &["get", "pods", "-l", "app=web", "-o", "name"])
            .ok()
            .to_string();
        assert!(labelled.contains(&format!("pod/{name}")), "{v}: {labelled}");
        let other = c.kubectl(v, &["get", "pods", "-l", "app=db", "-o", "name"]);
        assert!(!other.ok().contains(&name), "{v}");

        let described = c.kubectl(v, &["describe", "pod", &name]).ok().to_string();
        assert!(
            described
                .lines()
                .any(|l| l.starts_with("Name:") && l.ends_with(&name)),
            "{v}: {described}"
        );
        assert!(described.contains("busybox:1.36"), "{v}: {described}");

        let missing = c.kubectl(v, &["get", "pod", "nope"]).fails().to_string();
        assert!(
            missing.contains("Error from server (NotFound): pods \"nope\" not found"),
            "{v}: {missing}"
        );
        let deleted = c.kubectl(v, &["delete", "pod", &name]).ok().to_string();
        assert_eq!(deleted, format!("pod \"{name}\" deleted\n"), "{v}");
        assert!(
            c.kubectl(v, &["get", "pod", &name])
                .fails()
                .contains("NotFound")
        );
    }
}

#[test]
fn strict_validation_names_the_field() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    let bad = pod_yaml("strict", "a: b").replace("  containers:", "  nodeNmae: x\n  containers:");
    let f = c.file("strict.yaml", &bad);
    for v in VERSIONS {
        let err = c
            .kubectl(v, &["create", "-f", f.to_str().unwrap()])
            .fails()
            .to_string();
        assert!(err.contains("Error from server (BadRequest)"), "{v}: {err}");
        assert!(err.contains("nodeNmae"), "{v}: {err}");
    }
    let bad_name = pod_yaml("Tesing_for_Image_pull", "a: b");
    let f = c.file("name.yaml", &bad_name);
    let err = c
        .kubectl("1.33", &["create", "-f", f.to_str().unwrap()])
        .fails()
        .to_string();
    assert!(
        err.contains("Invalid") && err.contains("Tesing_for_Image_pull"),
        "{err}"
    );
}

#[test]
fn run_secrets_namespaces_and_service_accounts() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    for v in VERSIONS {
        let tag = v.replace('.', "");
        let pod = format!("x{tag}");
        let run = [
            "run",
            &pod,
            "--image=busybox",
            "--restart=Never",
            "--",
            "echo",
            "hi",
        ];
        assert_eq!(c.kubectl(v, &run).ok(), format!("pod/{pod} created\n"));
        let args = c
            .kubectl(
                v,
                &[
                    "get",
                    "pod",
                    &pod,
                    "-o",
                    "jsonpath={.spec.containers[0].args}",
                ],
            )
            .ok()
            .to_string();
        assert_eq!(args, r#"["echo","hi"]"#, "{v}");

        // 1.32 and later send these bodies as protobuf.
        let secret = format!("reg{tag}");
        let create = [
            "create",
            "secret",
            "docker-registry",
            &secret,
            "--docker-server=127.0.0.1:5000",
            "--docker-username=u",
            "--docker-password=p",
        ];
        assert_eq!(
            c.kubectl(v, &create).ok(),
            format!("secret/{secret} created\n"),
            "{v}"
        );
        let ty = c
            .kubectl(v, &["get", "secret", &secret, "-o", "jsonpath={.type}"])
            .ok()
            .to_string();
        assert_eq!(ty, "kubernetes.io/dockerconfigjson", "{v}");
        let ns = format!("team{tag}");
        assert_eq!(
            c.kubectl(v, &["create", "namespace", &ns]).ok(),
            format!("namespace/{ns} created\n")
        );
        let sa = ["create", "serviceaccount", "robot", "-n", &ns];
        assert_eq!(
            c.kubectl(v, &sa).ok(),
            "serviceaccount/robot created\n",
            "{v}"
        );
        let sas = c
            .kubectl(v, &["get", "sa", "-n", &ns, "-o", "name"])
            .ok()
            .to_string();
        assert!(sas.contains("serviceaccount/default") && sas.contains("serviceaccount/robot"));
        let cm = [
            "create",
            "configmap",
            "conf",
            "-n",
            &ns,
            "--from-literal=a=b",
        ];
        assert_eq!(c.kubectl(v, &cm).ok(), "configmap/conf created\n", "{v}");
        assert!(
            c.kubectl(v, &["delete", "namespace", &ns])
                .ok()
                .contains("deleted")
        );
        let gone = c.kubectl(v, &["get", "cm", "conf", "-n", &ns]);
        assert!(gone.fails().contains("NotFound"), "{v}");
    }
}

#[test]
fn a_wrong_token_is_refused() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    let err = c
        .kubectl("1.33", &["get", "pods", "--token=wrong"])
        .fails()
        .to_string();
    assert!(err.contains("provide credentials"), "{err}");
}

#[test]
fn get_watch_prints_a_row_per_change() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    for v in VERSIONS {
        let name = format!("w{}", v.replace('.', ""));
        let mut child = c.kubectl_child(v, &["get", "pods", "-w", "--request-timeout=20s"]);
        // The watch starts from the list's revision: a create after it arrives as a row.
        std::thread::sleep(std::time::Duration::from_millis(700));
        let f = c.file(&format!("{name}.yaml"), &pod_yaml(&name, "a: b"));
        c.kubectl(v, &["create", "-f", f.to_str().unwrap()]).ok();
        c.kubectl(v, &["label", "pod", &name, "x=y"]).ok();
        let lines = common::read_lines_until(&mut child, |l| l.starts_with(&name), 2);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            lines.iter().filter(|l| l.starts_with(&name)).count() >= 2,
            "{v}: {lines:?}"
        );
        assert!(lines.iter().all(|l| !l.contains("error")), "{v}: {lines:?}");
    }
}

#[test]
fn conflicts_patches_pages_and_generated_names() {
    if !have_kubectl() {
        return;
    }
    let c = Cluster::start();
    let v = "1.33";
    c.kubectl(v, &["create", "configmap", "conf", "--from-literal=a=1"])
        .ok();
    let got = c
        .kubectl(v, &["get", "cm", "conf", "-o", "json"])
        .ok()
        .to_string();

    // A replacement that carries the version it read wins once; the second is stale.
    let edited = got.replace("\"a\": \"1\"", "\"a\": \"2\"");
    let f = c.file("conf.json", &edited);
    let f = f.to_str().unwrap();
    assert_eq!(
        c.kubectl(v, &["replace", "-f", f]).ok(),
        "configmap/conf replaced\n"
    );
    let stale = c.kubectl(v, &["replace", "-f", f]).fails().to_string();
    assert!(
        stale.contains("Error from server (Conflict)") && stale.contains("has been modified"),
        "{stale}"
    );

    for (kind, patch, key, want) in [
        ("merge", r#"{"data":{"b":"merge"}}"#, "b", "merge"),
        ("strategic", r#"{"data":{"c":"smp"}}"#, "c", "smp"),
        (
            "json",
            r#"[{"op":"replace","path":"/data/a","value":"json"}]"#,
            "a",
            "json",
        ),
    ] {
        let out = c
            .kubectl(v, &["patch", "cm", "conf", "--type", kind, "-p", patch])
            .ok()
            .to_string();
        assert_eq!(out, "configmap/conf patched\n", "{kind}");
        let jp = format!("jsonpath={{.data.{key}}}");
        assert_eq!(
            c.kubectl(v, &["get", "cm", "conf", "-o", &jp]).ok(),
            want,
            "{kind}"
        );
    }
    let failed_test = r#"[{"op":"test","path":"/data/a","value":"nope"}]"#;
    let err = c.kubectl(
        v,
        &["patch", "cm", "conf", "--type", "json", "-p", failed_test],
    );
    assert!(err.fails().contains("test"), "{err:?}");

    // generateName, and a list read in pages of two (limit and continue).
    let generated = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n  \
               labels: {batch: x}\ndata: {k: v}\n";
    let f = c.file("gen.yaml", generated);
    for _ in 0..4 {
        let out = c
            .kubectl(v, &["create", "-f", f.to_str().unwrap()])
            .ok()
            .to_string();
        assert!(
            out.starts_with("configmap/gen-") && out.ends_with(" created\n"),
            "{out}"
        );
    }
    let paged = c
        .kubectl(
            v,
            &["get", "cm", "-l", "batch=x", "--chunk-size=2", "-o", "name"],
        )
        .ok()
        .to_string();
    assert_eq!(paged.lines().count(), 4, "{paged}");
    let deleted = c
        .kubectl(v, &["delete", "cm", "-l", "batch=x"])
        .ok()
        .to_string();
    assert_eq!(deleted.lines().count(), 4, "{deleted}");
    assert!(
        c.kubectl(v, &["get", "cm", "conf", "-o", "name"])
            .ok()
            .contains("conf")
    );
}
