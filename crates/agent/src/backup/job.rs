//! One database's backup job: keeps PostgreSQL's archive settings, archives every WAL file ahead
//! of `archive_command` (several at once) and answers `wal-push`, takes full base backups on
//! schedule and applies retention after each, keeps the heartbeat row the DR drill measures, and
//! reports everything to the server's catalog.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudkeep_backup::pg::{
    BaseBackupSettings, BaseManifest, DEFAULT_SEGMENT_SIZE, DatabaseLayout, DrillReport,
    RetentionPolicy, RetentionResult, apply_retention, archive_wal_file, connect,
    list_base_manifests, take_base_backup,
};
use cloudkeep_backup::{Recipient, RepoLocation, Repository};
use cloudkeep_client::Client;
use cloudkeep_protocol::backup::{
    AgentBackupJob, BackupEvent, BackupFailed, BackupReport, BackupsExpired, BaseBackupDone,
    WalArchived,
};
use cloudkeep_stdx::Clock;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::socket::WalRequest;
use super::stream::{StreamTarget, Streamer};

/// How long a WAL file that failed to archive waits before the next attempt.
const WAL_RETRY_MS: i64 = 5_000;
/// How often the job checks PostgreSQL's archive settings.
const CONFIGURE_EVERY_MS: i64 = 30_000;
/// How often the job checks whether a base backup is due.
const BASE_CHECK_EVERY_MS: i64 = 60_000;
/// After a failed full backup, the next attempt waits this long.
const BASE_RETRY_MS: i64 = 300_000;
/// The same failure is reported again at most this often.
const FAILURE_REPEAT_MS: i64 = 300_000;
/// Events kept while the server cannot be reached.
const MAX_PENDING_EVENTS: usize = 10_000;

/// When the newest backups of the database stopped (Unix ms), as the repository lists them.
#[derive(Debug, Clone, Copy, Default)]
struct NewestBackups {
    full_ms: Option<i64>,
    any_ms: Option<i64>,
    /// The timeline of the newest backup.
    timeline: Option<u32>,
}

impl NewestBackups {
    /// Whether a backup is due at `now_ms` with the database on `timeline`: `Some(false)` for a
    /// full one (none yet, the newest full is `full_every` old, or the database moved to another
    /// timeline, after a failover, which no backup covers yet), `Some(true)` for an incremental
    /// one (the newest backup is `incremental_every` old), `None` when none is.
    fn due(self, now_ms: i64, timeline: Option<u32>, job: &AgentBackupJob) -> Option<bool> {
        let older_than = |at: Option<i64>, every: i64| at.is_none_or(|at| now_ms - at >= every);
        let new_timeline =
            matches!((timeline, self.timeline), (Some(now), Some(then)) if now != then);
        if new_timeline || older_than(self.full_ms, job.full_every_ms) {
            Some(false)
        } else if job.incremental_every_ms > 0 && older_than(self.any_ms, job.incremental_every_ms)
        {
            Some(true)
        } else {
            None
        }
    }
}

/// What the job has done, for the agent's metrics.
#[derive(Debug, Clone, Default)]
pub struct JobStatus {
    /// When the newest WAL file was archived (Unix ms).
    pub last_wal_archived_ms: Option<i64>,
    /// WAL files archived by this process.
    pub wal_archived_total: u64,
    /// WAL files PostgreSQL has marked ready and that are not archived yet.
    pub wal_pending: u64,
    /// When the newest full backup finished (Unix ms).
    pub last_full_stopped_ms: Option<i64>,
    /// How long the newest full backup took.
    pub last_full_duration_ms: Option<i64>,
    /// Stored bytes of the newest full backup.
    pub last_full_stored_bytes: Option<u64>,
    /// Failures by kind (`wal`, `base`, `retention`, `heartbeat`, `config`).
    pub failures: BTreeMap<String, u64>,
    /// Kinds whose latest attempt failed (cleared by the next success).
    pub failing: BTreeMap<String, bool>,
    /// Whether a full backup is running.
    pub full_running: bool,
    /// Whether the job streams WAL.
    pub streaming: bool,
    /// When the newest streamed tail was uploaded (Unix ms).
    pub last_stream_ms: Option<i64>,
}

