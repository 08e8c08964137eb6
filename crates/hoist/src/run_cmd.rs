//! `hoist run -f pod.yaml`: the one-shot path, as `podman kube play` is. It validates the
//! manifest as the API server would, pulls each image as its `imagePullPolicy` says,
//! creates each pod's sandbox and containers, streams their logs, runs every container
//! once whatever `restartPolicy` says, and exits with the first non-zero exit code.
//!
//! Init containers run first, one after another, each to completion; one that fails ends
//! its pod. Ctrl-C (or SIGTERM) stops every pod: SIGTERM to the containers, SIGKILL after
//! the pod's `terminationGracePeriodSeconds`. Also the hidden `hoist monitor` mode.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use runtime::{ContainerStatus, MonitorCommand, Runtime, RuntimeKind};

use crate::follow::LogPrinter;
use crate::pod_run::{PodRun, Prepared};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest to run (YAML or JSON, several documents allowed).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// The OCI runtime: `runc` or `crun`.
    #[arg(long, default_value = "runc")]
    pub runtime: RuntimeKind,
    /// Remove the pods' containers, sandboxes and logs when they end; `--rm=false` keeps
    /// them for inspection (the next `hoist run` removes all but the logs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub rm: bool,
    /// A docker `config.json` with registry credentials.
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// The platform to pull from multi-platform images: `os/arch[/variant]`.
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// The container's state directory.
    pub state_dir: PathBuf,
}

/// How long orphans of an earlier, killed run get to stop before they are killed.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

pub fn run(data_dir: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let pods = match podspec::load_file(&args.file) {
        Ok(pods) => pods,
        Err(errors) => {
            for e in errors.iter() {
                eprintln!("{e}");
            }
            let n = errors.len();
            let s = if n == 1 { "" } else { "s" };
            anyhow::bail!("{}: {n} error{s}; nothing was run", args.file.display());
        }
    };
    if pods.is_empty() {
        anyhow::bail!("{}: no Pod in the manifest", args.file.display());
    }

    let monitor = MonitorCommand::current_exe().context("find the hoist binary")?;
    let rt = Runtime::new(data_dir, args.runtime, monitor)
        .with_context(|| format!("prepare the runtime in {}", data_dir.display()))?;
    let cleaned = rt
        .cleanup_orphans(ORPHAN_GRACE)
        .context("clean up an earlier run")?;
    if cleaned.sandboxes + cleaned.containers > 0 {
        tracing::debug!(?cleaned, "removed what an earlier run left");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    tokio.spawn(watch_signals(stop.clone()));

    let several_pods = pods.len() > 1;
    let total: usize = pods.iter().map(container_count).sum();
    let mut runs = Vec::new();
    let mut code = 0;
    for pod in pods {
        let pulled = PodRun::new(&rt, data_dir, pod, &args).and_then(|mut r| {
            tokio.block_on(r.pull_images())?;
            Ok(r)
        });
        let mut run = match pulled {
            Ok(r) => r,
            Err(e) => {
                eprintln!("hoist: {e:#}");
                code = 1;
                break;
            }
        };
        match run.start(&stop, several_pods, total > 1) {
            Ok(Prepared::Running) => {}
            Ok(Prepared::InitFailed(c)) => code = c,
            Err(e) => {
                eprintln!("hoist: {e:#}");
                code = 1;
            }
        }
        runs.push(run);
        if code != 0 {
            break;
        }
    }

    // Wait for every container of every pod, or for a signal.
    let mut stopped = false;
    while !runs.iter().all(PodRun::finished) {
        if stop.load(Ordering::Relaxed) && !stopped {
            stopped = true;
            for r in &runs {
                r.stop_all();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for r in &mut runs {
        r.finish_logs();
        let c = r.exit_code();
        if code == 0 {
            code = c;
        }
    }
    for r in runs {
        r.clean_up(args.rm);
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn container_count(pod: &Pod) -> usize {
    pod.spec.as_ref().map_or(0, |s| {
        s.containers.len() + s.init_containers.as_ref().map_or(0, Vec::len)
    })
}

/// Sets `stop` on Ctrl-C or SIGTERM.
async fn watch_signals(stop: Arc<AtomicBool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM will not stop the pods");
            let _ = tokio::signal::ctrl_c().await;
            stop.store(true, Ordering::Relaxed);
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("hoist: stopping the pods");
    stop.store(true, Ordering::Relaxed);
}

/// `hoist monitor DIR`: supervise one container (see `runtime::monitor`).
pub fn monitor(_data_dir: &Path, args: MonitorArgs) -> anyhow::Result<ExitCode> {
    Ok(runtime::monitor::main(&args.state_dir))
}

/// The line to print about a container that did not end well, or `None`.
pub fn describe_exit(name: &str, status: &ContainerStatus) -> Option<String> {
    match status {
        ContainerStatus::Exited { code: 0, .. } => None,
        ContainerStatus::Exited {
            code,
            reason,
            message,
            ..
        } => {
            let extra = message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            Some(format!(
                "container {name:?} exited with code {code} ({reason}){extra}"
            ))
        }
        _ => None,
    }
}

pub(crate) fn log_printer(name: &str, prefix: bool) -> LogPrinter {
    LogPrinter::new(prefix.then(|| format!("[{name}] ")))
}
