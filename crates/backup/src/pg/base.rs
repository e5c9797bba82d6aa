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
use crate::{Encoding, ObjectInfo, Recipient, RepoError, Repository};

/// Files smaller than this are packed into bundles; larger ones get units of their own.
pub const BUNDLE_LIMIT: u64 = 1 << 20;
/// A bundle holds at most this many bytes (it is restored in memory).
const BUNDLE_BYTES: u64 = 16 << 20;
/// PostgreSQL's page size (`BLCKSZ`). Incremental backups read each page's LSN at this stride, so
/// they are only taken of clusters built with it (Debian's and every common build).
pub const PAGE_SIZE: u64 = 8192;
/// Pages are scanned in reads of this many bytes.
const SCAN_CHUNK: usize = 1 << 20;

/// How a base backup runs.
#[derive(Debug, Clone)]
pub struct BaseBackupSettings {
    /// Units uploaded at once.
    pub parallel: usize,
    /// Largest piece of a big file.
    pub split_bytes: u64,
    /// zstd level.
    pub level: i32,
    /// Store only the pages changed since the newest earlier backup of the same cluster, timeline
    /// and version, when there is one (else the backup is full).
    pub incremental: bool,
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
    /// blake3 of the piece when it shares its unit with other files (a piece of one file's unit
    /// is covered by the unit's own checksum).
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
    /// The pieces hold only the pages changed since the parent backup: a restore starts from the
    /// file as the parent chain restores it, cuts or extends it to `len`, and writes the pieces
    /// over it. Otherwise the pieces cover the whole file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
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
    /// The cluster's system identifier (`pg_control_system()`).
    pub system_identifier: String,
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
    /// The cluster's system identifier; absent in backups of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
    /// An incremental backup's parent: the backup whose restored files its changed pages go
    /// over. Absent for a full backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
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
    /// The parent backup of an incremental upload.
    pub parent: Option<String>,
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
            system_identifier: Some(stop.system_identifier),
            parent: self.parent,
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
    /// Whether this is a full backup (no parent).
    pub fn is_full(&self) -> bool {
        self.parent.is_none()
    }

    /// `pg_backup_start`'s LSN as a number.
    pub fn start_lsn_value(&self) -> Option<u64> {
        super::walname::parse_lsn(&self.start_lsn)
    }

    /// Whether an incremental backup of a cluster with this `system_identifier`, `pg_version`,
    /// `timeline` and `segment_size` may use this one as its parent. Page LSNs are only
    /// comparable within one timeline of one cluster.
    pub fn can_parent(
        &self,
        system_identifier: &str,
        pg_version: &str,
        timeline: u32,
        segment_size: u64,
    ) -> bool {
        self.system_identifier.as_deref() == Some(system_identifier)
            && self.pg_version == pg_version
            && self.timeline == timeline
            && self.segment_size == segment_size
            && self.start_lsn_value().is_some()
    }

    /// The backups a restore of this one needs, oldest (the full backup) first and this one
    /// last, out of `all` (every committed backup of the database).
    pub fn chain<'a>(
        &'a self,
        all: &'a [BaseManifest],
    ) -> Result<Vec<&'a BaseManifest>, PgBackupError> {
        let mut chain = vec![self];
        let mut current = self;
        while let Some(parent_id) = &current.parent {
            let parent = all
                .iter()
                .find(|candidate| &candidate.id == parent_id)
                .ok_or_else(|| {
                    PgBackupError::Plan(format!(
                        "incremental backup {} needs backup {parent_id}, which is not in the repository",
                        current.id
                    ))
                })?;
            if chain.iter().any(|seen| seen.id == parent.id) || chain.len() > all.len() {
                return Err(PgBackupError::Manifest {
                    name: self.id.clone(),
                    message: format!("the parents of backup {} form a loop", self.id),
                });
            }
            chain.push(parent);
            current = parent;
        }
        chain.reverse();
        Ok(chain)
    }

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

/// An uploaded unit.
struct UploadedUnit {
    index: usize,
    info: ObjectInfo,
    /// The pieces it holds, as (file index, piece).
    pieces: Vec<(usize, FilePiece)>,
    /// How far each file it read extends, as (file index, end offset): a file's length as read
    /// is the largest of these.
    extents: Vec<(usize, u64)>,
}

/// One object to upload.
enum Unit {
    /// A piece of one big file.
    Piece { file: usize, offset: u64, len: u64 },
    /// The pages of a range of one big relation file changed since the parent backup.
    Changed { file: usize, offset: u64, len: u64 },
    /// Several small files, whole.
    Bundle { files: Vec<usize> },
}

