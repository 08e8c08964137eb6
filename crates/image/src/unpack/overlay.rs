//! The two markers of overlayfs "diff" form, as written and read by unpack.
//!
//! Root ([`OverlayXattrs::Trusted`]) writes them as overlayfs itself does: a whiteout is a
//! character device 0:0 and an opaque directory carries `trusted.overlay.opaque=y`.
//!
//! Without root ([`OverlayXattrs::User`]) no device node can be made, so a whiteout becomes
//! the form overlayfs accepts since Linux 6.7 for lower layers mounted with `userxattr`: an
//! empty regular file carrying `user.overlay.whiteout`, whose directory carries
//! `user.overlay.opaque=x` ("may hold xattr whiteouts", not opaque). An opaque directory
//! carries `user.overlay.opaque=y`, which overrides `x`; since overlayfs does not look for
//! xattr whiteouts in a `y` directory (they would show as empty files), none are made in
//! one, and those already there are removed when a directory turns opaque. On older
//! kernels such a snapshot cannot be mounted as a lower layer with its deletions intact.
//!
//! Readers accept the device form always and the xattr form of the configured namespace.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, mknodat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use xattr::FileExt;

use super::OverlayXattrs;
use super::tree::{kind, open_beneath, stat_at};

/// The mode of a whiteout in the xattr form.
const WHITEOUT_FILE_MODE: Mode = Mode::from_bits_truncate(0o600);

/// Whether `name` in `dir`, whose stat is `st`, is a whiteout.
pub(crate) fn is_whiteout(
    dir: impl AsFd,
    name: &[u8],
    st: &FileStat,
    xattrs: OverlayXattrs,
) -> io::Result<bool> {
    let k = kind(st);
    if k == SFlag::S_IFCHR {
        return Ok(st.st_rdev == 0);
    }
    if xattrs == OverlayXattrs::Trusted || k != SFlag::S_IFREG || st.st_size != 0 {
        return Ok(false);
    }
    let fd = open_beneath(dir, name, OFlag::O_RDONLY)?;
    Ok(File::from(fd).get_xattr(xattrs.whiteout())?.is_some())
}

/// Whether the directory `dir` hides the lower layers' contents (`opaque=y`).
pub(crate) fn is_opaque(dir: &OwnedFd, xattrs: OverlayXattrs) -> io::Result<bool> {
    let file = File::from(dir.try_clone()?);
    Ok(file.get_xattr(xattrs.opaque())?.as_deref() == Some(b"y"))
}

/// Makes `name` in `dir` a whiteout. `name` must not exist. Returns false when nothing was
/// needed (the xattr form in an opaque directory).
pub(crate) fn make_whiteout(dir: &OwnedFd, name: &[u8], xattrs: OverlayXattrs) -> io::Result<bool> {
    if xattrs == OverlayXattrs::Trusted {
        mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0)?;
        return Ok(true);
    }
    let dir_file = File::from(dir.try_clone()?);
    match dir_file.get_xattr(xattrs.opaque())?.as_deref() {
        Some(b"y") => return Ok(false),
        Some(b"x") => {}
        _ => dir_file.set_xattr(xattrs.opaque(), b"x")?,
    }
    // Owner read and write, not mode 0 as a device whiteout has: the kernel checks `user.*`
    // xattrs against the inode's mode, so without root neither unpack (setting it) nor
    // overlayfs (reading it) could get at the marker of a mode 0 file.
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let fd = openat(dir, name, flags | OFlag::O_CLOEXEC, WHITEOUT_FILE_MODE)?;
    File::from(fd).set_xattr(xattrs.whiteout(), b"y")?;
    Ok(true)
}

/// Marks the directory `dir` opaque, removing the xattr whiteouts it no longer needs.
pub(crate) fn mark_opaque(dir: &OwnedFd, xattrs: OverlayXattrs) -> io::Result<()> {
    let file = File::from(dir.try_clone()?);
    let was = file.get_xattr(xattrs.opaque())?;
    file.set_xattr(xattrs.opaque(), b"y")?;
    if xattrs == OverlayXattrs::User && was.as_deref() == Some(b"x") {
        remove_xattr_whiteouts(dir, xattrs)?;
    }
    Ok(())
}

fn remove_xattr_whiteouts(dir: &OwnedFd, xattrs: OverlayXattrs) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in nix::dir::Dir::from_fd(dir.try_clone()?)?.iter() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        names.push(name.to_bytes().to_vec());
    }
    for name in names {
        if name == b"." || name == b".." {
            continue;
        }
        let Some(st) = stat_at(dir, name.as_slice())? else {
            continue;
        };
        if kind(&st) == SFlag::S_IFREG && is_whiteout(dir, &name, &st, xattrs)? {
            match unlinkat(dir, name.as_slice(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Regression: xattr whiteouts were created with mode 0, so without root setting
    /// `user.overlay.whiteout` on them failed with EACCES and every layer with a whiteout
    /// failed to unpack (root passes the mode check, which hid it).
    #[test]
    fn an_xattr_whiteout_is_readable_and_writable_by_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let fd = nix::fcntl::open(
            dir.path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        match make_whiteout(&fd, b"gone", OverlayXattrs::User) {
            Ok(made) => assert!(made),
            // A filesystem without user xattrs cannot hold this form at all.
            Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => return,
            Err(e) => panic!("make_whiteout: {e}"),
        }
        let meta = std::fs::symlink_metadata(dir.path().join("gone")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let st = stat_at(&fd, &b"gone"[..]).unwrap().unwrap();
        assert!(is_whiteout(&fd, b"gone", &st, OverlayXattrs::User).unwrap());
    }
}
