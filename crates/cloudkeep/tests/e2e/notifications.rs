//! Notifications end to end: a real SMTP server (aiosmtpd, STARTTLS and AUTH) and a local HTTP receiver
//! standing in for the SMS provider and a webhook (the only mock: no SMS provider exists offline).

use std::path::Path;
use std::time::Duration;

use cloudkeep_client::Client;
use cloudkeep_protocol::alerting::{
    EventQuery, MaintenanceCreate, NotifyTestRequest, PostableAlert, ScheduleView, ScopeView,
};
use cloudkeep_protocol::api::TokenCreateRequest;
use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use cloudkeep_testkit::http_sink::HttpSink;
use cloudkeep_testkit::smtp::{SmtpOptions, SmtpTls, TestSmtp};

use crate::harness::{Process, TestServer, enrol_agent, wait_for};

const SMTP_USER: &str = "noc-relay";
const SMTP_PASSWORD: &str = "relay-secret-8d1f";

struct Peers {
    smtp: TestSmtp,
    sink: HttpSink,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// Starts the SMTP server and the HTTP receiver and writes a server config that routes every alert of
/// platform `shop` to the group `noc` (one contact with email, SMS and a webhook).
fn peers(group_wait: &str) -> Option<Peers> {
    let smtp = TestSmtp::start(SmtpOptions {
        tls: SmtpTls::StartTls,
        auth: Some((SMTP_USER.into(), SMTP_PASSWORD.into())),
        ..SmtpOptions::default()
    })?;
    let sink = HttpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca_file, smtp.ca_cert_pem()).unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"version = 1
[notify]
dashboard_url = "http://noc.example.test"
retry_attempts = 2
[notify.email]
host = "localhost"
port = {port}
security = "starttls"
username = "{SMTP_USER}"
password = "{SMTP_PASSWORD}"
from = "Cloudkeep NOC <noc@cloudkeep.test>"
ca_file = "{ca}"
[notify.sms]
url = "{sink}/sms"
content_type = "application/json"
body_template = '{{"to":"{{{{to}}}}","text":"{{{{text}}}}"}}'
[[notify.webhooks]]
name = "noc-hook"
url = "{sink}/hook"
[[notify.contacts]]
name = "oncall"
email = "oncall@example.test"
phone = "+441234567890"
webhooks = ["noc-hook"]
[[notify.groups]]
name = "noc"
members = ["oncall"]
[[notify.routes]]
platform = "shop"
to = ["noc"]
group_wait = "{group_wait}"
"#,
            port = smtp.port(),
            ca = ca_file.display(),
            sink = sink.url(),
        ),
    )
    .unwrap();
    Some(Peers {
        smtp,
        sink,
        _dir: dir,
        config,
    })
}

/// Platform `shop` with one host `edge1` and these monitors and rules.
fn shop_spec(monitors: serde_json::Value, rules: serde_json::Value) -> String {
    serde_json::json!({
        "version": 1,
        "platform": "shop",
        "isv": "acme",
        "tenant": "globex",
        "cloud": "gc-uk1",
        "hosts": [{ "name": "edge1", "components": [] }],
        "monitors": monitors,
        "rules": rules,
    })
    .to_string()
}

/// A heartbeat every second that goes critical after 3 missed reports (no warning level).
fn heartbeat_spec() -> String {
    shop_spec(
        serde_json::json!([{ "name": "heartbeat", "kind": "heartbeat", "interval": "1s" }]),
        serde_json::json!([{
            "monitor": "heartbeat",
            "metric": "cloudkeep_heartbeat_missed_intervals",
            "critical": 3,
            "clear": 1,
            "critical_name": "instance not responding"
        }]),
    )
}

