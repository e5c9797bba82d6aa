//! The store test suite: every case runs on a temp SQLite file and on a real PostgreSQL server.

use cloudkeep_store::{
    AgentRecord, AlertRecord, ApiTokenRecord, ApplyOutcome, BackupChange, BackupDatabaseRecord,
    BackupFailureRecord, BackupReportApplied, BaseBackupRecord, DeliveryRecord, EventFilter,
    EventRecord, HostRecord, JoinRefusal, JoinTokenRecord, MaintenanceRecord, PlatformRecord,
    SilenceRecord, Store, StoreError, UserRecord, WalFileRecord, chain_is_valid,
};
use cloudkeep_testkit::postgres::TestPostgres;

type Case = fn(Store) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

const CASES: &[(&str, Case)] = &[
    ("users_and_tokens", |store| {
        Box::pin(users_and_tokens(store))
    }),
    (
        "apply_platform_creates_updates_and_is_idempotent",
        |store| Box::pin(apply_platform_creates_updates_and_is_idempotent(store)),
    ),
    ("host_cannot_belong_to_two_platforms", |store| {
        Box::pin(host_cannot_belong_to_two_platforms(store))
    }),
    ("join_token_is_single_use_and_expires", |store| {
        Box::pin(join_token_is_single_use_and_expires(store))
    }),
    ("revoked_agent_stays_revoked", |store| {
        Box::pin(revoked_agent_stays_revoked(store))
    }),
    ("audit_log_is_hash_chained", |store| {
        Box::pin(audit_log_is_hash_chained(store))
    }),
    ("touch_host_never_moves_back", |store| {
        Box::pin(touch_host_never_moves_back(store))
    }),
    ("events_filter_by_scope_kind_and_time", |store| {
        Box::pin(events_filter_by_scope_kind_and_time(store))
    }),
    ("alert_upsert_keeps_notification_fields", |store| {
        Box::pin(alert_upsert_keeps_notification_fields(store))
    }),
    ("maintenance_silences_deliveries_cursors", |store| {
        Box::pin(maintenance_silences_deliveries_cursors(store))
    }),
    ("backup_keys_are_listed_per_isv_and_unique", |store| {
        Box::pin(backup_keys_are_listed_per_isv_and_unique(store))
    }),
    ("backup_reports_are_idempotent_and_expire_rows", |store| {
        Box::pin(backup_reports_are_idempotent_and_expire_rows(store))
    }),
    ("backup_failures_keep_the_latest", |store| {
        Box::pin(backup_failures_keep_the_latest(store))
    }),
];

#[tokio::test]
async fn suite_on_sqlite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = Store::open(&url)
            .await
            .unwrap_or_else(|err| panic!("{name}: open sqlite: {err}"));
        eprintln!("sqlite: {name}");
        case(store).await;
    }
}

#[tokio::test]
async fn suite_on_postgres() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    for (index, (name, case)) in CASES.iter().enumerate() {
        let url = server.create_database(&format!("case{index}"));
        let store = Store::open(&url)
            .await
            .unwrap_or_else(|err| panic!("{name}: open postgres: {err}"));
        eprintln!("postgres: {name}");
        case(store).await;
    }
}

#[tokio::test]
async fn reopening_sqlite_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = Store::open(&url).await.unwrap();
    store.insert_user(&user("alice")).await.unwrap();
    store.close().await;
    let reopened = Store::open(&url).await.unwrap();
    assert_eq!(
        reopened.get_user("alice").await.unwrap(),
        Some(user("alice"))
    );
}

#[tokio::test]
async fn unsupported_url_is_a_clear_error() {
    let err = Store::open("mysql://x").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("expected sqlite://PATH or postgres://"),
        "{err}"
    );
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        password_hash: "$argon2id$v=19$fake".into(),
        role: "admin".into(),
        created_at_ms: 1000,
        disabled: false,
    }
}

fn platform(name: &str, spec: &str) -> PlatformRecord {
    PlatformRecord {
        name: name.into(),
        isv: "acme".into(),
        tenant: "globex".into(),
        cloud: "gc-uk1".into(),
        spec_json: spec.into(),
        spec_hash: blake3::hash(spec.as_bytes()).to_hex().to_string(),
        revision: 0,
        updated_at_ms: 5000,
    }
}

