//! The server's own Prometheus `/metrics`: request counts and latencies, ingest counters, storage gauges.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use cloudkeep_server::Server;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls (tests building several apps) reuse it.
pub(crate) fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok().map(|()| handle)
    });
}

pub(crate) async fn render(State(server): State<Server>) -> String {
    let stats = server.tsdb().stats();
    metrics::gauge!("cloudkeep_tsdb_series").set(stats.series as f64);
    metrics::gauge!("cloudkeep_tsdb_head_samples").set(stats.head_samples as f64);
    metrics::gauge!("cloudkeep_tsdb_blocks").set(stats.blocks as f64);
    metrics::gauge!("cloudkeep_tsdb_disk_bytes").set(stats.bytes_on_disk as f64);
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("cloudkeep_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("cloudkeep_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