/// A queue depth rule without `for`: critical at 100, told to `notify`.
fn queue_spec(notify: &[&str]) -> String {
    shop_spec(
        serde_json::json!([{ "name": "queue", "kind": "prometheus", "interval": "1s",
            "options": { "url": "http://127.0.0.1:9/metrics" } }]),
        serde_json::json!([{
            "monitor": "queue", "metric": "queue_depth", "critical": 100, "clear": 50,
            "no_data_after": "1h", "notify": notify
        }]),
    )
}

fn agent(server: &str, state_dir: &Path, token: Option<&str>) -> Process {
    crate::harness::agent(server, state_dir, "edge1", token)
}

/// Applies `spec` (platform `shop`) and starts an agent for `edge1` enrolled with a fresh join token.
async fn apply_and_enrol(server: &TestServer, spec: String, state_dir: &Path) -> Process {
    let admin = server.admin_client();
    admin.apply_spec("shop.json", spec).await.unwrap();
    let token = admin
        .create_token(&TokenCreateRequest {
            platform: "shop".into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    agent(&server.url(), state_dir, Some(&token.token))
}

/// A server in `dir` reading the peers' config.
async fn start_server(peers: &Peers, dir: &Path) -> TestServer {
    TestServer::start_with(
        &dir.join("server"),
        cloudkeep_testkit::free_port(),
        &["--config", peers.config.to_str().unwrap()],
    )
    .await
}

async fn event_kinds(admin: &Client, kind: &str) -> Vec<cloudkeep_protocol::alerting::EventView> {
    admin
        .events(&EventQuery {
            kind: Some(kind.into()),
            ..EventQuery::default()
        })
        .await
        .unwrap()
        .events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_pages_once_on_every_channel_and_its_return_sends_the_recovery() {
    let Some(peers) = peers("300ms") else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peers, dir.path()).await;
    let admin = server.admin_client();
    let state_dir = dir.path().join("agent");
    let agent_process = apply_and_enrol(&server, heartbeat_spec(), &state_dir).await;
    wait_for("the agent's first report", Duration::from_secs(30), || {
        let admin = admin.clone();
        async move {
            let hosts = admin.hosts().await.ok()?;
            hosts
                .hosts
                .iter()
                .any(|host| host.name == "edge1" && host.last_seen_ms.is_some())
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        peers.smtp.messages().is_empty(),
        "a reporting agent pages nobody"
    );

    agent_process.kill9();
    let mails = peers.smtp.wait_for_messages(1, Duration::from_secs(30));
    let page = &mails[0];
    assert_eq!(page.to, vec!["oncall@example.test".to_owned()]);
    assert!(
        page.subject.contains("[CRITICAL]") && page.subject.contains("shop"),
        "subject: {}",
        page.subject
    );
    assert!(
        page.body_text.contains("instance not responding") && page.body_text.contains("edge1"),
        "body: {}",
        page.body_text
    );
    assert!(
        page.body_text
            .contains("http://noc.example.test/platforms/shop"),
        "body links the dashboard: {}",
        page.body_text
    );
    // The SMS and the webhook went out too, each once.
    let requests = peers.sink.wait_for_requests(2, Duration::from_secs(10));
    let sms = requests
        .iter()
        .find(|request| request.target == "/sms")
        .expect("an SMS request");
    assert_eq!(sms.json()["to"], "+441234567890");
    assert!(
        sms.json()["text"]
            .as_str()
            .is_some_and(|text| text.contains("CRITICAL") && text.contains("edge1")),
        "sms: {}",
        sms.body_text()
    );
    let hook = requests
        .iter()
        .find(|request| request.target == "/hook")
        .expect("a webhook request");
    assert_eq!(hook.json()["status"], "firing");
    assert_eq!(hook.json()["platform"], "shop");

    // Still down a while later: no second page.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(peers.smtp.messages().len(), 1, "one page per problem");
    assert_eq!(peers.sink.requests().len(), 2);
    let deliveries = admin.deliveries().await.unwrap().deliveries;
    let mut channels: Vec<&str> = deliveries
        .iter()
        .filter(|delivery| delivery.status == "sent")
        .map(|delivery| delivery.channel.as_str())
        .collect();
    channels.sort_unstable();
    assert_eq!(channels, ["email", "sms", "webhook:noc-hook"]);
    assert_eq!(event_kinds(&admin, "notification_sent").await.len(), 3);

    // The agent comes back: one recovery on every channel.
    let _agent_again = agent(&server.url(), &state_dir, None);
    let mails = peers.smtp.wait_for_messages(2, Duration::from_secs(30));
    let recovery = &mails[1];
    assert!(
        recovery.subject.contains("[RESOLVED]"),
        "subject: {}",
        recovery.subject
    );
    let requests = peers.sink.wait_for_requests(4, Duration::from_secs(10));
    let resolved_hook = requests
        .iter()
        .filter(|request| request.target == "/hook")
        .nth(1)
        .expect("a second webhook request");
    assert_eq!(resolved_hook.json()["status"], "resolved");
    // The password never reaches the log.
    let log = server.process.output_text();
    assert!(!log.contains(SMTP_PASSWORD), "the SMTP password was logged");
}

fn cpu_sample(host_value: f64, at_ms: i64) -> Vec<u8> {
    remote_write::encode(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "queue_depth".into(),
                },
                Label {
                    name: "monitor".into(),
                    value: "queue".into(),
                },
            ],
            samples: vec![Sample {
                value: host_value,
                timestamp: at_ms,
            }],
        }],
    })
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::UNIX_EPOCH
            .elapsed()
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_holds_the_page_until_the_window_ends_and_rules_must_name_known_contacts() {
    let Some(peers) = peers("100ms") else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peers, dir.path()).await;
    let admin = server.admin_client();

    // A rule naming a contact nobody configured is refused with the path and the known names.
    let err = admin
        .apply_spec("shop.json", queue_spec(&["noc", "nobody"]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("rules[0].notify[1]: unknown contact or group \"nobody\"")
            && text.contains("noc"),
        "{text}"
    );
    assert!(
        admin.platforms().await.unwrap().platforms.is_empty(),
        "a refused spec stores nothing"
    );

    admin
        .apply_spec("shop.json", queue_spec(&["oncall"]))
        .await
        .unwrap();

    // The test-send reaches every channel and says so.
    let test = admin
        .notify_test(&NotifyTestRequest {
            contact: "oncall".into(),
            channel: None,
        })
        .await
        .unwrap();
    assert_eq!(test.deliveries.len(), 3, "{test:?}");
    assert!(
        test.deliveries
            .iter()
            .all(|delivery| delivery.status == "sent"),
        "{test:?}"
    );
    let mails = peers.smtp.wait_for_messages(1, Duration::from_secs(10));
    assert!(
        mails[0].subject.starts_with("[TEST]"),
        "{}",
        mails[0].subject
    );
    let unknown = admin
        .notify_test(&NotifyTestRequest {
            contact: "ghost".into(),
            channel: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404), "{unknown}");

    // A maintenance window over the platform, from in half a second for 4 seconds.
    let start_ms = now_ms() + 500;
    admin
        .create_maintenance(&MaintenanceCreate {
            scope: ScopeView::Platform("shop".into()),
            schedule: ScheduleView::OneOff {
                start_ms,
                end_ms: start_ms + 4_000,
            },
            comment: "queue migration".into(),
        })
        .await
        .unwrap();
    let agent = enrol_agent(&server.url(), &admin, "shop", "edge1").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    agent
        .remote_write(cpu_sample(250.0, now_ms()))
        .await
        .unwrap();

    let held = wait_for(
        "the page held by maintenance",
        Duration::from_secs(10),
        || {
            let admin = admin.clone();
            async move {
                let events = event_kinds(&admin, "notification_suppressed").await;
                (!events.is_empty()).then_some(events)
            }
        },
    )
    .await;
    assert!(
        held[0].message.contains("maintenance"),
        "{}",
        held[0].message
    );
    assert_eq!(
        peers.smtp.messages().len(),
        1,
        "only the test mail during maintenance"
    );

    // Still critical when the window ends: paged then.
    let mails = peers.smtp.wait_for_messages(2, Duration::from_secs(15));
    let page = &mails[1];
    assert!(page.subject.contains("[CRITICAL]"), "{}", page.subject);
    assert!(page.body_text.contains("queue_depth"), "{}", page.body_text);
    assert!(
        now_ms() >= start_ms + 4_000,
        "the page waited for the end of the window"
    );
    let kinds: Vec<String> = admin
        .events(&EventQuery::default())
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|event| event.kind)
        .collect();
    for kind in ["maintenance_started", "maintenance_ended", "state_change"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Writes a Prometheus rule file: one always-firing alert about `shop`, or no rule at all.
fn write_rules(path: &Path, firing: bool) {
    let rules = if firing {
        r#"groups:
  - name: cloudkeep-e2e
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: vector(1) > 0
        labels:
          severity: critical
          platform: shop
          host: edge1
        annotations:
          summary: checkout error rate above 5 %
"#
    } else {
        "groups: []\n"
    };
    std::fs::write(path, rules).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_rule_raises_and_resolves_a_cloudkeep_alert_through_the_alertmanager_api() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !cloudkeep_testkit::in_ci(),
            "{PROMETHEUS} missing (CI=true): apt-get install prometheus"
        );
        eprintln!("skipping: {PROMETHEUS} missing (apt-get install prometheus)");
        return;
    }
    let Some(peers) = peers("100ms") else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peers, dir.path()).await;
    let admin = server.admin_client();
    admin
        .apply_spec("shop.json", queue_spec(&[]))
        .await
        .unwrap();

    // Bad alerts are refused whole, with the index and field of each problem.
    let token = crate::harness::read_admin(&server.data_dir).token;
    let alert = |labels: serde_json::Value, ends_at: Option<&str>| PostableAlert {
        labels: serde_json::from_value(labels).unwrap(),
        ends_at: ends_at.map(str::to_owned),
        ..PostableAlert::default()
    };
    let refused = admin
        .raise_alerts(&[
            alert(serde_json::json!({ "alertname": "Fine" }), None),
            alert(serde_json::json!({ "job": "x" }), None),
            alert(serde_json::json!({ "alertname": "Late" }), Some("tomorrow")),
        ])
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    let text = refused.to_string();
    assert!(
        text.contains("alerts[1].labels.alertname: missing") && text.contains("alerts[2].endsAt"),
        "{text}"
    );
    assert!(
        admin.alerts(false).await.unwrap().alerts.is_empty(),
        "nothing accepted"
    );
    let anonymous = Client::new(&server.url(), None)
        .unwrap()
        .raise_alerts(&[alert(serde_json::json!({ "alertname": "X" }), None)])
        .await
        .unwrap_err();
    assert_eq!(anonymous.status(), Some(401));

    // Prometheus 2.42 with Cloudkeep as its Alertmanager.
    let prometheus_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prometheus_dir).unwrap();
    let rules = prometheus_dir.join("rules.yml");
    write_rules(&rules, true);
    let token_file = prometheus_dir.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let config = prometheus_dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  evaluation_interval: 1s
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - api_version: v2
      authorization:
        credentials_file: {token_file}
      static_configs:
        - targets: ["127.0.0.1:{port}"]
