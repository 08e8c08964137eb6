//! Removing what a killed `hoist run` (or a crash midway through a create) left behind:
//! sandboxes whose owner is gone with their containers, containers without a sandbox,
//! directories whose creation never finished, and runtime state with no container.
//!
//! Each removal goes through the same [`Runtime`] operations as a normal stop, so mounts,
//! namespaces, cgroups and leases are undone the same way. Sandboxes without an owner (the
//! node agent's) are never touched here: they outlive their creator on purpose.

use std::time::Duration;

use crate::sandbox;
use crate::service::{Runtime, RuntimeError};
use crate::state;

/// What [`Runtime::cleanup_orphans`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub sandboxes: usize,
    pub containers: usize,
}

impl Runtime {
    /// Removes orphans; running containers of orphaned sandboxes get `grace` to stop.
    pub fn cleanup_orphans(&self, grace: Duration) -> Result<CleanupReport, RuntimeError> {
        let mut report = CleanupReport::default();
        let sandboxes = self.list_sandboxes();
        for s in sandboxes.iter().filter(|s| s.is_orphan()) {
            tracing::debug!(sandbox = %s.id, pod = %s.pod_name, "removing an orphaned sandbox");
            let n = self
                .list_containers()
                .iter()
                .filter(|c| c.sandbox_id == s.id.as_str())
                .count();
            self.remove_pod_sandbox(s.id.as_str(), grace)?;
            report.sandboxes += 1;
            report.containers += n;
        }
        for dir in sandbox::incomplete(&self.sandboxes_dir()) {
            if !abandoned(&dir) {
                continue;
            }
            sandbox::remove_incomplete(&dir)?;
            report.sandboxes += 1;
        }

        // Containers whose sandbox is gone, and directories a create did not finish.
        let live: Vec<String> = self
            .list_sandboxes()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        for c in self.list_containers() {
            if !live.contains(&c.sandbox_id) {
                self.stop_container(&c.id, grace)?;
                self.remove_container(&c.id)?;
                report.containers += 1;
            }
        }
        let root = self.data_dir().join("containers");
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if !e.path().join(state::RECORD).exists() && abandoned(&e.path()) {
                let id = e.file_name().to_string_lossy().into_owned();
                self.remove_container(&id)?;
                report.containers += 1;
            }
        }

        // Runtime state whose container directory is gone (killed during a remove).
        for id in self.oci().list() {
            if !self.container_dir(&id).exists() {
                let _ = self.oci().delete(&id);
            }
        }
        // Leases of containers that no longer exist.
        let leases = self.data_dir().join("leases");
        for e in std::fs::read_dir(&leases).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !self.container_dir(&id).exists() && abandoned(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(report)
    }
}

/// How long a directory without its record may be in the making before it counts as left
/// behind: another process may be creating it right now.
const CREATE_WINDOW: Duration = Duration::from_secs(60);

fn abandoned(path: &std::path::Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > CREATE_WINDOW))
}
