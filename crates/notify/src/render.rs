//! Human texts of a notification: the email subject and body and the SMS text (pure functions).
//!
//! Machine payloads (JSON, Slack, Alertmanager) live in `payload.rs`; the phrases they share live here.

use std::fmt::Write as _;

use crate::notification::{Notification, NotificationAlert, NotificationStatus};
use crate::time::{clock_utc, human_span, rfc3339_utc};

/// Longest SMS text: one GSM-7 segment. The text is kept ASCII so it never falls back to 70-char UCS-2.
pub const SMS_MAX_CHARS: usize = 160;

/// One line: `[CRITICAL] acme-prod: cpu overloaded on app1 (97.2 ≥ 95)`, `[RESOLVED] …`, `[CRITICAL] acme-prod: 3 alerts`.
pub fn render_subject(notification: &Notification) -> String {
    let body = match notification.alerts.as_slice() {
        [] => "no alerts".to_owned(),
        [alert] => alert_summary(&notification.platform, alert, Symbols::Unicode),
        alerts => format!("{} alerts", alerts.len()),
    };
    single_line(&format!(
        "{} {}: {body}",
        tag_prefix(notification),
        notification.platform
    ))
}

/// The plain-text email body: every alert with host, monitor, state change, value against threshold,
/// since when (RFC 3339, UTC), message, labels and acknowledgement, then the dashboard link.
pub fn render_text(notification: &Notification) -> String {
    let mut text = String::new();
    if notification.test {
        text.push_str(
            "THIS IS A TEST NOTIFICATION sent to check this channel. No action is needed.\n\n",
        );
    }
    let count = match notification.alerts.len() {
        1 => "1 alert".to_owned(),
        count => format!("{count} alerts"),
    };
    let headline = match notification.status {
        NotificationStatus::Resolved => format!("RESOLVED: {count}, all back to ok"),
        NotificationStatus::Firing => format!("{}: {count}", severity_word(notification)),
    };
    let _ = writeln!(text, "{headline}");
    let _ = writeln!(
        text,
        "Platform: {} (tenant {}, isv {}, cloud {})",
        single_line(&notification.platform),
        single_line(&notification.tenant),
        single_line(&notification.isv),
        single_line(&notification.cloud)
    );
    if notification.escalation_level > 0 {
        let _ = writeln!(
            text,
            "Escalation level {}: not acknowledged yet.",
            notification.escalation_level
        );
    }
    for (index, alert) in notification.alerts.iter().enumerate() {
        text.push('\n');
        let level = alert
            .level_name
            .as_deref()
            .map(|name| format!(" - {}", single_line(name)))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "{}. {} / {}: {} (was {}){level}",
            index + 1,
            single_line(&alert.host),
            single_line(&alert.monitor),
            single_line(&alert.state),
            single_line(&alert.previous_state)
        );
        if let Some(value_line) = value_against_threshold(alert, Symbols::Unicode) {
            let _ = writeln!(text, "   Value:   {value_line}");
        }
        if let Some(metric) = &alert.metric {
            let _ = writeln!(text, "   Metric:  {}", single_line(metric));
        }
        let _ = writeln!(
            text,
            "   Since:   {} ({} before this notice)",
            rfc3339_utc(alert.since_ms),
            human_span(notification.sent_at_ms.saturating_sub(alert.since_ms))
        );
        if !alert.message.trim().is_empty() {
            let message = alert
                .message
                .trim()
                .lines()
                .collect::<Vec<_>>()
                .join("\n            ");
            let _ = writeln!(text, "   Message: {message}");
        }
        if !alert.labels.is_empty() {
            let labels: Vec<String> = alert
                .labels
                .iter()
                .map(|(name, value)| format!("{}={}", single_line(name), single_line(value)))
                .collect();
            let _ = writeln!(text, "   Labels:  {}", labels.join(", "));
        }
        if let Some(who) = &alert.acknowledged_by {
            let _ = writeln!(text, "   Acknowledged by {}", single_line(who));
        }
    }
    text.push('\n');
    if let Some(url) = &notification.dashboard_url {
        let _ = writeln!(text, "Dashboard: {}", single_line(url));
    }
    let _ = writeln!(
        text,
        "Notification {}, sent {} by Cloudkeep.",
        single_line(&notification.id),
        rfc3339_utc(notification.sent_at_ms)
    );
    text
}

