//! Alerts from outside: Alertmanager's `POST /api/v2/alerts`, so that existing Prometheus or vmalert
//! rules raise Cloudkeep alerts and use its routing, maintenance, silences and notifications.
//!
//! An external alert is identified by its labels (like Alertmanager's fingerprint). It is bad from when it
//! is received until its `endsAt`: senders repeat firing alerts with a later `endsAt`, and send a past
//! `endsAt` when the condition clears. The evaluator's tick resolves alerts whose `endsAt` passed.

use std::collections::BTreeMap;

use cloudkeep_model::State;
use cloudkeep_protocol::alerting::PostableAlert;

use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

/// Alertmanager's default `resolve_timeout`: an alert sent without `endsAt` resolves this long after.
pub const DEFAULT_RESOLVE_TIMEOUT_MS: i64 = 5 * 60_000;
/// Most alerts accepted in one request.
pub const MAX_ALERTS_PER_REQUEST: usize = 10_000;
/// Longest label or annotation value kept.
const MAX_VALUE_LEN: usize = 4096;

/// One validated external alert.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAlert {
    /// `external/<alertname>{labels}`: the alert's stable key.
    pub key: String,
    pub platform: String,
    pub host: String,
    /// The `alertname` label.
    pub monitor: String,
    /// The state while it fires.
    pub severity: State,
    pub message: String,
    /// Every label but `alertname`, `platform` and `host`.
    pub labels: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
}

impl Server {
    /// Accepts alerts in Alertmanager's v2 format; all or nothing: one invalid alert rejects the request
    /// with the index and field of every problem.
    pub async fn raise_external_alerts(
        &self,
        caller: &Principal,
        alerts: &[PostableAlert],
    ) -> Result<usize, ServiceError> {
        caller.require(Permission::RaiseAlerts)?;
        let result = self.raise_external_unaudited(alerts).await;
        self.audit(caller, "alerts.raise_external", "alerts", &result)
            .await;
        result
    }

    async fn raise_external_unaudited(
        &self,
        alerts: &[PostableAlert],
    ) -> Result<usize, ServiceError> {
        if alerts.len() > MAX_ALERTS_PER_REQUEST {
            return Err(ServiceError::bad_request(format!(
                "{} alerts in one request; at most {MAX_ALERTS_PER_REQUEST}",
                alerts.len()
            )));
        }
        let now_ms = self.now_ms();
        let platforms = self.store().list_platforms().await?;
        let mut accepted = Vec::with_capacity(alerts.len());
        let mut problems = Vec::new();
        for (index, alert) in alerts.iter().enumerate() {
            match validate(alert, now_ms) {
                Ok(external) => accepted.push(external),
                Err(problem) => problems.push(format!("alerts[{index}].{problem}")),
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::bad_request(format!(
                "{} of {} alert(s) are invalid; none was accepted",
                problems.len(),
                alerts.len()
            ))
            .with_details(problems));
        }
        let count = accepted.len();
        let placed = accepted
            .into_iter()
            .map(|alert| {
                let record = platforms.iter().find(|p| p.name == alert.platform);
                let scope = super::rules::Scope {
                    cloud: record.map(|p| p.cloud.clone()).unwrap_or_default(),
                    isv: record.map(|p| p.isv.clone()).unwrap_or_default(),
                    tenant: record.map(|p| p.tenant.clone()).unwrap_or_default(),
                    platform: alert.platform.clone(),
                    host: alert.host.clone(),
                };
                (scope, alert)
            })
            .collect();
        self.alerting().engine.external(placed);
        Ok(count)
    }
}

