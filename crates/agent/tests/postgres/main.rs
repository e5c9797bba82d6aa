//! The postgres check against real PostgreSQL 15 servers: samples, archiving, long transactions, replication and failures.

use std::time::{Duration, Instant};

use cloudkeep_agent::check::postgres::PostgresCheck;
use cloudkeep_agent::check::{Check, CheckOutcome, CheckStatus, Sample};
use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use cloudkeep_testkit::free_port;
use cloudkeep_testkit::postgres::TestPostgres;

fn check_for(port: u16, extra: serde_json::Value) -> PostgresCheck {
    let mut options = json!({"port": port}).as_object().unwrap().clone();
    options.extend(extra.as_object().unwrap().clone());
    PostgresCheck::from_options(&options).unwrap()
}

fn value(outcome: &CheckOutcome, name: &str) -> Option<f64> {
    outcome
        .samples
        .iter()
        .find(|sample| sample.name == name)
        .map(|sample| sample.value)
}

fn samples_named<'a>(outcome: &'a CheckOutcome, name: &str) -> Vec<&'a Sample> {
    outcome
        .samples
        .iter()
        .filter(|sample| sample.name == name)
        .collect()
}

async fn execute(server: &TestPostgres, statements: &[&'static str]) {
    let mut connection = PgConnection::connect(&server.url()).await.unwrap();
    for statement in statements {
        sqlx::raw_sql(*statement)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    connection.close().await.unwrap();
}

/// Runs the check until `done` holds for its outcome, for at most `limit`.
async fn poll_until(
    check: &mut PostgresCheck,
    limit: Duration,
    done: impl Fn(&CheckOutcome) -> bool,
) -> CheckOutcome {
    let deadline = Instant::now() + limit;
    loop {
        let outcome = check.run(0).await;
        if done(&outcome) || Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_fresh_server_reports_every_sample() {
    let Some(server) = TestPostgres::start_with(&[]) else {
        return;
    };
    execute(
        &server,
        &[
            "create database app",
            "create table t as select generate_series(1, 1000) as n",
            "select count(*) from t",
        ],
    )
    .await;
    let mut check = check_for(server.port(), json!({}));
    let outcome = check.run(0).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert!(
        outcome.message.starts_with("postgres 15."),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("/50 connections, cache hit "),
        "{}",
        outcome.message
    );
    assert_eq!(value(&outcome, "postgres_up"), Some(1.0));
    let connections = value(&outcome, "postgres_connections").unwrap();
    assert!((1.0..50.0).contains(&connections), "{connections}");
    assert_eq!(value(&outcome, "postgres_max_connections"), Some(50.0));
    let used = value(&outcome, "postgres_connections_used_percent").unwrap();
    assert!((used - connections * 2.0).abs() < 1e-9);
    let hit = value(&outcome, "postgres_cache_hit_ratio_percent").unwrap();
    assert!((0.0..=100.0).contains(&hit), "{hit}");
    assert!(value(&outcome, "postgres_checkpoints_timed_total").unwrap() >= 0.0);
    assert!(value(&outcome, "postgres_checkpoints_requested_total").unwrap() >= 0.0);
    assert_eq!(
        value(&outcome, "postgres_longest_transaction_seconds"),
        Some(0.0)
    );
    assert_eq!(value(&outcome, "postgres_is_in_recovery"), Some(0.0));
    assert_eq!(
        value(&outcome, "postgres_archiver_archived_total"),
        Some(0.0)
    );
    assert_eq!(value(&outcome, "postgres_archiver_failed_total"), Some(0.0));
    assert_eq!(
        value(&outcome, "postgres_archiver_last_archived_age_seconds"),
        None
    );
    // A primary without standbys has no replication lag to report.
    assert_eq!(value(&outcome, "postgres_replication_lag_seconds"), None);
    assert_eq!(value(&outcome, "postgres_replication_lag_bytes"), None);
    let sizes = samples_named(&outcome, "postgres_database_size_bytes");
    let mut databases: Vec<&str> = sizes
        .iter()
        .map(|sample| sample.labels[0].1.as_str())
        .collect();
    databases.sort_unstable();
    assert_eq!(databases, ["app", "postgres"]);
    for size in sizes {
        assert_eq!(size.labels[0].0, "database");
        assert!(size.value > 1_000_000.0, "{size:?}");
    }
    // The same server over its Unix socket.
    let mut socket_check = check_for(
        server.port(),
        json!({"host": server.socket_dir().to_str().unwrap()}),
    );
    let outcome = socket_check.run(0).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert_eq!(socket_check.kind(), "postgres");
}

#[tokio::test]
async fn archived_wal_is_counted_with_its_age() {
    let Some(server) =
        TestPostgres::start_with(&[("archive_mode", "on"), ("archive_command", "/bin/true")])
    else {
        return;
    };
    execute(
        &server,
        &[
            "create table t as select generate_series(1, 10000) as n",
            "select pg_switch_wal()",
        ],
    )
    .await;
    let mut check = check_for(server.port(), json!({}));
    let outcome = poll_until(&mut check, Duration::from_secs(10), |outcome| {
        value(outcome, "postgres_archiver_archived_total").is_some_and(|archived| archived >= 1.0)
    })
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert!(
        value(&outcome, "postgres_archiver_archived_total").unwrap() >= 1.0,
        "{:?}",
        outcome.samples
    );
    let age = value(&outcome, "postgres_archiver_last_archived_age_seconds").unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(value(&outcome, "postgres_archiver_failed_total"), Some(0.0));
}

#[tokio::test]
async fn failing_archive_commands_are_counted() {
    let Some(server) =
        TestPostgres::start_with(&[("archive_mode", "on"), ("archive_command", "/bin/false")])
    else {
        return;
    };
    execute(
        &server,
        &[
            "create table t as select generate_series(1, 10000) as n",
            "select pg_switch_wal()",
        ],
    )
    .await;
    let mut check = check_for(server.port(), json!({}));
    let outcome = poll_until(&mut check, Duration::from_secs(10), |outcome| {
        value(outcome, "postgres_archiver_failed_total").is_some_and(|failed| failed >= 1.0)
    })
    .await;
    assert!(
        value(&outcome, "postgres_archiver_failed_total").unwrap() >= 1.0,
        "{:?}",
        outcome.samples
    );
    assert_eq!(
        value(&outcome, "postgres_archiver_archived_total"),
        Some(0.0)
    );
    assert_eq!(
        value(&outcome, "postgres_archiver_last_archived_age_seconds"),
        None
    );
}

#[tokio::test]
async fn a_long_open_transaction_is_measured() {
    let Some(server) = TestPostgres::start_with(&[]) else {
        return;
    };
    let mut holder = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::raw_sql("begin; select txid_current()")
        .execute(&mut holder)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut check = check_for(server.port(), json!({}));
    let outcome = check.run(0).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    let longest = value(&outcome, "postgres_longest_transaction_seconds").unwrap();
    assert!((1.0..60.0).contains(&longest), "{longest}");
    sqlx::raw_sql("rollback")
        .execute(&mut holder)
        .await
        .unwrap();
    holder.close().await.unwrap();
    let outcome = check.run(0).await;
    assert_eq!(
        value(&outcome, "postgres_longest_transaction_seconds"),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_standby_and_its_primary_report_replication() {
    let Some(primary) = TestPostgres::start_with(&[]) else {
        return;
    };
    let standby = TestPostgres::start_standby(&primary);
    execute(
        &primary,
        &["create table t as select generate_series(1, 1000) as n"],
    )
    .await;
    let mut standby_check = check_for(standby.port(), json!({}));
    let outcome = poll_until(&mut standby_check, Duration::from_secs(10), |outcome| {
        // A standby that has just connected has no replay position yet: wait for both.
        value(outcome, "postgres_replication_lag_seconds").is_some()
            && value(outcome, "postgres_replication_lag_bytes").is_some()
    })
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert!(
        outcome.message.contains("up (standby)"),
        "{}",
        outcome.message
    );
    assert_eq!(value(&outcome, "postgres_is_in_recovery"), Some(1.0));
    let lag = value(&outcome, "postgres_replication_lag_seconds").unwrap();
    assert!((0.0..60.0).contains(&lag), "{lag}");
    assert!(value(&outcome, "postgres_replication_lag_bytes").unwrap() >= 0.0);
    let mut primary_check = check_for(primary.port(), json!({}));
    let outcome = poll_until(&mut primary_check, Duration::from_secs(10), |outcome| {
        // A standby that has just connected has no replay position yet: wait for both.
        value(outcome, "postgres_replication_lag_seconds").is_some()
            && value(outcome, "postgres_replication_lag_bytes").is_some()
    })
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert_eq!(value(&outcome, "postgres_is_in_recovery"), Some(0.0));
    assert!((0.0..60.0).contains(&value(&outcome, "postgres_replication_lag_seconds").unwrap()));
    assert!(value(&outcome, "postgres_replication_lag_bytes").unwrap() >= 0.0);
}

#[tokio::test]
async fn a_closed_port_is_critical_with_up_zero() {
    let port = free_port();
    let mut check = check_for(port, json!({"timeout": "5s"}));
    let started = Instant::now();
    let outcome = check.run(0).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        format!("postgres at 127.0.0.1:{port} unreachable: connection refused (os error 111)")
    );
    assert_eq!(
        outcome.samples,
        vec![Sample {
            name: "postgres_up".to_owned(),
            labels: Vec::new(),
            value: 0.0
        }]
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections and never answers the startup message.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let mut check = check_for(port, json!({"timeout": "500ms"}));
    let started = Instant::now();
    let outcome = check.run(0).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        format!("postgres at 127.0.0.1:{port}: no answer within 500ms")
    );
    assert_eq!(value(&outcome, "postgres_up"), Some(0.0));
    holder.abort();
}

#[tokio::test]
async fn a_wrong_database_is_critical_with_the_server_reason() {
    let Some(server) = TestPostgres::start_with(&[]) else {
        return;
    };
    let mut check = check_for(server.port(), json!({"database": "nope"}));
    let outcome = check.run(0).await;
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        format!(
            "postgres at 127.0.0.1:{} unreachable: database \"nope\" does not exist",
            server.port()
        )
    );
    assert_eq!(value(&outcome, "postgres_up"), Some(0.0));
}
