//! Route handlers: decode, call one server function, encode. No SQL, no rules, no spawning here.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use cloudkeep_protocol::api::{
    AgentList, AuditList, EnrollRequest, EnrollResponse, ErrorBody, HostList, LoginRequest,
    LoginResponse, PlatformApplied, PlatformList, QueryRangeResponse, SeriesList,
    TokenCreateRequest, TokenCreateResponse, WorkerList,
};
use cloudkeep_server::query::RangeQuery;
use cloudkeep_server::{Server, ServiceError};
use serde::Deserialize;

use crate::ApiError;
use crate::extract::Caller;

type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn readyz(State(server): State<Server>) -> (StatusCode, &'static str) {
    if server.ready().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError(ServiceError::not_found(
        "no such endpoint; see /api/v1/openapi.json",
    ))
}

/// Log in with a password; returns an API token valid for 12 hours.
#[utoipa::path(post, path = "/api/v1/sessions", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub(crate) async fn login(
    State(server): State<Server>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<LoginResponse> {
    Ok(Json(server.login(&request).await?))
}

/// An agent trades a join token for its own credential.
#[utoipa::path(post, path = "/api/v1/enroll", request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn enroll(
    State(server): State<Server>,
    Json(request): Json<EnrollRequest>,
) -> ApiResult<EnrollResponse> {
    Ok(Json(server.enroll(&request).await?))
}

