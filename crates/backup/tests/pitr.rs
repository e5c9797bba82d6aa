//! PostgreSQL backups end to end on a real PostgreSQL 15: a base backup and archived WAL in a local
//! repository, point-in-time recovery between two marker rows, a corrupted object found by
//! verification and stopping a restore before PostgreSQL starts, a wrong key writing nothing, and
//! retention keeping what the PITR window needs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudkeep_backup::pg::{
    BaseBackupSettings, BaseManifest, DatabaseLayout, RecoverySettings, RecoveryTarget,
    RestorePlan, RestoreSummary, RetentionPolicy, apply_retention, archive_wal_file, plan_restore,
    recover, restore_files, take_base_backup, verify_database,
};
use cloudkeep_backup::{KeyPair, RepoError, RepoLocation, Repository, generate_keypair};
use cloudkeep_stdx::{Clock, SystemClock};
use cloudkeep_testkit::postgres::{TestPostgres, is_root};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A temp dir anyone may write (PostgreSQL runs as `postgres` when the tests run as root).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

struct Setup {
    pg: TestPostgres,
    staging: tempfile::TempDir,
    _repo_dir: tempfile::TempDir,
    repository: Repository,
    keys: KeyPair,
    layout: DatabaseLayout,
    session: PgConnection,
}

const SETTINGS: BaseBackupSettings = BaseBackupSettings {
    parallel: 2,
    split_bytes: 1 << 20,
    level: 3,
    incremental: false,
};

async fn setup() -> Option<Setup> {
    let staging = shared_dir();
    let archive_command = format!("cp %p {}/%f", staging.path().display());
    let pg = TestPostgres::start_with(&[
        ("archive_mode", "on"),
        ("archive_command", &archive_command),
    ])?;
    let repo_dir = tempfile::tempdir().unwrap();
    let repository = Repository::open(&RepoLocation::Local {
        path: repo_dir.path().to_owned(),
        prefix: "isv/acme".into(),
    })
    .unwrap();
    let mut session = PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE markers (name text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
         INSERT INTO markers (name) VALUES ('before-backup');
         CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS text FROM generate_series(1, 50000) g;",
    )
    .execute(&mut session)
    .await
    .unwrap();
    Some(Setup {
        pg,
        staging,
        _repo_dir: repo_dir,
        repository,
        keys: generate_keypair(),
        layout: DatabaseLayout::new("acme-prod", "db").unwrap(),
        session,
    })
}

impl Setup {
    async fn base_backup(&self, id: &str) -> BaseManifest {
        self.backup_with(id, &SETTINGS).await
    }

    async fn backup_with(&self, id: &str, settings: &BaseBackupSettings) -> BaseManifest {
        take_base_backup(
            &self.repository,
            &self.layout,
            id,
            &self.pg.data_dir(),
            &self.pg.url(),
            std::slice::from_ref(&self.keys.recipient),
            settings,
            &now_ms,
        )
        .await
        .unwrap()
    }

    /// Restores `plan`'s files into `<parent>/restored`, for a server on a port of its own.
    async fn restore(
        &self,
        plan: &RestorePlan,
        parent: &Path,
    ) -> (PathBuf, RecoverySettings, RestoreSummary) {
        let restored = parent.join("restored");
        let settings = recovery_settings(parent);
        let summary = restore_files(
            &self.repository,
            std::slice::from_ref(&self.keys.identity),
            plan,
            &restored,
            &settings,
            2,
        )
        .await
        .unwrap();
        (restored, settings, summary)
    }

    /// Restoring `plan` into `<parent>/restored` with `key` fails with a wrong-key error and
    /// leaves nothing.
    async fn restore_is_refused_with_a_wrong_key(
        &self,
        key: &KeyPair,
        plan: &RestorePlan,
        parent: &Path,
    ) {
        let restored = parent.join("restored");
        let error = restore_files(
            &self.repository,
            std::slice::from_ref(&key.identity),
            plan,
            &restored,
            &recovery_settings(parent),
            2,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                cloudkeep_backup::pg::PgBackupError::Repo(RepoError::WrongKey { .. })
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("encrypted to other recipients"),
            "{error}"
        );
        assert!(!restored.exists());
    }

