//! Fixture tests of the process check: fake proc directories driving count and rogue mode.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::check::Sample;

const HOST: HostParameters = HostParameters {
    clock_ticks_per_second: 100,
    page_size_bytes: 4096,
};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/sh\n";

/// One fake process in a fixture proc root.
struct FakeProcess<'a> {
    pid: i32,
    comm: &'a str,
    state: char,
    cpu_ticks: u64,
    start_ticks: u64,
    rss_pages: u64,
    uid: u32,
    cmdline: &'a [&'a str],
}

impl Default for FakeProcess<'_> {
    fn default() -> Self {
        FakeProcess {
            pid: 1,
            comm: "init",
            state: 'S',
            cpu_ticks: 0,
            start_ticks: 1,
            rss_pages: 100,
            uid: 0,
            cmdline: &[],
        }
    }
}

/// Writes (or rewrites) `<root>/<pid>/{stat,status,cmdline}`.
fn write_process(root: &Path, process: &FakeProcess<'_>) {
    let dir = root.join(process.pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    // utime carries all CPU ticks, stime 0: only their sum matters.
    let stat = format!(
        "{} ({}) {} 1 1 1 0 -1 4194304 0 0 0 0 {} 0 0 0 20 0 1 0 {} 1000000 {} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
        process.pid,
        process.comm,
        process.state,
        process.cpu_ticks,
        process.start_ticks,
        process.rss_pages
    );
    std::fs::write(dir.join("stat"), stat).unwrap();
    let status = format!(
        "Name:\t{}\nState:\t{}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n",
        process.comm,
        process.state,
        uid = process.uid
    );
    std::fs::write(dir.join("status"), status).unwrap();
    let mut cmdline = process.cmdline.join("\0");
    if !cmdline.is_empty() {
        cmdline.push('\0');
    }
    std::fs::write(dir.join("cmdline"), cmdline).unwrap();
}

fn remove_process(root: &Path, pid: i32) {
    std::fs::remove_dir_all(root.join(pid.to_string())).unwrap();
}

fn options(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

fn check(root: &Path, value: serde_json::Value) -> ProcessCheck {
    let passwd = root.join("etc-passwd");
    std::fs::write(&passwd, PASSWD).unwrap();
    ProcessCheck::from_options(&options(value), root.to_owned())
        .unwrap()
        .with_passwd_path(passwd)
        .with_host_parameters(HOST)
}

fn config_error_of(value: serde_json::Value) -> String {
    ProcessCheck::from_options(&options(value), PathBuf::from("/nonexistent"))
        .unwrap_err()
        .to_string()
}

fn sample<'a>(samples: &'a [Sample], name: &str, pid: Option<&str>) -> Option<&'a Sample> {
    samples.iter().find(|sample| {
        sample.name == name
            && pid.is_none_or(|pid| {
                sample
                    .labels
                    .iter()
                    .any(|(key, value)| key == "pid" && value == pid)
            })
    })
}

/// A fixture with three java processes (two of user app), a zombie java and unrelated ones.
fn java_fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let processes = [
        FakeProcess::default(),
        FakeProcess {
            pid: 100,
            comm: "java",
            uid: 1001,
            cmdline: &["/usr/bin/java", "-jar", "/opt/app/app.jar"],
            ..FakeProcess::default()
        },
        FakeProcess {
            pid: 101,
            comm: "java",
            uid: 1001,
            cmdline: &["/usr/bin/java", "-jar", "/opt/batch/batch.jar"],
            ..FakeProcess::default()
        },
        FakeProcess {
            pid: 102,
            comm: "java",
            uid: 0,
            cmdline: &["java", "-version"],
            ..FakeProcess::default()
        },
        FakeProcess {
            pid: 103,
            comm: "java",
            state: 'Z',
            uid: 1001,
            ..FakeProcess::default()
        },
        FakeProcess {
            pid: 200,
            comm: "my (weird) name",
            uid: 1001,
            cmdline: &["weird"],
            ..FakeProcess::default()
        },
    ];
    for process in &processes {
        write_process(root.path(), process);
    }
    // Not processes: must be ignored.
    std::fs::create_dir(root.path().join("self")).unwrap();
    std::fs::write(root.path().join("uptime"), "1.0 1.0\n").unwrap();
    root
}

