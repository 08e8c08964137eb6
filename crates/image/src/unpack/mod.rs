//! Layer unpack: one compressed layer tarball in, one overlayfs lower directory out.
//!
//! [`apply_layer`] decompresses a layer as it streams (gzip, zstd or none), computes its diff
//! ID over the whole uncompressed stream, and writes its entries into an empty directory that
//! the runtime later mounts as one overlayfs lower layer. The layer is stored in overlay
//! "diff" form, as containerd's overlay snapshotter stores it: a whiteout `.wh.NAME` becomes
//! a 0:0 character device NAME, an opaque marker `.wh..wh..opq` becomes the xattr
//! `trusted.overlay.opaque=y` on its directory (`user.overlay.opaque` for rootless use, see
//! [`OverlayXattrs`]), and the markers themselves never appear. Layers do not depend on each
//! other, so the layers of an image unpack concurrently; the one exception is a hardlink
//! whose target lives in a lower layer, returned as a [`PendingHardlink`] and materialised
//! afterwards by [`resolve_pending_hardlinks`].
//!
//! A layer is hostile input. Nothing it says may create, change or delete anything outside
//! the destination:
//! - paths are normalised first: absolute paths are taken relative to the layer root (as
//!   docker does) and every `..` component is refused, whether or not it would climb out;
//! - every directory is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` from an fd of the destination, so a symlink
//!   on an entry's path is refused by the kernel (a layer never writes through a symlink,
//!   even one pointing inside the layer), and every change is an `*at` call on a last
//!   component that is never followed (`O_NOFOLLOW | O_EXCL`, `AT_SYMLINK_NOFOLLOW`,
//!   `linkat` without `AT_SYMLINK_FOLLOW`); a symlink's mode is never touched;
//! - an existing non-directory is unlinked before its name is reused, and a directory being
//!   replaced is removed the same way, fd by fd;
//! - hardlink targets are looked up the same way and must be non-directories;
//! - whiteouts that name nothing (`.wh.`, `.wh..`, `.wh...`) and entries that would replace
//!   the root with anything but a directory are refused;
//! - sizes are bounded ([`Limits`]); the xattrs overlayfs itself interprets
//!   (`trusted.overlay.*`, `user.overlay.*`) are dropped from a layer's PAX records.
//!
//! Device policy ([`DevicePolicy`], default [`DevicePolicy::Skip`]): FIFOs are created;
//! character and block device nodes from a layer are not created but skipped, counted in
//! [`AppliedLayer::skipped_devices`] and logged at debug. A runtime mounts its own `/dev` in
//! every container, and a device node shipped in an image is a route to the host's hardware
//! (a block device of the host disk, `/dev/mem`) for anyone who can open it.
//!
//! On error the destination is left partial: the caller owns it, unpacks into a temporary
//! directory and renames it into place only on success, so no partial snapshot is ever
//! visible under a final name.
//!
//! Known shortcomings: a layer that writes below a name that is a symlink in a lower layer
//! (never produced by a build, since tar does not descend symlinks) gets a real directory
//! that hides the lower symlink in the merged view, where docker would follow it. Missing
//! parent directories are created with mode 0755 owned by the unpacking user, which in the
//! merged view hides a lower layer's mode for that directory. GNU long names and PAX
//! headers are read whole by the tar parser, bounded only by `Limits::max_tar_bytes`, so a
//! hostile layer can make unpack hold that much memory.

mod apply;
mod error;
mod hardlink;
mod meta;
mod overlay;
mod path;
mod stream;
mod tree;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci::{Compression, Digest};

pub use error::{Refusal, UnpackError};
pub use hardlink::resolve_pending_hardlinks;

/// What happens to character and block device entries of a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevicePolicy {
    /// Not created; counted and logged at debug. The default.
    #[default]
    Skip,
    /// The layer is refused.
    Refuse,
    /// Created as the layer says (needs `CAP_MKNOD`); for trusted images only.
    Create,
}

/// Which xattr namespace marks opaque directories (overlayfs reads `trusted.overlay.*`, or
/// `user.overlay.*` when mounted with `userxattr`, as rootless overlay is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayXattrs {
    Trusted,
    User,
}

impl OverlayXattrs {
    /// `Trusted` when running as root, `User` otherwise (only root may set `trusted.*`).
    pub fn for_current_user() -> Self {
        if nix::unistd::geteuid().is_root() {
            OverlayXattrs::Trusted
        } else {
            OverlayXattrs::User
        }
    }

    /// The name of the opaque-directory xattr.
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }

    /// The name of the xattr that marks an empty regular file as a whiteout (the form used
    /// without root, see the module `overlay`).
    pub fn whiteout(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.whiteout",
            OverlayXattrs::User => "user.overlay.whiteout",
        }
    }
}

