//! Full base backups of a data directory: the files are read while PostgreSQL runs (between
//! `pg_backup_start` and `pg_backup_stop`, which the caller issues), cut into units that upload
//! in parallel straight from the files (no local staging copy): files of at least
//! [`BUNDLE_LIMIT`] bytes are split into pieces of `split_bytes`, smaller ones are packed together
//! into bundles. The manifest records every file's pieces with their checksums, the directories,
//! and `backup_label`; it is written last and is what makes the backup count.

use std::io::SeekFrom;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{DatabaseLayout, PgBackupError, WalName};
use crate::{ObjectInfo, Recipient, RepoError, Repository};

/// Files smaller than this are packed into bundles; larger ones get units of their own.
pub const BUNDLE_LIMIT: u64 = 1 << 20;
/// A bundle holds at most this many bytes (it is restored in memory).
const BUNDLE_BYTES: u64 = 16 << 20;

/// How a base backup runs.
#[derive(Debug, Clone)]
pub struct BaseBackupSettings {
    /// Units uploaded at once.
    pub parallel: usize,
    /// Largest piece of a big file.
    pub split_bytes: u64,
    /// zstd level.
    pub level: i32,
}

/// A directory of the data directory (restored empty where its contents are excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirEntry {
    /// Path relative to the data directory.
    pub path: String,
    /// Unix permission bits.
    pub mode: u32,
}

/// Where a part of a file is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePiece {
    /// Index into the manifest's `units`.
    pub unit: usize,
    /// Where the piece starts inside the unit's data.
    pub unit_offset: u64,
    /// Where the piece goes in the file.
    pub file_offset: u64,
    /// Its length.
    pub len: u64,
    /// blake3 of the piece when it shares its unit with other files (a whole-unit piece is
    /// covered by the unit's own checksum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

/// One file of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseFile {
    /// Path relative to the data directory.
    pub path: String,
    /// Unix permission bits.
    pub mode: u32,
    /// Length as read.
    pub len: u64,
    /// Its pieces, in file order.
    pub pieces: Vec<FilePiece>,
}

/// What `pg_backup_stop` returned, plus the caller's times.
#[derive(Debug, Clone)]
pub struct StopInfo {
    /// The backup's id (also its folder).
    pub id: String,
    /// PostgreSQL's major version (`PG_VERSION`).
    pub pg_version: String,
    /// WAL segment size of the cluster.
    pub segment_size: u64,
    /// Timeline the backup started on.
    pub timeline: u32,
    /// `pg_backup_start`'s LSN.
    pub start_lsn: String,
    /// `pg_backup_stop`'s LSN.
    pub stop_lsn: String,
    /// The `backup_label` file's contents.
    pub backup_label: String,
    /// The `tablespace_map` file's contents (empty without tablespaces).
    pub tablespace_map: String,
    /// When `pg_backup_start` was called (Unix ms).
    pub started_at_ms: i64,
    /// When `pg_backup_stop` returned (Unix ms).
    pub stopped_at_ms: i64,
}

/// The manifest of one base backup: everything a restore needs besides the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseManifest {
    /// Format version.
    pub format: u32,
    /// The platform.
    pub platform: String,
    /// The database (component) name.
    pub database: String,
    /// The backup's id.
    pub id: String,
    /// PostgreSQL's major version.
    pub pg_version: String,
    /// WAL segment size.
    pub segment_size: u64,
    /// Timeline.
    pub timeline: u32,
    /// `pg_backup_start`'s LSN.
    pub start_lsn: String,
    /// `pg_backup_stop`'s LSN.
    pub stop_lsn: String,
    /// First WAL segment the restore needs.
    pub start_wal: String,
    /// Last WAL segment the restore needs (to reach consistency).
    pub stop_wal: String,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Unix ms; a restore to any time after this is possible with the WAL that follows.
    pub stopped_at_ms: i64,
    /// `backup_label`, written into the restored data directory.
    pub backup_label: String,
    /// `tablespace_map` (empty without tablespaces).
    pub tablespace_map: String,
    /// The zstd level used.
    pub compression_level: i32,
    /// The age recipients the objects are encrypted to.
    pub recipients: Vec<String>,
    /// The stored objects, indexed by [`FilePiece::unit`].
    pub units: Vec<ObjectInfo>,
    /// Directories, parents first.
    pub directories: Vec<DirEntry>,
    /// Files, sorted by path.
    pub files: Vec<BaseFile>,
    /// Sum of the files' lengths.
    pub plain_bytes: u64,
    /// Sum of the stored objects' lengths.
    pub stored_bytes: u64,
}

