//! Restoring a database: choose the base backup and WAL for the target, fetch and verify all of
//! it in parallel before PostgreSQL is started (so a damaged object stops the restore early),
//! write the recovery settings, then run PostgreSQL until it has recovered to the target and
//! promoted.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::{
    BaseManifest, DatabaseLayout, FilePiece, PgBackupError, WalName, WalReceipt,
    list_base_manifests, read_stream_receipts, read_wal_receipts,
};
use crate::{Identity, Repository};

/// The folder inside the restored data directory that holds the fetched WAL until PostgreSQL has
/// replayed it; removed once recovery is done.
pub const WAL_CACHE: &str = "cloudkeep_restore_wal";

/// WAL archived this long after a time target is fetched too, so recovery finds a commit past
/// the target (the agent's heartbeat commits every few seconds).
const TARGET_MARGIN_MS: i64 = 5 * 60_000;

/// How far to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// To the end of the archived WAL.
    Latest,
    /// To this instant (Unix ms): transactions committed at or before it are kept.
    Time(i64),
}

/// What a restore will use.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// The base backup recovery starts from.
    pub base: BaseManifest,
    /// When `base` is incremental, the backups its files build on, the full backup first; their
    /// files are restored in this order, then `base`'s over them.
    pub parents: Vec<BaseManifest>,
    /// The WAL files to fetch, in replay order.
    pub wal: Vec<WalReceipt>,
    /// The target.
    pub target: RecoveryTarget,
}

impl RestorePlan {
    /// The backups whose files are restored, in order: the parents (full backup first), then
    /// `base`.
    pub fn chain(&self) -> impl Iterator<Item = &BaseManifest> {
        self.parents.iter().chain(std::iter::once(&self.base))
    }
}

fn format_ms(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|timestamp| timestamp.strftime("%Y-%m-%d %H:%M:%S%.3f+00").to_string())
        .unwrap_or_else(|_| format!("{at_ms} ms"))
}

/// Chooses the newest base backup that finished before the target and the continuous WAL from
/// its start up to the target, or says why no restore can reach it.
pub async fn plan_restore(
    repository: &Repository,
    layout: &DatabaseLayout,
    target: RecoveryTarget,
) -> Result<RestorePlan, PgBackupError> {
    let bases = list_base_manifests(repository, layout).await?;
    let Some(oldest) = bases.first() else {
        return Err(PgBackupError::Plan(format!(
            "{}/{} has no base backup in {}",
            layout.platform(),
            layout.database(),
            repository.root()
        )));
    };
    let base = match target {
        RecoveryTarget::Latest => bases.last(),
        RecoveryTarget::Time(at_ms) => bases.iter().rev().find(|base| base.stopped_at_ms <= at_ms),
    }
    .cloned()
    .ok_or_else(|| {
        PgBackupError::Plan(format!(
            "no base backup finished before the target; the oldest ({}) finished at {}",
            oldest.id,
            format_ms(oldest.stopped_at_ms)
        ))
    })?;
    let mut parents: Vec<BaseManifest> = base.chain(&bases)?.into_iter().cloned().collect();
    parents.pop();
    let receipts = read_wal_receipts(repository, layout).await?;
    let by_segment: BTreeMap<u64, &WalReceipt> = receipts
        .iter()
        .filter(|receipt| receipt.is_segment() && receipt.timeline == base.timeline)
        .map(|receipt| (receipt.segment, receipt))
        .collect();
    let start = WalName::parse(&base.start_wal)
        .ok_or_else(|| PgBackupError::NotWal {
            name: base.start_wal.clone(),
        })?
        .segment_number(base.segment_size);
    let stop = WalName::parse(&base.stop_wal)
        .ok_or_else(|| PgBackupError::NotWal {
            name: base.stop_wal.clone(),
        })?
        .segment_number(base.segment_size);
    let mut wal = Vec::new();
    let mut number = start;
    let mut reached_target = false;
    while let Some(receipt) = by_segment.get(&number) {
        if let RecoveryTarget::Time(at_ms) = target
            && number > stop
            && wal
                .last()
                .is_some_and(|last: &WalReceipt| last.archived_at_ms > at_ms + TARGET_MARGIN_MS)
        {
            reached_target = true;
            break;
        }
        wal.push((*receipt).clone());
        number += 1;
    }
    if !reached_target {
        // The archived WAL ends here: the streamed tail of the next segment, if there is one,
        // holds what was committed since (the longest tail is the newest).
        let tail = read_stream_receipts(repository, layout)
            .await?
            .into_iter()
            .filter(|tail| tail.timeline == base.timeline && tail.segment == number)
            .max_by_key(|tail| tail.valid_bytes);
        if let Some(tail) = tail {
            wal.push(tail.as_wal_receipt());
            number += 1;
        }
    }
    if number <= stop {
        return Err(PgBackupError::Plan(format!(
            "WAL segment {} needed by base backup {} is missing from the repository",
            WalName::segment_name(base.timeline, number, base.segment_size),
            base.id
        )));
    }
    if let RecoveryTarget::Time(at_ms) = target {
        let newest = wal.last().map_or(0, |receipt| receipt.archived_at_ms);
        if newest < at_ms {
            let gap = by_segment
                .range(number..)
                .next()
                .map(|_| {
                    format!(
                        " (segment {} is missing, later ones exist)",
                        WalName::segment_name(base.timeline, number, base.segment_size)
                    )
                })
                .unwrap_or_default();
            return Err(PgBackupError::Plan(format!(
                "the WAL continuous from base backup {} ends with a segment archived at {}, before the target {}{gap}; use --latest or an earlier time",
                base.id,
                format_ms(newest),
                format_ms(at_ms)
            )));
        }
    }
    Ok(RestorePlan {
        base,
        parents,
        wal,
        target,
    })
}

