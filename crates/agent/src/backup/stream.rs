//! Streaming mode of a backup job: `pg_receivewal` receives WAL over the replication protocol into
//! a spool directory through a replication slot (`cloudkeep_<database>`), and the segment it is
//! writing is uploaded as a streamed tail whenever it grew, once a second (see
//! `cloudkeep_backup::pg::upload_stream_tail`). Complete segments reach the repository through
//! archiving as always; the spool only keeps the newest ones `pg_receivewal` needs to resume.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::SystemTime;

use cloudkeep_backup::pg::{
    DatabaseLayout, StreamReceipt, WalName, list_stream_tails, prune_stream_tails,
    upload_stream_tail,
};
use cloudkeep_backup::{Recipient, Repository};
use cloudkeep_protocol::backup::AgentBackupJob;
use cloudkeep_stdx::Clock;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// After `pg_receivewal` stopped, the next start waits this long.
const RESTART_MS: i64 = 5_000;
/// Complete segments kept in the spool (`pg_receivewal` resumes after the newest).
const SPOOL_KEEP: usize = 2;

/// What one upload cycle did.
pub struct StreamCycle {
    /// The tail uploaded, if the segment grew.
    pub uploaded: Option<StreamReceipt>,
    /// The tails in the repository afterwards.
    pub tails: Vec<String>,
    /// The growing segment and when it was last written, as read this cycle.
    pub seen: Option<(PathBuf, SystemTime)>,
}

/// Where a cycle uploads to.
pub struct StreamTarget {
    pub repository: Repository,
    pub layout: DatabaseLayout,
    pub recipients: Vec<Recipient>,
    pub level: i32,
}

/// The streaming part of one job.
pub struct Streamer {
    spool: PathBuf,
    log: PathBuf,
    slot: String,
    child: Option<Child>,
    next_start_ms: i64,
    cycle: Option<JoinHandle<Result<StreamCycle, String>>>,
    /// The tail uploaded last.
    last: Option<String>,
    /// The tails known to be in the repository; `None` until listed.
    tails: Option<Vec<String>>,
    /// The growing segment and its modification time when last read: unchanged, it is not read
    /// again.
    seen: Option<(PathBuf, SystemTime)>,
}

/// The replication slot of `database` (slot names allow `[a-z0-9_]`).
pub fn slot_name(database: &str) -> String {
    let cleaned: String = database
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    let mut name = format!("cloudkeep_{cleaned}");
    name.truncate(63);
    name
}

