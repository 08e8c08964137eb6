//! The node agent against a live hoist API server, a real registry and runc: the
//! tutorial's pod runs to `Succeeded` and its log reads `SUCCESS`; a pod that keeps
//! exiting under `restartPolicy: Always` restarts and enters CrashLoopBackOff; a deleted
//! pod is stopped and removed. These need root, runc and busybox-static: outside CI they
//! skip without them.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, main_status, phase, waiting_of};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use testkit::busybox;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tutorial_pod_succeeds_and_logs_success() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    let nodes: Api<Node> = Api::all(c.client.clone());
    let node = nodes.get("hoist-test-node").await.expect("node registered");
    let info = node.status.unwrap().node_info.unwrap();
    assert_eq!(info.kubelet_version, "v1.33.0");

    c.create("tutorial", "Never", "echo SUCCESS").await;
    let pod = c
        .wait("tutorial", Duration::from_secs(60), |p| {
            phase(p) == "Succeeded"
        })
        .await;
    let status = main_status(&pod).expect("a container status");
    let t = status.state.unwrap().terminated.expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert!(status.container_id.unwrap().starts_with("hoist://"));
    assert!(status.image_id.starts_with("sha256:"));
    assert_eq!(pod.status.unwrap().host_ip.as_deref(), Some("127.0.0.1"));

    assert_eq!(c.log("tutorial", false).await, "SUCCESS\n");
    let reasons = c.event_reasons("tutorial").await;
    for want in [
        "Pulling",
        "Pulled: Successfully pulled image",
        "Created",
        "Started",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(want)),
            "no {want:?} event in {reasons:#?}"
        );
    }

    // Deleting it: the agent removes the sandbox and then the pod itself.
    c.pods()
        .delete("tutorial", &DeleteParams::default())
        .await
        .expect("delete");
    let start = Instant::now();
    while c.pods().get_opt("tutorial").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pod never went away"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A finished pod is deleted at once by the API server; the agent then cleans up.
    let start = Instant::now();
    while std::fs::read_dir(c.data.join("sandboxes")).unwrap().count() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sandbox left behind"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn always_pod_restarts_into_crash_loop_back_off() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c.create("crasher", "Always", "echo run; exit 1").await;
    let pod = c
        .wait("crasher", Duration::from_secs(60), |p| {
            main_status(p).is_some_and(|s| {
                let waiting = s.state.and_then(|st| st.waiting).and_then(|w| w.reason);
                s.restart_count >= 1 && waiting.as_deref() == Some("CrashLoopBackOff")
            })
        })
        .await;
    assert_eq!(phase(&pod), "Running");
    let status = main_status(&pod).unwrap();
    let last = status
        .last_state
        .unwrap()
        .terminated
        .expect("last state terminated");
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));

    assert_eq!(c.log("crasher", false).await, "run\n");
    assert_eq!(c.log("crasher", true).await, "run\n");
    let reasons = c.event_reasons("crasher").await;
    assert!(
        reasons.iter().any(|r| r.starts_with(
            "BackOff: Back-off restarting failed container main in pod crasher_default("
        )),
        "no BackOff event in {reasons:#?}"
    );

    // After the back-off (10 s) it runs again.
    c.wait("crasher", Duration::from_secs(30), |p| {
        main_status(p).is_some_and(|s| s.restart_count >= 2)
    })
    .await;
    c.pods()
        .delete("crasher", &DeleteParams::default())
        .await
        .expect("delete");
    let start = Instant::now();
    while c.pods().get_opt("crasher").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pod never went away"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_agent_adopts_a_running_pod() {
    let Some(mut c) = Cluster::start().await else {
        return;
    };
    c.create("sleeper", "Always", "echo up; exec sleep 600")
        .await;
    let pod = c
        .wait("sleeper", Duration::from_secs(60), |p| {
            phase(p) == "Running"
        })
        .await;
    let id = main_status(&pod).unwrap().container_id.unwrap();

    c.agent.take().unwrap().shutdown().await;
    c.start_agent(Default::default()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pod = c.pods().get("sleeper").await.unwrap();
    let status = main_status(&pod).unwrap();
    assert_eq!(
        status.container_id.unwrap(),
        id,
        "the same container runs on"
    );
    assert_eq!(status.restart_count, 0);
    assert!(status.state.unwrap().running.is_some());

    assert_eq!(c.log("sleeper", false).await, "up\n");

    // A graceful delete: SIGTERM (which `sleep` as PID 1 ignores), SIGKILL after the pod's
    // 2 s, the sandbox removed, then the pod deleted by the agent.
    let begun = Instant::now();
    c.pods()
        .delete("sleeper", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = c
        .pods()
        .get("sleeper")
        .await
        .expect("still there while it stops");
    assert!(marked.metadata.deletion_timestamp.is_some());
    while c.pods().get_opt("sleeper").await.unwrap().is_some() {
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "pod never went away"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        begun.elapsed() >= Duration::from_secs(2),
        "the grace period was given"
    );
    let reasons = c.event_reasons("sleeper").await;
    assert!(
        reasons
            .iter()
            .any(|r| r == "Killing: Stopping container main"),
        "no Killing event in {reasons:#?}"
    );
    assert_eq!(
        std::fs::read_dir(c.data.join("sandboxes")).unwrap().count(),
        0
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_image_backs_off_without_a_secret_and_runs_with_one() {
    let Some(c) = Cluster::start_with(Some(("alice", "s3cret"))).await else {
        return;
    };
    c.create("locked", "Never", "echo SUCCESS").await;
    let pod = c
        .wait("locked", Duration::from_secs(30), |p| {
            waiting_of(p).is_some_and(|(r, _)| r == "ImagePullBackOff")
        })
        .await;
    let (_, message) = waiting_of(&pod).unwrap();
    assert!(
        message.starts_with(&format!(
            "Back-off pulling image \"{}\": ErrImagePull: ",
            c.image
        )) && message.contains("401"),
        "{message}"
    );
    assert_eq!(phase(&pod), "Pending");
    let reasons = c.event_reasons("locked").await;
    for want in [
        format!("Failed: Failed to pull image \"{}\": ", c.image),
        "Failed: Error: ErrImagePull".into(),
        format!("BackOff: Back-off pulling image \"{}\"", c.image),
        "Failed: Error: ImagePullBackOff".into(),
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(&want)),
            "no {want:?} event in {reasons:#?}"
        );
    }

    // A secret as `kubectl create secret docker-registry` makes it.
    let host = c.image.split('/').next().unwrap().to_string();
    let auth = "YWxpY2U6czNjcmV0"; // base64 of alice:s3cret
    let config = serde_json::json!({ "auths": { host: {
        "username": "alice", "password": "s3cret", "auth": auth } } });
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "regcred" },
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": { ".dockerconfigjson": config.to_string() },
    }))
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    let secret = match secrets.create(&PostParams::default(), &secret).await {
        Ok(s) => s,
        Err(e) => panic!("create secret: {e}"),
    };
    assert!(
        secret
            .data
            .is_some_and(|d| d.contains_key(".dockerconfigjson"))
    );

    c.create_with("unlocked", "Never", "echo SUCCESS", Some("regcred"))
        .await;
    c.wait("unlocked", Duration::from_secs(60), |p| {
        phase(p) == "Succeeded"
    })
    .await;
    assert_eq!(c.log("unlocked", false).await, "SUCCESS\n");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follow_goes_on_across_log_rotation() {
    use futures_util::AsyncBufReadExt;

    let rotation = runtime::logs::Rotation {
        max_size: 2048,
        max_files: 2,
    };
    let Some(c) = Cluster::start_full(None, rotation).await else {
        return;
    };
    let script =
        "sleep 1; i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); usleep 5000; done";
    c.create("chatty", "Never", script).await;
    c.wait("chatty", Duration::from_secs(60), |p| phase(p) == "Running")
        .await;
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let stream = c
        .pods()
        .log_stream("chatty", &params)
        .await
        .expect("follow");
    let mut lines = stream.lines();
    let mut got = Vec::new();
    while let Some(line) = futures_util::StreamExt::next(&mut lines).await {
        got.push(line.expect("a line"));
    }
    let want: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    assert_eq!(got, want, "every line once, in order");

    // The files: the current one and one rotated; a plain read serves the current one.
    let dir = std::fs::read_dir(c.data.join("pods"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let files = std::fs::read_dir(dir.path().join("main")).unwrap().count();
    assert_eq!(files, 2);
    let tail = c.log("chatty", false).await;
    assert!(
        tail.ends_with("line 299\n") && !tail.starts_with("line 0\n"),
        "{tail}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_deleted_while_the_agent_was_down_are_cleaned_up() {
    let Some(mut c) = Cluster::start().await else {
        return;
    };
    c.create("orphan", "Always", "exec sleep 600").await;
    c.wait("orphan", Duration::from_secs(60), |p| phase(p) == "Running")
        .await;
    c.agent.take().unwrap().shutdown().await;

    // Forced: gone from the API at once, with nobody on the node to see it go.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    c.pods().delete("orphan", &force).await.expect("delete");
    assert!(c.pods().get_opt("orphan").await.unwrap().is_none());
    assert_eq!(
        std::fs::read_dir(c.data.join("sandboxes")).unwrap().count(),
        1
    );

    c.start_agent(Default::default()).await;
    let start = Instant::now();
    while std::fs::read_dir(c.data.join("sandboxes")).unwrap().count() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "sandbox left behind"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_dir(c.data.join("containers"))
            .unwrap()
            .count(),
        0
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_image_restarts_the_container() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c._reg
        .push("busybox", "2", &busybox::busybox_image().build())
        .await
        .expect("push busybox:2");
    let second = c.image.replace(":1", ":2");
    c.create("changing", "Always", "exec sleep 600").await;
    c.wait("changing", Duration::from_secs(60), |p| {
        phase(p) == "Running"
    })
    .await;

    let patch = serde_json::json!({ "spec": { "containers": [
        { "name": "main", "image": second } ] } });
    c.pods()
        .patch(
            "changing",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("patch the image");
    let pod = c
        .wait("changing", Duration::from_secs(30), |p| {
            main_status(p).is_some_and(|s| {
                s.image == second && s.restart_count == 1 && s.state.unwrap().running.is_some()
            })
        })
        .await;
    assert_eq!(phase(&pod), "Running");
    let reasons = c.event_reasons("changing").await;
    assert!(
        reasons
            .iter()
            .any(|r| r == "Killing: Container main definition changed, will be restarted"),
        "no Killing event in {reasons:#?}"
    );
    c.pods()
        .delete("changing", &DeleteParams::default())
        .await
        .expect("delete");
    c.stop().await;
}
