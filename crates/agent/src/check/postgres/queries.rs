//! The statistics queries of the postgres check and the samples they become (every number is cast to int8 or float8 in SQL).

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use crate::check::Sample;
use crate::check::postgres::describe_error;

/// Version, role, connections, cache and the longest transaction in one round trip.
/// Connections count client backends only (what `max_connections` limits); the longest
/// transaction looks at client backends not idle (so `idle in transaction` counts), except
/// this session.
const OVERVIEW_SQL: &str = "\
select current_setting('server_version') as server_version,
       current_setting('server_version_num')::int8 as server_version_num,
       pg_is_in_recovery() as in_recovery,
       (select count(*) from pg_stat_activity
         where backend_type = 'client backend')::int8 as connections,
       current_setting('max_connections')::int8 as max_connections,
       (select sum(blks_hit) from pg_stat_database)::float8 as blocks_hit,
       (select sum(blks_read) from pg_stat_database)::float8 as blocks_read,
       (select coalesce(extract(epoch from max(now() - xact_start)), 0) from pg_stat_activity
         where backend_type = 'client backend' and state is distinct from 'idle'
           and xact_start is not null and pid <> pg_backend_pid())::float8
         as longest_transaction_seconds";

/// Checkpoint counters before PostgreSQL 17 (in the background writer's view).
const CHECKPOINTS_BGWRITER_SQL: &str = "\
select checkpoints_timed::int8 as timed, checkpoints_req::int8 as requested from pg_stat_bgwriter";

/// Checkpoint counters from PostgreSQL 17 on (a view of their own).
const CHECKPOINTS_CHECKPOINTER_SQL: &str = "\
select num_timed::int8 as timed, num_requested::int8 as requested from pg_stat_checkpointer";

/// The first server version with `pg_stat_checkpointer`.
const CHECKPOINTER_VIEW_SINCE: i64 = 170_000;

const ARCHIVER_SQL: &str = "\
select archived_count::int8 as archived, failed_count::int8 as failed,
       extract(epoch from now() - last_archived_time)::float8 as last_archived_age_seconds
  from pg_stat_archiver";

/// Sizes of the databases this user may see the size of (CONNECT privilege or
/// pg_read_all_stats, as `pg_database_size` requires); templates are left out.
const DATABASE_SIZES_SQL: &str = "\
select datname::text as database,
       case when has_database_privilege(oid, 'CONNECT') or pg_has_role('pg_read_all_stats', 'member')
            then pg_database_size(oid) end::int8 as size_bytes
  from pg_database where not datistemplate order by datname";

/// On a primary: the worst standby's replay lag (0 when standbys are caught up and idle,
/// which makes PostgreSQL report NULL lag) and its WAL distance; NULL without standbys.
const PRIMARY_REPLICATION_SQL: &str = "\
select case when count(*) = 0 then null
            else coalesce(extract(epoch from max(replay_lag)), 0) end::float8 as lag_seconds,
       max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8 as lag_bytes
  from pg_stat_replication";

/// On a standby: time since the last replayed transaction, but 0 when everything received is
/// replayed (an idle primary sends nothing, which is no lag); bytes received not yet replayed.
const STANDBY_REPLICATION_SQL: &str = "\
select case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
            else extract(epoch from now() - pg_last_xact_replay_timestamp()) end::float8 as lag_seconds,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 as lag_bytes";

/// Everything read in one run. `None` means not available (a query failed, or there is
/// nothing to report, e.g. no standby); `errors` lists the queries that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServerStatistics {
    pub(crate) version: Option<String>,
    pub(crate) in_recovery: Option<bool>,
    pub(crate) connections: Option<i64>,
    pub(crate) max_connections: Option<i64>,
    pub(crate) blocks_hit: Option<f64>,
    pub(crate) blocks_read: Option<f64>,
    pub(crate) longest_transaction_seconds: Option<f64>,
    pub(crate) checkpoints_timed: Option<i64>,
    pub(crate) checkpoints_requested: Option<i64>,
    pub(crate) archived: Option<i64>,
    pub(crate) archive_failed: Option<i64>,
    pub(crate) last_archived_age_seconds: Option<f64>,
    pub(crate) database_sizes: Vec<(String, i64)>,
    pub(crate) replication_lag_seconds: Option<f64>,
    pub(crate) replication_lag_bytes: Option<f64>,
    pub(crate) errors: Vec<String>,
}

async fn fetch_one(connection: &mut PgConnection, sql: &'static str) -> Result<PgRow, sqlx::Error> {
    // One connection per run: preparing named statements would only cost round trips.
    sqlx::query(sql)
        .persistent(false)
        .fetch_one(connection)
        .await
}

