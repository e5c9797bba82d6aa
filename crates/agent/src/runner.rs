//! The agent's main loop: enrol once, then every interval collect, store in the outbox and push what is pending.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_client::{Client, ClientError};
use cloudkeep_protocol::api::EnrollRequest;
use cloudkeep_protocol::remote_write::{self, Label, TimeSeries, WriteRequest};
use cloudkeep_stdx::Clock;

use cloudkeep_protocol::alerting::CheckReport;

use crate::backup::BackupManager;
use crate::check_runner::{CheckRunner, runs_to_report, runs_to_series};
use crate::collect::{Collector, ProcRoot, Sample, default_collectors};
use crate::outbox::{Outbox, OutboxError};
use crate::state::{self, AgentIdentity, StateError};

/// How this agent process runs (from flags).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub server_url: String,
    /// Needed only for the first start; later starts use the stored identity.
    pub join_token: Option<String>,
    pub state_dir: PathBuf,
    pub interval: Duration,
    pub hostname: String,
    pub proc_root: PathBuf,
    pub outbox_max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "this agent is not enrolled yet: pass --token with a join token (cloudkeep token create --platform P)"
    )]
    NoToken,
    #[error("enrolment refused: {0}")]
    EnrolRefused(ClientError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("cannot build the HTTP client: {0}")]
    Client(ClientError),
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    options: AgentOptions,
    clock: Arc<dyn Clock>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    tokio::pin!(shutdown);
    let client = Client::new(&options.server_url, None).map_err(AgentError::Client)?;
    let identity = tokio::select! {
        identity = identity(&options, &client) => identity?,
        () = &mut shutdown => return Ok(()),
    };
    tracing::info!(agent = %identity.agent_id, host = %identity.host, platform = %identity.platform, "agent running");
    let client = client.with_bearer(identity.credential.clone());
    let mut outbox = Outbox::open(&options.state_dir.join("outbox"), options.outbox_max_bytes)?;
    let mut collectors = Some(default_collectors(&ProcRoot::new(&options.proc_root)));
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut collect_errors: u64 = 0;
    let mut checks = CheckRunner::new(&options.proc_root, clock.clone());
    let mut next_config_fetch_ms = i64::MIN;
    let mut backups = BackupManager::new(
        &identity.platform,
        client.clone(),
        clock.clone(),
        &options.state_dir.join(WAL_SOCKET),
    );
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut shutdown => break,
        }
        let now_ms = clock.now_ms();
        let mut taken = collectors.take().unwrap_or_default();
        // statvfs and /proc reads block; keep them off the async thread.
        let (returned, samples, errors) = tokio::task::spawn_blocking(move || {
            let (samples, errors) = collect_all(&mut taken, now_ms);
            (taken, samples, errors)
        })
        .await
        .unwrap_or_else(|_| {
            (
                default_collectors(&ProcRoot::new(&options.proc_root)),
                Vec::new(),
                1,
            )
        });
        collectors = Some(returned);
        collect_errors += errors;
        if now_ms >= next_config_fetch_ms {
            refresh_config(&client, &mut checks, &mut backups).await;
            next_config_fetch_ms = now_ms.saturating_add(CONFIG_REFRESH_MS);
        }
        let runs = checks.take_runs();
        let mut samples = samples;
        samples.extend(backups.samples(now_ms));
        let mut batch = to_write_request(&samples, now_ms);
        batch.timeseries.extend(runs_to_series(&runs));
        append_own_metrics(&mut batch, now_ms, &outbox, collect_errors);
        outbox.push(&remote_write::encode(&batch))?;
        if !runs.is_empty() {
            let report = CheckReport {
                results: runs_to_report(&runs),
            };
            // Best effort: the statuses already travel as `check_status` samples through the
            // outbox; the report only adds each check's message for the NOC. It goes first so that
            // an alert raised by the statuses carries the message that explains it.
            if let Err(err) = client.report_checks(&report).await {
                tracing::debug!(error = %err, "check report not delivered");
            }
        }
        drain(&client, &mut outbox, options.interval / 2).await?;
    }
    backups.stop_all();
    tracing::info!(
        pending_batches = outbox.len(),
        "agent stopping; pending batches stay in the outbox"
    );
    Ok(())
}

