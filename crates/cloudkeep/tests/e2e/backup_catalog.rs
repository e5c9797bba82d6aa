//! The backup catalog end to end: a spec's database with `backup`, the server's `[backup]`
//! repository and the ISV's key make the database host's backup job; that agent's reports fill the
//! catalog that `cloudkeep backups list|show` print, failures included; another host's agent cannot
//! report for the database, and only admins read the repository (its secret never reaches the log).

use std::path::Path;

use cloudkeep_client::Client;
use cloudkeep_protocol::backup::{
    BackupCatalog, BackupEvent, BackupFailed, BackupKeyCreate, BackupReport, BaseBackupDone,
    DatabaseBackups, WalArchived,
};

use crate::harness::{TestServer, binary, enrol_agent, read_admin};

const SECRET: &str = "e2e-secret-access-key";

const SPEC: &str = r#"{"version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "gc-uk1",
    "hosts": [
        {"name": "db1", "components": [{"name": "db", "kind": "database",
            "backup": {"pgdata": "/var/lib/postgresql/15/main", "full_every": "12h", "drill": {"every": "7d"}}}]},
        {"name": "app1", "components": [{"name": "app", "kind": "app_server"}]}
    ]}"#;

fn server_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            r#"version = 1
[backup.repository]
kind = "s3"
endpoint = "https://s3.example.invalid"
bucket = "backups"
access_key_id = "AKIAE2E"
secret_access_key = "{SECRET}"
prefix = "ck"
"#
        ),
    )
    .unwrap();
    path
}

