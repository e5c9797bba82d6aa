//! The backup jobs of an agent's config: one per database component with a `backup` section on the
//! agent's host, with the ISV's repository and public keys resolved, defaults applied, and why the job
//! cannot run when it cannot.

use cloudkeep_backup::RepoLocation;
use cloudkeep_model::{BackupSpec, HostSpec, PlatformSpec};
use cloudkeep_protocol::backup::{AgentBackupJob, AgentDrill};

use crate::{Server, ServiceError};

impl Server {
    /// The backup jobs of `host` (a host of `spec`): the ISV's repository from the `[backup]`
    /// section and its stored public keys.
    pub(crate) async fn backup_jobs(
        &self,
        spec: &PlatformSpec,
        host: &HostSpec,
    ) -> Result<Vec<AgentBackupJob>, ServiceError> {
        if !host.components.iter().any(|c| c.backup.is_some()) {
            return Ok(Vec::new());
        }
        let isv = spec.isv.as_str();
        let recipients: Vec<String> = self
            .store()
            .list_backup_keys(Some(isv))
            .await?
            .into_iter()
            .map(|key| key.recipient)
            .collect();
        let repository = self.config().backup.repository_for(isv);
        Ok(backup_jobs(isv, host, repository.as_ref(), &recipients))
    }
}

/// The jobs of `host`'s backed-up databases, in spec order. A job that cannot run still goes to the
/// agent, with its `problem`, so the agent reports it as a failure rather than staying silent.
pub(crate) fn backup_jobs(
    isv: &str,
    host: &HostSpec,
    repository: Option<&RepoLocation>,
    recipients: &[String],
) -> Vec<AgentBackupJob> {
    let mut problems = Vec::new();
    let repository_json = match repository.map(serde_json::to_value) {
        Some(Ok(value)) => value,
        None => {
            problems.push("no [backup] repository configured on the server".to_owned());
            serde_json::Value::Null
        }
        // Only a path that is not UTF-8 fails; the error names no secret.
        Some(Err(err)) => {
            problems.push(format!(
                "the server's [backup] repository cannot be sent: {err}"
            ));
            serde_json::Value::Null
        }
    };
    if recipients.is_empty() {
        problems.push(format!(
            "no backup key for isv {isv:?}: run cloudkeep keys create --isv {isv}"
        ));
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    host.components
        .iter()
        .filter_map(|component| {
            let backup = component.backup.as_ref()?;
            Some(job(
                component.name.as_str(),
                backup,
                &repository_json,
                recipients,
                problem.clone(),
            ))
        })
        .collect()
}

fn job(
    database: &str,
    backup: &BackupSpec,
    repository: &serde_json::Value,
    recipients: &[String],
    problem: Option<String>,
) -> AgentBackupJob {
    let ms = |duration: cloudkeep_model::Duration| {
        i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
    };
    AgentBackupJob {
        database: database.to_owned(),
        pgdata: backup.pgdata.clone(),
        connection: backup.effective_connection().to_owned(),
        repository: repository.clone(),
        recipients: recipients.to_vec(),
        problem,
        compression_level: backup.effective_compression_level(),
        parallel: backup.effective_parallel(),
        split_bytes: backup.effective_split_size(),
        full_every_ms: ms(backup.effective_full_every()),
        incremental_every_ms: backup.incremental_every.map_or(0, ms),
        archive_timeout_ms: ms(backup.effective_archive_timeout()),
        keep_full: backup.effective_keep_full(),
        pitr_window_ms: ms(backup.effective_pitr_window()),
        heartbeat_every_ms: ms(backup.effective_heartbeat_every()),
        streaming: backup.streaming.unwrap_or(false),
        drill: backup.drill.as_ref().and_then(|drill| {
            Some(AgentDrill {
                every_ms: ms(drill.every),
                key_file: drill.key_file.clone()?,
                check_sql: drill.check_sql.clone(),
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PlatformSpec {
        cloudkeep_model::parse_spec(
            "test.json",
            r#"{"version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "c",
                "hosts": [{"name": "db1", "components": [
                    {"name": "web", "kind": "web"},
                    {"name": "db", "kind": "database", "backup": {"pgdata": "/pg"}},
                    {"name": "ledger", "kind": "database", "backup": {"pgdata": "/pg2", "full_every": "6h", "incremental_every": "1h", "drill": {"every": "7d", "key_file": "/etc/cloudkeep/drill.key"},
                     "connection": "postgres://backup@localhost/ledger", "parallel": 4, "split_size": 1048576}}
                ]}]}"#,
        )
        .unwrap()
    }

    fn local() -> RepoLocation {
        RepoLocation::Local {
            path: "/srv/backups".into(),
            prefix: "isv/acme".into(),
        }
    }

    #[test]
    fn every_backed_up_database_of_the_host_gets_a_job_with_defaults_applied() {
        let spec = spec();
        let jobs = backup_jobs(
            "acme",
            &spec.hosts[0],
            Some(&local()),
            &["age1x".to_owned()],
        );
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            jobs[0],
            AgentBackupJob {
                database: "db".into(),
                pgdata: "/pg".into(),
                connection: BackupSpec::DEFAULT_CONNECTION.into(),
                repository: serde_json::json!({"kind": "local", "path": "/srv/backups", "prefix": "isv/acme"}),
                recipients: vec!["age1x".into()],
                problem: None,
                compression_level: 1,
                parallel: 2,
                split_bytes: 64 << 20,
                full_every_ms: 86_400_000,
                incremental_every_ms: 0,
                archive_timeout_ms: 30_000,
                keep_full: 2,
                pitr_window_ms: 7 * 86_400_000,
                heartbeat_every_ms: 10_000,
                streaming: false,
                drill: None,
            }
        );
        assert_eq!(jobs[1].database, "ledger");
        assert_eq!(jobs[1].connection, "postgres://backup@localhost/ledger");
        assert_eq!(jobs[1].full_every_ms, 6 * 3_600_000);
        assert_eq!(jobs[1].incremental_every_ms, 3_600_000);
        let drill = jobs[1].drill.as_ref().unwrap();
        assert_eq!(drill.every_ms, 7 * 86_400_000);
        assert_eq!(drill.key_file, "/etc/cloudkeep/drill.key");
        assert_eq!(jobs[1].parallel, 4);
        assert_eq!(jobs[1].split_bytes, 1 << 20);
    }

    #[test]
    fn a_job_that_cannot_run_says_why() {
        let spec = spec();
        let jobs = backup_jobs("acme", &spec.hosts[0], Some(&local()), &[]);
        assert_eq!(
            jobs[0].problem.as_deref(),
            Some("no backup key for isv \"acme\": run cloudkeep keys create --isv acme")
        );
        let jobs = backup_jobs("acme", &spec.hosts[0], None, &["age1x".to_owned()]);
        assert_eq!(
            jobs[0].problem.as_deref(),
            Some("no [backup] repository configured on the server")
        );
        assert_eq!(jobs[0].repository, serde_json::Value::Null);
        let jobs = backup_jobs("acme", &spec.hosts[0], None, &[]);
        assert_eq!(
            jobs[1].problem.as_deref(),
            Some(
                "no [backup] repository configured on the server; no backup key for isv \"acme\": run cloudkeep keys create --isv acme"
            )
        );
    }
}
