//! The alerting service functions the API calls: events, alerts and acknowledgements, the
//! status roll-up, maintenance windows, silences, deliveries, and the agents' config and reports.

use std::collections::BTreeMap;

use cloudkeep_model::State;
use cloudkeep_protocol::alerting::{
    AgentConfig, AgentMonitor, AlertList, AlertView, CheckReport, DeliveryList, DeliveryView,
    EventList, EventQuery, EventView, MaintenanceCreate, MaintenanceList, MaintenanceView,
    NotifyTestRequest, NotifyTestResult, ScheduleView, ScopeView, SilenceCreate, SilenceList,
    SilenceView, StatusList, StatusNode, StatusReason,
};
use cloudkeep_store::{
    AlertRecord, DeliveryRecord, EventFilter, EventRecord, MaintenanceRecord, SilenceRecord,
};

use super::maintenance_window;
use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

impl Server {
    /// Events matching the query, newest first.
    pub async fn events(
        &self,
        caller: &Principal,
        query: &EventQuery,
    ) -> Result<EventList, ServiceError> {
        caller.require(Permission::Read)?;
        let filter = EventFilter {
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            kinds: query
                .kind
                .as_deref()
                .map(|kinds| {
                    kinds
                        .split(',')
                        .map(str::trim)
                        .filter(|kind| !kind.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            cloud: query.cloud.clone(),
            isv: query.isv.clone(),
            tenant: query.tenant.clone(),
            platform: query.platform.clone(),
            host: query.host.clone(),
            alert_key: query.alert.clone(),
            limit: query.limit.unwrap_or(100),
        };
        self.audited_read(caller, "events.list", "events", async {
            let events = self.store().list_events(&filter).await?;
            Ok(EventList {
                events: events.into_iter().map(event_view).collect(),
            })
        })
        .await
    }

    /// Alerts not ok (or all, with `include_ok`).
    pub async fn alerts(
        &self,
        caller: &Principal,
        include_ok: bool,
    ) -> Result<AlertList, ServiceError> {
        self.audited_read(caller, "alerts.list", "alerts", async {
            let alerts = self.store().list_alerts(include_ok).await?;
            Ok(AlertList {
                alerts: alerts.into_iter().map(alert_view).collect(),
            })
        })
        .await
    }

    /// Acknowledges an alert: who and why are recorded as an event, and it is not notified
    /// again until its state changes.
    pub async fn acknowledge(
        &self,
        caller: &Principal,
        alert_id: &str,
        comment: &str,
    ) -> Result<AlertView, ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let result = self.acknowledge_unaudited(caller, alert_id, comment).await;
        self.audit(caller, "alerts.ack", &format!("alert:{alert_id}"), &result)
            .await;
        result
    }

    async fn acknowledge_unaudited(
        &self,
        caller: &Principal,
        alert_id: &str,
        comment: &str,
    ) -> Result<AlertView, ServiceError> {
        let by = match caller {
            Principal::User { name, .. } => name.clone(),
            Principal::Agent { id, .. } => id.clone(),
        };
        let now_ms = self.now_ms();
        let Some(alert) = self.store().get_alert(alert_id).await? else {
            return Err(ServiceError::not_found(format!("no alert {alert_id:?}")));
        };
        if alert.state == State::Ok.as_str() {
            return Err(ServiceError::new(
                crate::ErrorKind::Conflict,
                format!("alert {alert_id} is ok; there is nothing to acknowledge"),
            ));
        }
        self.store()
            .ack_alert(alert_id, &by, comment, now_ms)
            .await?;
        self.record_event(EventRecord {
            kind: "acknowledged".into(),
            actor: Some(by.clone()),
            message: if comment.is_empty() {
                format!("{by} acknowledged {}", alert.message)
            } else {
                format!("{by} acknowledged {}: {comment}", alert.message)
            },
            state_from: Some(alert.state.clone()),
            state_to: Some(alert.state.clone()),
            data_json: serde_json::json!({ "comment": comment }).to_string(),
            ..event_for_alert(&alert, now_ms)
        })
        .await;
        self.alerting().engine.acknowledged(alert_id);
        let updated = self
            .store()
            .get_alert(alert_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no alert {alert_id:?}")))?;
        Ok(alert_view(updated))
    }

    /// Every cloud, isv, tenant, platform and host with its worst alert state.
    pub async fn status(&self, caller: &Principal) -> Result<StatusList, ServiceError> {
        caller.require(Permission::Read)?;
        let platforms = self.store().list_platforms().await?;
        let hosts = self.store().list_hosts().await?;
        let alerts = self.store().list_alerts(false).await?;
        let mut nodes: BTreeMap<(u8, String), StatusNode> = BTreeMap::new();
        let mut touch = |rank: u8, level: &str, name: &str| {
            nodes
                .entry((rank, name.to_owned()))
                .or_insert_with(|| StatusNode {
                    level: level.into(),
                    name: name.into(),
                    state: State::Ok.as_str().into(),
                    reason: None,
                });
        };
        for platform in &platforms {
            touch(0, "cloud", &platform.cloud);
            touch(1, "isv", &platform.isv);
            touch(2, "tenant", &platform.tenant);
            touch(3, "platform", &platform.name);
        }
        for host in &hosts {
            touch(0, "cloud", &host.cloud);
            touch(4, "host", &host.name);
        }
        // Worst wins; among equals the oldest alert is the reason.
        let mut ordered: Vec<&AlertRecord> = alerts.iter().collect();
        ordered.sort_by(|a, b| {
            let state =
                |alert: &AlertRecord| alert.state.parse::<State>().unwrap_or(State::Unknown);
            state(b)
                .cmp(&state(a))
                .then(a.since_ms.cmp(&b.since_ms))
                .then(a.alert_key.cmp(&b.alert_key))
        });
        for alert in ordered {
            let state = alert.state.parse::<State>().unwrap_or(State::Unknown);
            for (rank, name) in [
                (0, &alert.cloud),
                (1, &alert.isv),
                (2, &alert.tenant),
                (3, &alert.platform),
                (4, &alert.host),
            ] {
                let Some(node) = nodes.get_mut(&(rank, name.clone())) else {
                    continue;
                };
                let current = node.state.parse::<State>().unwrap_or(State::Ok);
                if state > current {
                    node.state = state.as_str().into();
                    node.reason = Some(StatusReason {
                        alert_id: alert.alert_key.clone(),
                        host: alert.host.clone(),
                        monitor: alert.monitor.clone(),
                        value: alert.value,
                        message: alert.message.clone(),
                    });
                }
            }
        }
        let result = Ok(StatusList {
            nodes: nodes.into_values().collect(),
        });
        self.audit(caller, "status.read", "status", &result).await;
        result
    }

    pub async fn maintenance_list(
        &self,
        caller: &Principal,
    ) -> Result<MaintenanceList, ServiceError> {
        let now_ms = self.now_ms();
        self.audited_read(caller, "maintenance.list", "maintenance", async {
            let records = self.store().list_maintenance().await?;
            Ok(MaintenanceList {
                windows: records
                    .into_iter()
                    .filter_map(|record| maintenance_view(record, now_ms))
                    .collect(),
            })
        })
        .await
    }

    pub async fn maintenance_create(
        &self,
        caller: &Principal,
        request: &MaintenanceCreate,
    ) -> Result<MaintenanceView, ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let result = self.maintenance_create_unaudited(caller, request).await;
        let target = match &result {
            Ok(view) => format!("maintenance:{}", view.id),
            Err(_) => "maintenance".into(),
        };
        self.audit(caller, "maintenance.create", &target, &result)
            .await;
        result
    }

    async fn maintenance_create_unaudited(
        &self,
        caller: &Principal,
        request: &MaintenanceCreate,
    ) -> Result<MaintenanceView, ServiceError> {
        let now_ms = self.now_ms();
        maintenance_window("new", &request.scope, &request.schedule)
            .map_err(ServiceError::bad_request)?;
        let record = MaintenanceRecord {
            id: cloudkeep_stdx::ids::random_hex(8),
            scope_json: serde_json::to_string(&request.scope)
                .map_err(|err| ServiceError::internal("serialising a scope", &err))?,
            schedule_json: serde_json::to_string(&request.schedule)
                .map_err(|err| ServiceError::internal("serialising a schedule", &err))?,
            comment: request.comment.clone(),
            created_by: caller.actor(),
            created_at_ms: now_ms,
        };
        self.store().insert_maintenance(&record).await?;
        self.alerting().refresh_notifier();
        maintenance_view(record, now_ms)
            .ok_or_else(|| ServiceError::bad_request("the maintenance window cannot be read back"))
    }

    pub async fn maintenance_delete(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let result = match self.store().delete_maintenance(id, self.now_ms()).await {
            Ok(true) => {
                self.alerting().refresh_notifier();
                Ok(())
            }
            Ok(false) => Err(ServiceError::not_found(format!(
                "no maintenance window {id:?}"
            ))),
            Err(err) => Err(err.into()),
        };
        self.audit(
            caller,
            "maintenance.delete",
            &format!("maintenance:{id}"),
            &result,
        )
        .await;
        result
    }

    pub async fn silence_list(&self, caller: &Principal) -> Result<SilenceList, ServiceError> {
        self.audited_read(caller, "silences.list", "silences", async {
            let records = self.store().list_silences(self.now_ms()).await?;
            Ok(SilenceList {
                silences: records.into_iter().filter_map(silence_view).collect(),
            })
        })
        .await
    }

    pub async fn silence_create(
        &self,
        caller: &Principal,
        request: &SilenceCreate,
    ) -> Result<SilenceView, ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let now_ms = self.now_ms();
        let result = async {
            let matchers = &request.matchers;
            if matchers.platform.is_none() && matchers.host.is_none() && matchers.monitor.is_none()
            {
                return Err(ServiceError::bad_request(
                    "matchers: name at least one of platform, host and monitor",
                ));
            }
            if request.expires_at_ms <= now_ms {
                return Err(ServiceError::bad_request(
                    "expires_at_ms: must be in the future",
                ));
            }
            let record = SilenceRecord {
                id: cloudkeep_stdx::ids::random_hex(8),
                matchers_json: serde_json::to_string(matchers)
                    .map_err(|err| ServiceError::internal("serialising matchers", &err))?,
                expires_at_ms: request.expires_at_ms,
                comment: request.comment.clone(),
                created_by: caller.actor(),
                created_at_ms: now_ms,
            };
            self.store().insert_silence(&record).await?;
            self.alerting().refresh_notifier();
            silence_view(record)
                .ok_or_else(|| ServiceError::bad_request("the silence cannot be read back"))
        }
        .await;
        let target = match &result {
            Ok(view) => format!("silence:{}", view.id),
            Err(_) => "silence".into(),
        };
        self.audit(caller, "silences.create", &target, &result)
            .await;
        result
    }

    pub async fn silence_delete(&self, caller: &Principal, id: &str) -> Result<(), ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let result = match self.store().delete_silence(id, self.now_ms()).await {
            Ok(true) => {
                self.alerting().refresh_notifier();
                Ok(())
            }
            Ok(false) => Err(ServiceError::not_found(format!("no silence {id:?}"))),
            Err(err) => Err(err.into()),
        };
        self.audit(caller, "silences.delete", &format!("silence:{id}"), &result)
            .await;
        result
    }

