//! PostgreSQL backups driven by the real agent: it points `archive_command` at `cloudkeep wal-push`,
//! archives WAL and takes a full backup into a local repository or a real S3-compatible server;
//! `cloudkeep restore` recovers to a time between two marker rows; `cloudkeep dr-drill` measures
//! RPO and RTO; an agent killed mid-upload leaves no partial object counted and no WAL missing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use cloudkeep_protocol::api::TokenCreateRequest;
use cloudkeep_stdx::{Clock, SystemClock};
use cloudkeep_testkit::postgres::TestPostgres;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::harness::{Process, TestServer, agent, binary, read_admin, wait_for};

const HOST: &str = "db1";
const PLATFORM: &str = "acme-prod";

fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The e2e platform's spec; with `drill_key` the agent also runs scheduled drills with that key.
fn spec(pgdata: &Path, url: &str, streaming: bool, drill_key: Option<&Path>) -> String {
    let drill = drill_key.map(|key| {
        serde_json::json!({"every": "1h", "key_file": key, "check_sql": "SELECT count(*) >= 0 FROM markers"})
    });
    serde_json::json!({
        "version": 1,
        "platform": PLATFORM,
        "isv": "acme",
        "tenant": "globex",
        "cloud": "gc-uk1",
        "hosts": [{
            "name": HOST,
            "components": [{
                "name": "db",
                "kind": "database",
                "backup": {
                    "pgdata": pgdata.display().to_string(),
                    "connection": url,
                    // Streaming must bring commits back with no segment switch at all.
                    "archive_timeout": if streaming { "1h" } else { "2s" },
                    "heartbeat_every": "1s",
                    "parallel": 2,
                    "streaming": streaming,
                    "drill": drill,
                }
            }]
        }]
    })
    .to_string()
}

fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    let token = read_admin(&server.data_dir).token;
    binary()
        .args(args)
        .args(["--server", &server.url(), "--api-token", &token])
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// WAL files PostgreSQL marked ready and nobody archived yet.
fn ready_files(archive_status: &Path) -> usize {
    std::fs::read_dir(archive_status)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".ready"))
        .count()
}

struct Site {
    _dir: tempfile::TempDir,
    server: TestServer,
    pg: TestPostgres,
    agent: Option<Process>,
    agent_state: std::path::PathBuf,
    key_file: std::path::PathBuf,
    session: PgConnection,
}

/// A server whose default repository is `repository_toml`, a PostgreSQL with archive_mode on, an
/// ISV key, the spec, and an enrolled agent.
async fn site(repository_toml: &str) -> Option<Site> {
    site_with(repository_toml, false, false).await
}