    async fn sql(&mut self, sql: &'static str) {
        sqlx::raw_sql(sql).execute(&mut self.session).await.unwrap();
    }

    async fn insert(&mut self, name: &str) {
        sqlx::query("INSERT INTO markers (name) VALUES ($1)")
            .bind(name)
            .execute(&mut self.session)
            .await
            .unwrap();
    }

    /// Switches to a new WAL segment, waits until PostgreSQL archived the old one to the staging
    /// dir, and archives every staged file into the repository.
    async fn ship_wal(&mut self) {
        let switched: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
            .fetch_one(&mut self.session)
            .await
            .unwrap();
        let staged = self.staging.path().join(&switched);
        for _ in 0..300 {
            if staged.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(staged.exists(), "PostgreSQL did not archive {switched}");
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.staging.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            archive_wal_file(
                &self.repository,
                &self.layout,
                std::slice::from_ref(&self.keys.recipient),
                3,
                16 << 20,
                &path,
                &now_ms,
            )
            .await
            .unwrap();
        }
    }
}

fn recovery_settings(socket_dir: &Path) -> RecoverySettings {
    RecoverySettings {
        port: Some(cloudkeep_testkit::free_port()),
        socket_dir: Some(socket_dir.to_owned()),
        pg_bin: None,
        run_as: is_root().then(|| "postgres".to_owned()),
        keep_running: true,
        timeout: Duration::from_secs(120),
    }
}

/// A session on the restored server `settings` started.
async fn connect_restored(settings: &RecoverySettings) -> PgConnection {
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        settings.port.unwrap()
    );
    PgConnection::connect(&url).await.unwrap()
}

