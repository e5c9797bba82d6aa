//! `cloudkeep server --database-url postgres://…` keeps its state in a real PostgreSQL across restarts.

use cloudkeep_testkit::postgres::TestPostgres;

use crate::harness::{TestServer, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_postgres_keeps_platforms_and_credentials_across_restarts() {
    let Some(postgres) = TestPostgres::start() else {
        return;
    };
    let url = postgres.create_database("cloudkeep");
    let dir = tempfile::tempdir().unwrap();
    let port = cloudkeep_testkit::free_port();
    let server = TestServer::start_with(dir.path(), port, &["--database-url", &url]).await;
    server
        .admin_client()
        .apply_spec("pg.json", spec("pg-platform", &["db1"]))
        .await
        .unwrap();
    assert!(server.process.terminate().success());

    let again = TestServer::start_with(dir.path(), port, &["--database-url", &url]).await;
    let platforms = again.admin_client().platforms().await.unwrap();
    assert_eq!(platforms.platforms.len(), 1);
    assert_eq!(platforms.platforms[0].name, "pg-platform");
    assert_eq!(platforms.platforms[0].hosts, ["db1"]);
    assert!(
        !dir.path().join("state.db").exists(),
        "state went to PostgreSQL, not to a SQLite file"
    );
    assert!(again.process.terminate().success());
}
