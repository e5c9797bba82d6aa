//! The server stopped for a minute: the agent buffers to its outbox and backfills; the series has no gap.
//! Restarting the agent (even with kill -9) never produces a negative or absurd rate.

use std::time::Duration;

use cloudkeep_client::Client;
use cloudkeep_protocol::api::TokenCreateRequest;

use crate::harness::{Process, TestServer, spec, wait_for};

const INTERVAL_MS: i64 = 1000;

fn agent(server: &str, state_dir: &std::path::Path, token: Option<&str>) -> Process {
    crate::harness::agent(server, state_dir, "edge1", token)
}

async fn load_timestamps(client: &Client) -> Vec<i64> {
    let answer = client
        .query_range("host_load1{host=\"edge1\"}", "now-1h", "now", None, None)
        .await
        .unwrap();
    answer
        .series
        .first()
        .map(|s| s.points.iter().map(|(at, _)| *at).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_buffers_while_server_is_down_and_backfills_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("server");
    let state_dir = dir.path().join("agent");
    let port = cloudkeep_testkit::free_port();
    let server = TestServer::start(&data_dir, port).await;
    let admin = server.admin_client();
    admin
        .apply_spec("edge.json", spec("edge", &["edge1"]))
        .await
        .unwrap();
    let token = admin
        .create_token(&TokenCreateRequest {
            platform: "edge".into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    let agent_process = agent(&server.url(), &state_dir, Some(&token.token));

    wait_for("first samples", Duration::from_secs(30), || {
        let admin = admin.clone();
        async move { (load_timestamps(&admin).await.len() >= 3).then_some(()) }
    })
    .await;
    let before_outage = load_timestamps(&admin).await.len();

    let TestServer { process, port, .. } = server;
    assert!(process.terminate().success());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let pending = std::fs::read_dir(state_dir.join("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|ext| ext == "batch"))
        });
    assert!(
        pending.count() >= 50,
        "the agent kept collecting into its outbox while the server was down"
    );

    let restarted = TestServer::start(&data_dir, port).await;
    let admin = restarted.admin_client();
    let timestamps = wait_for("backfill", Duration::from_secs(60), || {
        let admin = admin.clone();
        async move {
            let timestamps = load_timestamps(&admin).await;
            (timestamps.len() >= before_outage + 60).then_some(timestamps)
        }
    })
    .await;
    let largest_gap = timestamps
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    assert!(
        largest_gap <= 3 * INTERVAL_MS,
        "the series has a gap of {largest_gap} ms across the outage ({} samples)",
        timestamps.len()
    );

    // Restart the agent hard; its first interval after restart has no previous counters, so no rate at all.
    agent_process.kill9();
    let agent_again = agent(&restarted.url(), &state_dir, None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rates = admin
        .query_range(
            "{__name__=~\"host_.*_per_second\", host=\"edge1\"}",
            "now-1h",
            "now",
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!rates.series.is_empty(), "rate series exist");
    for series in &rates.series {
        for (at, value) in &series.points {
            let value = value.expect("no NaN rates");
            assert!(
                value >= 0.0 && value.is_finite(),
                "{:?} at {at}: {value}",
                series.labels
            );
        }
    }
    let cpu = admin
        .query_range(
            "host_cpu_busy_percent{host=\"edge1\"}",
            "now-1h",
            "now",
            None,
            None,
        )
        .await
        .unwrap();
    for (_, value) in &cpu.series[0].points {
        let value = value.unwrap();
        assert!((0.0..=100.0).contains(&value), "cpu busy {value}");
    }
    assert!(agent_again.terminate().success());
    assert!(restarted.process.terminate().success());
}
