//! The `backup` section of a `database` component: what the host's agent backs up (PostgreSQL base
//! backups and archived WAL), how often, how much it keeps, and the optional restore drill; the
//! defaults of every setting live here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// Backups of the PostgreSQL server a `database` component runs: full base backups and continuous WAL
/// archiving into the ISV's repository, encrypted to the ISV's backup keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    /// PostgreSQL's data directory on the host (an absolute path), e.g. `/var/lib/postgresql/15/main`.
    pub pgdata: String,
    /// How the agent connects: a `postgres://` or `postgresql://` URL of a role allowed to run backups; `postgres://postgres@localhost/postgres?host=/var/run/postgresql` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// A full base backup is taken when the newest full one is older than this, e.g. `24h` (the default); at least `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<Duration>,
    /// Between full backups, an incremental backup (only the pages changed since the newest backup, restored over it) is taken when the newest backup is older than this, e.g. `1h`; at least `1m` and less than `full_every`. Absent: only full backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_every: Option<Duration>,
    /// Retention: how many full backups are kept (default 2, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_full: Option<u32>,
    /// Retention: how far back point-in-time recovery must reach, e.g. `7d` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr_window: Option<Duration>,
    /// PostgreSQL's `archive_timeout`: a quiet database still archives a WAL file this often, which bounds data loss; default `30s`, from `1s` to `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_timeout: Option<Duration>,
    /// zstd compression level, 1 to 19 (default 1: on PostgreSQL pages as small as 3, and faster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<i32>,
    /// How many uploads run at once, 1 to 32 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// Files of a base backup are stored in pieces of at most this many bytes (default 67108864, 64 MiB; at least 1048576, 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_size: Option<u64>,
    /// How often the agent writes its heartbeat row into the database, which a restore drill reads to measure the data lost (default `10s`, greater than zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_every: Option<Duration>,
    /// Also stream WAL over the replication protocol (a replication slot named `cloudkeep_<database>` and `pg_receivewal` run by the agent) and upload the segment being written every second, for an RPO of seconds instead of `archive_timeout` (default false). The connection must be allowed to replicate; the slot keeps WAL on the database host while the agent is down, so set PostgreSQL's `max_slot_wal_keep_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// A periodic restore drill: the newest backup is restored elsewhere and checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSpec>,
}

/// A periodic restore drill of a database's backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    /// How often the drill runs, e.g. `7d`; at least `1m`.
    pub every: Duration,
    /// An age private key file on the database host (an absolute path, readable by the agent only): with it the host's agent runs the drill itself every `every` and records the result; without it drills are run by hand with `cloudkeep dr-drill`. Make it a key of its own (`cloudkeep keys create --isv I --out drill.key` adds a recipient), so the custodian's key stays offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// A query run on the restored database; it must return one row whose first column is true or non-zero when the restore is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_sql: Option<String>,
}

impl BackupSpec {
    /// The connection used when `connection` is absent: the local superuser over the Unix socket.
    pub const DEFAULT_CONNECTION: &'static str =
        "postgres://postgres@localhost/postgres?host=/var/run/postgresql";
    /// Default of `full_every`: one day.
    pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(24 * 3600);
    /// Smallest `full_every`.
    pub const MIN_FULL_EVERY: Duration = Duration::from_secs(60);
    /// Default of `keep_full`.
    pub const DEFAULT_KEEP_FULL: u32 = 2;
    /// Default of `pitr_window`: seven days.
    pub const DEFAULT_PITR_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default of `archive_timeout`.
    pub const DEFAULT_ARCHIVE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Smallest `archive_timeout`.
    pub const MIN_ARCHIVE_TIMEOUT: Duration = Duration::from_secs(1);
    /// Largest `archive_timeout`.
    pub const MAX_ARCHIVE_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Default of `compression_level`.
    pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;
    /// Allowed `compression_level`s (zstd's ordinary levels).
    pub const COMPRESSION_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;
    /// Default of `parallel`.
    pub const DEFAULT_PARALLEL: u32 = 2;
    /// Allowed values of `parallel`.
    pub const PARALLEL: std::ops::RangeInclusive<u32> = 1..=32;
    /// Default of `split_size`: 64 MiB.
    pub const DEFAULT_SPLIT_SIZE: u64 = 64 << 20;
    /// Smallest `split_size`: 1 MiB.
    pub const MIN_SPLIT_SIZE: u64 = 1 << 20;
    /// Default of `heartbeat_every`.
    pub const DEFAULT_HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

