//! The content store: blobs (layers, configs, manifests) addressed by digest.
//!
//! Layout under `<data-dir>/content/`:
//! - `blobs/<algorithm>/<hex>`: a complete, verified blob (`blobs/sha256/...` in practice).
//!   Only ever created by a rename.
//! - `ingest/<algorithm>-<hex>.partial`: a download in progress, hashed and counted as it is
//!   written.
//! - `ingest/<algorithm>-<hex>.lock`: the single-flight lock for that blob (see [`crate::lock`]).
//!
//! Every write of a blob happens under its lock, so at most one writer fills a given partial
//! file at a time, in this process or another. A partial file found when the lock is taken
//! is left over from a killed pull: [`ContentStore::resume`] keeps its bytes (hashing them
//! again) so that the download goes on from where it stopped with a range request; when the
//! registry ignores the range, the caller starts again with [`ContentStore::ingest`], which
//! truncates. A partial file survives an [`Ingest`] dropped without commit (a network error
//! keeps what was fetched), and is deleted when its bytes turn out wrong at commit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use oci::{Algorithm, Digest, Digester};

use crate::lock::{FileLock, LockMode, sync_dir};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: cannot {step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is larger than the {expected} bytes its descriptor states")]
    TooLarge { digest: Digest, expected: u64 },
    #[error("blob {digest} has {got} bytes, its descriptor states {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        got: u64,
    },
    #[error(
        "blob {expected} has digest {got}: the bytes received do not match the digest asked for"
    )]
    DigestMismatch { expected: Digest, got: Digest },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContentError {
    move |source| ContentError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// The blob store of one data directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

impl ContentStore {
    /// Opens (creating when missing) `<data-dir>/content`.
    pub fn open(data_dir: &Path) -> Result<Self, ContentError> {
        let root = data_dir.join("content");
        let blobs = root.join("blobs");
        let ingest = root.join("ingest");
        for dir in [blobs.join("sha256"), blobs.join("sha512"), ingest.clone()] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(Self { blobs, ingest })
    }

    /// Where the blob lives once complete.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Whether the complete blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a whole (small) blob, such as a config or a manifest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_err("read", &path))
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(io_err("open", &path))
    }

    /// Takes the single-flight lock of one blob. Callers re-check [`Self::contains`] after.
    pub async fn lock(&self, digest: &Digest) -> Result<FileLock, ContentError> {
        let path = self.lock_path(digest);
        FileLock::acquire(&path, LockMode::Exclusive)
            .await
            .map_err(io_err("lock", &path))
    }

    /// Takes the lock of one blob from blocking code.
    pub fn lock_blocking(&self, digest: &Digest) -> Result<FileLock, ContentError> {
        let path = self.lock_path(digest);
        FileLock::acquire_blocking(&path, LockMode::Exclusive).map_err(io_err("lock", &path))
    }

    fn lock_path(&self, digest: &Digest) -> PathBuf {
        self.ingest
            .join(format!("{}-{}.lock", digest.algorithm(), digest.hex()))
    }

    fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.ingest
            .join(format!("{}-{}.partial", digest.algorithm(), digest.hex()))
    }

    /// Starts writing a blob from its first byte. The lock proves the caller is the only
    /// writer; a partial file left by a killed pull is truncated.
    pub fn ingest(
        &self,
        digest: &Digest,
        size: u64,
        _lock: &FileLock,
    ) -> Result<Ingest, ContentError> {
        let partial = self.partial_path(digest);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&partial)
            .map_err(io_err("create", &partial))?;
        Ok(Ingest::new(
            file,
            partial,
            self.blob_path(digest),
            digest,
            size,
        ))
    }

    /// The bytes a killed pull left in the blob's partial file (0 when there is none, or
    /// when it is longer than the blob can be). Only meaningful under the blob's lock.
    pub fn partial_len(&self, digest: &Digest, size: u64, _lock: &FileLock) -> u64 {
        match fs::metadata(self.partial_path(digest)) {
            Ok(m) if m.is_file() && m.len() <= size => m.len(),
            _ => 0,
        }
    }

    /// Goes on with a partial file: returns the ingest, positioned after the `len` bytes
    /// already there, and a reader of those bytes. The caller passes every byte of the
    /// reader through [`Ingest::absorb`] (which hashes without writing) before the first
    /// [`Ingest::write`]; the digest check at commit covers both parts.
    pub fn resume(
        &self,
        digest: &Digest,
        size: u64,
        len: u64,
        _lock: &FileLock,
    ) -> Result<(Ingest, io::Take<File>), ContentError> {
        let partial = self.partial_path(digest);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&partial)
            .map_err(io_err("open", &partial))?;
        // Bytes past `len` (written after the caller measured) are dropped, not trusted.
        file.set_len(len).map_err(io_err("truncate", &partial))?;
        file.seek(io::SeekFrom::Start(len))
            .map_err(io_err("seek", &partial))?;
        let reader = File::open(&partial)
            .map_err(io_err("open", &partial))?
            .take(len);
        let mut ingest = Ingest::new(file, partial, self.blob_path(digest), digest, size);
        ingest.prefix = len;
        Ok((ingest, reader))
    }

    /// Stores a small blob held in memory (configs, manifests), verifying it like a download.
    pub async fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ContentError> {
        if self.contains(digest) {
            return Ok(());
        }
        let lock = self.lock(digest).await?;
        if self.contains(digest) {
            return Ok(());
        }
        let mut ingest = self.ingest(digest, bytes.len() as u64, &lock)?;
        ingest.write(bytes)?;
        ingest.commit()
    }

    /// Removes a blob and its lock file. Callers hold the store-wide exclusive lock, so no
    /// pull is using it.
    pub fn remove(&self, digest: &Digest) -> Result<(), ContentError> {
        let lock = self.lock_blocking(digest)?;
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &path)(e));
            }
            _ => {}
        }
        let lock_path = self.lock_path(digest);
        lock.remove_file().map_err(io_err("remove", &lock_path))
    }

    /// The digests of every complete blob.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for algorithm in ALGORITHMS {
            let dir = self.blobs.join(algorithm.as_str());
            for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
                let entry = entry.map_err(io_err("list", &dir))?;
                if let Some(name) = entry.file_name().to_str()
                    && let Ok(d) = Digest::parse(&format!("{algorithm}:{name}"))
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Deletes every partial download. Only safe while no pull runs (the store-wide
    /// exclusive lock is held).
    pub fn remove_partials(&self) -> Result<usize, ContentError> {
        let mut n = 0;
        for entry in fs::read_dir(&self.ingest).map_err(io_err("list", &self.ingest))? {
            let entry = entry.map_err(io_err("list", &self.ingest))?;
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A blob being written: every byte is hashed and counted; [`Ingest::commit`] checks both,
/// fsyncs, and renames the file into place. Dropped without commit, the partial file stays
/// for a later [`ContentStore::resume`]; bytes found wrong at commit are deleted.
#[derive(Debug)]
pub struct Ingest {
    file: File,
    partial: PathBuf,
    final_path: PathBuf,
    hasher: Digester,
    expected: Digest,
    size: u64,
    written: u64,
    /// Bytes already in the partial file that [`Ingest::absorb`] still has to hash.
    prefix: u64,
}

impl Ingest {
    fn new(file: File, partial: PathBuf, final_path: PathBuf, digest: &Digest, size: u64) -> Self {
        Ingest {
            file,
            partial,
            final_path,
            hasher: Digester::with_algorithm(digest.algorithm()),
            expected: digest.clone(),
            size,
            written: 0,
            prefix: 0,
        }
    }

    /// Hashes and counts bytes that are already in the partial file (see
    /// [`ContentStore::resume`]).
    pub fn absorb(&mut self, buf: &[u8]) -> Result<(), ContentError> {
        let n = buf.len() as u64;
        if self.written + n > self.prefix {
            let step = "hash resumed bytes beyond the partial file's length in";
            let source = io::Error::other("more bytes absorbed than the partial file held");
            return Err(ContentError::Io {
                step,
                path: self.partial.clone(),
                source,
            });
        }
        self.written += n;
        self.hasher.update(buf);
        Ok(())
    }

    /// Appends bytes, failing as soon as more arrive than the descriptor's size.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), ContentError> {
        if self.written < self.prefix {
            let step = "append before hashing the resumed bytes of";
            let source = io::Error::other("absorb the partial file's bytes first");
            return Err(ContentError::Io {
                step,
                path: self.partial.clone(),
                source,
            });
        }
        self.written += buf.len() as u64;
        if self.written > self.size {
            let _ = fs::remove_file(&self.partial);
            let expected = self.size;
            return Err(ContentError::TooLarge {
                digest: self.expected.clone(),
                expected,
            });
        }
        self.hasher.update(buf);
        self.file
            .write_all(buf)
            .map_err(io_err("write", &self.partial))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks size and digest; on success the blob is durable and visible under its name.
    pub fn commit(self) -> Result<(), ContentError> {
        if let Err(e) = self.verify() {
            let _ = fs::remove_file(&self.partial);
            return Err(e);
        }
        self.file
            .sync_all()
            .map_err(io_err("fsync", &self.partial))?;
        fs::rename(&self.partial, &self.final_path).map_err(io_err("rename", &self.partial))?;
        let dir = self.final_path.parent().expect("blob paths have a parent");
        sync_dir(dir).map_err(io_err("fsync", dir))
    }

    /// Checks size and digest of what was written, without committing.
    pub fn verify(&self) -> Result<(), ContentError> {
        if self.written != self.size {
            return Err(ContentError::SizeMismatch {
                digest: self.expected.clone(),
                expected: self.size,
                got: self.written,
            });
        }
        let got = self.hasher.clone().finish();
        if got != self.expected {
            return Err(ContentError::DigestMismatch {
                expected: self.expected.clone(),
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn blob_is_visible_only_after_commit() {
        let (_dir, store) = store();
        let data = b"hello, layer".to_vec();
        let digest = Digest::sha256_of(&data);
        let lock = store.lock_blocking(&digest).unwrap();
        let mut ingest = store.ingest(&digest, data.len() as u64, &lock).unwrap();
        ingest.write(&data[..5]).unwrap();
        assert!(
            !store.contains(&digest),
            "a half-written blob must not be visible"
        );
        ingest.write(&data[5..]).unwrap();
        ingest.commit().unwrap();
        assert_eq!(store.read(&digest).unwrap(), data);
    }

    #[test]
    fn wrong_bytes_are_refused_and_leave_nothing() {
        let (dir, store) = store();
        let digest = Digest::sha256_of(b"the real bytes");
        let lock = store.lock_blocking(&digest).unwrap();
        let mut ingest = store.ingest(&digest, 14, &lock).unwrap();
        ingest.write(b"other bytes!!!").unwrap();
        assert!(matches!(
            ingest.commit(),
            Err(ContentError::DigestMismatch { .. })
        ));
        assert!(!store.contains(&digest));
        let partials = fs::read_dir(dir.path().join("content/ingest"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".partial")
            })
            .count();
        assert_eq!(
            partials, 0,
            "a partial file with wrong bytes must be deleted"
        );
    }

    #[test]
    fn too_many_bytes_fail_at_once() {
        let (_dir, store) = store();
        let digest = Digest::sha256_of(b"abc");
        let lock = store.lock_blocking(&digest).unwrap();
        let mut ingest = store.ingest(&digest, 3, &lock).unwrap();
        assert!(matches!(
            ingest.write(b"abcd"),
            Err(ContentError::TooLarge { .. })
        ));
    }

    #[test]
    fn an_interrupted_ingest_resumes_from_its_partial_file() {
        let (_dir, store) = store();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let size = data.len() as u64;
        let lock = store.lock_blocking(&digest).unwrap();
        let mut first = store.ingest(&digest, size, &lock).unwrap();
        first.write(&data[..4000]).unwrap();
        drop(first);
        assert!(!store.contains(&digest));

        let have = store.partial_len(&digest, size, &lock);
        assert_eq!(have, 4000);
        let (mut ingest, mut prefix) = store.resume(&digest, size, have, &lock).unwrap();
        let mut old = Vec::new();
        prefix.read_to_end(&mut old).unwrap();
        assert_eq!(old, data[..4000]);
        ingest.absorb(&old).unwrap();
        ingest.write(&data[4000..]).unwrap();
        ingest.commit().unwrap();
        assert_eq!(store.read(&digest).unwrap(), data);
    }
}
