//! Metrics from real peers: collectd 5.12 (signed network protocol and write_http JSON) sending to the
//! server, and the agent running node_exporter scrapes and Nagios plugins from a spec. Bad input on the
//! same paths is rejected with a clear error while good data keeps flowing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudkeep_client::Client;
use cloudkeep_protocol::api::TokenCreateRequest;

use crate::harness::{Process, TestServer, wait_for};

const COLLECTD: &str = "/usr/sbin/collectd";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// Whether `path` exists; outside CI a missing tool skips the test, in CI it fails it.
fn tool(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        !cloudkeep_testkit::in_ci(),
        "{path} missing (CI=true): apt-get install {package}"
    );
    eprintln!("skipping: {path} missing (apt-get install {package})");
    false
}

/// The latest value of each series matching `selector`, by one label's value.
async fn latest_by(client: &Client, selector: &str, label: &str) -> Vec<(String, f64)> {
    let Ok(answer) = client
        .query_range(selector, "now-10m", "now", None, None)
        .await
    else {
        return Vec::new();
    };
    answer
        .series
        .iter()
        .filter_map(|series| {
            let value = series.points.last()?.1?;
            let key = series.labels.get(label).cloned().unwrap_or_default();
            Some((key, value))
        })
        .collect()
}

/// Waits (30 s at most) until a series matching `selector` has `label` = `value`; every latest value by `label`.
async fn wait_for_series(
    client: &Client,
    selector: &str,
    label: &str,
    value: &str,
) -> Vec<(String, f64)> {
    wait_for(
        &format!("{selector} with {label}={value}"),
        Duration::from_secs(30),
        || async move {
            let values = latest_by(client, selector, label).await;
            values
                .iter()
                .any(|(found, _)| found == value)
                .then_some(values)
        },
    )
    .await
}

fn collectd_config(dir: &Path, hostname: &str, output: &str) -> PathBuf {
    let base = dir.join(hostname);
    std::fs::create_dir_all(&base).unwrap();
    let config = base.join("collectd.conf");
    std::fs::write(
        &config,
        format!(
            r#"Hostname "{hostname}"
FQDNLookup false
Interval 1
BaseDir "{base}"
PIDFile "{base}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
AutoLoadPlugin false
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
<Plugin df>
  MountPoint "/"
  IgnoreSelected false
</Plugin>
{output}
"#,
            base = base.display()
        ),
    )
    .unwrap();
    config
}

