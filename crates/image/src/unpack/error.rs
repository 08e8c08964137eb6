//! Errors of layer unpack: one enum for the whole module, and the reasons an entry is refused.

use std::io;
use std::path::PathBuf;

/// Why applying a layer (or resolving its pending hardlinks) failed.
///
/// Every variant about an entry names the layer (its label from
/// [`ApplyOptions::label`](super::ApplyOptions)) and the entry's path as written in the tar.
/// On any error the destination holds a partial tree that the caller must remove.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {layer}: entry {entry:?} refused: {reason}")]
    Refused {
        layer: String,
        entry: String,
        reason: Refusal,
    },

    #[error("layer {layer}: entry {entry:?}: {step} failed")]
    Entry {
        layer: String,
        entry: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("layer {layer}: reading the {compression} tar stream failed")]
    Stream {
        layer: String,
        compression: String,
        #[source]
        source: io::Error,
    },

    #[error("layer {layer}: {what} exceeds the limit of {limit}; raise the limit if it is genuine")]
    Limit {
        layer: String,
        what: &'static str,
        limit: u64,
    },

    #[error("layer {layer}: opening the destination directory {dest} failed")]
    Dest {
        layer: String,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("layer {layer}: setting the metadata of directory {dir:?} failed")]
    DirMeta {
        layer: String,
        dir: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "layer {layer}: hardlink {link:?} to {target:?}: the target is in neither this layer \
         nor any lower layer; a hardlink must name a file that exists in the image"
    )]
    HardlinkTargetMissing {
        layer: String,
        link: PathBuf,
        target: PathBuf,
    },

    #[error("layer {layer}: hardlink {link:?} to {target:?}: {step} failed")]
    Hardlink {
        layer: String,
        link: PathBuf,
        target: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Why an entry of a layer is refused. Each says what would have been acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its path has a `..` component; layer paths must stay below the layer root")]
    DotDot,
    #[error("it would replace the layer root; only a directory entry may name the root")]
    ReplacesRoot,
    #[error("its path contains a NUL byte")]
    Nul,
    #[error("its path is {len} bytes long; the limit is {limit}")]
    PathTooLong { len: usize, limit: usize },
    #[error("{parent:?} on its path is a symlink; a layer may not write through a symlink")]
    SymlinkOnPath { parent: String },
    #[error("{parent:?} on its path is not a directory")]
    NotDirOnPath { parent: String },
    #[error("whiteout {name:?} names nothing; a whiteout is `.wh.` followed by a file name")]
    BadWhiteout { name: String },
    #[error("its link target {target:?} is invalid: {why}")]
    BadLinkTarget { target: String, why: &'static str },
    #[error("it is a hardlink to the directory {target:?}; only non-directories can be linked")]
    HardlinkToDir { target: String },
    #[error("tar entry type {0:?} is not supported in a layer")]
    UnsupportedType(char),
    #[error("it is a device node and the device policy refuses device nodes")]
    Device,
    #[error("its {field} {value} does not fit in 32 bits")]
    IdRange { field: &'static str, value: u64 },
}
