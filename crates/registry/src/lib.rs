//! A client for pulling images over the OCI distribution API v2.
//!
//! [`Client`] resolves references, fetches manifests (OCI and Docker schema 2, indexes and
//! manifest lists with platform selection), small blobs whole and large blobs as a
//! [`BlobStream`]. Everything it returns is verified: a manifest asked for by digest must
//! have that digest, one asked for by tag must match the `Docker-Content-Digest` the registry
//! sent, a blob read whole must match its descriptor's digest and size.
//!
//! - [`options`]: [`ClientOptions`], from `registries.yaml` and the docker auth file.
//! - `transport`: one request with its redirects, authentication, 429 retries and
//!   size-limited bodies.
//! - [`error`]: [`RegistryError`] and its [`ErrorKind`].
//!
//! # Authentication
//!
//! Requests go out anonymously first. A `401` with a `Bearer` challenge is answered by asking
//! the challenge's token service for a token (with the registry's credentials, if any, as
//! Basic, or as an OAuth2 refresh token for docker's `identitytoken`); the token is cached per
//! registry host and repository until it expires. A `Basic` challenge is answered with the
//! registry's credentials, which are then sent up front to that host. Credentials come from
//! [`ClientOptions::credentials`]: `--authfile`, else `$HOME/.docker/config.json`.
//!
//! Credentials go only to the scheme, host and port a request started at: redirects are
//! followed by hand (at most 5), the `Authorization` header is dropped as soon as a redirect
//! leaves that origin, and a `401` from elsewhere is reported, never answered.
//!
//! # Plain HTTP and TLS
//!
//! Loopback registries (`127.0.0.0/8`, `::1`, `localhost`) and those listed `insecure` are
//! reached over plain HTTP; every other over HTTPS, verified against the system's roots
//! (reqwest's platform verifier, which reads the system certificate store). The process must
//! have a rustls crypto provider installed; hoist installs ring's at start.
//!
//! # `registries.yaml`
//!
//! An optional file in the data directory (`/var/lib/hoist/registries.yaml` by default):
//!
//! ```yaml
//! # Registries reached over plain HTTP, besides the loopback ones. `host:port` covers that
//! # port only; a bare `host` covers every port of that host.
//! insecure:
//!   - registry.lan:5000
//! # Per registry as named in image references, endpoints tried in order before the
//! # registry itself; any failure of a mirror moves on to the next.
//! mirrors:
//!   docker.io:
//!     - mirror.lan:5000
//! ```
//!
//! Both keys are optional; unknown keys are refused, so a typo does not pass silently.
//! Mirror endpoints get the credentials stored for their own host.
//!
//! # Limits
//!
//! Bodies read whole are read chunk by chunk and refused once past their limit: manifests
//! [`MANIFEST_LIMIT`] (4 MiB), configs [`CONFIG_LIMIT`] (8 MiB, passed by the caller to
//! [`Client::fetch_blob_bytes`]), tokens 1 MiB, error bodies 64 KiB (an error body past that
//! is not shown, the status still is). A `429` is retried up to 3 times, waiting as
//! `Retry-After` says (at most 30 s) or 1, 2, 4 s.

mod blob;
mod challenge;
mod client;
pub mod error;
pub mod options;
mod transport;

pub use blob::BlobStream;
pub use client::{CONFIG_LIMIT, Client, FetchedManifest, MANIFEST_LIMIT, ResolvedImage};
pub use error::{ErrorKind, RegistryError};
pub use options::{ClientOptions, REGISTRIES_FILE};
pub use transport::{ERROR_BODY_LIMIT, MAX_429_RETRIES, MAX_REDIRECTS, TOKEN_LIMIT};
