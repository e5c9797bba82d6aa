//! The running evaluator and notifier driven by a fake clock: escalation, acknowledgement and no data,
//! with a real SMTP server (aiosmtpd) receiving the pages.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_protocol::alerting::{EventQuery, PostableAlert};
use cloudkeep_server::{Server, ServerConfig};
use cloudkeep_stdx::FakeClock;
use cloudkeep_testkit::smtp::{ReceivedMail, SmtpOptions, TestSmtp};

const START_MS: i64 = 1_800_000_000_000;

fn config(smtp_port: u16, data_dir: &Path) -> ServerConfig {
    let text = format!(
        r#"version = 1
[notify]
retry_attempts = 1
[notify.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Cloudkeep <noc@cloudkeep.test>"
[[notify.contacts]]
name = "first-line"
email = "l1@example.test"
[[notify.contacts]]
name = "second-line"
email = "l2@example.test"
[[notify.groups]]
name = "l1"
members = ["first-line"]
escalate_after = "1m"
escalate_to = "l2"
[[notify.groups]]
name = "l2"
members = ["second-line"]
[[notify.routes]]
to = ["l1"]
group_wait = "0s"
"#
    );
    ServerConfig::from_toml(Path::new("test.toml"), &text, data_dir).unwrap()
}

fn alert(name: &str) -> PostableAlert {
    PostableAlert {
        labels: [("alertname", name), ("platform", "shop"), ("host", "db1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..PostableAlert::default()
    }
}

async fn wait_for_mails(smtp: &TestSmtp, count: usize) -> Vec<ReceivedMail> {
    tokio::task::block_in_place(|| smtp.wait_for_messages(count, Duration::from_secs(20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alert_escalates_to_the_next_group_and_an_acknowledged_one_does_not() {
    let Some(smtp) = TestSmtp::start(SmtpOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(START_MS));
    let (server, admin) = Server::start(config(smtp.port(), dir.path()), clock.clone())
        .await
        .unwrap();
    let admin = server
        .authenticate(Some(&admin.expect("a new installation").token))
        .await
        .unwrap();

    server
        .raise_external_alerts(&admin, &[alert("DiskFull")])
        .await
        .unwrap();
    let mails = wait_for_mails(&smtp, 1).await;
    assert_eq!(mails[0].to, vec!["l1@example.test".to_owned()]);
    assert!(
        !mails[0].subject.contains("ESCALATION"),
        "{}",
        mails[0].subject
    );

    // A second alert, acknowledged right away.
    server
        .raise_external_alerts(&admin, &[alert("CpuHot")])
        .await
        .unwrap();
    let mails = wait_for_mails(&smtp, 2).await;
    assert!(
        mails[1].body_text.contains("CpuHot"),
        "{}",
        mails[1].body_text
    );
    let cpu = server
        .alerts(&admin, false)
        .await
        .unwrap()
        .alerts
        .into_iter()
        .find(|alert| alert.monitor == "CpuHot")
        .unwrap();
    server
        .acknowledge(&admin, &cpu.id, "looking at it")
        .await
        .unwrap();

    // Under a minute: nothing more.
    clock.advance_ms(50_000);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(smtp.messages().len(), 2);

    // Past the minute: the unacknowledged alert goes to l2, once; the acknowledged one stays quiet.
    clock.advance_ms(11_000);
    let mails = wait_for_mails(&smtp, 3).await;
    assert_eq!(mails[2].to, vec!["l2@example.test".to_owned()]);
    assert!(
        mails[2].subject.contains("[ESCALATION 1] shop:")
            && mails[2].body_text.contains("DiskFull"),
        "{} / {}",
        mails[2].subject,
        mails[2].body_text
    );
    clock.advance_ms(120_000);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        smtp.messages().len(),
        3,
        "l2 does not escalate further and the acknowledged alert never escalates"
    );
    let escalated = server
        .events(
            &admin,
            &EventQuery {
                kind: Some("escalated".into()),
                ..EventQuery::default()
            },
        )
        .await
        .unwrap()
        .events;
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert_eq!(escalated[0].monitor, "DiskFull");
    server.shutdown().await;
}

fn cpu_sample(host: &str, value: f64, at_ms: i64) -> Vec<u8> {
    use cloudkeep_protocol::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
    encode(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "host_cpu_busy_percent".into(),
                },
                Label {
                    name: "host".into(),
                    value: host.into(),
                },
            ],
            samples: vec![Sample {
                value,
                timestamp: at_ms,
            }],
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_series_goes_unknown_at_its_deadline_and_its_next_sample_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(START_MS));
    let config = ServerConfig::from_toml(Path::new("t.toml"), "version = 1\n", dir.path()).unwrap();
    let (server, admin) = Server::start(config, clock.clone()).await.unwrap();
    let admin = server
        .authenticate(Some(&admin.expect("a new installation").token))
        .await
        .unwrap();
    let spec = serde_json::json!({
        "version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "gc-uk1",
        "hosts": [{ "name": "h1", "components": [] }],
        "monitors": [{ "name": "cpu", "kind": "cpu", "interval": "10s" }],
        "rules": [{ "monitor": "cpu", "metric": "host_cpu_busy_percent", "warning": 80,
                    "no_data_after": "30s" }]
    });
    server
        .apply_spec(&admin, "shop.json", &spec.to_string())
        .await
        .unwrap();
    server
        .ingest_remote_write(&admin, cpu_sample("h1", 40.0, START_MS))
        .await
        .unwrap();
    server.alerting().sync().await;
    let state = |server: Server, admin: cloudkeep_server::Principal| async move {
        server
            .alerts(&admin, true)
            .await
            .unwrap()
            .alerts
            .into_iter()
            .find(|alert| alert.monitor == "cpu")
            .map(|alert| (alert.state, alert.message))
    };

    // 29 s of silence: still fine (no alert row at all, nothing ever changed).
    clock.advance_ms(29_000);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(state(server.clone(), admin.clone()).await, None);

    // Past 30 s: unknown, saying why.
    clock.advance_ms(2_000);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (unknown, message) = loop {
        if let Some(found) = state(server.clone(), admin.clone()).await {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "never went unknown");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(unknown, "unknown");
    assert!(message.contains("no data from h1"), "{message}");

    // A sample again: ok.
    server
        .ingest_remote_write(&admin, cpu_sample("h1", 41.0, START_MS + 31_500))
        .await
        .unwrap();
    server.alerting().sync().await;
    let (back, _) = state(server.clone(), admin.clone()).await.unwrap();
    assert_eq!(back, "ok");
    server.shutdown().await;
}
