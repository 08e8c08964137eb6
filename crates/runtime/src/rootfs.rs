//! A container's root filesystem: an overlayfs mount of the image's snapshot directories
//! with a per-container upper and work directory, and path resolution confined to it.
//!
//! Lower directories are given top-first, the order overlayfs's `lowerdir=` option takes
//! (the image's last layer first). Paths the image config names (`WorkingDir`, `Volumes`)
//! are hostile input: [`resolve_in_root`] follows their symlinks the way the kernel would
//! inside the container, but never out of the rootfs, and refuses anything that lands in
//! `/proc`, `/sys` or `/dev`, where a path like `/proc/self/fd/N` would reach a file
//! descriptor of the runtime's on the host (CVE-2024-21626, which runc 1.1.5 has).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

/// Pseudo-filesystems a container path given by an image must not reach.
const FORBIDDEN: &[&str] = &["/proc", "/sys", "/dev"];

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mounting the overlay rootfs at {target}: lowerdir option too long ({len} bytes)")]
    TooManyLowers { target: PathBuf, len: usize },
    #[error("mounting the overlay rootfs at {target} (lowers {lowers})")]
    Mount {
        target: PathBuf,
        lowers: String,
        #[source]
        source: Errno,
    },
    #[error("a rootfs needs at least one lower directory (the image's snapshots)")]
    NoLowers,
    #[error("creating {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} {path:?} is not an absolute path without `..` inside the container; an \
         image must name paths like /app/data"
    )]
    NotConfined { what: &'static str, path: String },
    #[error(
        "{what} {path:?} resolves to {resolved:?}, inside {forbidden}, which a container path \
         from an image may not reach"
    )]
    Forbidden {
        what: &'static str,
        path: String,
        resolved: String,
        forbidden: &'static str,
    },
    #[error("resolving {what} {path:?} in the rootfs")]
    Resolve {
        what: &'static str,
        path: String,
        #[source]
        source: Errno,
    },
}

/// Mounts an overlay of `lowers` (top-first) at `target` with `upper` and `work`, which
/// are created if missing.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), RootfsError> {
    if lowers.is_empty() {
        return Err(RootfsError::NoLowers);
    }
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(|source| RootfsError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let lowerdir: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    let lowerdir = lowerdir.join(":");
    let data = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        escape(upper),
        escape(work)
    );
    // The kernel takes mount data of at most one page.
    if data.len() >= 4096 {
        return Err(RootfsError::TooManyLowers {
            target: target.to_path_buf(),
            len: data.len(),
        });
    }
    tracing::debug!(target = %target.display(), lowers = lowers.len(), "mounting overlay");
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|source| RootfsError::Mount {
        target: target.to_path_buf(),
        lowers: lowerdir,
        source,
    })
}

/// overlayfs splits its options on `,` and lower dirs on `:`; both are escaped with `\`.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Unmounts `target` (lazily, so a process still holding it cannot keep it mounted);
/// succeeds if it was not mounted.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` is a mount point, by the mount table.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Checks that `path` is absolute and has no `..`, returning it with `.` and repeated
/// slashes removed.
pub fn clean(what: &'static str, path: &str) -> Result<PathBuf, RootfsError> {
    let bad = || RootfsError::NotConfined {
        what,
        path: path.to_string(),
    };
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad());
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    Ok(out)
}

/// Resolves the container path `path` (checked by [`clean`]) inside `rootfs` as the
/// container would see it, following symlinks but never out of `rootfs`. A missing tail is
/// kept as written. Refuses results inside `/proc`, `/sys` or `/dev`.
pub fn resolve_in_root(
    rootfs: &Path,
    what: &'static str,
    path: &str,
) -> Result<PathBuf, RootfsError> {
    let cleaned = clean(what, path)?;
    let root = std::fs::File::open(rootfs).map_err(|e| RootfsError::Create {
        path: rootfs.to_path_buf(),
        source: e,
    })?;
    let err = |source| RootfsError::Resolve {
        what,
        path: path.to_string(),
        source,
    };
    let resolved = resolve_components(&root, rootfs, &cleaned, 0).map_err(|e| match e {
        Resolved::Escapes => RootfsError::NotConfined {
            what,
            path: path.to_string(),
        },
        Resolved::Errno(source) => err(source),
    })?;

    // A missing path is resolved again by the runtime in the running container, where a
    // still-missing tail cannot be a symlink; only the existing prefix can redirect.
    for f in FORBIDDEN {
        if resolved.starts_with(f) {
            return Err(RootfsError::Forbidden {
                what,
                path: path.to_string(),
                resolved: resolved.to_string_lossy().into_owned(),
                forbidden: f,
            });
        }
    }
    Ok(resolved)
}

/// Symlinks followed by hand before giving up, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: u32 = 40;

enum Resolved {
    /// A missing tail that a symlink's target made climb with `..`.
    Escapes,
    Errno(Errno),
}