/// Bounds on what one layer may make unpack do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the uncompressed tar stream, headers and trailing data included.
    pub max_tar_bytes: u64,
    /// Bytes of regular-file content written.
    pub max_unpacked_bytes: u64,
    /// Tar entries, extension headers not counted.
    pub max_entries: u64,
    /// Bytes of an entry's path or link target as written in the tar.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tar_bytes: 64 << 30,
            max_unpacked_bytes: 32 << 30,
            max_entries: 4_000_000,
            max_path_len: 4096,
        }
    }
}

/// How to apply a layer.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Names the layer in errors and logs; the caller passes the layer's digest.
    pub label: String,
    /// Whether to set owners from the tar (default: when running as root). Without it,
    /// files belong to the unpacking user and xattrs it may not set are skipped.
    pub ownership: bool,
    pub limits: Limits,
    pub devices: DevicePolicy,
    pub overlay_xattrs: OverlayXattrs,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            label: "layer".to_string(),
            ownership: nix::unistd::geteuid().is_root(),
            limits: Limits::default(),
            devices: DevicePolicy::default(),
            overlay_xattrs: OverlayXattrs::for_current_user(),
        }
    }
}

impl ApplyOptions {
    /// The defaults, with `label` (usually the layer digest) naming the layer in errors.
    pub fn new(label: impl Into<String>) -> Self {
        ApplyOptions {
            label: label.into(),
            ..ApplyOptions::default()
        }
    }
}

/// A hardlink whose target is not in its own layer. Both paths are relative to a layer root,
/// normalised (no `..`, no leading slash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingHardlink {
    pub link: PathBuf,
    pub target: PathBuf,
}

/// What applying a layer produced.
#[derive(Clone, Debug)]
pub struct AppliedLayer {
    /// sha256 of the whole uncompressed stream, trailing bytes included.
    pub diff_id: Digest,
    /// Length of the uncompressed stream.
    pub tar_bytes: u64,
    /// Bytes of regular-file content written.
    pub unpacked_bytes: u64,
    /// Tar entries seen, extension headers not counted.
    pub entries: u64,
    /// Device nodes left out under [`DevicePolicy::Skip`].
    pub skipped_devices: u64,
    /// Hardlinks to resolve with [`resolve_pending_hardlinks`] once the lower layers exist.
    pub pending_hardlinks: Vec<PendingHardlink>,
}

/// Decompresses `compressed` and applies the layer into the empty directory `dest`.
///
/// Reads `compressed` to its end, bytes after the tar's end blocks included, so a caller
/// that tees the stream into the content store sees all of it.
///
/// # Errors
///
/// A refused entry ([`UnpackError::Refused`]), a failed filesystem step, a corrupt stream,
/// or a limit exceeded. `dest` then holds a partial tree the caller must remove.
pub fn apply_layer<R: Read>(
    compressed: R,
    compression: Compression,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<AppliedLayer, UnpackError> {
    let span = tracing::debug_span!("unpack", layer = %opts.label);
    let _entered = span.enter();
    let stream_error = |source: io::Error| UnpackError::Stream {
        layer: opts.label.clone(),
        compression: compression.to_string(),
        source,
    };
    let tree = tree::Tree::open(dest, opts.overlay_xattrs).map_err(|source| UnpackError::Dest {
        layer: opts.label.clone(),
        dest: dest.to_path_buf(),
        source,
    })?;
    let source = stream::tar_source(compressed, compression, opts.limits.max_tar_bytes)
        .map_err(stream_error)?;
    let mut archive = tar::Archive::new(source);
    let mut applier = apply::Applier::new(tree, opts);
    applier.prepare_root()?;

    let applied =
        apply_entries(&mut archive, &mut applier, &stream_error).and_then(|()| applier.finish());
    let mut rest = archive.into_inner();
    let drained = applied.and_then(|()| io::copy(&mut rest, &mut io::sink()).map_err(stream_error));
    let hashing = rest.into_inner();
    if let Err(e) = drained {
        // The size bound surfaces as whatever read error the tar parser wrapped it in.
        if hashing.limit_hit {
            return Err(UnpackError::Limit {
                layer: opts.label.clone(),
                what: "the uncompressed layer stream",
                limit: opts.limits.max_tar_bytes,
            });
        }
        return Err(e);
    }

    let tar_bytes = hashing.bytes_read();
    let diff_id = hashing.finish();
    tracing::debug!(%diff_id, tar_bytes, entries = applier.entries, "layer applied");
    Ok(AppliedLayer {
        diff_id,
        tar_bytes,
        unpacked_bytes: applier.unpacked,
        entries: applier.entries,
        skipped_devices: applier.skipped_devices,
        pending_hardlinks: std::mem::take(&mut applier.pending),
    })
}

fn apply_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    applier: &mut apply::Applier<'_>,
    stream_error: &dyn Fn(io::Error) -> UnpackError,
) -> Result<(), UnpackError> {
    for entry in archive.entries().map_err(stream_error)? {
        applier.entry(entry.map_err(stream_error)?)?;
    }
    Ok(())
}
