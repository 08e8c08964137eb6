//! `hoist server` through kubectl: every option of `kubectl logs`, and pulls from a private
//! registry (Debian's `docker-registry` with htpasswd), without a pull secret (ErrImagePull,
//! then ImagePullBackOff with the registry's error and the back-off in the events) and with
//! one made by `kubectl create secret docker-registry`. Needs root, runc, busybox-static and
//! kubectl.

mod common;

use common::Env;
use common::cluster::{Cluster, have_kubectl};
use testkit::Registry;

fn pod(name: &str, image: &str, restart: &str, script: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restart}\n\
         {extra}  containers:\n    - name: main\n      image: {image}\n      \
         command: [sh, -c, {script:?}]\n"
    )
}

#[test]
fn kubectl_logs_with_each_option() {
    let Some(env) = Env::new() else { return };
    if !have_kubectl() {
        return;
    }
    let image = env.busybox();
    let c = Cluster::start(env.data_dir());
    let script = "for i in 1 2 3 4 5; do echo line$i; done";
    c.kubectl(
        "1.33",
        &[
            "create",
            "-f",
            &c.file("l.yaml", &pod("lines", &image, "Never", script, "")),
        ],
    )
    .ok();
    c.until(
        &["get", "pod", "lines", "-o", "jsonpath={.status.phase}"],
        60,
        |o| o == "Succeeded",
    );
    let all = "line1\nline2\nline3\nline4\nline5\n";
    for v in ["1.27", "1.30", "1.33"] {
        assert_eq!(c.kubectl(v, &["logs", "lines"]).ok(), all, "{v}");
        assert_eq!(
            c.kubectl(v, &["logs", "lines", "--tail=2"]).ok(),
            "line4\nline5\n",
            "{v}"
        );
        assert_eq!(
            c.kubectl(v, &["logs", "lines", "--limit-bytes=8"]).ok(),
            "line1\nli",
            "{v}"
        );
        assert_eq!(
            c.kubectl(v, &["logs", "lines", "--since=1h"]).ok(),
            all,
            "{v}"
        );
    }
    let stamped = c
        .kubectl("1.33", &["logs", "lines", "--timestamps"])
        .ok()
        .to_string();
    assert_eq!(stamped.lines().count(), 5, "{stamped}");
    for l in stamped.lines() {
        let (ts, text) = l.split_once(' ').expect("a timestamp and the text");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{l}");
        assert!(text.starts_with("line"), "{l}");
    }
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string();
    let since = format!("--since-time={future}");
    assert_eq!(c.kubectl("1.33", &["logs", "lines", &since]).ok(), "");
    let prev = c
        .kubectl("1.33", &["logs", "lines", "--previous"])
        .fails()
        .to_string();
    assert!(
        prev.contains("previous terminated container \"main\" in pod \"lines\" not found"),
        "{prev}"
    );

    // -f follows a running container until it exits.
    let slow = "echo a; sleep 2; echo b";
    c.kubectl(
        "1.33",
        &[
            "create",
            "-f",
            &c.file("s.yaml", &pod("slow", &image, "Never", slow, "")),
        ],
    )
    .ok();
    c.until(
        &["get", "pod", "slow", "-o", "jsonpath={.status.phase}"],
        60,
        |o| o == "Running",
    );
    assert_eq!(c.kubectl("1.33", &["logs", "-f", "slow"]).ok(), "a\nb\n");

    // --previous: the instance before the restart.
    let counting = "echo run at $(date +%s%N); exit 3";
    let f = c.file("p.yaml", &pod("again", &image, "Always", counting, ""));
    c.kubectl("1.33", &["create", "-f", &f]).ok();
    let restarts = [
        "get",
        "pod",
        "again",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ];
    c.until(&restarts, 60, |o| o.parse::<u32>().is_ok_and(|n| n >= 1));
    let previous = c
        .kubectl("1.30", &["logs", "again", "--previous"])
        .ok()
        .to_string();
    assert!(previous.starts_with("run at "), "{previous}");
    let last = [
        "get",
        "pod",
        "again",
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ];
    assert_eq!(c.kubectl("1.33", &last).ok(), "3");
}

#[test]
fn a_private_registry_needs_the_pull_secret() {
    let Some(env) = Env::new() else { return };
    if !have_kubectl() {
        return;
    }
    let Some(private) = Registry::start_with_htpasswd("alice", "s3cret") else {
        return;
    };
    let image = busybox_on(&private);
    let c = Cluster::start(env.data_dir());

    let f = c.file(
        "nosecret.yaml",
        &pod("nosecret", &image, "Never", "echo SUCCESS", ""),
    );
    c.kubectl("1.33", &["create", "-f", &f]).ok();
    let reason = [
        "get",
        "pod",
        "nosecret",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
    ];
    c.until(&reason, 60, |o| {
        o == "ErrImagePull" || o == "ImagePullBackOff"
    });
    c.until(&reason, 60, |o| o == "ImagePullBackOff");
    let message = [
        "get",
        "pod",
        "nosecret",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ];
    let message = c.kubectl("1.33", &message).ok().to_string();
    assert!(
        message.contains("401"),
        "the registry's answer is in the message: {message}"
    );
    let table = c
        .kubectl("1.33", &["get", "pod", "nosecret", "--no-headers"])
        .ok()
        .to_string();
    assert!(
        table.contains("ImagePullBackOff") || table.contains("ErrImagePull"),
        "{table}"
    );
    let events = c
        .kubectl("1.33", &["describe", "pod", "nosecret"])
        .ok()
        .to_string();
    for want in [
        &format!("Failed to pull image \"{image}\""),
        "Error: ErrImagePull",
        &format!("Back-off pulling image \"{image}\""),
        "Error: ImagePullBackOff",
    ] {
        assert!(events.contains(want), "missing {want:?} in:\n{events}");
    }

    // The back-off holds the next try back (10 s, doubling): a few seconds on, the image
    // was still asked for once.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pulls = [
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nosecret,reason=Pulling",
        "-o",
        "jsonpath={.items[*].count}",
    ];
    assert_eq!(
        c.kubectl("1.33", &pulls).ok(),
        "1",
        "one pull attempt inside the back-off"
    );

    let server = format!("--docker-server={}", private.host());
    let secret = [
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &server,
        "--docker-username=alice",
        "--docker-password=s3cret",
    ];
    assert_eq!(c.kubectl("1.33", &secret).ok(), "secret/regcred created\n");
    let with = "  imagePullSecrets: [{name: regcred}]\n";
    let f = c.file(
        "secret.yaml",
        &pod("withsecret", &image, "Never", "echo SUCCESS", with),
    );
    c.kubectl("1.27", &["create", "-f", &f]).ok();
    let phase = ["get", "pod", "withsecret", "-o", "jsonpath={.status.phase}"];
    c.until(&phase, 60, |o| o == "Succeeded");
    assert_eq!(c.kubectl("1.33", &["logs", "withsecret"]).ok(), "SUCCESS\n");
}

fn busybox_on(reg: &Registry) -> String {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let image = testkit::busybox::busybox_image().build();
    rt.block_on(reg.push("private/busybox", "1", &image))
        .expect("push with credentials");
    format!("{}/private/busybox:1", reg.host())
}
