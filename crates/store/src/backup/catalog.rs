//! The backup catalog's rows: databases that report backups (with their latest failure), committed
//! base backups and archived WAL files. A report is applied in one transaction; repeating it changes
//! nothing.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Store, StoreError, get_opt_i64};

/// A database whose host reported backups: who backs it up, and its latest failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDatabaseRecord {
    pub platform: String,
    pub database: String,
    /// The host whose agent last reported for it.
    pub host: String,
    /// The platform's ISV, whose repository and keys hold the backups.
    pub isv: String,
    pub first_reported_at_ms: i64,
    pub last_reported_at_ms: i64,
    /// The most recent failure reported (by its own time), if any.
    pub last_failure: Option<BackupFailureRecord>,
}

/// A failed backup action, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFailureRecord {
    /// `wal`, `base`, `retention`, `heartbeat` or `config`.
    pub what: String,
    pub message: String,
    pub at_ms: i64,
}

/// One committed full base backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackupRecord {
    pub platform: String,
    pub database: String,
    pub id: String,
    pub host: String,
    pub isv: String,
    pub started_at_ms: i64,
    pub stopped_at_ms: i64,
    pub start_lsn: String,
    pub stop_lsn: String,
    pub timeline: i64,
    pub start_wal: String,
    pub stop_wal: String,
    pub files: i64,
    pub plain_bytes: i64,
    pub stored_bytes: i64,
    /// When the server received the report.
    pub reported_at_ms: i64,
    /// An incremental backup's parent; `None` for a full one.
    pub parent: Option<String>,
}

/// One archived WAL file (a segment, or a `.history` / `.backup` file with segment 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFileRecord {
    pub platform: String,
    pub database: String,
    pub name: String,
    pub timeline: i64,
    pub segment: i64,
    pub plain_bytes: i64,
    pub stored_bytes: i64,
    pub archived_at_ms: i64,
    pub upload_ms: i64,
    /// When the server received the report.
    pub reported_at_ms: i64,
}

/// One change to a database's catalog, in the order the agent reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupChange {
    /// A WAL file was archived; a file already catalogued is left as it is.
    Wal(WalFileRecord),
    /// A base backup was committed; one already catalogued is left as it is.
    Base(BaseBackupRecord),
    /// Retention removed these base backups and WAL files from the repository.
    Expired {
        base_ids: Vec<String>,
        wal_names: Vec<String>,
    },
    /// A backup action failed; it becomes the database's last failure unless a later one is known.
    Failed(BackupFailureRecord),
}

/// What applying a report changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupReportApplied {
    /// WAL files new to the catalog.
    pub wal_files_added: u64,
    /// Base backups new to the catalog.
    pub base_backups_added: u64,
    /// Base backup and WAL rows removed by expiry.
    pub rows_removed: u64,
    /// Indices (in the changes applied) of the failures that are news: not the database's recorded
    /// last failure already (as a retried report's would be).
    pub new_failures: Vec<usize>,
}

const DATABASE_COLUMNS: &str = "platform, database_name, host, isv, first_reported_at_ms, last_reported_at_ms, failure_what, failure_message, failure_at_ms";
const BASE_COLUMNS: &str = "platform, database_name, id, host, isv, started_at_ms, stopped_at_ms, start_lsn, stop_lsn, timeline, start_wal, stop_wal, files, plain_bytes, stored_bytes, reported_at_ms, parent";
const WAL_COLUMNS: &str = "platform, database_name, name, timeline, segment, plain_bytes, stored_bytes, archived_at_ms, upload_ms, reported_at_ms";

impl BackupDatabaseRecord {
    fn from_row(row: &AnyRow) -> Result<BackupDatabaseRecord, StoreError> {
        let what: Option<String> = row.try_get(6)?;
        let message: Option<String> = row.try_get(7)?;
        let at_ms = get_opt_i64(row, 8)?;
        let last_failure = match (what, message, at_ms) {
            (Some(what), Some(message), Some(at_ms)) => Some(BackupFailureRecord {
                what,
                message,
                at_ms,
            }),
            _ => None,
        };
        Ok(BackupDatabaseRecord {
            platform: row.try_get(0)?,
            database: row.try_get(1)?,
            host: row.try_get(2)?,
            isv: row.try_get(3)?,
            first_reported_at_ms: row.try_get(4)?,
            last_reported_at_ms: row.try_get(5)?,
            last_failure,
        })
    }
}

