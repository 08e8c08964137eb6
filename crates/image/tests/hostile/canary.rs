//! The canary of the hostile-layer tests: a tree beside the data directory that hostile
//! entries aim at, and a record of its full state to compare before and after a layer.
//!
//! A [`Fixture`] is one tempdir holding `data/` (the data directory, whose `snapshots/`
//! holds the layers under test) and `canary/`. From a snapshot directory
//! `data/snapshots/<name>`, `../../../canary` is the canary, and [`Fixture::expand`] turns
//! `@C` in a test's text into the canary's absolute path. [`Fixture::state`] records every
//! node of the tempdir outside `data/`, the tempdir itself included, so a layer that
//! creates, changes or deletes anything there (even a chmod to the same mode, through the
//! change time) shows up in [`diff`].

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
    pub canary: PathBuf,
}

/// What is recorded of one node: everything a write through it could change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    kind: &'static str,
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content_sha256: Option<String>,
    link_target: Option<PathBuf>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Path (relative to the fixture's root, `""` for the root itself) to node.
pub type State = BTreeMap<String, Node>;

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("hoist-hostile-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical tempdir");
        let data = root.join("data");
        let canary = root.join("canary");
        fs::create_dir_all(data.join("snapshots")).expect("data dir");

        let c = |p: &str| canary.join(p);
        fs::create_dir_all(c("dir")).expect("canary dir");
        write(&c("f"), b"canary file\n", 0o644);
        write(&c("secret"), b"do not touch\n", 0o600);
        write(&c("dir/inner"), b"inner\n", 0o640);
        symlink("f", c("link")).expect("canary relative symlink");
        symlink(c("dir"), c("abs")).expect("canary absolute symlink");
        if nix::unistd::geteuid().is_root() {
            // An owner no layer entry uses, so a chown through a link would show.
            let (uid, gid) = (Some(1234), Some(5678));
            std::os::unix::fs::lchown(c("secret"), uid, gid).expect("chown canary");
        }
        set_mode(&c("dir"), 0o750);
        set_mode(&canary, 0o755);
        // Directories last, so their times are not moved by what is made inside.
        for (n, p) in ["f", "secret", "dir/inner", "dir", ""].iter().enumerate() {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + n as u64);
            let file = fs::File::open(c(p)).expect("open canary node");
            file.set_modified(t).expect("set canary mtime");
        }
        Fixture {
            _tmp: tmp,
            root,
            data,
            canary,
        }
    }

    /// `text` with every `@C` replaced by the canary's absolute path.
    pub fn expand(&self, text: &str) -> String {
        text.replace("@C", &self.canary.to_string_lossy())
    }

    /// A snapshot directory `data/snapshots/<name>`, created empty.
    pub fn snapshot_dir(&self, name: &str) -> PathBuf {
        let dir = self.data.join("snapshots").join(name);
        fs::create_dir(&dir).expect("snapshot dir");
        dir
    }

    /// Every node of the fixture outside the data directory.
    pub fn state(&self) -> State {
        let mut out = State::new();
        walk(&self.root, &self.root, &self.data, &mut out);
        out
    }
}

fn write(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).expect("write canary file");
    set_mode(path, mode);
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod canary");
}

fn walk(root: &Path, path: &Path, skip: &Path, out: &mut State) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {path:?}: {e}"));
    let ft = meta.file_type();
    let kind = match () {
        _ if ft.is_dir() => "dir",
        _ if ft.is_file() => "file",
        _ if ft.is_symlink() => "symlink",
        _ => "other",
    };
    let content_sha256 = ft.is_file().then(|| {
        let mut bytes = Vec::new();
        fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .expect("read canary file");
        oci::Digest::sha256_of(&bytes).to_string()
    });
    let mut xattrs: Vec<(String, Vec<u8>)> = xattr::list(path)
        .expect("list xattrs")
        .map(|n| {
            let value = xattr::get(path, &n).ok().flatten().unwrap_or_default();
            (n.to_string_lossy().into_owned(), value)
        })
        .collect();
    xattrs.sort();
    let rel = path.strip_prefix(root).expect("below the root");
    out.insert(
        rel.to_string_lossy().into_owned(),
        Node {
            kind,
            ino: meta.ino(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            nlink: meta.nlink(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            content_sha256,
            link_target: ft
                .is_symlink()
                .then(|| fs::read_link(path).expect("readlink")),
            xattrs,
        },
    );
    if ft.is_dir() {
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .expect("list canary dir")
            .map(|e| e.expect("canary dir entry").path())
            .filter(|p| p != skip)
            .collect();
        children.sort();
        for child in children {
            walk(root, &child, skip, out);
        }
    }
}

/// What changed between two states, one line per path; `None` when nothing did.
pub fn diff(before: &State, after: &State) -> Option<String> {
    let mut lines = Vec::new();
    for (path, node) in before {
        match after.get(path) {
            None => lines.push(format!("removed {path:?}")),
            Some(now) if now != node => {
                lines.push(format!("changed {path:?}: {node:?} -> {now:?}"));
            }
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        lines.push(format!("created {path:?}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n  "))
}
