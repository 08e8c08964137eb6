//! [`Runtime`]: the API that `hoist run` and the node agent use, shaped like CRI's
//! RuntimeService (run and remove a pod sandbox; create, start, stop, remove and inspect
//! containers in it).
//!
//! Layout in the data directory:
//! - `sandboxes/<id>/`: see [`crate::sandbox`];
//! - `containers/<id>/`: `record.json`, `status.json`, `bundle/config.json`, the overlay
//!   `bundle/rootfs` with its `upper/` and `work/`, and the runtime's `pid` file;
//! - `pods/<namespace>_<name>_<uid>/<container>/<restart>.log`: CRI logs, the kubelet's
//!   layout under `/var/log/pods`; they outlive the container and go with the pod;
//! - `leases/<container id>`: the image config digest, so `hoist image rm` refuses an
//!   image a container uses;
//! - `runc/`: the OCI runtime's own state root.
//!
//! The monitor of each container is a separate process (see [`crate::monitor`]), so
//! containers keep running when the process holding a `Runtime` exits or dies.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use oci::ImageConfig;

use crate::bundle::{self, BundleError, BundleInput};
use crate::ids::Id;
use crate::logs::Rotation;
use crate::oci_runtime::{OciError, OciRuntime, RuntimeKind};
use crate::sandbox::{self, SandboxConfig, SandboxError, SandboxRecord};
use crate::state::{self, ContainerRecord, ContainerStatus};
use crate::{cgroups, rootfs, time, volumes};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no container {id} in this data directory")]
    NoContainer { id: String },
    #[error("starting the monitor for container {id}")]
    SpawnMonitor {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container {name:?} did not start: {message}")]
    StartFailed { name: String, message: String },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io { step, path, source }
}

/// How to start a container's monitor: a program and its leading arguments; the
/// container's state directory is appended.
#[derive(Debug, Clone)]
pub struct MonitorCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl MonitorCommand {
    /// The running `hoist` binary in its hidden `monitor` mode.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(MonitorCommand {
            program: std::env::current_exe()?,
            args: vec!["monitor".into()],
        })
    }
}

/// What one container is made from.
pub struct ContainerRequest<'a> {
    pub sandbox: &'a SandboxRecord,
    pub pod: &'a Pod,
    pub container: &'a Container,
    /// The image as the pod spec names it.
    pub image: &'a str,
    /// The image ID (config digest) and its config.
    pub image_id: &'a str,
    pub image_config: &'a ImageConfig,
    /// The image's snapshot directories, top layer first.
    pub lowers: &'a [PathBuf],
    /// How many times this container ran before in this pod.
    pub restart: u32,
}

pub struct Runtime {
    data_dir: PathBuf,
    oci: OciRuntime,
    monitor: MonitorCommand,
    cgroups: cgroups::Mode,
    swap_limit: bool,
    log_rotation: Rotation,
}

impl Runtime {
    /// Finds the OCI runtime and prepares the data directory's layout.
    pub fn new(
        data_dir: &Path,
        kind: RuntimeKind,
        monitor: MonitorCommand,
    ) -> Result<Self, RuntimeError> {
        for sub in ["sandboxes", "containers", "pods", "leases", "runc"] {
            let dir = data_dir.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        }
        let oci = OciRuntime::locate(kind, &data_dir.join("runc"))?;
        let mode = cgroups::detect();
        Ok(Runtime {
            data_dir: data_dir.to_path_buf(),
            oci,
            monitor,
            cgroups: mode,
            swap_limit: cgroups::swap_limit_supported(mode),
            log_rotation: Rotation::default(),
        })
    }

    /// How the logs of containers created from now on are rotated (10 MiB × 5 files
    /// unless set).
    pub fn set_log_rotation(&mut self, rotation: Rotation) {
        self.log_rotation = rotation;
    }

    pub fn oci(&self) -> &OciRuntime {
        &self.oci
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn sandboxes_dir(&self) -> PathBuf {
        self.data_dir.join("sandboxes")
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("containers").join(id)
    }

    pub(crate) fn lease_path(&self, id: &str) -> PathBuf {
        self.data_dir.join("leases").join(id)
    }

    /// The directory of a pod's log files, as the kubelet names it.
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.data_dir
            .join("pods")
            .join(format!("{namespace}_{name}_{uid}"))
    }

    /// Creates the pod's sandbox.
    pub fn run_pod_sandbox(&self, cfg: &SandboxConfig) -> Result<SandboxRecord, RuntimeError> {
        Ok(sandbox::create(&self.sandboxes_dir(), cfg)?)
    }

