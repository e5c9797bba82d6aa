//! Verifying a database's backups without any key: every object of every committed base backup,
//! every archived WAL file and every streamed WAL tail is read back and checked against its
//! recorded length and blake3,
//! and the WAL every base backup needs to reach consistency is checked to be there, as is the
//! parent of every incremental backup. Objects no manifest or receipt names (an upload cut short,
//! or one still under way) are listed as orphans: they never count, so they are not problems.

use std::collections::BTreeSet;

use futures::StreamExt;

use super::{
    DatabaseLayout, PgBackupError, WalName, list_base_manifests, read_stream_receipts,
    read_wal_receipts,
};
use crate::{ListedObject, ObjectInfo, Repository};

/// One thing wrong in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// What it belongs to, e.g. `base backup 20261122T101500Z-ab12` or `WAL 0000000100…`.
    pub what: String,
    /// The object or missing file at fault.
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// What [`verify_database`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Committed base backups checked.
    pub base_backups: usize,
    /// WAL files checked.
    pub wal_files: usize,
    /// Streamed WAL tails checked.
    pub stream_tails: usize,
    /// Objects read back.
    pub objects: usize,
    /// Stored bytes read back.
    pub stored_bytes: u64,
    /// Everything wrong; empty when the repository is sound.
    pub problems: Vec<VerifyProblem>,
    /// Objects of the database no manifest or receipt names.
    pub orphans: Vec<ListedObject>,
}

/// Checks every object of `layout`'s database in `repository` (at most `parallel` at once).
pub async fn verify_database(
    repository: &Repository,
    layout: &DatabaseLayout,
    parallel: usize,
) -> Result<VerifyReport, PgBackupError> {
    let bases = list_base_manifests(repository, layout).await?;
    let receipts = read_wal_receipts(repository, layout).await?;
    let tails = read_stream_receipts(repository, layout).await?;
    let mut report = VerifyReport {
        base_backups: bases.len(),
        wal_files: receipts.len(),
        stream_tails: tails.len(),
        ..VerifyReport::default()
    };
    // (what, object, whether the agent may delete it meanwhile: a superseded streamed tail)
    let mut checks: Vec<(String, &ObjectInfo, bool)> = Vec::new();
    for base in &bases {
        for unit in &base.units {
            checks.push((format!("base backup {}", base.id), unit, false));
        }
    }
    for receipt in &receipts {
        checks.push((format!("WAL {}", receipt.name), &receipt.object, false));
    }
    for tail in &tails {
        checks.push((
            format!("streamed WAL tail {}", tail.tail_name()),
            &tail.object,
            true,
        ));
    }
    let named: std::collections::HashSet<&str> = checks
        .iter()
        .map(|(_, info, _)| info.key.as_str())
        .collect();
    for folder in [
        layout.base_folder(),
        layout.wal_folder(),
        layout.stream_folder(),
    ] {
        report.orphans.extend(
            repository
                .list_objects(&folder)
                .await?
                .into_iter()
                .filter(|object| !named.contains(object.key.as_str())),
        );
    }
    report.objects = checks.len();
    report.stored_bytes = checks.iter().map(|(_, info, _)| info.stored_len).sum();
    let failures: Vec<VerifyProblem> = futures::stream::iter(checks)
        .map(|(what, info, may_vanish)| async move {
            repository
                .verify_object(info)
                .await
                .err()
                .filter(|error| !(may_vanish && matches!(error, crate::RepoError::NotFound { .. })))
                .map(|error| VerifyProblem {
                    what,
                    object: info.key.to_string(),
                    message: error.to_string(),
                })
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    report.problems.extend(failures);
    let archived: BTreeSet<(u32, u64)> = receipts
        .iter()
        .filter(|receipt| receipt.is_segment())
        .map(|receipt| (receipt.timeline, receipt.segment))
        .collect();
    for base in &bases {
        if let Err(error) = base.chain(&bases) {
            report.problems.push(VerifyProblem {
                what: format!("base backup {}", base.id),
                object: layout.base_manifest(&base.id)?.to_string(),
                message: error.to_string(),
            });
        }
        let (Some(start), Some(stop)) = (
            WalName::parse(&base.start_wal),
            WalName::parse(&base.stop_wal),
        ) else {
            report.problems.push(VerifyProblem {
                what: format!("base backup {}", base.id),
                object: layout.base_manifest(&base.id)?.to_string(),
                message: "its start or stop WAL name is not a WAL file name".to_owned(),
            });
            continue;
        };
        for number in
            start.segment_number(base.segment_size)..=stop.segment_number(base.segment_size)
        {
            if !archived.contains(&(base.timeline, number)) {
                let name = WalName::segment_name(base.timeline, number, base.segment_size);
                report.problems.push(VerifyProblem {
                    what: format!("base backup {}", base.id),
                    object: layout.wal_object(&name)?.to_string(),
                    message: format!("WAL segment {name} it needs to reach consistency is missing"),
                });
            }
        }
    }
    // Gaps after the oldest backup's start break point-in-time recovery across them.
    if let Some(oldest) = bases.first()
        && let Some(start) = WalName::parse(&oldest.start_wal)
    {
        let first = start.segment_number(oldest.segment_size);
        let on_timeline: Vec<u64> = archived
            .iter()
            .filter(|(timeline, number)| *timeline == oldest.timeline && *number >= first)
            .map(|(_, number)| *number)
            .collect();
        for pair in on_timeline.windows(2) {
            if let [before, after] = pair
                && after - before > 1
            {
                let missing =
                    WalName::segment_name(oldest.timeline, before + 1, oldest.segment_size);
                report.problems.push(VerifyProblem {
                    what: "WAL archive".to_owned(),
                    object: layout.wal_object(&missing)?.to_string(),
                    message: format!(
                        "{} segment(s) missing from {missing}: no point-in-time recovery across this gap",
                        after - before - 1
                    ),
                });
            }
        }
    }
    Ok(report)
}
