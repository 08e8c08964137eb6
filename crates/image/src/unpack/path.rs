//! Entry paths as a layer may write them, normalised before anything touches the disk.
//!
//! A tar path is taken relative to the layer root: leading slashes, empty components and `.`
//! are dropped (docker does the same with absolute paths), and any `..` component is refused
//! outright, even one that would stay below the root, so no later step ever has to reason
//! about climbing. What remains is either the root itself or a [`LayerPath`] of plain names.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::Refusal;

/// The name prefix that marks a whiteout, and the name of the opaque-directory marker.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs, metadata), never content.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// A normalised path below the layer root: plain names joined by single slashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LayerPath {
    bytes: Vec<u8>,
    /// Where the last component starts (0 for a top-level name).
    name_at: usize,
}

/// What a raw tar path names once normalised.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Normal {
    Root,
    Path(LayerPath),
}

/// Normalises `raw` as described in the module header.
pub(crate) fn normalise(raw: &[u8], max_len: usize) -> Result<Normal, Refusal> {
    if raw.len() > max_len {
        return Err(Refusal::PathTooLong {
            len: raw.len(),
            limit: max_len,
        });
    }
    if raw.contains(&0) {
        return Err(Refusal::Nul);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut name_at = 0;
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(Refusal::DotDot),
            name => {
                if !bytes.is_empty() {
                    bytes.push(b'/');
                }
                name_at = bytes.len();
                bytes.extend_from_slice(name);
            }
        }
    }
    if bytes.is_empty() {
        return Ok(Normal::Root);
    }
    Ok(Normal::Path(LayerPath { bytes, name_at }))
}

impl LayerPath {
    /// The directory holding this entry, relative to the root (empty for a top-level name).
    pub(crate) fn parent(&self) -> &[u8] {
        self.bytes[..self.name_at.saturating_sub(1)].as_ref()
    }

    /// The last component.
    pub(crate) fn name(&self) -> &[u8] {
        &self.bytes[self.name_at..]
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.bytes))
    }

    pub(crate) fn to_path_buf(&self) -> PathBuf {
        self.as_path().to_path_buf()
    }

    /// The same directory with another last component.
    pub(crate) fn sibling(&self, name: &[u8]) -> LayerPath {
        let mut bytes = self.bytes[..self.name_at].to_vec();
        bytes.extend_from_slice(name);
        LayerPath {
            bytes,
            name_at: self.name_at,
        }
    }

    /// Builds a path from a relative [`Path`] such as one stored in a pending hardlink.
    pub(crate) fn from_relative(path: &Path) -> Result<LayerPath, Refusal> {
        match normalise(path.as_os_str().as_bytes(), usize::MAX)? {
            Normal::Path(p) => Ok(p),
            Normal::Root => Err(Refusal::ReplacesRoot),
        }
    }
}

/// How a last component is read with respect to whiteouts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    No,
    /// `.wh..wh..opq`: the parent directory hides everything below it in lower layers.
    Opaque,
    /// `.wh..wh.*` other than the opaque marker: aufs bookkeeping, skipped.
    AufsMeta,
    /// `.wh.NAME`: NAME is deleted from lower layers.
    Named(&'a [u8]),
}

/// Classifies a last component, refusing whiteouts that name nothing (`.wh.`, `.wh..`,
/// `.wh...`).
pub(crate) fn whiteout(name: &[u8]) -> Result<Whiteout<'_>, Refusal> {
    if name == OPAQUE_MARKER {
        return Ok(Whiteout::Opaque);
    }
    if name.starts_with(AUFS_META_PREFIX) {
        return Ok(Whiteout::AufsMeta);
    }
    let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(Whiteout::No);
    };
    match target {
        b"" | b"." | b".." => Err(Refusal::BadWhiteout {
            name: String::from_utf8_lossy(name).into_owned(),
        }),
        target => Ok(Whiteout::Named(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, Refusal> {
        match normalise(raw.as_bytes(), 4096)? {
            Normal::Root => Ok(String::new()),
            Normal::Path(p) => Ok(String::from_utf8(p.as_bytes().to_vec()).unwrap()),
        }
    }

    #[test]
    fn normalises_like_docker_and_refuses_dotdot() {
        let cases: &[(&str, Result<&str, Refusal>)] = &[
            ("etc/passwd", Ok("etc/passwd")),
            ("./etc//passwd", Ok("etc/passwd")),
            ("/etc/passwd", Ok("etc/passwd")),
            ("///etc/./x/", Ok("etc/x")),
            ("./", Ok("")),
            ("/", Ok("")),
            (".", Ok("")),
            ("", Ok("")),
            ("../x", Err(Refusal::DotDot)),
            ("a/../b", Err(Refusal::DotDot)),
            ("a/b/..", Err(Refusal::DotDot)),
            ("/../../etc", Err(Refusal::DotDot)),
            ("a/..b/...", Ok("a/..b/...")),
        ];
        for (raw, want) in cases {
            let got = norm(raw);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "path {raw:?}"
            );
        }
        assert_eq!(norm("a\0b"), Err(Refusal::Nul));
        assert_eq!(
            normalise(&[b'a'; 10], 9),
            Err(Refusal::PathTooLong { len: 10, limit: 9 })
        );
    }

    #[test]
    fn splits_parent_and_name() {
        let Normal::Path(p) = normalise(b"/a/b/c", 100).unwrap() else {
            panic!()
        };
        assert_eq!((p.parent(), p.name()), (&b"a/b"[..], &b"c"[..]));
        let Normal::Path(p) = normalise(b"top", 100).unwrap() else {
            panic!()
        };
        assert_eq!((p.parent(), p.name()), (&b""[..], &b"top"[..]));
        assert_eq!(p.sibling(b"x").as_bytes(), b"x");
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(whiteout(b"file"), Ok(Whiteout::No));
        assert_eq!(whiteout(b".wh.file"), Ok(Whiteout::Named(b"file")));
        assert_eq!(whiteout(b".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(whiteout(b".wh..wh.plnk"), Ok(Whiteout::AufsMeta));
        assert_eq!(whiteout(b".wh....x"), Ok(Whiteout::Named(b"...x")));
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert!(
                matches!(whiteout(bad), Err(Refusal::BadWhiteout { .. })),
                "{bad:?}"
            );
        }
    }
}
