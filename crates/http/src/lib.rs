//! The HTTP API: axum routes that decode a request, call one server function and encode the answer.
//!
//! The only crate that knows HTTP status codes; `ErrorKind` becomes a status in `error.rs`, nowhere else.
#![forbid(unsafe_code)]

mod alerting;
mod backup;
mod error;
mod extract;
mod handlers;
mod openapi;
mod own_metrics;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use cloudkeep_server::Server;

pub use error::ApiError;
pub use openapi::openapi_document;

/// The whole application: API, health, metrics and OpenAPI document.
pub fn app(server: Server) -> Router {
    let max_body = server.config().max_body_bytes;
    own_metrics::install();
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(own_metrics::render))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/sessions", post(handlers::login))
        .route("/api/v1/enroll", post(handlers::enroll))
        .route("/api/v1/write", post(handlers::remote_write))
        .route("/api/v1/hosts", get(handlers::hosts))
        .route(
            "/api/v1/platforms",
            get(handlers::platforms).post(handlers::apply_spec),
        )
        .route("/api/v1/tokens", post(handlers::create_token))
        .route("/api/v1/agents", get(handlers::agents))
        .route("/api/v1/agents/{id}", delete(handlers::revoke_agent))
        .route("/api/v1/series", get(handlers::series))
        .route("/api/v1/query_range", get(handlers::query_range))
        .route("/api/v1/audit", get(handlers::audit))
        .route("/api/v1/workers", get(handlers::workers))
        .route("/api/v1/collectd", post(handlers::collectd_write_http))
        .route("/api/v1/events", get(alerting::events))
        .route("/api/v1/alerts", get(alerting::alerts))
        .route("/api/v1/alerts/{id}/ack", post(alerting::ack))
        .route("/api/v1/status", get(alerting::status))
        .route(
            "/api/v1/maintenance",
            get(alerting::maintenance_list).post(alerting::maintenance_create),
        )
        .route(
            "/api/v1/maintenance/{id}",
            delete(alerting::maintenance_delete),
        )
        .route(
            "/api/v1/silences",
            get(alerting::silence_list).post(alerting::silence_create),
        )
        .route("/api/v1/silences/{id}", delete(alerting::silence_delete))
        .route("/api/v1/deliveries", get(alerting::deliveries))
        .route("/api/v1/notify/test", post(alerting::notify_test))
        .route("/api/v2/alerts", post(alerting::alertmanager_alerts))
        .route(
            "/api/v1/backup-keys",
            get(backup::list).post(backup::create),
        )
        .route("/api/v1/backups", get(backup::catalog))
        .route("/api/v1/backups/repository", get(backup::repository))
        .route("/api/v1/backups/drills", post(backup::drill))
        .route("/api/v1/agent/config", get(alerting::agent_config))
        .route("/api/v1/agent/checks", post(alerting::agent_checks))
        .route("/api/v1/agent/backups", post(backup::report))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(own_metrics::track))
        .with_state(server)
}