fn host(name: &str, platform: &str) -> HostRecord {
    HostRecord {
        name: name.into(),
        platform: platform.into(),
        cloud: "gc-uk1".into(),
        components_json: "[\"app\"]".into(),
        last_seen_ms: None,
    }
}

fn agent(id: &str, host: &str) -> AgentRecord {
    AgentRecord {
        id: id.into(),
        secret_hash: "h".into(),
        host: host.into(),
        platform: "p1".into(),
        created_at_ms: 2000,
        revoked_at_ms: None,
    }
}

fn join_token(id: &str, expires_at_ms: i64) -> JoinTokenRecord {
    JoinTokenRecord {
        id: id.into(),
        secret_hash: "s".into(),
        platform: "p1".into(),
        created_by: "admin".into(),
        created_at_ms: 1000,
        expires_at_ms,
        used_at_ms: None,
        used_by_agent: None,
    }
}

async fn users_and_tokens(store: Store) {
    assert_eq!(store.user_count().await.unwrap(), 0);
    store.insert_user(&user("admin")).await.unwrap();
    assert_eq!(store.user_count().await.unwrap(), 1);
    let duplicate = store.insert_user(&user("admin")).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::Conflict(_)), "{duplicate}");
    assert_eq!(store.get_user("admin").await.unwrap(), Some(user("admin")));
    assert_eq!(store.get_user("nobody").await.unwrap(), None);
    let token = ApiTokenRecord {
        id: "t1".into(),
        secret_hash: "abc".into(),
        user: "admin".into(),
        created_at_ms: 1,
        expires_at_ms: Some(99),
        revoked_at_ms: None,
    };
    store.insert_api_token(&token).await.unwrap();
    assert_eq!(store.get_api_token("t1").await.unwrap(), Some(token));
    assert_eq!(store.get_api_token("t2").await.unwrap(), None);
}

async fn apply_platform_creates_updates_and_is_idempotent(store: Store) {
    let hosts = [host("app1", "p1"), host("db1", "p1")];
    let first = store
        .apply_platform(&platform("p1", "{\"a\":1}"), &hosts)
        .await
        .unwrap();
    assert_eq!(first, (ApplyOutcome::Created, 1));
    let again = store
        .apply_platform(&platform("p1", "{\"a\":1}"), &hosts)
        .await
        .unwrap();
    assert_eq!(again, (ApplyOutcome::Unchanged, 1));
    store.touch_host("app1", 7000).await.unwrap();
    let fewer = [host("app1", "p1")];
    let updated = store
        .apply_platform(&platform("p1", "{\"a\":2}"), &fewer)
        .await
        .unwrap();
    assert_eq!(updated, (ApplyOutcome::Updated, 2));
    let listed = store.list_hosts().await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "db1 dropped from the spec is gone: {listed:?}"
    );
    assert_eq!(
        listed[0].last_seen_ms,
        Some(7000),
        "kept host keeps its last-seen time"
    );
    let stored = store.get_platform("p1").await.unwrap().unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(stored.spec_json, "{\"a\":2}");
    assert_eq!(store.list_platforms().await.unwrap().len(), 1);
}

async fn host_cannot_belong_to_two_platforms(store: Store) {
    store
        .apply_platform(&platform("p1", "{}"), &[host("app1", "p1")])
        .await
        .unwrap();
    let err = store
        .apply_platform(&platform("p2", "{}"), &[host("app1", "p2")])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host \"app1\" already belongs to platform \"p1\""
    );
    assert_eq!(
        store.get_platform("p2").await.unwrap(),
        None,
        "failed apply changed nothing"
    );
}

