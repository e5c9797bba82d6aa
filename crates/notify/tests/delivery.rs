//! Deliveries against real peers: aiosmtpd for email (STARTTLS, SMTPS, AUTH, a private CA) and the
//! testkit's HTTP sink standing in for SMS gateways and webhook receivers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cloudkeep_notify::{
    AttemptRecord, Channel, DeliveryError, Destination, HttpMethod, Notification,
    NotificationAlert, NotificationStatus, RetryPolicy, SmsConfig, SmsPreset, SmtpConfig,
    SmtpSecurity, WebhookConfig, WebhookFormat, deliver, deliver_with_retries, render_sms,
    render_subject,
};
use cloudkeep_testkit::http_sink::{HttpSink, SinkResponse};
use cloudkeep_testkit::smtp::{SmtpOptions, SmtpTls, TestSmtp};

const WAIT: Duration = Duration::from_secs(10);
const SMTP_USER: &str = "noc-relay";
const SMTP_PASSWORD: &str = "relay-pass-7c1d";

/// 2026-03-01T12:00:00Z.
const SENT_AT_MS: i64 = 1_772_366_400_000;

fn notification() -> Notification {
    Notification {
        id: "ntf-acme-prod-7f3a".into(),
        status: NotificationStatus::Firing,
        severity: "critical".into(),
        cloud: "gc-uk1".into(),
        isv: "acme".into(),
        tenant: "globex".into(),
        platform: "acme-prod".into(),
        alerts: vec![NotificationAlert {
            host: "app1.acme-prod".into(),
            monitor: "cpu".into(),
            metric: Some("host_cpu_busy_percent".into()),
            state: "critical".into(),
            previous_state: "warning".into(),
            value: Some(97.2),
            threshold: Some(95.0),
            level_name: Some("cpu overloaded".into()),
            since_ms: SENT_AT_MS - 12 * 60_000,
            message: "cpu busy 97.2% for 2m \"critical\" at 95%".into(),
            labels: BTreeMap::from([("team".to_owned(), "ops".to_owned())]),
            acknowledged_by: None,
        }],
        escalation_level: 0,
        dashboard_url: Some("https://noc.example.org/platforms/acme-prod".into()),
        sent_at_ms: SENT_AT_MS,
        test: false,
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        multiplier: 2.0,
    }
}

struct Smtp {
    server: TestSmtp,
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
}

/// A real SMTP server, or `None` outside CI when aiosmtpd is not installed.
fn smtp(options: SmtpOptions) -> Option<Smtp> {
    let server = TestSmtp::start(options)?;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, server.ca_cert_pem()).unwrap();
    Some(Smtp {
        server,
        _dir: dir,
        ca_file,
    })
}

fn smtp_config(smtp: &Smtp, security: SmtpSecurity) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(smtp.server.port()),
        security,
        username: Some(SMTP_USER.into()),
        password: Some(SMTP_PASSWORD.into()),
        from: "Cloudkeep NOC <noc@cloudkeep.test>".into(),
        timeout: Duration::from_secs(10),
        accept_invalid_certs: false,
        ca_file: Some(smtp.ca_file.clone()),
    }
}

fn authenticated(tls: SmtpTls) -> SmtpOptions {
    SmtpOptions {
        tls,
        auth: Some((SMTP_USER.into(), SMTP_PASSWORD.into())),
        ..SmtpOptions::default()
    }
}

fn to_oncall() -> Destination {
    Destination::Email("oncall@example.org".into())
}

