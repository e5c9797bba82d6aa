//! The agent's backups: one job per database its host backs up (see `backup/job.rs`), its
//! scheduled restore drills (`backup/drill.rs`), the local socket `cloudkeep wal-push` reaches
//! them through (`backup/socket.rs`), and their metrics.

pub mod drill;
pub mod job;
pub mod socket;
pub mod stream;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cloudkeep_client::Client;
use cloudkeep_protocol::backup::AgentBackupJob;
use cloudkeep_stdx::Clock;
use tokio::sync::{mpsc, watch};

use crate::collect::Sample;
use job::{JobContext, JobStatus};
use socket::Route;

/// A running job.
struct RunningJob {
    job: AgentBackupJob,
    status: Arc<Mutex<JobStatus>>,
    stop: watch::Sender<bool>,
}

/// Starts, restarts and stops the jobs as the server's config changes, and serves `wal-push`.
pub struct BackupManager {
    platform: String,
    client: Client,
    clock: Arc<dyn Clock>,
    socket_path: PathBuf,
    archive_command: String,
    exe: PathBuf,
    jobs: BTreeMap<String, RunningJob>,
    routes: Arc<Mutex<Vec<Route>>>,
    listening: bool,
}

impl BackupManager {
    /// A manager whose `wal-push` socket is `socket_path`.
    pub fn new(platform: &str, client: Client, clock: Arc<dyn Clock>, socket_path: &Path) -> Self {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cloudkeep"));
        BackupManager {
            platform: platform.to_owned(),
            client,
            clock,
            socket_path: socket_path.to_owned(),
            archive_command: job::archive_command(&exe, socket_path),
            exe,
            jobs: BTreeMap::new(),
            routes: Arc::new(Mutex::new(Vec::new())),
            listening: false,
        }
    }

    /// Brings the running jobs in line with `jobs`.
    pub fn apply(&mut self, jobs: &[AgentBackupJob]) {
        if !jobs.is_empty() && !self.listening {
            self.listen();
        }
        let wanted: BTreeMap<&str, &AgentBackupJob> = jobs
            .iter()
            .map(|job| (job.database.as_str(), job))
            .collect();
        self.jobs.retain(|database, running| {
            let keep = wanted.get(database.as_str()) == Some(&&running.job);
            if !keep {
                let _ = running.stop.send(true);
            }
            keep
        });
        let mut routes = Vec::new();
        for job in jobs {
            let (sender, requests) = mpsc::channel(64);
            let pgdata =
                std::fs::canonicalize(&job.pgdata).unwrap_or_else(|_| PathBuf::from(&job.pgdata));
            let owner_uid = std::fs::metadata(&pgdata)
                .map(|meta| meta.uid())
                .unwrap_or(0);
            if !self.jobs.contains_key(&job.database) {
                let status = Arc::new(Mutex::new(JobStatus::default()));
                let (stop, stopped) = watch::channel(false);
                let context = JobContext {
                    platform: self.platform.clone(),
                    job: job.clone(),
                    client: self.client.clone(),
                    clock: self.clock.clone(),
                    status: status.clone(),
                    archive_command: self.archive_command.clone(),
                    exe: self.exe.clone(),
                    spool_dir: self
                        .socket_path
                        .parent()
                        .unwrap_or_else(|| Path::new("."))
                        .join("stream")
                        .join(&job.database),
                    state_dir: self
                        .socket_path
                        .parent()
                        .unwrap_or_else(|| Path::new("."))
                        .to_owned(),
                    requests,
                    stop: stopped,
                };
                tracing::info!(database = %job.database, pgdata = %job.pgdata, "backup job starting");
                tokio::spawn(job::run_job(context));
                self.jobs.insert(
                    job.database.clone(),
                    RunningJob {
                        job: job.clone(),
                        status,
                        stop,
                    },
                );
                routes.push(Route {
                    pgdata,
                    owner_uid,
                    sender,
                });
            } else if let Ok(current) = self.routes.lock()
                && let Some(route) = current.iter().find(|route| route.pgdata == pgdata)
            {
                routes.push(route.clone());
            }
        }
        if let Ok(mut current) = self.routes.lock() {
            *current = routes;
        }
    }

    fn listen(&mut self) {
        let listener = match socket::bind(&self.socket_path) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(socket = %self.socket_path.display(), error = %error, "cannot open the wal-push socket; WAL is archived ahead only");
                return;
            }
        };
        self.listening = true;
        let routes = self.routes.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let snapshot = routes
                            .lock()
                            .map(|routes| routes.clone())
                            .unwrap_or_default();
                        tokio::spawn(socket::serve(stream, snapshot));
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "wal-push socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    /// Stops every job.
    pub fn stop_all(&mut self) {
        for running in self.jobs.values() {
            let _ = running.stop.send(true);
        }
        self.jobs.clear();
    }

    /// The backup metrics of every job at `now_ms`.
    pub fn samples(&self, now_ms: i64) -> Vec<Sample> {
        let mut samples = Vec::new();
        for (database, running) in &self.jobs {
            let Ok(status) = running.status.lock().map(|status| status.clone()) else {
                continue;
            };
            let labels = [("database", database.as_str())];
            let seconds = |ms: i64| ms as f64 / 1000.0;
            samples.push(Sample::with_labels(
                "cloudkeep_backup_configured",
                &labels,
                1.0,
            ));
            if let Some(at) = status.last_wal_archived_ms {
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_wal_last_archived_timestamp_seconds",
                    &labels,
                    seconds(at),
                ));
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_wal_archive_age_seconds",
                    &labels,
                    seconds((now_ms - at).max(0)),
                ));
            }
            if status.streaming {
                // Streaming: the data at risk is what was committed since the newest tail.
                if let Some(at) = status.last_stream_ms {
                    samples.push(Sample::with_labels(
                        "cloudkeep_backup_wal_stream_age_seconds",
                        &labels,
                        seconds((now_ms - at).max(0)),
                    ));
                }
            }
            samples.push(Sample::with_labels(
                "cloudkeep_backup_wal_pending_files",
                &labels,
                status.wal_pending as f64,
            ));
            samples.push(Sample::with_labels(
                "cloudkeep_backup_wal_archived_total",
                &labels,
                status.wal_archived_total as f64,
            ));
            if let Some(at) = status.last_full_stopped_ms {
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_full_last_timestamp_seconds",
                    &labels,
                    seconds(at),
                ));
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_full_age_seconds",
                    &labels,
                    seconds((now_ms - at).max(0)),
                ));
            }
            if let Some(duration) = status.last_full_duration_ms {
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_full_last_duration_seconds",
                    &labels,
                    seconds(duration),
                ));
            }
            if let Some(bytes) = status.last_full_stored_bytes {
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_full_last_stored_bytes",
                    &labels,
                    bytes as f64,
                ));
            }
            samples.push(Sample::with_labels(
                "cloudkeep_backup_full_running",
                &labels,
                if status.full_running { 1.0 } else { 0.0 },
            ));
            for what in ["wal", "base", "retention", "heartbeat", "config"] {
                let labels = [("database", database.as_str()), ("what", what)];
                samples.push(Sample::with_labels(
                    "cloudkeep_backup_failures_total",
                    &labels,
                    status.failures.get(what).copied().unwrap_or(0) as f64,
                ));
            }
            // One series per database (how many kinds of work fail right now), for the default rule.
            samples.push(Sample::with_labels(
                "cloudkeep_backup_failing",
                &[("database", database.as_str())],
                status.failing.values().filter(|failing| **failing).count() as f64,
            ));
        }
        samples
    }
}