/// Checks one alert and derives its Cloudkeep identity; the error is relative to the alert.
pub fn validate(alert: &PostableAlert, now_ms: i64) -> Result<ExternalAlert, String> {
    let Some(alertname) = alert
        .labels
        .get("alertname")
        .filter(|name| !name.is_empty())
    else {
        return Err("labels.alertname: missing; every alert needs a name".into());
    };
    for (name, value) in alert.labels.iter().chain(alert.annotations.iter()) {
        if name.is_empty() {
            return Err("labels: an empty label name".into());
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(format!(
                "{name}: value of {} bytes; at most {MAX_VALUE_LEN}",
                value.len()
            ));
        }
    }
    let severity = match alert.labels.get("severity").map(String::as_str) {
        None | Some("critical" | "page" | "error") => State::Critical,
        Some("warning" | "warn" | "info" | "notice") => State::Warning,
        Some(other) => {
            return Err(format!(
                "labels.severity: {other:?} is not one of critical, warning, info"
            ));
        }
    };
    let starts_at_ms = match &alert.starts_at {
        Some(text) if !text.is_empty() => {
            parse_time(text).map_err(|err| format!("startsAt: {err}"))?
        }
        _ => now_ms,
    };
    let ends_at_ms = match &alert.ends_at {
        // Alertmanager's zero time (`0001-01-01T00:00:00Z`) also means "not set".
        Some(text) if !text.is_empty() && !text.starts_with("0001-01-01") => {
            parse_time(text).map_err(|err| format!("endsAt: {err}"))?
        }
        _ => now_ms.saturating_add(DEFAULT_RESOLVE_TIMEOUT_MS),
    };
    let host = alert
        .labels
        .get("host")
        .or_else(|| alert.labels.get("instance"))
        .cloned()
        .unwrap_or_default();
    let platform = alert
        .labels
        .get("platform")
        .cloned()
        .unwrap_or_else(|| "external".into());
    let labels: BTreeMap<String, String> = alert
        .labels
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "alertname" | "platform" | "host"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut key = format!("external/{platform}/{host}/{alertname}");
    let fingerprint: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    if !fingerprint.is_empty() {
        key.push('{');
        key.push_str(&fingerprint.join(","));
        key.push('}');
    }
    let summary = alert
        .annotations
        .get("summary")
        .or_else(|| alert.annotations.get("description"))
        .cloned()
        .unwrap_or_else(|| alertname.clone());
    let message = match &alert.generator_url {
        Some(url) if !url.is_empty() => format!("{summary} (from {url})"),
        _ => summary,
    };
    Ok(ExternalAlert {
        key,
        platform,
        host,
        monitor: alertname.clone(),
        severity,
        message,
        labels,
        starts_at_ms,
        ends_at_ms,
    })
}

fn parse_time(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|timestamp| timestamp.as_millisecond())
        .map_err(|err| format!("{text:?} is not an RFC 3339 time: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> PostableAlert {
        PostableAlert {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PostableAlert::default()
        }
    }

    #[test]
    fn labels_place_and_grade_the_alert() {
        let mut raw = alert(&[
            ("alertname", "HighLatency"),
            ("platform", "shop"),
            ("instance", "web1:9100"),
            ("severity", "warning"),
            ("job", "web"),
        ]);
        raw.annotations
            .insert("summary".into(), "p99 latency above 2 s".into());
        raw.ends_at = Some("2026-11-22T10:05:00Z".into());
        let external = validate(&raw, 1_000).unwrap();
        assert_eq!(external.platform, "shop");
        assert_eq!(external.host, "web1:9100");
        assert_eq!(external.monitor, "HighLatency");
        assert_eq!(external.severity, State::Warning);
        assert_eq!(external.message, "p99 latency above 2 s");
        assert_eq!(external.starts_at_ms, 1_000);
        assert_eq!(external.ends_at_ms, 1_795_341_900_000);
        assert_eq!(
            external.key,
            "external/shop/web1:9100/HighLatency{instance=\"web1:9100\",job=\"web\",severity=\"warning\"}"
        );
    }

    #[test]
    fn defaults_are_critical_external_and_five_minutes() {
        let external = validate(&alert(&[("alertname", "Down")]), 7).unwrap();
        assert_eq!(external.severity, State::Critical);
        assert_eq!(external.platform, "external");
        assert_eq!(external.ends_at_ms, 7 + DEFAULT_RESOLVE_TIMEOUT_MS);
        let mut zero = alert(&[("alertname", "Down")]);
        zero.ends_at = Some("0001-01-01T00:00:00Z".into());
        assert_eq!(
            validate(&zero, 7).unwrap().ends_at_ms,
            7 + DEFAULT_RESOLVE_TIMEOUT_MS
        );
    }

    #[test]
    fn bad_alerts_say_which_field() {
        assert!(
            validate(&alert(&[("job", "x")]), 0)
                .unwrap_err()
                .starts_with("labels.alertname: missing")
        );
        let err = validate(&alert(&[("alertname", "A"), ("severity", "meh")]), 0).unwrap_err();
        assert!(err.starts_with("labels.severity: \"meh\""), "{err}");
        let mut bad_time = alert(&[("alertname", "A")]);
        bad_time.ends_at = Some("yesterday".into());
        let err = validate(&bad_time, 0).unwrap_err();
        assert!(err.starts_with("endsAt: \"yesterday\""), "{err}");
    }
}
