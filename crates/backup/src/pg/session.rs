//! Taking a full base backup of a running PostgreSQL: `pg_backup_start` on one session, the data
//! directory uploaded while it is held, `pg_backup_stop` (which waits until the WAL the backup
//! needs is archived), then the manifest committed. If anything fails the session closes, which
//! aborts the backup in PostgreSQL, and no manifest is written, so nothing counts.

use std::path::Path;
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{
    BaseBackupSettings, BaseManifest, DatabaseLayout, PAGE_SIZE, PgBackupError, StopInfo,
    list_base_manifests, upload_data_dir,
};
use crate::{Recipient, Repository};

fn sql_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> PgBackupError {
    move |error| PgBackupError::Postgres(format!("{what}: {error}"))
}

/// Opens a session to the database at `url` (a `postgres://` URL; its password is never shown).
pub async fn connect(url: &str) -> Result<PgConnection, PgBackupError> {
    let options = PgConnectOptions::from_str(url).map_err(|_| {
        PgBackupError::Postgres("the connection URL is not a valid postgres:// URL".to_owned())
    })?;
    PgConnection::connect_with(&options)
        .await
        .map_err(sql_error("connecting"))
}

/// The timeline in a `backup_label` (`START TIMELINE: 1`).
fn label_timeline(label: &str) -> Option<u32> {
    label
        .lines()
        .find_map(|line| line.strip_prefix("START TIMELINE:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Takes and commits base backup `id` of the cluster in `pgdata`, reached at `url`: full, or
/// incremental when `settings.incremental` asks and an earlier backup can be its parent.
#[allow(clippy::too_many_arguments)]
pub async fn take_base_backup(
    repository: &Repository,
    layout: &DatabaseLayout,
    id: &str,
    pgdata: &Path,
    url: &str,
    recipients: &[Recipient],
    settings: &BaseBackupSettings,
    now_ms: &(dyn Fn() -> i64 + Send + Sync),
) -> Result<BaseManifest, PgBackupError> {
    let version_path = pgdata.join("PG_VERSION");
    let pg_version = tokio::fs::read_to_string(&version_path)
        .await
        .map_err(PgBackupError::io(&version_path))?
        .trim()
        .to_owned();
    let mut session = connect(url).await?;
    let segment_size: i64 = sqlx::query_scalar(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'",
    )
    .fetch_one(&mut session)
    .await
    .map_err(sql_error("reading wal_segment_size"))?;
    let (system_identifier, block_size): (String, i64) = sqlx::query_as(
        "SELECT system_identifier::text, current_setting('block_size')::bigint \
         FROM pg_control_system()",
    )
    .fetch_one(&mut session)
    .await
    .map_err(sql_error("reading the system identifier"))?;
    let segment_size = u64::try_from(segment_size).unwrap_or(super::DEFAULT_SEGMENT_SIZE);
    let started_at_ms = now_ms();
    let start_lsn: String = sqlx::query_scalar("SELECT pg_backup_start($1, true)::text")
        .bind(format!("cloudkeep {id}"))
        .fetch_one(&mut session)
        .await
        .map_err(sql_error("pg_backup_start"))?;
    // The parent of an incremental backup: the newest backup of this cluster on this timeline
    // (read after the start, whose checkpoint has flushed every page changed before it).
    let parent = if settings.incremental && u64::try_from(block_size).ok() == Some(PAGE_SIZE) {
        let timeline: i32 = sqlx::query_scalar("SELECT timeline_id FROM pg_control_checkpoint()")
            .fetch_one(&mut session)
            .await
            .map_err(sql_error("reading the timeline"))?;
        let timeline = u32::try_from(timeline).unwrap_or(0);
        list_base_manifests(repository, layout)
            .await?
            .into_iter()
            .rev()
            .find(|base| base.can_parent(&system_identifier, &pg_version, timeline, segment_size))
    } else {
        None
    };
    let upload = upload_data_dir(
        repository,
        layout,
        id,
        pgdata,
        recipients,
        settings,
        parent.as_ref(),
    )
    .await?;
    let (stop_lsn, backup_label, tablespace_map): (String, String, Option<String>) =
        sqlx::query_as("SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(true)")
            .fetch_one(&mut session)
            .await
            .map_err(sql_error("pg_backup_stop"))?;
    let _ = session.close().await;
    let timeline = label_timeline(&backup_label).ok_or_else(|| {
        PgBackupError::Postgres("backup_label from pg_backup_stop has no START TIMELINE".to_owned())
    })?;
    let stop = StopInfo {
        id: id.to_owned(),
        pg_version,
        segment_size,
        timeline,
        start_lsn,
        stop_lsn,
        system_identifier,
        backup_label,
        tablespace_map: tablespace_map.unwrap_or_default(),
        started_at_ms,
        stopped_at_ms: now_ms(),
    };
    let manifest = upload.into_manifest(layout, stop, settings.level, recipients)?;
    manifest.commit(repository, layout).await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_comes_from_the_label() {
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-22 02:00:00 UTC\nLABEL: x\nSTART TIMELINE: 3\n";
        assert_eq!(label_timeline(label), Some(3));
        assert_eq!(label_timeline("nothing"), None);
    }
}