    /// `connection`, or [`Self::DEFAULT_CONNECTION`].
    pub fn effective_connection(&self) -> &str {
        self.connection
            .as_deref()
            .unwrap_or(Self::DEFAULT_CONNECTION)
    }

    /// `full_every`, or [`Self::DEFAULT_FULL_EVERY`].
    pub fn effective_full_every(&self) -> Duration {
        self.full_every.unwrap_or(Self::DEFAULT_FULL_EVERY)
    }

    /// `keep_full`, or [`Self::DEFAULT_KEEP_FULL`].
    pub fn effective_keep_full(&self) -> u32 {
        self.keep_full.unwrap_or(Self::DEFAULT_KEEP_FULL)
    }

    /// `pitr_window`, or [`Self::DEFAULT_PITR_WINDOW`].
    pub fn effective_pitr_window(&self) -> Duration {
        self.pitr_window.unwrap_or(Self::DEFAULT_PITR_WINDOW)
    }

    /// `archive_timeout`, or [`Self::DEFAULT_ARCHIVE_TIMEOUT`].
    pub fn effective_archive_timeout(&self) -> Duration {
        self.archive_timeout
            .unwrap_or(Self::DEFAULT_ARCHIVE_TIMEOUT)
    }

    /// `compression_level`, or [`Self::DEFAULT_COMPRESSION_LEVEL`].
    pub fn effective_compression_level(&self) -> i32 {
        self.compression_level
            .unwrap_or(Self::DEFAULT_COMPRESSION_LEVEL)
    }

    /// `parallel`, or [`Self::DEFAULT_PARALLEL`].
    pub fn effective_parallel(&self) -> u32 {
        self.parallel.unwrap_or(Self::DEFAULT_PARALLEL)
    }

    /// `split_size`, or [`Self::DEFAULT_SPLIT_SIZE`].
    pub fn effective_split_size(&self) -> u64 {
        self.split_size.unwrap_or(Self::DEFAULT_SPLIT_SIZE)
    }

    /// `heartbeat_every`, or [`Self::DEFAULT_HEARTBEAT_EVERY`].
    pub fn effective_heartbeat_every(&self) -> Duration {
        self.heartbeat_every
            .unwrap_or(Self::DEFAULT_HEARTBEAT_EVERY)
    }
}

impl DrillSpec {
    /// Smallest `every`.
    pub const MIN_EVERY: Duration = Duration::from_secs(60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_settings_are_absent() {
        let spec: BackupSpec = serde_json::from_str(r#"{"pgdata": "/pg"}"#).unwrap();
        assert_eq!(spec.effective_connection(), BackupSpec::DEFAULT_CONNECTION);
        assert_eq!(spec.effective_full_every().as_millis(), 86_400_000);
        assert_eq!(spec.effective_keep_full(), 2);
        assert_eq!(spec.effective_pitr_window().as_millis(), 7 * 86_400_000);
        assert_eq!(spec.effective_archive_timeout().as_millis(), 30_000);
        assert_eq!(spec.effective_compression_level(), 1);
        assert_eq!(spec.effective_parallel(), 2);
        assert_eq!(spec.effective_split_size(), 64 * 1024 * 1024);
        assert_eq!(spec.effective_heartbeat_every().as_millis(), 10_000);
        // defaults are not written back out
        assert_eq!(serde_json::to_string(&spec).unwrap(), r#"{"pgdata":"/pg"}"#);
    }

    #[test]
    fn given_settings_win() {
        let spec: BackupSpec = serde_json::from_str(
            r#"{"pgdata": "/pg", "connection": "postgresql://backup@db/postgres", "full_every": "12h",
                "keep_full": 5, "compression_level": 9, "drill": {"every": "7d", "check_sql": "SELECT true"}}"#,
        )
        .unwrap();
        assert_eq!(
            spec.effective_connection(),
            "postgresql://backup@db/postgres"
        );
        assert_eq!(spec.effective_full_every().as_millis(), 12 * 3_600_000);
        assert_eq!(spec.effective_keep_full(), 5);
        assert_eq!(spec.effective_compression_level(), 9);
        let drill = spec.drill.unwrap();
        assert_eq!(drill.every.as_millis(), 7 * 86_400_000);
        assert_eq!(drill.check_sql.as_deref(), Some("SELECT true"));
    }
}
