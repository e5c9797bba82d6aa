//! Retention: keep the newest N full backups and every backup and WAL file a restore to any
//! point of the PITR window needs; expire the rest, manifest first so nothing half-deleted ever
//! counts. Expiry never breaks a restorable chain: WAL is only removed before the start of the
//! oldest kept backup, nothing is removed while no backup is committed, and an incremental
//! backup's parents are kept as long as it is.

use super::{DatabaseLayout, PgBackupError, WalName, list_base_manifests, read_wal_receipts};
use crate::Repository;

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    /// The newest full backups kept, at least 1.
    pub keep_full: usize,
    /// Any instant of the last `pitr_window_ms` stays restorable.
    pub pitr_window_ms: i64,
}

/// What [`apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionResult {
    /// Base backups expired.
    pub base_ids: Vec<String>,
    /// WAL files expired.
    pub wal_names: Vec<String>,
}

/// Applies `policy` at `now_ms`.
pub async fn apply_retention(
    repository: &Repository,
    layout: &DatabaseLayout,
    policy: RetentionPolicy,
    now_ms: i64,
) -> Result<RetentionResult, PgBackupError> {
    let bases = list_base_manifests(repository, layout).await?;
    if bases.is_empty() {
        return Ok(RetentionResult::default());
    }
    let keep_newest = policy.keep_full.max(1);
    let window_start = now_ms.saturating_sub(policy.pitr_window_ms.max(0));
    // The backup a restore to the window's start would use: the newest finished by then.
    let window_base = bases
        .iter()
        .rposition(|base| base.stopped_at_ms <= window_start)
        .unwrap_or(0);
    // The N newest full backups (and what followed them) are kept.
    let newest_fulls = bases
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, base)| base.is_full())
        .map(|(index, _)| index)
        .take(keep_newest)
        .last()
        .unwrap_or(0);
    let first_kept = window_base.min(newest_fulls);
    // Every kept backup keeps its parents, however old.
    let mut kept: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for base in bases.iter().skip(first_kept) {
        match base.chain(&bases) {
            Ok(chain) => kept.extend(chain.iter().map(|member| member.id.as_str())),
            // A broken chain cannot be restored anyway; what it has is kept for inspection.
            Err(_) => {
                kept.insert(base.id.as_str());
            }
        }
    }
    let mut result = RetentionResult::default();
    // Newest first, so that no listed backup ever lacks a parent.
    for base in bases
        .iter()
        .take(first_kept)
        .rev()
        .filter(|base| !kept.contains(base.id.as_str()))
    {
        repository
            .delete_manifest(&layout.base_manifest(&base.id)?)
            .await?;
        for object in repository
            .list_objects(&layout.base_objects(&base.id))
            .await?
        {
            repository.delete_object(&object.key).await?;
        }
        result.base_ids.push(base.id.clone());
    }
    result.base_ids.reverse();
    let Some(oldest_kept) = bases.get(first_kept) else {
        return Ok(result);
    };
    let Some(start) = WalName::parse(&oldest_kept.start_wal) else {
        return Ok(result);
    };
    let first_needed = (
        start.timeline,
        start.segment_number(oldest_kept.segment_size),
    );
    for receipt in read_wal_receipts(repository, layout).await? {
        let Some(name) = receipt.wal_name() else {
            continue;
        };
        // History files are tiny and describe every timeline: always kept.
        if name.kind == super::WalKind::History {
            continue;
        }
        if (receipt.timeline, receipt.segment) < first_needed {
            repository
                .delete_manifest(&layout.wal_receipt(&receipt.name)?)
                .await?;
            repository.delete_object(&receipt.object.key).await?;
            result.wal_names.push(receipt.name);
        }
    }
    Ok(result)
}