async fn stop(dir: &Path, settings: &RecoverySettings) {
    let mut command = if is_root() {
        let mut command = tokio::process::Command::new("runuser");
        command.args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl"]);
        command
    } else {
        tokio::process::Command::new("/usr/lib/postgresql/15/bin/pg_ctl")
    };
    let status = command
        .arg("-D")
        .arg(dir)
        .args(["-m", "fast", "-w", "stop"])
        .status()
        .await
        .unwrap();
    assert!(
        status.success(),
        "stopping the restored server on {:?}",
        settings.port
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_to_a_time_between_two_markers_keeps_the_first_and_not_the_second() {
    let Some(mut setup) = setup().await else {
        return;
    };
    let base = setup.base_backup("base-1").await;
    assert!(
        base.files
            .iter()
            .any(|file| file.path == "global/pg_control")
    );
    assert!(base.backup_label.contains("START TIMELINE: 1"));
    setup.insert("first").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let target = now_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    setup.insert("second").await;
    setup.ship_wal().await;

    let plan = plan_restore(
        &setup.repository,
        &setup.layout,
        RecoveryTarget::Time(target),
    )
    .await
    .unwrap();
    assert_eq!(plan.base.id, "base-1");
    let parent = shared_dir();
    let (restored, settings, summary) = setup.restore(&plan, parent.path()).await;
    assert_eq!(summary.files, base.files.len());
    let outcome = recover(&restored, &plan.base.pg_version, &settings)
        .await
        .unwrap();
    assert!(outcome.running);
    let mut restored_session = connect_restored(&settings).await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM markers ORDER BY name")
        .fetch_all(&mut restored_session)
        .await
        .unwrap();
    assert_eq!(names, vec!["before-backup", "first"]);
    let filler: i64 = sqlx::query_scalar("SELECT count(*) FROM filler")
        .fetch_one(&mut restored_session)
        .await
        .unwrap();
    assert_eq!(filler, 50_000);
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut restored_session)
        .await
        .unwrap();
    assert!(!in_recovery, "the restored server was promoted");
    drop(restored_session);
    stop(&restored, &settings).await;

    // To the latest point both markers are there.
    let latest = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    let restored_latest = parent.path().join("latest");
    let settings = RecoverySettings {
        keep_running: false,
        ..recovery_settings(parent.path())
    };
    restore_files(
        &setup.repository,
        std::slice::from_ref(&setup.keys.identity),
        &latest,
        &restored_latest,
        &settings,
        2,
    )
    .await
    .unwrap();
    let outcome = recover(&restored_latest, &latest.base.pg_version, &settings)
        .await
        .unwrap();
    assert!(!outcome.running);
    assert!(!restored_latest.join("postmaster.pid").exists());
    assert!(
        !restored_latest
            .join(cloudkeep_backup::pg::WAL_CACHE)
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_object_is_named_by_verify_and_stops_the_restore_before_postgres_starts() {
    let Some(mut setup) = setup().await else {
        return;
    };
    let base = setup.base_backup("base-1").await;
    setup.insert("after").await;
    setup.ship_wal().await;
    let clean = verify_database(&setup.repository, &setup.layout, 2)
        .await
        .unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert_eq!(clean.base_backups, 1);
    assert!(clean.wal_files >= 2);
    assert!(clean.orphans.is_empty(), "{:?}", clean.orphans);
    // An object of a backup that never committed (an agent killed mid-backup) is an orphan: it
    // never counts and is not a problem, but verify shows it.
    let cut_short = setup.layout.base_object("never-committed", 0).unwrap();
    setup
        .repository
        .put_object(
            &cut_short,
            &b"half a backup"[..],
            std::slice::from_ref(&setup.keys.recipient),
            1,
        )
        .await
        .unwrap();
    let with_orphan = verify_database(&setup.repository, &setup.layout, 2)
        .await
        .unwrap();
    assert!(
        with_orphan.problems.is_empty(),
        "{:?}",
        with_orphan.problems
    );
    let orphans: Vec<&str> = with_orphan
        .orphans
        .iter()
        .map(|orphan| orphan.key.as_str())
        .collect();
    assert_eq!(orphans, vec![cut_short.as_str()]);

    // Flip one byte in the middle of the largest stored object.
    let largest = base
        .units
        .iter()
        .max_by_key(|unit| unit.stored_len)
        .unwrap();
    let stored = setup
        ._repo_dir
        .path()
        .join("isv/acme")
        .join(largest.key.as_str());
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&stored, bytes).unwrap();

    let report = verify_database(&setup.repository, &setup.layout, 2)
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].object, largest.key.as_str());
    assert!(
        report.problems[0].message.contains("corrupt"),
        "{:?}",
        report.problems
    );

    let plan = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    let parent = shared_dir();
    let restored = parent.path().join("restored");
    let error = restore_files(
        &setup.repository,
        std::slice::from_ref(&setup.keys.identity),
        &plan,
        &restored,
        &recovery_settings(parent.path()),
        2,
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(largest.key.as_str()), "{message}");
    assert!(!restored.exists(), "a failed restore leaves nothing behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_clear_error_and_nothing_is_written() {
    let Some(mut setup) = setup().await else {
        return;
    };
    setup.base_backup("base-1").await;
    setup.ship_wal().await;
    let plan = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    let parent = shared_dir();
    let restored = parent.path().join("restored");
    let other = generate_keypair();
    setup
        .restore_is_refused_with_a_wrong_key(&other, &plan, parent.path())
        .await;
    assert!(!restored.exists());
    let missing = restore_files(
        &setup.repository,
        &[],
        &plan,
        &restored,
        &recovery_settings(parent.path()),
        2,
    )
    .await
    .unwrap_err();
    assert!(missing.to_string().contains("no identity"), "{missing}");
    assert!(!restored.exists());

    // A key added after the full backup (a drill key, say) opens an incremental backup over it
    // but not the full one: the restore is refused with the same clear error, nothing left.
    let both = [setup.keys.recipient.clone(), other.recipient.clone()];
    take_base_backup(
        &setup.repository,
        &setup.layout,
        "incr-1",
        &setup.pg.data_dir(),
        &setup.pg.url(),
        &both,
        &BaseBackupSettings {
            incremental: true,
            ..SETTINGS
        },
        &now_ms,
    )
    .await
    .unwrap();
    setup.ship_wal().await;
    let plan = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    assert_eq!(plan.base.parent.as_deref(), Some("base-1"));
    setup
        .restore_is_refused_with_a_wrong_key(&other, &plan, parent.path())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_what_the_pitr_window_needs_and_expires_the_rest() {
    let Some(mut setup) = setup().await else {
        return;
    };
    let first = setup.base_backup("base-1").await;
    setup.insert("one").await;
    setup.ship_wal().await;
    let second = setup.base_backup("base-2").await;
    setup.insert("two").await;
    setup.ship_wal().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let window_start = now_ms();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let third = setup.base_backup("base-3").await;
    setup.insert("three").await;
    setup.ship_wal().await;
    let now = now_ms();

    // keep_full 1, but the window starts between base-2 and base-3: base-2 must stay.
    let policy = RetentionPolicy {
        keep_full: 1,
        pitr_window_ms: now - window_start,
    };
    let result = apply_retention(&setup.repository, &setup.layout, policy, now)
        .await
        .unwrap();
    assert_eq!(result.base_ids, vec![first.id.clone()]);
    assert!(!result.wal_names.is_empty());
    assert!(
        result
            .wal_names
            .iter()
            .all(|name| name.as_str() < second.start_wal.as_str())
    );
    // Every instant of the window is still restorable, and the repository is sound.
    plan_restore(
        &setup.repository,
        &setup.layout,
        RecoveryTarget::Time(window_start),
    )
    .await
    .unwrap();
    let report = verify_database(&setup.repository, &setup.layout, 2)
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.base_backups, 2);
    assert!(
        setup
            .repository
            .list_objects(&setup.layout.base_objects(&first.id))
            .await
            .unwrap()
            .is_empty()
    );
    // A later run with the window past base-3's end expires base-2 as well, never base-3.
    let later = RetentionPolicy {
        keep_full: 1,
        pitr_window_ms: 1,
    };
    let result = apply_retention(&setup.repository, &setup.layout, later, now_ms() + 10)
        .await
        .unwrap();
    assert_eq!(result.base_ids, vec![second.id.clone()]);
    let plan = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    assert_eq!(plan.base.id, third.id);
}

/// The plaintext bytes a backup stored.
fn stored_plain(manifest: &BaseManifest) -> u64 {
    manifest.units.iter().map(|unit| unit.plain_len).sum()
}

/// What the test's tables hold, as one comparable text.
const CONTENTS: &str = "SELECT concat_ws(' ', \
     (SELECT md5(string_agg(id || body, ',' ORDER BY id)) FROM big), \
     (SELECT count(*) FROM shrinking), (SELECT count(*) FROM fresh), \
     to_regclass('doomed') IS NULL, \
     (SELECT string_agg(name, ',' ORDER BY name) FROM markers))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backups_store_only_changed_pages_and_restore_over_their_parents() {
    let Some(mut setup) = setup().await else {
        return;
    };
    // `big` is 20 MiB: its file is scanned page by page. `doomed` is dropped, `shrinking` cut
    // short by VACUUM, `fresh` created between the backups.
    setup
        .sql(
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 4) AS body \
               FROM generate_series(1, 100000) g;
             CREATE TABLE doomed AS SELECT g FROM generate_series(1, 100000) g;
             CREATE TABLE shrinking AS SELECT g FROM generate_series(1, 100000) g;
             CHECKPOINT;",
        )
        .await;
    let full = setup.base_backup("full").await;
    assert!(full.parent.is_none() && full.system_identifier.is_some());
    let doomed_path: String = sqlx::query_scalar("SELECT pg_relation_filepath('doomed')")
        .fetch_one(&mut setup.session)
        .await
        .unwrap();
    setup
        .sql(
            "UPDATE big SET body = 'changed once' WHERE id <= 100;
             DROP TABLE doomed;
             DELETE FROM shrinking WHERE g > 1000;
             CREATE TABLE fresh AS SELECT g FROM generate_series(1, 50000) g;",
        )
        .await;
    setup.sql("VACUUM shrinking").await;
    setup.insert("after-full").await;
    let incremental = BaseBackupSettings {
        incremental: true,
        ..SETTINGS
    };
    let first = setup.backup_with("incr-1", &incremental).await;
    assert_eq!(first.parent.as_deref(), Some("full"));
    let big_path: String = sqlx::query_scalar("SELECT pg_relation_filepath('big')")
        .fetch_one(&mut setup.session)
        .await
        .unwrap();
    let big = first
        .files
        .iter()
        .find(|file| file.path == big_path)
        .expect("big's file is in the incremental backup");
    assert!(big.incremental, "{big:?}");
    let changed: u64 = big.pieces.iter().map(|piece| piece.len).sum();
    assert!(
        changed * 10 < big.len,
        "{changed} of {} bytes of big stored",
        big.len
    );
    assert!(
        stored_plain(&first) * 3 < stored_plain(&full),
        "incremental {} bytes, full {}",
        stored_plain(&first),
        stored_plain(&full)
    );
    setup
        .sql("UPDATE big SET body = 'changed twice' WHERE id > 99900;")
        .await;
    setup.insert("after-incr-1").await;
    let second = setup.backup_with("incr-2", &incremental).await;
    assert_eq!(second.parent.as_deref(), Some("incr-1"));
    setup.insert("after-incr-2").await;
    setup.ship_wal().await;
    let expected: String = sqlx::query_scalar(CONTENTS)
        .fetch_one(&mut setup.session)
        .await
        .unwrap();
    assert!(expected.contains(" 1000 50000 t "), "{expected}");

    let plan = plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    assert_eq!(plan.base.id, "incr-2");
    let parents: Vec<&str> = plan.parents.iter().map(|base| base.id.as_str()).collect();
    assert_eq!(parents, vec!["full", "incr-1"]);
    let dir = shared_dir();
    let (restored, settings, _) = setup.restore(&plan, dir.path()).await;
    assert!(full.files.iter().any(|file| file.path == doomed_path));
    assert!(
        !restored.join(&doomed_path).exists(),
        "{doomed_path}, dropped after the full backup, is not restored"
    );
    recover(&restored, &plan.base.pg_version, &settings)
        .await
        .unwrap();
    let mut restored_session = connect_restored(&settings).await;
    let actual: String = sqlx::query_scalar(CONTENTS)
        .fetch_one(&mut restored_session)
        .await
        .unwrap();
    assert_eq!(actual, expected);
    drop(restored_session);
    stop(&restored, &settings).await;

    let report = verify_database(&setup.repository, &setup.layout, 2)
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Keeping one full backup and no window keeps the newest backup and every parent it needs.
    let policy = RetentionPolicy {
        keep_full: 1,
        pitr_window_ms: 1,
    };
    let result = apply_retention(&setup.repository, &setup.layout, policy, now_ms() + 10)
        .await
        .unwrap();
    assert!(result.base_ids.is_empty(), "{:?}", result.base_ids);
    plan_restore(&setup.repository, &setup.layout, RecoveryTarget::Latest)
        .await
        .unwrap();
    // A full backup taken later lets retention expire the whole older chain, newest first.
    setup.base_backup("full-2").await;
    let result = apply_retention(&setup.repository, &setup.layout, policy, now_ms() + 10)
        .await
        .unwrap();
    assert_eq!(result.base_ids, vec!["full", "incr-1", "incr-2"]);
}
