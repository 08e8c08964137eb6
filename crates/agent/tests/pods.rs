//! The node agent against a live hoist API server, a real registry and runc: the
//! tutorial's pod runs to `Succeeded` and its log reads `SUCCESS`; a pod that keeps
//! exiting under `restartPolicy: Always` restarts and enters CrashLoopBackOff; a deleted
//! pod is stopped and removed. These need root, runc and busybox-static: outside CI they
//! skip without them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::{Agent, AgentConfig, LogRequest, LogServer, RunningAgent};
use futures_util::future::BoxFuture;
use hoist_agent as agent;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use runtime::MonitorCommand;
use testkit::{Registry, busybox, require};

/// Serves `pods/log` from the agent in process, as `hoist server` wires it.
struct AgentLogs(LogServer);

impl apiserver::LogSource for AgentLogs {
    fn logs<'a>(
        &'a self,
        pod: &'a Pod,
        o: &'a apiserver::LogOptions,
    ) -> BoxFuture<'a, Result<apiserver::LogStream, apiserver::LogError>> {
        Box::pin(async move {
            let since_time = match &o.since_time {
                Some(t) => Some(t.parse().map_err(|e| {
                    apiserver::LogError::BadRequest(format!("sinceTime {t:?}: {e}"))
                })?),
                None => None,
            };
            let req = LogRequest {
                container: (!o.container.is_empty()).then(|| o.container.clone()),
                follow: o.follow,
                previous: o.previous,
                tail_lines: o.tail_lines,
                since_seconds: o.since_seconds,
                since_time,
                timestamps: o.timestamps,
                limit_bytes: o.limit_bytes,
            };
            self.0.logs(pod, &req).await.map_err(|e| match e {
                agent::LogError::BadRequest(m) => apiserver::LogError::BadRequest(m),
                agent::LogError::NotFound(m) => apiserver::LogError::NotFound(m),
                other => apiserver::LogError::Unavailable(agent::chain(&other)),
            })
        })
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    image: String,
    server: Option<apiserver::RunningServer>,
    agent: Option<RunningAgent>,
    client: kube::Client,
    _reg: Registry,
}

impl Cluster {
    async fn start() -> Option<Cluster> {
        Self::start_with(None).await
    }

    /// With `credentials`, the registry demands them (htpasswd) and the image is
    /// `private/busybox:1`.
    async fn start_with(credentials: Option<(&str, &str)>) -> Option<Cluster> {
        Self::start_full(credentials, Default::default()).await
    }

    async fn start_full(
        credentials: Option<(&str, &str)>,
        rotation: runtime::logs::Rotation,
    ) -> Option<Cluster> {
        if !require(testkit::ci::is_root(), "the agent needs root")
            || !require(testkit::ci::have_binary("runc"), "runc is not installed")
            || !require(
                busybox::busybox_available(),
                "busybox-static is not installed",
            )
        {
            return None;
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (reg, repo) = match credentials {
            Some((user, pass)) => (
                Registry::start_with_htpasswd(user, pass)?,
                "private/busybox",
            ),
            None => (Registry::start()?, "busybox"),
        };
        reg.push(repo, "1", &busybox::busybox_image().build())
            .await
            .expect("push busybox");
        let image = format!("{}/{repo}:1", reg.host());

        let dir = tempfile::Builder::new()
            .prefix("hoist-agent-test")
            .tempdir()
            .unwrap();
        let backend = store::SqliteBackend::open(dir.path().join("store.db")).expect("store");
        let cfg = apiserver::Config::new(
            dir.path().join("server"),
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(backend),
        );
        let server = apiserver::Server::start(cfg).await.expect("server starts");
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        let client = kube::Client::try_from(config).expect("kube client");

        let data = dir.path().join("node");
        let monitor = MonitorCommand {
            program: env!("CARGO_BIN_EXE_hoist-agent-monitor").into(),
            args: vec![],
        };
        let mut cfg = AgentConfig::new(data.clone(), monitor);
        cfg.node_name = "hoist-test-node".into();
        cfg.log_rotation = rotation;
        let agent = Agent::start(client.clone(), cfg)
            .await
            .expect("agent starts");
        server.set_log_source(Arc::new(AgentLogs(agent.log_server())));
        Some(Cluster {
            _dir: dir,
            data,
            image,
            server: Some(server),
            agent: Some(agent),
            client,
            _reg: reg,
        })
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create(&self, name: &str, policy: &str, script: &str) -> Pod {
        self.create_with(name, policy, script, None).await
    }

    async fn create_with(
        &self,
        name: &str,
        policy: &str,
        script: &str,
        secret: Option<&str>,
    ) -> Pod {
        let secrets: Vec<_> = secret
            .iter()
            .map(|s| serde_json::json!({ "name": s }))
            .collect();
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name },
            "spec": {
                "restartPolicy": policy,
                "terminationGracePeriodSeconds": 2,
                "imagePullSecrets": secrets,
                "containers": [{
                    "name": "main",
                    "image": self.image,
                    "command": ["sh", "-c", script],
                }],
            },
        }))
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    /// Polls the pod until `done` holds, or panics with its last status after `limit`.
    async fn wait(&self, name: &str, limit: Duration, done: impl Fn(&Pod) -> bool) -> Pod {
        let start = Instant::now();
        loop {
            let pod = self.pods().get(name).await.expect("get pod");
            if done(&pod) {
                return pod;
            }
            if start.elapsed() > limit {
                panic!("pod {name} did not get there: {:#?}", pod.status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn log(&self, name: &str, previous: bool) -> String {
        let params = LogParams {
            previous,
            ..Default::default()
        };
        self.pods().logs(name, &params).await.expect("pods/log")
    }

    async fn event_reasons(&self, name: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        list.items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .filter_map(|e| Some(format!("{}: {}", e.reason?, e.message?)))
            .collect()
    }

    async fn stop(mut self) {
        if let Some(a) = self.agent.take() {
            a.shutdown().await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn main_status(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

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
    let monitor = MonitorCommand {
        program: env!("CARGO_BIN_EXE_hoist-agent-monitor").into(),
        args: vec![],
    };
    let mut cfg = AgentConfig::new(c.data.clone(), monitor);
    cfg.node_name = "hoist-test-node".into();
    c.agent = Some(
        Agent::start(c.client.clone(), cfg)
            .await
            .expect("agent restarts"),
    );
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

fn waiting_of(p: &Pod) -> Option<(String, String)> {
    let w = main_status(p)?.state?.waiting?;
    Some((w.reason?, w.message.unwrap_or_default()))
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

    let monitor = MonitorCommand {
        program: env!("CARGO_BIN_EXE_hoist-agent-monitor").into(),
        args: vec![],
    };
    let mut cfg = AgentConfig::new(c.data.clone(), monitor);
    cfg.node_name = "hoist-test-node".into();
    c.agent = Some(
        Agent::start(c.client.clone(), cfg)
            .await
            .expect("agent restarts"),
    );
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
