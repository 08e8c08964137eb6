//! Layer tarballs built entry by entry, well-formed or hostile.
//!
//! [`LayerBuilder`] writes every tar header itself (GNU format, with `././@LongLink` entries
//! for names and link targets over 100 bytes and a PAX header for xattrs) instead of going
//! through the `tar` crate's path setters, which refuse `..`, absolute paths and the like.
//! Tests of hostile layers therefore can say exactly which bytes a name holds:
//! [`LayerBuilder::raw`] takes any name and link name as bytes.
//!
//! The convenience methods ([`LayerBuilder::dir`], [`LayerBuilder::file`], …) write names
//! as given (a directory gets a trailing `/` as tar tools write it) with a fixed mtime, so
//! the same calls always give the same bytes and so the same digests.

use crate::image::{Compression, Layer};

/// The mtime of entries whose [`Meta`] does not set one.
pub const DEFAULT_MTIME: u64 = 1_700_000_000;

/// The name GNU tar gives the pseudo-entries that carry long names.
const LONG_LINK: &[u8] = b"././@LongLink";

/// Ownership, permissions, time and xattrs of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    /// `None` takes the entry type's usual mode: 0o755 for directories, 0o644 for files,
    /// 0o777 for symlinks, 0o600 for devices and fifos.
    pub mode: Option<u32>,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Written as PAX `SCHILY.xattr.<name>=<value>` records before the entry.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta {
            mode: None,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            xattrs: Vec::new(),
        }
    }
}

impl Meta {
    pub fn new() -> Meta {
        Meta::default()
    }

    pub fn mode(mut self, mode: u32) -> Meta {
        self.mode = Some(mode);
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Meta {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Meta {
        self.mtime = mtime;
        self
    }

    /// Adds an xattr, e.g. `xattr("user.note", b"hi")` or `xattr("security.capability", …)`.
    pub fn xattr(mut self, name: &str, value: &[u8]) -> Meta {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }
}

/// One entry written exactly as described, with no check of its name or link name.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub kind: tar::EntryType,
    /// The name's bytes as they appear in the archive (GNU long name when over 100 bytes).
    pub name: Vec<u8>,
    /// The link name's bytes for symlinks and hardlinks (may be empty).
    pub link_name: Vec<u8>,
    /// The data written after the header, padded to 512 bytes.
    pub data: Vec<u8>,
    /// The size written into the header; `None` writes `data.len()`. A size that differs
    /// from the data makes a corrupt archive, which is the point when set.
    pub declared_size: Option<u64>,
    /// Major and minor device numbers for character and block devices.
    pub device: Option<(u32, u32)>,
    pub meta: Meta,
}

impl RawEntry {
    /// An entry of `kind` named by these exact bytes, without data or link name.
    pub fn new(kind: tar::EntryType, name: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            kind,
            name: name.into(),
            link_name: Vec::new(),
            data: Vec::new(),
            declared_size: None,
            device: None,
            meta: Meta::default(),
        }
    }

    pub fn link_name(mut self, target: impl Into<Vec<u8>>) -> RawEntry {
        self.link_name = target.into();
        self
    }

    pub fn data(mut self, data: impl Into<Vec<u8>>) -> RawEntry {
        self.data = data.into();
        self
    }

    pub fn declared_size(mut self, size: u64) -> RawEntry {
        self.declared_size = Some(size);
        self
    }

    pub fn device(mut self, major: u32, minor: u32) -> RawEntry {
        self.device = Some((major, minor));
        self
    }

    pub fn meta(mut self, meta: Meta) -> RawEntry {
        self.meta = meta;
        self
    }
}

