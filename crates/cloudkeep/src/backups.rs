//! `cloudkeep backups`: the backup catalog as the server knows it from the agents' reports; one row
//! per database, or one database's base backups and WAL runs.

use anyhow::Context as _;
use cloudkeep_protocol::backup::{BackupFailed, DatabaseBackups, WalRangeView};
use cloudkeep_stdx::Clock;

use crate::cli::{BackupsCommand, OutputFormat, TakeArgs};
use crate::context;
use crate::output::{self, print};

/// Failure messages are cut to this many characters in the list.
const LISTED_MESSAGE_CHARS: usize = 60;

pub async fn run(command: &BackupsCommand) -> anyhow::Result<()> {
    let now = cloudkeep_stdx::SystemClock.now_ms();
    match command {
        BackupsCommand::Verify {
            platform,
            database,
            repository,
            parallel,
            remote,
        } => {
            crate::restore::verify(
                platform,
                database.as_deref(),
                repository.as_deref(),
                *parallel,
                remote,
            )
            .await
        }
        BackupsCommand::Take(args) => take(args).await,
        BackupsCommand::List {
            platform,
            database,
            remote,
        } => {
            let catalog = context::client(remote)?
                .backup_catalog(platform.as_deref(), database.as_deref())
                .await?;
            let rows = catalog
                .databases
                .iter()
                .map(|db| {
                    vec![
                        db.platform.clone(),
                        db.database.clone(),
                        db.host.clone(),
                        db.bases.len().to_string(),
                        db.bases.last().map_or_else(
                            || "-".into(),
                            |base| {
                                format!(
                                    "{} ({})",
                                    base.id,
                                    output::age(Some(base.stopped_at_ms), now)
                                )
                            },
                        ),
                        wal_summary(&db.wal_ranges),
                        output::age(db.last_wal_archived_at_ms, now),
                        failure_summary(db.last_failure.as_ref(), now),
                    ]
                })
                .collect();
            print(
                remote.output,
                &catalog,
                &[
                    "PLATFORM",
                    "DATABASE",
                    "HOST",
                    "BASES",
                    "NEWEST BASE",
                    "WAL",
                    "NEWEST WAL",
                    "LAST FAILURE",
                ],
                rows,
            )
        }
        BackupsCommand::Show {
            platform,
            database,
            remote,
        } => {
            let catalog = context::client(remote)?
                .backup_catalog(Some(platform), Some(database))
                .await?;
            let db = catalog
                .databases
                .into_iter()
                .find(|db| &db.platform == platform && &db.database == database)
                .with_context(|| {
                    format!(
                        "platform {platform:?} has no backed-up database {database:?} (see cloudkeep backups list)"
                    )
                })?;
            match remote.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&db)?),
                OutputFormat::Table => print!("{}", show_text(&db, now)),
            }
            Ok(())
        }
    }
}

/// `42 segments, 1 run, tl 1`: how much WAL is kept and in how many pieces (more runs than
/// timelines means gaps).
fn wal_summary(ranges: &[WalRangeView]) -> String {
    if ranges.is_empty() {
        return "-".into();
    }
    let segments: u64 = ranges.iter().map(|range| range.segments).sum();
    let mut timelines: Vec<String> = ranges
        .iter()
        .map(|range| range.timeline.to_string())
        .collect();
    timelines.dedup();
    format!(
        "{segments} segment{}, {} run{}, tl {}",
        if segments == 1 { "" } else { "s" },
        ranges.len(),
        if ranges.len() == 1 { "" } else { "s" },
        timelines.join(",")
    )
}

fn failure_summary(failure: Option<&BackupFailed>, now: i64) -> String {
    let Some(failure) = failure else {
        return "-".into();
    };
    let mut message: String = failure.message.chars().take(LISTED_MESSAGE_CHARS).collect();
    if failure.message.chars().count() > LISTED_MESSAGE_CHARS {
        message.push('…');
    }
    format!(
        "{} {}: {message}",
        failure.what,
        output::age(Some(failure.at_ms), now)
    )
}

