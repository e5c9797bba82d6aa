//! Alert latency runs: `cloudkeep server` and Prometheus + Alertmanager, each with a fresh real SMTP
//! server on loopback, the same hosts and the same sample pattern (see `scenario`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cloudkeep_testkit::smtp::{SmtpOptions, TestSmtp};
use serde_json::json;

use super::scenario::{self, Matched, Sent, WriteTarget};
use crate::bench::CommonArgs;
use crate::child::{self, Proc};
use crate::http;

/// Everything a latency run needs besides the contestant.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: Vec<String>,
    pub spacing: Duration,
    /// How long to wait for the last mail after the last sample.
    pub mail_timeout: Duration,
    /// Extra wait after the last expected mail, to catch mails that should not come.
    pub settle: Duration,
}

/// One contestant's result.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    /// The intervals it ran with, printed under the table.
    pub settings: String,
    pub sent: Vec<Sent>,
    pub matched: Matched,
}

impl Outcome {
    /// Latencies sorted, ms.
    pub fn sorted(&self) -> Vec<i64> {
        let mut latencies = self.matched.latencies_ms.clone();
        latencies.sort_unstable();
        latencies
    }

    /// The sorted acknowledgement times of the crossing samples, ms.
    pub fn acks_ms(&self) -> Vec<f64> {
        let mut acks: Vec<f64> = self
            .sent
            .iter()
            .map(|s| s.ack.as_secs_f64() * 1000.0)
            .collect();
        acks.sort_by(f64::total_cmp);
        acks
    }
}

/// Starts a plain SMTP server (aiosmtpd) or says why it cannot.
fn start_smtp() -> Result<TestSmtp> {
    TestSmtp::start(SmtpOptions::default()).context(
        "/usr/bin/python3 cannot import aiosmtpd: apt-get install python3-aiosmtpd \
         (or set CLOUDKEEP_SMTP_PYTHON)",
    )
}

/// Sends the calm values, checks nobody is mailed for them, then runs the crossings.
fn run_scenario(
    smtp: &TestSmtp,
    target: &WriteTarget,
    plan: &Plan,
    calm_wait: Duration,
    procs: &mut [&mut Proc],
) -> Result<(Vec<Sent>, Matched)> {
    let agent = http::agent(Duration::from_secs(30));
    let calm: Vec<(&str, f64)> = plan
        .hosts
        .iter()
        .map(|host| (host.as_str(), scenario::CALM_VALUE))
        .collect();
    target
        .push(&agent, &scenario::write_body(&calm, super::wall_ms()))
        .context("sending the calm values")?;
    std::thread::sleep(calm_wait);
    let early = smtp.messages();
    if let Some(first) = early.first() {
        bail!(
            "{} mail(s) arrived for values below every threshold; first subject: {}",
            early.len(),
            first.subject
        );
    }
    let sent = scenario::send_crossings(&agent, target, &plan.hosts, plan.spacing)?;
    for proc in procs.iter_mut() {
        proc.ensure_running()?;
    }
    let matched = scenario::collect(smtp, &sent, plan.mail_timeout, plan.settle);
    for proc in procs.iter_mut() {
        proc.ensure_running()?;
    }
    Ok((sent, matched))
}

/// `cloudkeep server` with `[notify]` sending plain SMTP to the test server.
pub fn cloudkeep(bin: &Path, common: &CommonArgs, plan: &Plan) -> Result<Outcome> {
    let tmp = common.temp_dir("alerts-cloudkeep")?;
    let smtp = start_smtp()?;
    let config = tmp.path().join("server.toml");
    std::fs::write(&config, cloudkeep_config(smtp.port()))
        .with_context(|| format!("writing {}", config.display()))?;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    let addr = child::free_tcp_addr()?;
    let mut command = crate::cloudkeep::server_command(bin, &data, &addr.to_string());
    command.arg("--config").arg(&config);
    let mut server = Proc::spawn(
        "cloudkeep server",
        &mut command,
        &tmp.path().join("server.log"),
    )?;
    let base = format!("http://{addr}");
    server.wait_ready(&format!("{base}/readyz"), Duration::from_secs(60))?;
    let token = crate::cloudkeep::admin_token(&data, Duration::from_secs(10))?;
    apply_spec(&base, &token, &latency_spec(&plan.hosts))?;
    let target = WriteTarget {
        url: format!("{base}/api/v1/write"),
        bearer: Some(token),
    };
    let (sent, matched) = run_scenario(
        &smtp,
        &target,
        plan,
        Duration::from_secs(2),
        &mut [&mut server],
    )?;
    server.terminate(Duration::from_secs(30))?;
    Ok(Outcome {
        name: "cloudkeep".into(),
        settings: "evaluated on ingest (no interval); route group_wait = \"0s\" (the smallest \
                   accepted; the default is 500ms); plain SMTP"
            .into(),
        sent,
        matched,
    })
}

