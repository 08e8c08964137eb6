//! Cross-process locks on files, shared by the content store, the snapshots and the image
//! records.
//!
//! A [`FileLock`] is an `flock(2)` on a small file that names what it protects (a blob, a
//! chain ID, the whole store). Separate `open`s conflict even inside one process, so tasks of
//! one pull and several `hoist` processes exclude each other the same way. A lock file may be
//! unlinked only by the holder of its lock; acquirers check after locking that the path still
//! names the inode they locked and retry otherwise, so deleting a lock file never lets two
//! holders in at once.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Whether the lock excludes everyone or only exclusive holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held `flock`; released on drop.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    _flock: Flock<File>,
}

impl FileLock {
    /// Takes the lock without blocking, or returns `None` when someone else holds it.
    pub fn try_acquire(path: &Path, mode: LockMode) -> io::Result<Option<Self>> {
        acquire(path, mode, false)
    }

    /// Takes the lock, blocking the calling thread until it is free.
    pub fn acquire_blocking(path: &Path, mode: LockMode) -> io::Result<Self> {
        acquire(path, mode, true).map(|l| l.expect("a blocking lock is always acquired"))
    }

    /// Takes the lock from async code: a non-blocking try first (the uncontended case costs
    /// no thread hop), then a blocking wait on tokio's blocking pool.
    pub async fn acquire(path: &Path, mode: LockMode) -> io::Result<Self> {
        if let Some(lock) = Self::try_acquire(path, mode)? {
            return Ok(lock);
        }
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::acquire_blocking(&path, mode))
            .await
            .map_err(io::Error::other)?
    }

    /// Unlinks the lock file while still holding the lock (see the module header).
    pub fn remove_file(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn acquire(path: &Path, mode: LockMode, block: bool) -> io::Result<Option<FileLock>> {
    let arg = match (mode, block) {
        (LockMode::Shared, true) => FlockArg::LockShared,
        (LockMode::Shared, false) => FlockArg::LockSharedNonblock,
        (LockMode::Exclusive, true) => FlockArg::LockExclusive,
        (LockMode::Exclusive, false) => FlockArg::LockExclusiveNonblock,
    };
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let flock = match Flock::lock(file, arg) {
            Ok(flock) => flock,
            Err((_, Errno::EWOULDBLOCK)) if !block => return Ok(None),
            Err((_, Errno::EINTR)) => continue,
            Err((_, errno)) => return Err(io::Error::from(errno)),
        };
        // The holder before us may have unlinked the file: then our lock guards nothing.
        let ours = flock.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                return Ok(Some(FileLock {
                    path: path.to_path_buf(),
                    _flock: flock,
                }));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Fsyncs a directory, so that a rename or unlink inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
