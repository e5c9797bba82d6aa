//! Smoke test: every default collector against this machine's real /proc, twice, 1 s apart.

#![forbid(unsafe_code)]

use std::time::Duration;

use cloudkeep_agent::collect::{ProcRoot, Sample, default_collectors};

fn now_ms() -> i64 {
    cloudkeep_stdx::Clock::now_ms(&cloudkeep_stdx::SystemClock)
}

fn collect_all(collectors: &mut [Box<dyn cloudkeep_agent::collect::Collector>]) -> Vec<Sample> {
    let now = now_ms();
    let mut out = Vec::new();
    for c in collectors.iter_mut() {
        c.collect(now, &mut out)
            .unwrap_or_else(|e| panic!("collector {} failed on real /proc: {e}", c.name()));
    }
    out
}

#[test]
fn default_collectors_on_real_proc() {
    let mut collectors = default_collectors(&ProcRoot::default());
    let names: Vec<&str> = collectors.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "cpu",
            "load",
            "memory",
            "swap",
            "filesystem",
            "disk",
            "network",
            "kernel",
            "uptime"
        ]
    );
    let first = collect_all(&mut collectors);
    assert!(
        !first.iter().any(|s| s.name.starts_with("host_cpu")),
        "cpu needs two snapshots"
    );
    std::thread::sleep(Duration::from_secs(1));
    let samples = collect_all(&mut collectors);

    for s in &samples {
        assert!(s.value.is_finite(), "{s:?} not finite");
        assert!(s.value >= 0.0, "{s:?} negative");
        assert!(
            !s.labels.iter().any(|(k, _)| k == "host"),
            "{s:?} has a host label"
        );
        if s.name.ends_with("_percent") {
            assert!((0.0..=100.0).contains(&s.value), "{s:?} out of 0..=100");
        }
    }
    let named = |name: &str| samples.iter().filter(|s| s.name == name).count();
    assert_eq!(named("host_cpu_percent"), 8);
    assert_eq!(named("host_cpu_busy_percent"), 1);
    let cpu_sum: f64 = samples
        .iter()
        .filter(|s| s.name == "host_cpu_percent")
        .map(|s| s.value)
        .sum();
    assert!(
        (cpu_sum - 100.0).abs() < 1e-6,
        "cpu states sum to {cpu_sum}"
    );

    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .value
    };
    let total = value("host_memory_total_bytes");
    assert!(total > 64.0 * 1024.0 * 1024.0, "memory total {total}");
    assert!(value("host_memory_available_bytes") <= total);
    assert!(value("host_memory_used_bytes") <= total);
    assert!(value("host_uptime_seconds") > 0.0);
    assert!(value("host_boot_time_seconds") > 1_000_000_000.0);
    assert!(value("host_load1") >= 0.0);
    assert!(value("host_load5_per_cpu") >= 0.0);

    let filesystems = samples
        .iter()
        .filter(|s| s.name == "host_filesystem_size_bytes")
        .count();
    assert!(filesystems >= 1, "no filesystem series");
    assert!(
        samples
            .iter()
            .filter(|s| s.name == "host_filesystem_size_bytes")
            .all(|s| s.value > 0.0 && s.label("mountpoint").is_some_and(|m| m.starts_with('/')))
    );

    let interfaces = samples
        .iter()
        .filter(|s| s.name == "host_network_receive_bytes_per_second")
        .count();
    assert!(interfaces >= 1, "no network series");
    assert!(
        !samples.iter().any(|s| s.label("interface") == Some("lo")),
        "lo must be skipped"
    );
    assert!(
        value("host_context_switches_per_second") > 0.0,
        "the machine switched context in a second"
    );
    let processes = samples
        .iter()
        .find(|s| s.name == "host_processes" && s.label("state") == Some("total"))
        .expect("process count")
        .value;
    assert!(processes >= 1.0, "at least this test process: {processes}");
}
