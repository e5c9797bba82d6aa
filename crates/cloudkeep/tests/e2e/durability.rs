//! `kill -9` of the server during ingest: every acknowledged sample is queryable after restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

use crate::harness::TestServer;

const SERIES_PER_BATCH: usize = 50;
const BASE_MS: i64 = 1_800_000_000_000;

fn batch(round: i64) -> Vec<u8> {
    let timeseries = (0..SERIES_PER_BATCH)
        .map(|index| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "durability_probe".into(),
                },
                Label {
                    name: "series".into(),
                    value: index.to_string(),
                },
            ],
            samples: vec![Sample {
                value: round as f64,
                timestamp: BASE_MS + round * 1000,
            }],
        })
        .collect();
    remote_write::encode(&WriteRequest { timeseries })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let port = cloudkeep_testkit::free_port();
    let server = TestServer::start(dir.path(), port).await;
    let client = server.admin_client();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for round in 0..100_000i64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match client.remote_write(batch(round)).await {
                    Ok(()) => acknowledged.push(round),
                    Err(_) => break,
                }
            }
            acknowledged
        })
    };
    // Let ingest run, then kill the server mid-stream while the writer keeps sending.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let TestServer {
        process,
        data_dir,
        port,
        ..
    } = server;
    process.kill9();
    stop.store(true, Ordering::SeqCst);
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() > 10,
        "the writer got acknowledgements before the kill: {}",
        acknowledged.len()
    );

    let restarted = TestServer::start(&data_dir, port).await;
    let client = restarted.admin_client();
    let start = BASE_MS.to_string();
    let end = (BASE_MS + 200_000_000).to_string();
    for series in [0, SERIES_PER_BATCH - 1] {
        let selector = format!("durability_probe{{series=\"{series}\"}}");
        let answer = client
            .query_range(&selector, &start, &end, None, None)
            .await
            .unwrap();
        assert_eq!(answer.series.len(), 1, "{selector}");
        let stored: std::collections::BTreeSet<i64> = answer.series[0]
            .points
            .iter()
            .map(|(_, value)| value.unwrap() as i64)
            .collect();
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|round| !stored.contains(round))
            .collect();
        assert!(
            missing.is_empty(),
            "{selector}: acknowledged rounds missing after kill -9: {missing:?}"
        );
    }
    assert!(restarted.process.terminate().success());
}
