//! `hoist server`: the API server over the embedded SQLite store, its scheduler, and the
//! node agent, in one process; and `hoist kubeconfig`, which prints the kubeconfig the
//! server wrote for `kubectl`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

/// Flags of `hoist server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The address the API server listens on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// The name this machine registers as a Node; the hostname by default.
    #[arg(long)]
    pub node_name: Option<String>,
    /// The OCI runtime the node agent runs containers with.
    #[arg(long, default_value = "runc", value_parser = ["runc", "crun"])]
    pub runtime: String,
    /// A docker config.json with the node's own registry credentials (pods' pull secrets
    /// come on top).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Where the node agent serves container logs to the API server (HTTPS, the kubelet's
    /// port 10250 by default elsewhere; a free port here, so that servers can share a host).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub log_listen: SocketAddr,
    /// Serve the API only, without this machine as a node.
    #[arg(long)]
    pub no_agent: bool,
}

/// Where the server keeps its store, certificates and kubeconfig.
pub fn api_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("api")
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(data_dir: &Path, args: ServerArgs) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    tokio.block_on(serve(data_dir, args))
}

async fn serve(data_dir: &Path, args: ServerArgs) -> anyhow::Result<ExitCode> {
    let dir = api_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let db = dir.join("store.db");
    let backend = store::SqliteBackend::open(&db)
        .with_context(|| format!("open the object store {}", db.display()))?;
    let config = apiserver::Config::new(&dir, args.listen, Arc::new(backend));
    let server = apiserver::Server::start(config)
        .await
        .context("start the API server")?;
    println!(
        "hoist server: listening on {}; kubeconfig: {}",
        server.url(),
        server.kubeconfig_path().display()
    );
    println!("  export KUBECONFIG={}", server.kubeconfig_path().display());

    let agent = if args.no_agent {
        None
    } else {
        let agent = start_agent(data_dir, &args, &server).await?;
        println!("hoist server: node {} is Ready", agent.node_name());
        Some(agent)
    };

    stopped().await;
    eprintln!("hoist server: stopping (containers keep running)");
    if let Some(agent) = agent {
        agent.shutdown().await;
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

// The agent reaches the API as any client would: through the kubeconfig, over HTTPS.
async fn start_agent(
    data_dir: &Path,
    args: &ServerArgs,
    server: &apiserver::RunningServer,
) -> anyhow::Result<agent::RunningAgent> {
    let kubeconfig = server.kubeconfig_path();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("load the kubeconfig for the node agent")?;
    let client = kube::Client::try_from(cfg).context("build the node agent's API client")?;
    let monitor = runtime::MonitorCommand::current_exe().context("find the hoist binary")?;
    let mut cfg = agent::AgentConfig::new(data_dir.to_path_buf(), monitor);
    if let Some(name) = &args.node_name {
        cfg.node_name = name.clone();
    }
    cfg.runtime = args.runtime.clone();
    cfg.authfile = args.authfile.clone();
    // One process, one identity: the agent's log endpoint serves the API server's certificate
    // and accepts its token, and the API server proxies pods/log there.
    let identity = server.identity();
    cfg.log_endpoint = Some(agent::LogEndpointConfig {
        listen: args.log_listen,
        tls: identity
            .server_config()
            .context("prepare the log endpoint's TLS")?,
        token: identity.token.clone(),
    });
    agent::Agent::start(client, cfg)
        .await
        .context("start the node agent")
}

async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM will not stop the server; Ctrl-C will");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `hoist kubeconfig`: prints the kubeconfig of the server in this data directory.
pub fn kubeconfig(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let path = api_dir(data_dir).join("kubeconfig.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "read {} (has `hoist server --data-dir {}` been started once?)",
            path.display(),
            data_dir.display()
        )
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
