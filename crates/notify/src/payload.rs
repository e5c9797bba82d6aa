//! Machine payloads of a notification for webhooks: Cloudkeep's own JSON, Slack, Alertmanager v4.

mod alertmanager;
mod slack;

pub use alertmanager::alertmanager_payload;
pub use slack::slack_payload;

use serde::Serialize;

use crate::notification::Notification;
use crate::render::render_subject;

/// The `version` of Cloudkeep's own webhook JSON; receivers switch on it.
pub const JSON_PAYLOAD_VERSION: &str = "cloudkeep.notification.v1";

#[derive(Serialize)]
struct JsonPayload<'a> {
    version: &'static str,
    /// The email subject, for receivers that only want one line.
    summary: String,
    #[serde(flatten)]
    notification: &'a Notification,
}

/// `{"version":"cloudkeep.notification.v1","summary":…, …every field of the notification}`.
pub fn json_payload(notification: &Notification) -> serde_json::Value {
    let payload = JsonPayload {
        version: JSON_PAYLOAD_VERSION,
        summary: render_subject(notification),
        notification,
    };
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_value(payload).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
pub(crate) mod tests {
    use expect_test::expect;

    use super::*;
    use crate::render::tests::firing_one;

    /// Pretty JSON with keys sorted at every level, whatever serde_json's map order is in this build.
    pub(crate) fn sorted_pretty(value: &serde_json::Value) -> String {
        fn sorted(value: &serde_json::Value) -> serde_json::Value {
            match value {
                serde_json::Value::Object(map) => {
                    let mut entries: Vec<_> = map.iter().collect();
                    entries.sort_by(|left, right| left.0.cmp(right.0));
                    serde_json::Value::Object(
                        entries
                            .into_iter()
                            .map(|(key, value)| (key.clone(), sorted(value)))
                            .collect(),
                    )
                }
                serde_json::Value::Array(items) => {
                    serde_json::Value::Array(items.iter().map(sorted).collect())
                }
                other => other.clone(),
            }
        }
        serde_json::to_string_pretty(&sorted(value)).unwrap()
    }

    #[test]
    fn json_payload_is_the_notification_with_a_version() {
        let payload = json_payload(&firing_one());
        expect![[r#"
            {
              "alerts": [
                {
                  "acknowledged_by": null,
                  "host": "app1.acme-prod",
                  "labels": {
                    "team": "ops"
                  },
                  "level_name": "cpu overloaded",
                  "message": "cpu busy 97.2% for 2m (critical at 95%)",
                  "metric": "host_cpu_busy_percent",
                  "monitor": "cpu",
                  "previous_state": "warning",
                  "since_ms": 1772365680000,
                  "state": "critical",
                  "threshold": 95.0,
                  "value": 97.234
                }
              ],
              "cloud": "gc-uk1",
              "dashboard_url": "https://noc.example.org/platforms/acme-prod",
              "escalation_level": 0,
              "id": "ntf-acme-prod-7f3a",
              "isv": "acme",
              "platform": "acme-prod",
              "sent_at_ms": 1772366400000,
              "severity": "critical",
              "status": "firing",
              "summary": "[CRITICAL] acme-prod: cpu overloaded on app1 (97.2 ≥ 95)",
              "tenant": "globex",
              "test": false,
              "version": "cloudkeep.notification.v1"
            }"#]]
        .assert_eq(&sorted_pretty(&payload));
        // A receiver can read it back as a Notification.
        let back: Notification = serde_json::from_value(payload).unwrap();
        assert_eq!(back, firing_one());
    }
}
