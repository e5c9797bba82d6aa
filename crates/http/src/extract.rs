//! Request extractors: the authenticated caller from the bearer credential.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cloudkeep_server::{Principal, Server};

use crate::ApiError;

/// The authenticated caller of a request.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<Server> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, server: &Server) -> Result<Caller, ApiError> {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        Ok(Caller(server.authenticate(bearer).await?))
    }
}