"#,
            rules = rules.display(),
            token_file = token_file.display(),
            port = server.port,
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(PROMETHEUS);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            prometheus_dir.join("data").display()
        ))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            cloudkeep_testkit::free_port()
        ))
        // Its first notification comes before its Alertmanager list is ready and is dropped; firing
        // alerts are sent again every resend delay (1 min by default).
        .arg("--rules.alert.resend-delay=1s");
    let prometheus = Process::spawn(command);

    let mails = peers.smtp.wait_for_messages(1, Duration::from_secs(30));
    assert!(
        mails[0].subject.contains("[CRITICAL]") && mails[0].subject.contains("shop"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0].body_text.contains("checkout error rate above 5 %"),
        "{}",
        mails[0].body_text
    );
    let alerts = admin.alerts(false).await.unwrap().alerts;
    let external = alerts
        .iter()
        .find(|alert| alert.source == "external")
        .expect("an external alert");
    assert_eq!(external.monitor, "CheckoutErrors");
    assert_eq!(external.host, "edge1");
    assert_eq!(external.isv, "acme", "placed under the platform's isv");

    // The rule goes away: Prometheus resolves the alert, and the recovery is sent.
    write_rules(&rules, false);
    let pid = prometheus.pid();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mails = peers.smtp.wait_for_messages(2, Duration::from_secs(30));
    assert!(
        mails[1].subject.contains("[RESOLVED]"),
        "{}",
        mails[1].subject
    );
    assert_eq!(mails.len(), 2, "Prometheus' repeats did not page again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_pages_through_its_own_channel_when_agents_go_silent_and_the_server_dies() {
    let Some(smtp) = TestSmtp::start(SmtpOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("server");
    let port = cloudkeep_testkit::free_port();
    let server = TestServer::start(&data_dir, port).await;
    let admin = server.admin_client();
    let agent_process = apply_and_enrol(
        &server,
        crate::harness::spec("shop", &["edge1"]),
        &dir.path().join("agent"),
    )
    .await;

    let watch_config = dir.path().join("watch.toml");
    std::fs::write(
        &watch_config,
        format!(
            r#"version = 1
to = ["ops"]
[notify.email]
host = "127.0.0.1"
port = {}
security = "none"
from = "Cloudkeep watcher <watch@cloudkeep.test>"
[[notify.contacts]]
name = "ops"
email = "ops@example.test"
"#,
            smtp.port()
        ),
    )
    .unwrap();
    let mut command = crate::harness::binary();
    command
        .args(["watch", "--server", &server.url(), "--config"])
        .arg(&watch_config)
        .args([
            "--interval",
            "1s",
            "--failures",
            "2",
            "--stale-after",
            "3s",
            "--token",
            &crate::harness::read_admin(&data_dir).token,
        ]);
    let watcher = Process::spawn(command);
    wait_for("the agent's first report", Duration::from_secs(30), || {
        let admin = admin.clone();
        async move {
            let hosts = admin.hosts().await.ok()?;
            hosts
                .hosts
                .iter()
                .any(|host| host.last_seen_ms.is_some())
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        smtp.messages().is_empty(),
        "all is well: {:?}",
        watcher.output_text()
    );

    // The only agent stops: after 3 s of silence and 2 probes, the watcher says so.
    agent_process.kill9();
    let mails = smtp.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(mails[0].to, vec!["ops@example.test".to_owned()]);
    assert!(
        mails[0].body_text.contains("no agent has reported")
            && mails[0].body_text.contains("edge1"),
        "{}",
        mails[0].body_text
    );

    // The server dies: the watcher, which depends on nothing of it, still pages.
    let TestServer { process, .. } = server;
    process.kill9();
    let mails = smtp.wait_for_messages(2, Duration::from_secs(20));
    assert!(
        mails[1].subject.contains("[CRITICAL]")
            && mails[1].body_text.contains("control plane not answering"),
        "{} / {}",
        mails[1].subject,
        mails[1].body_text
    );

    // Back: one recovery for the server; the agent is still silent, so nothing about it.
    let _restarted = TestServer::start(&data_dir, port).await;
    let mails = smtp.wait_for_messages(3, Duration::from_secs(30));
    assert!(
        mails[2].subject.contains("[RESOLVED]"),
        "{}",
        mails[2].subject
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.messages().len(), 3, "{:?}", watcher.output_text());
}
