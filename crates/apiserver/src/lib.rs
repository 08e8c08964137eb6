//! hoist's Kubernetes API server: HTTPS with a bearer token, discovery, OpenAPI for kubectl's
//! validation, create/get/list/update/patch/delete/watch of the served resources over a
//! [`store::Backend`], Table output for `kubectl get`, and a small scheduler.
//!
//! Start one with [`Server::start`]; it runs until [`RunningServer::shutdown`].
//!
//! - [`pki`]: the CA, serving certificate and token kept in the data directory.
//! - [`serve`]: the TLS accept loop, authentication and request spans.
//! - [`router`]: which handler a path and method reach.
//! - [`discovery`], [`openapi`]: what kubectl reads before it acts.
//! - [`handlers`]: the verbs, one module each, over the [`api::Api`] state.
//! - [`objects`], [`selectors`], [`patch`], [`table`], [`protobuf`]: the pieces the verbs
//!   share (object metadata, selectors, patch formats, Table rows, protobuf bodies).
//! - [`scheduler`]: binds pods without a node to the registered, Ready node.
//! - [`compact`]: drops old history from the store every few minutes.
//! - [`logs`]: the [`LogSource`] extension point through which `pods/log` is served, and
//!   [`node_logs`], its default: a proxy to the log endpoint of the pod's node agent.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

pub mod api;
pub mod compact;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod http;
pub mod kubeconfig;
pub mod logs;
pub mod node_logs;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod resources;
pub mod router;
pub mod scheduler;
pub mod selectors;
pub mod serve;
pub mod table;

pub use error::{ApiError, StartError};
pub use logs::{LogError, LogOptions, LogSource, LogStream};

/// What a server needs to start.
#[derive(Clone)]
pub struct Config {
    /// Where the CA, certificate, token and kubeconfig live.
    pub data_dir: PathBuf,
    /// The address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The object store.
    pub backend: Arc<dyn store::Backend>,
    /// Whether to run the built-in scheduler (see [`scheduler`]). On by default in
    /// [`Config::new`].
    pub scheduler: bool,
    /// How often the store's history is compacted (see [`compact`]).
    pub compact_interval: std::time::Duration,
}

impl Config {
    /// A configuration with the scheduler on.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        listen: SocketAddr,
        backend: Arc<dyn store::Backend>,
    ) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen,
            backend,
            scheduler: true,
            compact_interval: compact::INTERVAL,
        }
    }
}

/// The API server.
pub struct Server;

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    identity: pki::Identity,
    kubeconfig: PathBuf,
    api: Arc<api::Api>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Prepares the data directory (CA, certificate, token on the first start), binds,
    /// creates the built-in namespaces and service accounts, writes `kubeconfig.yaml`, and
    /// serves in background tasks.
    pub async fn start(config: Config) -> Result<RunningServer, StartError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;

        let identity = pki::Identity::load_or_create(dir, &certificate_names(addr))?;
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()?));
        let url = format!("https://{}", client_addr(addr));
        let kubeconfig = dir.join("kubeconfig.yaml");
        kubeconfig::write(&kubeconfig, &url, &identity.ca_pem, &identity.token).map_err(
            |source| StartError::Kubeconfig {
                path: kubeconfig.clone(),
                source,
            },
        )?;

        let api = Arc::new(api::Api::new(
            config.backend.clone(),
            identity.token.clone(),
            url,
        ));
        // Logs come from the agent of the pod's node, unless the caller sets another source.
        match node_logs::NodeLogs::new(config.backend.clone(), &identity.ca_pem, &identity.token) {
            Ok(proxy) => api.logs.set(Arc::new(proxy)),
            Err(e) => tracing::warn!(error = %e, "pods/log will not be served"),
        }
        api.bootstrap().await.map_err(StartError::Bootstrap)?;

        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(serve::accept_loop(
            listener,
            tls,
            api.clone(),
            stopped.clone(),
        ))];
        tasks.push(tokio::spawn(compact::run(
            config.backend,
            config.compact_interval,
            stopped.clone(),
        )));
        if config.scheduler {
            tasks.push(tokio::spawn(scheduler::run(api.clone(), stopped)));
        }
        tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "API server listening");
        Ok(RunningServer {
            addr,
            identity,
            kubeconfig,
            api,
            stop,
            tasks,
        })
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `https://` URL clients use.
    pub fn url(&self) -> &str {
        &self.api.url
    }

    /// The kubeconfig written for this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The bearer token clients present.
    pub fn token(&self) -> &str {
        &self.api.token
    }

    /// The CA, serving certificate and token of this server: the node agent in this process
    /// serves its log endpoint with them.
    pub fn identity(&self) -> &pki::Identity {
        &self.identity
    }

    /// Sets where `pods/log` is served from, instead of the proxy to the pod's node.
    pub fn set_log_source(&self, source: Arc<dyn LogSource>) {
        self.api.logs.set(source);
    }

    /// Stops accepting, closes every connection (watches end) and stops the scheduler.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The names the serving certificate covers: loopback, `localhost`, the host name and the
/// listen address.
fn certificate_names(addr: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim().to_string();
        if !h.is_empty() && !names.contains(&h) {
            names.push(h);
        }
    }
    let ip = addr.ip().to_string();
    if !addr.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    names
}

/// The address a local client dials: loopback when the server listens on every address.
fn client_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}