async fn join_token_is_single_use_and_expires(store: Store) {
    store
        .apply_platform(&platform("p1", "{}"), &[host("app1", "p1")])
        .await
        .unwrap();
    store
        .insert_join_token(&join_token("j1", 10_000))
        .await
        .unwrap();
    store
        .insert_join_token(&join_token("j2", 1_500))
        .await
        .unwrap();
    assert_eq!(
        store
            .enroll_agent("j1", &agent("a1", "app1"))
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .enroll_agent("j1", &agent("a2", "app1"))
            .await
            .unwrap(),
        Err(JoinRefusal::AlreadyUsed)
    );
    assert_eq!(
        store
            .enroll_agent("j2", &agent("a3", "app1"))
            .await
            .unwrap(),
        Err(JoinRefusal::Expired)
    );
    assert_eq!(
        store
            .enroll_agent("nope", &agent("a4", "app1"))
            .await
            .unwrap(),
        Err(JoinRefusal::Unknown)
    );
    let agents = store.list_agents().await.unwrap();
    assert_eq!(
        agents.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a1"],
        "refused joins registered nothing"
    );
    let used = store.get_join_token("j1").await.unwrap().unwrap();
    assert_eq!(used.used_by_agent.as_deref(), Some("a1"));
}

async fn revoked_agent_stays_revoked(store: Store) {
    store
        .apply_platform(&platform("p1", "{}"), &[host("app1", "p1")])
        .await
        .unwrap();
    store
        .insert_join_token(&join_token("j1", 10_000))
        .await
        .unwrap();
    store
        .enroll_agent("j1", &agent("a1", "app1"))
        .await
        .unwrap()
        .unwrap();
    assert!(store.revoke_agent("a1", 3000).await.unwrap());
    assert!(
        !store.revoke_agent("a1", 4000).await.unwrap(),
        "second revoke is a no-op"
    );
    assert!(!store.revoke_agent("missing", 4000).await.unwrap());
    assert_eq!(
        store.get_agent("a1").await.unwrap().unwrap().revoked_at_ms,
        Some(3000)
    );
}

async fn audit_log_is_hash_chained(store: Store) {
    for index in 0..5 {
        store
            .append_audit(index, "admin", "spec.apply", "p1", "ok", "{}")
            .await
            .unwrap();
    }
    let entries = store.list_audit().await.unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(chain_is_valid(&entries));
    let mut tampered = entries.clone();
    tampered[2].actor = "mallory".into();
    assert!(
        !chain_is_valid(&tampered),
        "an edited entry breaks the chain"
    );
    let mut dropped = entries;
    dropped.remove(1);
    assert!(
        !chain_is_valid(&dropped),
        "a removed entry breaks the chain"
    );
}

async fn touch_host_never_moves_back(store: Store) {
    store
        .apply_platform(&platform("p1", "{}"), &[host("app1", "p1")])
        .await
        .unwrap();
    store.touch_host("app1", 5000).await.unwrap();
    store.touch_host("app1", 4000).await.unwrap();
    assert_eq!(
        store.get_host("app1").await.unwrap().unwrap().last_seen_ms,
        Some(5000)
    );
}

fn event(id: &str, at_ms: i64, kind: &str, platform: &str, host: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        at_ms,
        kind: kind.into(),
        cloud: "gc-uk1".into(),
        isv: "acme".into(),
        tenant: "globex".into(),
        platform: platform.into(),
        host: host.into(),
        monitor: "cpu".into(),
        alert_key: format!("{platform}/{host}/cpu"),
        state_from: Some("ok".into()),
        state_to: Some("critical".into()),
        value: Some(97.5),
        threshold: Some(95.0),
        message: "cpu overloaded".into(),
        actor: None,
        data_json: "{}".into(),
    }
}

