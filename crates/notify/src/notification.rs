//! What to tell: one grouped notification about one platform, as the notifier hands it to a channel.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One grouped notification about one platform (one or more alerts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id of this notification (dedup key; the Alertmanager `groupKey`).
    pub id: String,
    /// Firing, or resolved when every alert in it is ok.
    pub status: NotificationStatus,
    /// Worst state among the alerts: `critical`, `warning`, `unknown` or `ok`.
    pub severity: String,
    /// Default cloud (site) of the platform.
    pub cloud: String,
    /// The vendor organisation running the platform.
    pub isv: String,
    /// The isv's customer the platform serves.
    pub tenant: String,
    /// Platform name, e.g. `acme-prod`.
    pub platform: String,
    /// The alerts, in the order they should be shown.
    pub alerts: Vec<NotificationAlert>,
    /// 0 for the first notice; n for the n-th escalation of an unacknowledged alert.
    #[serde(default)]
    pub escalation_level: u32,
    /// Link to the platform (or alert) on the dashboard.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// When the notifier sent it, Unix milliseconds.
    pub sent_at_ms: i64,
    /// A test-send from an operator: rendered so nobody mistakes it for a real alert.
    #[serde(default)]
    pub test: bool,
}

/// Whether a notification raises or clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// At least one alert is not ok.
    Firing,
    /// Every alert is ok again.
    Resolved,
}

impl NotificationStatus {
    /// `firing` or `resolved`, as in Alertmanager.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Firing => "firing",
            NotificationStatus::Resolved => "resolved",
        }
    }
}

/// One monitor's state change on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationAlert {
    /// Host name, e.g. `app1.acme-prod`.
    pub host: String,
    /// Monitor name, e.g. `cpu`.
    pub monitor: String,
    /// The metric the rule watches, e.g. `host_cpu_busy_percent`.
    #[serde(default)]
    pub metric: Option<String>,
    /// State now: `critical`, `warning`, `unknown` or `ok`.
    pub state: String,
    /// State before this change.
    pub previous_state: String,
    /// Value that decided the state, if any.
    #[serde(default)]
    pub value: Option<f64>,
    /// Threshold of the level that was crossed, if any.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Name of the rule level, e.g. `cpu overloaded`.
    #[serde(default)]
    pub level_name: Option<String>,
    /// Since when the monitor has been in `state`, Unix milliseconds.
    pub since_ms: i64,
    /// Human explanation from the evaluator.
    #[serde(default)]
    pub message: String,
    /// Extra labels (from the spec or the series).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Who acknowledged the alert, if someone did.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
}
