//! Tests of the `prometheus` check against a tiny local server and a real Debian prometheus-node-exporter.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::check::net_testutil::{
    TestResponse, TinyHttpServer, closed_port, label, options, samples_named, single_value,
    tool_available,
};

const EXPOSITION: &str = r#"# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.25
node_load5 0.5
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1234.5
node_cpu_seconds_total{cpu="0",mode="user"} 99 1700000000000
app_info{host="db1",version="1.2"} 1
"#;

async fn run_prometheus(options_json: serde_json::Value) -> CheckOutcome {
    let mut check = PrometheusCheck::from_options(&options(options_json)).unwrap();
    assert_eq!(check.kind(), "prometheus");
    check.run(1_700_000_000_000).await
}

fn exposition_server_response(body: &str) -> TestResponse {
    let mut response = TestResponse::text(200, body);
    response.headers = vec![(
        "Content-Type".to_owned(),
        "text/plain; version=0.0.4; charset=utf-8".to_owned(),
    )];
    response
}

#[test]
fn option_errors_name_the_field() {
    let error = PrometheusCheck::from_options(&options(json!({}))).unwrap_err();
    assert_eq!(error.to_string(), "options: missing field `url`");
    let error =
        PrometheusCheck::from_options(&options(json!({"url": "127.0.0.1:9100"}))).unwrap_err();
    assert_eq!(error.path, ".url");
    let error = PrometheusCheck::from_options(&options(json!({
        "url": "http://127.0.0.1:9100/metrics",
        "relabel": [{"action": "keep", "source_labels": ["__name__"]}, {"action": "explode"}],
    })))
    .unwrap_err();
    assert_eq!(error.path, ".relabel[1].action");
    assert!(
        error.message.contains("unknown variant `explode`"),
        "{error}"
    );
    let error = PrometheusCheck::from_options(&options(json!({
        "url": "http://127.0.0.1:9100/metrics",
        "relabel": [{"action": "keep", "source_labels": ["__name__"], "regex": "node_(" }],
    })))
    .unwrap_err();
    assert_eq!(error.path, ".relabel[0].regex");
    let error = PrometheusCheck::from_options(&options(json!({
        "url": "http://127.0.0.1:9100/metrics", "timeout": "0s",
    })))
    .unwrap_err();
    assert_eq!(error.to_string(), "options.timeout: must be greater than 0");
}

#[tokio::test]
async fn scrapes_relabels_and_counts() {
    let server = TinyHttpServer::start(|request| {
        assert!(
            request
                .header("Accept")
                .is_some_and(|accept| accept.starts_with("text/plain;version=0.0.4")),
            "{request:?}"
        );
        exposition_server_response(EXPOSITION)
    })
    .await;
    let outcome = run_prometheus(json!({"url": server.url("/metrics")})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with(&format!(
            "scraped 5 samples from {} in ",
            server.url("/metrics")
        )),
        "{}",
        outcome.message
    );
    assert_eq!(single_value(&outcome.samples, "node_load1"), 0.25);
    let idle = samples_named(&outcome.samples, "node_cpu_seconds_total");
    assert_eq!(idle.len(), 2);
    assert_eq!(label(idle[0], "mode"), Some("idle"));
    // The runner owns `host`: a scraped one is kept as `exported_host`.
    let info = samples_named(&outcome.samples, "app_info");
    assert_eq!(label(info[0], "host"), None);
    assert_eq!(label(info[0], "exported_host"), Some("db1"));
    assert_eq!(single_value(&outcome.samples, "scrape_up"), 1.0);
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_scraped"),
        5.0
    );
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_post_relabel"),
        5.0
    );
    assert!(single_value(&outcome.samples, "scrape_duration_seconds") > 0.0);

    let outcome = run_prometheus(json!({
        "url": server.url("/metrics"),
        "relabel": [
            {"source_labels": ["__name__"], "regex": "node_.*", "action": "keep"},
            {"source_labels": ["mode"], "regex": "idle", "action": "drop"},
            {"source_labels": ["__name__"], "regex": "node_(.*)", "target_label": "__name__", "replacement": "host_$1"},
        ],
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with("scraped 5 samples (3 after relabel) from ")
    );
    let names: Vec<&str> = outcome
        .samples
        .iter()
        .map(|sample| sample.name.as_str())
        .filter(|name| !name.starts_with("scrape_"))
        .collect();
    assert_eq!(
        names,
        ["host_load1", "host_load5", "host_cpu_seconds_total"]
    );
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_scraped"),
        5.0
    );
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_post_relabel"),
        3.0
    );
}