async fn events_filter_by_scope_kind_and_time(store: Store) {
    store
        .insert_event(&event("e1", 1000, "state_change", "p1", "a"))
        .await
        .unwrap();
    store
        .insert_event(&event("e2", 2000, "acknowledged", "p1", "a"))
        .await
        .unwrap();
    store
        .insert_event(&event("e3", 3000, "state_change", "p2", "b"))
        .await
        .unwrap();
    let all = store
        .list_events(&EventFilter {
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e3", "e2", "e1"]
    );
    assert_eq!(
        all[2],
        event("e1", 1000, "state_change", "p1", "a"),
        "every column round-trips"
    );
    let filtered = store
        .list_events(&EventFilter {
            platform: Some("p1".into()),
            kinds: vec!["state_change".into(), "maintenance_started".into()],
            from_ms: Some(500),
            to_ms: Some(2500),
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        filtered.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e1"]
    );
    let limited = store
        .list_events(&EventFilter {
            limit: 1,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
}

fn alert(key: &str, state: &str) -> AlertRecord {
    AlertRecord {
        alert_key: key.into(),
        source: "rule".into(),
        cloud: "gc-uk1".into(),
        isv: "acme".into(),
        tenant: "globex".into(),
        platform: "p1".into(),
        host: "a".into(),
        monitor: "cpu".into(),
        metric: "host_cpu_busy_percent".into(),
        labels_json: "{}".into(),
        state: state.into(),
        since_ms: 1000,
        value: Some(96.0),
        threshold: Some(95.0),
        level_name: Some("cpu overloaded".into()),
        message: "cpu overloaded".into(),
        flapping: false,
        acked_by: None,
        acked_at_ms: None,
        ack_comment: None,
        notified_state: None,
        notified_at_ms: None,
        escalation_level: 0,
        updated_at_ms: 1000,
    }
}

async fn alert_upsert_keeps_notification_fields(store: Store) {
    store.upsert_alert(&alert("k1", "critical")).await.unwrap();
    store
        .mark_alert_notified("k1", "critical", 1500, 1)
        .await
        .unwrap();
    assert!(
        store
            .ack_alert("k1", "alice", "looking", 1600)
            .await
            .unwrap()
    );
    assert!(!store.ack_alert("nope", "alice", "", 1600).await.unwrap());
    let mut update = alert("k1", "critical");
    update.value = Some(99.0);
    update.acked_by = Some("alice".into());
    update.acked_at_ms = Some(1600);
    update.ack_comment = Some("looking".into());
    update.escalation_level = 1;
    store.upsert_alert(&update).await.unwrap();
    let stored = store.get_alert("k1").await.unwrap().unwrap();
    assert_eq!(stored.value, Some(99.0));
    assert_eq!(stored.notified_state.as_deref(), Some("critical"));
    assert_eq!(stored.notified_at_ms, Some(1500));
    assert_eq!(stored.acked_by.as_deref(), Some("alice"));
    store.upsert_alert(&alert("k2", "ok")).await.unwrap();
    let bad: Vec<String> = store
        .list_alerts(false)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.alert_key)
        .collect();
    assert_eq!(bad, ["k1"]);
    assert_eq!(store.list_alerts(true).await.unwrap().len(), 2);
}

async fn maintenance_silences_deliveries_cursors(store: Store) {
    let window = MaintenanceRecord {
        id: "m1".into(),
        scope_json: "{\"platform\":\"p1\"}".into(),
        schedule_json: "{}".into(),
        comment: "patching".into(),
        created_by: "alice".into(),
        created_at_ms: 1000,
    };
    store.insert_maintenance(&window).await.unwrap();
    assert_eq!(store.list_maintenance().await.unwrap(), [window]);
    assert!(store.delete_maintenance("m1", 2000).await.unwrap());
    assert!(
        !store.delete_maintenance("m1", 2000).await.unwrap(),
        "deleted once"
    );
    assert!(store.list_maintenance().await.unwrap().is_empty());

    let silence = SilenceRecord {
        id: "s1".into(),
        matchers_json: "{}".into(),
        expires_at_ms: 5000,
        comment: "known".into(),
        created_by: "bob".into(),
        created_at_ms: 1000,
    };
    store.insert_silence(&silence).await.unwrap();
    assert_eq!(store.list_silences(4999).await.unwrap(), [silence]);
    assert!(
        store.list_silences(5000).await.unwrap().is_empty(),
        "expired"
    );

    let delivery = DeliveryRecord {
        id: "d1".into(),
        at_ms: 1000,
        notification_id: "n1".into(),
        platform: "p1".into(),
        contact: "alice".into(),
        channel: "email".into(),
        status: "failed".into(),
        attempts: 5,
        error: Some("smtp: connection refused".into()),
    };
    store.insert_delivery(&delivery).await.unwrap();
    assert_eq!(store.list_deliveries(10).await.unwrap(), [delivery]);

    assert_eq!(store.get_cursor("maintenance").await.unwrap(), None);
    store.set_cursor("maintenance", 10).await.unwrap();
    store.set_cursor("maintenance", 20).await.unwrap();
    assert_eq!(store.get_cursor("maintenance").await.unwrap(), Some(20));
}

async fn backup_keys_are_listed_per_isv_and_unique(store: Store) {
    let key = |id: &str, isv: &str, recipient: &str, at: i64| cloudkeep_store::BackupKeyRecord {
        id: id.into(),
        isv: isv.into(),
        recipient: recipient.into(),
        comment: "custodian: alice".into(),
        created_by: "admin".into(),
        created_at_ms: at,
    };
    let first = key("k1", "acme", "age1first", 1);
    let second = key("k2", "acme", "age1second", 2);
    let other = key("k3", "globex", "age1third", 3);
    for record in [&first, &second, &other] {
        store.insert_backup_key(record).await.unwrap();
    }
    assert_eq!(
        store.list_backup_keys(Some("acme")).await.unwrap(),
        [first.clone(), second]
    );
    assert_eq!(store.list_backup_keys(None).await.unwrap().len(), 3);
    let duplicate = store
        .insert_backup_key(&key("k4", "globex", "age1first", 4))
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, cloudkeep_store::StoreError::Conflict(_)),
        "{duplicate:?}"
    );
}

fn backup_database(platform: &str, database: &str, host: &str, at_ms: i64) -> BackupDatabaseRecord {
    BackupDatabaseRecord {
        platform: platform.into(),
        database: database.into(),
        host: host.into(),
        isv: "acme".into(),
        first_reported_at_ms: at_ms,
        last_reported_at_ms: at_ms,
        last_failure: None,
    }
}

fn wal_file(platform: &str, database: &str, segment: i64, archived_at_ms: i64) -> WalFileRecord {
    WalFileRecord {
        platform: platform.into(),
        database: database.into(),
        name: format!("00000001{:016X}", segment),
        timeline: 1,
        segment,
        plain_bytes: 16 << 20,
        stored_bytes: 1 << 20,
        archived_at_ms,
        upload_ms: 40,
        reported_at_ms: archived_at_ms + 5,
    }
}

fn base_backup(platform: &str, database: &str, id: &str, started_at_ms: i64) -> BaseBackupRecord {
    BaseBackupRecord {
        platform: platform.into(),
        database: database.into(),
        id: id.into(),
        host: "db1".into(),
        isv: "acme".into(),
        started_at_ms,
        stopped_at_ms: started_at_ms + 60_000,
        start_lsn: "0/2000028".into(),
        stop_lsn: "0/3000100".into(),
        timeline: 1,
        start_wal: "000000010000000000000002".into(),
        stop_wal: "000000010000000000000003".into(),
        files: 1234,
        plain_bytes: 5_000_000_000,
        stored_bytes: 1_000_000_000,
        reported_at_ms: started_at_ms + 61_000,
        parent: None,
    }
}

async fn backup_reports_are_idempotent_and_expire_rows(store: Store) {
    let db = backup_database("shop", "db", "db1", 1000);
    let incremental = BaseBackupRecord {
        parent: Some("20261121T101500Z-0001".into()),
        ..base_backup("shop", "db", "20261122T101500Z-3fa2", 1000)
    };
    let report = vec![
        BackupChange::Wal(wal_file("shop", "db", 3, 2000)),
        BackupChange::Wal(wal_file("shop", "db", 2, 1500)),
        BackupChange::Base(incremental.clone()),
        BackupChange::Base(base_backup("shop", "db", "20261121T101500Z-0001", 500)),
    ];
    let applied = store.apply_backup_report(&db, &report).await.unwrap();
    assert_eq!(
        applied,
        BackupReportApplied {
            wal_files_added: 2,
            base_backups_added: 2,
            rows_removed: 0,
            new_failures: Vec::new(),
        }
    );
    // The same report again (an agent retrying after a lost answer) changes nothing.
    let again = backup_database("shop", "db", "db1", 3000);
    assert_eq!(
        store.apply_backup_report(&again, &report).await.unwrap(),
        BackupReportApplied::default()
    );
    // Another database of the same name on another platform is separate.
    store
        .apply_backup_report(
            &backup_database("other", "db", "x1", 1000),
            &[BackupChange::Wal(wal_file("other", "db", 9, 1000))],
        )
        .await
        .unwrap();

    let databases = store
        .list_backup_databases(Some("shop"), None)
        .await
        .unwrap();
    assert_eq!(
        databases,
        [BackupDatabaseRecord {
            last_reported_at_ms: 3000,
            ..db.clone()
        }]
    );
    assert_eq!(
        store
            .list_backup_databases(None, Some("db"))
            .await
            .unwrap()
            .len(),
        2
    );
    let bases = store
        .list_base_backups(Some("shop"), Some("db"))
        .await
        .unwrap();
    let ids: Vec<&str> = bases.iter().map(|base| base.id.as_str()).collect();
    assert_eq!(
        ids,
        ["20261121T101500Z-0001", "20261122T101500Z-3fa2"],
        "oldest first"
    );
    assert_eq!(bases[1], incremental, "the parent is kept");
    assert_eq!(bases[0].parent, None);
    let wal = store
        .list_wal_files(Some("shop"), Some("db"))
        .await
        .unwrap();
    assert_eq!(
        wal,
        [
            wal_file("shop", "db", 2, 1500),
            wal_file("shop", "db", 3, 2000)
        ]
    );
    assert_eq!(store.list_wal_files(None, None).await.unwrap().len(), 3);

    // Expiry removes the named rows of this database only; unknown names are ignored.
    let applied = store
        .apply_backup_report(
            &db,
            &[BackupChange::Expired {
                base_ids: vec!["20261121T101500Z-0001".into(), "nope".into()],
                wal_names: vec![
                    wal_file("shop", "db", 2, 0).name,
                    wal_file("other", "db", 9, 0).name,
                ],
            }],
        )
        .await
        .unwrap();
    assert_eq!(applied.rows_removed, 2);
    let ids: Vec<String> = store
        .list_base_backups(Some("shop"), Some("db"))
        .await
        .unwrap()
        .into_iter()
        .map(|base| base.id)
        .collect();
    assert_eq!(ids, ["20261122T101500Z-3fa2"]);
    assert_eq!(
        store
            .list_wal_files(Some("shop"), Some("db"))
            .await
            .unwrap(),
        [wal_file("shop", "db", 3, 2000)]
    );
    assert_eq!(
        store
            .list_wal_files(Some("other"), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn backup_failures_keep_the_latest(store: Store) {
    let db = backup_database("shop", "db", "db1", 1000);
    let failure = |what: &str, at_ms: i64| BackupFailureRecord {
        what: what.into(),
        message: format!("{what} failed"),
        at_ms,
    };
    let report = [
        BackupChange::Failed(failure("base", 1900)),
        BackupChange::Wal(wal_file("shop", "db", 1, 1950)),
        BackupChange::Failed(failure("wal", 2000)),
    ];
    let applied = store.apply_backup_report(&db, &report).await.unwrap();
    assert_eq!(applied.new_failures, [0, 2]);
    // A retried report brings no news; its older failure is not news either.
    let applied = store.apply_backup_report(&db, &report[2..]).await.unwrap();
    assert_eq!(applied.new_failures, Vec::<usize>::new());
    // An older failure arriving late is news but does not hide the newer one; a newer one replaces it.
    let applied = store
        .apply_backup_report(&db, &[BackupChange::Failed(failure("base", 1500))])
        .await
        .unwrap();
    assert_eq!(applied.new_failures, [0]);
    let listed = store.list_backup_databases(None, None).await.unwrap();
    assert_eq!(listed[0].last_failure, Some(failure("wal", 2000)));
    store
        .apply_backup_report(
            &BackupDatabaseRecord {
                host: "db2".into(),
                ..db.clone()
            },
            &[BackupChange::Failed(failure("retention", 2500))],
        )
        .await
        .unwrap();
    let listed = store
        .list_backup_databases(Some("shop"), Some("db"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].host, "db2", "the host that reported last");
    assert_eq!(listed[0].first_reported_at_ms, 1000);
    assert_eq!(listed[0].last_failure, Some(failure("retention", 2500)));
}
