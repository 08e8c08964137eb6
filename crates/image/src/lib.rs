//! The image service: content store, layer unpack, snapshots, pulls and the pull policy.

pub mod unpack;