#[tokio::test]
async fn a_bad_line_fails_the_scrape_as_unknown() {
    let server = TinyHttpServer::start(|_| {
        exposition_server_response("# TYPE a gauge\na 1\nb{x=\"1\" 2\nc 3\n")
    })
    .await;
    let outcome = run_prometheus(json!({"url": server.url("/metrics")})).await;
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!(
            "invalid exposition from {}: line 3: expected ',' or '}}' after the value of label \"x\"",
            server.url("/metrics")
        )
    );
    assert_eq!(outcome.samples.len(), 1);
    assert_eq!(single_value(&outcome.samples, "scrape_up"), 0.0);
}

#[tokio::test]
async fn unreachable_and_failing_targets_are_critical() {
    let port = closed_port().await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let outcome = run_prometheus(json!({"url": url})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with(&format!("cannot scrape {url}: ")),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.samples.len(), 1);
    assert_eq!(single_value(&outcome.samples, "scrape_up"), 0.0);

    let server = TinyHttpServer::start(|request| match request.path.as_str() {
        "/slow" => {
            let mut response = exposition_server_response("a 1\n");
            response.delay = Duration::from_secs(10);
            response
        }
        _ => TestResponse::text(404, "not here"),
    })
    .await;
    let outcome = run_prometheus(json!({"url": server.url("/metrics")})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!("HTTP 404 Not Found from {}", server.url("/metrics"))
    );

    let outcome = run_prometheus(json!({"url": server.url("/slow"), "timeout": "300ms"})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!("scrape of {} timed out after 300ms", server.url("/slow"))
    );
    assert_eq!(single_value(&outcome.samples, "scrape_up"), 0.0);
}

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// A node exporter on a free loopback port, killed when dropped.
struct NodeExporter {
    child: std::process::Child,
    port: u16,
}

impl NodeExporter {
    async fn start() -> Self {
        let port = closed_port().await;
        let child = std::process::Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let exporter = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return exporter;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the node exporter did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn scrapes_a_real_node_exporter() {
    if !tool_available(NODE_EXPORTER) {
        return;
    }
    let exporter = NodeExporter::start().await;

    let outcome = run_prometheus(json!({"url": exporter.url()})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    for name in ["node_load1", "node_load5", "node_memory_MemTotal_bytes"] {
        assert_eq!(samples_named(&outcome.samples, name).len(), 1, "{name}");
    }
    assert!(single_value(&outcome.samples, "node_memory_MemTotal_bytes") > 0.0);
    assert!(!samples_named(&outcome.samples, "node_cpu_seconds_total").is_empty());
    // Histograms and summaries come through as plain suffixed series.
    assert!(outcome.samples.iter().any(
        |sample| sample.name == "go_gc_duration_seconds" && label(sample, "quantile").is_some()
    ));
    let scraped = single_value(&outcome.samples, "scrape_samples_scraped");
    assert!(scraped > 100.0, "{scraped}");
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_post_relabel"),
        scraped
    );

    // keep only the load averages, then drop node_load15.
    let outcome = run_prometheus(json!({
        "url": exporter.url(),
        "relabel": [
            {"source_labels": ["__name__"], "regex": "node_load(1|5|15)", "action": "keep"},
            {"source_labels": ["__name__"], "regex": "node_load15", "action": "drop"},
        ],
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    let mut names: Vec<&str> = outcome
        .samples
        .iter()
        .map(|sample| sample.name.as_str())
        .filter(|name| !name.starts_with("scrape_"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["node_load1", "node_load5"]);
    assert_eq!(
        single_value(&outcome.samples, "scrape_samples_post_relabel"),
        2.0
    );
    assert!(single_value(&outcome.samples, "scrape_samples_scraped") > 100.0);

    // labeldrop on real CPU series: `cpu` goes, `mode` stays.
    let outcome = run_prometheus(json!({
        "url": exporter.url(),
        "relabel": [
            {"source_labels": ["__name__"], "regex": "node_cpu_seconds_total", "action": "keep"},
            {"regex": "cpu", "action": "labeldrop"},
        ],
    }))
    .await;
    let cpu = samples_named(&outcome.samples, "node_cpu_seconds_total");
    assert!(!cpu.is_empty());
    assert!(
        cpu.iter()
            .all(|sample| label(sample, "cpu").is_none() && label(sample, "mode").is_some())
    );
}
