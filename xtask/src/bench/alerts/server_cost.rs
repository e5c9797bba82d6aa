//! Evaluation cost end to end: `cloudkeep server` with hosts × rule-bearing metrics, one round of
//! samples pushed by remote_write, server CPU with the rules against the same spec without them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::latency::apply_spec;
use super::scenario::WriteTarget;
use crate::bench::CommonArgs;
use crate::procfs;

/// Series per remote_write request.
const BATCH: usize = 5_000;
/// Longest wait for the server to go quiet after a round.
const QUIET_TIMEOUT: Duration = Duration::from_secs(120);

/// One server's figures.
#[derive(Debug, Clone)]
pub struct ServerCost {
    pub with_rules: bool,
    pub samples_per_round: usize,
    /// CPU seconds of each round, from the first request until the server was quiet again,
    /// minus the quiet rate over that time.
    pub round_cpu_s: Vec<f64>,
    /// Wall seconds from the first request until quiet.
    pub round_wall_s: Vec<f64>,
    /// CPU seconds per second once quiet (with rules: the evaluator's 1 s no-data tick).
    pub quiet_cpu_per_s: f64,
    /// Whether every round went quiet before the time limit.
    pub went_quiet: bool,
    /// Platforms applied and how long applying all of them took.
    pub platforms: usize,
    pub apply_s: f64,
}

/// Rule `index`: as the in-process measurement's (`evaluation::params`), in spec form.
fn rule_spec(index: usize) -> serde_json::Value {
    let mut rule = if index % 5 == 4 {
        json!({"warning": 20, "critical": 5, "clear": 25, "direction": "below"})
    } else {
        json!({"warning": 80, "critical": 95, "clear": 75})
    };
    rule["monitor"] = json!("bench");
    rule["metric"] = json!(metric(index));
    rule["no_data_after"] = json!("1h");
    if index.is_multiple_of(4) {
        rule["for"] = json!("1m");
    }
    rule
}

fn metric(index: usize) -> String {
    format!("bench_m{index:02}")
}

fn host(index: usize) -> String {
    format!("cost-host-{index:05}")
}

/// Hosts per platform: a platform is one tenant's stack, so 10 000 hosts are 200 platforms, applied
/// one by one as an ISV would (each apply recompiles every platform's rules).
pub const HOSTS_PER_PLATFORM: usize = 50;

/// Platform `platform` of the run: hosts `platform × 50 ..` running a `load` monitor (no default
/// rules, no check), with or without `rules_per_host` rules on it.
fn spec(
    platform: usize,
    hosts: std::ops::Range<usize>,
    rules_per_host: usize,
    with_rules: bool,
) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = if with_rules {
        (0..rules_per_host).map(rule_spec).collect()
    } else {
        Vec::new()
    };
    json!({
        "version": 1,
        "platform": format!("cost-bench-{platform:04}"),
        "isv": "bench",
        "tenant": format!("tenant-{platform:04}"),
        "cloud": "local",
        "hosts": hosts.map(|i| json!({"name": host(i)})).collect::<Vec<_>>(),
        "monitors": [{"name": "bench", "kind": "load"}],
        "rules": rules,
    })
}

/// The rounds pushed, in order: (name, share of samples past a threshold).
pub const ROUNDS: [(&str, f64); 3] = [
    (
        "first: creates every series and rule state, no crossing",
        0.0,
    ),
    ("steady, no crossing", 0.0),
    ("steady, 1 % of samples cross", 0.01),
];

/// One round's request bodies: every host × metric once, at `at_ms`; `crossing` of them past a
/// threshold, the rest between 30 and 70 (inside every rule's ok band).
fn round_bodies(
    hosts: usize,
    rules_per_host: usize,
    at_ms: i64,
    crossing: f64,
    rng: &mut StdRng,
) -> Vec<Vec<u8>> {
    let series: Vec<TimeSeries> = (0..hosts)
        .flat_map(|h| (0..rules_per_host).map(move |r| (h, r)))
        .map(|(h, r)| {
            let value = if crossing > 0.0 && rng.random_bool(crossing) {
                if r % 5 == 4 {
                    rng.random_range(0.0..20.0)
                } else {
                    rng.random_range(80.0..100.0)
                }
            } else {
                rng.random_range(30.0..70.0)
            };
            TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: metric(r),
                    },
                    Label {
                        name: "host".into(),
                        value: host(h),
                    },
                ],
                samples: vec![Sample {
                    value,
                    timestamp: at_ms,
                }],
            }
        })
        .collect();
    series
        .chunks(BATCH)
        .map(|chunk| {
            remote_write::encode(&WriteRequest {
                timeseries: chunk.to_vec(),
            })
        })
        .collect()
}

