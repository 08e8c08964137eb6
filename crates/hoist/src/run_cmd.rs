//! `hoist run -f pod.yaml` and the hidden `hoist monitor` mode.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest to run (YAML or JSON, several documents allowed).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// The container's state directory.
    pub state_dir: PathBuf,
}

pub fn run(_data_dir: &Path, _args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hoist run is being built (placeholder owned by the runtime work)")
}

pub fn monitor(_data_dir: &Path, _args: MonitorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hoist monitor is being built (placeholder owned by the runtime work)")
}