/// What uploading the data directory produced (the manifest minus what `pg_backup_stop` says).
#[derive(Debug, Clone)]
pub struct DataDirUpload {
    /// The stored objects.
    pub units: Vec<ObjectInfo>,
    /// Directories.
    pub directories: Vec<DirEntry>,
    /// Files.
    pub files: Vec<BaseFile>,
}

impl DataDirUpload {
    /// The manifest for this upload once `pg_backup_stop` returned.
    pub fn into_manifest(
        self,
        layout: &DatabaseLayout,
        stop: StopInfo,
        level: i32,
        recipients: &[Recipient],
    ) -> Result<BaseManifest, PgBackupError> {
        let start_wal = WalName::segment_of_lsn(stop.timeline, &stop.start_lsn, stop.segment_size)
            .ok_or_else(|| {
                PgBackupError::Plan(format!("start LSN {:?} is not an LSN", stop.start_lsn))
            })?;
        let stop_wal = WalName::segment_of_lsn(stop.timeline, &stop.stop_lsn, stop.segment_size)
            .ok_or_else(|| {
                PgBackupError::Plan(format!("stop LSN {:?} is not an LSN", stop.stop_lsn))
            })?;
        Ok(BaseManifest {
            format: super::PG_FORMAT_VERSION,
            platform: layout.platform().to_owned(),
            database: layout.database().to_owned(),
            id: stop.id,
            pg_version: stop.pg_version,
            segment_size: stop.segment_size,
            timeline: stop.timeline,
            start_lsn: stop.start_lsn,
            stop_lsn: stop.stop_lsn,
            start_wal,
            stop_wal,
            started_at_ms: stop.started_at_ms,
            stopped_at_ms: stop.stopped_at_ms,
            backup_label: stop.backup_label,
            tablespace_map: stop.tablespace_map,
            compression_level: level,
            recipients: recipients.iter().map(ToString::to_string).collect(),
            plain_bytes: self.files.iter().map(|file| file.len).sum(),
            stored_bytes: self.units.iter().map(|unit| unit.stored_len).sum(),
            units: self.units,
            directories: self.directories,
            files: self.files,
        })
    }
}

impl BaseManifest {
    /// Commits the backup: writes the manifest (create-if-absent).
    pub async fn commit(
        &self,
        repository: &Repository,
        layout: &DatabaseLayout,
    ) -> Result<(), PgBackupError> {
        let json = serde_json::to_vec(self).map_err(|error| PgBackupError::Manifest {
            name: self.id.clone(),
            message: error.to_string(),
        })?;
        repository
            .put_manifest(&layout.base_manifest(&self.id)?, &json)
            .await?;
        Ok(())
    }
}

/// Every committed base backup of the database, oldest first (by stop time).
pub async fn list_base_manifests(
    repository: &Repository,
    layout: &DatabaseLayout,
) -> Result<Vec<BaseManifest>, PgBackupError> {
    let mut manifests: Vec<BaseManifest> =
        super::read_manifests(repository, &layout.base_folder(), 8).await?;
    manifests.sort_by_key(|manifest| (manifest.stopped_at_ms, manifest.id.clone()));
    Ok(manifests)
}

/// Directories whose contents are not backed up (PostgreSQL recreates or does not need them).
const EXCLUDED_CONTENTS: &[&str] = &[
    "pg_wal",
    "pg_dynshmem",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
];