/// Builds a layer's tar stream entry by entry, in the order of the calls.
///
/// ```
/// use hoist_testkit::layer::{LayerBuilder, Meta};
/// let tar = LayerBuilder::new()
///     .dir("etc")
///     .file("etc/hostname", b"box\n")
///     .file_with("bin/su", b"#!", Meta::new().mode(0o4755))
///     .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
///     .whiteout("etc/old")
///     .build();
/// assert_eq!(tar.len() % 512, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    out: Vec<u8>,
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        LayerBuilder::default()
    }

    /// A directory, mode 0o755, owned by root. The name gets a trailing `/`.
    pub fn dir(self, path: &str) -> Self {
        self.dir_with(path, Meta::default())
    }

    pub fn dir_with(self, path: &str, meta: Meta) -> Self {
        let mut name = path.as_bytes().to_vec();
        if !name.ends_with(b"/") {
            name.push(b'/');
        }
        self.raw(RawEntry::new(tar::EntryType::Directory, name).meta(meta))
    }

    /// A regular file, mode 0o644, owned by root.
    pub fn file(self, path: &str, contents: &[u8]) -> Self {
        self.file_with(path, contents, Meta::default())
    }

    pub fn file_with(self, path: &str, contents: &[u8], meta: Meta) -> Self {
        let entry = RawEntry::new(tar::EntryType::Regular, path)
            .data(contents)
            .meta(meta);
        self.raw(entry)
    }

    /// A symlink at `path` pointing at `target` (kept as written, relative or absolute).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.raw(RawEntry::new(tar::EntryType::Symlink, path).link_name(target))
    }

    /// A hardlink at `path` to `target`, a path inside the layer as tar writes it.
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.raw(RawEntry::new(tar::EntryType::Link, path).link_name(target))
    }

    /// The whiteout that deletes `path` of a lower layer: an empty file `dir/.wh.name`.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = split_parent(path);
        self.file(&format!("{dir}.wh.{name}"), b"")
    }

    /// The opaque marker `dir/.wh..wh..opq`, hiding everything lower layers have in `dir`
    /// (`""` for the root).
    pub fn opaque(self, dir: &str) -> Self {
        let dir = dir.trim_end_matches('/');
        let name = match dir {
            "" => ".wh..wh..opq".to_string(),
            d => format!("{d}/.wh..wh..opq"),
        };
        self.file(&name, b"")
    }

    /// A character device, mode 0o600 unless `meta` says otherwise.
    pub fn char_device(self, path: &str, major: u32, minor: u32, meta: Meta) -> Self {
        let entry = RawEntry::new(tar::EntryType::Char, path).device(major, minor);
        self.raw(entry.meta(meta))
    }

    /// A block device, mode 0o600 unless `meta` says otherwise.
    pub fn block_device(self, path: &str, major: u32, minor: u32, meta: Meta) -> Self {
        let entry = RawEntry::new(tar::EntryType::Block, path).device(major, minor);
        self.raw(entry.meta(meta))
    }

    /// A named pipe.
    pub fn fifo(self, path: &str) -> Self {
        self.raw(RawEntry::new(tar::EntryType::Fifo, path))
    }

    /// Any entry, its name and link name written byte for byte.
    pub fn raw(mut self, entry: RawEntry) -> Self {
        write_entry(&mut self.out, &entry);
        self
    }

    /// Appends bytes as they are, e.g. a truncated header or garbage after the entries.
    pub fn raw_bytes(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// The tar stream, closed by the two zero blocks of the end marker.
    pub fn build(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }

    /// The tar stream without the end marker, for archives that end abruptly.
    pub fn build_unterminated(self) -> Vec<u8> {
        self.out
    }

    /// The tar stream compressed into a [`Layer`].
    pub fn into_layer(self, compression: Compression) -> Layer {
        Layer::from_tar(&self.build(), compression)
    }
}

fn split_parent(path: &str) -> (String, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    }
}

fn default_mode(kind: tar::EntryType) -> u32 {
    match kind {
        tar::EntryType::Directory => 0o755,
        tar::EntryType::Symlink => 0o777,
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => 0o600,
        _ => 0o644,
    }
}

fn write_entry(out: &mut Vec<u8>, e: &RawEntry) {
    if !e.meta.xattrs.is_empty() {
        let mut records = Vec::new();
        for (name, value) in &e.meta.xattrs {
            records.extend(pax_record(format!("SCHILY.xattr.{name}").as_bytes(), value));
        }
        let pax = RawEntry::new(tar::EntryType::XHeader, b"././@PaxHeader".to_vec()).data(records);
        write_one(out, &pax);
    }
    if e.link_name.len() > 100 {
        let long = RawEntry::new(tar::EntryType::GNULongLink, LONG_LINK).data(nul(&e.link_name));
        write_one(out, &long);
    }
    if e.name.len() > 100 {
        let long = RawEntry::new(tar::EntryType::GNULongName, LONG_LINK).data(nul(&e.name));
        write_one(out, &long);
    }
    write_one(out, e);
}

fn nul(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(0);
    v
}

/// One PAX record: `<len> <key>=<value>\n`, where `len` counts the whole record, its own
/// digits included.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut rec = format!("{len} ").into_bytes();
    rec.extend_from_slice(key);
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Writes one header (names cut to the 100-byte fields; the long forms precede it) and its
/// padded data.
fn write_one(out: &mut Vec<u8>, e: &RawEntry) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(e.kind);
    h.set_mode(e.meta.mode.unwrap_or_else(|| default_mode(e.kind)));
    h.set_uid(e.meta.uid);
    h.set_gid(e.meta.gid);
    h.set_mtime(e.meta.mtime);
    h.set_size(e.declared_size.unwrap_or(e.data.len() as u64));
    if let Some((major, minor)) = e.device {
        h.set_device_major(major)
            .expect("gnu header has device fields");
        h.set_device_minor(minor)
            .expect("gnu header has device fields");
    }
    {
        let old = h.as_old_mut();
        let n = e.name.len().min(100);
        old.name[..n].copy_from_slice(&e.name[..n]);
        let n = e.link_name.len().min(100);
        old.linkname[..n].copy_from_slice(&e.link_name[..n]);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&e.data);
    let pad = (512 - e.data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