/// Runs every query; a failing one is noted in `errors` and the others still run (a failed
/// statement outside a transaction leaves the session usable).
pub(crate) async fn read_statistics(connection: &mut PgConnection) -> ServerStatistics {
    let mut statistics = ServerStatistics::default();
    let mut version_num = 0;
    match read_overview(connection, &mut statistics).await {
        Ok(number) => version_num = number,
        Err(error) => statistics.errors.push(format!(
            "cannot read the overview: {}",
            describe_error(&error)
        )),
    }
    let checkpoints_sql = if version_num >= CHECKPOINTER_VIEW_SINCE {
        CHECKPOINTS_CHECKPOINTER_SQL
    } else {
        CHECKPOINTS_BGWRITER_SQL
    };
    let checkpoints = fetch_one(connection, checkpoints_sql)
        .await
        .and_then(|row| {
            statistics.checkpoints_timed = row.try_get("timed")?;
            statistics.checkpoints_requested = row.try_get("requested")?;
            Ok(())
        });
    note_error(&mut statistics, "checkpoint statistics", checkpoints);
    let archiver = fetch_one(connection, ARCHIVER_SQL).await.and_then(|row| {
        statistics.archived = row.try_get("archived")?;
        statistics.archive_failed = row.try_get("failed")?;
        statistics.last_archived_age_seconds = row.try_get("last_archived_age_seconds")?;
        Ok(())
    });
    note_error(&mut statistics, "pg_stat_archiver", archiver);
    let sizes = read_database_sizes(connection).await.map(|sizes| {
        statistics.database_sizes = sizes;
    });
    note_error(&mut statistics, "database sizes", sizes);
    let replication_sql = match statistics.in_recovery {
        Some(true) => Some(STANDBY_REPLICATION_SQL),
        Some(false) => Some(PRIMARY_REPLICATION_SQL),
        None => None,
    };
    if let Some(sql) = replication_sql {
        let replication = fetch_one(connection, sql).await.and_then(|row| {
            statistics.replication_lag_seconds = row.try_get("lag_seconds")?;
            statistics.replication_lag_bytes = row.try_get("lag_bytes")?;
            Ok(())
        });
        note_error(&mut statistics, "replication statistics", replication);
    }
    statistics
}

fn note_error(statistics: &mut ServerStatistics, what: &str, result: Result<(), sqlx::Error>) {
    if let Err(error) = result {
        statistics
            .errors
            .push(format!("cannot read {what}: {}", describe_error(&error)));
    }
}

/// Fills the overview fields and returns `server_version_num`.
async fn read_overview(
    connection: &mut PgConnection,
    statistics: &mut ServerStatistics,
) -> Result<i64, sqlx::Error> {
    let row = fetch_one(connection, OVERVIEW_SQL).await?;
    let full_version: String = row.try_get("server_version")?;
    // `15.18 (Debian 15.18-0+deb12u1)` becomes `15.18`.
    statistics.version = full_version.split_whitespace().next().map(str::to_owned);
    statistics.in_recovery = Some(row.try_get("in_recovery")?);
    statistics.connections = Some(row.try_get("connections")?);
    statistics.max_connections = Some(row.try_get("max_connections")?);
    statistics.blocks_hit = row.try_get("blocks_hit")?;
    statistics.blocks_read = row.try_get("blocks_read")?;
    statistics.longest_transaction_seconds = row.try_get("longest_transaction_seconds")?;
    row.try_get("server_version_num")
}

async fn read_database_sizes(
    connection: &mut PgConnection,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(DATABASE_SIZES_SQL)
        .persistent(false)
        .fetch_all(connection)
        .await?;
    let mut sizes = Vec::with_capacity(rows.len());
    for row in rows {
        let size: Option<i64> = row.try_get("size_bytes")?;
        if let Some(size) = size {
            sizes.push((row.try_get("database")?, size));
        }
    }
    Ok(sizes)
}

fn gauge(name: &str, value: f64) -> Sample {
    Sample {
        name: name.to_owned(),
        labels: Vec::new(),
        value,
    }
}

impl ServerStatistics {
    /// Share of block reads served from shared buffers, over all databases since the
    /// statistics were reset; `None` before any block was accessed.
    pub(crate) fn cache_hit_ratio_percent(&self) -> Option<f64> {
        let (hit, read) = (self.blocks_hit?, self.blocks_read?);
        let total = hit + read;
        (total > 0.0).then(|| hit / total * 100.0)
    }