#[tokio::test]
async fn email_over_starttls_with_auth_and_a_private_ca() {
    let Some(smtp) = smtp(authenticated(SmtpTls::StartTls)) else {
        return;
    };
    let channel = Channel::email(smtp_config(&smtp, SmtpSecurity::Starttls)).unwrap();
    let receipt = deliver(&channel, &to_oncall(), &notification())
        .await
        .unwrap();
    assert!(receipt.response.starts_with("250 "), "{receipt:?}");

    let mails = smtp.server.wait_for_messages(1, WAIT);
    let mail = &mails[0];
    assert_eq!(mail.from, "noc@cloudkeep.test");
    assert_eq!(mail.to, ["oncall@example.org"]);
    assert_eq!(
        mail.subject,
        "[CRITICAL] acme-prod: cpu overloaded on app1 (97.2 ≥ 95)"
    );
    let body = mail.body_text.replace("\r\n", "\n");
    for line in [
        "CRITICAL: 1 alert",
        "Platform: acme-prod (tenant globex, isv acme, cloud gc-uk1)",
        "1. app1.acme-prod / cpu: critical (was warning) - cpu overloaded",
        "   Value:   97.2 ≥ threshold 95",
        "   Since:   2026-03-01T11:48:00Z (12m before this notice)",
        "   Message: cpu busy 97.2% for 2m \"critical\" at 95%",
        "Dashboard: https://noc.example.org/platforms/acme-prod",
    ] {
        assert!(
            body.lines().any(|candidate| candidate == line),
            "{line:?} not in:\n{body}"
        );
    }
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Cloudkeep NOC\" <noc@cloudkeep.test>")
    );
    assert_eq!(mail.header("To").as_deref(), Some("oncall@example.org"));
    assert_eq!(
        mail.header("Date").as_deref(),
        Some("Sun, 01 Mar 2026 12:00:00 +0000")
    );
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<cloudkeep.ntf-acme-prod-7f3a.0.1772366400000@cloudkeep.test>")
    );
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some("<cloudkeep.ntf-acme-prod-7f3a@cloudkeep.test>")
    );

    // The pooled connection is reused for the next message.
    let mut resolved = notification();
    resolved.status = NotificationStatus::Resolved;
    resolved.alerts[0].state = "ok".into();
    resolved.alerts[0].value = Some(41.0);
    deliver(&channel, &to_oncall(), &resolved).await.unwrap();
    let mails = smtp.server.wait_for_messages(2, WAIT);
    assert_eq!(
        mails[1].subject,
        "[RESOLVED] acme-prod: cpu overloaded on app1 (now 41)"
    );
}

#[tokio::test]
async fn email_over_implicit_tls() {
    let Some(smtp) = smtp(authenticated(SmtpTls::Implicit)) else {
        return;
    };
    let channel = Channel::email(smtp_config(&smtp, SmtpSecurity::Tls)).unwrap();
    let mut test_send = notification();
    test_send.test = true;
    deliver(&channel, &to_oncall(), &test_send).await.unwrap();
    let mails = smtp.server.wait_for_messages(1, WAIT);
    assert!(
        mails[0].subject.starts_with("[TEST] [CRITICAL] "),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0]
            .body_text
            .starts_with("THIS IS A TEST NOTIFICATION")
    );
}

#[tokio::test]
async fn email_with_a_wrong_password_fails_for_good() {
    let Some(smtp) = smtp(authenticated(SmtpTls::StartTls)) else {
        return;
    };
    let mut config = smtp_config(&smtp, SmtpSecurity::Starttls);
    config.password = Some("wrong-pass-31b9".into());
    let channel = Channel::email(config).unwrap();
    let mut records = Vec::new();
    let err = deliver_with_retries(
        &channel,
        &to_oncall(),
        &notification(),
        &fast_retries(),
        |record| records.push(record),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeliveryError::SmtpReply { code: 535, .. }),
        "{err:?}"
    );
    assert!(!err.retryable());
    assert_eq!(records.len(), 1, "a final error is not retried");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "smtp 127.0.0.1:{}: server replied 535: authentication failed (check username and password): ",
            smtp.server.port()
        )),
        "{message}"
    );
    assert!(
        !message.contains("wrong-pass-31b9") && !format!("{err:?}").contains("wrong-pass-31b9")
    );
    assert!(smtp.server.messages().is_empty());
}

