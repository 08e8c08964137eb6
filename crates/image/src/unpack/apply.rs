//! Applying one tar entry at a time to the destination tree, in overlay "diff" form.
//!
//! [`Applier`] owns the [`Tree`], the counters and two lists that outlive single entries:
//! directories whose mode and times are set at the end (after their contents), and
//! hardlinks whose target lives in a lower layer.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, makedev, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};
use tar::EntryType;

use super::error::{Refusal, UnpackError};
use super::meta::{self, Meta, MetaError, Step, StepExt};
use super::overlay;
use super::path::{LayerPath, Normal, Whiteout, normalise, whiteout};
use super::tree::{self, Tree, Walk, kind, lossy, open_dir, stat_at};
use super::{ApplyOptions, DevicePolicy, PendingHardlink};

/// A directory whose mode and times wait until the whole layer is written.
struct DirFix {
    path: Vec<u8>,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

pub(crate) struct Applier<'o> {
    tree: Tree,
    opts: &'o ApplyOptions,
    buf: Vec<u8>,
    dirs: Vec<DirFix>,
    pub(crate) pending: Vec<PendingHardlink>,
    pub(crate) entries: u64,
    pub(crate) unpacked: u64,
    pub(crate) skipped_devices: u64,
}

/// Large enough that a big file is written in few syscalls.
const COPY_BUFFER: usize = 1 << 20;

impl<'o> Applier<'o> {
    pub(crate) fn new(tree: Tree, opts: &'o ApplyOptions) -> Self {
        Applier {
            tree,
            opts,
            buf: vec![0; COPY_BUFFER],
            dirs: Vec::new(),
            pending: Vec::new(),
            entries: 0,
            unpacked: 0,
            skipped_devices: 0,
        }
    }

    fn refuse(&self, raw: &[u8], reason: Refusal) -> UnpackError {
        UnpackError::Refused {
            layer: self.opts.label.clone(),
            entry: lossy(raw),
            reason,
        }
    }

    fn fail(&self, raw: &[u8], (step, source): (&'static str, io::Error)) -> UnpackError {
        UnpackError::Entry {
            layer: self.opts.label.clone(),
            entry: lossy(raw),
            step,
            source,
        }
    }

    fn limit(&self, what: &'static str, limit: u64) -> UnpackError {
        UnpackError::Limit {
            layer: self.opts.label.clone(),
            what,
            limit,
        }
    }

    /// The layer root starts as an ordinary 0755 directory; a root entry (`./`) in the layer
    /// then sets its own mode, owner and times.
    pub(crate) fn prepare_root(&mut self) -> Result<(), UnpackError> {
        let root = self.tree.root();
        nix::sys::stat::fchmod(&*root, Mode::from_bits_truncate(0o755))
            .step("chmod the layer root")
            .map_err(|e| self.fail(b"/", e))
    }

    /// Applies one entry. `read` errors inside come back as stream errors, since the entry's
    /// data is the layer stream itself.
    pub(crate) fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        self.entries += 1;
        if self.entries > self.opts.limits.max_entries {
            return Err(self.limit("the number of entries", self.opts.limits.max_entries));
        }
        let raw = entry.path_bytes().into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            return Ok(());
        }
        let path =
            normalise(&raw, self.opts.limits.max_path_len).map_err(|r| self.refuse(&raw, r))?;
        let meta = match meta::read_meta(&mut entry) {
            Ok(meta) => meta,
            Err(MetaError::Refused(r)) => return Err(self.refuse(&raw, r)),
            Err(MetaError::Header(e)) => return Err(self.fail(&raw, ("read header", e))),
        };
        let link = entry.link_name_bytes().map(Cow::into_owned);