/// Files never backed up, wherever they are.
const EXCLUDED_FILES: &[&str] = &[
    "postmaster.pid",
    "postmaster.opts",
    "pg_internal.init",
    "backup_label",
    "backup_label.old",
    "tablespace_map",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "recovery.signal",
    "standby.signal",
];

/// A file found in the data directory.
struct FoundFile {
    path: String,
    mode: u32,
    len: u64,
}

/// Walks the data directory (blocking).
fn walk(pgdata: &Path) -> Result<(Vec<DirEntry>, Vec<FoundFile>), PgBackupError> {
    let mut directories = Vec::new();
    let mut files = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(pgdata.to_owned(), String::new())];
    while let Some((absolute, relative)) = pending.pop() {
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&absolute)
            .map_err(PgBackupError::io(&absolute))?
            .collect::<Result<_, _>>()
            .map_err(PgBackupError::io(&absolute))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_relative = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let child = entry.path();
            // A file removed while we walk (a dropped table) is simply not backed up: WAL replay
            // removes it anyway.
            let metadata = match std::fs::symlink_metadata(&child) {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(PgBackupError::io(&child)(error)),
            };
            if name.starts_with("pgsql_tmp") || EXCLUDED_FILES.contains(&name.as_str()) {
                continue;
            }
            let mode = metadata.permissions().mode() & 0o7777;
            let is_directory = if metadata.file_type().is_symlink() {
                if child_relative == "pg_wal" {
                    true
                } else if relative == "pg_tblspc" {
                    let target = std::fs::read_link(&child).unwrap_or_default();
                    return Err(PgBackupError::Unsupported {
                        path: child,
                        message: format!(
                            "tablespace (link to {}): tablespaces are not backed up by this version",
                            target.display()
                        ),
                    });
                } else {
                    return Err(PgBackupError::Unsupported {
                        path: child,
                        message:
                            "symbolic link inside the data directory: not backed up by this version"
                                .to_owned(),
                    });
                }
            } else {
                metadata.is_dir()
            };
            if is_directory {
                let mode = std::fs::metadata(&child)
                    .map(|metadata| metadata.permissions().mode() & 0o7777)
                    .unwrap_or(mode);
                directories.push(DirEntry {
                    path: child_relative.clone(),
                    mode,
                });
                if EXCLUDED_CONTENTS.contains(&child_relative.as_str()) {
                    if child_relative == "pg_wal" {
                        directories.push(DirEntry {
                            path: "pg_wal/archive_status".to_owned(),
                            mode,
                        });
                    }
                    continue;
                }
                pending.push((child, child_relative));
            } else if metadata.is_file() {
                files.push(FoundFile {
                    path: child_relative,
                    mode,
                    len: metadata.size(),
                });
            }
        }
    }
    directories.sort_by(|left, right| left.path.cmp(&right.path));
    files.sort_by(|left, right| left.path.cmp(&right.path));
    Ok((directories, files))
}

/// An uploaded unit: its index, its object and the pieces it holds as (file index, piece).
type UploadedUnit = (usize, ObjectInfo, Vec<(usize, FilePiece)>);

/// One object to upload.
enum Unit {
    /// A piece of one big file.
    Piece { file: usize, offset: u64, len: u64 },
    /// Several small files, whole.
    Bundle { files: Vec<usize> },
}

fn plan_units(files: &[FoundFile], split_bytes: u64) -> Vec<Unit> {
    let split_bytes = split_bytes.max(1);
    let mut units = Vec::new();
    let mut bundle: Vec<usize> = Vec::new();
    let mut bundle_bytes = 0_u64;
    for (index, file) in files.iter().enumerate() {
        if file.len >= BUNDLE_LIMIT {
            let mut offset = 0;
            while offset < file.len {
                let len = split_bytes.min(file.len - offset);
                units.push(Unit::Piece {
                    file: index,
                    offset,
                    len,
                });
                offset += len;
            }
        } else {
            if bundle_bytes + file.len > BUNDLE_BYTES && !bundle.is_empty() {
                units.push(Unit::Bundle {
                    files: std::mem::take(&mut bundle),
                });
                bundle_bytes = 0;
            }
            bundle.push(index);
            bundle_bytes += file.len;
        }
    }
    if !bundle.is_empty() {
        units.push(Unit::Bundle { files: bundle });
    }
    units
}