#[tokio::test]
async fn email_to_an_untrusted_certificate_is_a_tls_error() {
    let Some(smtp) = smtp(authenticated(SmtpTls::StartTls)) else {
        return;
    };
    let mut config = smtp_config(&smtp, SmtpSecurity::Starttls);
    config.ca_file = None;
    let channel = Channel::email(config.clone()).unwrap();
    let err = deliver(&channel, &to_oncall(), &notification())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Tls { .. }), "{err:?}");
    assert!(!err.retryable());
    assert!(err.to_string().contains("tls failed"), "{err}");

    // The escape hatch for a test relay.
    config.accept_invalid_certs = true;
    let channel = Channel::email(config).unwrap();
    deliver(&channel, &to_oncall(), &notification())
        .await
        .unwrap();
    assert_eq!(smtp.server.wait_for_messages(1, WAIT).len(), 1);
}

#[tokio::test]
async fn email_answered_451_twice_is_delivered_on_the_third_attempt() {
    let Some(smtp) = smtp(SmtpOptions {
        transient_failures: 2,
        ..authenticated(SmtpTls::StartTls)
    }) else {
        return;
    };
    let channel = Channel::email(smtp_config(&smtp, SmtpSecurity::Starttls)).unwrap();
    let mut records: Vec<AttemptRecord> = Vec::new();
    let receipt = deliver_with_retries(
        &channel,
        &to_oncall(),
        &notification(),
        &fast_retries(),
        |record| records.push(record),
    )
    .await
    .unwrap();
    assert!(receipt.response.starts_with("250 "));
    assert_eq!(records.len(), 3, "{records:#?}");
    for record in &records[..2] {
        let error = record.error.as_deref().unwrap();
        assert!(error.contains("server replied 451: "), "{error}");
        assert!(record.retryable);
        assert!(record.next_attempt_in.is_some());
    }
    assert_eq!(records[2].attempt, 3);
    assert!(records[2].error.is_none());
    assert_eq!(smtp.server.wait_for_messages(1, WAIT).len(), 1);
}

#[tokio::test]
async fn email_to_a_rejected_recipient_is_final() {
    let Some(smtp) = smtp(SmtpOptions {
        reject_recipients: vec!["nobody@example.org".into()],
        ..SmtpOptions::default()
    }) else {
        return;
    };
    let mut config = smtp_config(&smtp, SmtpSecurity::None);
    config.username = None;
    config.password = None;
    let channel = Channel::email(config).unwrap();
    let err = deliver(
        &channel,
        &Destination::Email("nobody@example.org".into()),
        &notification(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeliveryError::SmtpReply { code: 550, .. }),
        "{err:?}"
    );
    assert!(!err.retryable());
}

#[tokio::test]
async fn email_to_a_closed_port_is_retryable() {
    let port = cloudkeep_testkit::free_port();
    let channel = Channel::email(SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "noc@cloudkeep.test".into(),
        timeout: Duration::from_secs(5),
        accept_invalid_certs: false,
        ca_file: None,
    })
    .unwrap();
    let err = deliver(&channel, &to_oncall(), &notification())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Unreachable { .. }), "{err:?}");
    assert!(err.retryable());
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("smtp 127.0.0.1:{port}: connection failed: ")),
        "{message}"
    );
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(body: &str) -> BTreeMap<String, String> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut decoded = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            match bytes[index] {
                b'+' => decoded.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                    decoded.push(u8::from_str_radix(hex, 16).unwrap());
                    index += 2;
                }
                byte => decoded.push(byte),
            }
            index += 1;
        }
        String::from_utf8(decoded).unwrap()
    }
    body.split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (decode(name), decode(value))
        })
        .collect()
}

