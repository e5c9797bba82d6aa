//! DR drill results: recorded as a `dr_drill` event on the platform, with the measured RPO and RTO
//! in its message and the whole report in its data.

use cloudkeep_protocol::backup::DrillRecord;
use cloudkeep_store::EventRecord;

use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

fn seconds(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "unknown".to_owned(),
        |ms| format!("{:.1} s", ms as f64 / 1000.0),
    )
}

impl Server {
    /// Records a drill run by an operator (`cloudkeep dr-drill`) or scheduled on the database's
    /// own host by its agent; audited.
    pub async fn record_drill(
        &self,
        caller: &Principal,
        record: &DrillRecord,
    ) -> Result<(), ServiceError> {
        let result = self.record_drill_unaudited(caller, record).await;
        self.audit(
            caller,
            "backups.drill",
            &format!("backups:{}/{}", record.platform, record.database),
            &result,
        )
        .await;
        result
    }

    async fn record_drill_unaudited(
        &self,
        caller: &Principal,
        record: &DrillRecord,
    ) -> Result<(), ServiceError> {
        if let Principal::Agent { platform, .. } = caller {
            caller.require(Permission::AgentReport)?;
            if *platform != record.platform {
                return Err(ServiceError::forbidden(
                    "an agent records drills of its own platform only",
                ));
            }
        } else {
            caller.require(Permission::OperateAlerts)?;
        }
        let Some(platform) = self.store().get_platform(&record.platform).await? else {
            return Err(ServiceError::not_found(format!(
                "no platform {:?}",
                record.platform
            )));
        };
        let spec: cloudkeep_model::PlatformSpec = serde_json::from_str(&platform.spec_json)
            .map_err(|err| ServiceError::internal("reading a stored spec", &err))?;
        let Some((host, _, _)) = spec
            .backed_up_databases()
            .find(|(_, component, _)| component.name.as_str() == record.database)
        else {
            return Err(ServiceError::bad_request(format!(
                "database: platform {:?} declares no database {:?} with a backup section",
                record.platform, record.database
            )));
        };
        if let Principal::Agent {
            host: agent_host, ..
        } = caller
            && agent_host.as_str() != host.name.as_str()
        {
            return Err(ServiceError::forbidden(
                "an agent records drills of the databases on its own host only",
            ));
        }
        let message: String = format!(
            "DR drill of {}/{} {}: measured RPO {}, RTO {}{}",
            record.platform,
            record.database,
            if record.ok { "passed" } else { "FAILED" },
            seconds(record.rpo_ms),
            seconds(record.rto_ms),
            record
                .error
                .as_deref()
                .map(|error| format!(": {error}"))
                .unwrap_or_default()
        )
        .chars()
        .take(2000)
        .collect();
        let data = serde_json::json!({
            "database": record.database,
            "ok": record.ok,
            "rpo_ms": record.rpo_ms,
            "rto_ms": record.rto_ms,
            "base_backup": record.base_backup,
            "report": record.report,
        })
        .to_string();
        if data.len() > 256 << 10 {
            return Err(ServiceError::bad_request(
                "report: larger than 256 KiB".to_owned(),
            ));
        }
        self.record_event(EventRecord {
            id: cloudkeep_stdx::ids::random_hex(16),
            at_ms: self.now_ms(),
            kind: "dr_drill".into(),
            cloud: host.effective_cloud(&spec.cloud).to_string(),
            isv: platform.isv.clone(),
            tenant: platform.tenant.clone(),
            platform: platform.name.clone(),
            host: host.name.to_string(),
            message,
            actor: Some(caller.actor()),
            data_json: data,
            ..EventRecord::default()
        })
        .await;
        Ok(())
    }
}