impl BaseBackupRecord {
    fn from_row(row: &AnyRow) -> Result<BaseBackupRecord, StoreError> {
        Ok(BaseBackupRecord {
            platform: row.try_get(0)?,
            database: row.try_get(1)?,
            id: row.try_get(2)?,
            host: row.try_get(3)?,
            isv: row.try_get(4)?,
            started_at_ms: row.try_get(5)?,
            stopped_at_ms: row.try_get(6)?,
            start_lsn: row.try_get(7)?,
            stop_lsn: row.try_get(8)?,
            timeline: row.try_get(9)?,
            start_wal: row.try_get(10)?,
            stop_wal: row.try_get(11)?,
            files: row.try_get(12)?,
            plain_bytes: row.try_get(13)?,
            stored_bytes: row.try_get(14)?,
            reported_at_ms: row.try_get(15)?,
            parent: row.try_get(16)?,
        })
    }
}

impl WalFileRecord {
    fn from_row(row: &AnyRow) -> Result<WalFileRecord, StoreError> {
        Ok(WalFileRecord {
            platform: row.try_get(0)?,
            database: row.try_get(1)?,
            name: row.try_get(2)?,
            timeline: row.try_get(3)?,
            segment: row.try_get(4)?,
            plain_bytes: row.try_get(5)?,
            stored_bytes: row.try_get(6)?,
            archived_at_ms: row.try_get(7)?,
            upload_ms: row.try_get(8)?,
            reported_at_ms: row.try_get(9)?,
        })
    }
}