fn twilio_config(sink: &HttpSink) -> SmsConfig {
    SmsConfig {
        preset: Some(SmsPreset::Twilio),
        url: sink.url(),
        method: HttpMethod::Post,
        headers: BTreeMap::new(),
        body_template: None,
        content_type: None,
        username: None,
        password: None,
        account_sid: Some("AC0123".into()),
        auth_token: Some("secret-token-42".into()),
        from: Some("+15005550006".into()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn sms_through_the_twilio_preset() {
    let sink = HttpSink::with_responses(
        vec![SinkResponse::json(
            201,
            &serde_json::json!({ "sid": "SM42", "status": "queued" }),
        )],
        SinkResponse::status(200),
    );
    let channel = Channel::sms(twilio_config(&sink)).unwrap();
    let receipt = deliver(
        &channel,
        &Destination::Phone("+44 20 7946 0958".into()),
        &notification(),
    )
    .await
    .unwrap();
    assert_eq!(receipt.message_id.as_deref(), Some("SM42"));
    assert_eq!(receipt.http_status, Some(201));

    let requests = sink.wait_for_requests(1, WAIT);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/2010-04-01/Accounts/AC0123/Messages.json");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.header("authorization"),
        Some("Basic QUMwMTIzOnNlY3JldC10b2tlbi00Mg==")
    );
    let form = form_pairs(&request.body_text());
    assert_eq!(form.keys().collect::<Vec<_>>(), ["Body", "From", "To"]);
    assert_eq!(form["To"], "+442079460958");
    assert_eq!(form["From"], "+15005550006");
    assert_eq!(form["Body"], render_sms(&notification()));
    assert!(form["Body"].len() <= 160);
}

#[tokio::test]
async fn sms_through_a_custom_json_template() {
    let sink = HttpSink::start();
    let channel = Channel::sms(SmsConfig {
        preset: None,
        url: format!("{}/v1/send?key=k3y-9a&dest={{{{to}}}}", sink.url()),
        method: HttpMethod::Post,
        headers: BTreeMap::from([("X-Api-Key".to_owned(), "api-key-55".to_owned())]),
        body_template: Some(
            r#"{"to": "{{to}}", "sender": "{{from}}", "message": "{{text}}"}"#.into(),
        ),
        content_type: None,
        username: Some("gw-user".into()),
        password: Some("gw-pass-9".into()),
        account_sid: None,
        auth_token: None,
        from: Some("Cloudkeep".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let mut multi_line = notification();
    multi_line.alerts[0].message = "line one\n\"quoted\" \\ back".into();
    deliver(
        &channel,
        &Destination::Phone("+15551234567".into()),
        &multi_line,
    )
    .await
    .unwrap();
    let requests = sink.wait_for_requests(1, WAIT);
    let request = &requests[0];
    assert_eq!(request.target, "/v1/send?key=k3y-9a&dest=%2B15551234567");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-api-key"), Some("api-key-55"));
    assert_eq!(
        request.header("authorization"),
        Some("Basic Z3ctdXNlcjpndy1wYXNzLTk=")
    );
    let body = request.json();
    assert_eq!(body["to"], "+15551234567");
    assert_eq!(body["sender"], "Cloudkeep");
    assert_eq!(body["message"], render_sms(&multi_line));
}

fn webhook(sink: &HttpSink, format: WebhookFormat) -> Channel {
    Channel::webhook(WebhookConfig {
        url: format!("{}/hooks/T000/B000/hook-secret-77", sink.url()),
        format,
        headers: BTreeMap::from([(
            "Authorization".to_owned(),
            "Bearer bearer-secret-12".to_owned(),
        )]),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn webhook_in_cloudkeep_json() {
    let sink = HttpSink::start();
    let receipt = deliver(
        &webhook(&sink, WebhookFormat::Json),
        &Destination::Webhook,
        &notification(),
    )
    .await
    .unwrap();
    assert_eq!(receipt.http_status, Some(200));
    assert_eq!(receipt.response, "ok");
    let requests = sink.wait_for_requests(1, WAIT);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/hooks/T000/B000/hook-secret-77");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer bearer-secret-12")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["version"], "cloudkeep.notification.v1");
    assert_eq!(body["id"], "ntf-acme-prod-7f3a");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["host"], "app1.acme-prod");
    assert_eq!(body["alerts"][0]["value"], 97.2);
    let back: Notification = serde_json::from_value(body).unwrap();
    assert_eq!(back, notification());
}

#[tokio::test]
async fn webhook_in_slack_format() {
    let sink = HttpSink::start();
    deliver(
        &webhook(&sink, WebhookFormat::Slack),
        &Destination::Webhook,
        &notification(),
    )
    .await
    .unwrap();
    let body = sink.wait_for_requests(1, WAIT)[0].json();
    assert_eq!(body["text"], render_subject(&notification()));
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], render_subject(&notification()));
    assert!(
        blocks[2]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(":red_circle: *app1.acme-prod* / `cpu`: *critical*")
    );
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["url"],
        "https://noc.example.org/platforms/acme-prod"
    );
}

#[tokio::test]
async fn webhook_in_alertmanager_format() {
    let sink = HttpSink::start();
    deliver(
        &webhook(&sink, WebhookFormat::Alertmanager),
        &Destination::Webhook,
        &notification(),
    )
    .await
    .unwrap();
    let body = sink.wait_for_requests(1, WAIT)[0].json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["groupKey"], "ntf-acme-prod-7f3a");
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "cloudkeep");
    assert_eq!(body["groupLabels"]["platform"], "acme-prod");
    assert_eq!(body["commonLabels"]["severity"], "critical");
    assert_eq!(
        body["externalURL"],
        "https://noc.example.org/platforms/acme-prod"
    );
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "cpu overloaded");
    assert_eq!(alert["labels"]["host"], "app1.acme-prod");
    assert_eq!(alert["labels"]["monitor"], "cpu");
    assert_eq!(alert["labels"]["team"], "ops");
    assert_eq!(
        alert["annotations"]["summary"],
        "acme-prod: cpu overloaded on app1 (97.2 ≥ 95)"
    );
    assert_eq!(alert["startsAt"], "2026-03-01T11:48:00Z");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn webhook_answered_500_twice_then_200_is_retried() {
    let sink = HttpSink::with_statuses(&[500, 500, 200]);
    let mut records = Vec::new();
    deliver_with_retries(
        &webhook(&sink, WebhookFormat::Json),
        &Destination::Webhook,
        &notification(),
        &fast_retries(),
        |record| records.push(record),
    )
    .await
    .unwrap();
    assert_eq!(sink.requests().len(), 3);
    assert_eq!(records.len(), 3);
    let first = records[0].error.as_deref().unwrap();
    assert!(
        first.starts_with("webhook POST http://127.0.0.1:") && first.contains("/…: HTTP 500: "),
        "{first}"
    );
    assert!(records[2].error.is_none());
}

