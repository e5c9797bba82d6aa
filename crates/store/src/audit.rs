//! The append-only, hash-chained audit log: each entry's hash covers its fields and the previous hash.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    fn from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: row.try_get(0)?,
            at_ms: row.try_get(1)?,
            actor: row.try_get(2)?,
            action: row.try_get(3)?,
            target: row.try_get(4)?,
            outcome: row.try_get(5)?,
            detail: row.try_get(6)?,
            prev_hash: row.try_get(7)?,
            hash: row.try_get(8)?,
        })
    }

    fn compute_hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        // Length-prefixed fields so no two different entries hash the same input.
        for field in [
            self.seq.to_string().as_str(),
            self.at_ms.to_string().as_str(),
            &self.actor,
            &self.action,
            &self.target,
            &self.outcome,
            &self.detail,
            &self.prev_hash,
        ] {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }
}

/// True when every entry's hash is right and links to its predecessor (entries in seq order, from the start).
pub fn chain_is_valid(entries: &[AuditRecord]) -> bool {
    let mut expected_prev = GENESIS.to_owned();
    for entry in entries {
        if entry.prev_hash != expected_prev || entry.compute_hash() != entry.hash {
            return false;
        }
        expected_prev = entry.hash.clone();
    }
    true
}

impl Store {
    /// Appends one entry, chaining it to the last. Retries when a concurrent writer took the same seq.
    pub async fn append_audit(
        &self,
        at_ms: i64,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<AuditRecord, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .try_append_audit(at_ms, actor, action, target, outcome, detail)
                .await
            {
                Err(StoreError::Database(sqlx::Error::Database(db)))
                    if db.is_unique_violation() && attempts < 10 =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn try_append_audit(
        &self,
        at_ms: i64,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<AuditRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (seq, prev_hash) = match last {
            Some(row) => (row.try_get::<i64, _>(0)? + 1, row.try_get::<String, _>(1)?),
            None => (1, GENESIS.to_owned()),
        };
        let mut record = AuditRecord {
            seq,
            at_ms,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(record.seq)
        .bind(record.at_ms)
        .bind(&record.actor)
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.outcome)
        .bind(&record.detail)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The whole log in order (the chain can only be checked from the start).
    pub async fn list_audit(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AuditRecord::from_row).collect()
    }
}
