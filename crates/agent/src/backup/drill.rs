//! Scheduled restore drills: the database host's agent restores the newest backup into a scratch
//! server on this host with the drill key the spec names (`backup.drill.key_file`), measures RPO
//! and RTO, checks it, cleans up and records the result on the server, every `drill.every`. When
//! the last drill ran is kept in a small file beside the agent's other state, so a restart does
//! not run one again early.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cloudkeep_backup::Identity;
use cloudkeep_backup::pg::{DrillReport, DrillSettings, RecoverySettings, run_drill};
use cloudkeep_protocol::backup::{AgentBackupJob, AgentDrill, DrillRecord};

use super::job::Ready;

/// The longest a drill may take before it counts as failed.
const DRILL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The drill as the server records it.
pub fn drill_record(report: &DrillReport) -> DrillRecord {
    DrillRecord {
        platform: report.platform.clone(),
        database: report.database.clone(),
        started_at_ms: report.started_at_ms,
        base_backup: report.base_backup.clone(),
        rpo_ms: report.rpo_ms,
        rto_ms: report.rto_ms,
        ok: report.ok,
        error: report.error.clone(),
        report: serde_json::to_value(report).unwrap_or_default(),
    }
}

/// Where the start time of the last scheduled drill of `database` is kept.
pub fn last_drill_file(state_dir: &Path, database: &str) -> PathBuf {
    state_dir.join(format!("drill-{database}.last"))
}

/// When the last scheduled drill started (Unix ms), if one ever ran.
pub fn read_last_drill(file: &Path) -> Option<i64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Notes that a drill started at `at_ms`.
pub fn write_last_drill(file: &Path, at_ms: i64) -> std::io::Result<()> {
    let partial = file.with_extension("partial");
    std::fs::write(&partial, at_ms.to_string())?;
    std::fs::rename(partial, file)
}

/// A free TCP port on loopback for the scratch server.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port for the scratch server: {error}"))
}

/// Runs one drill of `job` with `drill`'s key.
pub(crate) async fn run_scheduled_drill(
    job: &AgentBackupJob,
    drill: &AgentDrill,
    ready: &Ready,
    started_at_ms: i64,
) -> Result<DrillReport, String> {
    let text = std::fs::read_to_string(&drill.key_file)
        .map_err(|error| format!("reading the drill key {}: {error}", drill.key_file))?;
    let identities = Identity::parse_key_file(&text)
        .map_err(|error| format!("the drill key {}: {error}", drill.key_file))?;
    let port = free_port()?;
    // PostgreSQL runs as `postgres` when the agent is root, so the scratch server lives where
    // that user can reach it.
    let scratch_parent = std::env::temp_dir();
    let is_root = rustix::process::geteuid().is_root();
    let dbname = sqlx::postgres::PgConnectOptions::from_str(&job.connection)
        .ok()
        .and_then(|options| options.get_database().map(str::to_owned))
        .unwrap_or_else(|| "postgres".to_owned());
    let settings = DrillSettings {
        scratch_parent: scratch_parent.clone(),
        port,
        recovery: RecoverySettings {
            port: Some(port),
            socket_dir: Some(scratch_parent),
            pg_bin: None,
            run_as: is_root.then(|| "postgres".to_owned()),
            keep_running: true,
            timeout: DRILL_TIMEOUT,
        },
        dbname,
        user: "postgres".to_owned(),
        parallel: usize::try_from(job.parallel.max(1)).unwrap_or(1),
        check_sql: drill.check_sql.clone(),
    };
    run_drill(
        &ready.repository,
        &ready.layout,
        &identities,
        &settings,
        started_at_ms,
    )
    .await
    .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_drill_time_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = last_drill_file(dir.path(), "db");
        assert_eq!(read_last_drill(&file), None);
        write_last_drill(&file, 1_234_567).unwrap();
        assert_eq!(read_last_drill(&file), Some(1_234_567));
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(
            read_last_drill(&file),
            None,
            "a damaged file means no drill ran"
        );
    }
}
