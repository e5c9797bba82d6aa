//! Tests of the `http` check against a local plain HTTP server and a local rustls server with rcgen certificates.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::check::net_testutil::{
    Handler, TestResponse, TinyHttpServer, closed_port, options, samples_named, serve_one_request,
    single_value,
};

const NOW_MS: i64 = 1_700_000_000_000;

async fn run_http(options_json: serde_json::Value) -> CheckOutcome {
    let mut check = HttpCheck::from_options(&options(options_json)).unwrap();
    assert_eq!(check.kind(), "http");
    check.run(NOW_MS).await
}

fn config_error_of(options_json: serde_json::Value) -> CheckConfigError {
    HttpCheck::from_options(&options(options_json)).unwrap_err()
}

#[test]
fn option_errors_name_the_field() {
    let error = config_error_of(json!({"url": "not a url"}));
    assert_eq!(
        error.to_string(),
        "options.url: invalid URL \"not a url\": relative URL without a base"
    );
    let error = config_error_of(json!({"url": "ftp://example.com/"}));
    assert_eq!(error.path, ".url");
    let error = config_error_of(json!({"url": "http://x/", "body_match": "("}));
    assert_eq!(error.path, ".body_match");
    assert!(
        error.message.starts_with("invalid regex \"(\": "),
        "{error}"
    );
    let error = config_error_of(json!({"url": "http://x/", "method": "PUT"}));
    assert_eq!(error.path, ".method");
    let error = config_error_of(json!({"url": "http://x/", "method": "HEAD", "body_match": "a"}));
    assert_eq!(error.path, ".body_match");
    let error = config_error_of(json!({"url": "http://x/", "expect_status": [200, 999]}));
    assert_eq!(
        error.to_string(),
        "options.expect_status: 999 is not an HTTP status code (100..599)"
    );
    let error = config_error_of(json!({"url": "http://x/", "expect_status": "200"}));
    assert_eq!(error.path, ".expect_status");
    let error = config_error_of(json!({"url": "http://x/", "headers": {"bad header": "x"}}));
    assert_eq!(error.path, ".headers.bad header");
    let error = config_error_of(json!({"url": "http://x/", "timeout": "0s"}));
    assert_eq!(error.path, ".timeout");
    let error = config_error_of(json!({"url": "http://x/", "cert_critical_days": 30}));
    assert_eq!(error.path, ".cert_critical_days");
    let error = config_error_of(json!({"url": "http://x/", "ca_file": "/nonexistent/ca.pem"}));
    assert!(
        error
            .to_string()
            .starts_with("options.ca_file: cannot read \"/nonexistent/ca.pem\": "),
        "{error}"
    );
    let error = config_error_of(json!({"url": "http://x/", "follow_redirect": true}));
    assert_eq!(error.path, ".follow_redirect");
}