/// What [`restore_files`] wrote.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// Files written.
    pub files: usize,
    /// Bytes of data files written.
    pub bytes: u64,
    /// WAL files fetched.
    pub wal_files: usize,
    /// How long fetching took.
    pub elapsed: Duration,
}

/// Settings PostgreSQL gets for the recovery.
#[derive(Debug, Clone, Default)]
pub struct RecoverySettings {
    /// Port for the restored server; its configured one when absent.
    pub port: Option<u16>,
    /// Directory for its Unix sockets; its configured one when absent.
    pub socket_dir: Option<PathBuf>,
    /// Directory of `pg_ctl` and `pg_controldata`; `/usr/lib/postgresql/<version>/bin` when absent.
    pub pg_bin: Option<PathBuf>,
    /// Run PostgreSQL as this user (through `runuser`), needed when restoring as root.
    pub run_as: Option<String>,
    /// Leave the server running after promotion (else it is stopped cleanly).
    pub keep_running: bool,
    /// Give up waiting for recovery after this long.
    pub timeout: Duration,
}

/// Checks that `dir` does not exist or is empty; returns whether it must be created.
fn check_destination(dir: &Path) -> Result<bool, PgBackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                Err(PgBackupError::Destination {
                    path: dir.to_owned(),
                    message: "not empty; restore into a new or empty directory".to_owned(),
                })
            } else {
                Ok(false)
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(PgBackupError::io(dir)(error)),
    }
}

/// A path inside `dir` from a manifest, refusing anything that could leave it.
fn inside(dir: &Path, relative: &str) -> Result<PathBuf, PgBackupError> {
    let safe = !relative.is_empty()
        && !relative.starts_with('/')
        && relative
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if safe {
        Ok(dir.join(relative))
    } else {
        Err(PgBackupError::Manifest {
            name: relative.to_owned(),
            message: "path leaves the data directory".to_owned(),
        })
    }
}

