//! A DR drill: restore the latest backup into a scratch directory on this host, start it on a free
//! port, measure what was lost (now minus the newest heartbeat row the agent wrote) and how long
//! the restore took, count the rows of every user table, run the spec's check query, then stop
//! the scratch server and remove everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{
    DatabaseLayout, PgBackupError, RecoverySettings, RecoveryTarget, plan_restore, recover,
    restore_files,
};
use crate::{Identity, Repository};

/// The result of one drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The platform.
    pub platform: String,
    /// The database.
    pub database: String,
    /// When the drill started (the simulated disaster), Unix ms.
    pub started_at_ms: i64,
    /// The base backup restored.
    pub base_backup: Option<String>,
    /// WAL files replayed.
    pub wal_files: usize,
    /// The newest heartbeat in the restored database, Unix ms.
    pub heartbeat_at_ms: Option<i64>,
    /// Measured RPO: the drill's start minus the newest heartbeat restored.
    pub rpo_ms: Option<i64>,
    /// Measured RTO: from the start of the drill to a promoted, queryable server.
    pub rto_ms: Option<i64>,
    /// Exact row counts of the restored user tables (at most 200 tables).
    pub row_counts: BTreeMap<String, i64>,
    /// The custom check, when the spec has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<DrillCheck>,
    /// Whether everything passed.
    pub ok: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The spec's check query and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillCheck {
    /// The query.
    pub sql: String,
    /// Its first column as text.
    pub value: Option<String>,
    /// True when the value is true or a non-zero number.
    pub passed: bool,
}

/// How a drill runs.
#[derive(Debug, Clone)]
pub struct DrillSettings {
    /// The scratch directory's parent (a directory named after the drill is made in it).
    pub scratch_parent: PathBuf,
    /// The port of the scratch server.
    pub port: u16,
    /// Recovery settings (port, socket dir, user, binaries); `keep_running` is forced.
    pub recovery: RecoverySettings,
    /// The database to connect to in the restored cluster (where the heartbeat table is).
    pub dbname: String,
    /// The user to connect as.
    pub user: String,
    /// Objects fetched at once.
    pub parallel: usize,
    /// The custom check query.
    pub check_sql: Option<String>,
}

/// Runs a drill; never leaves the scratch server or directory behind. Errors of the drill itself
/// are in the report (`ok: false`); only an unusable scratch location is an `Err`.
pub async fn run_drill(
    repository: &Repository,
    layout: &DatabaseLayout,
    identities: &[Identity],
    settings: &DrillSettings,
    started_at_ms: i64,
) -> Result<DrillReport, PgBackupError> {
    let started = Instant::now();
    let scratch = settings.scratch_parent.join(format!(
        "cloudkeep-drill-{}-{}-{started_at_ms}",
        layout.platform(),
        layout.database()
    ));
    let mut report = DrillReport {
        platform: layout.platform().to_owned(),
        database: layout.database().to_owned(),
        started_at_ms,
        base_backup: None,
        wal_files: 0,
        heartbeat_at_ms: None,
        rpo_ms: None,
        rto_ms: None,
        row_counts: BTreeMap::new(),
        check: None,
        ok: false,
        error: None,
    };
    let recovery = RecoverySettings {
        port: Some(settings.port),
        keep_running: true,
        ..settings.recovery.clone()
    };
    let mut version: Option<String> = None;
    let outcome = async {
        let plan = plan_restore(repository, layout, RecoveryTarget::Latest).await?;
        version = Some(plan.base.pg_version.clone());
        report.base_backup = Some(plan.base.id.clone());
        report.wal_files = plan.wal.len();
        restore_files(
            repository,
            identities,
            &plan,
            &scratch,
            &recovery,
            settings.parallel,
        )
        .await?;
        recover(&scratch, &plan.base.pg_version, &recovery).await?;
        let mut session = connect_scratch(settings).await?;
        report.rto_ms = Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        inspect(&mut session, settings, started_at_ms, &mut report).await?;
        let _ = session.close().await;
        Ok::<(), PgBackupError>(())
    }
    .await;
    if let Err(error) = &outcome {
        report.error = Some(error.to_string());
    }
    stop_and_remove(&scratch, version.as_deref(), &recovery).await;
    if report.error.is_none() {
        let check_ok = report.check.as_ref().is_none_or(|check| check.passed);
        report.ok = check_ok && report.heartbeat_at_ms.is_some();
        if !check_ok {
            report.error = Some("the check query did not pass".to_owned());
        } else if report.heartbeat_at_ms.is_none() {
            report.error = Some(
                "the restored database has no cloudkeep_heartbeat row: the RPO cannot be measured"
                    .to_owned(),
            );
        }
    }
    Ok(report)
}

async fn connect_scratch(settings: &DrillSettings) -> Result<PgConnection, PgBackupError> {
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(settings.port)
        .username(&settings.user)
        .database(&settings.dbname);
    PgConnection::connect_with(&options).await.map_err(|error| {
        PgBackupError::Postgres(format!("connecting to the restored server: {error}"))
    })
}

async fn inspect(
    session: &mut PgConnection,
    settings: &DrillSettings,
    started_at_ms: i64,
    report: &mut DrillReport,
) -> Result<(), PgBackupError> {
    let sql_error =
        |what: &str, error: sqlx::Error| PgBackupError::Postgres(format!("{what}: {error}"));
    let heartbeat: Option<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(at)) * 1000)::float8 FROM cloudkeep_heartbeat",
    )
    .fetch_optional(&mut *session)
    .await
    .ok()
    .flatten()
    .flatten();
    if let Some(at) = heartbeat {
        let at_ms = at as i64;
        report.heartbeat_at_ms = Some(at_ms);
        report.rpo_ms = Some((started_at_ms - at_ms).max(0));
    }
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, relname::text FROM pg_stat_user_tables ORDER BY 1, 2 LIMIT 200",
    )
    .fetch_all(&mut *session)
    .await
    .map_err(|error| sql_error("listing the tables", error))?;
    for (schema, table) in tables {
        let quoted = format!(
            "\"{}\".\"{}\"",
            schema.replace('"', "\"\""),
            table.replace('"', "\"\"")
        );
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {quoted}"
        )))
        .fetch_one(&mut *session)
        .await
        .map_err(|error| sql_error(&format!("counting {quoted}"), error))?;
        report.row_counts.insert(format!("{schema}.{table}"), count);
    }
    if let Some(sql) = &settings.check_sql {
        let value: Option<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT (({sql}))::text")))
                .fetch_optional(&mut *session)
                .await
                .map_err(|error| sql_error("the check query", error))?
                .flatten();
        let passed = value.as_deref().is_some_and(|text| {
            text == "true" || text == "t" || text.parse::<f64>().is_ok_and(|number| number != 0.0)
        });
        report.check = Some(DrillCheck {
            sql: sql.clone(),
            value,
            passed,
        });
    }
    Ok(())
}

async fn stop_and_remove(scratch: &Path, version: Option<&str>, recovery: &RecoverySettings) {
    if let Some(version) = version
        && scratch.join("postmaster.pid").exists()
    {
        let _ = super::restore::stop_server(scratch, version, recovery, "immediate").await;
    }
    let _ = std::fs::remove_dir_all(scratch);
}