#[test]
fn count_mode_counts_by_name_user_and_cmdline() {
    let root = java_fixture();
    let cases = [
        (json!({"name": "java"}), 3.0),
        (json!({"name": "java", "user": "app"}), 2.0),
        (json!({"name": "java", "user": 1001}), 2.0),
        (json!({"name": "java", "user": "0"}), 1.0),
        (json!({"cmdline": "-jar /opt/app/app\\.jar$"}), 1.0),
        (json!({"cmdline": "-jar"}), 2.0),
        (json!({"name": "jav.", "cmdline": "batch"}), 1.0),
        (json!({"name": "my \\(weird\\) name"}), 1.0),
        (json!({"name": "my (weird) name"}), 1.0),
        (json!({"user": "app"}), 3.0),
    ];
    for (value, expected) in cases {
        let mut check = check(root.path(), value.clone());
        let outcome = check.run_blocking(0);
        let count = sample(&outcome.samples, "process_count", None).unwrap();
        assert_eq!(count.value, expected, "{value}: {}", outcome.message);
        assert!(count.labels.is_empty());
        assert_eq!(outcome.status, CheckStatus::Ok, "{value}");
    }
}

#[test]
fn count_mode_is_critical_outside_min_and_max() {
    let root = java_fixture();
    let outcome = check(
        root.path(),
        json!({"name": "java", "user": "app", "min": 3}),
    )
    .run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        "2 processes match name=java user=app (expected at least 3)"
    );
    let outcome = check(root.path(), json!({"name": "java", "max": 2})).run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        "3 processes match name=java (expected at most 2)"
    );
    let outcome = check(root.path(), json!({"name": "postgres", "user": "app"})).run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        "0 processes match name=postgres user=app (expected at least 1)"
    );
    let outcome = check(
        root.path(),
        json!({"cmdline": "app\\.jar", "min": 1, "max": 1}),
    )
    .run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Ok);
    assert_eq!(outcome.message, "1 process matches cmdline=app\\.jar");
    let outcome =
        check(root.path(), json!({"name": "nothing", "min": 0, "max": 0})).run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Ok);
    let outcome = check(root.path(), json!({"cmdline": "-jar /opt", "max": 1})).run_blocking(0);
    assert_eq!(
        outcome.message,
        "2 processes match cmdline=\"-jar /opt\" (expected at most 1)"
    );
}

#[test]
fn count_mode_reports_unknown_users_and_unreadable_roots() {
    let root = java_fixture();
    let outcome = check(root.path(), json!({"name": "java", "user": "ghost"})).run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Unknown);
    assert!(
        outcome
            .message
            .starts_with("cannot count processes: user \"ghost\" not found in "),
        "{}",
        outcome.message
    );
    let mut gone = ProcessCheck::from_options(
        &options(json!({"name": "java"})),
        root.path().join("missing"),
    )
    .unwrap();
    let outcome = gone.run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Unknown);
    assert!(outcome.message.starts_with("cannot list processes in "));
}

#[test]
fn processes_that_vanish_or_are_garbled_are_skipped() {
    let root = java_fixture();
    // A process directory without files (exited between listing and reading) and a garbled stat.
    std::fs::create_dir(root.path().join("300")).unwrap();
    std::fs::create_dir(root.path().join("301")).unwrap();
    std::fs::write(root.path().join("301/stat"), "301 (java) S 1 2\n").unwrap();
    let outcome = check(root.path(), json!({"name": "java"})).run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Ok);
    assert_eq!(outcome.message, "3 processes match name=java");
}