/// At most 160 ASCII characters: the subject's facts, compacted; the rest is cut with `...`.
pub fn render_sms(notification: &Notification) -> String {
    let prefix = tag_prefix(notification);
    let text = match notification.alerts.as_slice() {
        [alert] => {
            let mut text = format!(
                "{prefix} {}: {} since {}",
                notification.platform,
                alert_summary(&notification.platform, alert, Symbols::Ascii),
                clock_utc(alert.since_ms)
            );
            if !alert.message.trim().is_empty() {
                let _ = write!(text, ". {}", alert.message.trim());
            }
            text
        }
        alerts => {
            let parts: Vec<String> = alerts
                .iter()
                .map(|alert| {
                    format!(
                        "{} {} {}{}",
                        short_host(&alert.host, &notification.platform),
                        alert.monitor,
                        alert.state,
                        value_in_parentheses(alert, Symbols::Ascii)
                    )
                })
                .collect();
            format!(
                "{prefix} {}: {} alerts: {}",
                notification.platform,
                alerts.len(),
                parts.join("; ")
            )
        }
    };
    truncate_ascii(&to_sms_ascii(&single_line(&text)), SMS_MAX_CHARS)
}

/// Which glyphs a format can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbols {
    Unicode,
    Ascii,
}

/// `[TEST] [CRITICAL] [ESCALATION 2]`: what kind of notice this is, in the words of the subject line.
pub(crate) fn tag_prefix(notification: &Notification) -> String {
    let mut prefix = String::new();
    if notification.test {
        prefix.push_str("[TEST] ");
    }
    let _ = write!(prefix, "[{}]", severity_word(notification));
    if notification.escalation_level > 0 {
        let _ = write!(prefix, " [ESCALATION {}]", notification.escalation_level);
    }
    prefix
}

/// `CRITICAL`, `WARNING`, … or `RESOLVED`.
pub(crate) fn severity_word(notification: &Notification) -> String {
    match notification.status {
        NotificationStatus::Resolved => "RESOLVED".to_owned(),
        NotificationStatus::Firing => single_line(&notification.severity).to_uppercase(),
    }
}

/// `cpu overloaded on app1 (97.2 ≥ 95)`; a cleared alert reads `cpu overloaded on app1 (now 41)`.
pub(crate) fn alert_summary(platform: &str, alert: &NotificationAlert, symbols: Symbols) -> String {
    let what = alert
        .level_name
        .clone()
        .unwrap_or_else(|| format!("{} {}", alert.monitor, alert.state));
    single_line(&format!(
        "{what} on {}{}",
        short_host(&alert.host, platform),
        value_in_parentheses(alert, symbols)
    ))
}

/// ` (97.2 ≥ 95)`, ` (97.2)`, ` (now 41)` for an ok alert, or nothing when there is no value.
fn value_in_parentheses(alert: &NotificationAlert, symbols: Symbols) -> String {
    let Some(value) = alert.value else {
        return String::new();
    };
    if alert.state == "ok" {
        return format!(" (now {})", format_number(value));
    }
    match alert.threshold {
        Some(threshold) => format!(
            " ({} {} {})",
            format_number(value),
            comparison(value, threshold, symbols),
            format_number(threshold)
        ),
        None => format!(" ({})", format_number(value)),
    }
}

/// `97.2 ≥ threshold 95`, `97.2`, `threshold 95`, or `None` when neither is known.
pub(crate) fn value_against_threshold(
    alert: &NotificationAlert,
    symbols: Symbols,
) -> Option<String> {
    match (alert.value, alert.threshold) {
        (Some(value), Some(threshold)) => Some(format!(
            "{} {} threshold {}",
            format_number(value),
            comparison(value, threshold, symbols),
            format_number(threshold)
        )),
        (Some(value), None) => Some(format_number(value)),
        (None, Some(threshold)) => Some(format!("threshold {}", format_number(threshold))),
        (None, None) => None,
    }
}

