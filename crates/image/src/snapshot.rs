//! Snapshots: one directory per layer, keyed by chain ID, in overlay "diff" form, used by the
//! runtime as overlayfs lower layers.
//!
//! Layout under `<data-dir>/snapshots/`:
//! - `<chainid-hex>/`: a complete unpacked layer. Only ever created by a rename.
//! - `.tmp-<chainid-hex>-<pid>-<n>/`: an unpack in progress.
//! - `.locks/<chainid-hex>.lock`: the single-flight lock of that chain ID.
//!
//! Two layers with the same chain ID have the same content on the same lowers, so they are
//! stored once. Whoever holds a chain ID's lock is its only writer, so temp dirs of that chain
//! ID found then are left over from a killed pull and are removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci::Digest;

use crate::lock::{FileLock, LockMode, sync_dir};

/// Errors of the snapshot directory.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshots: cannot {step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    move |source| SnapshotError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot directory of one data directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    locks: PathBuf,
}

impl Snapshots {
    /// Opens (creating when missing) `<data-dir>/snapshots`.
    pub fn open(data_dir: &Path) -> Result<Self, SnapshotError> {
        let root = data_dir.join("snapshots");
        let locks = root.join(".locks");
        fs::create_dir_all(&locks).map_err(io_err("create", &locks))?;
        Ok(Self { root, locks })
    }

    /// The directory of a committed snapshot (which may not exist).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    /// Whether the snapshot is committed. One `stat`.
    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Takes the single-flight lock of a chain ID. Callers re-check [`Self::exists`] after.
    pub async fn lock(&self, chain_id: &Digest) -> Result<FileLock, SnapshotError> {
        let path = self.lock_path(chain_id);
        FileLock::acquire(&path, LockMode::Exclusive)
            .await
            .map_err(io_err("lock", &path))
    }

    fn lock_path(&self, chain_id: &Digest) -> PathBuf {
        self.locks.join(format!("{}.lock", chain_id.hex()))
    }

    /// Creates an empty temp dir to unpack a layer into, first removing temp dirs of the same
    /// chain ID that a killed pull left (the lock proves nobody else is writing them).
    pub fn temp_dir(
        &self,
        chain_id: &Digest,
        _lock: &FileLock,
    ) -> Result<TempSnapshot, SnapshotError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(".tmp-{}-", chain_id.hex());
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_err("remove stale", &path))?;
            }
        }
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = self
            .root
            .join(format!("{prefix}{}-{n}", std::process::id()));
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        Ok(TempSnapshot {
            path,
            committed: false,
        })
    }

    /// Renames an unpacked temp dir into place and makes the rename durable.
    ///
    /// The files inside are not fsynced one by one: that would cost a sync per file of the
    /// layer. A crash right after a pull can therefore leave a snapshot whose files are
    /// short; the blob is intact in the content store, so removing the image and pulling
    /// again repairs it.
    pub fn commit(
        &self,
        mut tmp: TempSnapshot,
        chain_id: &Digest,
    ) -> Result<PathBuf, SnapshotError> {
        let dest = self.path(chain_id);
        fs::rename(&tmp.path, &dest).map_err(io_err("rename", &tmp.path))?;
        tmp.committed = true;
        sync_dir(&self.root).map_err(io_err("fsync", &self.root))?;
        Ok(dest)
    }

    /// Removes a snapshot and its lock file. Callers hold the store-wide exclusive lock.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let lock_path = self.lock_path(chain_id);
        let lock = FileLock::acquire_blocking(&lock_path, LockMode::Exclusive)
            .map_err(io_err("lock", &lock_path))?;
        let path = self.path(chain_id);
        // Rename first so a half-removed tree is never visible under the final name.
        let doomed = self.root.join(format!(".tmp-{}-rm", chain_id.hex()));
        match fs::rename(&path, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("rename", &path)(e)),
        }
        lock.remove_file().map_err(io_err("remove", &lock_path))
    }

    /// The chain IDs of every committed snapshot.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::parse(&format!("sha256:{name}"))
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes every temp dir. Only safe while no pull runs.
    pub fn remove_temps(&self) -> Result<usize, SnapshotError> {
        let mut n = 0;
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A directory a layer is being unpacked into; removed on drop unless committed.
#[derive(Debug)]
pub struct TempSnapshot {
    path: PathBuf,
    committed: bool,
}

impl TempSnapshot {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
