//! Backup rows: the public keys (age recipients) backups of each ISV are encrypted to; the catalog
//! of committed backups is in `backup/catalog.rs`.

mod catalog;

use sqlx::Row;

use crate::{Store, StoreError, conflict_or};

pub use catalog::{
    BackupChange, BackupDatabaseRecord, BackupFailureRecord, BackupReportApplied, BaseBackupRecord,
    WalFileRecord,
};

/// One ISV's public backup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKeyRecord {
    pub id: String,
    pub isv: String,
    /// `age1…`: the public key only.
    pub recipient: String,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

impl Store {
    /// Stores a public key; the same recipient twice is a conflict.
    pub async fn insert_backup_key(&self, key: &BackupKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO backup_keys (id, isv, recipient, comment, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.isv)
        .bind(&key.recipient)
        .bind(&key.comment)
        .bind(&key.created_by)
        .bind(key.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|err| conflict_or(err, format!("recipient {} is already stored", key.recipient)))?;
        Ok(())
    }

    /// The public keys of `isv` (every ISV's when `None`), oldest first.
    pub async fn list_backup_keys(
        &self,
        isv: Option<&str>,
    ) -> Result<Vec<BackupKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, isv, recipient, comment, created_by, created_at FROM backup_keys WHERE ($1 = '' OR isv = $1) ORDER BY created_at, id",
        )
        .bind(isv.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BackupKeyRecord {
                    id: row.try_get(0)?,
                    isv: row.try_get(1)?,
                    recipient: row.try_get(2)?,
                    comment: row.try_get(3)?,
                    created_by: row.try_get(4)?,
                    created_at_ms: row.try_get(5)?,
                })
            })
            .collect()
    }
}
