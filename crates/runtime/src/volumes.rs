//! A container's `volumeMounts` as bind mounts in its `config.json`.
//!
//! Served volume types:
//! - `emptyDir` (on disk): a directory `<sandbox>/volumes/<name>`, mode 0777 as the kubelet
//!   makes it, shared by the pod's containers and removed with the sandbox. `medium:
//!   Memory` is a tmpfs mounted on that directory when it is first made, so it too is
//!   shared and bounded by `sizeLimit` (default: half the host's memory, the tmpfs default).
//! - `hostPath` with type `""`, `Directory`, `DirectoryOrCreate`, `File` or `FileOrCreate`:
//!   the host path itself, checked (or created) as its type says.
//!
//! Every other volume type (ConfigMap, Secret, projected, PVCs, ...) is refused by name
//! with what hoist serves instead, and so is `subPath`: a container that needs one would
//! otherwise start without its data. Mount destinations are resolved by the OCI runtime
//! inside the rootfs (runc confines them with securejoin), so they need no check here.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use nix::mount::{MsFlags, mount};

use crate::spec::{self, Mount};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(
        "container {container:?}: volumeMounts[{index}] names volume {name:?}, which is not in \
         spec.volumes"
    )]
    Missing {
        container: String,
        index: usize,
        name: String,
    },
    #[error(
        "volume {name:?} is of type {kind}, which hoist does not serve yet; use emptyDir or \
         hostPath"
    )]
    Unsupported { name: String, kind: &'static str },
    #[error(
        "container {container:?}: volumeMounts[{index}].{field} is not supported yet; mount \
         the whole volume instead"
    )]
    UnsupportedField {
        container: String,
        index: usize,
        field: &'static str,
    },
    #[error("volume {name:?}: hostPath {path} {problem}")]
    HostPath {
        name: String,
        path: String,
        problem: String,
    },
    #[error("volume {name:?}: {step} {path}")]
    Io {
        name: String,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The bind mounts for `container`'s volume mounts; emptyDir directories are made under
/// `sandbox_dir/volumes`.
pub fn mounts(
    pod: &Pod,
    container: &Container,
    sandbox_dir: &Path,
) -> Result<Vec<Mount>, VolumeError> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (index, m) in container.volume_mounts.iter().flatten().enumerate() {
        let unsupported = |field| VolumeError::UnsupportedField {
            container: container.name.clone(),
            index,
            field,
        };
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(unsupported("subPath"));
        }
        if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(unsupported("subPathExpr"));
        }
        let volume =
            volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| VolumeError::Missing {
                    container: container.name.clone(),
                    index,
                    name: m.name.clone(),
                })?;
        let source = source_of(volume, sandbox_dir)?;
        let readonly = m.read_only.unwrap_or(false);
        out.push(spec::bind_mount(
            &m.mount_path,
            &source.to_string_lossy(),
            readonly,
        ));
    }
    Ok(out)
}

fn source_of(v: &Volume, sandbox_dir: &Path) -> Result<PathBuf, VolumeError> {
    let io = |step, path: &Path| {
        let (name, path) = (v.name.clone(), path.to_path_buf());
        move |source| VolumeError::Io {
            name,
            step,
            path,
            source,
        }
    };
    if let Some(e) = &v.empty_dir {
        let dir = sandbox_dir.join("volumes").join(&v.name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod", &dir))?;
            if e.medium.as_deref() == Some("Memory") {
                let size = e.size_limit.as_ref().map(|q| q.0.clone());
                let data = match size.map(|s| crate::quantity::value(&s)) {
                    Some(Ok(bytes)) => format!("mode=0777,size={bytes}"),
                    _ => "mode=0777".to_string(),
                };
                mount(
                    Some("tmpfs"),
                    &dir,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(data.as_str()),
                )
                .map_err(|e| io("mounting a tmpfs on", &dir)(e.into()))?;
            }
        }
        return Ok(dir);
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        let bad = |problem: &str| VolumeError::HostPath {
            name: v.name.clone(),
            path: h.path.clone(),
            problem: problem.to_string(),
        };
        if !path.is_absolute() {
            return Err(bad("is not absolute"));
        }
        match h.type_.as_deref().unwrap_or("") {
            "" => {}
            "Directory" if path.is_dir() => {}
            "Directory" => return Err(bad("is not a directory (type Directory)")),
            "DirectoryOrCreate" => {
                std::fs::create_dir_all(&path).map_err(io("creating", &path))?;
            }
            "File" if path.is_file() => {}
            "File" => return Err(bad("is not a file (type File)")),
            "FileOrCreate" => {
                if !path.exists() {
                    std::fs::File::create(&path).map_err(io("creating", &path))?;
                }
            }
            other => {
                let why = format!("has type {other:?}, which hoist does not check yet");
                return Err(bad(&why));
            }
        }
        return Ok(path);
    }
    Err(VolumeError::Unsupported {
        name: v.name.clone(),
        kind: kind_of(v),
    })
}

/// Unmounts the tmpfs of `medium: Memory` emptyDirs under a sandbox directory.
pub fn unmount_all(sandbox_dir: &Path) {
    let dir = sandbox_dir.join("volumes");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let _ = crate::rootfs::unmount(&e.path());
    }
}

fn kind_of(v: &Volume) -> &'static str {
    let kinds: [(&'static str, bool); 10] = [
        ("configMap", v.config_map.is_some()),
        ("secret", v.secret.is_some()),
        ("projected", v.projected.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("nfs", v.nfs.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
    ];
    kinds
        .iter()
        .find(|(_, set)| *set)
        .map_or("unknown", |(k, _)| k)
}
