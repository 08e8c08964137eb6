//! The destination tree, reached only through file descriptors.
//!
//! [`Tree`] holds an fd of the layer root. Every directory is opened with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, so the
//! kernel itself refuses any symlink on the way and any step outside the root; everything is
//! then created, changed or removed with `*at` calls relative to such a directory fd, on a
//! last component that is never followed. The last parent opened is cached, and the cache is
//! dropped whenever something is removed, so a replaced directory is never written through.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::OverlayXattrs;
use super::overlay;

/// How every directory below the root is resolved.
pub(crate) fn resolve_flags() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV
}

/// Opens the directory `path` (relative, may have several components) below `dir`.
pub(crate) fn open_dir<P: ?Sized + nix::NixPath>(dir: impl AsFd, path: &P) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(resolve_flags());
    openat2(dir, path, how)
}

/// Opens the non-directory `name` in `dir` with `flags`, refusing symlinks.
pub(crate) fn open_beneath<P: ?Sized + nix::NixPath>(
    dir: impl AsFd,
    path: &P,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(resolve_flags());
    openat2(dir, path, how)
}

/// `fstatat` without following, with a missing entry as `None`.
pub(crate) fn stat_at<P: ?Sized + nix::NixPath>(
    dir: impl AsFd,
    name: &P,
) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Why a directory on an entry's path could not be opened.
#[derive(Debug)]
pub(crate) enum Walk {
    /// This prefix of the path is a symlink.
    Symlink(String),
    /// This prefix of the path exists and is not a directory.
    NotDir(String),
    /// Some prefix is missing and creating was not asked for.
    Missing,
    Io(io::Error),
}

pub(crate) struct Tree {
    root: Rc<OwnedFd>,
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// How whiteouts and opaque directories are written (see the module `overlay`).
    xattrs: OverlayXattrs,
}

impl Tree {
    pub(crate) fn open(dest: &Path, xattrs: OverlayXattrs) -> io::Result<Tree> {
        let root = nix::fcntl::open(
            dest,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree {
            root: Rc::new(root),
            cache: None,
            xattrs,
        })
    }

    pub(crate) fn root(&self) -> Rc<OwnedFd> {
        self.root.clone()
    }