/// Fetches everything the plan names into `dir` (which must not exist or be empty), verifying
/// every checksum, and writes the recovery settings. The key is tried on the smallest object of
/// each backup of the chain before anything is written. On any error, what was written is removed.
pub async fn restore_files(
    repository: &Repository,
    identities: &[Identity],
    plan: &RestorePlan,
    dir: &Path,
    settings: &RecoverySettings,
    parallel: usize,
) -> Result<RestoreSummary, PgBackupError> {
    let started = Instant::now();
    let create = check_destination(dir)?;
    // Once per backup of the chain: a key added after the full backup (a drill key, say) may
    // open the newest backup and not its parents.
    for backup in plan.chain() {
        if let Some(smallest) = backup.units.iter().min_by_key(|unit| unit.stored_len) {
            repository
                .restore_object(smallest, identities, &mut tokio::io::sink())
                .await?;
        }
    }
    let result = write_everything(repository, identities, plan, dir, settings, parallel).await;
    match result {
        Ok((files, bytes)) => Ok(RestoreSummary {
            files,
            bytes,
            wal_files: plan.wal.len(),
            elapsed: started.elapsed(),
        }),
        Err(error) => {
            if create {
                let _ = std::fs::remove_dir_all(dir);
            } else if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                }
            }
            Err(error)
        }
    }
}

