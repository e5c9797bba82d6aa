//! The backup catalog through the service functions, on a temp SQLite store: agents' jobs, their
//! reports (only for their own host's databases), the catalog with WAL runs, the `backup_failed`
//! event, repository access for admins only, audited, and drills recorded by the database's own
//! agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use cloudkeep_backup::RepoLocation;
use cloudkeep_protocol::alerting::EventQuery;
use cloudkeep_protocol::backup::{
    BackupEvent, BackupFailed, BackupKeyCreate, BackupReport, BackupsExpired, BaseBackupDone,
    DrillRecord, WalArchived,
};
use cloudkeep_server::backup_config::BackupConfig;
use cloudkeep_server::{ErrorKind, Principal, Role, Server, ServerConfig};
use cloudkeep_stdx::FakeClock;

const NOW_MS: i64 = 1_800_000_000_000;

const SPEC: &str = r#"{"version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "gc-uk1",
    "hosts": [
        {"name": "db1", "cloud": "gc-uk2", "components": [{"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "keep_full": 3}}]},
        {"name": "app1", "components": [{"name": "app", "kind": "app_server"}]}
    ]}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    admin: Principal,
}

async fn fixture(repository: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::defaults(dir.path());
    if repository {
        config.backup = BackupConfig::with_default(RepoLocation::S3 {
            endpoint: Some("https://s3.example.net".into()),
            bucket: "backups".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            allow_http: false,
            prefix: "ck".into(),
        });
    }
    let (server, initial) = Server::start(config, Arc::new(FakeClock::new(NOW_MS)))
        .await
        .unwrap();
    let admin = server
        .authenticate(Some(&initial.expect("a new installation").token))
        .await
        .unwrap();
    server.apply_spec(&admin, "shop.json", SPEC).await.unwrap();
    Fixture {
        _dir: dir,
        server,
        admin,
    }
}

fn agent(host: &str) -> Principal {
    Principal::Agent {
        id: format!("agent-{host}"),
        host: host.into(),
        platform: "shop".into(),
    }
}

fn wal(segment: u64, archived_at_ms: i64) -> BackupEvent {
    BackupEvent::Wal(WalArchived {
        name: format!("00000001{:016X}", segment),
        timeline: 1,
        segment,
        plain_bytes: 16 << 20,
        stored_bytes: 1 << 20,
        archived_at_ms,
        upload_ms: 30,
    })
}

fn base(id: &str, started_at_ms: i64) -> BackupEvent {
    BackupEvent::Base(BaseBackupDone {
        id: id.into(),
        started_at_ms,
        stopped_at_ms: started_at_ms + 90_000,
        start_lsn: "0/2000028".into(),
        stop_lsn: "0/2000100".into(),
        timeline: 1,
        start_wal: "000000010000000000000002".into(),
        stop_wal: "000000010000000000000002".into(),
        files: 1500,
        plain_bytes: 40 << 20,
        stored_bytes: 9 << 20,
        parent: None,
    })
}

#[tokio::test]
async fn agents_get_their_hosts_jobs_with_the_isvs_repository_and_keys() {
    let fixture = fixture(true).await;
    let server = &fixture.server;
    let config = server.agent_config(&agent("db1")).await.unwrap();
    assert_eq!(config.backups.len(), 1);
    let job = &config.backups[0];
    assert_eq!(job.database, "db");
    assert_eq!(job.keep_full, 3);
    assert_eq!(job.repository["prefix"], "ck/isv/acme");
    assert_eq!(job.repository["secret_access_key"], "very-secret");
    assert!(job.recipients.is_empty());
    assert_eq!(
        job.problem.as_deref(),
        Some("no backup key for isv \"acme\": run cloudkeep keys create --isv acme")
    );
    assert!(
        server
            .agent_config(&agent("app1"))
            .await
            .unwrap()
            .backups
            .is_empty()
    );

    let recipient = cloudkeep_backup::generate_keypair().recipient.to_string();
    server
        .backup_key_create(
            &fixture.admin,
            &BackupKeyCreate {
                isv: "acme".into(),
                recipient: recipient.clone(),
                comment: String::new(),
            },
        )
        .await
        .unwrap();
    let config = server.agent_config(&agent("db1")).await.unwrap();
    assert_eq!(config.backups[0].recipients, [recipient]);
    assert_eq!(config.backups[0].problem, None);

    let without = fixture_without_repository().await;
    let config = without.server.agent_config(&agent("db1")).await.unwrap();
    assert!(
        config.backups[0]
            .problem
            .as_deref()
            .unwrap()
            .starts_with("no [backup] repository configured on the server"),
        "{:?}",
        config.backups[0].problem
    );
}

async fn fixture_without_repository() -> Fixture {
    fixture(false).await
}

#[tokio::test]
async fn reports_fill_the_catalog_and_a_failure_is_an_event() {
    let fixture = fixture(true).await;
    let server = &fixture.server;
    let db1 = agent("db1");
    let report = BackupReport {
        database: "db".into(),
        events: vec![
            wal(2, NOW_MS - 5000),
            wal(3, NOW_MS - 4000),
            wal(5, NOW_MS - 2000),
            base("20270115T080000Z-0001", NOW_MS - 100_000),
            BackupEvent::Failed(BackupFailed {
                what: "wal".into(),
                message: "upload of 000000010000000000000006 failed: connection reset".into(),
                at_ms: NOW_MS - 1000,
            }),
        ],
    };
    server.report_backups(&db1, &report).await.unwrap();
    // A retried report changes nothing.
    server.report_backups(&db1, &report).await.unwrap();

    let catalog = server
        .backup_catalog(&fixture.admin, None, None)
        .await
        .unwrap();
    assert_eq!(catalog.databases.len(), 1);
    let db = &catalog.databases[0];
    assert_eq!(
        (
            db.platform.as_str(),
            db.isv.as_str(),
            db.host.as_str(),
            db.database.as_str()
        ),
        ("shop", "acme", "db1", "db")
    );
    assert_eq!(db.bases.len(), 1);
    assert_eq!(db.bases[0].files, 1500);
    let ranges: Vec<(String, String, u64)> = db
        .wal_ranges
        .iter()
        .map(|range| (range.first.clone(), range.last.clone(), range.segments))
        .collect();
    assert_eq!(
        ranges,
        [
            (
                "000000010000000000000002".to_owned(),
                "000000010000000000000003".to_owned(),
                2
            ),
            (
                "000000010000000000000005".to_owned(),
                "000000010000000000000005".to_owned(),
                1
            ),
        ]
    );
    assert_eq!(db.last_wal_archived_at_ms, Some(NOW_MS - 2000));
    let failure = db.last_failure.as_ref().unwrap();
    assert_eq!(failure.what, "wal");

    let events = server
        .events(
            &fixture.admin,
            &EventQuery {
                kind: Some("backup_failed".into()),
                ..EventQuery::default()
            },
        )
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 1, "a retried report's failure is told once");
    assert_eq!(events[0].host, "db1");
    assert_eq!(events[0].cloud, "gc-uk2");
    assert_eq!(events[0].isv, "acme");
    assert!(
        events[0]
            .message
            .contains("backup of database \"db\" on db1 failed (wal): upload of"),
        "{}",
        events[0].message
    );

    // Expiry removes rows; filters narrow the catalog.
    server
        .report_backups(
            &db1,
            &BackupReport {
                database: "db".into(),
                events: vec![BackupEvent::Expired(BackupsExpired {
                    base_ids: vec!["20270115T080000Z-0001".into()],
                    wal_names: vec!["000000010000000000000002".into()],
                    at_ms: NOW_MS,
                })],
            },
        )
        .await
        .unwrap();
    let catalog = server
        .backup_catalog(&fixture.admin, Some("shop"), Some("db"))
        .await
        .unwrap();
    assert!(catalog.databases[0].bases.is_empty());
    assert_eq!(
        catalog.databases[0].wal_ranges[0].first,
        "000000010000000000000003"
    );
    assert!(
        server
            .backup_catalog(&fixture.admin, Some("other"), None)
            .await
            .unwrap()
            .databases
            .is_empty()
    );
}