    /// Forgets the cached parent; called after anything is removed.
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Opens the directory at `path` (relative to the root, normalised), creating missing
    /// components with mode 0755 when `create` is set.
    pub(crate) fn dir(&mut self, path: &[u8], create: bool) -> Result<Rc<OwnedFd>, Walk> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((cached, fd)) = &self.cache
            && cached == path
        {
            return Ok(fd.clone());
        }
        let fd = match open_dir(self.root.as_fd(), path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => self.walk(path, create)?,
            Err(e) => return Err(Walk::Io(e.into())),
        };
        let fd = Rc::new(fd);
        self.cache = Some((path.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// The slow path of [`Tree::dir`]: one component at a time, to create what is missing and
    /// to name the component that is in the way.
    fn walk(&mut self, path: &[u8], create: bool) -> Result<OwnedFd, Walk> {
        let shown = |end: usize| String::from_utf8_lossy(&path[..end]).into_owned();
        let mut current: Option<OwnedFd> = None;
        let mut end = 0;
        for component in path.split(|b| *b == b'/') {
            end += component.len();
            let parent = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let next = match open_dir(parent, component) {
                Ok(fd) => fd,
                Err(Errno::ELOOP) => return Err(Walk::Symlink(shown(end))),
                Err(Errno::ENOENT) if create => {
                    self.make_dir(parent, component, false).map_err(Walk::Io)?
                }
                Err(Errno::ENOENT) => return Err(Walk::Missing),
                Err(Errno::ENOTDIR) => {
                    // `O_DIRECTORY | O_NOFOLLOW` on a symlink fails with ENOTDIR, not ELOOP
                    // (the kernel checks for a directory first), so a symlink is told from
                    // other non-directories here. A whiteout made earlier in this layer gives
                    // way to a directory, which must then hide the lower layers' directory of
                    // that name.
                    let st = stat_at(parent, component).map_err(|e| Walk::Io(e.into()))?;
                    match st {
                        Some(st) if kind(&st) == SFlag::S_IFLNK => {
                            return Err(Walk::Symlink(shown(end)));
                        }
                        Some(st)
                            if create
                                && overlay::is_whiteout(parent, component, &st, self.xattrs)
                                    .map_err(Walk::Io)? =>
                        {
                            unlinkat(parent, component, UnlinkatFlags::NoRemoveDir)
                                .map_err(|e| Walk::Io(e.into()))?;
                            self.make_dir(parent, component, true).map_err(Walk::Io)?
                        }
                        _ => return Err(Walk::NotDir(shown(end))),
                    }
                }
                Err(e) => return Err(Walk::Io(e.into())),
            };
            current = Some(next);
            end += 1;
        }
        current.ok_or(Walk::Missing)
    }

    /// Creates an implicit parent directory (mode 0755, whatever the umask) and opens it.
    fn make_dir(&self, parent: impl AsFd, name: &[u8], opaque: bool) -> io::Result<OwnedFd> {
        let parent = parent.as_fd();
        match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = open_dir(parent, name)?;
        fchmod(&fd, Mode::from_bits_truncate(0o755))?;
        if opaque {
            overlay::mark_opaque(&fd, self.xattrs)?;
        }
        Ok(fd)
    }

    pub(crate) fn xattrs(&self) -> OverlayXattrs {
        self.xattrs
    }
}

/// Removes whatever `name` in `dir` is, a whole directory tree included, never following a
/// symlink. Returns the removed entry's stat, or `None` if nothing was there.
pub(crate) fn remove(dir: impl AsFd, name: &[u8]) -> io::Result<Option<FileStat>> {
    let dir = dir.as_fd();
    let Some(st) = stat_at(dir, name)? else {
        return Ok(None);
    };
    if kind(&st) == SFlag::S_IFDIR {
        remove_tree(dir, name)?;
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(Some(st))
}

fn remove_tree(parent: impl AsFd, name: &[u8]) -> io::Result<()> {
    let fd = open_dir(parent.as_fd(), name)?;
    let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
    {
        let mut listing = nix::dir::Dir::from_fd(fd.try_clone()?)?;
        for entry in listing.iter() {
            let entry = entry?;
            let entry_name: &CStr = entry.file_name();
            let bytes = entry_name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == nix::dir::Type::Directory,
                None => stat_at(&fd, bytes)?.is_some_and(|st| kind(&st) == SFlag::S_IFDIR),
            };
            names.push((bytes.to_vec(), is_dir));
        }
    }
    for (child, is_dir) in names {
        if is_dir {
            remove_tree(&fd, &child)?;
        } else {
            unlinkat(&fd, child.as_slice(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// A path for diagnostics.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `/proc/self/fd/N/name` path: the kernel resolves the fd part to the directory the fd
/// holds, and the `l*` syscalls used on it do not follow `name`.
pub(crate) fn proc_path(dir: &OwnedFd, name: &[u8]) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_result(tree: &mut Tree, path: &str) -> String {
        match tree.dir(path.as_bytes(), true) {
            Ok(_) => "ok".to_string(),
            Err(Walk::Symlink(p)) => format!("symlink {p}"),
            Err(Walk::NotDir(p)) => format!("not a dir {p}"),
            Err(Walk::Missing) => "missing".to_string(),
            Err(Walk::Io(e)) => format!("io {e}"),
        }
    }

    /// Regression: a symlink on an entry's path was refused as "not a directory", since
    /// `O_DIRECTORY | O_NOFOLLOW` on a symlink fails with ENOTDIR rather than ELOOP.
    #[test]
    fn a_symlink_on_the_path_is_named_as_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink("/", root.join("l")).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("..", root.join("d/up")).unwrap();
        std::fs::write(root.join("f"), b"").unwrap();
        let mut tree = Tree::open(root, OverlayXattrs::User).unwrap();
        let cases = [
            ("l", "symlink l"),
            ("l/x", "symlink l"),
            ("d/up/x", "symlink d/up"),
            ("f/x", "not a dir f"),
            ("d/new", "ok"),
        ];
        for (path, want) in cases {
            assert_eq!(walk_result(&mut tree, path), want, "{path}");
        }
    }
}