/// Whether `path` (relative to the data directory) is a data file of a relation's main fork
/// (`base/<db>/<relfilenode>[.<segment>]` or `global/<relfilenode>[.<segment>]`): every page of
/// one carries the LSN of its last WAL-logged change. Other forks (`_fsm`, `_vm`, `_init`) and
/// every other file are always stored whole.
pub fn is_relation_data(path: &str) -> bool {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let name = if let Some(name) = path.strip_prefix("global/") {
        name
    } else if let Some((database, name)) = path
        .strip_prefix("base/")
        .and_then(|rest| rest.split_once('/'))
        && digits(database)
    {
        name
    } else {
        return false;
    };
    match name.split_once('.') {
        Some((node, segment)) => digits(node) && digits(segment),
        None => digits(name),
    }
}

/// Whether a page must be stored by an incremental backup whose parent started at `since`: its
/// LSN is at or after that, or zero (a new or never WAL-logged page, which must not be taken from
/// the parent). A page changed before `since` was flushed by `pg_backup_start`'s checkpoint and
/// is the same in the parent; one changed after is also in the WAL the restore replays.
fn page_changed(page: &[u8], since: u64) -> bool {
    let (Some(high), Some(low)) = (page.get(0..4), page.get(4..8)) else {
        return true;
    };
    let word = |bytes: &[u8]| {
        u64::from(u32::from_ne_bytes(
            bytes.try_into().unwrap_or([0xff, 0xff, 0xff, 0xff]),
        ))
    };
    let lsn = (word(high) << 32) | word(low);
    page.len() as u64 != PAGE_SIZE || lsn == 0 || lsn >= since
}

/// The runs of changed pages (see [`page_changed`]) in `data`, which starts at file offset `at`,
/// as (file offset, length).
fn changed_runs(data: &[u8], at: u64, since: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (index, page) in data.chunks(PAGE_SIZE as usize).enumerate() {
        if !page_changed(page, since) {
            continue;
        }
        let offset = at + (index as u64) * PAGE_SIZE;
        match runs.last_mut() {
            Some((start, len)) if *start + *len == offset => *len += page.len() as u64,
            _ => runs.push((offset, page.len() as u64)),
        }
    }
    runs
}

/// The bytes of `runs` (from [`changed_runs`]) out of `data`, which starts at file offset `at`.
fn run_bytes<'a>(data: &'a [u8], at: u64, runs: &[(u64, u64)]) -> Vec<&'a [u8]> {
    runs.iter()
        .filter_map(|(offset, len)| {
            let start = usize::try_from(offset.checked_sub(at)?).ok()?;
            data.get(start..start.checked_add(usize::try_from(*len).ok()?)?)
        })
        .collect()
}

/// What the page scan of a [`Unit::Changed`] found.
#[derive(Debug, Default)]
struct ChangedPages {
    /// Runs of changed pages as (file offset, length), in file order; their bytes were sent in
    /// that order.
    runs: Vec<(u64, u64)>,
    /// Bytes of the range that could be read (less when the file is shorter now).
    read: u64,
    /// The file was gone.
    vanished: bool,
}

/// Reads `len` bytes of `path` from `offset` page by page and sends the changed ones (see
/// [`page_changed`]) down `sender` in order (blocking).
fn scan_changed_pages(
    path: &Path,
    offset: u64,
    len: u64,
    since: u64,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> Result<ChangedPages, PgBackupError> {
    use std::os::unix::fs::FileExt;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ChangedPages {
                vanished: true,
                ..ChangedPages::default()
            });
        }
        Err(error) => return Err(PgBackupError::io(path)(error)),
    };
    let mut found = ChangedPages::default();
    let mut buffer = vec![0_u8; SCAN_CHUNK];
    while found.read < len {
        let want = usize::try_from(len - found.read)
            .unwrap_or(usize::MAX)
            .min(SCAN_CHUNK);
        let mut filled = 0;
        while filled < want {
            let read = file
                .read_at(
                    &mut buffer[filled..want],
                    offset + found.read + filled as u64,
                )
                .map_err(PgBackupError::io(path))?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        let at = offset + found.read;
        let runs = changed_runs(&buffer[..filled], at, since);
        let changed = run_bytes(&buffer[..filled], at, &runs).concat();
        for (start, len) in runs {
            match found.runs.last_mut() {
                Some((previous, run)) if *previous + *run == start => *run += len,
                _ => found.runs.push((start, len)),
            }
        }
        found.read += filled as u64;
        if !changed.is_empty() && sender.blocking_send(Ok(changed.into())).is_err() {
            // The upload stopped; it reports why.
            break;
        }
        if filled < want {
            break;
        }
    }
    Ok(found)
}