/// Everything a job needs.
pub struct JobContext {
    /// The agent's platform.
    pub platform: String,
    /// The job as the server sent it.
    pub job: AgentBackupJob,
    /// The agent's client (to report).
    pub client: Client,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Shared with the metrics.
    pub status: Arc<Mutex<JobStatus>>,
    /// PostgreSQL's `archive_command` for this agent.
    pub archive_command: String,
    /// The executable `archive_command` runs (`cloudkeep wal-push`).
    pub exe: PathBuf,
    /// Where `pg_receivewal` writes in streaming mode.
    pub spool_dir: PathBuf,
    /// The agent's state directory (where the last scheduled drill's time is kept).
    pub state_dir: PathBuf,
    /// `wal-push` requests for this data directory.
    pub requests: mpsc::Receiver<WalRequest>,
    /// Becomes true when the job must stop.
    pub stop: watch::Receiver<bool>,
}

/// The parts of a job that only exist once its configuration is usable.
pub(crate) struct Ready {
    pub(crate) repository: Repository,
    recipients: Vec<Recipient>,
    pub(crate) layout: DatabaseLayout,
}

fn prepare(platform: &str, job: &AgentBackupJob) -> Result<Ready, String> {
    if let Some(problem) = &job.problem {
        return Err(problem.clone());
    }
    let location: RepoLocation = serde_json::from_value(job.repository.clone())
        .map_err(|error| format!("repository: {error}"))?;
    let repository = Repository::open(&location).map_err(|error| error.to_string())?;
    let recipients = job
        .recipients
        .iter()
        .map(|text| Recipient::parse(text).map_err(|error| format!("recipients: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err("no backup key for this platform's isv: run cloudkeep keys create".to_owned());
    }
    let layout = DatabaseLayout::new(platform, &job.database).map_err(|error| error.to_string())?;
    Ok(Ready {
        repository,
        recipients,
        layout,
    })
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// State of the archiver part.
#[derive(Default)]
struct Archiver {
    done: HashSet<String>,
    waiters: HashMap<String, Vec<oneshot::Sender<Result<(), String>>>>,
    retry_after: HashMap<String, i64>,
}

type UploadResult = (String, Result<cloudkeep_backup::pg::ArchiveOutcome, String>);
type BaseResult = Result<(BaseManifest, Result<RetentionResult, String>), String>;

struct Job {
    context: JobContext,
    ready: Option<Arc<Ready>>,
    archiver: Archiver,
    uploads: JoinSet<UploadResult>,
    segment_size: u64,
    archiving_on: bool,
    next_configure_ms: i64,
    next_base_check_ms: i64,
    newest_base_ms: Option<NewestBackups>,
    /// The database's timeline, as its last checkpoint says (read with the archive settings).
    timeline: Option<u32>,
    base_task: Option<tokio::task::JoinHandle<BaseResult>>,
    /// The scheduled drill running now.
    drill_task: Option<tokio::task::JoinHandle<Result<DrillReport, String>>>,
    /// When the next scheduled drill is due (Unix ms); read from the state file first.
    next_drill_ms: Option<i64>,
    heartbeat: Option<PgConnection>,
    next_heartbeat_ms: i64,
    events: Vec<BackupEvent>,
    reported_failures: HashMap<String, (String, i64)>,
    streamer: Option<Streamer>,
    stream_target: Option<Arc<StreamTarget>>,
}

/// Runs the job until told to stop.
pub async fn run_job(context: JobContext) {
    let prepared = prepare(&context.platform, &context.job);
    let (ready, problem) = match prepared {
        Ok(ready) => (Some(Arc::new(ready)), None),
        Err(problem) => (None, Some(problem)),
    };
    let streamer = context
        .job
        .streaming
        .then(|| Streamer::new(context.spool_dir.clone(), &context.job.database));
    if let Ok(mut status) = context.status.lock() {
        status.streaming = context.job.streaming;
    }
    let mut job = Job {
        context,
        ready,
        archiver: Archiver::default(),
        uploads: JoinSet::new(),
        segment_size: DEFAULT_SEGMENT_SIZE,
        archiving_on: false,
        next_configure_ms: i64::MIN,
        next_base_check_ms: i64::MIN,
        newest_base_ms: None,
        timeline: None,
        base_task: None,
        drill_task: None,
        next_drill_ms: None,
        heartbeat: None,
        next_heartbeat_ms: i64::MIN,
        events: Vec::new(),
        reported_failures: HashMap::new(),
        streamer,
        stream_target: None,
    };
    if let Some(problem) = problem {
        job.fail("config", problem);
    }
    let mut scan = tokio::time::interval(Duration::from_millis(250));
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slow = tokio::time::interval(Duration::from_secs(1));
    slow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = job.context.stop.changed() => {
                if changed.is_err() || *job.context.stop.borrow() {
                    break;
                }
            }
            Some(request) = job.context.requests.recv() => job.request(request),
            Some(joined) = job.uploads.join_next(), if !job.uploads.is_empty() => {
                if let Ok((name, result)) = joined {
                    job.uploaded(name, result);
                }
            }
            _ = scan.tick() => job.scan(),
            _ = slow.tick() => job.maintain().await,
        }
    }
    if let Some(task) = job.base_task.take() {
        task.abort();
    }
    job.uploads.abort_all();
    job.flush().await;
}

impl Job {
    fn now_ms(&self) -> i64 {
        self.context.clock.now_ms()
    }

    fn database(&self) -> &str {
        &self.context.job.database
    }

    /// Counts a failure, logs it and queues its report (the same message at most every 5 min).
    fn fail(&mut self, what: &str, message: String) {
        let now_ms = self.now_ms();
        if let Ok(mut status) = self.context.status.lock() {
            *status.failures.entry(what.to_owned()).or_default() += 1;
            status.failing.insert(what.to_owned(), true);
        }
        let repeated = self
            .reported_failures
            .get(what)
            .is_some_and(|(last, at)| *last == message && now_ms - at < FAILURE_REPEAT_MS);
        if repeated {
            return;
        }
        tracing::warn!(database = %self.database(), what, error = %message, "backup failure");
        self.reported_failures
            .insert(what.to_owned(), (message.clone(), now_ms));
        self.push_event(BackupEvent::Failed(BackupFailed {
            what: what.to_owned(),
            message,
            at_ms: now_ms,
        }));
    }

    /// Records that the latest attempt of `what` succeeded.
    fn succeeded(&mut self, what: &str) {
        if let Ok(mut status) = self.context.status.lock() {
            status.failing.insert(what.to_owned(), false);
        }
        self.reported_failures.remove(what);
    }

    fn push_event(&mut self, event: BackupEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    fn request(&mut self, request: WalRequest) {
        let Some(ready) = self.ready.clone() else {
            let message = self
                .context
                .job
                .problem
                .clone()
                .unwrap_or_else(|| "the backup job is not configured".to_owned());
            let _ = request.reply.send(Err(message));
            return;
        };
        if self.archiver.done.contains(&request.name) {
            let _ = request.reply.send(Ok(()));
            return;
        }
        if let Some(waiting) = self.archiver.waiters.get_mut(&request.name) {
            waiting.push(request.reply);
            return;
        }
        // Asked by PostgreSQL: start at once, whatever the parallelism limit.
        self.start_upload(&ready, request.name.clone());
        if let Some(waiting) = self.archiver.waiters.get_mut(&request.name) {
            waiting.push(request.reply);
        }
    }

    fn start_upload(&mut self, ready: &Arc<Ready>, name: String) {
        self.archiver.waiters.insert(name.clone(), Vec::new());
        let ready = ready.clone();
        let clock = self.context.clock.clone();
        let path = PathBuf::from(&self.context.job.pgdata)
            .join("pg_wal")
            .join(&name);
        let level = self.context.job.compression_level;
        let segment_size = self.segment_size;
        self.uploads.spawn(async move {
            let now = move || clock.now_ms();
            let result = archive_wal_file(
                &ready.repository,
                &ready.layout,
                &ready.recipients,
                level,
                segment_size,
                &path,
                &now,
            )
            .await
            .map_err(|error| error.to_string());
            (name, result)
        });
    }

    fn uploaded(
        &mut self,
        name: String,
        result: Result<cloudkeep_backup::pg::ArchiveOutcome, String>,
    ) {
        let waiters = self.archiver.waiters.remove(&name).unwrap_or_default();
        match result {
            Ok(outcome) => {
                for waiter in waiters {
                    let _ = waiter.send(Ok(()));
                }
                self.succeeded("wal");
                self.archiver.done.insert(name);
                self.archiver.retry_after.remove(&outcome.receipt.name);
                if let Ok(mut status) = self.context.status.lock() {
                    status.last_wal_archived_ms = Some(
                        status
                            .last_wal_archived_ms
                            .unwrap_or(i64::MIN)
                            .max(outcome.receipt.archived_at_ms),
                    );
                    status.wal_archived_total += 1;
                }
                if !outcome.already_archived {
                    let receipt = outcome.receipt;
                    self.push_event(BackupEvent::Wal(WalArchived {
                        name: receipt.name,
                        timeline: receipt.timeline,
                        segment: receipt.segment,
                        plain_bytes: receipt.object.plain_len,
                        stored_bytes: receipt.object.stored_len,
                        archived_at_ms: receipt.archived_at_ms,
                        upload_ms: outcome.upload_ms,
                    }));
                }
            }
            Err(message) => {
                for waiter in waiters {
                    let _ = waiter.send(Err(message.clone()));
                }
                let retry_at = self.now_ms() + WAL_RETRY_MS;
                self.archiver.retry_after.insert(name.clone(), retry_at);
                self.fail("wal", format!("archiving {name}: {message}"));
            }
        }
    }

    /// Starts uploads for WAL files PostgreSQL marked ready, up to the parallelism limit.
    fn scan(&mut self) {
        let Some(ready) = self.ready.clone() else {
            return;
        };
        let status_dir = PathBuf::from(&self.context.job.pgdata).join("pg_wal/archive_status");
        let Ok(entries) = std::fs::read_dir(&status_dir) else {
            return;
        };
        let mut pending: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.strip_suffix(".ready"))
                    .map(str::to_owned)
            })
            .collect();
        pending.sort();
        let ready_set: HashSet<&String> = pending.iter().collect();
        self.archiver.done.retain(|name| ready_set.contains(name));
        let not_archived = pending
            .iter()
            .filter(|name| !self.archiver.done.contains(*name))
            .count();
        if let Ok(mut status) = self.context.status.lock() {
            status.wal_pending = not_archived as u64;
        }
        let now_ms = self.now_ms();
        let limit = usize::try_from(self.context.job.parallel.max(1)).unwrap_or(1);
        for name in pending {
            if self.uploads.len() >= limit {
                break;
            }
            if self.archiver.done.contains(&name)
                || self.archiver.waiters.contains_key(&name)
                || self
                    .archiver
                    .retry_after
                    .get(&name)
                    .is_some_and(|at| *at > now_ms)
            {
                continue;
            }
            self.start_upload(&ready, name);
        }
    }

    /// The once-a-second work: settings, heartbeat, full backups and reports.
    async fn maintain(&mut self) {
        let now_ms = self.now_ms();
        if self.ready.is_some() && now_ms >= self.next_configure_ms {
            self.next_configure_ms = now_ms + CONFIGURE_EVERY_MS;
            match self.configure().await {
                Ok(()) => self.succeeded("config"),
                Err(message) => self.fail("config", message),
            }
        }
        if self.ready.is_some() && now_ms >= self.next_heartbeat_ms {
            self.next_heartbeat_ms = now_ms + self.context.job.heartbeat_every_ms.max(1000);
            match self.heartbeat().await {
                Ok(()) => self.succeeded("heartbeat"),
                Err(message) => {
                    self.heartbeat = None;
                    self.fail("heartbeat", message);
                }
            }
        }
        if self.ready.is_some() && self.archiving_on {
            self.stream(now_ms).await;
        }
        self.base_backups(now_ms).await;
        self.drills(now_ms).await;
        self.flush().await;
    }

    /// Scheduled restore drills (the spec's `drill` with a `key_file`): one runs once a backup
    /// exists and the last one is `every` old; its result is recorded on the server.
    async fn drills(&mut self, now_ms: i64) {
        let Some(drill) = self.context.job.drill.clone() else {
            return;
        };
        let last_file =
            super::drill::last_drill_file(&self.context.state_dir, &self.context.job.database);
        if let Some(task) = self.drill_task.take_if(|task| task.is_finished()) {
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(join) => Err(format!("the drill task failed: {join}")),
            };
            match outcome {
                Ok(report) => {
                    tracing::info!(database = %self.database(), ok = report.ok, rpo_ms = ?report.rpo_ms, rto_ms = ?report.rto_ms, "scheduled drill done");
                    if let Err(error) = self
                        .context
                        .client
                        .record_drill(&super::drill::drill_record(&report))
                        .await
                    {
                        tracing::warn!(error = %error, "the drill could not be recorded on the server");
                    }
                    match (&report.error, report.ok) {
                        (_, true) => self.succeeded("drill"),
                        (Some(error), false) => self.fail("drill", error.clone()),
                        (None, false) => self.fail("drill", "the drill's check failed".to_owned()),
                    }
                }
                Err(message) => self.fail("drill", message),
            }
        }
        if self.drill_task.is_some() || self.ready.is_none() {
            return;
        }
        let next = *self.next_drill_ms.get_or_insert_with(|| {
            super::drill::read_last_drill(&last_file).map_or(i64::MIN, |last| last + drill.every_ms)
        });
        // Nothing to drill before the first backup.
        let backed_up = self
            .newest_base_ms
            .is_some_and(|newest| newest.any_ms.is_some());
        if now_ms < next || !backed_up || self.base_task.is_some() {
            return;
        }
        self.next_drill_ms = Some(now_ms + drill.every_ms.max(60_000));
        if let Err(error) = super::drill::write_last_drill(&last_file, now_ms) {
            self.fail(
                "drill",
                format!("noting the drill in {}: {error}", last_file.display()),
            );
            return;
        }
        let Some(ready) = self.ready.clone() else {
            return;
        };
        let job = self.context.job.clone();
        tracing::info!(database = %job.database, "scheduled drill starting");
        // The restore's futures borrow across awaits in ways the compiler cannot prove `Send`
        // for every lifetime, so the drill runs on a blocking thread of its own, driven there.
        let runtime = tokio::runtime::Handle::current();
        self.drill_task = Some(tokio::task::spawn_blocking(move || {
            runtime.block_on(super::drill::run_scheduled_drill(
                &job, &drill, &ready, now_ms,
            ))
        }));
    }

    /// Streaming mode: keeps `pg_receivewal` running and uploads the growing segment's tail.
    async fn stream(&mut self, now_ms: i64) {
        let (Some(mut streamer), Some(ready)) = (self.streamer.take(), self.ready.clone()) else {
            return;
        };
        if let Some(result) = streamer.finished().await {
            match result {
                Ok(uploaded) => {
                    if let (Some(receipt), Ok(mut status)) = (uploaded, self.context.status.lock())
                    {
                        status.last_stream_ms = Some(receipt.uploaded_at_ms);
                    }
                    self.succeeded("stream");
                }
                Err(message) => self.fail("stream", message),
            }
        }
        match streamer.supervise(&self.context.job, now_ms).await {
            Ok(()) => {
                let level = self.context.job.compression_level;
                let target = self
                    .stream_target
                    .get_or_insert_with(|| {
                        Arc::new(StreamTarget {
                            repository: ready.repository.clone(),
                            layout: ready.layout.clone(),
                            recipients: ready.recipients.clone(),
                            level,
                        })
                    })
                    .clone();
                streamer.start_cycle(target, self.context.clock.clone());
            }
            Err(message) => self.fail("stream", message),
        }
        self.streamer = Some(streamer);
    }

    /// Points `archive_command` at this agent and sets `archive_timeout`; turns `archive_mode` on
    /// when it is off (which takes a PostgreSQL restart, reported as a failure until then).
    async fn configure(&mut self) -> Result<(), String> {
        let mut session = connect(&self.context.job.connection)
            .await
            .map_err(|error| error.to_string())?;
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_timeout', 'wal_segment_size')",
        )
        .fetch_all(&mut session)
        .await
        .map_err(|error| format!("reading the archive settings: {error}"))?;
        let setting = |name: &str| {
            settings
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        if let Ok(size) = setting("wal_segment_size").parse::<u64>() {
            self.segment_size = size;
        }
        // A primary's timeline; a standby's does not count (it is not backed up from there).
        let timeline: Option<i32> = sqlx::query_scalar(
            "SELECT timeline_id FROM pg_control_checkpoint() WHERE NOT pg_is_in_recovery()",
        )
        .fetch_optional(&mut session)
        .await
        .map_err(|error| format!("reading the timeline: {error}"))?;
        self.timeline = timeline.and_then(|timeline| u32::try_from(timeline).ok());
        if let Some(closed) = closed_to_others(&self.context.exe) {
            return Err(format!(
                "PostgreSQL could not run archive_command: {} is closed to other users, so {} is \
                 out of reach of the database's user; install cloudkeep where every user can run \
                 it (e.g. /usr/local/bin)",
                closed.display(),
                self.context.exe.display()
            ));
        }
        let timeout_s = (self.context.job.archive_timeout_ms / 1000).max(1);
        let mut changes = Vec::new();
        if setting("archive_command") != self.context.archive_command {
            changes.push(format!(
                "ALTER SYSTEM SET archive_command = {}",
                literal(&self.context.archive_command)
            ));
        }
        if setting("archive_timeout") != timeout_s.to_string() {
            changes.push(format!("ALTER SYSTEM SET archive_timeout = {timeout_s}"));
        }
        let mode = setting("archive_mode");
        if mode == "off" {
            changes.push("ALTER SYSTEM SET archive_mode = 'on'".to_owned());
        }
        for change in &changes {
            sqlx::raw_sql(AssertSqlSafe(change.clone()))
                .execute(&mut session)
                .await
                .map_err(|error| format!("{change}: {error}"))?;
        }
        if !changes.is_empty() {
            sqlx::raw_sql("SELECT pg_reload_conf()")
                .execute(&mut session)
                .await
                .map_err(|error| format!("reloading the configuration: {error}"))?;
        }
        if !self.context.job.streaming {
            // Streaming was turned off: an idle slot left behind would keep WAL forever.
            sqlx::query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            )
            .bind(super::stream::slot_name(&self.context.job.database))
            .execute(&mut session)
            .await
            .map_err(|error| format!("dropping the unused replication slot: {error}"))?;
        }
        let _ = session.close().await;
        self.archiving_on = mode != "off";
        if mode == "off" {
            return Err(format!(
                "archive_mode was off on {}: it is now set on, restart PostgreSQL to start archiving",
                self.database()
            ));
        }
        Ok(())
    }

    /// Writes the heartbeat row: the newest one a restore contains gives the measured RPO.
    async fn heartbeat(&mut self) -> Result<(), String> {
        if self.heartbeat.is_none() {
            self.heartbeat = Some(
                connect(&self.context.job.connection)
                    .await
                    .map_err(|error| error.to_string())?,
            );
        }
        let Some(session) = self.heartbeat.as_mut() else {
            return Ok(());
        };
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS cloudkeep_heartbeat (id integer PRIMARY KEY, at timestamptz NOT NULL);
             INSERT INTO cloudkeep_heartbeat (id, at) VALUES (1, clock_timestamp())
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .execute(session)
        .await
        .map_err(|error| format!("writing the heartbeat row: {error}"))?;
        Ok(())
    }

    async fn base_backups(&mut self, now_ms: i64) {
        if let Some(task) = self.base_task.take_if(|task| task.is_finished()) {
            if let Ok(mut status) = self.context.status.lock() {
                status.full_running = false;
            }
            match task.await {
                Ok(Ok((manifest, retention))) => self.base_done(manifest, retention),
                Ok(Err(message)) => {
                    self.next_base_check_ms = now_ms + BASE_RETRY_MS;
                    self.fail("base", message);
                }
                Err(join) => self.fail("base", format!("the backup task failed: {join}")),
            }
        }
        let Some(ready) = self.ready.clone() else {
            return;
        };
        if self.base_task.is_some() || !self.archiving_on || now_ms < self.next_base_check_ms {
            return;
        }
        self.next_base_check_ms = now_ms + BASE_CHECK_EVERY_MS;
        let newest = match self.newest_base_ms {
            Some(newest) => newest,
            None => match list_base_manifests(&ready.repository, &ready.layout).await {
                Ok(manifests) => {
                    let newest_full = manifests.iter().rev().find(|manifest| manifest.is_full());
                    let newest = NewestBackups {
                        full_ms: newest_full.map(|manifest| manifest.stopped_at_ms),
                        any_ms: manifests.last().map(|manifest| manifest.stopped_at_ms),
                        timeline: manifests.last().map(|manifest| manifest.timeline),
                    };
                    self.newest_base_ms = Some(newest);
                    if let (Some(manifest), Ok(mut status)) =
                        (newest_full, self.context.status.lock())
                    {
                        status.last_full_stopped_ms = Some(manifest.stopped_at_ms);
                        status.last_full_duration_ms =
                            Some(manifest.stopped_at_ms - manifest.started_at_ms);
                        status.last_full_stored_bytes = Some(manifest.stored_bytes);
                    }
                    newest
                }
                Err(error) => {
                    self.fail("base", format!("listing the base backups: {error}"));
                    return;
                }
            },
        };
        let Some(incremental) = newest.due(now_ms, self.timeline, &self.context.job) else {
            return;
        };
        let id = backup_id(now_ms);
        let job = self.context.job.clone();
        let clock = self.context.clock.clone();
        if let Ok(mut status) = self.context.status.lock() {
            status.full_running = true;
        }
        tracing::info!(database = %job.database, id = %id, incremental, "base backup starting");
        self.base_task = Some(tokio::spawn(async move {
            let settings = BaseBackupSettings {
                parallel: usize::try_from(job.parallel.max(1)).unwrap_or(1),
                split_bytes: job.split_bytes.max(1 << 20),
                level: job.compression_level,
                incremental,
            };
            let now = {
                let clock = clock.clone();
                move || clock.now_ms()
            };
            let manifest = take_base_backup(
                &ready.repository,
                &ready.layout,
                &id,
                &PathBuf::from(&job.pgdata),
                &job.connection,
                &ready.recipients,
                &settings,
                &now,
            )
            .await
            .map_err(|error| {
                let kind = if incremental { "incremental" } else { "full" };
                format!("{kind} backup {id}: {error}")
            })?;
            let policy = RetentionPolicy {
                keep_full: usize::try_from(job.keep_full.max(1)).unwrap_or(1),
                pitr_window_ms: job.pitr_window_ms,
            };
            let retention =
                apply_retention(&ready.repository, &ready.layout, policy, clock.now_ms())
                    .await
                    .map_err(|error| error.to_string());
            Ok((manifest, retention))
        }));
    }

    fn base_done(&mut self, manifest: BaseManifest, retention: Result<RetentionResult, String>) {
        tracing::info!(database = %self.database(), id = %manifest.id, bytes = manifest.stored_bytes, parent = manifest.parent.as_deref().unwrap_or("-"), "base backup done");
        self.succeeded("base");
        let previous = self.newest_base_ms.unwrap_or_default();
        self.newest_base_ms = Some(NewestBackups {
            full_ms: if manifest.is_full() {
                Some(manifest.stopped_at_ms)
            } else {
                previous.full_ms
            },
            any_ms: Some(manifest.stopped_at_ms),
            timeline: Some(manifest.timeline),
        });
        if manifest.is_full()
            && let Ok(mut status) = self.context.status.lock()
        {
            status.last_full_stopped_ms = Some(manifest.stopped_at_ms);
            status.last_full_duration_ms = Some(manifest.stopped_at_ms - manifest.started_at_ms);
            status.last_full_stored_bytes = Some(manifest.stored_bytes);
        }
        self.push_event(BackupEvent::Base(BaseBackupDone {
            id: manifest.id.clone(),
            started_at_ms: manifest.started_at_ms,
            stopped_at_ms: manifest.stopped_at_ms,
            start_lsn: manifest.start_lsn.clone(),
            stop_lsn: manifest.stop_lsn.clone(),
            timeline: manifest.timeline,
            start_wal: manifest.start_wal.clone(),
            stop_wal: manifest.stop_wal.clone(),
            files: manifest.files.len() as u64,
            plain_bytes: manifest.plain_bytes,
            stored_bytes: manifest.stored_bytes,
            parent: manifest.parent.clone(),
        }));
        match retention {
            Ok(result) if result.base_ids.is_empty() && result.wal_names.is_empty() => {
                self.succeeded("retention");
            }
            Ok(result) => {
                self.succeeded("retention");
                let at_ms = self.now_ms();
                self.push_event(BackupEvent::Expired(BackupsExpired {
                    base_ids: result.base_ids,
                    wal_names: result.wal_names,
                    at_ms,
                }));
            }
            Err(message) => self.fail("retention", message),
        }
    }

    /// Sends queued events; keeps them when the server cannot be reached.
    async fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let report = BackupReport {
            database: self.database().to_owned(),
            events: std::mem::take(&mut self.events),
        };
        match self.context.client.report_backups(&report).await {
            Ok(()) => {}
            Err(error) if error.is_retryable() => {
                tracing::debug!(error = %error, "backup report not delivered; kept");
                self.events = report.events;
            }
            Err(error) => {
                tracing::warn!(error = %error, events = report.events.len(), "the server refused a backup report");
            }
        }
    }
}

