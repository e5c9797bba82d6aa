//! The backup catalog's service functions: agents report what they committed to the repository (or
//! what failed) for the databases their host backs up; people read the catalog; admins read where a
//! platform's backups live, credentials included.

use std::collections::BTreeMap;

use cloudkeep_model::{HostName, PlatformSpec};
use cloudkeep_protocol::backup::{
    BackupCatalog, BackupEvent, BackupFailed, BackupReport, BaseBackupDone, DatabaseBackups,
    RepositoryAccess,
};
use cloudkeep_store::{
    BackupChange, BackupDatabaseRecord, BackupFailureRecord, BaseBackupRecord, EventRecord,
    PlatformRecord, WalFileRecord,
};

use super::ranges::{fold_wal_ranges, is_segment_name, to_u64};
use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

/// Longest WAL file name, base backup id or failure kind accepted.
const MAX_NAME_LEN: usize = 128;
/// Failure messages are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Where a backed-up database is declared.
struct DeclaredDatabase<'a> {
    host: &'a HostName,
    cloud: &'a str,
}

impl Server {
    /// Applies what the calling agent's host did for one of its databases: archived WAL files,
    /// committed base backups, expiries and failures (each failure also becomes a `backup_failed`
    /// event). Only the host whose spec component has the `backup` section may report for it.
    pub async fn report_backups(
        &self,
        caller: &Principal,
        report: &BackupReport,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AgentReport)?;
        let Principal::Agent { id, host, platform } = caller else {
            return Err(ServiceError::forbidden("only agents report backups"));
        };
        let (record, spec) = self.platform_spec(platform).await?;
        let declared = declared_database(&spec, &report.database, host)?;
        let now_ms = self.now_ms();
        let database = BackupDatabaseRecord {
            platform: platform.clone(),
            database: report.database.clone(),
            host: host.clone(),
            isv: record.isv.clone(),
            first_reported_at_ms: now_ms,
            last_reported_at_ms: now_ms,
            last_failure: None,
        };
        let changes = report
            .events
            .iter()
            .enumerate()
            .map(|(index, event)| change(&database, event, now_ms, index))
            .collect::<Result<Vec<_>, _>>()?;
        let applied = self
            .store()
            .apply_backup_report(&database, &changes)
            .await?;
        // A retried report's failure is already recorded: no second event.
        for index in applied.new_failures {
            let Some(BackupChange::Failed(failure)) = changes.get(index) else {
                continue;
            };
            self.record_event(EventRecord {
                id: cloudkeep_stdx::ids::random_hex(16),
                at_ms: failure.at_ms,
                kind: "backup_failed".into(),
                cloud: declared.cloud.to_owned(),
                isv: record.isv.clone(),
                tenant: record.tenant.clone(),
                platform: platform.clone(),
                host: declared.host.to_string(),
                message: format!(
                    "backup of database {:?} on {} failed ({}): {}",
                    report.database, declared.host, failure.what, failure.message
                ),
                actor: Some(format!("agent:{id}")),
                data_json: serde_json::json!({
                    "database": report.database,
                    "what": failure.what,
                })
                .to_string(),
                // Not about an alert or a monitor.
                ..EventRecord::default()
            })
            .await;
        }
        Ok(())
    }

    /// The catalog of every backed-up database (of one platform and/or one name): each database a
    /// spec declares with `backup`, and each that reported backups, with its base backups, WAL runs
    /// and last failure.
    pub async fn backup_catalog(
        &self,
        caller: &Principal,
        platform: Option<&str>,
        database: Option<&str>,
    ) -> Result<BackupCatalog, ServiceError> {
        let target = match (platform, database) {
            (Some(platform), Some(database)) => format!("backups:{platform}/{database}"),
            (Some(platform), None) => format!("backups:{platform}"),
            (None, Some(database)) => format!("backups:*/{database}"),
            (None, None) => "backups".to_owned(),
        };
        let (platforms, databases, bases, wal) = self
            .audited_read(caller, "backups.list", &target, async {
                let platforms = match platform {
                    Some(name) => self.store().get_platform(name).await?.into_iter().collect(),
                    None => self.store().list_platforms().await?,
                };
                Ok((
                    platforms,
                    self.store()
                        .list_backup_databases(platform, database)
                        .await?,
                    self.store().list_base_backups(platform, database).await?,
                    self.store().list_wal_files(platform, database).await?,
                ))
            })
            .await?;
        let mut catalog: BTreeMap<(String, String), DatabaseBackups> = BTreeMap::new();
        for record in &platforms {
            let spec = parse_stored_spec(record)?;
            for (host, component, _) in spec.backed_up_databases() {
                if database.is_some_and(|name| name != component.name.as_str()) {
                    continue;
                }
                catalog.insert(
                    (record.name.clone(), component.name.to_string()),
                    empty_entry(
                        &record.name,
                        &record.isv,
                        host.name.as_str(),
                        component.name.as_str(),
                    ),
                );
            }
        }
        // Databases no longer in a spec keep their backups: they stay listed.
        for reported in databases {
            let entry = catalog
                .entry((reported.platform.clone(), reported.database.clone()))
                .or_insert_with(|| {
                    empty_entry(
                        &reported.platform,
                        &reported.isv,
                        &reported.host,
                        &reported.database,
                    )
                });
            entry.last_failure = reported.last_failure.map(|failure| BackupFailed {
                what: failure.what,
                message: failure.message,
                at_ms: failure.at_ms,
            });
        }
        for base in bases {
            if let Some(entry) = catalog.get_mut(&(base.platform.clone(), base.database.clone())) {
                entry.bases.push(base_view(base));
            }
        }
        let mut wal_by_database: BTreeMap<(String, String), Vec<WalFileRecord>> = BTreeMap::new();
        for file in wal {
            wal_by_database
                .entry((file.platform.clone(), file.database.clone()))
                .or_default()
                .push(file);
        }
        for (key, files) in wal_by_database {
            if let Some(entry) = catalog.get_mut(&key) {
                entry.wal_ranges = fold_wal_ranges(&files);
                entry.last_wal_archived_at_ms = files
                    .iter()
                    .filter(|file| is_segment_name(&file.name))
                    .map(|file| file.archived_at_ms)
                    .max();
            }
        }
        Ok(BackupCatalog {
            databases: catalog.into_values().collect(),
        })
    }

    /// Where `platform`'s backups live, credentials included, for restores and verification by an
    /// operator (admins only). Every attempt is audited, refused ones too.
    pub async fn backup_repository(
        &self,
        caller: &Principal,
        platform: &str,
    ) -> Result<RepositoryAccess, ServiceError> {
        let result = match caller.require(Permission::AccessBackupRepository) {
            Ok(()) => self.backup_repository_unaudited(platform).await,
            Err(err) => Err(err),
        };
        self.audit(
            caller,
            "backups.repository",
            &format!("platform:{platform}"),
            &result,
        )
        .await;
        result
    }

    async fn backup_repository_unaudited(
        &self,
        platform: &str,
    ) -> Result<RepositoryAccess, ServiceError> {
        let Some(record) = self.store().get_platform(platform).await? else {
            return Err(ServiceError::not_found(format!("no platform {platform:?}")));
        };
        let Some(location) = self.config().backup.repository_for(&record.isv) else {
            return Err(ServiceError::not_found(format!(
                "no [backup] repository configured on the server for isv {:?}",
                record.isv
            )));
        };
        let repository = serde_json::to_value(&location)
            .map_err(|err| ServiceError::internal("serialising a repository location", &err))?;
        Ok(RepositoryAccess {
            platform: record.name,
            isv: record.isv,
            repository,
        })
    }

    /// A platform's record and its parsed spec.
    async fn platform_spec(
        &self,
        platform: &str,
    ) -> Result<(PlatformRecord, PlatformSpec), ServiceError> {
        let Some(record) = self.store().get_platform(platform).await? else {
            return Err(ServiceError::not_found(format!("no platform {platform:?}")));
        };
        let spec = parse_stored_spec(&record)?;
        Ok((record, spec))
    }
}

