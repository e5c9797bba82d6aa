//! Backup routes: the ISVs' public backup keys.

use axum::Json;
use axum::extract::{Query, State};
use cloudkeep_protocol::api::ErrorBody;
use cloudkeep_protocol::backup::{BackupKeyCreate, BackupKeyList, BackupKeyView};
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