/// A full backup's id: its start time in UTC and a random suffix, e.g. `20261122T101500Z-3fa2`.
pub fn backup_id(now_ms: i64) -> String {
    let stamp = jiff::Timestamp::from_millisecond(now_ms)
        .map(|at| at.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| now_ms.to_string());
    format!("{stamp}-{}", cloudkeep_stdx::ids::random_hex(2))
}

/// The first directory above `exe` that other users cannot pass through, if any.
pub fn closed_to_others(exe: &std::path::Path) -> Option<&std::path::Path> {
    use std::os::unix::fs::PermissionsExt;
    exe.ancestors()
        .skip(1)
        .find(|dir| std::fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o001 == 0))
}

/// `archive_command` for an agent whose executable is `exe` and socket `socket`, shell-quoted.
pub fn archive_command(exe: &std::path::Path, socket: &std::path::Path) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    format!(
        "{} wal-push --socket {} %p",
        quote(&exe.display().to_string()),
        quote(&socket.display().to_string())
    )
}

/// Parses a job's connection URL only to check it, without showing it (it may hold a password).
pub fn check_connection(url: &str) -> Result<(), String> {
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|_| "connection: not a valid postgres:// URL".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backup_is_due_first_after_a_failover_then_incremental_ones_between_fulls() {
        let hour = 3_600_000;
        let mut job: AgentBackupJob = serde_json::from_value(serde_json::json!({
            "database": "db", "pgdata": "/pg", "connection": "postgres://x", "repository": {},
            "recipients": [], "compression_level": 1, "parallel": 2, "split_bytes": 1 << 20,
            "full_every_ms": 24 * hour, "archive_timeout_ms": 30_000, "keep_full": 2,
            "pitr_window_ms": 0, "heartbeat_every_ms": 10_000, "incremental_every_ms": hour,
        }))
        .unwrap();
        let now = 100 * hour;
        let newest = |full_ms: Option<i64>, any_ms: Option<i64>| NewestBackups {
            full_ms,
            any_ms,
            timeline: Some(1),
        };
        let on_1 = Some(1);
        assert_eq!(newest(None, None).due(now, on_1, &job), Some(false));
        let recent = newest(Some(now - 25 * hour), Some(now));
        assert_eq!(recent.due(now, on_1, &job), Some(false));
        let quiet = newest(Some(now - 2 * hour), Some(now - hour));
        assert_eq!(quiet.due(now, on_1, &job), Some(true));
        // After a failover to timeline 2 a full backup is due at once.
        assert_eq!(quiet.due(now, Some(2), &job), Some(false));
        // An unknown timeline (not read yet, or a standby) changes nothing.
        assert_eq!(quiet.due(now, None, &job), Some(true));
        let fresh = newest(Some(now - 2 * hour), Some(now - hour + 1));
        assert_eq!(fresh.due(now, on_1, &job), None);
        assert_eq!(fresh.due(now, Some(2), &job), Some(false));
        job.incremental_every_ms = 0;
        let idle = newest(Some(now - 2 * hour), Some(now - 2 * hour));
        assert_eq!(idle.due(now, on_1, &job), None);
    }

    #[test]
    fn a_private_directory_above_the_executable_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let exe = private.join("cloudkeep");
        assert_eq!(closed_to_others(&exe), Some(private.as_path()));
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(closed_to_others(&exe), None);
    }

    #[test]
    fn ids_sort_by_time_and_commands_are_quoted() {
        let id = backup_id(1_763_776_500_000);
        assert!(id.starts_with("20251122T015500Z-"), "{id}");
        assert_eq!(id.len(), "20251122T015500Z-".len() + 4);
        assert_eq!(
            archive_command(
                std::path::Path::new("/usr/bin/cloudkeep"),
                std::path::Path::new("/var/lib/it's/wal.sock")
            ),
            r"'/usr/bin/cloudkeep' wal-push --socket '/var/lib/it'\''s/wal.sock' %p"
        );
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
