//! Alertmanager webhook payload, version "4": what Alertmanager's `webhook_config` receivers already parse.
//!
//! Field names and shapes follow Alertmanager's `notify/webhook` Message and `template.Data`; the
//! fingerprint is Prometheus' label-set fingerprint (FNV-1a 64 over sorted names and values).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::notification::{Notification, NotificationAlert, NotificationStatus};
use crate::render::{Symbols, alert_summary, format_number};
use crate::time::rfc3339_utc;

/// Alertmanager writes Go's zero time for an alert that has not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// The receiver name in the payload: the sender is Cloudkeep, not an Alertmanager route.
const RECEIVER: &str = "cloudkeep";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    version: &'static str,
    group_key: String,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'static str,
    group_labels: BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: String,
    alerts: Vec<Alert>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// The Alertmanager v4 webhook body for this notification; `groupKey` is the notification id.
pub fn alertmanager_payload(notification: &Notification) -> serde_json::Value {
    let alerts: Vec<Alert> = notification
        .alerts
        .iter()
        .map(|alert| to_alertmanager(notification, alert))
        .collect();
    let group_labels = BTreeMap::from([
        ("cloud".to_owned(), notification.cloud.clone()),
        ("isv".to_owned(), notification.isv.clone()),
        ("platform".to_owned(), notification.platform.clone()),
        ("tenant".to_owned(), notification.tenant.clone()),
    ]);
    let message = Message {
        version: "4",
        group_key: notification.id.clone(),
        truncated_alerts: 0,
        status: notification.status.as_str(),
        receiver: RECEIVER,
        group_labels,
        common_labels: common(alerts.iter().map(|alert| &alert.labels)),
        common_annotations: common(alerts.iter().map(|alert| &alert.annotations)),
        external_url: notification.dashboard_url.clone().unwrap_or_default(),
        alerts,
    };
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_value(message).unwrap_or(serde_json::Value::Null)
}

fn to_alertmanager(notification: &Notification, alert: &NotificationAlert) -> Alert {
    let resolved = alert.state == "ok" || notification.status == NotificationStatus::Resolved;
    // A resolved alert keeps the labels it fired with, so receivers match it to the firing one.
    let severity = if resolved {
        alert.previous_state.clone()
    } else {
        alert.state.clone()
    };
    let mut labels: BTreeMap<String, String> = alert.labels.clone();
    let mut own = vec![
        (
            "alertname",
            alert
                .level_name
                .clone()
                .unwrap_or_else(|| alert.monitor.clone()),
        ),
        ("severity", severity),
        ("cloud", notification.cloud.clone()),
        ("isv", notification.isv.clone()),
        ("tenant", notification.tenant.clone()),
        ("platform", notification.platform.clone()),
        ("host", alert.host.clone()),
        ("monitor", alert.monitor.clone()),
    ];
    if let Some(metric) = &alert.metric {
        own.push(("metric", metric.clone()));
    }
    // Our own labels win over a spec label of the same name: routing depends on them.
    for (name, value) in own {
        labels.insert(name.to_owned(), value);
    }
    let mut annotations = BTreeMap::from([
        (
            "summary".to_owned(),
            format!(
                "{}: {}",
                notification.platform,
                alert_summary(&notification.platform, alert, Symbols::Unicode)
            ),
        ),
        ("description".to_owned(), alert.message.clone()),
        ("state".to_owned(), alert.state.clone()),
        ("previous_state".to_owned(), alert.previous_state.clone()),
    ]);
    if let Some(value) = alert.value {
        annotations.insert("value".to_owned(), format_number(value));
    }
    if let Some(threshold) = alert.threshold {
        annotations.insert("threshold".to_owned(), format_number(threshold));
    }
    if let Some(who) = &alert.acknowledged_by {
        annotations.insert("acknowledged_by".to_owned(), who.clone());
    }
    let since = rfc3339_utc(alert.since_ms);
    Alert {
        status: if resolved { "resolved" } else { "firing" },
        fingerprint: fingerprint(&labels),
        labels,
        annotations,
        // For a cleared alert we know when it ended, not when it began: both carry the clear time.
        starts_at: since.clone(),
        ends_at: if resolved {
            since
        } else {
            ZERO_TIME.to_owned()
        },
        generator_url: notification.dashboard_url.clone().unwrap_or_default(),
    }
}