    /// Every sandbox of this data directory.
    pub fn list_sandboxes(&self) -> Vec<SandboxRecord> {
        sandbox::list(&self.sandboxes_dir())
    }

    /// Stops the sandbox's containers (SIGTERM, SIGKILL after `grace`), removes them and
    /// then the sandbox. Log files stay; [`Runtime::remove_pod_logs`] removes them.
    pub fn remove_pod_sandbox(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let containers: Vec<_> = self
            .list_containers()
            .into_iter()
            .filter(|c| c.sandbox_id == id)
            .collect();
        for c in &containers {
            self.stop_container(&c.id, grace)?;
        }
        for c in &containers {
            self.remove_container(&c.id)?;
        }
        Ok(sandbox::remove(&self.sandboxes_dir(), id)?)
    }

    /// Deletes a pod's log directory.
    pub fn remove_pod_logs(&self, namespace: &str, name: &str, uid: &str) {
        let dir = self.pod_log_dir(namespace, name, uid);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "pod logs left behind");
        }
    }

    /// Mounts the container's rootfs, writes its bundle and record; nothing runs yet.
    /// Nothing is left behind on failure.
    pub fn create_container(
        &self,
        req: &ContainerRequest<'_>,
    ) -> Result<ContainerRecord, RuntimeError> {
        let id = Id::random();
        let dir = self.container_dir(id.as_str());
        let made = self.make_container(&id, &dir, req);
        if made.is_err() {
            let _ = rootfs::unmount(&dir.join("bundle/rootfs"));
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_file(self.lease_path(id.as_str()));
        }
        made
    }

    fn make_container(
        &self,
        id: &Id,
        dir: &Path,
        req: &ContainerRequest<'_>,
    ) -> Result<ContainerRecord, RuntimeError> {
        let bundle_dir = dir.join("bundle");
        let rootfs_dir = bundle_dir.join("rootfs");
        rootfs::mount_overlay(
            req.lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &rootfs_dir,
        )?;

        let cgroups_path = cgroups::cgroups_path(self.cgroups, id.as_str());
        let sandbox_dir = self.sandboxes_dir().join(req.sandbox.id.as_str());
        let volume_mounts = volumes::mounts(req.pod, req.container, &sandbox_dir)?;
        let spec = bundle::generate(&BundleInput {
            pod: req.pod,
            container: req.container,
            image: req.image_config,
            rootfs: &rootfs_dir,
            namespaces: &req.sandbox.namespaces,
            hostname: req.sandbox.container_hostname(),
            cgroups_path: cgroups_path.clone(),
            swap_limit: self.swap_limit,
            volume_mounts: &volume_mounts,
        })?;
        let config = bundle_dir.join("config.json");
        let json = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other);
        json.and_then(|j| std::fs::write(&config, j))
            .map_err(io_err("writing", &config))?;

        let s = req.sandbox;
        let log_dir = self
            .pod_log_dir(&s.namespace, &s.pod_name, &s.pod_uid)
            .join(&req.container.name);
        std::fs::create_dir_all(&log_dir).map_err(io_err("creating", &log_dir))?;
        let log_path = log_dir.join(format!("{}.log", req.restart));
        // A log of an earlier run with the same number (a retried start) starts afresh.
        let _ = std::fs::remove_file(&log_path);
        for rotated in crate::logs::rotated_files(&log_path) {
            let _ = std::fs::remove_file(rotated);
        }

        let record = ContainerRecord {
            id: id.to_string(),
            name: req.container.name.clone(),
            pod_uid: s.pod_uid.clone(),
            sandbox_id: s.id.to_string(),
            image: req.image.to_string(),
            image_id: req.image_id.to_string(),
            restart: req.restart,
            created_at: time::now(),
            bundle: bundle_dir,
            log_path,
            log_rotation: Some(self.log_rotation),
            cgroups_path,
            runtime: self.oci.clone(),
        };
        let lease = self.lease_path(id.as_str());
        std::fs::write(&lease, req.image_id).map_err(io_err("writing", &lease))?;
        let path = dir.join(state::RECORD);
        state::write_json_atomic(&path, &record).map_err(io_err("writing", &path))?;
        let path = dir.join(state::STATUS);
        state::write_json_atomic(&path, &ContainerStatus::Created)
            .map_err(io_err("writing", &path))?;
        tracing::debug!(container = %record.name, id = %record.id, "container created");
        Ok(record)
    }

    /// Starts the container under its monitor and returns once it runs, or with the
    /// runtime's reason when it could not start.
    pub fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let record = self.container(id)?;
        let dir = self.container_dir(id);
        let out = Command::new(&self.monitor.program)
            .args(&self.monitor.args)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::SpawnMonitor {
                id: id.to_string(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let message = match self.container_status(id) {
            Ok(ContainerStatus::Exited {
                message: Some(m), ..
            }) => m,
            _ => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        };
        Err(RuntimeError::StartFailed {
            name: record.name,
            message,
        })
    }

    /// The container's record.
    pub fn container(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        let path = self.container_dir(id).join(state::RECORD);
        state::read_json(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NoContainer { id: id.to_string() },
            _ => RuntimeError::Io {
                step: "reading",
                path,
                source: e,
            },
        })
    }

    /// The container's state as its monitor last recorded it.
    pub fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let path = self.container_dir(id).join(state::STATUS);
        state::read_json(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NoContainer { id: id.to_string() },
            _ => RuntimeError::Io {
                step: "reading",
                path,
                source: e,
            },
        })
    }

    /// Every container of this data directory.
    pub fn list_containers(&self) -> Vec<ContainerRecord> {
        let root = self.data_dir.join("containers");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| state::read_json(&e.path().join(state::RECORD)).ok())
            .collect()
    }

    /// Waits until the container has exited, polling its status; `None` on timeout.
    pub fn wait_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<ContainerStatus>, RuntimeError> {
        let started = Instant::now();
        loop {
            let status = self.container_status(id)?;
            if status.is_exited() {
                return Ok(Some(status));
            }
            if let ContainerStatus::Running { pid, .. } = status
                && !Path::new(&format!("/proc/{pid}")).exists()
                && !self.monitor_alive(id)
            {
                // The monitor died with its container (killed with it): record the loss.
                return Ok(Some(self.record_lost(id)?));
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the container's monitor process (recorded by itself) still exists.
    fn monitor_alive(&self, id: &str) -> bool {
        let path = self.container_dir(id).join(state::MONITOR);
        match state::read_json::<crate::ids::Owner>(&path) {
            Ok(owner) => owner.is_alive(),
            // Not recorded yet: the monitor is still starting.
            Err(_) => true,
        }
    }

    fn record_lost(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let status = ContainerStatus::Exited {
            code: 255,
            reason: "Error".into(),
            message: Some("the container's monitor died; its exit code is unknown".into()),
            finished_at: time::now(),
        };
        let path = self.container_dir(id).join(state::STATUS);
        state::write_json_atomic(&path, &status).map_err(io_err("writing", &path))?;
        Ok(status)
    }

    /// Sends SIGTERM, then SIGKILL after `grace`, and waits for the exit to be recorded.
    /// A container that is not running is left as it is.
    pub fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let status = self.container_status(id)?;
        if !matches!(status, ContainerStatus::Running { .. }) {
            return Ok(());
        }
        tracing::debug!(
            id,
            grace_ms = grace.as_millis() as u64,
            "stopping container"
        );
        if !grace.is_zero() {
            if let Err(e) = self.oci.kill(id, "TERM") {
                tracing::debug!(id, error = %e, "SIGTERM not delivered");
            }
            if self.wait_container(id, Some(grace))?.is_some() {
                return Ok(());
            }
        }
        if let Err(e) = self.oci.kill(id, "KILL") {
            tracing::debug!(id, error = %e, "SIGKILL not delivered");
        }
        if self
            .wait_container(id, Some(Duration::from_secs(10)))?
            .is_none()
        {
            tracing::warn!(id, "container still running 10 s after SIGKILL");
        }
        Ok(())
    }

    /// Removes a stopped container: the runtime's state, its cgroups, the rootfs mount,
    /// its directory and its image lease. Its log file stays with the pod.
    pub fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.container_dir(id);
        if let Ok(record) = self.container(id) {
            if matches!(
                self.container_status(id),
                Ok(ContainerStatus::Running { .. })
            ) {
                self.stop_container(id, Duration::ZERO)?;
            }
            if self.oci.list().iter().any(|c| c == id) {
                let _ = self.oci.delete(id);
            }
            cgroups::remove(&cgroups::paths_for(&record.cgroups_path));
        }
        let rootfs_dir = dir.join("bundle/rootfs");
        rootfs::unmount(&rootfs_dir).map_err(io_err("unmounting", &rootfs_dir))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &dir)(e)),
        }
        let _ = std::fs::remove_file(self.lease_path(id));
        tracing::debug!(id, "container removed");
        Ok(())
    }
}