#[test]
fn options_errors_name_the_field() {
    let cases = [
        (
            json!({}),
            "options: give at least one of name, cmdline or user",
        ),
        (
            json!({"name": "java", "bogus": 1}),
            "options.bogus: unknown field `bogus`, expected one of `name`",
        ),
        (
            json!({"name": 5}),
            "options.name: invalid type: integer `5`, expected a string",
        ),
        (
            json!({"name": "java["}),
            "options.name: invalid regex \"java[\"",
        ),
        (
            json!({"cmdline": "("}),
            "options.cmdline: invalid regex \"(\"",
        ),
        (
            json!({"name": "java", "min": 3, "max": 2}),
            "options.max: 2 is below min 3",
        ),
        (
            json!({"name": "java", "min": -1}),
            "options.min: invalid value: integer `-1`",
        ),
        (json!({"user": ""}), "options.user: must not be empty"),
        (
            json!({"user": true}),
            "options.user: data did not match any variant",
        ),
        (
            json!({"name": "java", "exclude": "x"}),
            "options.exclude: applies only in rogue mode",
        ),
        (
            json!({"name": "java", "for": "1m"}),
            "options.for: applies only in rogue mode",
        ),
        (
            json!({"max_cpu_percent": 90, "name": "java"}),
            "options.name: count-mode option cannot be combined",
        ),
        (
            json!({"max_cpu_percent": 0}),
            "options.max_cpu_percent: 0 must be a number above 0",
        ),
        (
            json!({"max_cpu_percent": 90, "for": "5 minutes"}),
            "options.for: invalid duration \"5 minutes\"",
        ),
        (
            json!({"max_rss_mb": 100, "for": "5m"}),
            "options.for: applies only with max_cpu_percent",
        ),
        (
            json!({"max_rss_mb": 0}),
            "options.max_rss_mb: must be above 0",
        ),
        (
            json!({"max_rss_mb": 18446744073709551615u64}),
            "options.max_rss_mb: 18446744073709551615 is too large",
        ),
        (
            json!({"max_cpu_percent": 90, "exclude": "a("}),
            "options.exclude: invalid regex \"a(\"",
        ),
        (
            json!({"max_cpu_percent": 90, "status": "ok"}),
            "options.status: unknown variant `ok`",
        ),
    ];
    for (value, expected) in cases {
        let error = config_error_of(value.clone());
        assert!(error.starts_with(expected), "{value}: {error}");
    }
}

#[test]
fn options_schema_documents_every_field() {
    let schema = schemars::schema_for!(ProcessOptions);
    let properties = schema
        .as_value()
        .get("properties")
        .and_then(|value| value.as_object())
        .unwrap();
    assert_eq!(properties.len(), 10);
    for (name, property) in properties {
        assert!(
            property.get("description").is_some(),
            "{name} has no description"
        );
    }
}

/// A burner using a full core (100 ticks/s), an idle daemon and a memory hog.
fn rogue_fixture_at(root: &Path, seconds: u64) {
    write_process(root, &FakeProcess::default());
    write_process(
        root,
        &FakeProcess {
            pid: 4242,
            comm: "burn",
            cpu_ticks: 100 * seconds,
            start_ticks: 500,
            ..FakeProcess::default()
        },
    );
    write_process(
        root,
        &FakeProcess {
            pid: 17,
            comm: "java",
            cpu_ticks: 2 * seconds,
            start_ticks: 50,
            // 5.1 GiB in 4 KiB pages.
            rss_pages: 1_336_935,
            ..FakeProcess::default()
        },
    );
}

#[test]
fn rogue_mode_needs_cpu_above_the_limit_for_the_whole_duration() {
    let root = tempfile::tempdir().unwrap();
    let mut check = check(
        root.path(),
        json!({"max_cpu_percent": 90, "for": "5m", "max_rss_mb": 4096}),
    );
    assert!(check.is_rogue_mode());
    // Runs every minute; the burner is at 100% from the start.
    let mut outcomes = Vec::new();
    for minute in 0..=6u64 {
        rogue_fixture_at(root.path(), minute * 60);
        outcomes.push(check.run_blocking((minute * 60_000) as i64));
    }
    // The memory hog is rogue from the first run; the burner only once above for 5 minutes.
    assert_eq!(outcomes[0].status, CheckStatus::Warning);
    assert_eq!(
        outcomes[0].message,
        "1 rogue process: java (pid 17) rss 5.1 GiB"
    );
    assert_eq!(
        sample(&outcomes[0].samples, "process_cpu_percent", None),
        None
    );
    assert_eq!(
        outcomes[4].message,
        "1 rogue process: java (pid 17) rss 5.1 GiB"
    );
    assert_eq!(
        outcomes[5].message,
        "2 rogue processes: burn (pid 4242) 100% cpu for 5m; java (pid 17) rss 5.1 GiB"
    );
    let last = &outcomes[6];
    assert_eq!(
        last.message,
        "2 rogue processes: burn (pid 4242) 100% cpu for 6m; java (pid 17) rss 5.1 GiB"
    );
    assert_eq!(
        sample(&last.samples, "process_rogue_count", None)
            .unwrap()
            .value,
        2.0
    );
    let cpu = sample(&last.samples, "process_cpu_percent", Some("4242")).unwrap();
    assert!((cpu.value - 100.0).abs() < 1e-9);
    assert_eq!(
        cpu.labels,
        vec![
            ("pid".to_owned(), "4242".to_owned()),
            ("name".to_owned(), "burn".to_owned())
        ]
    );
    let java_cpu = sample(&last.samples, "process_cpu_percent", Some("17")).unwrap();
    assert!((java_cpu.value - 2.0).abs() < 1e-9);
    let rss = sample(&last.samples, "process_rss_bytes", Some("17")).unwrap();
    assert_eq!(rss.value, (1_336_935u64 * 4096) as f64);
    // init is not rogue: no per-process samples for it.
    assert_eq!(sample(&last.samples, "process_rss_bytes", Some("1")), None);
}