/// The server config: one contact with an email, every alert routed to it at once.
fn cloudkeep_config(smtp_port: u16) -> String {
    format!(
        r#"version = 1
[notify]
retry_attempts = 1
[notify.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Cloudkeep bench <cloudkeep@bench.test>"
[[notify.contacts]]
name = "bench"
email = "bench@example.test"
# The largest accepted: the benchmark raises hundreds of alerts in a minute.
max_per_hour = 3600
[[notify.routes]]
to = ["bench"]
group_wait = "0s"
"#
    )
}

/// One platform; every host runs a `load` monitor (no shipped default rules, no check status, so
/// nothing but the benchmark's rule can mail) with one rule on `bench_value`, no `for`.
fn latency_spec(hosts: &[String]) -> serde_json::Value {
    json!({
        "version": 1,
        "platform": "alert-bench",
        "isv": "bench",
        "tenant": "bench",
        "cloud": "local",
        "hosts": hosts.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
        "monitors": [{"name": "bench", "kind": "load"}],
        "rules": [{
            "monitor": "bench",
            "metric": scenario::METRIC,
            "critical": 100,
            "clear": 50,
            "no_data_after": "1h",
            "critical_name": "bench value high"
        }],
    })
}

/// `POST /api/v1/platforms`, as `cloudkeep spec apply` sends it.
pub fn apply_spec(base: &str, token: &str, spec: &serde_json::Value) -> Result<()> {
    let agent = http::agent(Duration::from_secs(300));
    let url = format!("{base}/api/v1/platforms");
    let mut response = agent
        .post(&url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("X-Cloudkeep-Source", "bench-spec.json")
        .send(serde_json::to_vec(spec)?.as_slice())
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .unwrap_or_default();
    if !status.is_success() {
        bail!(
            "applying the spec: HTTP {status}: {}",
            http::truncate(&text, 2000)
        );
    }
    Ok(())
}

/// Prometheus' and Alertmanager's intervals for one run.
#[derive(Debug, Clone)]
pub struct PrometheusSetup {
    pub prometheus_bin: std::path::PathBuf,
    pub alertmanager_bin: std::path::PathBuf,
    /// `evaluation_interval` of the rule group, e.g. "1s".
    pub evaluation_interval: String,
}

/// Prometheus (remote-write receiver, one alerting rule) → Alertmanager → SMTP.
pub fn prometheus(setup: &PrometheusSetup, common: &CommonArgs, plan: &Plan) -> Result<Outcome> {
    let tmp = common.temp_dir("alerts-prometheus")?;
    let smtp = start_smtp()?;
    let am_addr = child::free_tcp_addr()?;
    let am_config = tmp.path().join("alertmanager.yml");
    std::fs::write(&am_config, alertmanager_config(smtp.port()))?;
    let am_data = tmp.path().join("alertmanager-data");
    std::fs::create_dir_all(&am_data)?;
    let mut alertmanager = Proc::spawn(
        "alertmanager",
        std::process::Command::new(&setup.alertmanager_bin)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", am_data.display()))
            .arg(format!("--web.listen-address={am_addr}"))
            // Empty: no gossip cluster, so no peer wait before notifying.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn"),
        &tmp.path().join("alertmanager.log"),
    )?;
    alertmanager.wait_ready(
        &format!("http://{am_addr}/-/ready"),
        Duration::from_secs(60),
    )?;

    let prom_addr = child::free_tcp_addr()?;
    let rules = tmp.path().join("rules.yml");
    std::fs::write(&rules, prometheus_rules(&setup.evaluation_interval))?;
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        prometheus_config(&setup.evaluation_interval, &rules, &am_addr.to_string()),
    )?;
    let prom_data = tmp.path().join("prometheus-data");
    std::fs::create_dir_all(&prom_data)?;
    let mut prometheus = Proc::spawn(
        "prometheus",
        std::process::Command::new(&setup.prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", prom_data.display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn"),
        &tmp.path().join("prometheus.log"),
    )?;
    prometheus.wait_ready(
        &format!("http://{prom_addr}/-/ready"),
        Duration::from_secs(120),
    )?;
    wait_alertmanager_discovered(&mut prometheus, &prom_addr.to_string())?;
    let target = WriteTarget {
        url: format!("http://{prom_addr}/api/v1/write"),
        bearer: None,
    };
    // Two evaluations at least see the calm values before the crossings start.
    let calm_wait =
        Duration::from_secs(2) + 2 * parse_interval(&setup.evaluation_interval).unwrap_or_default();
    let (sent, matched) = run_scenario(
        &smtp,
        &target,
        plan,
        calm_wait,
        &mut [&mut prometheus, &mut alertmanager],
    )?;
    prometheus.terminate(Duration::from_secs(30))?;
    alertmanager.terminate(Duration::from_secs(30))?;
    Ok(Outcome {
        name: format!(
            "prometheus 2.42 + alertmanager 0.25 (eval {})",
            setup.evaluation_interval
        ),
        settings: format!(
            "prometheus evaluation_interval {}; alertmanager group_by [alertname, host], \
             group_wait 0s, group_interval 1s (0 is refused; it does not delay a group's first \
             mail), cluster off; plain SMTP",
            setup.evaluation_interval
        ),
        sent,
        matched,
    })
}

/// Waits until Prometheus lists the Alertmanager as active. Its notifier learns targets through
/// service discovery, which reports a few seconds after start; alerts firing before that are
/// dropped and only sent again after `--rules.alert.resend-delay` (1 min), which would measure the
/// setup, not the pipeline.
fn wait_alertmanager_discovered(prometheus: &mut Proc, addr: &str) -> Result<()> {
    let agent = http::agent(Duration::from_secs(5));
    let url = format!("http://{addr}/api/v1/alertmanagers");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no answer yet");
    while std::time::Instant::now() < deadline {
        prometheus.ensure_running()?;
        match http::get_json(&agent, &url, &[], None) {
            Ok(v)
                if v["data"]["activeAlertmanagers"]
                    .as_array()
                    .is_some_and(|active| !active.is_empty()) =>
            {
                return Ok(());
            }
            Ok(v) => last = v.to_string(),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("prometheus did not discover its alertmanager within 60 s (last: {last})")
}

/// "1s", "100ms" → a Duration (only the forms this harness writes).
pub fn parse_interval(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

fn alertmanager_config(smtp_port: u16) -> String {
    format!(
        r#"global:
  smtp_smarthost: '127.0.0.1:{smtp_port}'
  smtp_from: 'alertmanager@bench.test'
  smtp_require_tls: false
route:
  receiver: bench
  group_by: ['alertname', 'host']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: bench
    email_configs:
      - to: 'bench@example.test'
        send_resolved: false
        headers:
          Subject: 'BenchValueHigh {{{{ .GroupLabels.host }}}}'
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.host }}}} {{{{ end }}}}'
        html: '{{{{ range .Alerts }}}}{{{{ .Labels.host }}}} {{{{ end }}}}'
"#
    )
}

fn prometheus_rules(interval: &str) -> String {
    format!(
        r#"groups:
  - name: bench
    interval: {interval}
    rules:
      - alert: BenchValueHigh
        expr: {metric} > 100
        labels:
          severity: critical
"#,
        metric = scenario::METRIC
    )
}

fn prometheus_config(interval: &str, rules: &Path, alertmanager: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1m
  evaluation_interval: {interval}
rule_files:
  - '{rules}'
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{alertmanager}']
"#,
        rules = rules.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_interval("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_interval("1m"), None);
    }

    #[test]
    fn alertmanager_template_braces_survive_format() {
        let text = alertmanager_config(2525);
        assert!(text.contains("'BenchValueHigh {{ .GroupLabels.host }}'"));
        assert!(text.contains("127.0.0.1:2525"));
    }
}