/// Prometheus remote_write 1.0 (protobuf, snappy block format); 204 once the samples are durable.
#[utoipa::path(post, path = "/api/v1/write", request_body(content = Vec<u8>, content_type = "application/x-protobuf"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn remote_write(
    State(server): State<Server>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    server.ingest_remote_write(&caller, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every host with its platform, last-seen time and latest key metrics.
#[utoipa::path(get, path = "/api/v1/hosts", responses((status = 200, body = HostList)), security(("bearer" = [])))]
pub(crate) async fn hosts(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<HostList> {
    Ok(Json(server.hosts(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/platforms", responses((status = 200, body = PlatformList)), security(("bearer" = [])))]
pub(crate) async fn platforms(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<PlatformList> {
    Ok(Json(server.platforms(&caller).await?))
}

/// Registers or updates a platform from its spec (the body is the spec file's JSON text).
#[utoipa::path(post, path = "/api/v1/platforms", request_body(content = String, content_type = "application/json"),
    params(("X-Cloudkeep-Source" = Option<String>, Header, description = "file name used in error messages")),
    responses((status = 200, body = PlatformApplied), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn apply_spec(
    State(server): State<Server>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<PlatformApplied> {
    let source = headers
        .get("x-cloudkeep-source")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("request body");
    let text = std::str::from_utf8(&body)
        .map_err(|err| ServiceError::bad_request(format!("spec is not UTF-8: {err}")))?;
    Ok(Json(server.apply_spec(&caller, source, text).await?))
}

/// Creates a single-use, expiring join token for a platform.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = TokenCreateRequest,
    responses((status = 200, body = TokenCreateResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(request): Json<TokenCreateRequest>,
) -> ApiResult<TokenCreateResponse> {
    Ok(Json(server.create_join_token(&caller, &request).await?))
}

#[utoipa::path(get, path = "/api/v1/agents", responses((status = 200, body = AgentList)), security(("bearer" = [])))]
pub(crate) async fn agents(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<AgentList> {
    Ok(Json(server.agents(&caller).await?))
}

/// Revokes an agent: its credential is refused from then on.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn revoke_agent(
    State(server): State<Server>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    server.revoke_agent(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct SeriesParams {
    /// A selector: `name{label="v", other=~"re.*"}`.
    #[serde(rename = "match")]
    pub(crate) selector: String,
}

/// Series whose labels match the selector.
#[utoipa::path(get, path = "/api/v1/series", params(SeriesParams),
    responses((status = 200, body = SeriesList), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn series(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<SeriesParams>,
) -> ApiResult<SeriesList> {
    Ok(Json(server.series(&caller, &params.selector).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct QueryRangeParams {
    /// A selector: `name{label="v", other=~"re.*"}` (a subset of PromQL: no functions or operators).
    pub(crate) query: String,
    /// Milliseconds since the epoch, or `now`, `now-15m`, `now-2h`, `now-7d`; default `now-1h`.
    pub(crate) start: Option<String>,
    /// Same forms as `start`; default `now`.
    pub(crate) end: Option<String>,
    /// Bucket width: `30s`, `5m`, `1h` or milliseconds. Absent: raw samples. At least 5m reads the 5-minute tier, at least 1h the 1-hour tier.
    pub(crate) step: Option<String>,
    /// With a step, how a bucket's samples combine: avg (default), min, max, sum, count, last.
    pub(crate) agg: Option<String>,
}

/// Samples of matching series over a time range, raw or aggregated per step.
#[utoipa::path(get, path = "/api/v1/query_range", params(QueryRangeParams),
    responses((status = 200, body = QueryRangeResponse), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn query_range(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<QueryRangeParams>,
) -> ApiResult<QueryRangeResponse> {
    let now_ms = server.now_ms();
    let start_ms = parse_time(params.start.as_deref().unwrap_or("now-1h"), now_ms, "start")?;
    let end_ms = parse_time(params.end.as_deref().unwrap_or("now"), now_ms, "end")?;
    let step_ms = params
        .step
        .as_deref()
        .map(|step| parse_duration_ms(step, "step"))
        .transpose()?;
    let query = RangeQuery {
        selector: params.query,
        start_ms,
        end_ms,
        step_ms,
        aggregation: params.agg,
    };
    Ok(Json(server.query_range(&caller, query).await?))
}

/// The hash-chained audit log, with whether the chain verifies.
#[utoipa::path(get, path = "/api/v1/audit", responses((status = 200, body = AuditList), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<AuditList> {
    Ok(Json(server.audit_log(&caller).await?))
}

/// The server's named background workers and their status.
#[utoipa::path(get, path = "/api/v1/workers", responses((status = 200, body = WorkerList)), security(("bearer" = [])))]
pub(crate) async fn workers(
    State(server): State<Server>,
    Caller(caller): Caller,
) -> ApiResult<WorkerList> {
    Ok(Json(server.worker_list(&caller).await?))
}

fn parse_time(text: &str, now_ms: i64, field: &str) -> Result<i64, ServiceError> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(offset) = text.strip_prefix("now-") {
        return Ok(now_ms - parse_duration_ms(offset, field)?);
    }
    text.parse::<i64>().map_err(|_| {
        ServiceError::bad_request(format!(
            "{field} {text:?} is not a time; expected milliseconds since the epoch, now, or now-DURATION (e.g. now-15m)"
        ))
    })
}

fn parse_duration_ms(text: &str, field: &str) -> Result<i64, ServiceError> {
    let invalid = || {
        ServiceError::bad_request(format!(
            "{field} {text:?} is not a duration; expected a number with ms, s, m, h or d (e.g. 30s, 5m) or plain milliseconds"
        ))
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: i64 = number.parse().map_err(|_| invalid())?;
    let factor = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    value
        .checked_mul(factor)
        .filter(|ms| *ms > 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("now", 10_000, "start").unwrap(), 10_000);
        assert_eq!(parse_time("now-5s", 10_000, "start").unwrap(), 5_000);
        assert_eq!(parse_time("1234", 10_000, "start").unwrap(), 1234);
        assert_eq!(parse_duration_ms("5m", "step").unwrap(), 300_000);
        assert_eq!(parse_duration_ms("250", "step").unwrap(), 250);
        let err = parse_time("yesterday", 0, "start").unwrap_err();
        assert!(
            err.message.contains("start \"yesterday\" is not a time"),
            "{err}"
        );
        assert!(parse_duration_ms("5w", "step").is_err());
        assert!(parse_duration_ms("0s", "step").is_err());
        assert!(parse_duration_ms("99999999999999999d", "step").is_err());
    }
}

/// collectd's `write_http` plugin (Format "JSON"); authenticate with an agent or API token in
/// `Authorization: Bearer …` (write_http's `Header` option).
#[utoipa::path(post, path = "/api/v1/collectd", request_body(content = String, content_type = "application/json"),
    responses((status = 204), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn collectd_write_http(
    State(server): State<Server>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    server.ingest_collectd_json(&caller, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}
