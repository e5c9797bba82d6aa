//! The backup repository: objects on a local directory or any S3-compatible store, each checksummed
//! (blake3), compressed (zstd) and encrypted to the ISV's age X25519 recipients before upload, and
//! manifests that commit a backup.
//!
//! Every stored object is exactly `age(zstd(data))`, binary age format without armor or framing,
//! so in an emergency the stock tools restore it: `age -d -i key.txt OBJECT | zstd -d > data`.
//! An object counts only once a manifest names it (see [`Repository::put_manifest`]); data objects
//! are never listed as backups.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod location;
mod names;
pub mod pg;
mod repository;

pub use error::RepoError;
pub use keys::{Identity, KeyError, KeyPair, Recipient, generate_keypair, parse_recipients};
pub use location::{DEFAULT_REGION, RepoLocation};
pub use names::{MANIFEST_FOLDER, MANIFEST_SUFFIX, ManifestName, ObjectKey};
pub use repository::{
    DEFAULT_ZSTD_LEVEL, Encoding, ListedObject, MAX_MANIFEST_BYTES, ObjectInfo, Repository,
};