/// `/usr/lib/postgresql/<version>/bin/<program>` for the cluster in `pgdata`.
fn pg_program(pgdata: &Path, program: &str) -> Result<PathBuf, String> {
    let version_path = pgdata.join("PG_VERSION");
    let version = std::fs::read_to_string(&version_path)
        .map_err(|error| format!("{}: {error}", version_path.display()))?;
    Ok(PathBuf::from(format!(
        "/usr/lib/postgresql/{}/bin/{program}",
        version.trim()
    )))
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

impl Streamer {
    /// A streamer whose spool is `spool` (created on start).
    pub fn new(spool: PathBuf, database: &str) -> Streamer {
        let log = spool.with_extension("log");
        Streamer {
            spool,
            log,
            slot: slot_name(database),
            child: None,
            next_start_ms: i64::MIN,
            cycle: None,
            last: None,
            tails: None,
            seen: None,
        }
    }

    /// Keeps `pg_receivewal` running: creates the slot if needed and starts it, or says why it
    /// stopped or cannot start.
    pub async fn supervise(&mut self, job: &AgentBackupJob, now_ms: i64) -> Result<(), String> {
        if let Some(child) = self.child.as_mut() {
            match child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => {
                    self.child = None;
                    self.next_start_ms = now_ms + RESTART_MS;
                    return Err(format!(
                        "pg_receivewal stopped ({status}): {}",
                        tail_of(&self.log)
                    ));
                }
                Err(error) => return Err(format!("pg_receivewal: {error}")),
            }
        }
        if now_ms < self.next_start_ms {
            return Ok(());
        }
        self.next_start_ms = now_ms + RESTART_MS;
        let program = pg_program(Path::new(&job.pgdata), "pg_receivewal")?;
        std::fs::create_dir_all(&self.spool)
            .map_err(|error| format!("{}: {error}", self.spool.display()))?;
        let created = Command::new(&program)
            .args([
                "--create-slot",
                "--if-not-exists",
                "--no-password",
                "--slot",
            ])
            .arg(&self.slot)
            .arg("--dbname")
            .arg(&job.connection)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|error| format!("{}: {error}", program.display()))?;
        if !created.status.success() {
            return Err(format!(
                "creating replication slot {}: {}",
                self.slot,
                String::from_utf8_lossy(&created.stderr).trim()
            ));
        }
        let log = std::fs::File::create(&self.log)
            .map_err(|error| format!("{}: {error}", self.log.display()))?;
        let child = Command::new(&program)
            .arg("--directory")
            .arg(&self.spool)
            .args([
                "--slot",
                &self.slot,
                "--synchronous",
                "--no-loop",
                "--no-password",
            ])
            .arg("--dbname")
            .arg(&job.connection)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("{}: {error}", program.display()))?;
        tracing::info!(slot = %self.slot, spool = %self.spool.display(), "pg_receivewal started");
        self.child = Some(child);
        Ok(())
    }

    /// The result of the upload cycle that finished since the last call, if any.
    pub async fn finished(&mut self) -> Option<Result<Option<StreamReceipt>, String>> {
        if !self.cycle.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        let joined = self.cycle.take()?.await;
        Some(match joined {
            Ok(Ok(cycle)) => {
                if let Some(receipt) = &cycle.uploaded {
                    self.last = Some(receipt.tail_name());
                }
                self.tails = Some(cycle.tails);
                self.seen = cycle.seen;
                Ok(cycle.uploaded)
            }
            Ok(Err(message)) => Err(message),
            Err(join) => Err(format!("stream upload task: {join}")),
        })
    }

    /// Starts an upload cycle unless one is running.
    pub fn start_cycle(&mut self, target: Arc<StreamTarget>, clock: Arc<dyn Clock>) {
        if self.cycle.is_some() {
            return;
        }
        let spool = self.spool.clone();
        let last = self.last.clone();
        let tails = self.tails.clone();
        let seen = self.seen.clone();
        self.cycle = Some(tokio::spawn(async move {
            cycle(&spool, last, tails, seen, &target, clock).await
        }));
    }
}

/// One cycle: tidy the spool, upload the growing segment's tail if it grew, prune old tails.
async fn cycle(
    spool: &Path,
    last: Option<String>,
    tails: Option<Vec<String>>,
    seen: Option<(PathBuf, SystemTime)>,
    target: &StreamTarget,
    clock: Arc<dyn Clock>,
) -> Result<StreamCycle, String> {
    let mut complete = Vec::new();
    let mut partial = None;
    let entries =
        std::fs::read_dir(spool).map_err(|error| format!("{}: {error}", spool.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".partial") {
            if WalName::parse(stem).is_some() {
                partial = Some(entry.path());
            }
        } else if WalName::parse(&name).is_some() {
            complete.push(entry.path());
        }
    }
    complete.sort();
    for old in complete.iter().rev().skip(SPOOL_KEEP) {
        let _ = std::fs::remove_file(old);
    }
    let now = move || clock.now_ms();
    let modified = partial.as_ref().and_then(|path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    });
    let current = partial.clone().zip(modified);
    let unchanged = current.is_some() && current == seen;
    let uploaded = match partial.filter(|_| !unchanged) {
        Some(path) => upload_stream_tail(
            &target.repository,
            &target.layout,
            &target.recipients,
            target.level,
            &path,
            last.as_deref(),
            &now,
        )
        .await
        .map_err(|error| format!("streamed tail {}: {error}", path.display()))?,
        None => None,
    };
    let mut names = match tails {
        Some(names) => names,
        None => list_stream_tails(&target.repository, &target.layout)
            .await
            .map_err(|error| error.to_string())?,
    };
    if let Some(receipt) = &uploaded {
        names.push(receipt.tail_name());
    }
    let tails = if uploaded.is_some() || last.is_none() {
        prune_stream_tails(&target.repository, &target.layout, names)
            .await
            .map_err(|error| format!("pruning streamed tails: {error}"))?
    } else {
        names
    };
    Ok(StreamCycle {
        uploaded,
        tails,
        seen: current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid() {
        assert_eq!(slot_name("db"), "cloudkeep_db");
        assert_eq!(slot_name("Ledger-EU.1"), "cloudkeep_ledger_eu_1");
        assert!(slot_name(&"x".repeat(100)).len() <= 63);
    }
}
