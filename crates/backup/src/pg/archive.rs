//! Archiving one WAL file: the object (`<platform>/<database>/wal/<name>`) and then its receipt,
//! the manifest that makes it count. Archiving the same file again is a no-op; a different file
//! under an archived name is refused, as PostgreSQL's documentation asks of an archive command.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{DatabaseLayout, PG_FORMAT_VERSION, PgBackupError, WalKind, WalName};
use crate::{ObjectInfo, Recipient, RepoError, Repository};

/// The receipt of one archived WAL file: stored as a manifest once the object is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalReceipt {
    /// Format version ([`PG_FORMAT_VERSION`]).
    pub format: u32,
    /// The platform.
    pub platform: String,
    /// The database (component) name.
    pub database: String,
    /// PostgreSQL's file name.
    pub name: String,
    /// Timeline from the name.
    pub timeline: u32,
    /// Segment number within the timeline (0 for history files).
    pub segment: u64,
    /// The WAL segment size of the cluster.
    pub segment_size: u64,
    /// The stored object.
    pub object: ObjectInfo,
    /// When the object was complete in the repository (Unix ms).
    pub archived_at_ms: i64,
}

impl WalReceipt {
    /// The parsed name (receipts are only written for parseable names).
    pub fn wal_name(&self) -> Option<WalName> {
        WalName::parse(&self.name)
    }

    /// Whether this is a complete segment (not history, backup or partial file).
    pub fn is_segment(&self) -> bool {
        self.wal_name()
            .is_some_and(|name| name.kind == WalKind::Segment)
    }
}

/// What archiving one file did.
#[derive(Debug, Clone)]
pub struct ArchiveOutcome {
    /// The receipt (new, or the existing one for a file archived before).
    pub receipt: WalReceipt,
    /// True when the file had already been archived with the same content.
    pub already_archived: bool,
    /// How long the upload took, in ms (0 when already archived).
    pub upload_ms: i64,
}

/// blake3 of a local file, hashed off the async threads.
async fn file_blake3(path: &Path) -> Result<String, PgBackupError> {
    let owned = path.to_owned();
    let hashed = tokio::task::spawn_blocking(move || {
        let mut hasher = blake3::Hasher::new();
        let mut file = std::fs::File::open(&owned)?;
        std::io::copy(&mut file, &mut hasher)?;
        Ok::<_, std::io::Error>(hasher.finalize().to_hex().to_string())
    })
    .await
    .map_err(|join| PgBackupError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(join.to_string()),
    })?;
    hashed.map_err(PgBackupError::io(path))
}

async fn existing_receipt(
    repository: &Repository,
    layout: &DatabaseLayout,
    name: &str,
) -> Result<Option<WalReceipt>, PgBackupError> {
    let manifest = layout.wal_receipt(name)?;
    match repository.get_manifest(&manifest).await {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| PgBackupError::Manifest {
                    name: manifest.to_string(),
                    message: error.to_string(),
                })
        }
        Err(RepoError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Returns the existing receipt when the local file has the same content, else a conflict.
async fn same_or_conflict(
    receipt: WalReceipt,
    path: &Path,
) -> Result<ArchiveOutcome, PgBackupError> {
    let local = file_blake3(path).await?;
    if local == receipt.object.plain_blake3 {
        Ok(ArchiveOutcome {
            receipt,
            already_archived: true,
            upload_ms: 0,
        })
    } else {
        Err(PgBackupError::WalConflict {
            name: receipt.name,
            archived: receipt.object.plain_blake3,
            local,
        })
    }
}

/// Archives the WAL file at `path` (its name must be a WAL file name): uploads it, then writes
/// its receipt. An object left without a receipt by an earlier, interrupted attempt never
/// counted and is replaced. `now_ms` is asked after the upload, for the receipt's time.
pub async fn archive_wal_file(
    repository: &Repository,
    layout: &DatabaseLayout,
    recipients: &[Recipient],
    level: i32,
    segment_size: u64,
    path: &Path,
    now_ms: &(dyn Fn() -> i64 + Send + Sync),
) -> Result<ArchiveOutcome, PgBackupError> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wal = WalName::parse(&file_name).ok_or(PgBackupError::NotWal {
        name: file_name.clone(),
    })?;
    if let Some(receipt) = existing_receipt(repository, layout, &file_name).await? {
        return same_or_conflict(receipt, path).await;
    }
    let key = layout.wal_object(&file_name)?;
    let started = Instant::now();
    let object = match upload(repository, &key, recipients, level, path).await {
        Err(PgBackupError::Repo(RepoError::AlreadyExists { .. })) => {
            // No receipt, so this object never counted: an earlier attempt stopped between the
            // object and its receipt. Replace it.
            repository.delete_object(&key).await?;
            upload(repository, &key, recipients, level, path).await?
        }
        other => other?,
    };
    let upload_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let receipt = WalReceipt {
        format: PG_FORMAT_VERSION,
        platform: layout.platform().to_owned(),
        database: layout.database().to_owned(),
        name: file_name.clone(),
        timeline: wal.timeline,
        segment: if wal.kind == WalKind::History {
            0
        } else {
            wal.segment_number(segment_size)
        },
        segment_size,
        object,
        archived_at_ms: now_ms(),
    };
    let json = serde_json::to_vec_pretty(&receipt).map_err(|error| PgBackupError::Manifest {
        name: file_name.clone(),
        message: error.to_string(),
    })?;
    match repository
        .put_manifest(&layout.wal_receipt(&file_name)?, &json)
        .await
    {
        Ok(()) => Ok(ArchiveOutcome {
            receipt,
            already_archived: false,
            upload_ms,
        }),
        Err(RepoError::AlreadyExists { .. }) => {
            // Someone else archived it meanwhile: fine if it is the same file.
            match existing_receipt(repository, layout, &file_name).await? {
                Some(existing) => same_or_conflict(existing, path).await,
                None => Err(PgBackupError::Manifest {
                    name: file_name,
                    message: "the receipt exists and vanished again".to_owned(),
                }),
            }
        }
        Err(error) => Err(error.into()),
    }
}

async fn upload(
    repository: &Repository,
    key: &crate::ObjectKey,
    recipients: &[Recipient],
    level: i32,
    path: &Path,
) -> Result<ObjectInfo, PgBackupError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(PgBackupError::io(path))?;
    Ok(repository.put_object(key, file, recipients, level).await?)
}

/// Every WAL receipt of the database, sorted by name (so by timeline, then segment).
pub async fn read_wal_receipts(
    repository: &Repository,
    layout: &DatabaseLayout,
) -> Result<Vec<WalReceipt>, PgBackupError> {
    let mut receipts: Vec<WalReceipt> =
        super::read_manifests(repository, &layout.wal_folder(), 16).await?;
    receipts.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(receipts)
}
