//! Alerting routes: events, alerts and acknowledgements, status, maintenance, silences,
//! deliveries, test notifications, and the agents' config and check reports.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cloudkeep_protocol::alerting::{
    AckRequest, AgentConfig, AlertList, AlertView, CheckReport, DeliveryList, EventList,
    EventQuery, MaintenanceCreate, MaintenanceList, MaintenanceView, NotifyTestRequest,
    NotifyTestResult, PostableAlert, SilenceCreate, SilenceList, SilenceView, StatusList,
};
use cloudkeep_protocol::api::ErrorBody;
use cloudkeep_server::Server;
use serde::Deserialize;

use crate::ApiError;
use crate::extract::Caller;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Events (state changes, acknowledgements, notifications, maintenance), newest first.
#[utoipa::path(get, path = "/api/v1/events", params(EventQuery),
    responses((status = 200, body = EventList)), security(("bearer" = [])))]
pub(crate) async fn events(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(query): Query<EventQuery>,
) -> ApiResult<EventList> {
    Ok(Json(server.events(&caller, &query).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct AlertsParams {
    /// Also list alerts back to ok.
    #[serde(default)]
    pub(crate) all: bool,
}

/// Current alerts (not ok unless `all=true`).
#[utoipa::path(get, path = "/api/v1/alerts", params(AlertsParams),
    responses((status = 200, body = AlertList)), security(("bearer" = [])))]
pub(crate) async fn alerts(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<AlertsParams>,
) -> ApiResult<AlertList> {
    Ok(Json(server.alerts(&caller, params.all).await?))
}

/// Acknowledge an alert: no re-notification until its state changes.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", params(("id" = String, Path)), request_body = AckRequest,
    responses((status = 200, body = AlertView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn ack(
    State(server): State<Server>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(request): Json<AckRequest>,
) -> ApiResult<AlertView> {
    Ok(Json(
        server.acknowledge(&caller, &id, &request.comment).await?,
    ))
}

/// Every cloud, isv, tenant, platform and host with its worst state and why.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, body = StatusList)), security(("bearer" = [])))]
pub(crate) async fn status(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<StatusList> {
    Ok(Json(server.status(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/maintenance", responses((status = 200, body = MaintenanceList)), security(("bearer" = [])))]
pub(crate) async fn maintenance_list(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<MaintenanceList> {
    Ok(Json(server.maintenance_list(&caller).await?))
}

/// A maintenance window, one-off or recurring: notifications are suppressed, events kept.
#[utoipa::path(post, path = "/api/v1/maintenance", request_body = MaintenanceCreate,
    responses((status = 200, body = MaintenanceView), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn maintenance_create(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(request): Json<MaintenanceCreate>,
) -> ApiResult<MaintenanceView> {
    Ok(Json(server.maintenance_create(&caller, &request).await?))
}

#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn maintenance_delete(
    State(server): State<Server>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    server.maintenance_delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/silences", responses((status = 200, body = SilenceList)), security(("bearer" = [])))]
pub(crate) async fn silence_list(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<SilenceList> {
    Ok(Json(server.silence_list(&caller).await?))
}

/// A silence: matching notifications are not sent until it expires.
#[utoipa::path(post, path = "/api/v1/silences", request_body = SilenceCreate,
    responses((status = 200, body = SilenceView), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn silence_create(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(request): Json<SilenceCreate>,
) -> ApiResult<SilenceView> {
    Ok(Json(server.silence_create(&caller, &request).await?))
}

/// Alertmanager's v2 API: Prometheus, vmalert and other Alertmanager clients raise and resolve alerts here
/// (`alerting.alertmanagers` with this server, `api_version: v2` and a bearer token).
#[utoipa::path(post, path = "/api/v2/alerts", request_body = Vec<PostableAlert>,
    responses((status = 200), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn alertmanager_alerts(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(alerts): Json<Vec<PostableAlert>>,
) -> Result<StatusCode, ApiError> {
    server.raise_external_alerts(&caller, &alerts).await?;
    Ok(StatusCode::OK)
}

/// Send a test notification to one contact, on every channel it has (or one), and report each outcome.
#[utoipa::path(post, path = "/api/v1/notify/test", request_body = NotifyTestRequest,
    responses((status = 200, body = NotifyTestResult), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn notify_test(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(request): Json<NotifyTestRequest>,
) -> ApiResult<NotifyTestResult> {
    Ok(Json(server.notify_test(&caller, &request).await?))
}

#[utoipa::path(delete, path = "/api/v1/silences/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn silence_delete(
    State(server): State<Server>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    server.silence_delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The notification delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/deliveries", responses((status = 200, body = DeliveryList)), security(("bearer" = [])))]
pub(crate) async fn deliveries(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<DeliveryList> {
    Ok(Json(server.deliveries(&caller).await?))
}

/// The calling agent's monitors.
#[utoipa::path(get, path = "/api/v1/agent/config", responses((status = 200, body = AgentConfig)), security(("bearer" = [])))]
pub(crate) async fn agent_config(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<AgentConfig> {
    Ok(Json(server.agent_config(&caller).await?))
}

/// The calling agent's latest check results (their messages; statuses travel as metrics).
#[utoipa::path(post, path = "/api/v1/agent/checks", request_body = CheckReport,
    responses((status = 204)), security(("bearer" = [])))]
pub(crate) async fn agent_checks(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(report): Json<CheckReport>,
) -> Result<StatusCode, ApiError> {
    server.report_checks(&caller, &report).await?;
    Ok(StatusCode::NO_CONTENT)
}