async fn write_everything(
    repository: &Repository,
    identities: &[Identity],
    plan: &RestorePlan,
    dir: &Path,
    settings: &RecoverySettings,
    parallel: usize,
) -> Result<(usize, u64), PgBackupError> {
    let base = &plan.base;
    std::fs::create_dir_all(dir).map_err(PgBackupError::io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(PgBackupError::io(dir))?;
    let mut previous: Option<&BaseManifest> = None;
    for backup in plan.chain() {
        write_backup_files(repository, identities, backup, previous, dir, parallel).await?;
        previous = Some(backup);
    }
    let cache = dir.join(WAL_CACHE);
    std::fs::create_dir_all(&cache).map_err(PgBackupError::io(&cache))?;
    futures::stream::iter(&plan.wal)
        .map(|receipt| {
            let cache = cache.clone();
            async move {
                let path = inside(&cache, &receipt.name)?;
                let mut object = receipt.object.clone();
                match repository.restore_to_file(&object, identities, &path).await {
                    Err(crate::RepoError::NotFound { .. })
                        if receipt.object.plain_len < receipt.segment_size =>
                    {
                        // A streamed tail the agent replaced by a longer one (or by the whole
                        // segment) since the plan was made: take the newest.
                        object = newer_tail(repository, plan, receipt).await?;
                        repository
                            .restore_to_file(&object, identities, &path)
                            .await?;
                    }
                    other => other?,
                }
                if receipt.is_segment() && object.plain_len < receipt.segment_size {
                    // A streamed tail: the rest of the segment is zeros, as PostgreSQL expects.
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|file| file.set_len(receipt.segment_size))
                        .map_err(PgBackupError::io(&path))?;
                }
                Ok::<(), PgBackupError>(())
            }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    write_recovery_files(dir, plan, settings)?;
    Ok((base.files.len(), base.plain_bytes))
}

/// Writes the files of one backup of the chain into `dir`, over those of `previous` (its parent).
async fn write_backup_files(
    repository: &Repository,
    identities: &[Identity],
    base: &BaseManifest,
    previous: Option<&BaseManifest>,
    dir: &Path,
    parallel: usize,
) -> Result<(), PgBackupError> {
    if let Some(previous) = previous {
        remove_dropped(dir, base, previous)?;
    }
    for directory in &base.directories {
        let path = inside(dir, &directory.path)?;
        std::fs::create_dir_all(&path).map_err(PgBackupError::io(&path))?;
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(directory.mode & 0o777),
        )
        .map_err(PgBackupError::io(&path))?;
    }
    // Every file exists at its final length before the pieces arrive in any order.
    let mut pieces_by_unit: Vec<Vec<(PathBuf, FilePiece)>> = vec![Vec::new(); base.units.len()];
    for file in &base.files {
        let path = inside(dir, &file.path)?;
        let handle = if file.incremental {
            // Only the changed pages follow: the rest is what the parent chain restored.
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|error| {
                    if error.kind() == std::io::ErrorKind::NotFound {
                        PgBackupError::Manifest {
                            name: base.id.clone(),
                            message: format!(
                                "{} holds only changed pages, but its parent backup {} restored no such file",
                                file.path,
                                base.parent.as_deref().unwrap_or("(none)")
                            ),
                        }
                    } else {
                        PgBackupError::io(&path)(error)
                    }
                })?
        } else {
            std::fs::File::create(&path).map_err(PgBackupError::io(&path))?
        };
        handle.set_len(file.len).map_err(PgBackupError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o777))
            .map_err(PgBackupError::io(&path))?;
        for piece in &file.pieces {
            let slot =
                pieces_by_unit
                    .get_mut(piece.unit)
                    .ok_or_else(|| PgBackupError::Manifest {
                        name: base.id.clone(),
                        message: format!(
                            "{} names unit {} of {}",
                            file.path,
                            piece.unit,
                            base.units.len()
                        ),
                    })?;
            slot.push((path.clone(), piece.clone()));
        }
    }
    let work = base.units.iter().zip(pieces_by_unit);
    futures::stream::iter(work)
        .map(|(unit, pieces)| async move {
            // Streamed straight into the files: memory stays bounded whatever the unit's size.
            let mut writer = UnitWriter::new(pieces);
            repository
                .restore_object(unit, identities, &mut writer)
                .await?;
            writer.finish(unit.plain_len)
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Removes what `previous` (the backup restored before `base`: its parent) had and `base` does
/// not: files and directories dropped in between.
fn remove_dropped(
    dir: &Path,
    base: &BaseManifest,
    previous: &BaseManifest,
) -> Result<(), PgBackupError> {
    let ignore_missing = |path: &Path, result: std::io::Result<()>| match result {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(PgBackupError::io(path)(error))
        }
        _ => Ok(()),
    };
    let files: std::collections::HashSet<&str> =
        base.files.iter().map(|file| file.path.as_str()).collect();
    for file in &previous.files {
        if !files.contains(file.path.as_str()) {
            let path = inside(dir, &file.path)?;
            ignore_missing(&path, std::fs::remove_file(&path))?;
        }
    }
    let directories: std::collections::HashSet<&str> = base
        .directories
        .iter()
        .map(|directory| directory.path.as_str())
        .collect();
    for directory in previous.directories.iter().rev() {
        if !directories.contains(directory.path.as_str()) {
            let path = inside(dir, &directory.path)?;
            ignore_missing(&path, std::fs::remove_dir_all(&path))?;
        }
    }
    Ok(())
}

/// The object that now holds what streamed tail `receipt` held: the longest tail of its
/// segment, else the segment archived whole.
async fn newer_tail(
    repository: &Repository,
    plan: &RestorePlan,
    receipt: &WalReceipt,
) -> Result<crate::ObjectInfo, PgBackupError> {
    let layout = DatabaseLayout::new(&plan.base.platform, &plan.base.database)?;
    let longest = read_stream_receipts(repository, &layout)
        .await?
        .into_iter()
        .filter(|tail| tail.timeline == receipt.timeline && tail.segment == receipt.segment)
        .max_by_key(|tail| tail.valid_bytes);
    if let Some(tail) = longest.filter(|tail| tail.valid_bytes >= receipt.object.plain_len) {
        return Ok(tail.object);
    }
    read_wal_receipts(repository, &layout)
        .await?
        .into_iter()
        .find(|archived| archived.name == receipt.name)
        .map(|archived| archived.object)
        .ok_or_else(|| {
            PgBackupError::Plan(format!(
                "the streamed tail of {} vanished from the repository and nothing replaced it",
                receipt.name
            ))
        })
}

/// Writes a unit's plaintext, as it streams in, into the pieces of the files it holds, checking
/// the checksums of pieces that share their unit. Writes are positional and go to the page cache,
/// so they are done in place rather than on a blocking thread.
struct UnitWriter {
    /// The unit's pieces in stream order.
    pieces: Vec<(PathBuf, FilePiece)>,
    /// Bytes of the unit received so far.
    position: u64,
    /// The open file and running checksum of the piece being written, by index.
    current: Option<(usize, std::fs::File, Option<blake3::Hasher>)>,
    /// The first failure; reported on the next write and by `finish`.
    failed: Option<PgBackupError>,
}

impl UnitWriter {
    fn new(mut pieces: Vec<(PathBuf, FilePiece)>) -> UnitWriter {
        pieces.sort_by_key(|(_, piece)| piece.unit_offset);
        UnitWriter {
            pieces,
            position: 0,
            current: None,
            failed: None,
        }
    }

    /// Writes `bytes`, which start at `self.position` in the unit.
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), PgBackupError> {
        let mut offset = 0usize;
        while offset < bytes.len() {
            let at = self.position + offset as u64;
            let Some(index) = self.pieces.iter().position(|(_, piece)| {
                piece.unit_offset <= at && at < piece.unit_offset + piece.len
            }) else {
                // Bytes no piece claims (none are written by the backup): skip to the next piece.
                let next = self
                    .pieces
                    .iter()
                    .map(|(_, piece)| piece.unit_offset)
                    .filter(|start| *start > at)
                    .min()
                    .unwrap_or(u64::MAX);
                let skip = usize::try_from(next - at).unwrap_or(usize::MAX);
                offset = offset.saturating_add(skip);
                continue;
            };
            if self
                .current
                .as_ref()
                .is_none_or(|(open, _, _)| *open != index)
            {
                self.close_current()?;
                let (path, piece) = &self.pieces[index];
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(PgBackupError::io(path))?;
                let hasher = piece.blake3.as_ref().map(|_| blake3::Hasher::new());
                self.current = Some((index, file, hasher));
            }
            let (path, piece) = &self.pieces[index];
            let within = at - piece.unit_offset;
            let take = usize::try_from(piece.len - within)
                .unwrap_or(usize::MAX)
                .min(bytes.len() - offset);
            let chunk = &bytes[offset..offset + take];
            if let Some((_, file, hasher)) = self.current.as_mut() {
                file.write_all_at(chunk, piece.file_offset + within)
                    .map_err(PgBackupError::io(path))?;
                if let Some(hasher) = hasher {
                    hasher.update(chunk);
                }
            }
            offset += take;
        }
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Checks the checksum of the piece being written, which must be complete.
    fn close_current(&mut self) -> Result<(), PgBackupError> {
        if let Some((index, _, Some(hasher))) = self.current.take() {
            let (path, piece) = &self.pieces[index];
            let actual = hasher.finalize().to_hex().to_string();
            if Some(&actual) != piece.blake3.as_ref() {
                return Err(PgBackupError::Manifest {
                    name: path.display().to_string(),
                    message: format!(
                        "restored bytes have blake3 {actual}, the manifest says {}",
                        piece.blake3.as_deref().unwrap_or("-")
                    ),
                });
            }
        }
        Ok(())
    }

    /// After the whole unit (`plain_len` bytes) came in: every piece complete and checked.
    fn finish(mut self, plain_len: u64) -> Result<(), PgBackupError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        self.close_current()?;
        if let Some((path, piece)) = self
            .pieces
            .iter()
            .find(|(_, piece)| piece.unit_offset + piece.len > self.position)
        {
            return Err(PgBackupError::Manifest {
                name: path.display().to_string(),
                message: format!(
                    "piece {}..{} lies outside its unit of {} bytes",
                    piece.unit_offset,
                    piece.unit_offset + piece.len,
                    self.position.min(plain_len)
                ),
            });
        }
        Ok(())
    }
}

