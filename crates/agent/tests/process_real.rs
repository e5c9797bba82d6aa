//! The process check against the real /proc: a spawned `sleep` is counted, a busy loop is found rogue.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cloudkeep_agent::check::process::ProcessCheck;
use cloudkeep_agent::check::{Check, CheckStatus};
use serde_json::json;

/// A child process killed and reaped when the test ends, pass or fail.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn options(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

/// Unix milliseconds for the check, driven by a monotonic clock from a fixed origin (the
/// check only needs differences between runs to be real elapsed time).
fn now_ms(origin: Instant) -> i64 {
    1_700_000_000_000 + origin.elapsed().as_millis() as i64
}

#[tokio::test]
async fn a_sleeping_child_is_counted_until_it_is_killed() {
    let unique = format!("30.{}{}", std::process::id(), 4_242);
    let mut child = ChildGuard(Command::new("sleep").arg(&unique).spawn().unwrap());
    let uid = rustix::process::getuid().as_raw();
    let cmdline = format!("^sleep {}$", regex::escape(&unique));
    let mut check = ProcessCheck::from_options(
        &options(json!({"name": "sleep", "cmdline": cmdline, "user": uid})),
        PathBuf::from("/proc"),
    )
    .unwrap();
    let origin = Instant::now();
    // The child may not have exec'd `sleep` yet: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut outcome = check.run(now_ms(origin)).await;
    while outcome.status != CheckStatus::Ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        outcome = check.run(now_ms(origin)).await;
    }
    assert_eq!(outcome.status, CheckStatus::Ok, "{}", outcome.message);
    assert_eq!(outcome.samples[0].name, "process_count");
    assert_eq!(outcome.samples[0].value, 1.0);
    assert!(
        outcome
            .message
            .starts_with("1 process matches name=sleep cmdline="),
        "{}",
        outcome.message
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let outcome = check.run(now_ms(origin)).await;
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert_eq!(outcome.samples[0].value, 0.0);
    assert!(
        outcome.message.starts_with("0 processes match name=sleep"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.ends_with("(expected at least 1)"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_busy_loop_is_found_rogue() {
    let child = ChildGuard(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let mut check = ProcessCheck::from_options(
        &options(json!({"max_cpu_percent": 50, "for": "1s", "status": "critical"})),
        PathBuf::from("/proc"),
    )
    .unwrap();
    let origin = Instant::now();
    let first = check.run(now_ms(origin)).await;
    assert!(
        matches!(first.status, CheckStatus::Ok | CheckStatus::Critical),
        "{}",
        first.message
    );
    // On a loaded machine the loop may get less than half a core for a while: a few tries.
    let mut found = None;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let outcome = check.run(now_ms(origin)).await;
        let cpu = outcome.samples.iter().find(|sample| {
            sample.name == "process_cpu_percent"
                && sample
                    .labels
                    .iter()
                    .any(|(key, value)| key == "pid" && *value == pid)
        });
        if let Some(cpu) = cpu {
            found = Some((outcome.clone(), cpu.clone()));
            break;
        }
    }
    let (outcome, cpu) = found.expect("the busy loop was never reported rogue");
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert!(cpu.value > 50.0, "{cpu:?}");
    assert_eq!(
        cpu.labels,
        vec![
            ("pid".to_owned(), pid.clone()),
            ("name".to_owned(), "sh".to_owned())
        ]
    );
    assert!(
        outcome.message.contains(&format!("sh (pid {pid}) ")),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("% cpu for "),
        "{}",
        outcome.message
    );
    let rogue_count = outcome
        .samples
        .iter()
        .find(|sample| sample.name == "process_rogue_count")
        .unwrap();
    assert!(rogue_count.value >= 1.0);
    assert!(outcome.samples.iter().any(|sample| {
        sample.name == "process_rss_bytes"
            && sample
                .labels
                .iter()
                .any(|(key, value)| key == "pid" && *value == pid)
            && sample.value > 0.0
    }));
    drop(child);
}
