//! hoist's node agent: the kubelet's part of hoist. It talks to the API server only
//! through kube-rs, as if it ran on another machine, and to the image service and the
//! runtime directly.
//!
//! - [`node`]: the Node it registers, and its Lease heartbeat.
//! - `pods`: the list and watch of pods bound to the node, one worker per pod.
//! - `worker`, `terminate`: a pod's life on the node, from sandbox to deletion.
//! - [`images`]: pull policy, pull secrets, image back-off and its events.
//! - [`status`], [`events`], [`backoff`]: the pure parts (status building, the kubelet's
//!   event wording, the back-off schedule).
//! - [`logs`]: serving a container's CRI log for `pods/log`, and [`log_endpoint`], the
//!   authenticated HTTPS endpoint the API server proxies `pods/log` to.

pub mod backoff;
pub mod events;
pub mod images;
pub mod log_endpoint;
pub mod logs;
pub mod node;
mod pods;
pub mod status;
mod terminate;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use runtime::{MonitorCommand, Runtime, RuntimeKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use logs::{LogError, LogRequest, LogServer};

/// The node's address, and for now every pod's (see the worker's status report).
pub const HOST_IP: &str = "127.0.0.1";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0:?} is not an OCI runtime hoist knows (runc or crun)")]
    UnknownRuntime(String),
    #[error("preparing the runtime in {path}")]
    Runtime {
        path: PathBuf,
        #[source]
        source: runtime::RuntimeError,
    },
    #[error("opening the image store in {path}")]
    Images {
        path: PathBuf,
        #[source]
        source: image::StoreError,
    },
    #[error("loading the registry settings of {path}")]
    Registry {
        path: PathBuf,
        #[source]
        source: registry::RegistryError,
    },
    #[error("serving the log endpoint on {addr}")]
    LogEndpoint {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("registering the node")]
    Node(#[source] node::NodeError),
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Node's name; [`AgentConfig::new`] takes the hostname.
    pub node_name: String,
    /// Where images, sandboxes, containers and logs live (shared with `hoist image`).
    pub data_dir: PathBuf,
    /// `runc` or `crun`.
    pub runtime: String,
    /// How containers' monitors are started (`hoist monitor`).
    pub monitor: MonitorCommand,
    /// A docker `config.json` with the node's own registry credentials.
    pub authfile: Option<PathBuf>,
    /// When container logs are rotated (the kubelet's `containerLogMaxSize` and
    /// `containerLogMaxFiles`: 10 MiB, 5 files).
    pub log_rotation: runtime::logs::Rotation,
    /// Where and how to serve the log endpoint the API server proxies `pods/log` to; none
    /// when `None`.
    pub log_endpoint: Option<LogEndpointConfig>,
}

/// The log endpoint's address, TLS identity and the token a request must carry.
#[derive(Clone)]
pub struct LogEndpointConfig {
    pub listen: std::net::SocketAddr,
    pub tls: rustls::ServerConfig,
    pub token: String,
}

impl std::fmt::Debug for LogEndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEndpointConfig")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// The defaults: the machine's hostname as node name, runc.
    pub fn new(data_dir: PathBuf, monitor: MonitorCommand) -> Self {
        AgentConfig {
            node_name: hostname(),
            data_dir,
            runtime: "runc".into(),
            monitor,
            authfile: None,
            log_rotation: Default::default(),
            log_endpoint: None,
        }
    }
}

/// The machine's hostname, lower case (a Node name must be a DNS subdomain).
pub fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// What the agent's tasks share.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub node: String,
    pub runtime: Arc<Runtime>,
    pub images: images::ImageManager,
    pub recorder: Arc<events::Recorder>,
}

pub struct Agent;

impl Agent {
    /// Prepares the runtime and image store, registers the Node, and starts the
    /// heartbeat and the pod workers. Pods already running on this node are adopted.
    pub async fn start(client: kube::Client, cfg: AgentConfig) -> Result<RunningAgent, AgentError> {
        let kind: RuntimeKind = cfg
            .runtime
            .parse()
            .map_err(|_| AgentError::UnknownRuntime(cfg.runtime.clone()))?;
        let data_dir = cfg.data_dir.clone();
        let mut rt = Runtime::new(&data_dir, kind, cfg.monitor.clone()).map_err(|source| {
            AgentError::Runtime {
                path: data_dir.clone(),
                source,
            }
        })?;
        rt.set_log_rotation(cfg.log_rotation);
        let store = image::Store::open(&data_dir).map_err(|source| AgentError::Images {
            path: data_dir.clone(),
            source,
        })?;
        let options = registry::ClientOptions::load(&data_dir, cfg.authfile.as_deref()).map_err(
            |source| AgentError::Registry {
                path: data_dir.clone(),
                source,
            },
        )?;

        let mut facts = node::HostFacts::gather();
        let (stop_tx, stop_rx) = watch::channel(false);
        let endpoint = match &cfg.log_endpoint {
            None => None,
            Some(e) => {
                let listener = tokio::net::TcpListener::bind(e.listen)
                    .await
                    .map_err(|source| AgentError::LogEndpoint {
                        addr: e.listen,
                        source,
                    })?;
                facts.log_port = listener
                    .local_addr()
                    .map_err(|source| AgentError::LogEndpoint {
                        addr: e.listen,
                        source,
                    })?
                    .port();
                let serve = log_endpoint::Endpoint {
                    logs: LogServer::new(&data_dir),
                    client: client.clone(),
                    token: e.token.clone(),
                };
                let task = log_endpoint::serve(listener, e.tls.clone(), serve, stop_rx.clone());
                Some(tokio::spawn(task))
            }
        };
        node::register(&client, &cfg.node_name, &facts)
            .await
            .map_err(AgentError::Node)?;

        let recorder = Arc::new(events::Recorder::new(client.clone(), &cfg.node_name));
        let shared = Arc::new(Shared {
            client: client.clone(),
            node: cfg.node_name.clone(),
            runtime: Arc::new(rt),
            images: images::ImageManager::new(store, client.clone(), options, recorder.clone()),
            recorder,
        });
        let heartbeat = tokio::spawn(node::heartbeat(client, cfg.node_name.clone(), facts));
        let pods = tokio::spawn(pods::Dispatcher::new(shared, stop_rx).run());
        tracing::info!(node = %cfg.node_name, "node agent started");
        Ok(RunningAgent {
            stop: stop_tx,
            heartbeat,
            pods,
            endpoint,
            logs: LogServer::new(&data_dir),
            node_name: cfg.node_name,
        })
    }
}

/// A started agent.
pub struct RunningAgent {
    stop: watch::Sender<bool>,
    heartbeat: JoinHandle<()>,
    pods: JoinHandle<()>,
    endpoint: Option<JoinHandle<()>>,
    logs: LogServer,
    node_name: String,
}

impl RunningAgent {
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// A handle that serves container logs, for the API server's `pods/log`.
    pub fn log_server(&self) -> LogServer {
        self.logs.clone()
    }

    /// Stops the watch and the pod workers; containers keep running, and the next
    /// agent adopts them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.heartbeat.abort();
        let _ = self.pods.await;
        if let Some(e) = self.endpoint {
            let _ = e.await;
        }
        tracing::info!(node = %self.node_name, "node agent stopped");
    }
}

/// One container's log for `pods/log` (see [`logs`]).
pub async fn logs(
    agent: &RunningAgent,
    pod: &Pod,
    opts: &LogRequest,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, LogError> {
    agent.logs.logs(pod, opts).await
}

/// Runs blocking runtime work off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// An error's message followed by its sources', as one line (events and statuses carry
/// one string).
pub use image::error_chain as chain;