/// Rules may fire above (cpu) or below (free space) their threshold: the sign says which side the value is on.
fn comparison(value: f64, threshold: f64, symbols: Symbols) -> &'static str {
    match (value >= threshold, symbols) {
        (true, Symbols::Unicode) => "≥",
        (false, Symbols::Unicode) => "≤",
        (true, Symbols::Ascii) => ">=",
        (false, Symbols::Ascii) => "<=",
    }
}

/// Enough digits for a person, no trailing zeros: `97.2`, `95`, `4.25`, `0.051`.
pub(crate) fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let decimals = match value.abs() {
        magnitude if magnitude >= 10.0 => 1,
        magnitude if magnitude >= 1.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// `app1` for `app1.acme-prod` on platform `acme-prod`: the platform is already in the line.
pub(crate) fn short_host<'a>(host: &'a str, platform: &str) -> &'a str {
    host.strip_suffix(platform)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(host)
}

/// Control characters (newlines included) become spaces, so user text cannot break a header or a line.
pub(crate) fn single_line(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect()
}

/// Plain ASCII for SMS: the few symbols we emit are spelled out, anything else non-ASCII becomes `?`.
fn to_sms_ascii(text: &str) -> String {
    let mut ascii = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '≥' => ascii.push_str(">="),
            '≤' => ascii.push_str("<="),
            '→' => ascii.push_str("->"),
            '–' | '—' => ascii.push('-'),
            '…' => ascii.push_str("..."),
            '‘' | '’' => ascii.push('\''),
            '“' | '”' => ascii.push('"'),
            character if character.is_ascii() => ascii.push(character),
            _ => ascii.push('?'),
        }
    }
    ascii
}