#[tokio::test]
async fn a_healthy_endpoint_is_ok() {
    let server = TinyHttpServer::start(|request| {
        assert_eq!(request.header("X-Probe"), Some("cloudkeep"));
        TestResponse::text(200, "status: healthy")
    })
    .await;
    let outcome = run_http(json!({
        "url": server.url("/health"),
        "headers": {"X-Probe": "cloudkeep"},
        "body_match": "status: (healthy|degraded)",
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with(&format!(
            "HTTP OK - 200 OK from {} in ",
            server.url("/health")
        )),
        "{}",
        outcome.message
    );
    assert_eq!(single_value(&outcome.samples, "http_up"), 1.0);
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 200.0);
    assert_eq!(single_value(&outcome.samples, "http_body_match"), 1.0);
    assert!(single_value(&outcome.samples, "http_duration_seconds") > 0.0);
    assert!(samples_named(&outcome.samples, "http_tls_cert_expiry_days").is_empty());
}

#[tokio::test]
async fn unexpected_status_and_body_are_critical() {
    let server = TinyHttpServer::start(|request| match request.path.as_str() {
        "/down" => TestResponse::text(503, "maintenance"),
        _ => TestResponse::text(200, "status: broken"),
    })
    .await;
    let outcome = run_http(json!({"url": server.url("/down")})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with("HTTP CRITICAL - 503 Service Unavailable from "),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.ends_with("; expected status 2xx or 3xx"),
        "{}",
        outcome.message
    );
    assert_eq!(single_value(&outcome.samples, "http_up"), 0.0);
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 503.0);

    // 503 is fine when it is what the operator expects.
    let outcome = run_http(json!({"url": server.url("/down"), "expect_status": [503, 502]})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    let outcome = run_http(json!({"url": server.url("/down"), "expect_status": 200})).await;
    assert!(
        outcome.message.ends_with("; expected status 200"),
        "{}",
        outcome.message
    );

    let outcome = run_http(json!({"url": server.url("/"), "body_match": "healthy"})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome.message.ends_with("; body does not match /healthy/"),
        "{}",
        outcome.message
    );
    assert_eq!(single_value(&outcome.samples, "http_body_match"), 0.0);
    assert_eq!(single_value(&outcome.samples, "http_up"), 0.0);
}

#[tokio::test]
async fn methods_bodies_and_redirects() {
    let server =
        TinyHttpServer::start(
            |request| match (request.method.as_str(), request.path.as_str()) {
                ("POST", "/echo") => {
                    TestResponse::text(201, &String::from_utf8_lossy(&request.body))
                }
                ("HEAD", "/") => TestResponse::text(204, ""),
                (_, "/old") => {
                    let mut response = TestResponse::text(301, "");
                    response
                        .headers
                        .push(("Location".to_owned(), "/new".to_owned()));
                    response
                }
                (_, "/new") => TestResponse::text(200, "arrived"),
                _ => TestResponse::text(405, ""),
            },
        )
        .await;
    let outcome = run_http(json!({
        "url": server.url("/echo"), "method": "POST", "body": "ping-42", "body_match": "^ping-\\d+$",
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 201.0);

    let outcome = run_http(json!({"url": server.url("/"), "method": "HEAD"})).await;
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 204.0);

    // Not followed by default: the 301 itself is judged (and 3xx is acceptable).
    let outcome = run_http(json!({"url": server.url("/old")})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 301.0);

    let outcome = run_http(json!({
        "url": server.url("/old"), "follow_redirects": true, "body_match": "arrived",
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(single_value(&outcome.samples, "http_status_code"), 200.0);
    assert!(
        outcome
            .message
            .contains(&format!("from {} in", server.url("/new"))),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn refused_and_slow_servers_are_critical() {
    let port = closed_port().await;
    let url = format!("http://127.0.0.1:{port}/");
    let outcome = run_http(json!({"url": url})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with(&format!("HTTP CRITICAL - GET {url} failed: ")),
        "{}",
        outcome.message
    );
    assert_eq!(single_value(&outcome.samples, "http_up"), 0.0);
    assert!(samples_named(&outcome.samples, "http_status_code").is_empty());

    let server = TinyHttpServer::start(|_| {
        let mut response = TestResponse::text(200, "late");
        response.delay = Duration::from_secs(10);
        response
    })
    .await;
    let started = std::time::Instant::now();
    let outcome = run_http(json!({"url": server.url("/"), "timeout": "300ms"})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!(
            "HTTP CRITICAL - GET {} timed out after 300ms",
            server.url("/")
        )
    );
    assert_eq!(single_value(&outcome.samples, "http_up"), 0.0);
}

/// A CA and a `127.0.0.1`/`localhost` server certificate it signed, expiring at `not_after_unix_seconds`.
struct TestPki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn make_pki(not_after_unix_seconds: i64) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cloudkeep test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    server_params.not_before =
        time::OffsetDateTime::from_unix_timestamp(not_after_unix_seconds - 90 * 86_400).unwrap();
    server_params.not_after =
        time::OffsetDateTime::from_unix_timestamp(not_after_unix_seconds).unwrap();
    let server_certificate = server_params.signed_by(&server_key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_certificate.pem(),
        server_chain: vec![server_certificate.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    }
}

/// An HTTPS server on a free loopback port answering 200 "secure" with the PKI's server certificate.
async fn start_tls_server(pki: &TestPki) -> (u16, tokio::task::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler: Handler = Arc::new(|_| TestResponse::text(200, "secure"));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Ok(tls_stream) = acceptor.accept(stream).await {
                    let _ = serve_one_request(tls_stream, &handler).await;
                }
            });
        }
    });
    (port, task)
}

/// Real wall time: TLS verification checks certificates against it.
fn unix_now_seconds() -> i64 {
    use cloudkeep_stdx::Clock as _;
    cloudkeep_stdx::SystemClock.now_ms() / 1000
}

#[tokio::test]
async fn certificate_expiry_sets_warning_and_critical() {
    let now_seconds = unix_now_seconds();
    let directory = tempfile::tempdir().unwrap();
    for (days_left, expected_status) in [
        (3, CheckStatus::Critical),
        (10, CheckStatus::Warning),
        (60, CheckStatus::Ok),
    ] {
        let pki = make_pki(now_seconds + days_left * 86_400);
        let ca_file = directory.path().join(format!("ca-{days_left}.pem"));
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();
        let (port, server) = start_tls_server(&pki).await;
        let url = format!("https://127.0.0.1:{port}/");
        let mut check = HttpCheck::from_options(&options(json!({
            "url": url, "ca_file": ca_file, "body_match": "secure",
        })))
        .unwrap();
        let outcome = check.run(now_seconds * 1000).await;
        server.abort();
        assert_eq!(outcome.status, expected_status, "{outcome:?}");
        assert_eq!(
            single_value(&outcome.samples, "http_tls_cert_expiry_days"),
            days_left as f64
        );
        assert_eq!(single_value(&outcome.samples, "http_up"), 1.0);
        let expected_tail = format!("; certificate expires in {days_left}.0 days");
        if expected_status == CheckStatus::Ok {
            assert!(
                !outcome.message.contains("certificate"),
                "{}",
                outcome.message
            );
            assert!(
                outcome
                    .message
                    .starts_with("HTTP OK - 200 OK from https://")
            );
        } else {
            assert!(
                outcome.message.ends_with(&expected_tail),
                "{}",
                outcome.message
            );
        }
    }
}

#[tokio::test]
async fn an_untrusted_certificate_fails_unless_verification_is_skipped() {
    let now_seconds = unix_now_seconds();
    let pki = make_pki(now_seconds + 100 * 86_400);
    let (port, server) = start_tls_server(&pki).await;
    let url = format!("https://127.0.0.1:{port}/");

    let outcome = run_http(json!({"url": url})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with(&format!("HTTP CRITICAL - GET {url} failed: ")),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.to_lowercase().contains("certificate"),
        "{}",
        outcome.message
    );

    let mut check =
        HttpCheck::from_options(&options(json!({"url": url, "tls_skip_verify": true}))).unwrap();
    let outcome = check.run(now_seconds * 1000).await;
    server.abort();
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(
        single_value(&outcome.samples, "http_tls_cert_expiry_days"),
        100.0
    );

    // An expired certificate (the agent's clock is past notAfter) is Critical with how long ago.
    let expired = make_pki(now_seconds - 2 * 86_400);
    let (port, server) = start_tls_server(&expired).await;
    let mut check = HttpCheck::from_options(&options(json!({
        "url": format!("https://127.0.0.1:{port}/"), "tls_skip_verify": true,
    })))
    .unwrap();
    let outcome = check.run(now_seconds * 1000).await;
    server.abort();
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(
        outcome
            .message
            .ends_with("; certificate expired 2.0 days ago"),
        "{}",
        outcome.message
    );
}
