//! `hoist server` driven by the stock kubectl, with a real registry and runc: the tutorial's
//! pod from create to SUCCESS in `kubectl logs` and on into CrashLoopBackOff, `kubectl run`,
//! apply (client and server side), wait and graceful delete, and a server restart that keeps
//! objects and running containers. Needs root, runc, busybox-static and kubectl.

mod common;

use common::Env;
use common::cluster::{Cluster, VERSIONS, have_kubectl};

fn start() -> Option<(Env, Cluster, String)> {
    let env = Env::new()?;
    if !have_kubectl() {
        return None;
    }
    let image = env.busybox();
    let cluster = Cluster::start(env.data_dir());
    Some((env, cluster, image))
}

/// The tutorial's pod, corrected where Kubernetes refuses it.
fn tutorial(image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tesing-for-image-pull\nspec:\n  \
         containers:\n    - name: neo4j-server\n      image: {image}\n      \
         imagePullPolicy: Always\n      command: [\"echo\", \"SUCCESS\"]\n"
    )
}

#[test]
fn the_tutorials_pod_through_kubectl_succeeds_then_backs_off() {
    let Some((_env, c, image)) = start() else {
        return;
    };
    let f = c.file("pod.yaml", &tutorial(&image));
    let created = c.kubectl("1.33", &["create", "-f", &f]);
    assert_eq!(created.ok(), "pod/tesing-for-image-pull created\n");

    let logs = c.until(&["logs", "tesing-for-image-pull"], 60, |o| o == "SUCCESS\n");
    assert_eq!(logs, "SUCCESS\n");
    for v in VERSIONS {
        assert_eq!(
            c.kubectl(v, &["logs", "tesing-for-image-pull"]).ok(),
            "SUCCESS\n",
            "{v}"
        );
    }

    // restartPolicy Always: the container that exited 0 is restarted, with back-off.
    let row = c.until(&["get", "pods", "--no-headers"], 60, |o| {
        o.contains("CrashLoopBackOff")
    });
    let restarts: u32 = row
        .split_whitespace()
        .nth(3)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    assert!(restarts >= 1, "{row}");
    let described = c
        .kubectl("1.33", &["describe", "pod", "tesing-for-image-pull"])
        .ok()
        .to_string();
    for want in [
        "Successfully assigned default/tesing-for-image-pull to node1",
        &format!("Pulling image \"{image}\""),
        &format!("Successfully pulled image \"{image}\" in "),
        "Created container: neo4j-server",
        "Started container neo4j-server",
        "Back-off restarting failed container neo4j-server",
    ] {
        assert!(
            described.contains(want),
            "missing {want:?} in:\n{described}"
        );
    }
    let events = c.kubectl("1.27", &["get", "events"]).ok().to_string();
    assert!(
        events.contains("BackOff") && events.contains("Pulled"),
        "{events}"
    );
    let nodes = c.kubectl("1.30", &["get", "nodes"]).ok().to_string();
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("node1") && l.contains(" Ready")),
        "{nodes}"
    );
}

#[test]
fn kubectl_run_wait_and_graceful_delete() {
    let Some((env, c, image)) = start() else {
        return;
    };
    let img = format!("--image={image}");
    c.kubectl(
        "1.33",
        &["run", "hi", &img, "--restart=Never", "--", "echo", "hi"],
    )
    .ok();
    let phase = ["get", "pod", "hi", "-o", "jsonpath={.status.phase}"];
    c.until(&phase, 60, |o| o == "Succeeded");
    assert_eq!(c.kubectl("1.30", &["logs", "hi"]).ok(), "hi\n");
    let code = [
        "get",
        "pod",
        "hi",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.reason}",
    ];
    assert_eq!(c.kubectl("1.33", &code).ok(), "Completed");

    c.kubectl("1.33", &["run", "sleeper", &img, "--", "sleep", "3600"])
        .ok();
    let ready = [
        "wait",
        "--for=condition=Ready",
        "pod/sleeper",
        "--timeout=60s",
    ];
    assert_eq!(
        c.kubectl("1.33", &ready).ok(),
        "pod/sleeper condition met\n"
    );
    // `sleep` as PID 1 ignores SIGTERM, as under the kubelet: it is killed when the grace
    // period ends, and the pod is gone then.
    let started = std::time::Instant::now();
    let delete = ["delete", "pod", "sleeper", "--grace-period=2"];
    assert_eq!(c.kubectl("1.27", &delete).ok(), "pod \"sleeper\" deleted\n");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(2),
        "killed before the grace period: {took:?}"
    );
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    assert!(
        c.kubectl("1.33", &["get", "pod", "sleeper"])
            .fails()
            .contains("NotFound")
    );
    c.kubectl("1.33", &["delete", "pod", "hi"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.mounts().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        env.mounts().is_empty(),
        "mounts left after delete: {:?}",
        env.mounts()
    );
}