/// A server, PostgreSQL and an enrolled agent backing it up (streaming WAL, and running
/// scheduled drills, when asked).
async fn site_with(repository_toml: &str, streaming: bool, drills: bool) -> Option<Site> {
    let pg = TestPostgres::start_with(&[("archive_mode", "on")])?;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, format!("version = 1\n{repository_toml}")).unwrap();
    let server = TestServer::start_with(
        &dir.path().join("server"),
        cloudkeep_testkit::free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let key_file = dir.path().join("acme.key");
    let created = cli(
        &server,
        &[
            "keys",
            "create",
            "--isv",
            "acme",
            "--out",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(created.status.success(), "{}", text(&created));
    let admin = server.admin_client();
    admin
        .apply_spec(
            "acme-prod.json",
            spec(
                &pg.data_dir(),
                &pg.url(),
                streaming,
                drills.then_some(key_file.as_path()),
            ),
        )
        .await
        .unwrap();
    let token = admin
        .create_token(&TokenCreateRequest {
            platform: PLATFORM.into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    let agent_state = dir.path().join("agent");
    let agent = agent(&server.url(), &agent_state, HOST, Some(&token.token));
    let mut session = PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE markers (name text PRIMARY KEY)")
        .execute(&mut session)
        .await
        .unwrap();
    Some(Site {
        _dir: dir,
        server,
        pg,
        agent: Some(agent),
        agent_state,
        key_file,
        session,
    })
}

impl Site {
    /// The platform's recorded DR drills.
    async fn drill_events(&self) -> Vec<cloudkeep_protocol::alerting::EventView> {
        self.server
            .admin_client()
            .events(&cloudkeep_protocol::alerting::EventQuery {
                kind: Some("dr_drill".into()),
                platform: Some(PLATFORM.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .events
    }

    async fn insert(&mut self, name: &str) {
        sqlx::query("INSERT INTO markers (name) VALUES ($1)")
            .bind(name)
            .execute(&mut self.session)
            .await
            .unwrap();
    }

    /// The catalog entry of the database, once it has a base backup.
    async fn catalog(&self) -> serde_json::Value {
        let output = cli(&self.server, &["backups", "list", "-o", "json"]);
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    async fn wait_for_base_backup(&self) {
        wait_for(
            "a base backup in the catalog",
            Duration::from_secs(120),
            || async {
                let catalog = self.catalog().await;
                let bases = catalog["databases"][0]["bases"]
                    .as_array()
                    .map_or(0, Vec::len);
                (bases > 0).then_some(())
            },
        )
        .await;
    }

    /// Restores to `target` into `<parent>/restored` with the server kept running on a free port,
    /// reads the marker names from the copy and stops it.
    async fn restored_markers(&self, parent: &Path, target: &[&str]) -> Vec<String> {
        let restored = parent.join("restored");
        let port = cloudkeep_testkit::free_port().to_string();
        let mut args = vec!["restore", "--platform", PLATFORM];
        args.extend_from_slice(target);
        args.extend([
            "--to",
            restored.to_str().unwrap(),
            "--port",
            &port,
            "--socket-dir",
            parent.to_str().unwrap(),
            "--key",
            self.key_file.to_str().unwrap(),
        ]);
        let restore = cli(&self.server, &args);
        assert!(restore.status.success(), "{}", text(&restore));
        let mut copy =
            PgConnection::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
                .await
                .unwrap();
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM markers ORDER BY name")
            .fetch_all(&mut copy)
            .await
            .unwrap();
        drop(copy);
        let stop = std::process::Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "-D",
            ])
            .arg(&restored)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(stop.status.success(), "{}", text(&stop));
        names
    }

    /// Switches WAL and waits until PostgreSQL reports the segment archived (wal-push returned 0).
    async fn switch_and_wait(&mut self) -> String {
        let name: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
            .fetch_one(&mut self.session)
            .await
            .unwrap();
        let session = &mut self.session;
        let wanted = name.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let archived: Option<String> =
                sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
                    .fetch_one(&mut *session)
                    .await
                    .unwrap();
            if archived
                .as_deref()
                .is_some_and(|last| last >= wanted.as_str())
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{wanted} not archived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        name
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_backs_up_and_restore_recovers_to_a_time_between_two_markers() {
    let repo = tempfile::tempdir().unwrap();
    let Some(mut site) = site_with(
        &format!(
            "[backup.repository]\nkind = \"local\"\npath = \"{}\"\n",
            repo.path().display()
        ),
        false,
        true,
    )
    .await
    else {
        return;
    };
    site.wait_for_base_backup().await;
    // The agent took over archive_command.
    let archive_command: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'archive_command'")
            .fetch_one(&mut site.session)
            .await
            .unwrap();
    assert!(
        archive_command.contains("wal-push --socket"),
        "{archive_command}"
    );

    site.insert("first").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let target = SystemClock.now_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    site.insert("second").await;
    site.switch_and_wait().await;
    let catalog = site.catalog().await;
    let database = &catalog["databases"][0];
    assert_eq!(database["database"], "db");
    assert!(
        database["wal_ranges"]
            .as_array()
            .is_some_and(|ranges| !ranges.is_empty()),
        "{catalog}"
    );

    // An operator's on-demand full backup lands next to the agent's, encrypted to the ISV's key.
    let pgdata = site.pg.data_dir();
    let taken = cli(
        &site.server,
        &[
            "backups",
            "take",
            "--platform",
            PLATFORM,
            "--database",
            "db",
            "--pgdata",
            pgdata.to_str().unwrap(),
            "--connection",
            &site.pg.url(),
            "--incremental",
            "-o",
            "json",
        ],
    );
    assert!(taken.status.success(), "{}", text(&taken));
    let taken: serde_json::Value = serde_json::from_slice(&taken.stdout).unwrap();
    assert!(taken["stored_bytes"].as_u64().unwrap() > 0, "{taken}");
    assert!(taken["files"].as_u64().unwrap() > 100, "{taken}");
    // Incremental over the agent's full backup: only changed pages, far less than the full.
    let full = &database["bases"][0];
    assert_eq!(taken["parent"], full["id"], "{taken} {full}");
    assert!(
        taken["stored_bytes"].as_u64().unwrap() * 3 < full["stored_bytes"].as_u64().unwrap(),
        "{taken} {full}"
    );

    let verify = cli(
        &site.server,
        &["backups", "verify", "--platform", PLATFORM, "-o", "json"],
    );
    assert!(verify.status.success(), "{}", text(&verify));
    let verified: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verified["base_backups"], 2, "{verified}");
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");

    let parent = shared_dir();
    let target_text = jiff::Timestamp::from_millisecond(target)
        .unwrap()
        .to_string();
    let names = site
        .restored_markers(parent.path(), &["--target-time", &target_text])
        .await;
    assert_eq!(names, vec!["first"]);

    // The drill restores the latest state, measures RPO from the heartbeat row and RTO.
    let drill = cli(
        &site.server,
        &[
            "dr-drill",
            "--platform",
            PLATFORM,
            "--key",
            site.key_file.to_str().unwrap(),
            "--scratch-dir",
            parent.path().to_str().unwrap(),
            "--check-sql",
            "SELECT count(*) = 2 FROM markers",
            "-o",
            "json",
        ],
    );
    assert!(drill.status.success(), "{}", text(&drill));
    let report: serde_json::Value = serde_json::from_slice(&drill.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let rpo = report["rpo_ms"].as_i64().unwrap();
    let rto = report["rto_ms"].as_i64().unwrap();
    // archive_timeout 2 s and a heartbeat every second: seconds, far under the minute promised.
    assert!((0..30_000).contains(&rpo), "{report}");
    assert!(rto > 0, "{report}");
    assert_eq!(report["row_counts"]["public.markers"], 2, "{report}");
    assert_eq!(report["check"]["passed"], true, "{report}");
    let leftovers: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("cloudkeep-drill")
        })
        .collect();
    assert!(leftovers.is_empty(), "the drill cleans up");
    assert!(
        site.drill_events().await.iter().any(|event| event
            .actor
            .as_deref()
            .is_some_and(|actor| actor.starts_with("user:"))),
        "the drill is recorded as an event"
    );
    // The agent ran its scheduled drill (due once the first backup existed) and recorded it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let scheduled = loop {
        if let Some(event) = site.drill_events().await.into_iter().find(|event| {
            event
                .actor
                .as_deref()
                .is_some_and(|actor| actor.starts_with("agent:"))
        }) {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled drill recorded within 2 min"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(scheduled.message.contains("passed"), "{scheduled:?}");
    assert!(
        site.agent_state.join("drill-db.last").is_file(),
        "the drill's time is kept for restarts"
    );
    site.agent.take().unwrap().terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_upload_counts_no_partial_object_and_loses_no_wal() {
    let Some(s3) = cloudkeep_testkit::s3::TestS3::start() else {
        return;
    };
    let Some(mut site) = site(&format!(
        "[backup.repository]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n",
        s3.url(),
        s3.bucket(),
        cloudkeep_testkit::s3::TEST_ACCESS_KEY_ID,
        cloudkeep_testkit::s3::TEST_SECRET_ACCESS_KEY,
    ))
    .await
    else {
        return;
    };
    site.wait_for_base_backup().await;
    // A burst of incompressible WAL, and the agent killed while segments are being uploaded.
    sqlx::raw_sql(
        "CREATE TABLE burst AS SELECT g, md5(random()::text) || md5(random()::text) AS pad FROM generate_series(1, 600000) g",
    )
    .execute(&mut site.session)
    .await
    .unwrap();
    let ready_dir = site.pg.data_dir().join("pg_wal/archive_status");
    wait_for("WAL files waiting", Duration::from_secs(60), || {
        let ready = ready_files(&ready_dir);
        async move { (ready > 0).then_some(()) }
    })
    .await;
    site.agent.take().unwrap().kill9();
    // Whatever is counted verifies: no partial object is listed.
    let verify = cli(&site.server, &["backups", "verify", "--platform", PLATFORM]);
    assert!(
        verify.status.success() || text(&verify).contains("missing"),
        "{}",
        text(&verify)
    );
    for broken in ["corrupt", "truncated", "not found"] {
        assert!(!text(&verify).contains(broken), "{}", text(&verify));
    }

    // Restarted, the agent catches up and no segment is missing.
    let agent_state = site.agent_state.clone();
    site.agent = Some(agent(&site.server.url(), &agent_state, HOST, None));
    site.insert("after-restart").await;
    site.switch_and_wait().await;
    wait_for(
        "every ready WAL file archived",
        Duration::from_secs(120),
        || {
            let ready = ready_files(&ready_dir);
            async move { (ready == 0).then_some(()) }
        },
    )
    .await;
    let verify = cli(&site.server, &["backups", "verify", "--platform", PLATFORM]);
    assert!(verify.status.success(), "{}", text(&verify));
    site.agent.take().unwrap().terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_restores_a_commit_that_no_archived_segment_holds() {
    let repo = tempfile::tempdir().unwrap();
    let Some(mut site) = site_with(
        &format!(
            "[backup.repository]\nkind = \"local\"\npath = \"{}\"\n",
            repo.path().display()
        ),
        true,
        false,
    )
    .await
    else {
        return;
    };
    site.wait_for_base_backup().await;
    site.insert("streamed").await;
    let (segment, offset): (String, i64) = sqlx::query_as(
        "SELECT pg_walfile_name(pg_current_wal_lsn()), ((pg_current_wal_lsn() - '0/0'::pg_lsn) % 16777216)::bigint",
    )
    .fetch_one(&mut site.session)
    .await
    .unwrap();
    // A streamed tail of the marker's segment reaching past the marker, within seconds, while
    // archive_timeout is an hour.
    let tails = repo
        .path()
        .join("isv/acme/manifests")
        .join(PLATFORM)
        .join("db/stream");
    let covered = || {
        std::fs::read_dir(&tails).ok().is_some_and(|dir| {
            dir.flatten().any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".manifest.json") else {
                    return false;
                };
                cloudkeep_backup::pg::parse_tail_name(stem).is_some_and(|(tail, bytes)| {
                    tail > segment || (tail == segment && bytes >= offset as u64)
                })
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !covered() {
        assert!(
            std::time::Instant::now() < deadline,
            "no streamed tail of {segment} past offset {offset} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tail came through the slot, which the agent's pg_receivewal holds.
    let slot_active: bool = sqlx::query_scalar(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'cloudkeep_db'",
    )
    .fetch_one(&mut site.session)
    .await
    .unwrap();
    assert!(slot_active, "the agent's pg_receivewal holds its slot");
    let archived: Option<String> =
        sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
            .fetch_one(&mut site.session)
            .await
            .unwrap();
    assert!(
        archived
            .as_deref()
            .is_none_or(|last| last < segment.as_str()),
        "the marker's segment {segment} must not be archived whole ({archived:?})"
    );

    let parent = shared_dir();
    let names = site.restored_markers(parent.path(), &["--latest"]).await;
    assert_eq!(names, vec!["streamed"]);
    let verify = cli(&site.server, &["backups", "verify", "--platform", PLATFORM]);
    assert!(verify.status.success(), "{}", text(&verify));
    site.agent.take().unwrap().terminate();
}
