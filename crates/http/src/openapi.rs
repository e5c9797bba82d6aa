//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{alerting, handlers};

#[derive(OpenApi)]
#[openapi(
    info(title = "Cloudkeep API", description = "Control plane for hands-free SaaS platforms."),
    paths(
        handlers::login,
        handlers::enroll,
        handlers::remote_write,
        handlers::hosts,
        handlers::platforms,
        handlers::apply_spec,
        handlers::create_token,
        handlers::agents,
        handlers::revoke_agent,
        handlers::series,
        handlers::query_range,
        handlers::audit,
        handlers::workers,
        handlers::collectd_write_http,
        alerting::events,
        alerting::alerts,
        alerting::ack,
        alerting::status,
        alerting::maintenance_list,
        alerting::maintenance_create,
        alerting::maintenance_delete,
        alerting::silence_list,
        alerting::silence_create,
        alerting::silence_delete,
        alerting::deliveries,
        alerting::notify_test,
        alerting::alertmanager_alerts,
        crate::backup::list,
        crate::backup::create,
        crate::backup::catalog,
        crate::backup::repository,
        crate::backup::drill,
        alerting::agent_config,
        alerting::agent_checks,
        crate::backup::report,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