/// Cuts ASCII text to `max` characters, preferring a word boundary, and marks the cut with `...`.
fn truncate_ascii(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let room = max.saturating_sub(3);
    let cut = text.get(..room).unwrap_or_default();
    // Break at a space when one is near the end, so the last word is not mangled.
    let cut = match cut.rfind(' ') {
        Some(space) if space + 20 >= room => cut.get(..space).unwrap_or(cut),
        _ => cut,
    };
    format!("{}...", cut.trim_end())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use expect_test::expect;

    use super::*;

    /// 2026-03-01T12:00:00Z.
    pub(crate) const SENT_AT_MS: i64 = 1_772_366_400_000;

    pub(crate) fn cpu_alert() -> NotificationAlert {
        NotificationAlert {
            host: "app1.acme-prod".into(),
            monitor: "cpu".into(),
            metric: Some("host_cpu_busy_percent".into()),
            state: "critical".into(),
            previous_state: "warning".into(),
            value: Some(97.234),
            threshold: Some(95.0),
            level_name: Some("cpu overloaded".into()),
            since_ms: SENT_AT_MS - 12 * 60_000,
            message: "cpu busy 97.2% for 2m (critical at 95%)".into(),
            labels: BTreeMap::from([("team".to_owned(), "ops".to_owned())]),
            acknowledged_by: None,
        }
    }

    pub(crate) fn firing_one() -> Notification {
        Notification {
            id: "ntf-acme-prod-7f3a".into(),
            status: NotificationStatus::Firing,
            severity: "critical".into(),
            cloud: "gc-uk1".into(),
            isv: "acme".into(),
            tenant: "globex".into(),
            platform: "acme-prod".into(),
            alerts: vec![cpu_alert()],
            escalation_level: 0,
            dashboard_url: Some("https://noc.example.org/platforms/acme-prod".into()),
            sent_at_ms: SENT_AT_MS,
            test: false,
        }
    }

    pub(crate) fn firing_three() -> Notification {
        let mut notification = firing_one();
        notification.escalation_level = 2;
        notification.alerts.push(NotificationAlert {
            host: "db1.acme-prod".into(),
            monitor: "df".into(),
            metric: Some("host_filesystem_used_percent".into()),
            state: "warning".into(),
            previous_state: "ok".into(),
            value: Some(91.0),
            threshold: Some(90.0),
            level_name: Some("disk filling".into()),
            since_ms: SENT_AT_MS - 3 * 3_600_000 - 5 * 60_000,
            message: "/ is 91% full".into(),
            labels: BTreeMap::new(),
            acknowledged_by: Some("alice".into()),
        });
        notification.alerts.push(NotificationAlert {
            host: "app2.acme-prod".into(),
            monitor: "heartbeat".into(),
            metric: None,
            state: "unknown".into(),
            previous_state: "ok".into(),
            value: None,
            threshold: None,
            level_name: None,
            since_ms: SENT_AT_MS - 45_000,
            message: "no report from the agent for 45s\nlast seen at 11:59:15Z".into(),
            labels: BTreeMap::new(),
            acknowledged_by: None,
        });
        notification
    }

    pub(crate) fn resolved_one() -> Notification {
        let mut notification = firing_one();
        notification.status = NotificationStatus::Resolved;
        notification.severity = "ok".into();
        let alert = &mut notification.alerts[0];
        alert.state = "ok".into();
        alert.previous_state = "critical".into();
        alert.value = Some(41.0);
        alert.since_ms = SENT_AT_MS - 30_000;
        alert.message = "cpu busy 41% (clear below 75%)".into();
        notification
    }

    #[test]
    fn subjects() {
        expect!["[CRITICAL] acme-prod: cpu overloaded on app1 (97.2 ≥ 95)"]
            .assert_eq(&render_subject(&firing_one()));
        expect!["[RESOLVED] acme-prod: cpu overloaded on app1 (now 41)"]
            .assert_eq(&render_subject(&resolved_one()));
        expect!["[CRITICAL] [ESCALATION 2] acme-prod: 3 alerts"]
            .assert_eq(&render_subject(&firing_three()));
        let mut test = firing_one();
        test.test = true;
        expect!["[TEST] [CRITICAL] acme-prod: cpu overloaded on app1 (97.2 ≥ 95)"]
            .assert_eq(&render_subject(&test));
        let mut below = firing_one();
        below.alerts[0].level_name = None;
        below.alerts[0].value = Some(4.5);
        below.alerts[0].threshold = Some(10.0);
        below.alerts[0].host = "other-host".into();
        below.alerts[0].monitor = "df\nX-Injected: yes".into();
        expect!["[CRITICAL] acme-prod: df X-Injected: yes critical on other-host (4.5 ≤ 10)"]
            .assert_eq(&render_subject(&below));
    }

    #[test]
    fn text_of_one_firing_alert() {
        expect![[r#"
            CRITICAL: 1 alert
            Platform: acme-prod (tenant globex, isv acme, cloud gc-uk1)

            1. app1.acme-prod / cpu: critical (was warning) - cpu overloaded
               Value:   97.2 ≥ threshold 95
               Metric:  host_cpu_busy_percent
               Since:   2026-03-01T11:48:00Z (12m before this notice)
               Message: cpu busy 97.2% for 2m (critical at 95%)
               Labels:  team=ops

            Dashboard: https://noc.example.org/platforms/acme-prod
            Notification ntf-acme-prod-7f3a, sent 2026-03-01T12:00:00Z by Cloudkeep.
        "#]]
        .assert_eq(&render_text(&firing_one()));
    }

    #[test]
    fn text_of_an_escalated_group() {
        expect![[r#"
            CRITICAL: 3 alerts
            Platform: acme-prod (tenant globex, isv acme, cloud gc-uk1)
            Escalation level 2: not acknowledged yet.

            1. app1.acme-prod / cpu: critical (was warning) - cpu overloaded
               Value:   97.2 ≥ threshold 95
               Metric:  host_cpu_busy_percent
               Since:   2026-03-01T11:48:00Z (12m before this notice)
               Message: cpu busy 97.2% for 2m (critical at 95%)
               Labels:  team=ops

            2. db1.acme-prod / df: warning (was ok) - disk filling
               Value:   91 ≥ threshold 90
               Metric:  host_filesystem_used_percent
               Since:   2026-03-01T08:55:00Z (3h 5m before this notice)
               Message: / is 91% full
               Acknowledged by alice

            3. app2.acme-prod / heartbeat: unknown (was ok)
               Since:   2026-03-01T11:59:15Z (45s before this notice)
               Message: no report from the agent for 45s
                        last seen at 11:59:15Z

            Dashboard: https://noc.example.org/platforms/acme-prod
            Notification ntf-acme-prod-7f3a, sent 2026-03-01T12:00:00Z by Cloudkeep.
        "#]]
        .assert_eq(&render_text(&firing_three()));
    }

    #[test]
    fn text_of_a_resolved_test_send() {
        let mut notification = resolved_one();
        notification.test = true;
        notification.dashboard_url = None;
        expect![[r#"
            THIS IS A TEST NOTIFICATION sent to check this channel. No action is needed.

            RESOLVED: 1 alert, all back to ok
            Platform: acme-prod (tenant globex, isv acme, cloud gc-uk1)

            1. app1.acme-prod / cpu: ok (was critical) - cpu overloaded
               Value:   41 ≤ threshold 95
               Metric:  host_cpu_busy_percent
               Since:   2026-03-01T11:59:30Z (30s before this notice)
               Message: cpu busy 41% (clear below 75%)
               Labels:  team=ops

            Notification ntf-acme-prod-7f3a, sent 2026-03-01T12:00:00Z by Cloudkeep.
        "#]]
        .assert_eq(&render_text(&notification));
    }

    #[test]
    fn sms_texts() {
        expect!["[CRITICAL] acme-prod: cpu overloaded on app1 (97.2 >= 95) since 11:48Z. cpu busy 97.2% for 2m (critical at 95%)"]
            .assert_eq(&render_sms(&firing_one()));
        expect!["[RESOLVED] acme-prod: cpu overloaded on app1 (now 41) since 11:59Z. cpu busy 41% (clear below 75%)"]
            .assert_eq(&render_sms(&resolved_one()));
        let three = render_sms(&firing_three());
        expect!["[CRITICAL] [ESCALATION 2] acme-prod: 3 alerts: app1 cpu critical (97.2 >= 95); db1 df warning (91 >= 90); app2 heartbeat unknown"]
            .assert_eq(&three);
        assert!(three.len() <= SMS_MAX_CHARS);
    }

    #[test]
    fn sms_is_ascii_and_at_most_160_chars() {
        let mut notification = firing_one();
        notification.test = true;
        notification.alerts[0].message = "température élevée — ".repeat(20);
        let sms = render_sms(&notification);
        expect!["[TEST] [CRITICAL] acme-prod: cpu overloaded on app1 (97.2 >= 95) since 11:48Z. temp?rature ?lev?e - temp?rature ?lev?e - temp?rature ?lev?e - temp?rature..."]
            .assert_eq(&sms);
        assert!(sms.len() <= SMS_MAX_CHARS && sms.is_ascii());

        // One long word: cut inside it.
        notification.alerts[0].message = "x".repeat(300);
        let sms = render_sms(&notification);
        assert_eq!(sms.len(), SMS_MAX_CHARS);
        assert!(sms.ends_with("xxx..."));

        let mut many = firing_three();
        for _ in 0..20 {
            many.alerts.push(cpu_alert());
        }
        let sms = render_sms(&many);
        assert!(sms.len() <= SMS_MAX_CHARS && sms.is_ascii(), "{sms}");
        assert!(sms.starts_with("[CRITICAL] [ESCALATION 2] acme-prod: 23 alerts: "));
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(97.2), "97.2");
        assert_eq!(format_number(95.0), "95");
        assert_eq!(format_number(97.25), "97.2");
        assert_eq!(format_number(4.256), "4.26");
        assert_eq!(format_number(0.0512), "0.051");
        assert_eq!(format_number(-0.0001), "0");
        assert_eq!(format_number(1e12), "1000000000000");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(f64::INFINITY), "inf");
    }

    #[test]
    fn short_hosts() {
        assert_eq!(short_host("app1.acme-prod", "acme-prod"), "app1");
        assert_eq!(short_host("acme-prod", "acme-prod"), "acme-prod");
        assert_eq!(
            short_host("app1.xacme-prod", "acme-prod"),
            "app1.xacme-prod"
        );
        assert_eq!(short_host("app1.other", "acme-prod"), "app1.other");
    }
}
