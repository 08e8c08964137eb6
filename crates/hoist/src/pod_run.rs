//! One pod of a `hoist run`: its images, its sandbox, its containers and their logs, from
//! pull to clean-up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use image::{EnsureOutcome, PullPolicy, Store};
use k8s_openapi::api::core::v1::{Container, Pod};
use oci::Platform;
use runtime::{
    ContainerRequest, ContainerStatus, Owner, Runtime, SandboxConfig, SandboxRecord, state,
};

use crate::follow;
use crate::progress::{self, human_size};
use crate::run_cmd::{RunArgs, describe_exit, log_printer};

/// The kubelet's default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: i64 = 30;

pub enum Prepared {
    /// The app containers were started.
    Running,
    /// An init container failed with this exit code; no app container was started.
    InitFailed(i32),
}

struct Started {
    name: String,
    id: String,
    printer: Option<JoinHandle<()>>,
}

pub struct PodRun<'a> {
    rt: &'a Runtime,
    data_dir: PathBuf,
    pod: Pod,
    name: String,
    namespace: String,
    uid: String,
    authfile: Option<PathBuf>,
    platform: Platform,
    images: HashMap<String, EnsureOutcome>,
    sandbox: Option<SandboxRecord>,
    containers: Vec<Started>,
    grace: Duration,
}

impl<'a> PodRun<'a> {
    pub fn new(
        rt: &'a Runtime,
        data_dir: &Path,
        mut pod: Pod,
        args: &RunArgs,
    ) -> anyhow::Result<Self> {
        let platform = match &args.platform {
            Some(p) => Platform::parse(p).context("--platform")?,
            None => Platform::host(),
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .get_or_insert_with(|| "default".into())
            .clone();
        let uid = pod.metadata.uid.get_or_insert_with(new_uid).clone();
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE)
            .max(0);
        Ok(PodRun {
            rt,
            data_dir: data_dir.to_path_buf(),
            pod,
            name,
            namespace,
            uid,
            authfile: args.authfile.clone(),
            platform,
            images: HashMap::new(),
            sandbox: None,
            containers: Vec::new(),
            grace: Duration::from_secs(grace as u64),
        })
    }

    fn all_containers(&self) -> Vec<Container> {
        let Some(spec) = &self.pod.spec else {
            return Vec::new();
        };
        let init = spec.init_containers.iter().flatten();
        init.chain(&spec.containers).cloned().collect()
    }

    /// Makes each image present as its container's `imagePullPolicy` says.
    pub async fn pull_images(&mut self) -> anyhow::Result<()> {
        let store = Store::open(&self.data_dir).context("open the image store")?;
        let options = registry::ClientOptions::load(&self.data_dir, self.authfile.as_deref())
            .context("load registry settings and credentials")?;
        let client = registry::Client::new(options).context("create the registry client")?;
        for c in self.all_containers() {
            let image = c.image.clone().unwrap_or_default();
            let policy: PullPolicy = c
                .image_pull_policy
                .as_deref()
                .unwrap_or(podspec::default_pull_policy(&image))
                .parse()
                .map_err(anyhow::Error::msg)?;
            if self.images.contains_key(&image) {
                continue;
            }
            let progress = progress::for_stderr();
            let outcome = image::ensure(
                &store,
                &client,
                &image,
                policy,
                &self.platform,
                progress.as_ref(),
            )
            .await;
            drop(progress);
            let outcome = outcome
                .map_err(|e| anyhow::anyhow!("pod {:?}: {} ({})", self.name, e, e.reason()))?;
            if outcome.pulled {
                eprintln!(
                    "pulled image {image:?} in {:.1?} ({})",
                    outcome.elapsed,
                    human_size(outcome.size)
                );
            }
            self.images.insert(image, outcome);
        }
        Ok(())
    }

    /// Creates the sandbox, runs the init containers to completion, then starts the app
    /// containers with their logs streaming.
    pub fn start(
        &mut self,
        stop: &AtomicBool,
        several_pods: bool,
        prefix: bool,
    ) -> anyhow::Result<Prepared> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        if spec.restart_policy.as_deref().unwrap_or("Always") != "Never" {
            eprintln!(
                "hoist run: pod {:?} has restartPolicy {}; each container runs once here",
                self.name,
                spec.restart_policy.as_deref().unwrap_or("Always")
            );
        }
        let hostname = spec.hostname.clone().unwrap_or_else(|| self.name.clone());
        let sandbox = self
            .rt
            .run_pod_sandbox(&SandboxConfig {
                pod_uid: self.uid.clone(),
                pod_name: self.name.clone(),
                namespace: self.namespace.clone(),
                hostname,
                host_network: spec.host_network.unwrap_or(false),
                owner: Some(Owner::current()),
            })
            .with_context(|| format!("pod {:?}: create the sandbox", self.name))?;
        self.sandbox = Some(sandbox);

