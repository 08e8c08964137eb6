//! Hardlinks whose target is in a lower layer, made once the lower layers are unpacked.
//!
//! A snapshot is one overlayfs lower directory, and a link cannot span two of them, so the
//! link becomes a copy of the target (content, owner, mode, xattrs, times), as containerd's
//! applier does when it copies a lower file up. Several links to one lower file share one
//! copy, hardlinked together, so the layer's own link structure survives.
//!
//! The target is looked up as overlayfs would find it in the merged view, top layer first:
//! this layer (where the link's own entry may have been preceded by a whiteout or an opaque
//! marker), then each lower layer. A whiteout on the way means the target was deleted; an
//! opaque directory on the way hides every layer below it. Every directory is opened with
//! the same `openat2` rules as unpack itself, so a symlink on the target's path in any layer
//! refuses the link instead of being followed, and nothing outside the snapshots is read.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};
use xattr::FileExt;

use super::error::Refusal;
use super::meta::{self, Meta, Step, StepExt};
use super::path::LayerPath;
use super::tree::{Tree, Walk, kind, lossy, open_beneath, open_dir, proc_path, stat_at};
use super::{OverlayXattrs, PendingHardlink, UnpackError, overlay};

/// Materialises `pending` hardlinks of the layer unpacked in `dest`.
///
/// `lowers` are the directories of the layers below, the nearest first. `label` names the
/// layer in errors, as [`ApplyOptions::label`](super::ApplyOptions) does. A link whose name a
/// later entry of the layer took is left alone (the later entry wins).
///
/// # Errors
///
/// A target deleted, missing from every layer, a directory, or behind a symlink; or a failed
/// filesystem step. `dest` is then partial and the caller removes it.
pub fn resolve_pending_hardlinks(
    dest: &Path,
    lowers: &[PathBuf],
    pending: &[PendingHardlink],
    label: &str,
) -> Result<(), UnpackError> {
    let span = tracing::debug_span!("hardlinks", layer = %label, count = pending.len());
    let _entered = span.enter();
    let xattrs = OverlayXattrs::for_current_user();
    let dest_error = |source| UnpackError::Dest {
        layer: label.to_string(),
        dest: dest.to_path_buf(),
        source,
    };
    let mut tree = Tree::open(dest, xattrs).map_err(dest_error)?;
    let mut layers = vec![tree.root().try_clone().map_err(dest_error)?];
    for lower in lowers {
        let root = Tree::open(lower, xattrs).map_err(|source| UnpackError::Dest {
            layer: label.to_string(),
            dest: lower.clone(),
            source,
        })?;
        layers.push(root.root().try_clone().map_err(dest_error)?);
    }

    let mut resolver = Resolver {
        label,
        xattrs,
        layers,
        copies: HashMap::new(),
    };
    for link in pending {
        resolver.resolve(&mut tree, link)?;
    }
    Ok(())
}

struct Resolver<'a> {
    label: &'a str,
    xattrs: OverlayXattrs,
    /// Layer roots, this layer first.
    layers: Vec<OwnedFd>,
    /// Lower targets already copied into this layer, by target path: the copy's path.
    copies: HashMap<LayerPath, LayerPath>,
}

/// Where a target was found.
struct Found {
    layer: usize,
    dir: OwnedFd,
    st: FileStat,
}

