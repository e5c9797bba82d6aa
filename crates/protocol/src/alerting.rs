//! JSON bodies of the alerting endpoints: events, alerts and acknowledgements, maintenance
//! windows, silences, the status roll-up, deliveries, and what agents fetch and report for checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event: a timestamped fact about a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub at_ms: i64,
    /// `state_change`, `acknowledged`, `notification_sent`, `notification_failed`,
    /// `maintenance_started`, `maintenance_ended`, `flapping_started`, `flapping_ended`, `external_alert`.
    pub kind: String,
    pub cloud: String,
    pub isv: String,
    pub tenant: String,
    pub platform: String,
    pub host: String,
    pub monitor: String,
    pub alert_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// `GET /api/v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub events: Vec<EventView>,
}

/// Query parameters of `GET /api/v1/events`; every one narrows the result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// Start of the time range, Unix ms (inclusive).
    pub from_ms: Option<i64>,
    /// End of the time range, Unix ms (exclusive).
    pub to_ms: Option<i64>,
    /// Comma-separated event kinds.
    pub kind: Option<String>,
    pub cloud: Option<String>,
    pub isv: Option<String>,
    pub tenant: Option<String>,
    pub platform: Option<String>,
    pub host: Option<String>,
    pub alert: Option<String>,
    /// At most this many (default 100, at most 10 000).
    pub limit: Option<u32>,
}

/// The current state of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Short stable id; `cloudkeep ack ID`.
    pub id: String,
    /// `rule`, `check`, `heartbeat` or `external`.
    pub source: String,
    pub cloud: String,
    pub isv: String,
    pub tenant: String,
    pub platform: String,
    pub host: String,
    pub monitor: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub message: String,
    pub flapping: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_comment: Option<String>,
    pub escalation_level: i64,
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

/// `POST /api/v1/alerts/{id}/ack`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AckRequest {
    #[serde(default)]
    pub comment: String,
}

/// Where a maintenance window or status applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScopeView {
    Cloud(String),
    Platform(String),
    Host { platform: String, host: String },
}

/// When a maintenance window is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleView {
    OneOff {
        start_ms: i64,
        end_ms: i64,
    },
    Recurring {
        /// Five-field cron expression for the start, e.g. `0 2 * * SUN`.
        cron: String,
        duration_ms: i64,
        /// IANA time zone of the cron expression (default UTC).
        #[serde(default)]
        timezone: Option<String>,
        #[serde(default)]
        until_ms: Option<i64>,
    },
}

/// `POST /api/v1/maintenance`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceCreate {
    pub scope: ScopeView,
    pub schedule: ScheduleView,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceView {
    pub id: String,
    pub scope: ScopeView,
    pub schedule: ScheduleView,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
    /// Whether the window is active now.
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceList {
    pub windows: Vec<MaintenanceView>,
}

/// What a silence matches; at least one field is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceMatchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
}

/// `POST /api/v1/silences`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SilenceCreate {
    pub matchers: SilenceMatchers,
    pub expires_at_ms: i64,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SilenceView {
    pub id: String,
    pub matchers: SilenceMatchers,
    pub expires_at_ms: i64,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SilenceList {
    pub silences: Vec<SilenceView>,
}

/// The worst state of one node of the roll-up, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusNode {
    /// `cloud`, `isv`, `tenant`, `platform` or `host`.
    pub level: String,
    pub name: String,
    pub state: String,
    /// The alert that decides the state (the worst; the oldest among equals), if not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusReason {
    pub alert_id: String,
    pub host: String,
    pub monitor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub message: String,
}

/// `GET /api/v1/status`: every cloud, isv, tenant, platform and host with its rolled-up state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusList {
    pub nodes: Vec<StatusNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub at_ms: i64,
    pub notification_id: String,
    pub platform: String,
    pub contact: String,
    pub channel: String,
    pub status: String,
    pub attempts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// `POST /api/v1/notify/test`: send a test notification to one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyTestRequest {
    /// A contact of the server's `[notify]` section.
    pub contact: String,
    /// Only this channel of the contact (`email`, `sms` or `webhook:<name>`); every channel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// What each channel of the contact answered to a test notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotifyTestResult {
    pub deliveries: Vec<DeliveryView>,
}

/// One monitor an agent runs, from `GET /api/v1/agent/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentMonitor {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub interval_ms: i64,
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// `GET /api/v1/agent/config`: what the calling agent's host runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentConfig {
    /// Changes whenever the platform spec changes; agents rebuild their checks then.
    pub revision: i64,
    pub monitors: Vec<AgentMonitor>,
    /// The databases this host backs up (absent from older servers).
    #[serde(default)]
    pub backups: Vec<crate::backup::AgentBackupJob>,
}

/// One check run's status and message (the metrics travel through remote_write).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub monitor: String,
    pub kind: String,
    /// Nagios code: 0 ok, 1 warning, 2 critical, 3 unknown.
    pub status: u8,
    pub message: String,
    pub at_ms: i64,
}

/// `POST /api/v1/agent/checks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckReport {
    pub results: Vec<CheckResult>,
}

/// One alert of Alertmanager's `POST /api/v2/alerts` (its `postableAlert`), as Prometheus and vmalert send it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PostableAlert {
    /// Identity of the alert; `alertname` is required. `platform`, `host` (or `instance`) and `severity`
    /// (`critical`, `warning`, `info`) place and grade it in Cloudkeep.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `summary` or `description` becomes the alert's message.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// RFC 3339; now when absent.
    #[serde(default, rename = "startsAt", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// RFC 3339; the alert resolves at this instant unless sent again. In the past: resolved now.
    /// Absent: 5 minutes after it was received (Alertmanager's `resolve_timeout`).
    #[serde(default, rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// Link to the source of the alert (the rule's expression in Prometheus).
    #[serde(
        default,
        rename = "generatorURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}