/// Reads `path` whole; a file removed meanwhile reads as `None`.
async fn read_small_file(path: &Path) -> Result<Option<Vec<u8>>, PgBackupError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(PgBackupError::io(path)(error)),
    }
}

/// Uploads the data directory `pgdata` as base backup `id` (objects only; the caller commits the
/// manifest after `pg_backup_stop`). Call between `pg_backup_start` and `pg_backup_stop`.
pub async fn upload_data_dir(
    repository: &Repository,
    layout: &DatabaseLayout,
    id: &str,
    pgdata: &Path,
    recipients: &[Recipient],
    settings: &BaseBackupSettings,
) -> Result<DataDirUpload, PgBackupError> {
    let walk_root = pgdata.to_owned();
    let (directories, found) = tokio::task::spawn_blocking(move || walk(&walk_root))
        .await
        .map_err(|join| PgBackupError::Io {
            path: pgdata.to_owned(),
            source: std::io::Error::other(join.to_string()),
        })??;
    let units = plan_units(&found, settings.split_bytes);
    let found = &found;
    // Each unit yields its object and the pieces it holds: (file index, piece).
    let results: Vec<UploadedUnit> = futures::stream::iter(units.into_iter().enumerate())
        .map(|(unit_index, unit)| async move {
            let key = layout.base_object(id, unit_index)?;
            match unit {
                Unit::Piece { file, offset, len } => {
                    let path = pgdata.join(&found[file].path);
                    let mut handle = match tokio::fs::File::open(&path).await {
                        Ok(handle) => handle,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                            // Removed meanwhile: store an empty piece so the unit exists.
                            let info = repository
                                .put_object(&key, tokio::io::empty(), recipients, settings.level)
                                .await?;
                            return Ok((unit_index, info, Vec::new()));
                        }
                        Err(error) => return Err(PgBackupError::io(&path)(error)),
                    };
                    handle
                        .seek(SeekFrom::Start(offset))
                        .await
                        .map_err(PgBackupError::io(&path))?;
                    let info = repository
                        .put_object(&key, handle.take(len), recipients, settings.level)
                        .await?;
                    let piece = FilePiece {
                        unit: unit_index,
                        unit_offset: 0,
                        file_offset: offset,
                        len: info.plain_len,
                        blake3: None,
                    };
                    Ok((unit_index, info, vec![(file, piece)]))
                }
                Unit::Bundle { files } => {
                    let mut data = Vec::new();
                    let mut pieces = Vec::new();
                    for file in files {
                        let path = pgdata.join(&found[file].path);
                        let Some(bytes) = read_small_file(&path).await? else {
                            continue;
                        };
                        pieces.push((
                            file,
                            FilePiece {
                                unit: unit_index,
                                unit_offset: data.len() as u64,
                                file_offset: 0,
                                len: bytes.len() as u64,
                                blake3: Some(blake3::hash(&bytes).to_hex().to_string()),
                            },
                        ));
                        data.extend_from_slice(&bytes);
                    }
                    let info = repository
                        .put_object(&key, std::io::Cursor::new(data), recipients, settings.level)
                        .await?;
                    Ok((unit_index, info, pieces))
                }
            }
        })
        .buffer_unordered(settings.parallel.max(1))
        .try_collect()
        .await?;
    let mut units: Vec<Option<ObjectInfo>> = vec![None; results.len()];
    let mut pieces_by_file: Vec<Vec<FilePiece>> = vec![Vec::new(); found.len()];
    let mut present = vec![false; found.len()];
    for (unit_index, info, pieces) in results {
        if let Some(slot) = units.get_mut(unit_index) {
            *slot = Some(info);
        }
        for (file, piece) in pieces {
            if let (Some(list), Some(flag)) = (pieces_by_file.get_mut(file), present.get_mut(file))
            {
                list.push(piece);
                *flag = true;
            }
        }
    }
    let units: Vec<ObjectInfo> = units.into_iter().collect::<Option<_>>().ok_or_else(|| {
        PgBackupError::Repo(RepoError::Internal {
            key: layout.base_objects(id),
            message: "a unit of the backup produced no object".to_owned(),
        })
    })?;
    let files = found
        .iter()
        .zip(pieces_by_file)
        .zip(present)
        // Files emptied before they were read keep no pieces but still exist (len 0); files that
        // vanished are dropped, except big ones whose pieces all vanished (they read as empty).
        .filter(|((file, _), present)| *present || file.len == 0 || file.len >= BUNDLE_LIMIT)
        .map(|((file, mut pieces), _)| {
            pieces.sort_by_key(|piece| piece.file_offset);
            BaseFile {
                path: file.path.clone(),
                mode: file.mode,
                len: pieces.iter().map(|piece| piece.len).sum(),
                pieces,
            }
        })
        .collect();
    Ok(DataDirUpload {
        units,
        directories,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(len: u64) -> FoundFile {
        FoundFile {
            path: String::new(),
            mode: 0o600,
            len,
        }
    }

    #[test]
    fn big_files_are_split_and_small_ones_bundled() {
        let files = vec![found(10), found(3 << 20), found(20), found(0)];
        let units = plan_units(&files, 1 << 20);
        let pieces: Vec<(usize, u64, u64)> = units
            .iter()
            .filter_map(|unit| match unit {
                Unit::Piece { file, offset, len } => Some((*file, *offset, *len)),
                Unit::Bundle { .. } => None,
            })
            .collect();
        assert_eq!(
            pieces,
            vec![
                (1, 0, 1 << 20),
                (1, 1 << 20, 1 << 20),
                (1, 2 << 20, 1 << 20)
            ]
        );
        let bundles: Vec<&Vec<usize>> = units
            .iter()
            .filter_map(|unit| match unit {
                Unit::Bundle { files } => Some(files),
                Unit::Piece { .. } => None,
            })
            .collect();
        assert_eq!(bundles, vec![&vec![0, 2, 3]]);
    }

    #[test]
    fn bundles_stay_under_their_limit() {
        let files: Vec<FoundFile> = (0..40).map(|_| found(BUNDLE_LIMIT - 1)).collect();
        let units = plan_units(&files, 1 << 20);
        for unit in &units {
            if let Unit::Bundle { files: members } = unit {
                let bytes: u64 = members.iter().map(|index| files[*index].len).sum();
                assert!(bytes <= BUNDLE_BYTES, "{bytes}");
            }
        }
        assert!(units.len() >= 3);
    }

    #[test]
    fn the_walk_skips_excluded_contents_and_refuses_tablespaces() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in [
            "base/1",
            "pg_wal/archive_status",
            "pg_replslot/slot",
            "global",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("base/1/1259"), b"rel").unwrap();
        std::fs::write(root.join("pg_wal/000000010000000000000001"), b"wal").unwrap();
        std::fs::write(root.join("pg_replslot/slot/state"), b"s").unwrap();
        std::fs::write(root.join("postmaster.pid"), b"1").unwrap();
        std::fs::write(root.join("global/pg_internal.init"), b"i").unwrap();
        std::fs::write(root.join("PG_VERSION"), b"15\n").unwrap();
        let (directories, files) = walk(root).unwrap();
        let file_paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(file_paths, vec!["PG_VERSION", "base/1/1259"]);
        let dir_paths: Vec<&str> = directories.iter().map(|dir| dir.path.as_str()).collect();
        assert_eq!(
            dir_paths,
            vec![
                "base",
                "base/1",
                "global",
                "pg_replslot",
                "pg_wal",
                "pg_wal/archive_status"
            ]
        );
        std::fs::create_dir_all(root.join("pg_tblspc")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("pg_tblspc/16385")).unwrap();
        let error = walk(root).err().unwrap().to_string();
        assert!(error.contains("tablespaces are not backed up"), "{error}");
    }
}