        let label = |c: &Container| {
            if several_pods {
                format!("{}/{}", self.name, c.name)
            } else {
                c.name.clone()
            }
        };
        for c in spec.init_containers.iter().flatten() {
            let started = self.start_one(c, log_printer(&label(c), prefix))?;
            let id = started.id.clone();
            self.containers.push(started);
            let status = loop {
                let s = self.rt.container_status(&id)?;
                if s.is_exited() {
                    break s;
                }
                if stop.load(Ordering::Relaxed) {
                    self.stop_all();
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if let ContainerStatus::Exited { code, .. } = status
                && code != 0
            {
                return Ok(Prepared::InitFailed(code));
            }
        }
        for c in &spec.containers {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let started = self.start_one(c, log_printer(&label(c), prefix))?;
            self.containers.push(started);
        }
        Ok(Prepared::Running)
    }

    fn start_one(&self, c: &Container, printer: follow::LogPrinter) -> anyhow::Result<Started> {
        let image = c.image.clone().unwrap_or_default();
        let outcome = &self.images[&image];
        let config = outcome.record.config().context("read the image config")?;
        let sandbox = self.sandbox.as_ref().context("no sandbox")?;
        let record = self
            .rt
            .create_container(&ContainerRequest {
                sandbox,
                pod: &self.pod,
                container: c,
                image: &image,
                image_id: &outcome.record.config_digest.to_string(),
                image_config: &config,
                lowers: &outcome.record.lower_dirs(),
                restart: 0,
            })
            .with_context(|| format!("pod {:?}: create container {:?}", self.name, c.name))?;
        let status = record
            .bundle
            .parent()
            .map(|d| d.join(state::STATUS))
            .unwrap_or_default();
        let printer = follow::spawn(record.log_path.clone(), status, printer);
        let started = Started {
            name: c.name.clone(),
            id: record.id.clone(),
            printer: Some(printer),
        };
        let begun = Instant::now();
        if let Err(e) = self.rt.start_container(&record.id) {
            // The printer ends by itself: the failed start recorded an exit.
            return Err(e).with_context(|| format!("pod {:?}", self.name));
        }
        tracing::debug!(container = %c.name, ms = begun.elapsed().as_millis() as u64, "started");
        Ok(started)
    }

    /// Whether every container started has exited.
    pub fn finished(&self) -> bool {
        self.containers.iter().all(|c| {
            self.rt
                .container_status(&c.id)
                .map(|s| s.is_exited())
                .unwrap_or(true)
        })
    }

    /// Stops every running container at once, each with the pod's grace period.
    pub fn stop_all(&self) {
        std::thread::scope(|s| {
            for c in &self.containers {
                s.spawn(|| {
                    if let Err(e) = self.rt.stop_container(&c.id, self.grace) {
                        eprintln!("hoist: stop container {:?}: {e}", c.name);
                    }
                });
            }
        });
    }

    /// Waits until every log has been printed.
    pub fn finish_logs(&mut self) {
        for c in &mut self.containers {
            if let Some(p) = c.printer.take() {
                let _ = p.join();
            }
        }
    }

    /// The first non-zero exit code among the containers, in pod order, or 0; says on
    /// stderr how each container that failed ended.
    pub fn exit_code(&self) -> i32 {
        let mut first = 0;
        for c in &self.containers {
            let Ok(status) = self.rt.container_status(&c.id) else {
                continue;
            };
            if let Some(line) = describe_exit(&c.name, &status) {
                eprintln!("hoist: pod {:?}: {line}", self.name);
            }
            if let ContainerStatus::Exited { code, .. } = status
                && first == 0
            {
                first = code;
            }
        }
        first
    }

    /// Removes the sandbox, the containers and (with `rm`) the logs.
    pub fn clean_up(self, rm: bool) {
        let Some(sandbox) = &self.sandbox else {
            return;
        };
        if !rm {
            let dir = self.rt.pod_log_dir(&self.namespace, &self.name, &self.uid);
            eprintln!("hoist: kept pod {:?}: logs in {}", self.name, dir.display());
            return;
        }
        if let Err(e) = self
            .rt
            .remove_pod_sandbox(sandbox.id.as_str(), Duration::ZERO)
        {
            eprintln!("hoist: remove pod {:?}: {e}", self.name);
        }
        self.rt
            .remove_pod_logs(&self.namespace, &self.name, &self.uid);
    }
}

/// A random version 4 UUID, as the API server gives each object.
fn new_uid() -> String {
    let a = runtime::Id::random().to_string();
    let b = runtime::Id::random().to_string();
    let h = format!("{a}{b}");
    let variant = ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)];
    format!(
        "{}-{}-4{}-{variant}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
