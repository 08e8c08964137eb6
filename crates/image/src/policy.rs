//! The kubelet's image pull policies, as the node agent and `hoist run` call them.
//!
//! [`ensure`] makes an image present as a container's `imagePullPolicy` says:
//! - `Always`: asks the registry what the reference names now (one `HEAD`); when the image
//!   record already names that digest and its snapshots are there, nothing else happens
//!   (a record read and a `stat` per layer); otherwise it pulls, which fetches only the
//!   blobs and snapshots that are missing.
//! - `IfNotPresent`: uses the record when it is complete, pulls otherwise.
//! - `Never`: uses the record, or fails with the kubelet's `ErrImageNeverPull`.
//!
//! Errors carry the reason the kubelet would put in a container's waiting state
//! ([`PolicyError::reason`]) and a message worded as the kubelet words it.

use std::time::{Duration, Instant};

use oci::{Platform, Reference};

use crate::pull::{self, ImageSource, Progress, PullError};
use crate::store::{ImageRecord, Store, StoreError};

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "Always" => Ok(PullPolicy::Always),
            "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "pull policy {other:?} is not one of Always, IfNotPresent, Never"
            )),
        }
    }
}

/// Why an image could not be made present.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("Failed to apply default image tag {image:?}: {source}")]
    InvalidName {
        image: String,
        #[source]
        source: oci::ReferenceError,
    },
    #[error("Container image {image:?} is not present with pull policy of Never")]
    NeverPull { image: String },
    #[error("Failed to pull image {image:?}: {}", chain(source))]
    Pull {
        image: String,
        #[source]
        source: PullError,
    },
    #[error("Failed to pull image {image:?}: resolve its digest: {}", chain(source.as_ref()))]
    Resolve {
        image: String,
        #[source]
        source: pull::SourceError,
    },
    #[error("Failed to inspect image {image:?}: {}", chain(source))]
    Store {
        image: String,
        #[source]
        source: StoreError,
    },
}

impl PolicyError {
    /// The kubelet's reason for a container waiting on this error.
    pub fn reason(&self) -> &'static str {
        match self {
            PolicyError::InvalidName { .. } => "InvalidImageName",
            PolicyError::NeverPull { .. } => "ErrImageNeverPull",
            PolicyError::Pull { .. } | PolicyError::Resolve { .. } => "ErrImagePull",
            PolicyError::Store { .. } => "ErrImageInspect",
        }
    }
}

/// An error's message followed by its sources', as one line: events and pod status carry
/// one string, and the registry's own words are usually in the innermost source.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub struct EnsureOutcome {
    /// `true` when a pull ran (something was missing or the tag moved), `false` when the
    /// image was already present.
    pub pulled: bool,
    /// The image: config, layers and their snapshot dirs ([`ImageRecord::lower_dirs`]).
    pub record: ImageRecord,
    /// Bytes of the image's config and layer blobs, as the kubelet reports "Image size".
    pub size: u64,
    pub elapsed: Duration,
}

/// Makes `image` (as written in a pod spec) present as `policy` says (see the module
/// header).
pub async fn ensure<S: ImageSource>(
    store: &Store,
    source: &S,
    image: &str,
    policy: PullPolicy,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<EnsureOutcome, PolicyError> {
    let started = Instant::now();
    let reference = Reference::parse(image).map_err(|source| PolicyError::InvalidName {
        image: image.to_string(),
        source,
    })?;
    let store_err = |source| PolicyError::Store {
        image: image.to_string(),
        source,
    };
    let present = store
        .get(&reference)
        .map_err(store_err)?
        .filter(|rec| rec.snapshots_present() && platform_fits(rec, platform));

    let present = match (policy, present) {
        (PullPolicy::Never, None) => {
            return Err(PolicyError::NeverPull {
                image: image.to_string(),
            });
        }
        (PullPolicy::Always, Some(rec)) => {
            let digest =
                source
                    .resolve_digest(&reference)
                    .await
                    .map_err(|source| PolicyError::Resolve {
                        image: image.to_string(),
                        source,
                    })?;
            tracing::debug!(%digest, recorded = %rec.digest, "pull policy Always: digest checked");
            (digest == rec.digest).then_some(rec)
        }
        (_, present) => present,
    };
    if let Some(record) = present {
        let size = record.size;
        return Ok(EnsureOutcome {
            pulled: false,
            record,
            size,
            elapsed: started.elapsed(),
        });
    }

    let pulled = pull::pull(store, source, &reference, platform, progress)
        .await
        .map_err(|source| PolicyError::Pull {
            image: image.to_string(),
            source,
        })?;
    let size = pulled.record.size;
    Ok(EnsureOutcome {
        pulled: true,
        record: pulled.record,
        size,
        elapsed: started.elapsed(),
    })
}

/// Whether a record pulled for its platform serves the one wanted now (a record of an
/// image whose config names no platform serves any).
fn platform_fits(record: &ImageRecord, wanted: &Platform) -> bool {
    match Platform::parse(&record.platform) {
        Ok(have) => wanted.matches(&have),
        Err(_) => true,
    }
}