/// One database's catalog as text: who, base backups, WAL runs and the last failure.
fn show_text(db: &DatabaseBackups, now: i64) -> String {
    let mut text = format!(
        "platform {}  isv {}  database {}  host {}\n\nbase backups\n",
        db.platform, db.isv, db.database, db.host
    );
    let bases: Vec<Vec<String>> = db
        .bases
        .iter()
        .map(|base| {
            vec![
                base.id.clone(),
                // An incremental backup names the backup it goes over.
                base.parent
                    .as_ref()
                    .map_or_else(|| "full".to_owned(), |parent| format!("over {parent}")),
                output::utc_time(base.started_at_ms),
                output::utc_time(base.stopped_at_ms),
                output::duration(base.stopped_at_ms - base.started_at_ms),
                base.start_lsn.clone(),
                base.stop_lsn.clone(),
                output::bytes(base.plain_bytes),
                output::bytes(base.stored_bytes),
                base.files.to_string(),
            ]
        })
        .collect();
    text.push_str(&table_or_none(
        &[
            "ID",
            "KIND",
            "STARTED",
            "STOPPED",
            "TOOK",
            "START LSN",
            "STOP LSN",
            "PLAIN",
            "STORED",
            "FILES",
        ],
        &bases,
    ));
    text.push_str("\nwal\n");
    let ranges: Vec<Vec<String>> = db
        .wal_ranges
        .iter()
        .map(|range| {
            vec![
                range.timeline.to_string(),
                range.first.clone(),
                range.last.clone(),
                range.segments.to_string(),
                output::bytes(range.plain_bytes),
                output::bytes(range.stored_bytes),
                output::utc_time(range.first_archived_at_ms),
                output::utc_time(range.last_archived_at_ms),
            ]
        })
        .collect();
    text.push_str(&table_or_none(
        &[
            "TIMELINE",
            "FIRST",
            "LAST",
            "SEGMENTS",
            "PLAIN",
            "STORED",
            "FIRST ARCHIVED",
            "LAST ARCHIVED",
        ],
        &ranges,
    ));
    if !ranges.is_empty() {
        text.push_str(&format!(
            "newest wal archived {}\n",
            output::age(db.last_wal_archived_at_ms, now)
        ));
    }
    text.push_str("\nlast failure\n");
    match &db.last_failure {
        Some(failure) => text.push_str(&format!(
            "  {} {} ({}): {}\n",
            failure.what,
            output::utc_time(failure.at_ms),
            output::age(Some(failure.at_ms), now),
            failure.message
        )),
        None => text.push_str("  none\n"),
    }
    text
}

/// A table of `rows`, or `  none` when there are none.
fn table_or_none(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        "  none\n".to_owned()
    } else {
        output::table(headers, rows)
    }
}

/// What `backups take` prints.
#[derive(Debug, serde::Serialize)]
struct TakeOutput {
    platform: String,
    database: String,
    id: String,
    /// The parent of an incremental backup; absent for a full one.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    repository: String,
    start_lsn: String,
    stop_lsn: String,
    files: usize,
    objects: usize,
    plain_bytes: u64,
    stored_bytes: u64,
    took_ms: i64,
}