fn parse_stored_spec(record: &PlatformRecord) -> Result<PlatformSpec, ServiceError> {
    serde_json::from_str(&record.spec_json)
        .map_err(|err| ServiceError::internal("reading a stored spec", &err))
}

/// The declaration of `database` in `spec`, if `host` is the one that backs it up.
fn declared_database<'a>(
    spec: &'a PlatformSpec,
    database: &str,
    host: &str,
) -> Result<DeclaredDatabase<'a>, ServiceError> {
    let Some((declared_host, _, _)) = spec
        .backed_up_databases()
        .find(|(_, component, _)| component.name.as_str() == database)
    else {
        return Err(ServiceError::bad_request(format!(
            "database: platform {:?} declares no database {database:?} with a backup section",
            spec.platform.as_str()
        )));
    };
    if declared_host.name.as_str() != host {
        return Err(ServiceError::forbidden(format!(
            "database {database:?} of platform {:?} is backed up by host {:?}, not by {host:?}",
            spec.platform.as_str(),
            declared_host.name.as_str()
        )));
    }
    Ok(DeclaredDatabase {
        host: &declared_host.name,
        cloud: declared_host.effective_cloud(&spec.cloud).as_str(),
    })
}

/// One reported event as a catalog change, checked; `index` names it in errors.
fn change(
    database: &BackupDatabaseRecord,
    event: &BackupEvent,
    now_ms: i64,
    index: usize,
) -> Result<BackupChange, ServiceError> {
    let at = |field: &str| format!("events[{index}].{field}");
    let count = |field: &str, value: u64| {
        i64::try_from(value)
            .map_err(|_| ServiceError::bad_request(format!("{}: {value} is too large", at(field))))
    };
    let name = |field: &str, value: &str| {
        if value.is_empty()
            || value.len() > MAX_NAME_LEN
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            Err(ServiceError::bad_request(format!(
                "{}: {value:?} is not a name (1 to {MAX_NAME_LEN} letters, digits, '.', '_', '-')",
                at(field)
            )))
        } else {
            Ok(value.to_owned())
        }
    };
    Ok(match event {
        BackupEvent::Wal(wal) => BackupChange::Wal(WalFileRecord {
            platform: database.platform.clone(),
            database: database.database.clone(),
            name: name("name", &wal.name)?,
            timeline: i64::from(wal.timeline),
            segment: count("segment", wal.segment)?,
            plain_bytes: count("plain_bytes", wal.plain_bytes)?,
            stored_bytes: count("stored_bytes", wal.stored_bytes)?,
            archived_at_ms: wal.archived_at_ms,
            upload_ms: wal.upload_ms,
            reported_at_ms: now_ms,
        }),
        BackupEvent::Base(base) => BackupChange::Base(BaseBackupRecord {
            platform: database.platform.clone(),
            database: database.database.clone(),
            id: name("id", &base.id)?,
            host: database.host.clone(),
            isv: database.isv.clone(),
            started_at_ms: base.started_at_ms,
            stopped_at_ms: base.stopped_at_ms,
            start_lsn: base.start_lsn.clone(),
            stop_lsn: base.stop_lsn.clone(),
            timeline: i64::from(base.timeline),
            start_wal: base.start_wal.clone(),
            stop_wal: base.stop_wal.clone(),
            files: count("files", base.files)?,
            plain_bytes: count("plain_bytes", base.plain_bytes)?,
            stored_bytes: count("stored_bytes", base.stored_bytes)?,
            reported_at_ms: now_ms,
            parent: base
                .parent
                .as_deref()
                .map(|parent| name("parent", parent))
                .transpose()?,
        }),
        BackupEvent::Expired(expired) => BackupChange::Expired {
            base_ids: expired.base_ids.clone(),
            wal_names: expired.wal_names.clone(),
        },
        BackupEvent::Failed(failed) => BackupChange::Failed(BackupFailureRecord {
            what: name("what", &failed.what)?,
            message: failed.message.chars().take(MAX_MESSAGE_CHARS).collect(),
            at_ms: failed.at_ms,
        }),
    })
}

fn empty_entry(platform: &str, isv: &str, host: &str, database: &str) -> DatabaseBackups {
    DatabaseBackups {
        platform: platform.to_owned(),
        isv: isv.to_owned(),
        host: host.to_owned(),
        database: database.to_owned(),
        bases: Vec::new(),
        wal_ranges: Vec::new(),
        last_wal_archived_at_ms: None,
        last_failure: None,
    }
}

fn base_view(record: BaseBackupRecord) -> BaseBackupDone {
    BaseBackupDone {
        id: record.id,
        started_at_ms: record.started_at_ms,
        stopped_at_ms: record.stopped_at_ms,
        start_lsn: record.start_lsn,
        stop_lsn: record.stop_lsn,
        timeline: u32::try_from(record.timeline).unwrap_or(0),
        start_wal: record.start_wal,
        stop_wal: record.stop_wal,
        files: to_u64(record.files),
        plain_bytes: to_u64(record.plain_bytes),
        stored_bytes: to_u64(record.stored_bytes),
        parent: record.parent,
    }
}
