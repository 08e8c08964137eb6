//! Image records: which references are present, what they resolved to, and which blobs and
//! snapshots they use; plus removal with garbage collection.
//!
//! Layout under `<data-dir>/`:
//! - `images/<escaped full reference>.json`: one [`ImageRecord`] per reference, written to a
//!   temp file, fsynced and renamed, so a reader sees the old or the new record, never half.
//! - `leases/<id>`: a file whose content is the config digest of an image in use (written by
//!   the runtime for each container); an image with a lease is not removed.
//! - `store.lock`: pulls hold it shared for their whole run, removal and garbage collection
//!   exclusively, so GC never deletes a blob or snapshot that a running pull is about to
//!   record, and the partial files and temp dirs GC finds are certainly stale.
//!
//! The [`Store`] ties the [`ContentStore`] and the [`Snapshots`] together.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci::{Digest, Reference};
use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::lock::{FileLock, LockMode, sync_dir};
use crate::snapshot::{SnapshotError, Snapshots};

/// Errors of the image records and removal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("image store: cannot {step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image record {path} is not valid JSON for a record; remove it and pull again")]
    BadRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("image {0} is not present")]
    NotFound(String),
    #[error("image ID prefix {prefix} matches several references ({refs}); name one of them")]
    Ambiguous { prefix: String, refs: String },
    #[error("image {reference} is in use by containers (leases {leases}); remove them first")]
    InUse { reference: String, leases: String },
    #[error("image store: reading the config of {reference}")]
    Config {
        reference: String,
        #[source]
        source: ContentError,
    },
    #[error("image store: config blob of {reference} is not an image config")]
    BadConfig {
        reference: String,
        #[source]
        source: oci::config::ConfigError,
    },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// One layer of a recorded image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the (compressed) layer blob, as in the manifest.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    pub media_type: String,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Chain ID: names the snapshot directory.
    pub chain_id: Digest,
}

/// What a reference resolved to when it was pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The full reference, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    /// The digest the reference resolved to: for an index, the index's digest.
    pub digest: Digest,
    /// The digest of the platform's image manifest (equal to `digest` without an index).
    pub manifest_digest: Digest,
    /// `os/arch[/variant]` of the manifest chosen.
    pub platform: String,
    /// The config digest; its hex is the image ID.
    pub config_digest: Digest,
    /// Layers bottom first, as in the manifest.
    pub layers: Vec<LayerRecord>,
    /// Sum of the layer blob sizes and the config size.
    pub size: u64,
    /// When the record was written, seconds since the Unix epoch.
    pub pulled_at: u64,
    #[serde(skip)]
    data_dir: PathBuf,
}

impl ImageRecord {
    /// Builds a record; the store fills in where it lives when it is written or read.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        reference: &Reference,
        digest: Digest,
        manifest_digest: Digest,
        platform: String,
        config_digest: Digest,
        config_size: u64,
        layers: Vec<LayerRecord>,
    ) -> Self {
        let size = config_size + layers.iter().map(|l| l.size).sum::<u64>();
        let pulled_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            reference: reference.to_string(),
            digest,
            manifest_digest,
            platform,
            config_digest,
            layers,
            size,
            pulled_at,
            data_dir: PathBuf::new(),
        }
    }

    /// The image ID: the config digest's hex.
    pub fn id(&self) -> &str {
        self.config_digest.hex()
    }

    /// The snapshot directories, top layer first, as overlayfs' `lowerdir` wants them.
    pub fn lower_dirs(&self) -> Vec<PathBuf> {
        let root = self.data_dir.join("snapshots");
        self.layers
            .iter()
            .rev()
            .map(|l| root.join(l.chain_id.hex()))
            .collect()
    }

    /// Whether every snapshot is present: one `stat` per layer.
    pub fn snapshots_present(&self) -> bool {
        self.lower_dirs().iter().all(|d| d.is_dir())
    }

    /// The image config, read from the content store.
    pub fn config(&self) -> Result<oci::config::ImageConfig, StoreError> {
        let d = &self.config_digest;
        let path = self
            .data_dir
            .join("content/blobs")
            .join(d.algorithm().as_str())
            .join(d.hex());
        let bytes = fs::read(&path).map_err(|e| StoreError::Config {
            reference: self.reference.clone(),
            source: ContentError::Io {
                step: "read",
                path: path.clone(),
                source: e,
            },
        })?;
        oci::ImageConfig::from_slice(&bytes).map_err(|source| StoreError::BadConfig {
            reference: self.reference.clone(),
            source,
        })
    }
}