#[test]
fn apply_client_side_and_server_side() {
    let Some((_env, c, image)) = start() else {
        return;
    };
    let pod = |tag: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  labels: {{tier: {tag}}}\n\
             spec:\n  \
             containers:\n    - name: app\n      image: {image}\n      command: [sleep, \"3600\"]\n"
        )
    };
    let f = c.file("app.yaml", &pod("a"));
    assert_eq!(
        c.kubectl("1.33", &["apply", "-f", &f]).ok(),
        "pod/app created\n"
    );
    assert_eq!(
        c.kubectl("1.27", &["apply", "-f", &f]).ok(),
        "pod/app unchanged\n"
    );
    let f = c.file("app.yaml", &pod("b"));
    assert_eq!(
        c.kubectl("1.30", &["apply", "-f", &f]).ok(),
        "pod/app configured\n"
    );
    let label = [
        "get",
        "pod",
        "app",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ];
    assert_eq!(c.kubectl("1.33", &label).ok(), "b");

    let ssa = c.file(
        "ssa.yaml",
        &pod("c").replace("name: app\n  labels", "name: ssa\n  labels"),
    );
    let applied = c.kubectl("1.33", &["apply", "--server-side", "-f", &ssa]);
    assert_eq!(applied.ok(), "pod/ssa serverside-applied\n");
    let ssa = c.file(
        "ssa.yaml",
        &pod("d").replace("name: app\n  labels", "name: ssa\n  labels"),
    );
    c.kubectl("1.33", &["apply", "--server-side", "-f", &ssa])
        .ok();
    let label = [
        "get",
        "pod",
        "ssa",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ];
    assert_eq!(c.kubectl("1.33", &label).ok(), "d");
}

#[test]
fn a_restarted_server_keeps_objects_and_running_containers() {
    let Some((env, mut c, image)) = start() else {
        return;
    };
    let img = format!("--image={image}");
    c.kubectl(
        "1.33",
        &["run", "keep", &img, "--", "sh", "-c", "echo up; sleep 3600"],
    )
    .ok();
    let ready = ["wait", "--for=condition=Ready", "pod/keep", "--timeout=60s"];
    c.kubectl("1.33", &ready).ok();
    let id = [
        "get",
        "pod",
        "keep",
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ];
    let before = c.kubectl("1.33", &id).ok().to_string();
    assert!(before.starts_with("hoist://"), "{before}");

    // `hoist kubeconfig` prints what the server wrote; it still holds after the restart.
    let printed = std::process::Command::new(common::HOIST)
        .arg("--data-dir")
        .arg(env.data_dir())
        .arg("kubeconfig")
        .output()
        .expect("hoist kubeconfig runs");
    let written = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig written");
    assert_eq!(String::from_utf8_lossy(&printed.stdout), written);
    assert!(written.contains("token:") && written.contains("certificate-authority-data:"));

    c.stop();
    let c = Cluster::start(env.data_dir());
    let phase = ["get", "pod", "keep", "-o", "jsonpath={.status.phase}"];
    assert_eq!(c.kubectl("1.33", &phase).ok(), "Running");
    assert_eq!(
        c.kubectl("1.33", &id).ok(),
        before,
        "the same container, not a new one"
    );
    let restarts = [
        "get",
        "pod",
        "keep",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ];
    assert_eq!(c.kubectl("1.33", &restarts).ok(), "0");
    assert_eq!(c.kubectl("1.33", &["logs", "keep"]).ok(), "up\n");
}
