//! Pod sandboxes: the network, IPC and UTS namespaces a pod's containers share.
//!
//! A sandbox is a directory `<data>/sandboxes/<id>/` with `sandbox.json` (a
//! [`SandboxRecord`]) and `ns/{net,ipc,uts}`, each an nsfs bind mount that keeps its
//! namespace alive with no process in it, as the kubelet's pause container would (hoist has
//! no pause process). The namespaces are made by a short-lived thread that unshares them,
//! names the UTS namespace after the pod, brings `lo` up, and bind-mounts its own
//! `/proc/thread-self/ns/*` onto those files; the thread then ends, and containers join the
//! namespaces by path (`linux.namespaces[].path` in their `config.json`).
//!
//! `hostNetwork: true` keeps the host's network and UTS namespaces (the kubelet also gives
//! such pods the node's hostname); IPC stays the pod's own.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::bundle::SandboxNamespaces;
use crate::ids::{Id, Owner};
use crate::{netlink, rootfs, state, time};

pub const SANDBOX_FILE: &str = "sandbox.json";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("creating the sandbox directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the sandbox namespaces: {step}")]
    Namespace {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread creating the sandbox namespaces panicked")]
    Panicked,
    #[error("writing the sandbox record {path}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing the sandbox {id}: unmounting {path}")]
    Unmount {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing the sandbox directory {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a sandbox is made for.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub pod_uid: String,
    pub pod_name: String,
    pub namespace: String,
    /// The hostname inside the pod (the pod's name; `hostname` in its spec if set).
    pub hostname: String,
    pub host_network: bool,
    /// The process whose death makes this sandbox an orphan (`hoist run`); `None` for
    /// sandboxes that outlive their creator (the node agent's).
    pub owner: Option<Owner>,
}

/// A sandbox as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: Id,
    pub pod_uid: String,
    pub pod_name: String,
    pub namespace: String,
    pub hostname: String,
    pub host_network: bool,
    pub namespaces: SandboxNamespaces,
    pub owner: Option<Owner>,
    pub created_at: String,
}

impl SandboxRecord {
    /// Whether the process that owns this sandbox is gone.
    pub fn is_orphan(&self) -> bool {
        self.owner.is_some_and(|o| !o.is_alive())
    }

    /// The hostname containers get: the pod's, or `None` on the host's UTS namespace.
    pub fn container_hostname(&self) -> Option<&str> {
        self.namespaces.uts.as_ref().map(|_| self.hostname.as_str())
    }
}

/// Creates a sandbox under `root` (`<data>/sandboxes`). Nothing is left behind on failure.
pub fn create(root: &Path, cfg: &SandboxConfig) -> Result<SandboxRecord, SandboxError> {
    let id = Id::random();
    let dir = root.join(id.as_str());
    let ns_dir = dir.join("ns");
    std::fs::create_dir_all(&ns_dir).map_err(|source| SandboxError::Dir {
        path: ns_dir.clone(),
        source,
    })?;

    let mut kinds = vec![("ipc", CloneFlags::CLONE_NEWIPC)];
    if !cfg.host_network {
        kinds.push(("net", CloneFlags::CLONE_NEWNET));
        kinds.push(("uts", CloneFlags::CLONE_NEWUTS));
    }
    let hostname = (!cfg.host_network).then(|| cfg.hostname.clone());
    let targets: Vec<(&'static str, CloneFlags, PathBuf)> = kinds
        .iter()
        .map(|(name, flag)| (*name, *flag, ns_dir.join(name)))
        .collect();

    let made = std::thread::scope(|s| {
        s.spawn(|| pin_namespaces(&targets, hostname.as_deref()))
            .join()
            .unwrap_or(Err(SandboxError::Panicked))
    });
    let path_of = |name: &str| {
        targets
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, p)| p.clone())
    };
    let record = SandboxRecord {
        id,
        pod_uid: cfg.pod_uid.clone(),
        pod_name: cfg.pod_name.clone(),
        namespace: cfg.namespace.clone(),
        hostname: cfg.hostname.clone(),
        host_network: cfg.host_network,
        namespaces: SandboxNamespaces {
            network: path_of("net"),
            ipc: path_of("ipc"),
            uts: path_of("uts"),
        },
        owner: cfg.owner,
        created_at: time::now(),
    };
    let written = made.and_then(|()| {
        let path = dir.join(SANDBOX_FILE);
        state::write_json_atomic(&path, &record)
            .map_err(|source| SandboxError::Record { path, source })
    });
    if let Err(e) = written {
        let _ = remove_dir(&dir, record.id.as_str());
        return Err(e);
    }
    tracing::debug!(sandbox = %record.id, pod = %record.pod_name, "sandbox created");
    Ok(record)
}

/// Runs on a thread of its own: unshares the namespaces, sets them up and pins each by a
/// bind mount. Namespaces a thread unshares are its own (its process keeps the old ones).
fn pin_namespaces(
    targets: &[(&'static str, CloneFlags, PathBuf)],
    hostname: Option<&str>,
) -> Result<(), SandboxError> {
    let err = |step| {
        move |e: nix::errno::Errno| SandboxError::Namespace {
            step,
            source: e.into(),
        }
    };
    let flags = targets
        .iter()
        .fold(CloneFlags::empty(), |acc, (_, f, _)| acc | *f);
    nix::sched::unshare(flags).map_err(err("unshare"))?;
    if let Some(h) = hostname {
        nix::unistd::sethostname(h).map_err(err("sethostname"))?;
    }
    if targets.iter().any(|(n, _, _)| *n == "net") {
        netlink::loopback_up().map_err(|source| SandboxError::Namespace {
            step: "bringing lo up",
            source,
        })?;
    }
    for (name, _, target) in targets {
        std::fs::File::create(target).map_err(|source| SandboxError::Namespace {
            step: "creating a namespace file",
            source,
        })?;
        let source = format!("/proc/thread-self/ns/{name}");
        mount(
            Some(source.as_str()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(err("bind-mounting a namespace"))?;
    }
    Ok(())
}

/// Unmounts a sandbox's namespaces and deletes its directory. A sandbox already gone is
/// not an error.
pub fn remove(root: &Path, id: &str) -> Result<(), SandboxError> {
    remove_dir(&root.join(id), id)
}

fn remove_dir(dir: &Path, id: &str) -> Result<(), SandboxError> {
    crate::volumes::unmount_all(dir);
    for name in ["net", "ipc", "uts"] {
        let path = dir.join("ns").join(name);
        rootfs::unmount(&path).map_err(|source| SandboxError::Unmount {
            id: id.to_string(),
            path: path.clone(),
            source,
        })?;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SandboxError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Every sandbox recorded under `root`; unreadable records are skipped with a warning.
pub fn list(root: &Path) -> Vec<SandboxRecord> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path().join(SANDBOX_FILE);
        match state::read_json::<SandboxRecord>(&path) {
            Ok(r) => out.push(r),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A sandbox whose creation was cut short: nothing but its directory.
                tracing::debug!(dir = %e.path().display(), "sandbox without a record");
            }
            Err(err) => tracing::warn!(path = %path.display(), error = %err, "bad sandbox record"),
        }
    }
    out
}

/// Sandbox directories under `root` that have no record (creation was killed midway).
pub fn incomplete(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.join(SANDBOX_FILE).exists())
        .collect()
}

/// Removes a directory left by a killed sandbox creation.
pub fn remove_incomplete(dir: &Path) -> Result<(), SandboxError> {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_dir(dir, &id)
}
