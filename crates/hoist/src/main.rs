//! The `hoist` binary: a thin command-line layer over the library crates.
//!
//! Each subcommand lives in its own module and owns its flags; this file only parses the
//! command line, sets up logging and the TLS provider, and dispatches.

mod follow;
mod image_cmd;
mod pod_run;
mod progress;
mod run_cmd;
mod server_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A small, fast Kubernetes node in one binary.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about)]
struct Cli {
    /// Where images, snapshots, containers and logs are kept.
    #[arg(
        long,
        global = true,
        env = "HOIST_DATA_DIR",
        default_value = "/var/lib/hoist"
    )]
    data_dir: PathBuf,

    /// Log filter for diagnostics on stderr (`debug`, `hoist_image=trace`, ...).
    #[arg(long, global = true, env = "HOIST_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull, list, inspect and remove images.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Run the pods of a manifest once, stream their logs, exit with their status.
    Run(run_cmd::RunArgs),
    /// Serve the Kubernetes API (HTTPS) with a scheduler and this machine as its node.
    Server(server_cmd::ServerArgs),
    /// Print the kubeconfig that `hoist server` wrote for kubectl.
    Kubeconfig,
    /// Internal: supervise one container (started by `hoist run` and the agent).
    #[command(hide = true)]
    Monitor(run_cmd::MonitorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);

    // reqwest is built without a default crypto provider (aws-lc is a heavy C build): install
    // ring's once, before any TLS client or server exists.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let result = match cli.command {
        Command::Image(cmd) => image_cmd::run(&cli.data_dir, cmd),
        Command::Run(args) => run_cmd::run(&cli.data_dir, args),
        Command::Server(args) => server_cmd::run(&cli.data_dir, args),
        Command::Kubeconfig => server_cmd::kubeconfig(&cli.data_dir),
        Command::Monitor(args) => run_cmd::monitor(&cli.data_dir, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hoist: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
