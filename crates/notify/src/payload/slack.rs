//! Slack incoming-webhook payload: a `text` fallback plus Block Kit blocks (header, context, one section per alert, a button).

use serde_json::{Value, json};

use crate::notification::{Notification, NotificationAlert};
use crate::render::{Symbols, render_subject, severity_word, single_line, value_against_threshold};
use crate::time::rfc3339_utc;

/// Slack accepts at most 50 blocks; the rest of the alerts are counted in one context line.
const MAX_ALERT_SECTIONS: usize = 40;
/// Slack's limit for a header's plain text.
const HEADER_MAX_CHARS: usize = 150;
/// Slack's limit for a section's text is 3000; messages are cut well before.
const MESSAGE_MAX_CHARS: usize = 1000;

/// `{"text": subject, "blocks": [...]}` for a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat…).
pub fn slack_payload(notification: &Notification) -> Value {
    let subject = render_subject(notification);
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": cut(&subject, HEADER_MAX_CHARS), "emoji": true }
    })];
    let mut context = format!(
        "*{}* · platform *{}* · tenant {} · isv {} · cloud {}",
        severity_word(notification),
        escape(&notification.platform),
        escape(&notification.tenant),
        escape(&notification.isv),
        escape(&notification.cloud)
    );
    if notification.escalation_level > 0 {
        context.push_str(&format!(
            " · escalation level {}: not acknowledged yet",
            notification.escalation_level
        ));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context }]
    }));
    if notification.test {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": ":test_tube: *This is a test notification* sent to check this channel. No action is needed." }
        }));
    }
    for alert in notification.alerts.iter().take(MAX_ALERT_SECTIONS) {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": alert_text(alert) }
        }));
    }
    if notification.alerts.len() > MAX_ALERT_SECTIONS {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": format!("…and {} more alerts", notification.alerts.len() - MAX_ALERT_SECTIONS)
            }]
        }));
    }
    if let Some(url) = &notification.dashboard_url {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": "Open dashboard" },
                "url": url
            }]
        }));
    }
    json!({ "text": subject, "blocks": blocks })
}

/// `:red_circle: *app1.acme-prod* / `cpu`: *critical* (was warning) — cpu overloaded` and its detail lines.
fn alert_text(alert: &NotificationAlert) -> String {
    let level = alert
        .level_name
        .as_deref()
        .map(|name| format!(" — {}", escape(name)))
        .unwrap_or_default();
    let mut text = format!(
        "{} *{}* / `{}`: *{}* (was {}){level}",
        state_emoji(&alert.state),
        escape(&alert.host),
        escape(&alert.monitor),
        escape(&alert.state),
        escape(&alert.previous_state)
    );
    if let Some(value) = value_against_threshold(alert, Symbols::Unicode) {
        text.push_str(&format!("\nValue: {}", escape(&value)));
        if let Some(metric) = &alert.metric {
            text.push_str(&format!(" (`{}`)", escape(metric)));
        }
    }
    text.push_str(&format!("\nSince: {}", rfc3339_utc(alert.since_ms)));
    if !alert.message.trim().is_empty() {
        text.push_str(&format!(
            "\n{}",
            escape(&cut(alert.message.trim(), MESSAGE_MAX_CHARS))
        ));
    }
    if let Some(who) = &alert.acknowledged_by {
        text.push_str(&format!("\nAcknowledged by {}", escape(who)));
    }
    text
}

fn state_emoji(state: &str) -> &'static str {
    match state {
        "critical" => ":red_circle:",
        "warning" => ":large_orange_circle:",
        "ok" => ":large_green_circle:",
        _ => ":white_circle:",
    }
}

/// Slack's mrkdwn needs exactly `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    single_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::payload::tests::sorted_pretty;
    use crate::render::tests::{cpu_alert, firing_three, resolved_one};

    #[test]
    fn slack_payload_of_an_escalated_group() {
        expect![[r#"
            {
              "blocks": [
                {
                  "text": {
                    "emoji": true,
                    "text": "[CRITICAL] [ESCALATION 2] acme-prod: 3 alerts",
                    "type": "plain_text"
                  },
                  "type": "header"
                },
                {
                  "elements": [
                    {
                      "text": "*CRITICAL* · platform *acme-prod* · tenant globex · isv acme · cloud gc-uk1 · escalation level 2: not acknowledged yet",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "context"
                },
                {
                  "text": {
                    "text": ":red_circle: *app1.acme-prod* / `cpu`: *critical* (was warning) — cpu overloaded\nValue: 97.2 ≥ threshold 95 (`host_cpu_busy_percent`)\nSince: 2026-03-01T11:48:00Z\ncpu busy 97.2% for 2m (critical at 95%)",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "text": {
                    "text": ":large_orange_circle: *db1.acme-prod* / `df`: *warning* (was ok) — disk filling\nValue: 91 ≥ threshold 90 (`host_filesystem_used_percent`)\nSince: 2026-03-01T08:55:00Z\n/ is 91% full\nAcknowledged by alice",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "text": {
                    "text": ":white_circle: *app2.acme-prod* / `heartbeat`: *unknown* (was ok)\nSince: 2026-03-01T11:59:15Z\nno report from the agent for 45s last seen at 11:59:15Z",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "elements": [
                    {
                      "text": {
                        "text": "Open dashboard",
                        "type": "plain_text"
                      },
                      "type": "button",
                      "url": "https://noc.example.org/platforms/acme-prod"
                    }
                  ],
                  "type": "actions"
                }
              ],
              "text": "[CRITICAL] [ESCALATION 2] acme-prod: 3 alerts"
            }"#]]
        .assert_eq(&sorted_pretty(&slack_payload(&firing_three())));
    }

    #[test]
    fn slack_payload_of_a_resolved_test_send_escapes_and_limits() {
        let mut notification = resolved_one();
        notification.test = true;
        notification.dashboard_url = None;
        notification.alerts[0].message = "<script> & co".into();
        let payload = slack_payload(&notification);
        let blocks = payload["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4, "header, context, test notice, one alert");
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("test notification")
        );
        let alert = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(
            alert.starts_with(":large_green_circle: *app1.acme-prod*"),
            "{alert}"
        );
        assert!(alert.contains("&lt;script&gt; &amp; co"), "{alert}");

        let mut many = notification.clone();
        many.alerts = vec![cpu_alert(); 60];
        let payload = slack_payload(&many);
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks.last().unwrap()["elements"][0]["text"],
            "…and 20 more alerts"
        );
    }
}
