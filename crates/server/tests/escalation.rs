//! Escalation and acknowledgement through the running notifier, driven by a fake clock, with a real SMTP
//! server (aiosmtpd) receiving the pages.

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
