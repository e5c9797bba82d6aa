//! Router tests: requests through `app(server).oneshot(...)` against a real server on a temp SQLite file.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloudkeep_server::{Server, ServerConfig};
use cloudkeep_stdx::FakeClock;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn server() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::defaults(dir.path());
    let (server, admin) = Server::start(config, Arc::new(FakeClock::new(1_800_000_000_000)))
        .await
        .unwrap();
    (
        dir,
        server,
        admin
            .expect("new installation creates the first admin")
            .token,
    )
}

async fn call(server: &Server, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = cloudkeep_http::app(server.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_a_json_error() {
    let (_dir, server, _token) = server().await;
    for token in [
        None,
        Some("garbage"),
        Some("cku_0011223344556677_00112233445566778899aabbccddeeff0011223344556677"),
    ] {
        let (status, body) = call(&server, get("/api/v1/hosts", token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"]["kind"], "unauthenticated");
    }
}

#[tokio::test]
async fn unknown_route_is_a_json_404_and_health_is_public() {
    let (_dir, server, _token) = server().await;
    let (status, body) = call(&server, get("/api/v1/nope", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "not_found");
    let response = cloudkeep_http::app(server.clone())
        .oneshot(get("/healthz", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = cloudkeep_http::app(server.clone())
        .oneshot(get("/readyz", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn openapi_document_lists_every_api_route() {
    let (_dir, server, _token) = server().await;
    let (status, body) = call(&server, get("/api/v1/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/sessions",
        "/api/v1/enroll",
        "/api/v1/write",
        "/api/v1/hosts",
        "/api/v1/platforms",
        "/api/v1/tokens",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/series",
        "/api/v1/query_range",
        "/api/v1/audit",
        "/api/v1/workers",
        "/api/v1/backups",
        "/api/v1/backups/repository",
        "/api/v1/agent/backups",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
}

#[tokio::test]
async fn bad_query_parameters_say_what_is_wrong() {
    let (_dir, server, token) = server().await;
    let (status, body) = call(
        &server,
        get("/api/v1/query_range?query=up{&start=now-1h", Some(&token)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid selector"),
        "{body}"
    );
    let (status, body) = call(
        &server,
        get("/api/v1/query_range?query=up&start=yesterday", Some(&token)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start \"yesterday\" is not a time"),
        "{body}"
    );
    let (status, body) = call(
        &server,
        get(
            "/api/v1/query_range?query=up&step=1ms&start=0&end=now",
            Some(&token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use a larger step"),
        "{body}"
    );
}

#[tokio::test]
async fn login_gives_a_token_and_wrong_passwords_are_refused_and_audited() {
    let (dir, server, token) = server().await;
    let _ = dir;
    let login = |user: &str, password: &str| {
        Request::post("/api/v1/sessions")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({"user": user, "password": password}).to_string(),
            ))
            .unwrap()
    };
    let (status, body) = call(&server, login("admin", "wrong password")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "wrong user name or password");
    let (status, _) = call(&server, login("nobody", "whatever")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&server, get("/api/v1/audit", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["chain_valid"], true);
    let refused = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "refused")
        .count();
    assert_eq!(refused, 2, "both failed logins audited: {body}");
}

#[tokio::test]
async fn backup_repository_is_for_admins_and_the_catalog_for_every_reader() {
    let (_dir, server, admin_token) = server().await;
    let admin = server.authenticate(Some(&admin_token)).await.unwrap();
    server
        .create_user(
            &admin,
            "olivia",
            "operator-password",
            cloudkeep_server::Role::Operator,
        )
        .await
        .unwrap();
    let operator_token = server
        .login(&cloudkeep_protocol::api::LoginRequest {
            user: "olivia".into(),
            password: "operator-password".into(),
        })
        .await
        .unwrap()
        .token;
    let (status, body) = call(
        &server,
        get(
            "/api/v1/backups/repository?platform=shop",
            Some(&operator_token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &server,
        get(
            "/api/v1/backups/repository?platform=shop",
            Some(&admin_token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["message"], "no platform \"shop\"");
    let (status, _) = call(
        &server,
        get("/api/v1/backups/repository", Some(&admin_token)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the platform is required");
    let (status, body) = call(
        &server,
        get("/api/v1/backups?platform=shop", Some(&operator_token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["databases"], serde_json::json!([]));
    let report = Request::post("/api/v1/agent/backups")
        .header("authorization", format!("Bearer {admin_token}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"database": "db", "events": []}"#))
        .unwrap();
    let (status, _) = call(&server, report).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents only");
}
