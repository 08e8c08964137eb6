//! What the agent's integration tests share: a hoist API server on loopback, a real
//! registry with busybox pushed to it, and an agent on a data directory of the test's own,
//! all in this test process.

#![allow(dead_code)] // Each test uses a different part of this module.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::{Agent, AgentConfig, LogRequest, LogServer, RunningAgent};
use futures_util::future::BoxFuture;
use hoist_agent as agent;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use runtime::MonitorCommand;
use testkit::{Registry, busybox, require};

async fn start_agent(
    client: &kube::Client,
    data: &std::path::Path,
    rotation: runtime::logs::Rotation,
) -> RunningAgent {
    let monitor = MonitorCommand {
        program: env!("CARGO_BIN_EXE_hoist-agent-monitor").into(),
        args: vec![],
    };
    let mut cfg = AgentConfig::new(data.to_path_buf(), monitor);
    cfg.node_name = "hoist-test-node".into();
    cfg.log_rotation = rotation;
    Agent::start(client.clone(), cfg)
        .await
        .expect("agent starts")
}

/// Serves `pods/log` from the agent in process, as `hoist server` wires it.
pub struct AgentLogs(LogServer);

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

pub struct Cluster {
    pub _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub image: String,
    pub server: Option<apiserver::RunningServer>,
    pub agent: Option<RunningAgent>,
    pub client: kube::Client,
    pub _reg: Registry,
}

impl Cluster {
    pub async fn start() -> Option<Cluster> {
        Self::start_with(None).await
    }

    /// With `credentials`, the registry demands them (htpasswd) and the image is
    /// `private/busybox:1`.
    pub async fn start_with(credentials: Option<(&str, &str)>) -> Option<Cluster> {
        Self::start_full(credentials, Default::default()).await
    }

    pub async fn start_full(
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
        let agent = start_agent(&client, &data, rotation).await;
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

    /// Starts the agent again (after a shutdown) on the same data directory.
    pub async fn start_agent(&mut self, rotation: runtime::logs::Rotation) {
        assert!(self.agent.is_none(), "the agent still runs");
        self.agent = Some(start_agent(&self.client, &self.data, rotation).await);
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create(&self, name: &str, policy: &str, script: &str) -> Pod {
        self.create_with(name, policy, script, None).await
    }

    pub async fn create_with(
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
    pub async fn wait(&self, name: &str, limit: Duration, done: impl Fn(&Pod) -> bool) -> Pod {
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

    pub async fn log(&self, name: &str, previous: bool) -> String {
        let params = LogParams {
            previous,
            ..Default::default()
        };
        self.pods().logs(name, &params).await.expect("pods/log")
    }

    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
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

    /// Deletes every pod left and waits for the agent to remove their sandboxes (which
    /// would otherwise outlive the test, as they outlive an agent), then stops.
    pub async fn stop(mut self) {
        if self.agent.is_some() {
            let left = self
                .pods()
                .list(&ListParams::default())
                .await
                .expect("list pods");
            for p in left.items {
                let name = p.metadata.name.unwrap_or_default();
                let _ = self.pods().delete(&name, &DeleteParams::default()).await;
            }
            let start = Instant::now();
            loop {
                let pods = self
                    .pods()
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                let sandboxes = std::fs::read_dir(self.data.join("sandboxes"))
                    .unwrap()
                    .count();
                if pods.is_empty() && sandboxes == 0 {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "pods left behind"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Some(a) = self.agent.take() {
            a.shutdown().await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn main_status(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

pub fn waiting_of(p: &Pod) -> Option<(String, String)> {
    let w = main_status(p)?.state?.waiting?;
    Some((w.reason?, w.message.unwrap_or_default()))
}