    /// The samples of this run (with `postgres_up` 1: the server answered):
    /// - `postgres_up`: 1 when the server accepted a login and answered, 0 otherwise.
    /// - `postgres_connections`: client backends in `pg_stat_activity`.
    /// - `postgres_max_connections`: the `max_connections` setting.
    /// - `postgres_connections_used_percent`: connections / max_connections × 100.
    /// - `postgres_cache_hit_ratio_percent`: blks_hit / (blks_hit + blks_read) × 100 over every
    ///   database in `pg_stat_database`; absent before any block was accessed.
    /// - `postgres_longest_transaction_seconds`: age of the oldest open transaction of a
    ///   non-idle client backend (including `idle in transaction`) other than this check's;
    ///   0 when none.
    /// - `postgres_is_in_recovery`: 1 on a standby (or during recovery), 0 on a primary.
    /// - `postgres_checkpoints_timed_total`, `postgres_checkpoints_requested_total`: checkpoint
    ///   counters (`pg_stat_bgwriter`, or `pg_stat_checkpointer` from PostgreSQL 17).
    /// - `postgres_archiver_archived_total`, `postgres_archiver_failed_total`: WAL files
    ///   archived and failed archive attempts (`pg_stat_archiver`).
    /// - `postgres_archiver_last_archived_age_seconds`: seconds since the last WAL file was
    ///   archived; absent when none ever was.
    /// - `postgres_database_size_bytes{database}`: size of each non-template database.
    /// - `postgres_replication_lag_seconds`: on a standby, seconds since the last replayed
    ///   transaction (0 when all received WAL is replayed); on a primary, the largest
    ///   `replay_lag` of its standbys; absent on a primary without standbys.
    /// - `postgres_replication_lag_bytes`: on a primary, the largest WAL distance between the
    ///   current position and a standby's replay position; on a standby, WAL received but not
    ///   yet replayed; absent when unknown.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut samples = vec![gauge("postgres_up", 1.0)];
        let mut push = |name: &str, value: Option<f64>| {
            if let Some(value) = value {
                samples.push(gauge(name, value));
            }
        };
        let count = |value: Option<i64>| value.map(|n| n as f64);
        let not_negative = |value: Option<f64>| value.map(|seconds| seconds.max(0.0));
        push("postgres_connections", count(self.connections));
        push("postgres_max_connections", count(self.max_connections));
        let used_percent = match (self.connections, self.max_connections) {
            (Some(connections), Some(max)) if max > 0 => {
                Some(connections as f64 * 100.0 / max as f64)
            }
            _ => None,
        };
        push("postgres_connections_used_percent", used_percent);
        push(
            "postgres_cache_hit_ratio_percent",
            self.cache_hit_ratio_percent(),
        );
        push(
            "postgres_longest_transaction_seconds",
            not_negative(self.longest_transaction_seconds),
        );
        push(
            "postgres_is_in_recovery",
            self.in_recovery
                .map(|in_recovery| if in_recovery { 1.0 } else { 0.0 }),
        );
        push(
            "postgres_checkpoints_timed_total",
            count(self.checkpoints_timed),
        );
        push(
            "postgres_checkpoints_requested_total",
            count(self.checkpoints_requested),
        );
        push("postgres_archiver_archived_total", count(self.archived));
        push("postgres_archiver_failed_total", count(self.archive_failed));
        push(
            "postgres_archiver_last_archived_age_seconds",
            not_negative(self.last_archived_age_seconds),
        );
        push(
            "postgres_replication_lag_seconds",
            not_negative(self.replication_lag_seconds),
        );
        push("postgres_replication_lag_bytes", self.replication_lag_bytes);
        for (database, size) in &self.database_sizes {
            samples.push(Sample {
                name: "postgres_database_size_bytes".to_owned(),
                labels: vec![("database".to_owned(), database.clone())],
                value: *size as f64,
            });
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_hit_ratio_needs_block_accesses() {
        let mut statistics = ServerStatistics::default();
        assert_eq!(statistics.cache_hit_ratio_percent(), None);
        statistics.blocks_hit = Some(0.0);
        statistics.blocks_read = Some(0.0);
        assert_eq!(statistics.cache_hit_ratio_percent(), None);
        statistics.blocks_hit = Some(992.0);
        statistics.blocks_read = Some(8.0);
        assert_eq!(statistics.cache_hit_ratio_percent(), Some(99.2));
    }

    #[test]
    fn absent_values_produce_no_samples() {
        let statistics = ServerStatistics {
            connections: Some(7),
            max_connections: Some(100),
            database_sizes: vec![("app".to_owned(), 8_000_000)],
            ..ServerStatistics::default()
        };
        let samples = statistics.samples();
        let names: Vec<&str> = samples.iter().map(|sample| sample.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "postgres_up",
                "postgres_connections",
                "postgres_max_connections",
                "postgres_connections_used_percent",
                "postgres_database_size_bytes"
            ]
        );
        assert_eq!(samples[3].value, 7.0);
        assert_eq!(
            samples[4].labels,
            vec![("database".to_owned(), "app".to_owned())]
        );
    }
}