/// Resolves `path` (absolute; `..` only where a symlink's target put it) below `root`.
///
/// The kernel resolves the longest prefix that exists, confined by `RESOLVE_IN_ROOT`. A
/// prefix that ends in a dangling symlink still redirects the path in the container (the
/// runtime would create the directory where the link points), so its target is spliced in
/// and resolved again.
fn resolve_components(
    root: &std::fs::File,
    rootfs: &Path,
    path: &Path,
    links: u32,
) -> Result<PathBuf, Resolved> {
    let components: Vec<_> = path.components().skip(1).collect();
    for n in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..n].iter().collect();
        match open_in_root(root, &prefix, true) {
            Ok(fd) => {
                let mut resolved = real_path(&fd, rootfs).map_err(Resolved::Errno)?;
                return append_missing(&mut resolved, &components[n..]).map(|()| resolved);
            }
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(e) => return Err(Resolved::Errno(e)),
        }
        let Some(target) = dangling_target(root, &prefix) else {
            continue;
        };
        if links >= MAX_LINKS {
            return Err(Resolved::Errno(Errno::ELOOP));
        }
        let mut next = if target.is_absolute() {
            target
        } else {
            let parent: PathBuf = components[..n - 1].iter().collect();
            Path::new("/").join(parent).join(target)
        };
        next.extend(&components[n..]);
        return resolve_components(root, rootfs, &next, links + 1);
    }
    let mut resolved = PathBuf::from("/");
    append_missing(&mut resolved, &components).map(|()| resolved)
}

/// Appends the part of a path that does not exist; a `..` there (from a symlink's target)
/// could climb anywhere once the runtime creates the directories, so it is refused.
fn append_missing(resolved: &mut PathBuf, tail: &[Component<'_>]) -> Result<(), Resolved> {
    for c in tail {
        match c {
            Component::Normal(n) => resolved.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(Resolved::Escapes),
        }
    }
    Ok(())
}

/// The target of `rel` if it is a symlink (its parent resolved confined to the root).
fn dangling_target(root: &std::fs::File, rel: &Path) -> Option<PathBuf> {
    let fd = open_in_root(root, rel, false).ok()?;
    let target = nix::fcntl::readlinkat(&fd, "").ok()?;
    Some(PathBuf::from(target))
}

fn open_in_root(root: &std::fs::File, rel: &Path, follow: bool) -> Result<OwnedFd, Errno> {
    let nofollow = if follow {
        OFlag::empty()
    } else {
        OFlag::O_NOFOLLOW
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | nofollow)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// The container path of an fd opened beneath `rootfs`.
fn real_path(fd: &OwnedFd, rootfs: &Path) -> Result<PathBuf, Errno> {
    let host =
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| Errno::EIO)?;
    let root = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let inner = host.strip_prefix(&root).map_err(|_| Errno::EXDEV)?;
    Ok(Path::new("/").join(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_refuses_relative_and_dotdot() {
        assert_eq!(clean("p", "/a/./b//c").unwrap(), Path::new("/a/b/c"));
        assert!(clean("p", "a/b").is_err());
        assert!(clean("p", "/a/../../etc").is_err());
    }

    #[test]
    fn resolution_stays_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd/3", root.join("fd")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd", root.join("fds")).unwrap();
        std::fs::create_dir_all(root.join("proc/self/fd")).unwrap();

        let r = |p: &str| resolve_in_root(root, "workingDir", p);
        assert_eq!(r("/abs/dir").unwrap(), Path::new("/real/dir"));
        assert_eq!(r("/abs/missing/x").unwrap(), Path::new("/real/missing/x"));
        assert_eq!(
            r("/up/real").unwrap(),
            Path::new("/real"),
            "`..` stops at the root"
        );
        assert!(matches!(
            r("/proc/self/fd/7"),
            Err(RootfsError::Forbidden { .. })
        ));
        assert!(matches!(r("/fd"), Err(RootfsError::Forbidden { .. })));
        assert!(matches!(r("/fds/9"), Err(RootfsError::Forbidden { .. })));

        // A dangling link whose target climbs back through `..` is followed as the kernel
        // would, not lexically.
        std::os::unix::fs::symlink("/proc/self/fd", root.join("pfd")).unwrap();
        std::os::unix::fs::symlink("pfd/../fd/7", root.join("sneak")).unwrap();
        assert!(matches!(r("/sneak"), Err(RootfsError::Forbidden { .. })));
        std::os::unix::fs::symlink("nothere/../../etc", root.join("climb")).unwrap();
        assert!(matches!(r("/climb"), Err(RootfsError::NotConfined { .. })));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(matches!(r("/loop/x"), Err(RootfsError::Resolve { .. })));
        assert!(matches!(
            r("/abs/../.."),
            Err(RootfsError::NotConfined { .. })
        ));
    }
}