/// What [`Store::remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveOutcome {
    pub removed: Vec<String>,
    pub gc: GcStats,
}

/// What garbage collection deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    pub blobs: usize,
    pub snapshots: usize,
    pub stale_partials: usize,
    pub stale_temps: usize,
}

/// The image store of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    data_dir: PathBuf,
    images: PathBuf,
    leases: PathBuf,
    content: ContentStore,
    snapshots: Snapshots,
}

impl Store {
    /// Opens (creating when missing) the store in a data directory.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let images = data_dir.join("images");
        let leases = data_dir.join("leases");
        for dir in [&images, &leases] {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            images,
            leases,
            content: ContentStore::open(data_dir)?,
            snapshots: Snapshots::open(data_dir)?,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Held shared by every pull for its whole run (see the module header).
    pub async fn pull_guard(&self) -> Result<FileLock, StoreError> {
        let path = self.data_dir.join("store.lock");
        FileLock::acquire(&path, LockMode::Shared)
            .await
            .map_err(io_err("lock", &path))
    }

    fn exclusive(&self) -> Result<FileLock, StoreError> {
        let path = self.data_dir.join("store.lock");
        FileLock::acquire_blocking(&path, LockMode::Exclusive).map_err(io_err("lock", &path))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.images.join(format!("{}.json", escape(reference)))
    }

    fn read_record(&self, path: &Path) -> Result<Option<ImageRecord>, StoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        let mut rec: ImageRecord =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::BadRecord {
                path: path.to_path_buf(),
                source,
            })?;
        rec.data_dir = self.data_dir.clone();
        Ok(Some(rec))
    }

    /// The record of a reference. A reference with a digest also finds a record of the
    /// same repository pulled by tag whose index or manifest digest it names.
    pub fn get(&self, reference: &Reference) -> Result<Option<ImageRecord>, StoreError> {
        if let Some(rec) = self.read_record(&self.record_path(&reference.to_string()))? {
            return Ok(Some(rec));
        }
        let Some(digest) = reference.digest() else {
            return Ok(None);
        };
        let repo = (reference.registry(), reference.repository());
        Ok(self.list()?.into_iter().find(|rec| {
            (rec.digest == *digest || rec.manifest_digest == *digest)
                && Reference::parse(&rec.reference)
                    .is_ok_and(|r| (r.registry(), r.repository()) == repo)
        }))
    }

    /// Finds an image by what a person types: a reference, or a prefix of an image ID
    /// (with or without `sha256:`), as `docker image inspect` accepts.
    pub fn find(&self, name: &str) -> Result<ImageRecord, StoreError> {
        if let Ok(reference) = Reference::parse(name)
            && let Some(rec) = self.get(&reference)?
        {
            return Ok(rec);
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 3 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<ImageRecord> = self
                .list()?
                .into_iter()
                .filter(|r| r.id().starts_with(prefix))
                .collect();
            let ids: std::collections::BTreeSet<&str> = hits.iter().map(|r| r.id()).collect();
            match ids.len() {
                0 => {}
                1 => return Ok(hits.into_iter().next().expect("one hit")),
                _ => {
                    let refs = hits
                        .iter()
                        .map(|r| r.reference.as_str())
                        .collect::<Vec<_>>();
                    return Err(StoreError::Ambiguous {
                        prefix: prefix.to_string(),
                        refs: refs.join(", "),
                    });
                }
            }
        }
        Err(StoreError::NotFound(name.to_string()))
    }

    /// Every record, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.images).map_err(io_err("list", &self.images))? {
            let entry = entry.map_err(io_err("list", &self.images))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(rec) = self.read_record(&path)?
            {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Writes a record atomically (temp file, fsync, rename, fsync of the directory) and
    /// returns it with its data dir filled in.
    pub fn put(&self, mut record: ImageRecord) -> Result<ImageRecord, StoreError> {
        let path = self.record_path(&record.reference);
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.images.join(format!(".tmp-{}-{n}", std::process::id()));
        let json = serde_json::to_vec_pretty(&record).expect("records serialise");
        let mut file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(&json).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        sync_dir(&self.images).map_err(io_err("fsync", &self.images))?;
        record.data_dir = self.data_dir.clone();
        Ok(record)
    }

    /// The leases: (lease id, config digest it names).
    pub fn leases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.leases).map_err(io_err("list", &self.leases))? {
            let entry = entry.map_err(io_err("list", &self.leases))?;
            let path = entry.path();
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            };
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                text.trim().to_string(),
            ));
        }
        Ok(out)
    }

    /// Removes the image a person named (reference or ID prefix) and garbage-collects what
    /// no record uses any more. Refused while a lease names the image's config and no other
    /// reference keeps that image.
    pub fn remove(&self, name: &str) -> Result<RemoveOutcome, StoreError> {
        let _guard = self.exclusive()?;
        let rec = self.find(name)?;
        let others = self
            .list()?
            .into_iter()
            .filter(|r| r.config_digest == rec.config_digest && r.reference != rec.reference)
            .count();
        if others == 0 {
            let config = rec.config_digest.to_string();
            let leases: Vec<String> = self
                .leases()?
                .into_iter()
                .filter(|(_, d)| *d == config)
                .map(|(id, _)| id)
                .collect();
            if !leases.is_empty() {
                return Err(StoreError::InUse {
                    reference: rec.reference,
                    leases: leases.join(", "),
                });
            }
        }
        let path = self.record_path(&rec.reference);
        fs::remove_file(&path).map_err(io_err("remove", &path))?;
        sync_dir(&self.images).map_err(io_err("fsync", &self.images))?;
        let gc = self.gc_locked()?;
        Ok(RemoveOutcome {
            removed: vec![rec.reference],
            gc,
        })
    }

    /// Deletes blobs and snapshots no record uses, and leftovers of killed pulls. Waits for
    /// running pulls to finish.
    pub fn gc(&self) -> Result<GcStats, StoreError> {
        let _guard = self.exclusive()?;
        self.gc_locked()
    }

    fn gc_locked(&self) -> Result<GcStats, StoreError> {
        use std::collections::HashSet;
        let records = self.list()?;
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut chains: HashSet<Digest> = HashSet::new();
        for r in &records {
            blobs.extend([
                r.digest.clone(),
                r.manifest_digest.clone(),
                r.config_digest.clone(),
            ]);
            for l in &r.layers {
                blobs.insert(l.digest.clone());
                chains.insert(l.chain_id.clone());
            }
        }
        let mut stats = GcStats::default();
        for d in self.content.list()? {
            if !blobs.contains(&d) {
                self.content.remove(&d)?;
                stats.blobs += 1;
            }
        }
        for c in self.snapshots.list()? {
            if !chains.contains(&c) {
                self.snapshots.remove(&c)?;
                stats.snapshots += 1;
            }
        }
        stats.stale_partials = self.content.remove_partials()?;
        stats.stale_temps = self.snapshots.remove_temps()?;
        Ok(stats)
    }
}

/// Maps a reference to a file name: `[A-Za-z0-9._-]` kept, everything else as `%XX`; names
/// that would be too long for a file name are hashed instead.
fn escape(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len() + 16);
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 200 || out.starts_with('.') {
        format!(
            "sha256-{}",
            oci::Digest::sha256_of(reference.as_bytes()).hex()
        )
    } else {
        out
    }
}