#[tokio::test]
async fn webhook_answered_400_is_not_retried() {
    let sink = HttpSink::with_statuses(&[400]);
    let mut records = Vec::new();
    let err = deliver_with_retries(
        &webhook(&sink, WebhookFormat::Json),
        &Destination::Webhook,
        &notification(),
        &fast_retries(),
        |record| records.push(record),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeliveryError::HttpStatus { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.retryable());
    assert_eq!(records.len(), 1);
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test]
async fn a_429_is_retryable_and_carries_retry_after() {
    let sink = HttpSink::with_responses(
        vec![SinkResponse {
            status: 429,
            headers: vec![("retry-after".into(), "7".into())],
            body: "slow down".into(),
        }],
        SinkResponse::status(200),
    );
    let err = deliver(
        &webhook(&sink, WebhookFormat::Slack),
        &Destination::Webhook,
        &notification(),
    )
    .await
    .unwrap_err();
    assert!(err.retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_channel_refuses_a_destination_of_another_kind() {
    let sink = HttpSink::start();
    let err = deliver(
        &webhook(&sink, WebhookFormat::Json),
        &Destination::Phone("+15551234567".into()),
        &notification(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "webhook: invalid destination: a webhook channel cannot deliver to a phone number"
    );
    assert!(!err.retryable());
    assert!(sink.requests().is_empty());
}

/// Receivers that echo what they got (as debugging endpoints do) must not leak it through our errors.
#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let all_secrets = [
        "secret-token-42",
        "bearer-secret-12",
        "hook-secret-77",
        "k3y-9a",
        "gw-pass-9",
        "api-key-55",
        SMTP_PASSWORD,
        "wrong-pass-31b9",
    ];
    // The receiver echoes the credentials of the request it got.
    let echo = |status: u16, seen: &[&str]| {
        SinkResponse::json(
            status,
            &serde_json::json!({ "error": "echo", "seen": seen.join(" ") }),
        )
    };
    let mut errors: Vec<DeliveryError> = Vec::new();

    // Twilio answering 401 with the token.
    let sink = HttpSink::with_responses(
        vec![echo(
            401,
            &["Basic QUMwMTIzOnNlY3JldC10b2tlbi00Mg==", "secret-token-42"],
        )],
        SinkResponse::status(200),
    );
    errors.push(
        deliver(
            &Channel::sms(twilio_config(&sink)).unwrap(),
            &Destination::Phone("+15551234567".into()),
            &notification(),
        )
        .await
        .unwrap_err(),
    );

    // A templated gateway answering 500 with its key, header and password.
    let sink = HttpSink::with_responses(
        vec![echo(500, &["/send?key=k3y-9a", "api-key-55", "gw-pass-9"])],
        SinkResponse::status(200),
    );
    let templated = Channel::sms(SmsConfig {
        preset: None,
        url: format!("{}/send?key=k3y-9a", sink.url()),
        method: HttpMethod::Post,
        headers: BTreeMap::from([("X-Api-Key".to_owned(), "api-key-55".to_owned())]),
        body_template: Some("{{to}} {{text}}".into()),
        content_type: Some("text/plain".into()),
        username: Some("gw-user".into()),
        password: Some("gw-pass-9".into()),
        account_sid: None,
        auth_token: None,
        from: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    errors.push(
        deliver(
            &templated,
            &Destination::Phone("+15551234567".into()),
            &notification(),
        )
        .await
        .unwrap_err(),
    );

    // A webhook answering 403 with its URL and bearer token, and one whose receiver is gone.
    let sink = HttpSink::with_responses(
        vec![echo(
            403,
            &["/hooks/T000/B000/hook-secret-77", "bearer-secret-12"],
        )],
        SinkResponse::status(200),
    );
    errors.push(
        deliver(
            &webhook(&sink, WebhookFormat::Alertmanager),
            &Destination::Webhook,
            &notification(),
        )
        .await
        .unwrap_err(),
    );
    let mut debug_views = vec![
        format!("{templated:?}"),
        format!("{:?}", Channel::sms(twilio_config(&sink)).unwrap()),
        format!("{:?}", webhook(&sink, WebhookFormat::Slack)),
    ];
    let closed = Channel::webhook(WebhookConfig {
        url: format!(
            "http://127.0.0.1:{}/hooks/hook-secret-77?token=bearer-secret-12",
            cloudkeep_testkit::free_port()
        ),
        format: WebhookFormat::Json,
        headers: BTreeMap::new(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let unreachable = deliver(&closed, &Destination::Webhook, &notification())
        .await
        .unwrap_err();
    assert!(unreachable.retryable(), "{unreachable}");
    errors.push(unreachable);

    // SMTP refusing the password.
    if let Some(smtp) = smtp(authenticated(SmtpTls::StartTls)) {
        let mut config = smtp_config(&smtp, SmtpSecurity::Starttls);
        config.password = Some("wrong-pass-31b9".into());
        let channel = Channel::email(config).unwrap();
        errors.push(
            deliver(&channel, &to_oncall(), &notification())
                .await
                .unwrap_err(),
        );
        debug_views.push(format!("{channel:?}"));
    }
    for view in &debug_views {
        for secret in all_secrets {
            assert!(
                !view.contains(secret),
                "{secret:?} in the Debug view {view}"
            );
        }
    }

    assert!(errors.len() >= 4);
    for error in &errors {
        let shown = format!("{error} / {error:?}");
        for secret in all_secrets {
            assert!(!shown.contains(secret), "{secret:?} leaked in {shown}");
        }
    }
    // The echoes are still reported, redacted.
    for error in &errors[..3] {
        let shown = error.to_string();
        assert!(
            shown.contains("\"error\":\"echo\"") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
