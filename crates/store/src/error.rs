//! The store's one error type. Every backend returns these variants, so the API server maps
//! them to Kubernetes statuses once: [`StoreError::AlreadyExists`] is 409 AlreadyExists,
//! [`StoreError::Conflict`] 409 Conflict, [`StoreError::NotFound`] 404,
//! [`StoreError::Compacted`] 410 Expired, [`StoreError::FutureRevision`] 504 Timeout (as the
//! Kubernetes API server answers "too large resource version"), the rest 500.

/// The cause of a backend failure, kept as a source and not repeated in the message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found a live object under the key.
    #[error("creating {key}: the key already exists; update it or delete it first")]
    AlreadyExists { key: String },

    /// `update` or `delete` found no live object under the key.
    #[error("{op} {key}: no such key")]
    NotFound { op: &'static str, key: String },

    /// The compare-and-swap of `update` or `delete` failed: the object changed since it was
    /// read.
    #[error(
        "{op} {key}: expected mod revision {expected} but the key is at {actual}; \
         read it again and retry"
    )]
    Conflict {
        op: &'static str,
        key: String,
        expected: i64,
        actual: i64,
    },

    /// The history asked for was dropped by compaction.
    #[error(
        "reading from revision {requested}: history before revision {compact_revision} \
         was compacted; list again and watch from the list's revision"
    )]
    Compacted {
        requested: i64,
        compact_revision: i64,
    },

    /// A read asked for a revision the store has not reached.
    #[error("reading at revision {requested}: the store is only at revision {current}")]
    FutureRevision { requested: i64, current: i64 },

    /// An argument no backend could serve, such as an empty key or a negative revision.
    #[error("{op}: invalid {field}: {reason}")]
    Invalid {
        op: &'static str,
        field: &'static str,
        reason: String,
    },

    /// The backend itself failed (disk, database, network).
    #[error("{op} failed in the {backend} backend")]
    Backend {
        op: String,
        backend: &'static str,
        #[source]
        source: BoxError,
    },

    /// The backend was closed while the operation waited for it.
    #[error("{op}: the store is closed")]
    Closed { op: &'static str },
}

impl StoreError {
    /// True for errors that say something about the data (exists, missing, changed,
    /// compacted) rather than about the backend's health.
    pub fn is_logical(&self) -> bool {
        !matches!(self, StoreError::Backend { .. } | StoreError::Closed { .. })
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