/// `backups take`: one base backup now (full, or incremental with `--incremental`), with the code
/// the agent's scheduled backups run.
async fn take(args: &TakeArgs) -> anyhow::Result<()> {
    let (location, isv) =
        crate::restore::location_for(&args.platform, args.repository.as_deref(), &args.remote)
            .await?;
    let texts = match (&isv, args.recipients.is_empty()) {
        (_, false) => args.recipients.clone(),
        (Some(isv), true) => context::client(&args.remote)?
            .backup_keys(Some(isv))
            .await
            .context("fetching the ISV's public keys")?
            .keys
            .into_iter()
            .map(|key| key.recipient)
            .collect(),
        (None, true) => anyhow::bail!(
            "--repository needs --recipient: the public key(s) the backup is encrypted to"
        ),
    };
    let recipients = texts
        .iter()
        .map(|text| cloudkeep_backup::Recipient::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .context("--recipient")?;
    if recipients.is_empty() {
        anyhow::bail!("the ISV has no backup key: run cloudkeep keys create first");
    }
    if !(1..=19).contains(&args.level) {
        anyhow::bail!("--level {}: zstd levels are 1 to 19", args.level);
    }
    let repository = cloudkeep_backup::Repository::open(&location)
        .map_err(|error| anyhow::anyhow!("repository: {error}"))?;
    let layout = cloudkeep_backup::pg::DatabaseLayout::new(&args.platform, &args.database)?;
    let settings = cloudkeep_backup::pg::BaseBackupSettings {
        parallel: usize::try_from(args.parallel.clamp(1, 32)).unwrap_or(1),
        split_bytes: args.split_mib.max(1) << 20,
        level: args.level,
        incremental: args.incremental,
    };
    let clock = cloudkeep_stdx::SystemClock;
    let id = cloudkeep_agent::backup::job::backup_id(clock.now_ms());
    let manifest = cloudkeep_backup::pg::take_base_backup(
        &repository,
        &layout,
        &id,
        &args.pgdata,
        &args.connection,
        &recipients,
        &settings,
        &|| clock.now_ms(),
    )
    .await
    .with_context(|| format!("backup {id} of {}/{}", args.platform, args.database))?;
    let output = TakeOutput {
        platform: args.platform.clone(),
        database: args.database.clone(),
        id: manifest.id.clone(),
        parent: manifest.parent.clone(),
        repository: repository.root().to_owned(),
        start_lsn: manifest.start_lsn.clone(),
        stop_lsn: manifest.stop_lsn.clone(),
        files: manifest.files.len(),
        objects: manifest.units.len(),
        plain_bytes: manifest.plain_bytes,
        stored_bytes: manifest.stored_bytes,
        took_ms: manifest.stopped_at_ms - manifest.started_at_ms,
    };
    match args.remote.output {
        OutputFormat::Json => print(OutputFormat::Json, &output, &[], Vec::new()),
        OutputFormat::Table => {
            let kind = match &output.parent {
                Some(parent) => format!("incremental backup (over {parent})"),
                None => "full backup".to_owned(),
            };
            println!(
                "{kind} {} of {}/{} in {}: {} files, {} read, {} stored in {} objects, took {} (WAL {} to {})",
                output.id,
                output.platform,
                output.database,
                output.repository,
                output.files,
                output::bytes(output.plain_bytes),
                output::bytes(output.stored_bytes),
                output.objects,
                output::duration(output.took_ms),
                output.start_lsn,
                output.stop_lsn,
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use cloudkeep_protocol::backup::BaseBackupDone;

    use super::*;

    const NOW: i64 = 1_795_342_500_000;

    fn range(timeline: u32, first: u64, segments: u64) -> WalRangeView {
        let name = |segment: u64| format!("{timeline:08X}{segment:016X}");
        WalRangeView {
            timeline,
            first: name(first),
            last: name(first + segments - 1),
            segments,
            plain_bytes: segments << 24,
            stored_bytes: segments << 20,
            first_archived_at_ms: NOW - 3_600_000,
            last_archived_at_ms: NOW - 60_000,
        }
    }

    #[test]
    fn wal_and_failure_summaries() {
        assert_eq!(wal_summary(&[]), "-");
        assert_eq!(wal_summary(&[range(1, 2, 1)]), "1 segment, 1 run, tl 1");
        assert_eq!(
            wal_summary(&[range(1, 2, 10), range(1, 20, 5), range(2, 20, 3)]),
            "18 segments, 3 runs, tl 1,2"
        );
        let failure = BackupFailed {
            what: "wal".into(),
            message: "x".repeat(70),
            at_ms: NOW - 300_000,
        };
        assert_eq!(
            failure_summary(Some(&failure), NOW),
            format!("wal 5m ago: {}…", "x".repeat(60))
        );
        assert_eq!(failure_summary(None, NOW), "-");
    }

    #[test]
    fn show_lists_bases_wal_runs_and_the_last_failure() {
        let db = DatabaseBackups {
            platform: "shop".into(),
            isv: "acme".into(),
            host: "db1".into(),
            database: "db".into(),
            bases: vec![
                BaseBackupDone {
                    id: "20261122T090000Z-3fa2".into(),
                    started_at_ms: NOW - 3_600_000,
                    stopped_at_ms: NOW - 3_600_000 + 95_000,
                    start_lsn: "0/2000028".into(),
                    stop_lsn: "0/2000100".into(),
                    timeline: 1,
                    start_wal: "000000010000000000000002".into(),
                    stop_wal: "000000010000000000000002".into(),
                    files: 1500,
                    plain_bytes: 40 << 20,
                    stored_bytes: 9 << 20,
                    parent: None,
                },
                BaseBackupDone {
                    id: "20261122T094500Z-77b1".into(),
                    started_at_ms: NOW - 1_800_000,
                    stopped_at_ms: NOW - 1_800_000 + 5_000,
                    start_lsn: "0/4000028".into(),
                    stop_lsn: "0/4000100".into(),
                    timeline: 1,
                    start_wal: "000000010000000000000004".into(),
                    stop_wal: "000000010000000000000004".into(),
                    files: 1500,
                    plain_bytes: 40 << 20,
                    stored_bytes: 1 << 20,
                    parent: Some("20261122T090000Z-3fa2".into()),
                },
            ],
            wal_ranges: vec![range(1, 2, 3)],
            last_wal_archived_at_ms: Some(NOW - 60_000),
            last_failure: Some(BackupFailed {
                what: "base".into(),
                message: "pg_backup_start: permission denied".into(),
                at_ms: NOW - 120_000,
            }),
        };
        expect_test::expect![[r#"
            platform shop  isv acme  database db  host db1

            base backups
            ID                     KIND                        STARTED               STOPPED               TOOK   START LSN  STOP LSN   PLAIN     STORED   FILES
            20261122T090000Z-3fa2  full                        2026-11-22 09:15:00Z  2026-11-22 09:16:35Z  1m35s  0/2000028  0/2000100  40.0 MiB  9.0 MiB  1500
            20261122T094500Z-77b1  over 20261122T090000Z-3fa2  2026-11-22 09:45:00Z  2026-11-22 09:45:05Z  5s     0/4000028  0/4000100  40.0 MiB  1.0 MiB  1500

            wal
            TIMELINE  FIRST                     LAST                      SEGMENTS  PLAIN     STORED   FIRST ARCHIVED        LAST ARCHIVED
            1         000000010000000000000002  000000010000000000000004  3         48.0 MiB  3.0 MiB  2026-11-22 09:15:00Z  2026-11-22 10:14:00Z
            newest wal archived 1m ago

            last failure
              base 2026-11-22 10:13:00Z (2m ago): pg_backup_start: permission denied
        "#]]
        .assert_eq(&show_text(&db, NOW));
    }
}