        let p = match path {
            Normal::Root if entry_type.is_dir() => return self.root_dir(&raw, meta),
            Normal::Root => return Err(self.refuse(&raw, Refusal::ReplacesRoot)),
            Normal::Path(p) => p,
        };
        match whiteout(p.name()).map_err(|r| self.refuse(&raw, r))? {
            Whiteout::Opaque => return self.opaque(&raw, &p),
            Whiteout::Named(name) => return self.whiteout(&raw, &p, name),
            Whiteout::AufsMeta => {
                tracing::debug!(entry = %lossy(&raw), "skipped aufs metadata entry");
                return Ok(());
            }
            Whiteout::No => {}
        }

        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&raw, &p, &meta, &mut entry)
            }
            EntryType::Directory => self.dir(&raw, &p, &meta),
            EntryType::Symlink => self.symlink(&raw, &p, &meta, link),
            EntryType::Link => self.hardlink(&raw, &p, link),
            EntryType::Fifo => self.node(&raw, &p, &meta, SFlag::S_IFIFO, 0),
            EntryType::Char | EntryType::Block => self.device(&raw, &p, &meta, &entry),
            other => Err(self.refuse(&raw, Refusal::UnsupportedType(other.as_byte() as char))),
        }
    }

    /// Opens (creating as needed) the directory that will hold `p`.
    fn parent(&mut self, raw: &[u8], p: &LayerPath) -> Result<Rc<OwnedFd>, UnpackError> {
        self.tree
            .dir(p.parent(), true)
            .map_err(|w| self.walk_error(raw, w))
    }

    fn walk_error(&self, raw: &[u8], walk: Walk) -> UnpackError {
        match walk {
            Walk::Symlink(parent) => self.refuse(raw, Refusal::SymlinkOnPath { parent }),
            Walk::NotDir(parent) => self.refuse(raw, Refusal::NotDirOnPath { parent }),
            Walk::Missing => self.fail(
                raw,
                ("open parent directory", io::ErrorKind::NotFound.into()),
            ),
            Walk::Io(e) => self.fail(raw, ("open parent directory", e)),
        }
    }

    /// Removes whatever is at `name` so a new entry can take its place (later entries win).
    fn clear(&mut self, dir: &OwnedFd, name: &[u8]) -> Step<Option<nix::sys::stat::FileStat>> {
        let removed = tree::remove(dir, name).step("remove the existing entry")?;
        if removed.is_some_and(|st| kind(&st) == SFlag::S_IFDIR) {
            self.tree.invalidate();
        }
        Ok(removed)
    }

    /// Runs `create`, and if the name is taken, clears it and runs `create` once more.
    fn create(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        step: &'static str,
        mut create: impl FnMut() -> nix::Result<()>,
    ) -> Step<()> {
        match create() {
            Err(Errno::EEXIST) => {
                self.clear(dir, name)?;
                create().step(step)
            }
            other => other.step(step),
        }
    }

    fn file<R: Read>(
        &mut self,
        raw: &[u8],
        p: &LayerPath,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let dir = self.parent(raw, p)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let mut fd = None;
        self.create(&dir, p.name(), "create file", || {
            fd = Some(openat(&*dir, p.name(), flags, mode)?);
            Ok(())
        })
        .map_err(|e| self.fail(raw, e))?;
        let Some(fd) = fd else {
            unreachable!("create succeeded without a file")
        };
        let mut file = File::from(fd);

        let mut buf = std::mem::take(&mut self.buf);
        let copied = self.copy(raw, entry, &mut file, &mut buf);
        self.buf = buf;
        // The tar parser reads a stream that ends inside an entry's data as a short entry,
        // and only fails when it skips to the next header, in an error naming no entry.
        let (copied, declared) = (copied?, entry.size());
        if copied < declared {
            let why = format!("the layer ends after {copied} of the entry's {declared} bytes");
            let cut = io::Error::new(io::ErrorKind::UnexpectedEof, why);
            return Err(self.fail(raw, ("read file data", cut)));
        }
        meta::apply_fd(&file, meta, self.opts.ownership, true).map_err(|e| self.fail(raw, e))
    }

    /// Copies the entry's data into `file`, returning how many bytes there were.
    fn copy<R: Read>(
        &mut self,
        raw: &[u8],
        entry: &mut tar::Entry<'_, R>,
        file: &mut File,
        buf: &mut [u8],
    ) -> Result<u64, UnpackError> {
        let mut copied = 0;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail(raw, ("read file data", e))),
            };
            copied += n as u64;
            self.unpacked += n as u64;
            if self.unpacked > self.opts.limits.max_unpacked_bytes {
                return Err(self.limit("the unpacked size", self.opts.limits.max_unpacked_bytes));
            }
            file.write_all(&buf[..n])
                .map_err(|e| self.fail(raw, ("write file", e)))?;
        }
    }

    fn root_dir(&mut self, raw: &[u8], meta: Meta) -> Result<(), UnpackError> {
        let root = self.tree.root();
        let file = File::from(
            root.try_clone()
                .step("open the layer root")
                .map_err(|e| self.fail(raw, e))?,
        );
        meta::apply_fd(&file, &meta, self.opts.ownership, false).map_err(|e| self.fail(raw, e))?;
        self.dirs.push(DirFix {
            path: Vec::new(),
            mode: meta.mode,
            atime: meta.atime,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn dir(&mut self, raw: &[u8], p: &LayerPath, meta: &Meta) -> Result<(), UnpackError> {
        let parent = self.parent(raw, p)?;
        let name = p.name();
        let mode = Mode::from_bits_truncate(0o700);
        let mut opaque = false;
        match mkdirat(&*parent, name, mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = stat_at(&*parent, name).step("stat existing entry");
                let st = st.map_err(|e| self.fail(raw, e))?;
                if st.is_none_or(|st| kind(&st) != SFlag::S_IFDIR) {
                    // A whiteout of this layer gives way to a directory that must then hide
                    // the lower layers' one: an opaque directory.
                    opaque = match st {
                        Some(st) => overlay::is_whiteout(&*parent, name, &st, self.tree.xattrs())
                            .map_err(|e| self.fail(raw, ("stat existing entry", e)))?,
                        None => false,
                    };
                    self.clear(&parent, name).map_err(|e| self.fail(raw, e))?;
                    mkdirat(&*parent, name, mode)
                        .step("create directory")
                        .map_err(|e| self.fail(raw, e))?;
                }
            }
            Err(e) => return Err(self.fail(raw, ("create directory", e.into()))),
        }
        let fd = open_dir(&*parent, name)
            .step("open directory")
            .map_err(|e| self.fail(raw, e))?;
        if opaque {
            overlay::mark_opaque(&fd, self.tree.xattrs())
                .step("mark directory opaque")
                .map_err(|e| self.fail(raw, e))?;
        }
        meta::apply_fd(&File::from(fd), meta, self.opts.ownership, false)
            .map_err(|e| self.fail(raw, e))?;
        self.dirs.push(DirFix {
            path: p.as_bytes().to_vec(),
            mode: meta.mode,
            atime: meta.atime,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn symlink(
        &mut self,
        raw: &[u8],
        p: &LayerPath,
        meta: &Meta,
        target: Option<Vec<u8>>,
    ) -> Result<(), UnpackError> {
        let target = match target {
            Some(t) if t.contains(&0) => {
                let why = "it contains a NUL byte";
                return Err(self.refuse(
                    raw,
                    Refusal::BadLinkTarget {
                        target: lossy(&t),
                        why,
                    },
                ));
            }
            Some(t) if !t.is_empty() => t,
            _ => {
                let why = "a symlink needs a target";
                return Err(self.refuse(
                    raw,
                    Refusal::BadLinkTarget {
                        target: String::new(),
                        why,
                    },
                ));
            }
        };
        let dir = self.parent(raw, p)?;
        self.create(&dir, p.name(), "create symlink", || {
            symlinkat(&target[..], &*dir, p.name())
        })
        .map_err(|e| self.fail(raw, e))?;
        meta::apply_at(&dir, p.name(), meta, self.opts.ownership, true)
            .map_err(|e| self.fail(raw, e))
    }

    fn hardlink(
        &mut self,
        raw: &[u8],
        p: &LayerPath,
        target_raw: Option<Vec<u8>>,
    ) -> Result<(), UnpackError> {
        let target_raw = target_raw.unwrap_or_default();
        let bad = |why: &'static str| Refusal::BadLinkTarget {
            target: lossy(&target_raw),
            why,
        };
        let target = match normalise(&target_raw, self.opts.limits.max_path_len) {
            Ok(Normal::Path(t)) => t,
            Ok(Normal::Root) => return Err(self.refuse(raw, bad("it names the layer root"))),
            Err(Refusal::DotDot) => {
                return Err(self.refuse(raw, bad("it has a `..` component")));
            }
            Err(r) => return Err(self.refuse(raw, r)),
        };
        if target == *p {
            return Err(self.refuse(raw, bad("an entry cannot be a hardlink to itself")));
        }

        // The target's directory is looked up, never created, and never through a symlink.
        let target_dir = match self.tree.dir(target.parent(), false) {
            Ok(fd) => Some(fd),
            Err(Walk::Missing) => None,
            Err(Walk::Symlink(_)) => {
                return Err(self.refuse(raw, bad("its path goes through a symlink")));
            }
            Err(Walk::NotDir(_)) => {
                return Err(self.refuse(raw, bad("its path goes through a non-directory")));
            }
            Err(Walk::Io(e)) => return Err(self.fail(raw, ("open link target directory", e))),
        };
        let target_stat = match &target_dir {
            Some(dir) => stat_at(&**dir, target.name())
                .step("stat link target")
                .map_err(|e| self.fail(raw, e))?,
            None => None,
        };
        let target_whiteout = match (&target_dir, &target_stat) {
            (Some(dir), Some(st)) => {
                overlay::is_whiteout(&**dir, target.name(), st, self.tree.xattrs())
                    .map_err(|e| self.fail(raw, ("stat link target", e)))?
            }
            _ => false,
        };

        let dir = self.parent(raw, p)?;
        match (target_dir, target_stat) {
            (_, Some(st)) if kind(&st) == SFlag::S_IFDIR => Err(self.refuse(
                raw,
                Refusal::HardlinkToDir {
                    target: lossy(target.as_bytes()),
                },
            )),
            (Some(tdir), Some(_)) if !target_whiteout => self
                .create(&dir, p.name(), "create hardlink", || {
                    linkat(&*tdir, target.name(), &*dir, p.name(), AtFlags::empty())
                })
                .map_err(|e| self.fail(raw, e)),
            _ => {
                // The target is in a lower layer: linked (as a copy) once all are unpacked.
                self.clear(&dir, p.name()).map_err(|e| self.fail(raw, e))?;
                tracing::debug!(link = %lossy(raw), target = %lossy(&target_raw),
                    "hardlink target not in this layer, left pending");
                self.pending.push(PendingHardlink {
                    link: p.to_path_buf(),
                    target: target.to_path_buf(),
                });
                Ok(())
            }
        }
    }

    fn device<R: Read>(
        &mut self,
        raw: &[u8],
        p: &LayerPath,
        meta: &Meta,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        match self.opts.devices {
            DevicePolicy::Skip => {
                self.skipped_devices += 1;
                tracing::debug!(entry = %lossy(raw), "device node skipped by the device policy");
                Ok(())
            }
            DevicePolicy::Refuse => Err(self.refuse(raw, Refusal::Device)),
            DevicePolicy::Create => {
                let header = entry.header();
                let number = |n: io::Result<Option<u32>>| n.map(|n| u64::from(n.unwrap_or(0)));
                let major = number(header.device_major())
                    .map_err(|e| self.fail(raw, ("read header", e)))?;
                let minor = number(header.device_minor())
                    .map_err(|e| self.fail(raw, ("read header", e)))?;
                let kind = if entry.header().entry_type() == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                self.node(raw, p, meta, kind, makedev(major, minor))
            }
        }
    }

    /// A FIFO or device node.
    fn node(
        &mut self,
        raw: &[u8],
        p: &LayerPath,
        meta: &Meta,
        node_kind: SFlag,
        dev: nix::sys::stat::dev_t,
    ) -> Result<(), UnpackError> {
        let dir = self.parent(raw, p)?;
        let mode = Mode::from_bits_truncate(0o600);
        self.create(&dir, p.name(), "create node", || {
            mknodat(&*dir, p.name(), node_kind, mode, dev)
        })
        .map_err(|e| self.fail(raw, e))?;
        meta::apply_at(&dir, p.name(), meta, self.opts.ownership, false)
            .map_err(|e| self.fail(raw, e))
    }

    /// `.wh.NAME`: a 0:0 character device NAME, unless this layer already has NAME (the
    /// whiteout only hides lower layers): then a directory becomes opaque and anything else
    /// stays as it is.
    fn whiteout(&mut self, raw: &[u8], p: &LayerPath, name: &[u8]) -> Result<(), UnpackError> {
        let dir = self.parent(raw, p)?;
        let existing = stat_at(&*dir, name)
            .step("stat whited-out entry")
            .map_err(|e| self.fail(raw, e))?;
        match existing {
            None => {
                let made = overlay::make_whiteout(&dir, name, self.tree.xattrs())
                    .step("create whiteout")
                    .map_err(|e| self.fail(raw, e))?;
                if !made {
                    tracing::debug!(entry = %lossy(raw), "whiteout in an opaque directory dropped");
                }
                Ok(())
            }
            Some(st) if kind(&st) == SFlag::S_IFDIR => {
                let fd = open_dir(&*dir, name).step("open whited-out directory");
                let fd = fd.map_err(|e| self.fail(raw, e))?;
                overlay::mark_opaque(&fd, self.tree.xattrs())
                    .step("mark directory opaque")
                    .map_err(|e| self.fail(raw, e))
            }
            Some(_) => {
                tracing::debug!(entry = %lossy(p.sibling(name).as_bytes()),
                    "whiteout of an entry of the same layer ignored");
                Ok(())
            }
        }
    }

    /// `.wh..wh..opq`: the directory holding it hides the lower layers' contents.
    fn opaque(&mut self, raw: &[u8], p: &LayerPath) -> Result<(), UnpackError> {
        let dir = self.parent(raw, p)?;
        overlay::mark_opaque(&dir, self.tree.xattrs())
            .step("mark directory opaque")
            .map_err(|e| self.fail(raw, e))
    }

    /// Sets the deferred directory modes and times, in archive order (a later entry for the
    /// same directory wins). A directory a later entry replaced is skipped.
    pub(crate) fn finish(&mut self) -> Result<(), UnpackError> {
        let dirs = std::mem::take(&mut self.dirs);
        for fix in &dirs {
            let fd = match self.tree.dir(&fix.path, false) {
                Ok(fd) => fd,
                Err(Walk::Io(source)) => return Err(self.dir_meta_error(&fix.path, source)),
                Err(_) => continue,
            };
            meta::finish_dir(&fd, fix.mode, &fix.atime, &fix.mtime)
                .map_err(|source| self.dir_meta_error(&fix.path, source))?;
        }
        Ok(())
    }

    fn dir_meta_error(&self, path: &[u8], source: io::Error) -> UnpackError {
        UnpackError::DirMeta {
            layer: self.opts.label.clone(),
            dir: lossy(path),
            source,
        }
    }
}