#[tokio::test]
async fn only_the_databases_host_may_report_and_only_agents() {
    let fixture = fixture(true).await;
    let server = &fixture.server;
    let report = |database: &str| BackupReport {
        database: database.into(),
        events: vec![wal(1, NOW_MS)],
    };
    let err = server
        .report_backups(&agent("app1"), &report("db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    assert_eq!(
        err.message,
        "database \"db\" of platform \"shop\" is backed up by host \"db1\", not by \"app1\""
    );
    let err = server
        .report_backups(&agent("db1"), &report("app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert_eq!(
        err.message,
        "database: platform \"shop\" declares no database \"app\" with a backup section"
    );
    let err = server
        .report_backups(&fixture.admin, &report("db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    let bad_name = BackupReport {
        database: "db".into(),
        events: vec![
            wal(1, NOW_MS),
            BackupEvent::Wal(WalArchived {
                name: "../../etc/passwd".into(),
                timeline: 1,
                segment: 1,
                plain_bytes: 1,
                stored_bytes: 1,
                archived_at_ms: NOW_MS,
                upload_ms: 1,
            }),
        ],
    };
    let err = server
        .report_backups(&agent("db1"), &bad_name)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(
        err.message.starts_with("events[1].name: "),
        "{}",
        err.message
    );
    let catalog = server
        .backup_catalog(&fixture.admin, None, None)
        .await
        .unwrap();
    assert!(
        catalog.databases[0].wal_ranges.is_empty(),
        "nothing of a refused report is kept"
    );
}

#[tokio::test]
async fn only_admins_read_the_repository_and_every_attempt_is_audited() {
    let fixture = fixture(true).await;
    let server = &fixture.server;
    let access = server
        .backup_repository(&fixture.admin, "shop")
        .await
        .unwrap();
    assert_eq!(access.isv, "acme");
    assert_eq!(access.repository["kind"], "s3");
    assert_eq!(access.repository["prefix"], "ck/isv/acme");
    assert_eq!(access.repository["secret_access_key"], "very-secret");

    server
        .create_user(
            &fixture.admin,
            "olivia",
            "operator-password",
            Role::Operator,
        )
        .await
        .unwrap();
    let operator = Principal::User {
        name: "olivia".into(),
        role: Role::Operator,
    };
    let err = server
        .backup_repository(&operator, "shop")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    // Operators still read the catalog.
    server.backup_catalog(&operator, None, None).await.unwrap();
    let err = server
        .backup_repository(&fixture.admin, "nope")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    let audit = server.audit_log(&fixture.admin).await.unwrap().entries;
    let attempts: Vec<(String, String, String)> = audit
        .iter()
        .filter(|entry| entry.action == "backups.repository")
        .map(|entry| {
            (
                entry.actor.clone(),
                entry.target.clone(),
                entry.outcome.clone(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (
                "user:admin".to_owned(),
                "platform:shop".to_owned(),
                "ok".to_owned()
            ),
            (
                "user:olivia".to_owned(),
                "platform:shop".to_owned(),
                "error:forbidden".to_owned()
            ),
            (
                "user:admin".to_owned(),
                "platform:nope".to_owned(),
                "error:not_found".to_owned()
            ),
        ]
    );
    assert!(
        audit
            .iter()
            .any(|entry| entry.action == "backups.list" && entry.actor == "user:olivia")
    );
}

fn drill(database: &str) -> DrillRecord {
    DrillRecord {
        platform: "shop".into(),
        database: database.into(),
        started_at_ms: NOW_MS - 30_000,
        base_backup: Some("20261122T101500Z-3fa2".into()),
        rpo_ms: Some(4_000),
        rto_ms: Some(25_000),
        ok: true,
        error: None,
        report: serde_json::json!({}),
    }
}

#[tokio::test]
async fn the_databases_own_agent_records_its_scheduled_drills_and_no_other_agent() {
    let fixture = fixture(true).await;
    let server = &fixture.server;
    server
        .record_drill(&agent("db1"), &drill("db"))
        .await
        .unwrap();
    let events = server
        .events(
            &fixture.admin,
            &EventQuery {
                kind: Some("dr_drill".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.events.len(), 1, "{events:?}");
    assert_eq!(events.events[0].actor.as_deref(), Some("agent:agent-db1"));
    assert!(events.events[0].message.contains("passed"), "{events:?}");
    // Another host's agent, and another platform's, are refused.
    let err = server
        .record_drill(&agent("app1"), &drill("db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    let foreign = Principal::Agent {
        id: "agent-x".into(),
        host: "db1".into(),
        platform: "other".into(),
    };
    let err = server
        .record_drill(&foreign, &drill("db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
}