impl Resolver<'_> {
    fn refuse(&self, link: &Path, reason: Refusal) -> UnpackError {
        let entry = link.to_string_lossy().into_owned();
        UnpackError::Refused {
            layer: self.label.to_string(),
            entry,
            reason,
        }
    }

    fn fail(
        &self,
        pending: &PendingHardlink,
        (step, source): (&'static str, io::Error),
    ) -> UnpackError {
        UnpackError::Hardlink {
            layer: self.label.to_string(),
            link: pending.link.clone(),
            target: pending.target.clone(),
            step,
            source,
        }
    }

    fn resolve(&mut self, tree: &mut Tree, pending: &PendingHardlink) -> Result<(), UnpackError> {
        let link =
            LayerPath::from_relative(&pending.link).map_err(|r| self.refuse(&pending.link, r))?;
        let target =
            LayerPath::from_relative(&pending.target).map_err(|r| self.refuse(&pending.link, r))?;
        let parent = tree.dir(link.parent(), true).map_err(|w| match w {
            Walk::Symlink(parent) => self.refuse(&pending.link, Refusal::SymlinkOnPath { parent }),
            Walk::NotDir(parent) => self.refuse(&pending.link, Refusal::NotDirOnPath { parent }),
            Walk::Missing => self.fail(
                pending,
                ("open link directory", io::ErrorKind::NotFound.into()),
            ),
            Walk::Io(e) => self.fail(pending, ("open link directory", e)),
        })?;
        if stat_at(&*parent, link.name())
            .step("stat link")
            .map_err(|e| self.fail(pending, e))?
            .is_some()
        {
            tracing::debug!(link = %lossy(link.as_bytes()), "a later entry took the link's name");
            return Ok(());
        }
        // Creating the link must not change the times its directory's entry set.
        let parent_st = nix::sys::stat::fstat(&*parent).step("stat link directory");
        let parent_st = parent_st.map_err(|e| self.fail(pending, e))?;

        if let Some(copy) = self.copies.get(&target).cloned() {
            let root = &self.layers[0];
            let copy_dir = open_parent(root, &copy).step("open copy directory");
            let copy_dir = copy_dir.map_err(|e| self.fail(pending, e))?;
            linkat(
                &copy_dir,
                copy.name(),
                &*parent,
                link.name(),
                AtFlags::empty(),
            )
            .step("link to the copy")
            .map_err(|e| self.fail(pending, e))?;
        } else {
            let found = self.lookup(&pending.link, &target)?.ok_or_else(|| {
                UnpackError::HardlinkTargetMissing {
                    layer: self.label.to_string(),
                    link: pending.link.clone(),
                    target: pending.target.clone(),
                }
            })?;
            if found.layer == 0 {
                linkat(
                    &found.dir,
                    target.name(),
                    &*parent,
                    link.name(),
                    AtFlags::empty(),
                )
                .step("create hardlink")
                .map_err(|e| self.fail(pending, e))?;
            } else {
                copy_up(&found, target.name(), &parent, link.name())
                    .map_err(|e| self.fail(pending, e))?;
                self.copies.insert(target, link.clone());
                tracing::debug!(link = %lossy(link.as_bytes()), layer = found.layer,
                    "hardlink to a lower layer's file made as a copy");
            }
        }
        let atime = TimeSpec::new(parent_st.st_atime, parent_st.st_atime_nsec);
        let mtime = TimeSpec::new(parent_st.st_mtime, parent_st.st_mtime_nsec);
        nix::sys::stat::futimens(&*parent, &atime, &mtime)
            .step("restore link directory times")
            .map_err(|e| self.fail(pending, e))
    }

    /// Finds `target` as the merged view would, or `None` when it does not exist there.
    fn lookup(&self, link: &Path, target: &LayerPath) -> Result<Option<Found>, UnpackError> {
        let shown = lossy(target.as_bytes());
        let bad = |why| Refusal::BadLinkTarget {
            target: shown.clone(),
            why,
        };
        let io = |e: io::Error| UnpackError::Hardlink {
            layer: self.label.to_string(),
            link: link.to_path_buf(),
            target: target.to_path_buf(),
            step: "look up the link target",
            source: e,
        };
        let components: Vec<&[u8]> = if target.parent().is_empty() {
            Vec::new()
        } else {
            target.parent().split(|b| *b == b'/').collect()
        };

        for (layer, root) in self.layers.iter().enumerate() {
            let mut dir = root.try_clone().map_err(io)?;
            let mut opaque = false;
            let mut present = true;
            for component in &components {
                let Some(st) = stat_at(&dir, *component).map_err(|e| io(e.into()))? else {
                    present = false;
                    break;
                };
                if overlay::is_whiteout(&dir, component, &st, self.xattrs).map_err(io)? {
                    return Ok(None);
                }
                match kind(&st) {
                    SFlag::S_IFDIR => {}
                    SFlag::S_IFLNK => {
                        return Err(self.refuse(link, bad("its path goes through a symlink")));
                    }
                    _ => {
                        return Err(self.refuse(link, bad("its path goes through a non-directory")));
                    }
                }
                dir = open_dir(&dir, *component).map_err(|e| io(e.into()))?;
                opaque |= overlay::is_opaque(&dir, self.xattrs).map_err(io)?;
            }
            if present && let Some(st) = stat_at(&dir, target.name()).map_err(|e| io(e.into()))? {
                if overlay::is_whiteout(&dir, target.name(), &st, self.xattrs).map_err(io)? {
                    return Ok(None);
                }
                if kind(&st) == SFlag::S_IFDIR {
                    return Err(self.refuse(
                        link,
                        Refusal::HardlinkToDir {
                            target: shown.clone(),
                        },
                    ));
                }
                return Ok(Some(Found { layer, dir, st }));
            }
            if opaque {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// Opens the directory holding `path` in the tree rooted at `root`.
fn open_parent(root: &OwnedFd, path: &LayerPath) -> io::Result<OwnedFd> {
    if path.parent().is_empty() {
        return root.try_clone();
    }
    Ok(open_dir(root, path.parent())?)
}

/// Copies the lower file `name` in `found.dir` to `link` in `dir`, metadata included.
fn copy_up(found: &Found, name: &[u8], dir: &OwnedFd, link: &[u8]) -> Step<()> {
    let st = &found.st;
    let ownership = nix::unistd::geteuid().is_root();
    let mut meta = Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        atime: TimeSpec::new(st.st_atime, st.st_atime_nsec),
        mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        xattrs: Vec::new(),
    };
    match kind(st) {
        SFlag::S_IFREG => {
            let source = open_beneath(&found.dir, name, OFlag::O_RDONLY).step("open the target")?;
            let mut source = File::from(source);
            meta.xattrs = read_xattrs(&source).step("read the target's xattrs")?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let fd = openat(
                dir,
                link,
                flags | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .step("create the copy")?;
            let mut copy = File::from(fd);
            io::copy(&mut source, &mut copy).step("copy the target")?;
            meta::apply_fd(&copy, &meta, ownership, true)
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(&found.dir, name).step("read the target symlink")?;
            symlinkat(target.as_os_str(), dir, link).step("create the copy")?;
            meta::apply_at(dir, link, &meta, ownership, true)
        }
        other => {
            meta.xattrs = xattr::list(proc_path(&found.dir, name))
                .and_then(|names| {
                    let path = proc_path(&found.dir, name);
                    names
                        .filter_map(|n| {
                            xattr::get(&path, &n).transpose().map(|v| v.map(|v| (n, v)))
                        })
                        .collect()
                })
                .step("read the target's xattrs")?;
            mknodat(
                dir,
                link,
                other,
                Mode::from_bits_truncate(0o600),
                st.st_rdev,
            )
            .step("create the copy")?;
            meta::apply_at(dir, link, &meta, ownership, false)
        }
    }
}

fn read_xattrs(file: &File) -> io::Result<Vec<(std::ffi::OsString, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in file.list_xattr()? {
        if let Some(value) = file.get_xattr(&name)? {
            out.push((name, value));
        }
    }
    Ok(out)
}