/// Polls CPU every second until two consecutive seconds differ by less than 5 % of a core and
/// stay under 80 % of one; returns (cpu ticks then, quiet ticks per second, went quiet).
fn wait_quiet(pid: u32, ticks_per_s: f64) -> Result<(u64, f64, bool)> {
    let start = Instant::now();
    let mut previous = procfs::cpu_ticks(pid)?;
    let mut last_rate: Option<f64> = None;
    while start.elapsed() < QUIET_TIMEOUT {
        std::thread::sleep(Duration::from_secs(1));
        let now = procfs::cpu_ticks(pid)?;
        let rate = now.saturating_sub(previous) as f64;
        previous = now;
        if let Some(last) = last_rate
            && (rate - last).abs() < 0.05 * ticks_per_s
            && rate < 0.8 * ticks_per_s
        {
            return Ok((now, (rate + last) / 2.0, true));
        }
        last_rate = Some(rate);
    }
    Ok((previous, last_rate.unwrap_or(0.0), false))
}

/// Starts a server, applies the spec, pushes the [`ROUNDS`], measures each.
pub fn measure(
    bin: &std::path::Path,
    common: &CommonArgs,
    hosts: usize,
    rules_per_host: usize,
    with_rules: bool,
    seed: u64,
) -> Result<ServerCost> {
    let tmp = common.temp_dir(if with_rules {
        "alerts-cost-rules"
    } else {
        "alerts-cost-plain"
    })?;
    let mut server = crate::cloudkeep::start_server(bin, tmp.path())?;
    let platforms = hosts.div_ceil(HOSTS_PER_PLATFORM);
    let applying = Instant::now();
    for platform in 0..platforms {
        let first = platform * HOSTS_PER_PLATFORM;
        let range = first..(first + HOSTS_PER_PLATFORM).min(hosts);
        apply_spec(
            &server.url,
            &server.token,
            &spec(platform, range, rules_per_host, with_rules),
        )
        .with_context(|| format!("applying evaluation-cost platform {platform}"))?;
    }
    let apply_s = applying.elapsed().as_secs_f64();
    let target = WriteTarget {
        url: format!("{}/api/v1/write", server.url),
        bearer: Some(server.token.clone()),
    };
    let agent = crate::http::agent(Duration::from_secs(120));
    let ticks_per_s = procfs::clock_ticks();
    let pid = server.proc.pid;
    let mut rng = StdRng::seed_from_u64(seed);
    let first_ms = super::wall_ms() - (ROUNDS.len() as i64) * 15_000;
    let mut cost = ServerCost {
        with_rules,
        samples_per_round: hosts * rules_per_host,
        round_cpu_s: Vec::new(),
        round_wall_s: Vec::new(),
        quiet_cpu_per_s: 0.0,
        went_quiet: true,
        platforms,
        apply_s,
    };
    // Quiet before the first round: the spec's compile and the first tick are not counted.
    let (_, _, quiet) = wait_quiet(pid, ticks_per_s)?;
    cost.went_quiet &= quiet;
    for (round, (_, crossing)) in ROUNDS.iter().enumerate() {
        let bodies = round_bodies(
            hosts,
            rules_per_host,
            first_ms + round as i64 * 15_000,
            *crossing,
            &mut rng,
        );
        let cpu0 = procfs::cpu_ticks(pid)?;
        let started = Instant::now();
        for body in &bodies {
            target.push(&agent, body)?;
        }
        let (cpu1, quiet_rate, quiet) = wait_quiet(pid, ticks_per_s)?;
        server.proc.ensure_running()?;
        let wall = started.elapsed().as_secs_f64();
        let ticks = cpu1.saturating_sub(cpu0) as f64 - quiet_rate * wall;
        cost.round_cpu_s.push(ticks.max(0.0) / ticks_per_s);
        cost.round_wall_s.push(wall);
        cost.quiet_cpu_per_s = quiet_rate / ticks_per_s;
        cost.went_quiet &= quiet;
    }
    server.proc.terminate(Duration::from_secs(60))?;
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rules_match_the_in_process_templates() {
        let s = spec(2, 100..103, 20, true);
        assert_eq!(s["hosts"].as_array().unwrap().len(), 3);
        assert_eq!(s["hosts"][0]["name"], "cost-host-00100");
        assert_eq!(s["platform"], "cost-bench-0002");
        let rules = s["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 20);
        assert_eq!(rules[0]["for"], "1m");
        assert_eq!(rules[4]["direction"], "below");
        assert!(
            spec(0, 0..3, 20, false)["rules"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_round_covers_every_series_once() {
        let mut rng = StdRng::seed_from_u64(1);
        let bodies = round_bodies(300, 20, 1_700_000_000_000, 0.01, &mut rng);
        assert_eq!(bodies.len(), 2);
        let total: usize = bodies
            .iter()
            .map(|b| remote_write::decode(b).unwrap().timeseries.len())
            .sum();
        assert_eq!(total, 6_000);
    }
}
