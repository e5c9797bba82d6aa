//! Tests of the `command` check: option errors, real Debian monitoring-plugins and misbehaving script plugins.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::check::net_testutil::{
    TestResponse, TinyHttpServer, label, options, samples_named, single_value, tool_available,
    wait_for,
};

const PLUGINS: &str = "/usr/lib/nagios/plugins";

fn plugin(name: &str) -> String {
    format!("{PLUGINS}/{name}")
}

async fn run_command(options_json: serde_json::Value) -> CheckOutcome {
    let mut check = CommandCheck::from_options(&options(options_json)).unwrap();
    assert_eq!(check.kind(), "command");
    let outcome = check.run(1_700_000_000_000).await;
    // A script written a moment ago can still be open for writing in a process another test
    // thread is forking (ETXTBSY until that child execs); that race is the test's, so retry once.
    if outcome.message.contains("Text file busy") {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return check.run(1_700_000_000_000).await;
    }
    outcome
}

/// Write an executable shell script plugin into `directory`.
fn write_script(directory: &Path, name: &str, body: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn perfdata_sample<'a>(outcome: &'a CheckOutcome, name: &str, perf_label: &str) -> &'a Sample {
    outcome
        .samples
        .iter()
        .find(|sample| sample.name == name && label(sample, "label") == Some(perf_label))
        .unwrap_or_else(|| panic!("no {name}{{label={perf_label}}} in {:?}", outcome.samples))
}

#[test]
fn option_errors_name_the_field() {
    let error = CommandCheck::from_options(&options(json!({"command": []}))).unwrap_err();
    assert_eq!(error.to_string(), "options.command: must not be empty");

    let error =
        CommandCheck::from_options(&options(json!({"command": ["/bin/true"], "timeout": "0s"})))
            .unwrap_err();
    assert_eq!(error.to_string(), "options.timeout: must be greater than 0");

    let error =
        CommandCheck::from_options(&options(json!({"command": ["/bin/true"], "timeout": 30})))
            .unwrap_err();
    assert_eq!(error.path, ".timeout");

    let error =
        CommandCheck::from_options(&options(json!({"command": ["/bin/true"], "shell": true})))
            .unwrap_err();
    assert_eq!(error.path, ".shell");
    assert!(error.message.contains("unknown field `shell`"), "{error}");

    let error = CommandCheck::from_options(&options(json!({"timeout": "1s"}))).unwrap_err();
    assert_eq!(error.to_string(), "options: missing field `command`");

    let error = CommandCheck::from_options(&options(
        json!({"command": ["/bin/true"], "env": {"A=B": "1"}}),
    ))
    .unwrap_err();
    assert_eq!(error.path, ".env.A=B");

    let check = CommandCheck::from_options(&options(json!({"command": ["/bin/true"]}))).unwrap();
    assert_eq!(check.timeout, Duration::from_secs(30));
}

#[tokio::test]
async fn check_dummy_exit_codes_become_statuses() {
    if !tool_available(&plugin("check_dummy")) {
        return;
    }
    for (code, status, prefix) in [
        ("0", CheckStatus::Ok, "OK"),
        ("1", CheckStatus::Warning, "WARNING"),
        ("2", CheckStatus::Critical, "CRITICAL"),
        ("3", CheckStatus::Unknown, "UNKNOWN"),
    ] {
        let outcome =
            run_command(json!({"command": [plugin("check_dummy"), code, "from the test"]})).await;
        assert_eq!(outcome.status, status, "{outcome:?}");
        assert_eq!(outcome.message, format!("{prefix}: from the test"));
        assert!(single_value(&outcome.samples, "check_duration_seconds") > 0.0);
        assert!(samples_named(&outcome.samples, "check_perfdata").is_empty());
    }
}