async fn identity(options: &AgentOptions, client: &Client) -> Result<AgentIdentity, AgentError> {
    if let Some(identity) = state::load_identity(&options.state_dir)? {
        return Ok(identity);
    }
    let token = options.join_token.clone().ok_or(AgentError::NoToken)?;
    let request = EnrollRequest {
        join_token: token,
        hostname: options.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match client.enroll(&request).await {
            Ok(enrolled) => {
                let identity = AgentIdentity {
                    server: options.server_url.clone(),
                    agent_id: enrolled.agent_id,
                    credential: enrolled.credential,
                    host: enrolled.host,
                    platform: enrolled.platform,
                };
                state::save_identity(&options.state_dir, &identity)?;
                return Ok(identity);
            }
            Err(err) if err.is_retryable() => {
                tracing::warn!(error = %err, retry_in_s = backoff.as_secs(), "enrolment failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(err) => return Err(AgentError::EnrolRefused(err)),
        }
    }
}

/// Runs every collector; one failing collector is logged and does not stop the others.
pub fn collect_all(collectors: &mut [Box<dyn Collector>], now_ms: i64) -> (Vec<Sample>, u64) {
    let mut samples = Vec::with_capacity(256);
    let mut errors = 0;
    for collector in collectors.iter_mut() {
        if let Err(err) = collector.collect(now_ms, &mut samples) {
            errors += 1;
            tracing::warn!(collector = collector.name(), error = %err, "collector failed");
        }
    }
    (samples, errors)
}

/// Samples as one remote_write request; the server adds the `host` and `platform` labels.
pub fn to_write_request(samples: &[Sample], now_ms: i64) -> WriteRequest {
    let timeseries = samples
        .iter()
        .filter(|sample| sample.value.is_finite())
        .map(|sample| {
            let mut labels = Vec::with_capacity(sample.labels.len() + 1);
            labels.push(Label {
                name: "__name__".into(),
                value: sample.name.clone(),
            });
            labels.extend(sample.labels.iter().map(|(name, value)| Label {
                name: name.clone(),
                value: value.clone(),
            }));
            TimeSeries {
                labels,
                samples: vec![remote_write::Sample {
                    value: sample.value,
                    timestamp: now_ms,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

fn append_own_metrics(batch: &mut WriteRequest, now_ms: i64, outbox: &Outbox, collect_errors: u64) {
    let gauge = |name: &str, value: f64| TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }],
        samples: vec![remote_write::Sample {
            value,
            timestamp: now_ms,
        }],
    };
    batch
        .timeseries
        .push(gauge("cloudkeep_agent_outbox_batches", outbox.len() as f64));
    batch.timeseries.push(gauge(
        "cloudkeep_agent_outbox_dropped_batches_total",
        outbox.dropped_batches() as f64,
    ));
    batch.timeseries.push(gauge(
        "cloudkeep_agent_collect_errors_total",
        collect_errors as f64,
    ));
}

/// Sends pending batches oldest first until the outbox is empty, the server fails, or `budget` is spent.
pub async fn drain(
    client: &Client,
    outbox: &mut Outbox,
    budget: Duration,
) -> Result<(), OutboxError> {
    let deadline = tokio::time::Instant::now() + budget;
    while let Some((seq, body)) = outbox.peek()? {
        match client.remote_write(body).await {
            Ok(()) => outbox.remove(seq)?,
            Err(err) if err.is_retryable() => {
                tracing::warn!(error = %err, pending = outbox.len(), "server unavailable; batches stay in the outbox");
                return Ok(());
            }
            Err(err) if err.status() == Some(400) => {
                tracing::error!(error = %err, batch = seq, "server refused a batch as malformed; moved to outbox/rejected");
                outbox.reject(seq)?;
            }
            Err(err) => {
                tracing::error!(error = %err, "server refused this agent's credential; is the agent revoked?");
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    Ok(())
}

/// How often the agent asks the server which monitors its host runs.
const CONFIG_REFRESH_MS: i64 = 30_000;

/// The `wal-push` socket's name in the agent's state directory.
pub const WAL_SOCKET: &str = "wal.sock";

/// Fetches this host's monitors and backup jobs and (re)starts what changed; keeps what runs when
/// the server cannot be asked.
async fn refresh_config(client: &Client, checks: &mut CheckRunner, backups: &mut BackupManager) {
    match client.agent_config().await {
        Ok(config) => {
            checks.apply(&config);
            backups.apply(&config.backups);
        }
        Err(err) => {
            tracing::warn!(error = %err, revision = ?checks.revision(), "cannot fetch the agent config; keeping the current checks")
        }
    }
}

/// This machine's host name as the kernel reports it, lowercased.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_ascii_lowercase())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_request_has_names_labels_and_drops_non_finite() {
        let samples = vec![
            Sample::with_labels("host_cpu_percent", &[("state", "user")], 12.5),
            Sample::new("host_load1", f64::NAN),
        ];
        let request = to_write_request(&samples, 42);
        assert_eq!(request.timeseries.len(), 1);
        let series = &request.timeseries[0];
        assert_eq!(
            series.labels[0],
            Label {
                name: "__name__".into(),
                value: "host_cpu_percent".into()
            }
        );
        assert_eq!(
            series.labels[1],
            Label {
                name: "state".into(),
                value: "user".into()
            }
        );
        assert_eq!(series.samples[0].timestamp, 42);
        assert!(remote_write::decode(&remote_write::encode(&request)).is_ok());
    }
}