impl Store {
    /// Applies one report of `database`'s host in one transaction: registers (or updates) the
    /// database with its host and ISV, then applies `changes` in order. Repeating a report changes
    /// nothing: known WAL files and base backups are kept as first reported, and an older failure
    /// never replaces a newer one.
    pub async fn apply_backup_report(
        &self,
        database: &BackupDatabaseRecord,
        changes: &[BackupChange],
    ) -> Result<BackupReportApplied, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO backup_databases (platform, database_name, host, isv, first_reported_at_ms, last_reported_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (platform, database_name) DO UPDATE SET host = excluded.host, isv = excluded.isv, \
             last_reported_at_ms = excluded.last_reported_at_ms",
        )
        .bind(&database.platform)
        .bind(&database.database)
        .bind(&database.host)
        .bind(&database.isv)
        .bind(database.first_reported_at_ms)
        .bind(database.last_reported_at_ms)
        .execute(&mut *tx)
        .await?;
        let mut applied = BackupReportApplied::default();
        for (index, change) in changes.iter().enumerate() {
            match change {
                BackupChange::Wal(wal) => {
                    applied.wal_files_added += insert_wal_file(&mut tx, wal).await?;
                }
                BackupChange::Base(base) => {
                    applied.base_backups_added += insert_base_backup(&mut tx, base).await?;
                }
                BackupChange::Expired {
                    base_ids,
                    wal_names,
                } => {
                    for id in base_ids {
                        let deleted = sqlx::query(
                            "DELETE FROM base_backups WHERE platform = $1 AND database_name = $2 AND id = $3",
                        )
                        .bind(&database.platform)
                        .bind(&database.database)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        applied.rows_removed += deleted.rows_affected();
                    }
                    for name in wal_names {
                        let deleted = sqlx::query(
                            "DELETE FROM wal_files WHERE platform = $1 AND database_name = $2 AND name = $3",
                        )
                        .bind(&database.platform)
                        .bind(&database.database)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                        applied.rows_removed += deleted.rows_affected();
                    }
                }
                BackupChange::Failed(failure) => {
                    let recorded = sqlx::query(
                        "SELECT failure_what, failure_message, failure_at_ms FROM backup_databases \
                         WHERE platform = $1 AND database_name = $2",
                    )
                    .bind(&database.platform)
                    .bind(&database.database)
                    .fetch_one(&mut *tx)
                    .await?;
                    let known = recorded.try_get::<Option<String>, _>(0)?.as_ref()
                        == Some(&failure.what)
                        && recorded.try_get::<Option<String>, _>(1)?.as_ref()
                            == Some(&failure.message)
                        && get_opt_i64(&recorded, 2)? == Some(failure.at_ms);
                    if known {
                        continue;
                    }
                    applied.new_failures.push(index);
                    sqlx::query(
                        "UPDATE backup_databases SET failure_what = $1, failure_message = $2, failure_at_ms = $3 \
                         WHERE platform = $4 AND database_name = $5 AND (failure_at_ms IS NULL OR failure_at_ms <= $6)",
                    )
                    .bind(&failure.what)
                    .bind(&failure.message)
                    .bind(failure.at_ms)
                    .bind(&database.platform)
                    .bind(&database.database)
                    .bind(failure.at_ms)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The databases that reported backups, by platform and name; `None` filters nothing.
    pub async fn list_backup_databases(
        &self,
        platform: Option<&str>,
        database: Option<&str>,
    ) -> Result<Vec<BackupDatabaseRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DATABASE_COLUMNS} FROM backup_databases \
             WHERE ($1 = '' OR platform = $1) AND ($2 = '' OR database_name = $2) \
             ORDER BY platform, database_name"
        )))
        .bind(platform.unwrap_or(""))
        .bind(database.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(BackupDatabaseRecord::from_row).collect()
    }

    /// Catalogued base backups by platform and database, oldest first; `None` filters nothing.
    pub async fn list_base_backups(
        &self,
        platform: Option<&str>,
        database: Option<&str>,
    ) -> Result<Vec<BaseBackupRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BASE_COLUMNS} FROM base_backups \
             WHERE ($1 = '' OR platform = $1) AND ($2 = '' OR database_name = $2) \
             ORDER BY platform, database_name, started_at_ms, id"
        )))
        .bind(platform.unwrap_or(""))
        .bind(database.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(BaseBackupRecord::from_row).collect()
    }

    /// Catalogued WAL files by platform and database, in timeline and segment order (then name);
    /// `None` filters nothing.
    pub async fn list_wal_files(
        &self,
        platform: Option<&str>,
        database: Option<&str>,
    ) -> Result<Vec<WalFileRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WAL_COLUMNS} FROM wal_files \
             WHERE ($1 = '' OR platform = $1) AND ($2 = '' OR database_name = $2) \
             ORDER BY platform, database_name, timeline, segment, name"
        )))
        .bind(platform.unwrap_or(""))
        .bind(database.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(WalFileRecord::from_row).collect()
    }
}

/// Inserts a WAL file unless the catalog has it; 1 when inserted.
async fn insert_wal_file(
    tx: &mut Transaction<'static, Any>,
    wal: &WalFileRecord,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO wal_files ({WAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (platform, database_name, name) DO NOTHING"
    )))
    .bind(&wal.platform)
    .bind(&wal.database)
    .bind(&wal.name)
    .bind(wal.timeline)
    .bind(wal.segment)
    .bind(wal.plain_bytes)
    .bind(wal.stored_bytes)
    .bind(wal.archived_at_ms)
    .bind(wal.upload_ms)
    .bind(wal.reported_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected())
}

/// Inserts a base backup unless the catalog has it; 1 when inserted.
async fn insert_base_backup(
    tx: &mut Transaction<'static, Any>,
    base: &BaseBackupRecord,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO base_backups ({BASE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (platform, database_name, id) DO NOTHING"
    )))
    .bind(&base.platform)
    .bind(&base.database)
    .bind(&base.id)
    .bind(&base.host)
    .bind(&base.isv)
    .bind(base.started_at_ms)
    .bind(base.stopped_at_ms)
    .bind(&base.start_lsn)
    .bind(&base.stop_lsn)
    .bind(base.timeline)
    .bind(&base.start_wal)
    .bind(&base.stop_wal)
    .bind(base.files)
    .bind(base.plain_bytes)
    .bind(base.stored_bytes)
    .bind(base.reported_at_ms)
    .bind(base.parent.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected())
}
