//! Backup messages of the API: the public keys backups are encrypted to.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/backup-keys`: store the public half of an ISV's backup key pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupKeyCreate {
    /// The ISV whose backups are encrypted to this key.
    pub isv: String,
    /// The age X25519 public key, `age1…`. Never the secret key: the server refuses one.
    pub recipient: String,
    /// Who holds the private key, for the record.
    #[serde(default)]
    pub comment: String,
}

/// One stored public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupKeyView {
    pub id: String,
    pub isv: String,
    pub recipient: String,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// `GET /api/v1/backup-keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupKeyList {
    pub keys: Vec<BackupKeyView>,
}

/// One database this agent's host backs up, from the platform spec's `backup` section of a
/// `database` component and the server's `[backup]` repositories. Part of
/// [`crate::alerting::AgentConfig`]; only the agent of that host receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentBackupJob {
    /// The database's name in the catalog: the component's name, e.g. `db`.
    pub database: String,
    /// PostgreSQL's data directory on the host.
    pub pgdata: String,
    /// How the agent connects to PostgreSQL: a `postgres://` URL (a superuser or a role allowed
    /// `pg_backup_start`).
    pub connection: String,
    /// Where the ISV's backups live: a repository location as JSON (`kind` = `local` or `s3`,
    /// credentials included), the server's `[backup]` repository for the platform's ISV.
    pub repository: serde_json::Value,
    /// The ISV's age public keys (`age1…`); every object is encrypted to all of them.
    pub recipients: Vec<String>,
    /// Why the job cannot run, when it cannot (e.g. no backup key for the ISV); the agent reports
    /// it as a backup failure instead of backing up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// zstd level.
    pub compression_level: i32,
    /// Uploads at once.
    pub parallel: u32,
    /// Objects of base backups are cut into pieces of at most this many bytes.
    pub split_bytes: u64,
    /// A full base backup is taken when the newest full one is older than this.
    pub full_every_ms: i64,
    /// Between full backups, an incremental one (only the pages changed since the newest backup)
    /// is taken when the newest backup is older than this; 0: never.
    #[serde(default)]
    pub incremental_every_ms: i64,
    /// `archive_timeout` set on the database, which bounds the RPO of a quiet database.
    pub archive_timeout_ms: i64,
    /// Retention: full backups kept.
    pub keep_full: u32,
    /// Retention: the point-in-time-recovery window kept.
    pub pitr_window_ms: i64,
    /// How often the agent writes its heartbeat row (the DR drill's measured RPO).
    pub heartbeat_every_ms: i64,
    /// Also stream WAL over the replication protocol (`pg_receivewal` and a replication slot)
    /// and upload the segment being written every second: an RPO of seconds.
    #[serde(default)]
    pub streaming: bool,
    /// A restore drill the agent runs itself on schedule (the spec's `drill` with a `key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<AgentDrill>,
}

/// A scheduled restore drill, as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentDrill {
    /// How often it runs.
    pub every_ms: i64,
    /// The age private key file on the host the drill decrypts with.
    pub key_file: String,
    /// The spec's check query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_sql: Option<String>,
}

/// One archived WAL file, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WalArchived {
    /// PostgreSQL's file name, e.g. `000000010000000000000003` (also `.history`, `.backup`).
    pub name: String,
    /// Timeline, from the name.
    pub timeline: u32,
    /// Segment number within the timeline (for segments; 0 for other files).
    pub segment: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    /// When the object and its receipt were complete in the repository.
    pub archived_at_ms: i64,
    /// How long the upload took.
    pub upload_ms: i64,
}

/// One committed base backup, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BaseBackupDone {
    /// The backup's id, e.g. `20261122T101500Z-3fa2`; its manifest is `<platform>/<database>/base/<id>`.
    pub id: String,
    pub started_at_ms: i64,
    pub stopped_at_ms: i64,
    /// `pg_backup_start`'s LSN, e.g. `0/2000028`.
    pub start_lsn: String,
    pub stop_lsn: String,
    pub timeline: u32,
    /// The first and last WAL segment a restore of this backup needs.
    pub start_wal: String,
    pub stop_wal: String,
    pub files: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    /// An incremental backup's parent (the backup its changed pages go over); absent for a full
    /// backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// What retention removed from the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupsExpired {
    /// Base backups whose manifests were deleted.
    pub base_ids: Vec<String>,
    /// WAL files whose receipts were deleted (all older than the oldest kept backup needs).
    pub wal_names: Vec<String>,
    pub at_ms: i64,
}

/// A backup action that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupFailed {
    /// `wal`, `base`, `retention`, `heartbeat` or `config`.
    pub what: String,
    /// What went wrong (never a secret).
    pub message: String,
    pub at_ms: i64,
}

/// One event of a [`BackupReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupEvent {
    Wal(WalArchived),
    Base(BaseBackupDone),
    Expired(BackupsExpired),
    Failed(BackupFailed),
}

/// `POST /api/v1/agent/backups`: what the calling agent's host did for one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupReport {
    pub database: String,
    pub events: Vec<BackupEvent>,
}

/// A contiguous run of archived WAL segments on one timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WalRangeView {
    pub timeline: u32,
    /// First and last segment file names of the run.
    pub first: String,
    pub last: String,
    pub segments: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub first_archived_at_ms: i64,
    pub last_archived_at_ms: i64,
}

/// The catalog of one database: its base backups, WAL ranges and latest failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatabaseBackups {
    pub platform: String,
    pub isv: String,
    /// The host that backs it up.
    pub host: String,
    pub database: String,
    /// Base backups, oldest first.
    pub bases: Vec<BaseBackupDone>,
    /// WAL runs, oldest first; more than one per timeline means a gap.
    pub wal_ranges: Vec<WalRangeView>,
    /// When the newest WAL file was archived (the live RPO is now minus this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_wal_archived_at_ms: Option<i64>,
    /// The most recent failure, if any was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<BackupFailed>,
}

/// `GET /api/v1/backups[?platform=P][&database=D]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupCatalog {
    pub databases: Vec<DatabaseBackups>,
}

/// `GET /api/v1/backups/repository?platform=P`: where a platform's backups live, for restores and
/// verification by an operator (credentials included; admins only, audited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryAccess {
    pub platform: String,
    pub isv: String,
    /// A repository location as JSON (`kind` = `local` or `s3`).
    pub repository: serde_json::Value,
}

/// `POST /api/v1/backups/drills`: the result of a DR drill, recorded as an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DrillRecord {
    pub platform: String,
    pub database: String,
    pub started_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    /// Measured RPO: the drill's start minus the newest heartbeat restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_ms: Option<i64>,
    /// Measured RTO: from the drill's start to a promoted, queryable server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<i64>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The whole report (row counts, check).
    pub report: serde_json::Value,
}
