//! `hoist image ...`: pull, ls, inspect, rm.
//!
//! `pull` is the `Always` policy of [`image::ensure`]: one `HEAD` when the image is already
//! present, a pull of only what is missing otherwise. Progress goes to stderr (a bar per
//! layer on a terminal, a line every few seconds otherwise); results go to stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use image::{EnsureOutcome, PullPolicy, Store};
use oci::{Platform, Reference};

use crate::progress::{self, human_size};

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Pull an image from its registry (only what is missing).
    Pull(PullArgs),
    /// List the images present.
    #[command(alias = "list")]
    Ls,
    /// Print an image's digest, config, layers and sizes as JSON.
    Inspect {
        /// A reference or an image ID (prefix).
        image: String,
    },
    /// Remove images and the blobs and snapshots no other image uses.
    #[command(alias = "remove")]
    Rm {
        /// References or image IDs (prefixes).
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image, e.g. `busybox`, `127.0.0.1:5000/app:1`, `repo@sha256:...`.
    pub reference: String,
    /// The platform to pull from a multi-platform image: `os/arch[/variant]`.
    #[arg(long)]
    pub platform: Option<String>,
    /// A docker `config.json` with credentials (default `$HOME/.docker/config.json`).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
}

pub fn run(data_dir: &Path, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = Store::open(data_dir)
        .with_context(|| format!("open the image store in {}", data_dir.display()))?;
    match cmd {
        ImageCommand::Pull(args) => pull(data_dir, &store, args),
        ImageCommand::Ls => ls(&store),
        ImageCommand::Inspect { image } => inspect(&store, &image),
        ImageCommand::Rm { images } => rm(&store, &images),
    }
}

fn pull(data_dir: &Path, store: &Store, args: PullArgs) -> anyhow::Result<ExitCode> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).context("--platform")?,
        None => Platform::host(),
    };
    let options = registry::ClientOptions::load(data_dir, args.authfile.as_deref())
        .context("load registry settings and credentials")?;
    let client = registry::Client::new(options).context("create the registry client")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;

    let progress = progress::for_stderr();
    let outcome = runtime.block_on(image::ensure(
        store,
        &client,
        &args.reference,
        PullPolicy::Always,
        &platform,
        progress.as_ref(),
    ));
    drop(progress);
    let EnsureOutcome {
        pulled,
        record,
        size,
        elapsed,
    } = outcome?;
    let what = if pulled {
        "pulled"
    } else {
        "already present, up to date"
    };
    println!("{}: {what}", record.reference);
    println!("Digest: {}", record.digest);
    println!("Size: {} in {:.2?}", human_size(size), elapsed);
    Ok(ExitCode::SUCCESS)
}

fn ls(store: &Store) -> anyhow::Result<ExitCode> {
    let mut rows = vec![[
        "IMAGE".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "SIZE".into(),
    ]];
    for rec in store.list()? {
        let (name, tag) = match Reference::parse(&rec.reference) {
            Ok(r) => (short_name(&r), r.tag().unwrap_or("<none>").to_string()),
            Err(_) => (rec.reference.clone(), "<none>".to_string()),
        };
        let id: String = rec.id().chars().take(12).collect();
        rows.push([name, tag, id, human_size(rec.size)]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let rec = store.find(name)?;
    let config_bytes = store.content().read(&rec.config_digest)?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("config blob {} is not JSON", rec.config_digest))?;
    let lowers = rec.lower_dirs();
    let layers: Vec<serde_json::Value> = rec
        .layers
        .iter()
        .zip(lowers.iter().rev())
        .map(|(l, dir)| {
            serde_json::json!({
                "digest": l.digest,
                "mediaType": l.media_type,
                "size": l.size,
                "diffID": l.diff_id,
                "chainID": l.chain_id,
                "snapshot": dir,
            })
        })
        .collect();
    let out = serde_json::json!({
        "reference": rec.reference,
        "id": rec.config_digest,
        "digest": rec.digest,
        "manifestDigest": rec.manifest_digest,
        "platform": rec.platform,
        "size": rec.size,
        "pulledAt": rec.pulled_at,
        "config": config,
        "layers": layers,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn rm(store: &Store, names: &[String]) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match store.remove(name) {
            Ok(outcome) => {
                for r in &outcome.removed {
                    println!("Untagged: {r}");
                }
                let gc = outcome.gc;
                println!("Deleted: {} blobs, {} snapshots", gc.blobs, gc.snapshots);
            }
            Err(e) => {
                eprintln!("hoist: remove {name}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// `registry/repository` as docker shows it: Docker Hub's host and `library/` dropped.
fn short_name(r: &Reference) -> String {
    let name = r.name();
    let name = name.strip_prefix("docker.io/").unwrap_or(&name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}