#[test]
fn rogue_mode_resets_when_cpu_drops_and_on_pid_reuse() {
    let root = tempfile::tempdir().unwrap();
    let mut check = check(
        root.path(),
        json!({"max_cpu_percent": 50, "for": "2m", "status": "critical"}),
    );
    let burner = |cpu_ticks, start_ticks| FakeProcess {
        pid: 900,
        comm: "burn",
        cpu_ticks,
        start_ticks,
        ..FakeProcess::default()
    };
    let mut run = |process: FakeProcess<'_>, now_ms: i64| {
        write_process(root.path(), &process);
        check.run_blocking(now_ms)
    };
    assert_eq!(run(burner(0, 10), 0).status, CheckStatus::Ok);
    assert_eq!(run(burner(6_000, 10), 60_000).status, CheckStatus::Ok);
    // A quiet minute (10%) breaks the streak.
    assert_eq!(run(burner(6_600, 10), 120_000).status, CheckStatus::Ok);
    assert_eq!(run(burner(12_600, 10), 180_000).status, CheckStatus::Ok);
    let outcome = run(burner(18_600, 10), 240_000);
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(
        outcome.message,
        "1 rogue process: burn (pid 900) 100% cpu for 2m"
    );
    // The pid is reused by a new process (other start time) with a high tick count: a new
    // process has no history, so it is not rogue yet.
    let outcome = run(burner(40_000, 99), 300_000);
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert_eq!(outcome.message, "no rogue processes among 1 process");
    // A clock that goes backwards starts the measurement over instead of dividing by it.
    let outcome = run(burner(46_000, 99), 250_000);
    assert_eq!(outcome.status, CheckStatus::Ok);
}

#[test]
fn rogue_mode_excludes_forgets_and_limits_the_message() {
    let root = tempfile::tempdir().unwrap();
    let mut check = check(
        root.path(),
        json!({"max_rss_mb": 1, "exclude": "init|sys.*"}),
    );
    write_process(root.path(), &FakeProcess::default());
    write_process(
        root.path(),
        &FakeProcess {
            pid: 2,
            comm: "systemd-journal",
            rss_pages: 100_000,
            ..FakeProcess::default()
        },
    );
    for pid in 10..20 {
        write_process(
            root.path(),
            &FakeProcess {
                pid,
                comm: "hog",
                rss_pages: 1_000 + pid as u64,
                ..FakeProcess::default()
            },
        );
    }
    let outcome = check.run_blocking(0);
    assert_eq!(outcome.status, CheckStatus::Warning);
    assert!(
        outcome
            .message
            .starts_with("10 rogue processes: hog (pid 19) rss 4.0 MiB; hog (pid 18) rss 4.0 MiB;"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.ends_with("; and 2 more"),
        "{}",
        outcome.message
    );
    assert_eq!(
        sample(&outcome.samples, "process_rss_bytes", Some("2")),
        None
    );
    for pid in 10..20 {
        remove_process(root.path(), pid);
    }
    let outcome = check.run_blocking(60_000);
    assert_eq!(outcome.status, CheckStatus::Ok);
    assert_eq!(outcome.message, "no rogue processes among 0 processes");
    assert_eq!(outcome.samples.len(), 1);
}

#[tokio::test]
async fn run_scans_on_a_blocking_thread_and_keeps_state() {
    let root = tempfile::tempdir().unwrap();
    let mut check = check(root.path(), json!({"max_cpu_percent": 90, "for": "1m"}));
    rogue_fixture_at(root.path(), 0);
    assert_eq!(check.run(0).await.status, CheckStatus::Ok);
    rogue_fixture_at(root.path(), 60);
    let outcome = check.run(60_000).await;
    assert_eq!(
        outcome.message,
        "1 rogue process: burn (pid 4242) 100% cpu for 1m"
    );
    assert_eq!(check.kind(), "process");
}