    pub async fn deliveries(&self, caller: &Principal) -> Result<DeliveryList, ServiceError> {
        self.audited_read(caller, "deliveries.list", "deliveries", async {
            let records = self.store().list_deliveries(200).await?;
            Ok(DeliveryList {
                deliveries: records.into_iter().map(delivery_view).collect(),
            })
        })
        .await
    }

    /// Sends a test notification to `request.contact` on each of its channels (once, no retries, no rate
    /// limit) and reports what each answered; each delivery is logged like a real one.
    pub async fn notify_test(
        &self,
        caller: &Principal,
        request: &NotifyTestRequest,
    ) -> Result<NotifyTestResult, ServiceError> {
        caller.require(Permission::OperateAlerts)?;
        let result = self.notify_test_unaudited(caller, request).await;
        self.audit(
            caller,
            "notify.test",
            &format!("contact:{}", request.contact),
            &result,
        )
        .await;
        result
    }

    async fn notify_test_unaudited(
        &self,
        caller: &Principal,
        request: &NotifyTestRequest,
    ) -> Result<NotifyTestResult, ServiceError> {
        let policy = &self.config().notify.policy;
        if policy.contact(&request.contact).is_none() {
            let known: Vec<&str> = policy.contacts().map(|contact| contact.name()).collect();
            return Err(ServiceError::not_found(format!(
                "no contact {:?} in the server's [notify] section; known: {}",
                request.contact,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let mut routes = self.alerting().channels.routes_of(policy, &request.contact);
        if let Some(only) = &request.channel {
            let available: Vec<String> = routes.iter().map(|(name, _, _)| name.clone()).collect();
            routes.retain(|(name, _, _)| name == only);
            if routes.is_empty() {
                return Err(ServiceError::not_found(format!(
                    "contact {:?} has no channel {only:?}; it has: {}",
                    request.contact,
                    available.join(", ")
                )));
            }
        }
        let now_ms = self.now_ms();
        let by = match caller {
            Principal::User { name, .. } => name.clone(),
            Principal::Agent { id, .. } => id.clone(),
        };
        let notification = cloudkeep_notify::Notification {
            id: cloudkeep_stdx::ids::random_hex(16),
            status: cloudkeep_notify::NotificationStatus::Firing,
            severity: State::Warning.as_str().into(),
            cloud: String::new(),
            isv: String::new(),
            tenant: String::new(),
            platform: "cloudkeep-test".into(),
            alerts: vec![cloudkeep_notify::NotificationAlert {
                host: "test".into(),
                monitor: "notify-test".into(),
                metric: None,
                state: State::Warning.as_str().into(),
                previous_state: State::Ok.as_str().into(),
                value: None,
                threshold: None,
                level_name: None,
                since_ms: now_ms,
                message: format!("test notification sent by {by}; no action needed"),
                labels: BTreeMap::new(),
                acknowledged_by: None,
            }],
            escalation_level: 0,
            dashboard_url: self.config().notify.dashboard_url.clone(),
            sent_at_ms: now_ms,
            test: true,
        };
        let mut deliveries = Vec::new();
        for (channel_name, channel, destination) in routes {
            let outcome = cloudkeep_notify::deliver(&channel, &destination, &notification).await;
            let record = DeliveryRecord {
                id: cloudkeep_stdx::ids::random_hex(16),
                at_ms: self.now_ms(),
                notification_id: notification.id.clone(),
                platform: notification.platform.clone(),
                contact: request.contact.clone(),
                channel: channel_name,
                status: if outcome.is_ok() { "sent" } else { "failed" }.into(),
                attempts: 1,
                error: outcome.err().map(|err| err.to_string()),
            };
            self.store().insert_delivery(&record).await?;
            deliveries.push(delivery_view(record));
        }
        Ok(NotifyTestResult { deliveries })
    }

    /// The monitors the calling agent's host runs and the databases it backs up, from its platform's
    /// spec and the server's `[backup]` repositories.
    pub async fn agent_config(&self, caller: &Principal) -> Result<AgentConfig, ServiceError> {
        caller.require(Permission::AgentReport)?;
        let Principal::Agent { host, platform, .. } = caller else {
            return Err(ServiceError::forbidden("only agents have an agent config"));
        };
        let Some(record) = self.store().get_platform(platform).await? else {
            return Err(ServiceError::not_found(format!("no platform {platform:?}")));
        };
        let spec: cloudkeep_model::PlatformSpec = serde_json::from_str(&record.spec_json)
            .map_err(|err| ServiceError::internal("reading a stored spec", &err))?;
        let host_name = cloudkeep_model::HostName::new(host)
            .map_err(|err| ServiceError::bad_request(err.to_string()))?;
        let components: BTreeMap<String, String> =
            spec.host(&host_name)
                .map(|host| {
                    host.components
                        .iter()
                        .flat_map(|component| {
                            component.monitors.iter().map(|monitor| {
                                (monitor.name.to_string(), component.name.to_string())
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
        let backups = match spec.host(&host_name) {
            Some(host) => self.backup_jobs(&spec, host).await?,
            None => Vec::new(),
        };
        let monitors = spec
            .monitors_for_host(&host_name)
            .into_iter()
            .map(|monitor| AgentMonitor {
                name: monitor.name.to_string(),
                kind: monitor.kind.as_str().into(),
                component: components.get(monitor.name.as_str()).cloned(),
                interval_ms: monitor.interval.map_or(60_000, |interval| {
                    i64::try_from(interval.as_millis()).unwrap_or(i64::MAX)
                }),
                options: monitor.options.clone(),
            })
            .collect();
        Ok(AgentConfig {
            revision: record.revision,
            monitors,
            backups,
        })
    }

    /// Keeps the calling agent's latest check messages for the alerts their statuses raise.
    pub async fn report_checks(
        &self,
        caller: &Principal,
        report: &CheckReport,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AgentReport)?;
        let Principal::Agent { host, .. } = caller else {
            return Err(ServiceError::forbidden("only agents report checks"));
        };
        for result in &report.results {
            let message: String = result.message.chars().take(1024).collect();
            self.alerting()
                .engine
                .check_message(host, &result.monitor, &message);
        }
        Ok(())
    }

    /// Stores an event; a failure is logged (the fact it records already happened).
    pub(crate) async fn record_event(&self, event: EventRecord) {
        if let Err(err) = self.store().insert_event(&event).await {
            tracing::error!(kind = %event.kind, error = %err, "cannot store an event");
        }
    }
}

/// An event about `alert` at `at_ms`, to be completed by the caller.
pub(crate) fn event_for_alert(alert: &AlertRecord, at_ms: i64) -> EventRecord {
    EventRecord {
        id: cloudkeep_stdx::ids::random_hex(16),
        at_ms,
        kind: String::new(),
        cloud: alert.cloud.clone(),
        isv: alert.isv.clone(),
        tenant: alert.tenant.clone(),
        platform: alert.platform.clone(),
        host: alert.host.clone(),
        monitor: alert.monitor.clone(),
        alert_key: alert.alert_key.clone(),
        state_from: None,
        state_to: None,
        value: alert.value,
        threshold: alert.threshold,
        message: String::new(),
        actor: None,
        data_json: "{}".into(),
    }
}

fn event_view(record: EventRecord) -> EventView {
    EventView {
        id: record.id,
        at_ms: record.at_ms,
        kind: record.kind,
        cloud: record.cloud,
        isv: record.isv,
        tenant: record.tenant,
        platform: record.platform,
        host: record.host,
        monitor: record.monitor,
        alert_id: record.alert_key,
        state_from: record.state_from,
        state_to: record.state_to,
        value: record.value,
        threshold: record.threshold,
        message: record.message,
        actor: record.actor,
        data: serde_json::from_str(&record.data_json).unwrap_or(serde_json::Value::Null),
    }
}

pub(crate) fn alert_view(record: AlertRecord) -> AlertView {
    AlertView {
        id: record.alert_key,
        source: record.source,
        cloud: record.cloud,
        isv: record.isv,
        tenant: record.tenant,
        platform: record.platform,
        host: record.host,
        monitor: record.monitor,
        metric: record.metric,
        labels: serde_json::from_str(&record.labels_json).unwrap_or_default(),
        state: record.state,
        since_ms: record.since_ms,
        value: record.value,
        threshold: record.threshold,
        level: record.level_name,
        message: record.message,
        flapping: record.flapping,
        acked_by: record.acked_by,
        acked_at_ms: record.acked_at_ms,
        ack_comment: record.ack_comment,
        escalation_level: record.escalation_level,
    }
}

pub(crate) fn maintenance_view(record: MaintenanceRecord, now_ms: i64) -> Option<MaintenanceView> {
    let scope: ScopeView = serde_json::from_str(&record.scope_json).ok()?;
    let schedule: ScheduleView = serde_json::from_str(&record.schedule_json).ok()?;
    let active = maintenance_window(&record.id, &scope, &schedule)
        .map(|window| window.is_active(now_ms))
        .unwrap_or(false);
    Some(MaintenanceView {
        id: record.id,
        scope,
        schedule,
        comment: record.comment,
        created_by: record.created_by,
        created_at_ms: record.created_at_ms,
        active,
    })
}

fn silence_view(record: SilenceRecord) -> Option<SilenceView> {
    Some(SilenceView {
        matchers: serde_json::from_str(&record.matchers_json).ok()?,
        id: record.id,
        expires_at_ms: record.expires_at_ms,
        comment: record.comment,
        created_by: record.created_by,
        created_at_ms: record.created_at_ms,
    })
}

fn delivery_view(record: DeliveryRecord) -> DeliveryView {
    DeliveryView {
        id: record.id,
        at_ms: record.at_ms,
        notification_id: record.notification_id,
        platform: record.platform,
        contact: record.contact,
        channel: record.channel,
        status: record.status,
        attempts: record.attempts,
        error: record.error,
    }
}