impl tokio::io::AsyncWrite for UnitWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.failed.is_some() {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "an earlier write into the restored files failed",
            )));
        }
        match this.write_bytes(bytes) {
            Ok(()) => std::task::Poll::Ready(Ok(bytes.len())),
            Err(error) => {
                let message = error.to_string();
                this.failed = Some(error);
                std::task::Poll::Ready(Err(std::io::Error::other(message)))
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn write_recovery_files(
    dir: &Path,
    plan: &RestorePlan,
    settings: &RecoverySettings,
) -> Result<(), PgBackupError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(PgBackupError::io(&path))
    };
    write("backup_label", &plan.base.backup_label)?;
    if !plan.base.tablespace_map.is_empty() {
        write("tablespace_map", &plan.base.tablespace_map)?;
    }
    write("recovery.signal", "")?;
    let cache = dir.join(WAL_CACHE);
    let mut lines = vec![
        String::new(),
        format!(
            "# Added by cloudkeep restore from base backup {}",
            plan.base.id
        ),
        format!(
            "restore_command = {}",
            quote(&format!("cp \"{}/%f\" \"%p\"", cache.display()))
        ),
        "recovery_target_timeline = 'current'".to_owned(),
        "recovery_target_action = 'promote'".to_owned(),
        // The restored copy must never archive into the repository it came from.
        "archive_mode = 'off'".to_owned(),
    ];
    if let RecoveryTarget::Time(at_ms) = plan.target {
        lines.push(format!(
            "recovery_target_time = {}",
            quote(&format_ms(at_ms))
        ));
    }
    if let Some(port) = settings.port {
        lines.push(format!("port = {port}"));
    }
    if let Some(socket_dir) = &settings.socket_dir {
        lines.push(format!(
            "unix_socket_directories = {}",
            quote(&socket_dir.display().to_string())
        ));
    }
    lines.push(String::new());
    let path = dir.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&lines.join("\n"));
    std::fs::write(&path, text).map_err(PgBackupError::io(&path))
}

