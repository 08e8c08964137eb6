//! What hoist keeps on disk for a container, shared by the [`crate::Runtime`] that
//! creates it and the [`crate::monitor`] that runs it.
//!
//! `<data>/containers/<id>/record.json` is written once at creation; `status.json` is
//! rewritten by the monitor (to a temporary file, fsynced, renamed), so a reader sees
//! either the old or the new status, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci_runtime::OciRuntime;

pub const RECORD: &str = "record.json";
pub const STATUS: &str = "status.json";
/// The monitor's own [`crate::ids::Owner`], written by the monitor once it has detached.
pub const MONITOR: &str = "monitor.json";

/// How a container was created: what the monitor needs to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub pod_uid: String,
    /// The sandbox whose namespaces the container joins.
    pub sandbox_id: String,
    /// The image as the pod spec names it, and the image ID (config digest) it ran.
    pub image: String,
    pub image_id: String,
    /// How many times this container of this pod ran before (its restart count).
    pub restart: u32,
    pub created_at: String,
    pub bundle: PathBuf,
    pub log_path: PathBuf,
    /// How the monitor rotates the log; `None` (records of before rotation) never rotates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rotation: Option<crate::logs::Rotation>,
    pub cgroups_path: String,
    pub runtime: OciRuntime,
}

/// The container's state as the monitor last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ContainerStatus {
    /// Bundle and rootfs are ready; nothing runs yet.
    Created,
    Running {
        pid: i32,
        started_at: String,
    },
    Exited {
        code: i32,
        /// `Completed`, `Error`, `OOMKilled`, or `StartError` when it never ran.
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        finished_at: String,
    },
}

impl ContainerStatus {
    pub fn is_exited(&self) -> bool {
        matches!(self, ContainerStatus::Exited { .. })
    }
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
