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

    stopped().await;
    eprintln!("hoist server: stopping (containers keep running)");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
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