fn collectd(config: &Path) -> Process {
    let mut command = std::process::Command::new(COLLECTD);
    command.arg("-f").arg("-C").arg(config);
    Process::spawn(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_collectd_values_appear_under_its_host_and_bad_packets_are_rejected() {
    if !tool(COLLECTD, "collectd-core") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let udp_port = cloudkeep_testkit::free_port();
    let server_config = dir.path().join("server.toml");
    std::fs::write(
        &server_config,
        format!(
            r#"version = 1
[collectd]
listen = "127.0.0.1:{udp_port}"
security_level = "sign"
users = {{ ck = "collectd-secret" }}
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(
        &dir.path().join("server"),
        cloudkeep_testkit::free_port(),
        &["--config", server_config.to_str().unwrap()],
    )
    .await;
    let admin = server.admin_client();
    let token = crate::harness::read_admin(&server.data_dir).token;

    // Garbage first: random bytes, a truncated part, an unsigned packet where signing is required.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let unsigned_host_part = {
        let mut part = vec![0x00, 0x00, 0x00, 0x0b];
        part.extend_from_slice(b"forged\0");
        part
    };
    for datagram in [
        b"\xde\xad\xbe\xef not collectd at all".to_vec(),
        vec![0x00, 0x00, 0x00, 0xff, 0x61],
        unsigned_host_part,
    ] {
        socket.send_to(&datagram, ("127.0.0.1", udp_port)).unwrap();
    }
    let bad_json = reqwest_post(&server.url(), &token, "{\"not\": a list").await;
    assert_eq!(bad_json.0, 400, "{}", bad_json.1);
    assert!(bad_json.1.contains("collectd"), "{}", bad_json.1);

    let signed = collectd(&collectd_config(
        dir.path(),
        "udp-host",
        &format!(
            r#"LoadPlugin network
<Plugin network>
  <Server "127.0.0.1" "{udp_port}">
    SecurityLevel "Sign"
    Username "ck"
    Password "collectd-secret"
  </Server>
</Plugin>"#
        ),
    ));
    let http = collectd(&collectd_config(
        dir.path(),
        "http-host",
        &format!(
            r#"LoadPlugin write_http
<Plugin write_http>
  <Node "cloudkeep">
    URL "{}/api/v1/collectd"
    Format "JSON"
    Header "Authorization: Bearer {token}"
    StoreRates false
    BufferSize 4096
  </Node>
</Plugin>"#,
            server.url()
        ),
    ));

    for host in ["udp-host", "http-host"] {
        let cpu = wait_for_series(
            &admin,
            &format!("collectd_cpu_total{{host=\"{host}\"}}"),
            "type",
            "idle",
        )
        .await;
        assert!(
            cpu.iter().all(|(_, value)| *value >= 0.0),
            "{host}: {cpu:?}"
        );
        let memory = wait_for_series(
            &admin,
            &format!("collectd_memory{{host=\"{host}\"}}"),
            "memory",
            "used",
        )
        .await;
        let used = memory
            .iter()
            .find(|(kind, _)| kind == "used")
            .map(|(_, value)| *value)
            .unwrap();
        assert!(used > 1e6, "{host}: used memory {used} bytes");
        let df = wait_for_series(
            &admin,
            &format!("collectd_df_df_complex{{host=\"{host}\", df=\"root\"}}"),
            "type",
            "used",
        )
        .await;
        assert!(
            df.iter()
                .any(|(kind, value)| kind == "used" && *value > 0.0),
            "{host}: {df:?}"
        );
    }
    // The forged host never appeared, and each rejection was logged with its sender and reason.
    let forged = latest_by(&admin, "{host=\"forged\"}", "host").await;
    assert!(forged.is_empty(), "{forged:?}");
    let log = server.process.output_text();
    assert!(
        log.matches("collectd datagram rejected").count() >= 3,
        "{log}"
    );
    drop((signed, http));
}

/// POSTs `body` as write_http JSON; (status, body).
async fn reqwest_post(url: &str, token: &str, body: &str) -> (u16, String) {
    // The client crate has no raw-body call; a plain HTTP/1.1 request over TCP says exactly what is sent.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /api/v1/collectd HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_scrapes_node_exporter_and_runs_nagios_plugins_from_the_spec() {
    if !tool(NODE_EXPORTER, "prometheus-node-exporter")
        || !tool(&format!("{PLUGINS}/check_disk"), "monitoring-plugins-basic")
        || !tool(
            &format!("{PLUGINS}/check_http"),
            "monitoring-plugins-standard",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter_port = cloudkeep_testkit::free_port();
    let mut exporter_command = std::process::Command::new(NODE_EXPORTER);
    exporter_command.arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"));
    let _exporter = Process::spawn(exporter_command);
    let server =
        TestServer::start(&dir.path().join("server"), cloudkeep_testkit::free_port()).await;
    let admin = server.admin_client();
    let plugin = |name: &str| format!("{PLUGINS}/{name}");
    let spec = serde_json::json!({
        "version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "gc-uk1",
        "hosts": [{ "name": "edge1", "components": [] }],
        "monitors": [
            { "name": "node", "kind": "prometheus", "interval": "1s", "options": {
                "url": format!("http://127.0.0.1:{exporter_port}/metrics"),
                "relabel": [{ "source_labels": ["__name__"], "regex": "node_(load1|memory_MemAvailable_bytes|filesystem_avail_bytes)", "action": "keep" }]
            }},
            { "name": "disk", "kind": "command", "interval": "1s",
              "options": { "command": [plugin("check_disk"), "-w", "1%", "-c", "1%", "-p", "/"] } },
            { "name": "load", "kind": "command", "interval": "1s",
              "options": { "command": [plugin("check_load"), "-w", "1000,1000,1000", "-c", "2000,2000,2000"] } },
            { "name": "procs", "kind": "command", "interval": "1s",
              "options": { "command": [plugin("check_procs"), "-w", "1:", "-c", "1:"] } },
            { "name": "api", "kind": "command", "interval": "1s",
              "options": { "command": [plugin("check_http"), "-H", "127.0.0.1", "-p", server.port.to_string(), "-u", "/healthz"] } },
            { "name": "broken", "kind": "command", "interval": "1s",
              "options": { "command": ["/bin/sh", "-c", "echo 'garbage | x=;;; ==='; exit 7"] } }
        ]
    });
    admin
        .apply_spec("shop.json", spec.to_string())
        .await
        .unwrap();
    let token = admin
        .create_token(&TokenCreateRequest {
            platform: "shop".into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    let _agent = crate::harness::agent(
        &server.url(),
        &dir.path().join("agent"),
        "edge1",
        Some(&token.token),
    );

    // The exporter's samples, relabelled: only the kept names arrive, under the agent's host.
    let scraped = wait_for("node_exporter samples", Duration::from_secs(40), || {
        let admin = admin.clone();
        async move {
            let names = latest_by(
                &admin,
                "{__name__=~\"node_.*\", host=\"edge1\"}",
                "__name__",
            )
            .await;
            (names.iter().any(|(name, _)| name == "node_load1")
                && names
                    .iter()
                    .any(|(name, _)| name == "node_memory_MemAvailable_bytes"))
            .then_some(names)
        }
    })
    .await;
    assert!(
        scraped.iter().all(|(name, _)| name == "node_load1"
            || name == "node_memory_MemAvailable_bytes"
            || name == "node_filesystem_avail_bytes"),
        "relabelling dropped the rest: {scraped:?}"
    );

    // Every plugin's status and perfdata, stored per monitor.
    let statuses = wait_for("every check's status", Duration::from_secs(40), || {
        let admin = admin.clone();
        async move {
            let statuses = latest_by(&admin, "check_status{host=\"edge1\"}", "monitor").await;
            (statuses.len() >= 6).then_some(statuses)
        }
    })
    .await;
    let status = |monitor: &str| {
        statuses
            .iter()
            .find(|(name, _)| name == monitor)
            .map(|(_, value)| *value)
    };
    for monitor in ["disk", "load", "procs", "api", "node"] {
        assert_eq!(status(monitor), Some(0.0), "{monitor} ok: {statuses:?}");
    }
    assert_eq!(status("broken"), Some(3.0), "bad plugin output is unknown");
    let perfdata = latest_by(&admin, "check_perfdata{host=\"edge1\"}", "monitor").await;
    for monitor in ["disk", "load", "procs", "api"] {
        assert!(
            perfdata.iter().any(|(name, _)| name == monitor),
            "{monitor} perfdata stored: {perfdata:?}"
        );
    }
    let load = latest_by(
        &admin,
        "check_perfdata{host=\"edge1\", monitor=\"load\"}",
        "label",
    )
    .await;
    assert!(
        load.iter()
            .any(|(label, value)| label == "load1" && *value >= 0.0),
        "{load:?}"
    );
    // The broken plugin's alert says what was wrong with it.
    let alert = wait_for("the broken plugin's alert", Duration::from_secs(20), || {
        let admin = admin.clone();
        async move {
            admin
                .alerts(false)
                .await
                .ok()?
                .alerts
                .into_iter()
                .find(|alert| alert.monitor == "broken" && alert.state == "unknown")
        }
    })
    .await;
    assert!(
        alert.message.contains("exited with code 7"),
        "{}",
        alert.message
    );
}
