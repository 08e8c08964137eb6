//! `hoist image ...`: pull, ls, inspect, rm.

use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Pull an image from its registry.
    Pull { reference: String },
}

pub fn run(_data_dir: &Path, _cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hoist image is being built (placeholder owned by the image-service work)")
}
