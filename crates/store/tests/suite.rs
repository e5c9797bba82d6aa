//! The store test suite: every case runs on a temp SQLite file and on a real PostgreSQL server.

use cloudkeep_store::{
    AgentRecord, ApiTokenRecord, ApplyOutcome, HostRecord, JoinRefusal, JoinTokenRecord,
    PlatformRecord, Store, StoreError, UserRecord, chain_is_valid,
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