/// The pairs every map shares (Alertmanager's commonLabels / commonAnnotations).
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.clone();
    for map in maps {
        shared.retain(|name, value| map.get(name) == Some(value));
    }
    shared
}

/// Prometheus' `LabelSet.Fingerprint`: FNV-1a 64 over each sorted name and value, each followed by 0xff.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::payload::tests::sorted_pretty;
    use crate::render::tests::{firing_three, resolved_one};

    #[test]
    fn fingerprint_matches_prometheus() {
        // Empty label set: FNV-1a 64 offset basis, as in Prometheus' model.LabelSet{}.Fingerprint().
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
        let one = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
        let other = BTreeMap::from([("a".to_owned(), "c".to_owned())]);
        assert_ne!(fingerprint(&one), fingerprint(&other));
        assert_eq!(fingerprint(&one).len(), 16);
    }

    #[test]
    fn firing_group() {
        let payload = alertmanager_payload(&firing_three());
        let alerts = payload["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 3);
        assert_eq!(alerts[2]["labels"]["alertname"], "heartbeat");
        assert_eq!(alerts[2]["labels"]["severity"], "unknown");
        assert_eq!(alerts[1]["annotations"]["acknowledged_by"], "alice");
        expect![[r#"
            {
              "alerts": [
                {
                  "annotations": {
                    "description": "cpu busy 97.2% for 2m (critical at 95%)",
                    "previous_state": "warning",
                    "state": "critical",
                    "summary": "acme-prod: cpu overloaded on app1 (97.2 ≥ 95)",
                    "threshold": "95",
                    "value": "97.2"
                  },
                  "endsAt": "0001-01-01T00:00:00Z",
                  "fingerprint": "677d468e70cba820",
                  "generatorURL": "https://noc.example.org/platforms/acme-prod",
                  "labels": {
                    "alertname": "cpu overloaded",
                    "cloud": "gc-uk1",
                    "host": "app1.acme-prod",
                    "isv": "acme",
                    "metric": "host_cpu_busy_percent",
                    "monitor": "cpu",
                    "platform": "acme-prod",
                    "severity": "critical",
                    "team": "ops",
                    "tenant": "globex"
                  },
                  "startsAt": "2026-03-01T11:48:00Z",
                  "status": "firing"
                }
              ],
              "commonAnnotations": {},
              "commonLabels": {
                "cloud": "gc-uk1",
                "isv": "acme",
                "platform": "acme-prod",
                "tenant": "globex"
              },
              "externalURL": "https://noc.example.org/platforms/acme-prod",
              "groupKey": "ntf-acme-prod-7f3a",
              "groupLabels": {
                "cloud": "gc-uk1",
                "isv": "acme",
                "platform": "acme-prod",
                "tenant": "globex"
              },
              "receiver": "cloudkeep",
              "status": "firing",
              "truncatedAlerts": 0,
              "version": "4"
            }"#]]
        .assert_eq(&sorted_pretty(&serde_json::json!({
            "alerts": [alerts[0]],
            "commonAnnotations": payload["commonAnnotations"],
            "commonLabels": payload["commonLabels"],
            "externalURL": payload["externalURL"],
            "groupKey": payload["groupKey"],
            "groupLabels": payload["groupLabels"],
            "receiver": payload["receiver"],
            "status": payload["status"],
            "truncatedAlerts": payload["truncatedAlerts"],
            "version": payload["version"],
        })));
        expect![[r#"
            {
              "cloud": "gc-uk1",
              "isv": "acme",
              "platform": "acme-prod",
              "tenant": "globex"
            }"#]]
        .assert_eq(&sorted_pretty(&payload["commonLabels"]));
    }

    #[test]
    fn resolved_alert_keeps_its_firing_labels() {
        let firing = alertmanager_payload(&crate::render::tests::firing_one());
        let resolved = alertmanager_payload(&resolved_one());
        assert_eq!(resolved["status"], "resolved");
        let alert = &resolved["alerts"][0];
        assert_eq!(alert["status"], "resolved");
        assert_eq!(alert["labels"], firing["alerts"][0]["labels"]);
        assert_eq!(alert["fingerprint"], firing["alerts"][0]["fingerprint"]);
        assert_eq!(alert["endsAt"], "2026-03-01T11:59:30Z");
        assert_eq!(
            alert["annotations"]["summary"],
            "acme-prod: cpu overloaded on app1 (now 41)"
        );
    }
}