fn backups_cli(server: &TestServer, args: &[&str]) -> String {
    let token = read_admin(&server.data_dir).token;
    let output = binary()
        .arg("backups")
        .args(args)
        .args(["--server", &server.url(), "--api-token", &token])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cloudkeep backups {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn now_ms() -> i64 {
    cloudkeep_stdx::Clock::now_ms(&cloudkeep_stdx::SystemClock)
}

fn wal(segment: u64, archived_at_ms: i64) -> BackupEvent {
    BackupEvent::Wal(WalArchived {
        name: format!("00000001{segment:016X}"),
        timeline: 1,
        segment,
        plain_bytes: 16 << 20,
        stored_bytes: 2 << 20,
        archived_at_ms,
        upload_ms: 25,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_report_backups_and_operators_read_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path());
    let server = TestServer::start_with(
        &dir.path().join("server"),
        cloudkeep_testkit::free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let admin = server.admin_client();
    admin.apply_spec("shop.json", SPEC.into()).await.unwrap();
    let recipient = cloudkeep_backup::generate_keypair().recipient.to_string();
    admin
        .create_backup_key(&BackupKeyCreate {
            isv: "acme".into(),
            recipient: recipient.clone(),
            comment: "custodian: alice".into(),
        })
        .await
        .unwrap();
    let db1 = enrol_agent(&server.url(), &admin, "shop", "db1").await;
    let app1 = enrol_agent(&server.url(), &admin, "shop", "app1").await;

    // The database host's job: the ISV's part of the default repository and its key.
    let config = db1.agent_config().await.unwrap();
    assert_eq!(config.backups.len(), 1);
    let job = &config.backups[0];
    assert_eq!(job.database, "db");
    assert_eq!(job.pgdata, "/var/lib/postgresql/15/main");
    assert_eq!(job.full_every_ms, 12 * 3_600_000);
    assert_eq!(job.keep_full, 2);
    assert_eq!(job.problem, None);
    assert_eq!(job.recipients, [recipient]);
    assert_eq!(job.repository["kind"], "s3");
    assert_eq!(job.repository["bucket"], "backups");
    assert_eq!(job.repository["prefix"], "ck/isv/acme");
    assert!(app1.agent_config().await.unwrap().backups.is_empty());

    // Before any report the database is listed, with nothing backed up.
    let listed: BackupCatalog =
        serde_json::from_str(&backups_cli(&server, &["list", "-o", "json"])).unwrap();
    assert_eq!(listed.databases.len(), 1);
    assert!(listed.databases[0].bases.is_empty());

    let now = now_ms();
    db1.report_backups(&BackupReport {
        database: "db".into(),
        events: vec![
            wal(2, now - 30_000),
            wal(3, now - 20_000),
            wal(5, now - 10_000),
            BackupEvent::Base(BaseBackupDone {
                id: "20261122T101500Z-3fa2".into(),
                started_at_ms: now - 60_000,
                stopped_at_ms: now - 15_000,
                start_lsn: "0/2000028".into(),
                stop_lsn: "0/3000100".into(),
                timeline: 1,
                start_wal: "000000010000000000000002".into(),
                stop_wal: "000000010000000000000003".into(),
                files: 1234,
                plain_bytes: 48 << 20,
                stored_bytes: 11 << 20,
                parent: None,
            }),
            BackupEvent::Failed(BackupFailed {
                what: "wal".into(),
                message: "upload of 000000010000000000000004 failed: connection reset".into(),
                at_ms: now - 12_000,
            }),
        ],
    })
    .await
    .unwrap();

    // Another host's agent cannot report for this database.
    let refused = app1
        .report_backups(&BackupReport {
            database: "db".into(),
            events: vec![wal(6, now)],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("is backed up by host \"db1\", not by \"app1\""),
        "{refused}"
    );

    // `backups list` and `show`, as JSON and as tables.
    let listed: BackupCatalog = serde_json::from_str(&backups_cli(
        &server,
        &["list", "--platform", "shop", "-o", "json"],
    ))
    .unwrap();
    let db = &listed.databases[0];
    assert_eq!(
        (db.platform.as_str(), db.database.as_str(), db.host.as_str()),
        ("shop", "db", "db1")
    );
    assert_eq!(db.bases.len(), 1);
    assert_eq!(db.wal_ranges.len(), 2, "segment 4 is missing: two runs");
    assert_eq!(db.wal_ranges[0].segments, 2);
    assert_eq!(db.last_wal_archived_at_ms, Some(now - 10_000));
    assert_eq!(db.last_failure.as_ref().unwrap().what, "wal");
    let table = backups_cli(&server, &["list"]);
    assert!(table.starts_with("PLATFORM"), "{table}");
    assert!(
        table.contains("20261122T101500Z-3fa2") && table.contains("3 segments, 2 runs, tl 1"),
        "{table}"
    );
    assert!(
        table.contains("wal ") && table.contains("connection reset"),
        "{table}"
    );

    let shown: DatabaseBackups = serde_json::from_str(&backups_cli(
        &server,
        &[
            "show",
            "--platform",
            "shop",
            "--database",
            "db",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(&shown, db);
    let text = backups_cli(&server, &["show", "--platform", "shop", "--database", "db"]);
    for expected in [
        "platform shop  isv acme  database db  host db1",
        "20261122T101500Z-3fa2",
        "0/2000028",
        "48.0 MiB",
        "000000010000000000000005",
        "last failure\n  wal ",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let missing = binary()
        .args([
            "backups",
            "show",
            "--platform",
            "shop",
            "--database",
            "nope",
        ])
        .args(["--server", &server.url(), "--api-token"])
        .arg(read_admin(&server.data_dir).token)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("has no backed-up database \"nope\""),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The failure is an event too.
    let events = admin
        .events(&cloudkeep_protocol::alerting::EventQuery {
            kind: Some("backup_failed".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].host, "db1");

    // Only admins read the repository; every attempt by a person is audited.
    let access = admin.backup_repository("shop").await.unwrap();
    assert_eq!(access.repository["secret_access_key"], SECRET);
    let refused = db1.backup_repository("shop").await.unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    let anonymous = Client::new(&server.url(), None).unwrap();
    let refused = anonymous.backup_repository("shop").await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    let audit = admin.audit().await.unwrap();
    assert!(
        audit
            .entries
            .iter()
            .any(|entry| entry.action == "backups.repository" && entry.target == "platform:shop"),
        "repository access is audited"
    );
    assert!(
        !server.process.output_text().contains(SECRET),
        "the repository's secret is never logged"
    );
}
