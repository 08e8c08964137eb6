//! Cgroups as hoist needs them: which layout the host has, where a container's cgroups
//! are, whether the kernel OOM-killed in them, and removing what a runtime left behind.
//!
//! The OCI runtime creates the cgroups and applies the limits from `config.json`; hoist
//! picks `linux.cgroupsPath` as the absolute `/hoist/<id>` on every layout (v1, hybrid
//! with a controller-less v2 at `/sys/fs/cgroup/unified`, pure v2: v2 forbids enabling
//! controllers below a cgroup that holds processes, so the path must not be below hoist's
//! own), and finds the directories again under every cgroup mount of the host, which
//! covers each v1 hierarchy and the v2 one alike.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// v1 controller hierarchies plus a v2 hierarchy without controllers.
    Hybrid,
    /// The unified v2 hierarchy at `/sys/fs/cgroup`.
    V2,
}

struct MountEntry {
    point: PathBuf,
    fs: String,
    super_opts: String,
}

fn cgroup_mounts() -> Vec<MountEntry> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fs = r.next()?.to_string();
            let super_opts = r.nth(1).unwrap_or("").to_string();
            (fs == "cgroup" || fs == "cgroup2").then(|| MountEntry {
                point: PathBuf::from(point.replace("\\040", " ")),
                fs,
                super_opts,
            })
        })
        .collect()
}

/// The host's cgroup layout, read from the mount table.
pub fn detect() -> Mode {
    let mounts = cgroup_mounts();
    if mounts
        .iter()
        .any(|m| m.fs == "cgroup2" && m.point == Path::new("/sys/fs/cgroup"))
    {
        Mode::V2
    } else if mounts.iter().any(|m| m.fs == "cgroup2") {
        Mode::Hybrid
    } else {
        Mode::V1
    }
}

/// The `linux.cgroupsPath` for a container on a host of `mode`.
pub fn cgroups_path(_mode: Mode, container: &str) -> String {
    format!("/{PARENT}/{container}")
}

/// The cgroup directory all of hoist's containers live under, in every hierarchy.
pub const PARENT: &str = "hoist";

/// The directories a container's `cgroups_path` (absolute) names, one per cgroup mount.
pub fn paths_for(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    cgroup_mounts().iter().map(|m| m.point.join(rel)).collect()
}

/// The container directories under [`PARENT`] in every hierarchy, by container id.
pub fn all_containers() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for m in cgroup_mounts() {
        let Ok(entries) = std::fs::read_dir(m.point.join(PARENT)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
            }
        }
    }
    out
}

/// Whether the host can limit memory plus swap (v2, or v1 with swap accounting).
pub fn swap_limit_supported(mode: Mode) -> bool {
    match mode {
        Mode::V2 => true,
        Mode::V1 | Mode::Hybrid => cgroup_mounts().iter().any(|m| {
            m.fs == "cgroup"
                && m.super_opts.split(',').any(|o| o == "memory")
                && m.point.join("memory.memsw.limit_in_bytes").exists()
        }),
    }
}

/// The cgroup directories `pid` is in, one per hierarchy, from `/proc/<pid>/cgroup`.
pub fn paths_of(pid: i32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mounts = cgroup_mounts();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mount = if controllers.is_empty() {
            mounts.iter().find(|m| m.fs == "cgroup2")
        } else {
            mounts.iter().find(|m| {
                m.fs == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| m.super_opts.split(',').any(|o| o == c))
            })
        };
        if let Some(m) = mount {
            out.push(m.point.join(path.trim_start_matches('/')));
        }
    }
    out
}

/// How many times the kernel's OOM killer struck in these cgroups (v1 `memory.oom_control`
/// or v2 `memory.events`, field `oom_kill`).
pub fn oom_kills(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .flat_map(|p| [p.join("memory.oom_control"), p.join("memory.events")])
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Removes these cgroup directories if the runtime left them (they must be empty of
/// processes; a busy one is retried briefly, then left with a warning).
pub fn remove(paths: &[PathBuf]) {
    for p in paths {
        for attempt in 0..50 {
            match std::fs::remove_dir(p) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt == 49 => {
                    tracing::warn!(path = %p.display(), error = %e, "cgroup left behind");
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
}
