//! Metadata an entry carries (mode, owner, times, xattrs) and how it is put on what was
//! created, in the order that keeps every bit: chown, then chmod (chown clears setuid and
//! setgid), then xattrs (chown also clears `security.capability`), then times.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FchmodatFlags, Mode, UtimensatFlags, fchmod, fchmodat, futimens, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat};

use super::error::Refusal;
use super::tree::proc_path;

/// A failed step and its cause, turned into an [`UnpackError`](super::UnpackError) by the
/// caller, which knows the layer and the entry.
pub(crate) type Step<T> = Result<T, (&'static str, io::Error)>;

pub(crate) trait StepExt<T> {
    fn step(self, step: &'static str) -> Step<T>;
}

impl<T, E: Into<io::Error>> StepExt<T> for Result<T, E> {
    fn step(self, step: &'static str) -> Step<T> {
        self.map_err(|e| (step, e.into()))
    }
}

/// What a tar entry says about its file beyond type and content.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: TimeSpec,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Reads the header and the PAX records (`mtime`, `atime`, `SCHILY.xattr.*`) of an entry.
pub(crate) fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, MetaError> {
    let header = entry.header();
    let mode = header.mode().map_err(MetaError::Header)? & 0o7777;
    let uid = header.uid().map_err(MetaError::Header)?;
    let gid = header.gid().map_err(MetaError::Header)?;
    let uid = u32::try_from(uid).map_err(|_| Refusal::IdRange {
        field: "uid",
        value: uid,
    })?;
    let gid = u32::try_from(gid).map_err(|_| Refusal::IdRange {
        field: "gid",
        value: gid,
    })?;
    let secs = header.mtime().map_err(MetaError::Header)?;
    let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut atime = None;
    let mut xattrs = Vec::new();

    if let Some(pax) = entry.pax_extensions().map_err(MetaError::Header)? {
        for record in pax {
            let record = record.map_err(MetaError::Header)?;
            let key = record.key_bytes();
            if key == b"mtime" {
                mtime = pax_time(record.value_bytes()).unwrap_or(mtime);
            } else if key == b"atime" {
                atime = pax_time(record.value_bytes());
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((
                    OsStr::from_bytes(name).to_owned(),
                    record.value_bytes().to_vec(),
                ));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        atime: atime.unwrap_or(mtime),
        mtime,
        xattrs,
    })
}

#[derive(Debug)]
pub(crate) enum MetaError {
    Header(io::Error),
    Refused(Refusal),
}

impl From<Refusal> for MetaError {
    fn from(r: Refusal) -> Self {
        MetaError::Refused(r)
    }
}

/// Parses a PAX time such as `1700000000.25` or `-3.5`.
pub(crate) fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let value = std::str::from_utf8(value).ok()?;
    let (negative, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    Some(if negative {
        if nanos == 0 {
            TimeSpec::new(-secs, 0)
        } else {
            TimeSpec::new(-secs - 1, 1_000_000_000 - nanos)
        }
    } else {
        TimeSpec::new(secs, nanos)
    })
}

/// xattrs a layer may not set: overlayfs reads these from the lower directories, and only
/// unpack itself writes them (for whiteouts and opaque directories).
fn reserved_xattr(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Whether a failure to set an xattr is a limit of this host rather than of the layer:
/// the filesystem lacks the namespace, or an unprivileged unpack may not write it.
fn xattr_unsupported(err: &io::Error, privileged: bool) -> bool {
    match err.raw_os_error() {
        Some(libc_errno) if libc_errno == nix::libc::EOPNOTSUPP => true,
        Some(libc_errno) if libc_errno == nix::libc::EPERM => !privileged,
        _ => false,
    }
}

/// Puts `meta` on an open regular file or directory. For a directory (`file_mode_and_times`
/// false) the mode and times are left to [`finish_dir`], once its contents are written.
pub(crate) fn apply_fd(
    file: &File,
    meta: &Meta,
    ownership: bool,
    file_mode_and_times: bool,
) -> Step<()> {
    if ownership {
        fchown(
            file.as_fd(),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .step("chown")?;
    }
    if file_mode_and_times {
        fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode)).step("chmod")?;
    }
    set_xattrs(meta, ownership, |name, value| {
        use xattr::FileExt;
        file.set_xattr(name, value)
    })?;
    if file_mode_and_times {
        futimens(file.as_fd(), &meta.atime, &meta.mtime).step("set times")?;
    }
    Ok(())
}

/// The last step for a directory: its mode and times, after everything inside is written.
pub(crate) fn finish_dir(
    dir: &OwnedFd,
    mode: u32,
    atime: &TimeSpec,
    mtime: &TimeSpec,
) -> io::Result<()> {
    fchmod(dir, Mode::from_bits_truncate(mode))?;
    futimens(dir, atime, mtime)?;
    Ok(())
}

/// Puts `meta` on `name` in `dir` without following it: for symlinks, FIFOs and devices.
/// A symlink's mode is never changed (Linux has no such thing, and chmod would follow it).
pub(crate) fn apply_at(
    dir: &OwnedFd,
    name: &[u8],
    meta: &Meta,
    ownership: bool,
    symlink: bool,
) -> Step<()> {
    if ownership {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .step("chown")?;
    }
    if !symlink {
        fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .step("chmod")?;
    }
    if !meta.xattrs.is_empty() {
        let path = proc_path(dir, name);
        set_xattrs(meta, ownership, |n, v| xattr::set(&path, n, v))?;
    }
    utimensat(
        dir,
        name,
        &meta.atime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .step("set times")
}

fn set_xattrs(
    meta: &Meta,
    privileged: bool,
    mut set: impl FnMut(&OsStr, &[u8]) -> io::Result<()>,
) -> Step<()> {
    for (name, value) in &meta.xattrs {
        if reserved_xattr(name) {
            tracing::debug!(xattr = ?name, "dropped an overlayfs xattr the layer tried to set");
            continue;
        }
        match set(name, value) {
            Ok(()) => {}
            Err(e) if xattr_unsupported(&e, privileged) => {
                tracing::debug!(xattr = ?name, error = %e, "xattr not supported here, skipped");
            }
            Err(e) => return Err(("set xattr", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pax_times() {
        assert_eq!(
            pax_time(b"1700000000"),
            Some(TimeSpec::new(1_700_000_000, 0))
        );
        assert_eq!(pax_time(b"12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(
            pax_time(b"12.123456789123"),
            Some(TimeSpec::new(12, 123_456_789))
        );
        assert_eq!(pax_time(b"-1.5"), Some(TimeSpec::new(-2, 500_000_000)));
        assert_eq!(pax_time(b"x"), None);
        assert_eq!(pax_time(b"1.x"), None);
    }
}