/// What [`recover`] did.
#[derive(Debug, Clone)]
pub struct RecoveryOutcome {
    /// From starting PostgreSQL to its promotion.
    pub elapsed: Duration,
    /// PostgreSQL's log of the recovery.
    pub log: PathBuf,
    /// Whether the server was left running.
    pub running: bool,
}

/// Runs a command (as `run_as` when given), returning its output or a clear error.
async fn run(
    settings: &RecoverySettings,
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<std::process::Output, PgBackupError> {
    let mut command = match &settings.run_as {
        Some(user) => {
            let mut command = tokio::process::Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => tokio::process::Command::new(program),
    };
    command.args(args).current_dir("/");
    command.output().await.map_err(|error| {
        PgBackupError::Postgres(format!("cannot run {}: {error}", program.display()))
    })
}

/// The directory of PostgreSQL's programs: `--pg-bin`, else Debian's for `pg_version`.
fn pg_bin(settings: &RecoverySettings, pg_version: &str) -> PathBuf {
    settings
        .pg_bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/usr/lib/postgresql/{}/bin", pg_version.trim())))
}

/// `pg_ctl stop -m <mode> -w` on the server of `dir`.
pub(crate) async fn stop_server(
    dir: &Path,
    pg_version: &str,
    settings: &RecoverySettings,
    mode: &str,
) -> Result<std::process::Output, PgBackupError> {
    let pg_ctl = pg_bin(settings, pg_version).join("pg_ctl");
    run(
        settings,
        &pg_ctl,
        &[
            "-D".as_ref(),
            dir.as_os_str(),
            "-m".as_ref(),
            mode.as_ref(),
            "-w".as_ref(),
            "stop".as_ref(),
        ],
    )
    .await
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Starts PostgreSQL on the restored `dir`, waits until it has recovered to the target and
/// promoted, then stops it cleanly unless `keep_running`. Fails with the end of PostgreSQL's log
/// when recovery fails.
pub async fn recover(
    dir: &Path,
    pg_version: &str,
    settings: &RecoverySettings,
) -> Result<RecoveryOutcome, PgBackupError> {
    let bin = pg_bin(settings, pg_version);
    let pg_ctl = bin.join("pg_ctl");
    let controldata = bin.join("pg_controldata");
    if !pg_ctl.exists() {
        return Err(PgBackupError::Postgres(format!(
            "{} not found: install PostgreSQL {} or pass --pg-bin",
            pg_ctl.display(),
            pg_version.trim()
        )));
    }
    if let Some(user) = &settings.run_as {
        let status = tokio::process::Command::new("chown")
            .args(["-R", &format!("{user}:")])
            .arg(dir)
            .status()
            .await
            .map_err(|error| PgBackupError::Postgres(format!("cannot run chown: {error}")))?;
        if !status.success() {
            return Err(PgBackupError::Destination {
                path: dir.to_owned(),
                message: format!("cannot give it to user {user} (chown failed)"),
            });
        }
    }
    let log = dir.join("cloudkeep-restore.log");
    let started = Instant::now();
    let output = run(
        settings,
        &pg_ctl,
        &[
            "-D".as_ref(),
            dir.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            settings.timeout.as_secs().max(1).to_string().as_ref(),
            "start".as_ref(),
        ],
    )
    .await?;
    if !output.status.success() {
        return Err(PgBackupError::Postgres(format!(
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            log_tail(&log)
        )));
    }
    loop {
        let state = run(settings, &controldata, &[dir.as_os_str()]).await?;
        let text = String::from_utf8_lossy(&state.stdout);
        if text.lines().any(|line| {
            line.starts_with("Database cluster state:") && line.ends_with("in production")
        }) && !dir.join("recovery.signal").exists()
        {
            break;
        }
        if !dir.join("postmaster.pid").exists() {
            return Err(PgBackupError::Postgres(format!(
                "recovery failed, the server stopped:\n{}",
                log_tail(&log)
            )));
        }
        if started.elapsed() > settings.timeout {
            let _ = stop_server(dir, pg_version, settings, "immediate").await;
            return Err(PgBackupError::Postgres(format!(
                "recovery did not finish within {} s:\n{}",
                settings.timeout.as_secs(),
                log_tail(&log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(dir.join(WAL_CACHE));
    if !settings.keep_running {
        let output = stop_server(dir, pg_version, settings, "fast").await?;
        if !output.status.success() {
            return Err(PgBackupError::Postgres(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    Ok(RecoveryOutcome {
        elapsed,
        log,
        running: settings.keep_running,
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn piece(unit_offset: u64, file_offset: u64, bytes: &[u8], hashed: bool) -> FilePiece {
        FilePiece {
            unit: 0,
            unit_offset,
            file_offset,
            len: bytes.len() as u64,
            blake3: hashed.then(|| blake3::hash(bytes).to_hex().to_string()),
        }
    }

    #[tokio::test]
    async fn a_unit_streams_into_its_files_in_any_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, vec![0u8; 10]).unwrap();
        std::fs::write(&b, vec![0u8; 6]).unwrap();
        let unit: Vec<u8> = (0u8..16).collect();
        // File b's 6 bytes come first in the unit, then a's last 10 bytes… of a 10-byte file.
        let pieces = vec![
            (a.clone(), piece(6, 0, &unit[6..16], true)),
            (b.clone(), piece(0, 0, &unit[0..6], true)),
        ];
        let mut writer = UnitWriter::new(pieces);
        for chunk in unit.chunks(5) {
            writer.write_all(chunk).await.unwrap();
        }
        writer.finish(16).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), unit[6..16]);
        assert_eq!(std::fs::read(&b).unwrap(), unit[0..6]);
    }

    #[tokio::test]
    async fn a_wrong_checksum_or_a_short_unit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; 8]).unwrap();
        let mut wrong = piece(0, 0, b"abcdefgh", true);
        wrong.blake3 = Some(blake3::hash(b"something else").to_hex().to_string());
        let mut writer = UnitWriter::new(vec![(path.clone(), wrong)]);
        writer.write_all(b"abcdefgh").await.unwrap();
        let error = writer.finish(8).unwrap_err().to_string();
        assert!(error.contains("blake3"), "{error}");

        let mut writer = UnitWriter::new(vec![(path.clone(), piece(0, 0, b"abcdefgh", false))]);
        writer.write_all(b"abcd").await.unwrap();
        let error = writer.finish(8).unwrap_err().to_string();
        assert!(error.contains("outside its unit"), "{error}");
    }
}
