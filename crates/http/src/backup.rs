//! Backup routes: the ISVs' public backup keys, the agents' backup reports, the catalog and the
//! repository's location for admins.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use cloudkeep_protocol::api::ErrorBody;
use cloudkeep_protocol::backup::{
    BackupCatalog, BackupKeyCreate, BackupKeyList, BackupKeyView, BackupReport, DrillRecord,
    RepositoryAccess,
};
use cloudkeep_server::Server;
use serde::Deserialize;

use crate::ApiError;
use crate::extract::Caller;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct KeysParams {
    /// Only this ISV's keys.
    pub(crate) isv: Option<String>,
}

/// The stored public backup keys.
#[utoipa::path(get, path = "/api/v1/backup-keys", params(KeysParams),
    responses((status = 200, body = BackupKeyList)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<KeysParams>,
) -> Result<Json<BackupKeyList>, ApiError> {
    Ok(Json(
        server.backup_keys(&caller, params.isv.as_deref()).await?,
    ))
}

/// Store the public half of an ISV's backup key pair (admins); a secret key is refused.
#[utoipa::path(post, path = "/api/v1/backup-keys", request_body = BackupKeyCreate,
    responses((status = 200, body = BackupKeyView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(request): Json<BackupKeyCreate>,
) -> Result<Json<BackupKeyView>, ApiError> {
    Ok(Json(server.backup_key_create(&caller, &request).await?))
}

/// What the calling agent's host did for one of its databases (agents only; the database must be
/// one its host backs up).
#[utoipa::path(post, path = "/api/v1/agent/backups", request_body = BackupReport,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn report(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(report): Json<BackupReport>,
) -> Result<StatusCode, ApiError> {
    server.report_backups(&caller, &report).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Record a DR drill's result as an event on the platform (operators and admins).
#[utoipa::path(post, path = "/api/v1/backups/drills", request_body = DrillRecord,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn drill(
    State(server): State<Server>,
    Caller(caller): Caller,
    Json(record): Json<DrillRecord>,
) -> Result<StatusCode, ApiError> {
    server.record_drill(&caller, &record).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct CatalogParams {
    /// Only this platform's databases.
    pub(crate) platform: Option<String>,
    /// Only databases of this name.
    pub(crate) database: Option<String>,
}

/// The backup catalog: each backed-up database with its base backups, WAL runs and last failure.
#[utoipa::path(get, path = "/api/v1/backups", params(CatalogParams),
    responses((status = 200, body = BackupCatalog)), security(("bearer" = [])))]
pub(crate) async fn catalog(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<CatalogParams>,
) -> Result<Json<BackupCatalog>, ApiError> {
    Ok(Json(
        server
            .backup_catalog(
                &caller,
                params.platform.as_deref(),
                params.database.as_deref(),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RepositoryParams {
    /// The platform whose backups to reach.
    pub(crate) platform: String,
}

/// Where a platform's backups live, credentials included (admins only; audited).
#[utoipa::path(get, path = "/api/v1/backups/repository", params(RepositoryParams),
    responses((status = 200, body = RepositoryAccess), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn repository(
    State(server): State<Server>,
    Caller(caller): Caller,
    Query(params): Query<RepositoryParams>,
) -> Result<Json<RepositoryAccess>, ApiError> {
    Ok(Json(
        server.backup_repository(&caller, &params.platform).await?,
    ))
}