#[tokio::test]
async fn check_load_reports_load_averages_as_perfdata() {
    if !tool_available(&plugin("check_load")) {
        return;
    }
    let outcome = run_command(json!({
        "command": [plugin("check_load"), "-w", "1000,1000,1000", "-c", "2000,2000,2000"],
        "timeout": "10s",
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with("LOAD OK"),
        "{}",
        outcome.message
    );
    for load_label in ["load1", "load5", "load15"] {
        let value = perfdata_sample(&outcome, "check_perfdata", load_label);
        assert!(value.value >= 0.0);
        assert_eq!(label(value, "unit"), None, "check_load has no unit");
        let warning = perfdata_sample(&outcome, "check_perfdata_warning", load_label);
        assert_eq!(warning.value, 1000.0);
        let critical = perfdata_sample(&outcome, "check_perfdata_critical", load_label);
        assert_eq!(critical.value, 2000.0);
        let min = perfdata_sample(&outcome, "check_perfdata_min", load_label);
        assert_eq!(min.value, 0.0);
    }
}

#[tokio::test]
async fn check_disk_reports_the_root_filesystem() {
    if !tool_available(&plugin("check_disk")) {
        return;
    }
    let outcome = run_command(json!({
        "command": [plugin("check_disk"), "-w", "1%", "-c", "1%", "-p", "/"],
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with("DISK OK"),
        "{}",
        outcome.message
    );
    let used = perfdata_sample(&outcome, "check_perfdata", "/");
    assert!(used.value > 0.0);
    // Older plugins print MB, newer ones B: the unit is whatever the plugin said.
    assert!(
        label(used, "unit").is_some_and(|unit| unit.ends_with('B')),
        "{used:?}"
    );
    let max = perfdata_sample(&outcome, "check_perfdata_max", "/");
    assert!(max.value >= used.value);
}

#[tokio::test]
async fn check_procs_counts_processes() {
    if !tool_available(&plugin("check_procs")) {
        return;
    }
    let outcome = run_command(json!({"command": [plugin("check_procs")]})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with("PROCS OK"),
        "{}",
        outcome.message
    );
    assert!(perfdata_sample(&outcome, "check_perfdata", "procs").value >= 1.0);
}

#[tokio::test]
async fn check_http_against_a_local_server() {
    if !tool_available(&plugin("check_http")) {
        return;
    }
    let server = TinyHttpServer::start(|request| {
        if request.path == "/health" {
            TestResponse::text(200, "all good")
        } else {
            TestResponse::text(500, "broken")
        }
    })
    .await;
    let port = server.port.to_string();

    let outcome = run_command(json!({
        "command": [plugin("check_http"), "-H", "127.0.0.1", "-p", port, "-u", "/health", "-t", "5"],
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert!(
        outcome.message.starts_with("HTTP OK"),
        "{}",
        outcome.message
    );
    let time = perfdata_sample(&outcome, "check_perfdata", "time");
    assert_eq!(label(time, "unit"), Some("s"));
    let size = perfdata_sample(&outcome, "check_perfdata", "size");
    assert_eq!(label(size, "unit"), Some("B"));
    assert!(size.value > 0.0);

    let outcome = run_command(json!({
        "command": [plugin("check_http"), "-H", "127.0.0.1", "-p", port, "-u", "/broken", "-t", "5"],
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert!(outcome.message.contains("500"), "{}", outcome.message);
}

#[tokio::test]
async fn malformed_perfdata_is_skipped_and_noted() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_script(
        directory.path(),
        "check_malformed",
        "echo \"OK - mostly fine | good=5ms;10;20;0;100 bad=abc 'spaced out'=1 junk\"\necho 'second line'\nexit 0",
    );
    let outcome = run_command(json!({"command": [script]})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(
        outcome.message,
        "OK - mostly fine (perfdata: 2 items ignored: 'bad': invalid value \"abc\"; junk: missing '=')"
    );
    let good = perfdata_sample(&outcome, "check_perfdata", "good");
    assert_eq!(good.value, 5.0);
    assert_eq!(label(good, "unit"), Some("ms"));
    assert_eq!(
        perfdata_sample(&outcome, "check_perfdata_max", "good").value,
        100.0
    );
    assert_eq!(
        perfdata_sample(&outcome, "check_perfdata", "spaced out").value,
        1.0
    );
    assert_eq!(samples_named(&outcome.samples, "check_perfdata").len(), 2);
}

fn process_is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its (new) parent to reap it no longer runs.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_plugin_past_its_timeout_is_killed_with_its_children() {
    let directory = tempfile::tempdir().unwrap();
    let child_pid_file = directory.path().join("child.pid");
    let plugin_pid_file = directory.path().join("plugin.pid");
    let script = write_script(
        directory.path(),
        "check_sleepy",
        "sleep 300 &\necho $! > \"$1\"\necho $$ > \"$2\"\nsleep 300\necho 'OK - woke up'",
    );
    let started = std::time::Instant::now();
    let outcome = run_command(json!({
        "command": [script, child_pid_file, plugin_pid_file],
        "timeout": "500ms",
    }))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with("timed out after 500ms; killed "),
        "{}",
        outcome.message
    );
    assert!(single_value(&outcome.samples, "check_duration_seconds") >= 0.5);

    let child_pid = std::fs::read_to_string(&child_pid_file).unwrap();
    let plugin_pid = std::fs::read_to_string(&plugin_pid_file).unwrap();
    let (child_pid, plugin_pid) = (child_pid.trim(), plugin_pid.trim());
    assert!(
        wait_for(Duration::from_secs(5), || process_is_gone(plugin_pid)).await,
        "the plugin {plugin_pid} still runs"
    );
    assert!(
        wait_for(Duration::from_secs(5), || process_is_gone(child_pid)).await,
        "the plugin's child {child_pid} still runs"
    );
}

#[tokio::test]
async fn exit_code_outside_the_plugin_range_is_unknown() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_script(
        directory.path(),
        "check_seven",
        "echo 'OK - all fine'\nexit 7",
    );
    let outcome = run_command(json!({"command": [&script]})).await;
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!(
            "{} exited with code 7 (not a plugin status 0..3): OK - all fine",
            script.display()
        )
    );
}

#[tokio::test]
async fn a_plugin_killed_by_a_signal_is_unknown() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_script(directory.path(), "check_suicide", "kill -9 $$");
    let outcome = run_command(json!({"command": [&script]})).await;
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert!(
        outcome
            .message
            .contains("was killed by signal 9 (SIGKILL): (no output)"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_plugin_that_cannot_be_run_is_unknown() {
    let directory = tempfile::tempdir().unwrap();
    let not_executable = directory.path().join("check_not_executable");
    std::fs::write(&not_executable, "#!/bin/sh\necho OK\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let outcome = run_command(json!({"command": [&not_executable]})).await;
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert!(
        outcome
            .message
            .starts_with(&format!("cannot run {}: ", not_executable.display())),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("Permission denied"),
        "{}",
        outcome.message
    );

    let missing = directory.path().join("check_missing");
    let outcome = run_command(json!({"command": [&missing]})).await;
    assert_eq!(outcome.status, CheckStatus::Unknown, "{outcome:?}");
    assert!(
        outcome.message.contains("No such file"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn env_reaches_the_plugin_and_stderr_explains_silence() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_script(
        directory.path(),
        "check_env",
        "echo \"OK - greeting is $CLOUDKEEP_TEST_GREETING\"",
    );
    let outcome = run_command(json!({
        "command": [&script],
        "env": {"CLOUDKEEP_TEST_GREETING": "hello"},
    }))
    .await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(outcome.message, "OK - greeting is hello");

    let script = write_script(
        directory.path(),
        "check_silent",
        "echo 'no such device' >&2\nexit 2",
    );
    let outcome = run_command(json!({"command": [&script]})).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
    assert_eq!(outcome.message, "(no output; stderr: no such device)");
}

#[tokio::test]
async fn huge_output_is_capped_without_blocking_the_plugin() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_script(
        directory.path(),
        "check_chatty",
        "printf 'OK - chatty | big=1\\n'\nhead -c 1000000 /dev/zero | tr '\\0' 'x'\nexit 0",
    );
    let outcome = run_command(json!({"command": [&script], "timeout": "20s"})).await;
    assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    assert_eq!(outcome.message, "OK - chatty");
    assert_eq!(
        perfdata_sample(&outcome, "check_perfdata", "big").value,
        1.0
    );
}

#[test]
fn perfdata_samples_keep_raw_values_and_only_unambiguous_thresholds() {
    let output = parse_plugin_output("OK | a=1KB;10:20;@5;0;1024 b=U;1;2 c=3;~:7;8:");
    let samples = perfdata_samples(&output);
    let names: Vec<(&str, &str)> = samples
        .iter()
        .map(|sample| (sample.name.as_str(), label(sample, "label").unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("check_perfdata", "a"),
            ("check_perfdata_critical", "a"),
            ("check_perfdata_min", "a"),
            ("check_perfdata_max", "a"),
            ("check_perfdata", "c"),
            ("check_perfdata_warning", "c"),
            ("check_perfdata_critical", "c"),
        ]
    );
    assert_eq!(samples[0].value, 1.0);
    assert_eq!(label(&samples[0], "unit"), Some("KB"));
    assert_eq!(samples[1].value, 5.0);
    assert_eq!(label(&samples[4], "unit"), None);
    assert_eq!(samples[5].value, 7.0);
    assert_eq!(samples[6].value, 8.0);
}