/// An `AsyncRead` over chunks sent by a blocking thread; it ends when the sender is dropped (the
/// sender's own result says whether everything was sent).
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl tokio::io::AsyncRead for ChannelReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.current.is_empty() {
                let take = buf.remaining().min(this.current.len());
                buf.put_slice(&this.current.split_to(take));
                return std::task::Poll::Ready(Ok(()));
            }
            match std::task::ready!(this.receiver.poll_recv(context)) {
                Some(Ok(chunk)) => this.current = chunk,
                Some(Err(error)) => return std::task::Poll::Ready(Err(error)),
                None => return std::task::Poll::Ready(Ok(())),
            }
        }
    }
}

/// Plans the units: `scan` says which files an incremental backup scans for changed pages instead
/// of storing them whole (small ones are scanned as their bundle is made).
fn plan_units(
    files: &[FoundFile],
    split_bytes: u64,
    scan: &dyn Fn(&FoundFile) -> bool,
) -> Vec<Unit> {
    // Pieces start on page boundaries, so a scan's pages line up with the file's.
    let split_bytes = split_bytes.max(1).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut units = Vec::new();
    let mut bundle: Vec<usize> = Vec::new();
    let mut bundle_bytes = 0_u64;
    for (index, file) in files.iter().enumerate() {
        if file.len >= BUNDLE_LIMIT {
            let changed = scan(file);
            let mut offset = 0;
            while offset < file.len {
                let len = split_bytes.min(file.len - offset);
                units.push(if changed {
                    Unit::Changed {
                        file: index,
                        offset,
                        len,
                    }
                } else {
                    Unit::Piece {
                        file: index,
                        offset,
                        len,
                    }
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
/// manifest after `pg_backup_stop`). Call between `pg_backup_start` and `pg_backup_stop`. With a
/// `parent` (an earlier backup of the same cluster and timeline, see
/// [`BaseManifest::can_parent`]) the backup is incremental: big relation files the parent has are
/// scanned and only their changed pages stored.
pub async fn upload_data_dir(
    repository: &Repository,
    layout: &DatabaseLayout,
    id: &str,
    pgdata: &Path,
    recipients: &[Recipient],
    settings: &BaseBackupSettings,
    parent: Option<&BaseManifest>,
) -> Result<DataDirUpload, PgBackupError> {
    let walk_root = pgdata.to_owned();
    let (directories, found) = tokio::task::spawn_blocking(move || walk(&walk_root))
        .await
        .map_err(|join| PgBackupError::Io {
            path: pgdata.to_owned(),
            source: std::io::Error::other(join.to_string()),
        })??;
    let since = parent.and_then(BaseManifest::start_lsn_value);
    let parent_files: std::collections::HashSet<&str> = parent
        .filter(|_| since.is_some())
        .map(|parent| parent.files.iter().map(|file| file.path.as_str()).collect())
        .unwrap_or_default();
    let scanned = |file: &FoundFile| {
        is_relation_data(&file.path) && parent_files.contains(file.path.as_str())
    };
    let units = plan_units(&found, settings.split_bytes, &scanned);
    let since = since.unwrap_or(0);
    let found = &found;
    // With fewer units in flight than cores, each unit's compression gets a thread of its own
    // beside the one that hashes and encrypts; with as many, they already fill the cores.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let encoding = Encoding {
        level: settings.level,
        threads: u32::from(settings.parallel.max(1) < cores),
    };
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
                                .put_object(&key, tokio::io::empty(), recipients, encoding)
                                .await?;
                            return Ok(UploadedUnit {
                                index: unit_index,
                                info,
                                pieces: Vec::new(),
                                extents: Vec::new(),
                            });
                        }
                        Err(error) => return Err(PgBackupError::io(&path)(error)),
                    };
                    handle
                        .seek(SeekFrom::Start(offset))
                        .await
                        .map_err(PgBackupError::io(&path))?;
                    let info = repository
                        .put_object(&key, handle.take(len), recipients, encoding)
                        .await?;
                    let piece = FilePiece {
                        unit: unit_index,
                        unit_offset: 0,
                        file_offset: offset,
                        len: info.plain_len,
                        blake3: None,
                    };
                    Ok(UploadedUnit {
                        index: unit_index,
                        extents: vec![(file, offset + info.plain_len)],
                        info,
                        pieces: vec![(file, piece)],
                    })
                }
                Unit::Changed { file, offset, len } => {
                    let path = pgdata.join(&found[file].path);
                    let (sender, receiver) = tokio::sync::mpsc::channel(4);
                    let scan = tokio::task::spawn_blocking(move || {
                        scan_changed_pages(&path, offset, len, since, &sender)
                    });
                    let reader = ChannelReader {
                        receiver,
                        current: bytes::Bytes::new(),
                    };
                    let stored = repository
                        .put_object(&key, reader, recipients, encoding)
                        .await;
                    // The scan's own result first: a scan that stopped early must not count.
                    let found_pages = scan.await.map_err(|join| PgBackupError::Io {
                        path: pgdata.join(&found[file].path),
                        source: std::io::Error::other(join.to_string()),
                    })??;
                    let info = stored?;
                    let mut unit_offset = 0;
                    let mut pieces = Vec::new();
                    for (file_offset, run) in &found_pages.runs {
                        pieces.push((
                            file,
                            FilePiece {
                                unit: unit_index,
                                unit_offset,
                                file_offset: *file_offset,
                                len: *run,
                                blake3: None,
                            },
                        ));
                        unit_offset += run;
                    }
                    if unit_offset != info.plain_len {
                        return Err(PgBackupError::Repo(RepoError::Internal {
                            key: layout.base_objects(id),
                            message: format!(
                                "the scan of {} found {unit_offset} changed bytes, {} were stored",
                                found[file].path, info.plain_len
                            ),
                        }));
                    }
                    let extents = if found_pages.vanished {
                        Vec::new()
                    } else {
                        vec![(file, offset + found_pages.read)]
                    };
                    Ok(UploadedUnit {
                        index: unit_index,
                        info,
                        pieces,
                        extents,
                    })
                }
                Unit::Bundle { files } => {
                    let mut data = Vec::new();
                    let mut pieces = Vec::new();
                    let mut extents = Vec::new();
                    for file in files {
                        let path = pgdata.join(&found[file].path);
                        let Some(bytes) = read_small_file(&path).await? else {
                            continue;
                        };
                        extents.push((file, bytes.len() as u64));
                        if scanned(&found[file]) {
                            let runs = changed_runs(&bytes, 0, since);
                            for ((file_offset, len), run) in
                                runs.iter().zip(run_bytes(&bytes, 0, &runs))
                            {
                                pieces.push((
                                    file,
                                    FilePiece {
                                        unit: unit_index,
                                        unit_offset: data.len() as u64,
                                        file_offset: *file_offset,
                                        len: *len,
                                        blake3: Some(blake3::hash(run).to_hex().to_string()),
                                    },
                                ));
                                data.extend_from_slice(run);
                            }
                            continue;
                        }
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
                        .put_object(&key, std::io::Cursor::new(data), recipients, encoding)
                        .await?;
                    Ok(UploadedUnit {
                        index: unit_index,
                        info,
                        pieces,
                        extents,
                    })
                }
            }
        })
        .buffer_unordered(settings.parallel.max(1))
        .try_collect()
        .await?;
    let mut units: Vec<Option<ObjectInfo>> = vec![None; results.len()];
    let mut pieces_by_file: Vec<Vec<FilePiece>> = vec![Vec::new(); found.len()];
    // How far each file was read, when it was there at all.
    let mut lengths: Vec<Option<u64>> = vec![None; found.len()];
    for unit in results {
        if let Some(slot) = units.get_mut(unit.index) {
            *slot = Some(unit.info);
        }
        for (file, piece) in unit.pieces {
            if let Some(list) = pieces_by_file.get_mut(file) {
                list.push(piece);
            }
        }
        for (file, end) in unit.extents {
            if let Some(length) = lengths.get_mut(file) {
                *length = Some(length.unwrap_or(0).max(end));
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
        .zip(lengths)
        // Files emptied before they were read keep no pieces but still exist (len 0); files that
        // vanished are dropped, except big ones whose pieces all vanished (they read as empty).
        .filter(|((file, _), length)| length.is_some() || file.len == 0 || file.len >= BUNDLE_LIMIT)
        .map(|((file, mut pieces), length)| {
            pieces.sort_by_key(|piece| piece.file_offset);
            BaseFile {
                path: file.path.clone(),
                mode: file.mode,
                len: length.unwrap_or(0),
                incremental: scanned(file),
                pieces,
            }
        })
        .collect();
    Ok(DataDirUpload {
        parent: parent
            .filter(|parent| parent.start_lsn_value().is_some())
            .map(|parent| parent.id.clone()),
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
        let units = plan_units(&files, 1 << 20, &|_| false);
        let pieces: Vec<(usize, u64, u64)> = units
            .iter()
            .filter_map(|unit| match unit {
                Unit::Piece { file, offset, len } => Some((*file, *offset, *len)),
                _ => None,
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
                _ => None,
            })
            .collect();
        assert_eq!(bundles, vec![&vec![0, 2, 3]]);
    }

    #[test]
    fn only_main_fork_relation_files_are_scanned_for_changed_pages() {
        for path in [
            "base/5/16384",
            "base/5/16384.1",
            "global/1262",
            "global/1262.12",
        ] {
            assert!(is_relation_data(path), "{path}");
        }
        for path in [
            "base/5/16384_fsm",
            "base/5/16384_vm",
            "base/5/16384_init",
            "base/5/16384.",
            "base/x/16384",
            "base/16384",
            "global/pg_control",
            "pg_xact/0000",
            "pg_multixact/offsets/0000",
            "base/5/pg_filenode.map",
        ] {
            assert!(!is_relation_data(path), "{path}");
        }
        let files = vec![found(3 << 20), found(3 << 20)];
        let units = plan_units(&files, 1 << 20, &|file| std::ptr::eq(file, &files[1]));
        let kinds: Vec<(&str, usize)> = units
            .iter()
            .map(|unit| match unit {
                Unit::Piece { file, .. } => ("whole", *file),
                Unit::Changed { file, .. } => ("changed", *file),
                Unit::Bundle { .. } => ("bundle", usize::MAX),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("whole", 0),
                ("whole", 0),
                ("whole", 0),
                ("changed", 1),
                ("changed", 1),
                ("changed", 1)
            ]
        );
    }

    /// A page whose header holds `lsn` (as PostgreSQL stores it: two native-endian halves).
    fn page(lsn: u64, fill: u8) -> Vec<u8> {
        let mut page = vec![fill; PAGE_SIZE as usize];
        page[0..4].copy_from_slice(&((lsn >> 32) as u32).to_ne_bytes());
        page[4..8].copy_from_slice(&(lsn as u32).to_ne_bytes());
        page
    }

    #[test]
    fn a_page_is_changed_from_the_parents_start_lsn_on_or_when_its_lsn_is_zero() {
        let since = 0x1_0000_0000 + 0x2800;
        assert!(!page_changed(&page(since - 1, 1), since));
        assert!(!page_changed(&page(0x28, 1), since));
        assert!(page_changed(&page(since, 1), since));
        assert!(page_changed(&page(since + 0x1_0000_0000, 1), since));
        assert!(page_changed(&page(0, 0), since), "a new zero page");
        assert!(page_changed(&[1, 2, 3], since), "a partial page");
    }

    #[test]
    fn the_scan_sends_changed_pages_in_runs_and_stops_at_the_files_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("16384");
        let since = 1000;
        // Pages 0..300: changed at 1, 2, 3 (a run), 200 (in the second read), and 299 (last).
        let mut data = Vec::new();
        for index in 0..300_u64 {
            let changed = matches!(index, 1..=3 | 200 | 299);
            data.extend(page(if changed { since + index } else { 10 }, index as u8));
        }
        data.extend_from_slice(&[7; 100]); // a page being extended: partial, so stored
        std::fs::write(&path, &data).unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
        let found = scan_changed_pages(&path, 0, 400 * PAGE_SIZE, since, &sender).unwrap();
        drop(sender);
        let mut sent = Vec::new();
        while let Some(chunk) = receiver.blocking_recv() {
            sent.extend_from_slice(&chunk.unwrap());
        }
        let p = PAGE_SIZE;
        assert_eq!(
            found.runs,
            vec![(p, 3 * p), (200 * p, p), (299 * p, p + 100)]
        );
        assert_eq!(found.read, data.len() as u64);
        assert!(!found.vanished);
        let mut expected = Vec::new();
        for (offset, len) in &found.runs {
            expected.extend_from_slice(&data[*offset as usize..(*offset + *len) as usize]);
        }
        assert_eq!(sent, expected);
        // A range from the middle, and a file that is gone.
        let (sender, _receiver) = tokio::sync::mpsc::channel(64);
        let middle = scan_changed_pages(&path, 128 * p, 128 * p, since, &sender).unwrap();
        assert_eq!(middle.runs, vec![(200 * p, p)]);
        let gone = scan_changed_pages(&dir.path().join("gone"), 0, p, since, &sender).unwrap();
        assert!(gone.vanished && gone.runs.is_empty());
    }

    #[test]
    fn bundles_stay_under_their_limit() {
        let files: Vec<FoundFile> = (0..40).map(|_| found(BUNDLE_LIMIT - 1)).collect();
        let units = plan_units(&files, 1 << 20, &|_| false);
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
