//! PostgreSQL backups on top of the repository: WAL files archived with a receipt each, full base
//! backups of a data directory with a manifest, retention that never breaks a restorable chain,
//! verification without any key, and restores with point-in-time recovery.
//!
//! Everything of one database lives under `<platform>/<database>/` in the ISV's repository (see
//! [`DatabaseLayout`]). What counts is decided by manifests only: a WAL file is archived once its
//! receipt (`manifests/<platform>/<database>/wal/<name>`) exists, a base backup once its manifest
//! (`manifests/<platform>/<database>/base/<id>`) does.

mod archive;
mod base;
mod drill;
mod error;
mod layout;
mod restore;
mod retention;
mod session;
mod stream;
mod verify;
mod walname;

pub use archive::{ArchiveOutcome, WalReceipt, archive_wal_file, read_wal_receipts};
pub use base::{
    BaseBackupSettings, BaseFile, BaseManifest, DataDirUpload, DirEntry, FilePiece, PAGE_SIZE,
    StopInfo, is_relation_data, list_base_manifests, upload_data_dir,
};
pub use drill::{DrillCheck, DrillReport, DrillSettings, run_drill};
pub use error::PgBackupError;
pub use layout::DatabaseLayout;
pub use restore::{
    RecoveryOutcome, RecoverySettings, RecoveryTarget, RestorePlan, RestoreSummary, WAL_CACHE,
    plan_restore, recover, restore_files,
};
pub use retention::{RetentionPolicy, RetentionResult, apply_retention};
pub use session::{connect, take_base_backup};
pub use stream::{
    StreamReceipt, list_stream_tails, parse_tail_name, prune_stream_tails, read_stream_receipts,
    tail_name, upload_stream_tail, valid_prefix,
};
pub use verify::{VerifyProblem, VerifyReport, verify_database};
pub use walname::{DEFAULT_SEGMENT_SIZE, WalKind, WalName};

/// Version of the manifest and receipt formats written by this build.
pub const PG_FORMAT_VERSION: u32 = 1;

/// Parses the JSON of manifest `name` as a `T`.
fn parse_manifest<T: serde::de::DeserializeOwned>(
    name: &crate::ManifestName,
    bytes: &[u8],
) -> Result<T, PgBackupError> {
    serde_json::from_slice(bytes).map_err(|error| PgBackupError::Manifest {
        name: name.to_string(),
        message: error.to_string(),
    })
}

/// Every manifest in `folder`, read `parallel` at a time and parsed as a `T`, in no set order.
async fn read_manifests<T: serde::de::DeserializeOwned>(
    repository: &crate::Repository,
    folder: &str,
    parallel: usize,
) -> Result<Vec<T>, PgBackupError> {
    use futures::{StreamExt, TryStreamExt};
    let names = repository.list_manifests(folder).await?;
    futures::stream::iter(names)
        .map(|name| async move {
            let bytes = repository.get_manifest(&name).await?;
            parse_manifest(&name, &bytes)
        })
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await
}
