//! `bench alerts`: alert latency (sample in → email accepted) of Cloudkeep vs Prometheus +
//! Alertmanager, and the cost of rule evaluation with 10 000 hosts × 20 rules.

mod evaluation;
mod latency;
mod scenario;
mod server_cost;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use serde_json::json;

use super::CommonArgs;
use crate::table;

/// The bar for Cloudkeep's p99 latency.
const LATENCY_BAR_MS: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Alert latency, Cloudkeep vs Prometheus + Alertmanager.
    Latency,
    /// `cloudkeep_alerting::evaluate` in-process.
    Evaluation,
    /// `cloudkeep server` CPU for one round of samples with and without rules.
    ServerCost,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Alerts per contestant (one host each) [default: 250; 50 with --quick].
    #[arg(long)]
    pub alerts: Option<usize>,
    /// Small run: 50 alerts, 1 000 hosts for the evaluation cost.
    #[arg(long)]
    pub quick: bool,
    /// Time between two hosts' crossing samples.
    #[arg(long, default_value_t = 150)]
    pub spacing_ms: u64,
    /// Prometheus rule evaluation intervals to run (one Prometheus + Alertmanager run each).
    #[arg(long, value_delimiter = ',', default_values_t = ["1s".to_owned(), "100ms".to_owned()])]
    pub prometheus_eval_intervals: Vec<String>,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus-alertmanager")]
    pub alertmanager_bin: PathBuf,
    /// How long to wait for the last mail after the last sample.
    #[arg(long, default_value_t = 60)]
    pub mail_timeout_secs: u64,
    /// Parts to skip (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<Part>,
    /// Hosts for the evaluation cost [default: 10000; 1000 with --quick].
    #[arg(long)]
    pub cost_hosts: Option<usize>,
    /// Rules per host for the evaluation cost.
    #[arg(long, default_value_t = 20)]
    pub cost_rules: usize,
    /// In-process: evaluate rounds until at least this much CPU time is spent.
    #[arg(long, default_value_t = 5.0)]
    pub cost_min_cpu_s: f64,
    /// Seed for the evaluation-cost values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// This machine's wall clock in Unix ms: the send instant compared with the SMTP server's receive time.
// The benchmark harness is a tool outside the product; the Clock seam is for product code.
#[allow(clippy::disallowed_methods)]
pub fn wall_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index.min(sorted.len() - 1)).copied()
}

fn ms_cell(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn run(args: &Args) -> Result<()> {
    let alerts = args.alerts.unwrap_or(if args.quick { 50 } else { 250 });
    let cost_hosts = args
        .cost_hosts
        .unwrap_or(if args.quick { 1_000 } else { 10_000 });
    if alerts == 0 || alerts > 9_999 {
        bail!("--alerts must be between 1 and 9999");
    }
    let wants = |part: Part| !args.skip.contains(&part);
    let bin = if wants(Part::Latency) || wants(Part::ServerCost) {
        Some(args.common.cloudkeep_bin()?)
    } else {
        None
    };
    let mut problems: Vec<String> = Vec::new();
    let mut json_out = json!({"bench": "alerts", "quick": args.quick});

    if let (true, Some(bin)) = (wants(Part::Latency), &bin) {
        for program in [&args.prometheus_bin, &args.alertmanager_bin] {
            if !program.is_file() {
                bail!("{} not found", program.display());
            }
        }
        let plan = latency::Plan {
            hosts: scenario::host_names(alerts),
            spacing: Duration::from_millis(args.spacing_ms),
            mail_timeout: Duration::from_secs(args.mail_timeout_secs),
            settle: Duration::from_secs(3),
        };
        println!(
            "== alert latency: {alerts} hosts, one rule each (`{} > 100`, no `for`); after a calm \
             value for every host, one crossing sample per host every {} ms by remote_write; \
             latency = SMTP server's receive time − send time",
            scenario::METRIC,
            args.spacing_ms
        );
        let mut outcomes = Vec::new();
        println!("\n-- cloudkeep ({})", bin.display());
        match latency::cloudkeep(bin, &args.common, &plan) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                println!("   FAILED: {e:#}");
                problems.push(format!("cloudkeep latency run failed: {e:#}"));
            }
        }
        for interval in &args.prometheus_eval_intervals {
            if latency::parse_interval(interval).is_none() {
                bail!("--prometheus-eval-intervals: {interval:?} is not like 1s or 100ms");
            }
            let setup = latency::PrometheusSetup {
                prometheus_bin: args.prometheus_bin.clone(),
                alertmanager_bin: args.alertmanager_bin.clone(),
                evaluation_interval: interval.clone(),
            };
            println!("\n-- prometheus + alertmanager (evaluation interval {interval})");
            match latency::prometheus(&setup, &args.common, &plan) {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    println!("   FAILED: {e:#}");
                    problems.push(format!("prometheus ({interval}) latency run failed: {e:#}"));
                }
            }
        }
        for o in &outcomes {
            if !o.matched.missing.is_empty() {
                problems.push(format!(
                    "{}: {} alert(s) never mailed within {} s (first: {})",
                    o.name,
                    o.matched.missing.len(),
                    args.mail_timeout_secs,
                    o.matched.missing[0]
                ));
            }
            if o.matched.extra_mails > 0 {
                problems.push(format!(
                    "{}: {} unexpected mail(s)",
                    o.name, o.matched.extra_mails
                ));
            }
        }
        report_latency(&outcomes);
        json_out["latency"] = latency_json(&outcomes, args.spacing_ms);
    }

    if wants(Part::Evaluation) {
        println!(
            "\n== evaluation cost in-process: cloudkeep_alerting::evaluate over {} hosts × {} rules \
             = {} (rule, state) pairs, one new sample each per round",
            table::int(cost_hosts as u64),
            args.cost_rules,
            table::int((cost_hosts * args.cost_rules) as u64)
        );
        let cost = evaluation::measure(
            cost_hosts,
            args.cost_rules,
            args.cost_min_cpu_s,
            1_000,
            args.seed,
        )?;
        table::print(
            &[
                "pairs",
                "rounds",
                "evaluations",
                "transitions",
                "CPU s",
                "wall s",
                "evaluations/CPU-s",
            ],
            &[vec![
                table::int((cost.hosts * cost.rules_per_host) as u64),
                cost.rounds.to_string(),
                table::int(cost.evaluations),
                table::int(cost.transitions),
                table::num(cost.cpu_s, 2),
                table::num(cost.wall_s, 2),
                table::int(cost.per_cpu_s().max(0.0).round() as u64),
            ]],
        );
        println!(
            "rules: warning 80 / critical 95 / clear 75 (every fifth a below rule 20 / 5 / 25), \
             every fourth with for 1m, flap detection 6 changes in 30 min; values 30–70 ±5 with \
             1 % spikes past a threshold; samples 15 s apart; one thread"
        );
        json_out["evaluation"] = json!({
            "hosts": cost.hosts,
            "rules_per_host": cost.rules_per_host,
            "rounds": cost.rounds,
            "evaluations": cost.evaluations,
            "transitions": cost.transitions,
            "cpu_s": cost.cpu_s,
            "wall_s": cost.wall_s,
            "evaluations_per_cpu_s": cost.per_cpu_s(),
        });
    }

    if let (true, Some(bin)) = (wants(Part::ServerCost), &bin) {
        println!(
            "\n== evaluation cost in the server: {} hosts ({} platforms of {}) × {} metrics by \
             remote_write ({} requests of 5 000 series per round), the same specs with and \
             without {} rules per host",
            table::int(cost_hosts as u64),
            cost_hosts.div_ceil(server_cost::HOSTS_PER_PLATFORM),
            server_cost::HOSTS_PER_PLATFORM,
            args.cost_rules,
            (cost_hosts * args.cost_rules).div_ceil(5_000),
            args.cost_rules
        );
        let mut costs = Vec::new();
        for with_rules in [false, true] {
            match server_cost::measure(
                bin,
                &args.common,
                cost_hosts,
                args.cost_rules,
                with_rules,
                args.seed,
            ) {
                Ok(c) => costs.push(c),
                Err(e) => {
                    println!("   FAILED: {e:#}");
                    problems.push(format!("server cost run failed: {e:#}"));
                }
            }
        }
        report_server_cost(&costs);
        json_out["server_cost"] = json!(
            costs
                .iter()
                .map(|c| json!({
                    "with_rules": c.with_rules,
                    "samples_per_round": c.samples_per_round,
                    "round_cpu_s": c.round_cpu_s,
                    "round_wall_s": c.round_wall_s,
                    "quiet_cpu_per_s": c.quiet_cpu_per_s,
                    "went_quiet": c.went_quiet,
                    "platforms": c.platforms,
                    "apply_s": c.apply_s,
                }))
                .collect::<Vec<_>>()
        );
    }

    args.common.write_json(&json_out)?;
    if !problems.is_empty() {
        bail!("benchmark incomplete:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

fn report_latency(outcomes: &[latency::Outcome]) {
    println!();
    if outcomes.is_empty() {
        println!("no contestant completed");
        return;
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let sorted = o.sorted();
            let acks = o.acks_ms();
            vec![
                o.name.clone(),
                format!("{} of {}", sorted.len(), o.sent.len()),
                format!(
                    "{}{}",
                    o.matched.mails,
                    if o.matched.grouped_mails > 0 {
                        format!(" ({} grouped)", o.matched.grouped_mails)
                    } else {
                        String::new()
                    }
                ),
                ms_cell(percentile(&sorted, 0.5)),
                ms_cell(percentile(&sorted, 0.99)),
                ms_cell(sorted.last().copied()),
                format!(
                    "{} / {}",
                    table::num(percentile(&acks, 0.5).unwrap_or(f64::NAN), 1),
                    table::num(percentile(&acks, 0.99).unwrap_or(f64::NAN), 1)
                ),
            ]
        })
        .collect();
    table::print(
        &[
            "contestant",
            "alerts mailed",
            "mails",
            "p50 ms",
            "p99 ms",
            "max ms",
            "write ack p50 / p99 ms",
        ],
        &rows,
    );
    for o in outcomes {
        println!("{}: {}", o.name, o.settings);
    }
    let Some(ck) = outcomes.iter().find(|o| o.name == "cloudkeep") else {
        return;
    };
    let ck_p99 = percentile(&ck.sorted(), 0.99);
    for other in outcomes.iter().filter(|o| o.name != "cloudkeep") {
        let other_p99 = percentile(&other.sorted(), 0.99);
        if let (Some(a), Some(b)) = (ck_p99, other_p99) {
            println!(
                "cloudkeep p99 / {} p99 = {}",
                other.name,
                table::ratio(a as f64, b as f64)
            );
        }
    }
    match ck_p99 {
        Some(p99) if p99 <= LATENCY_BAR_MS && ck.matched.missing.is_empty() => {
            println!("bar (cloudkeep p99 ≤ {LATENCY_BAR_MS} ms): met ({p99} ms)")
        }
        Some(p99) => println!(
            "bar (cloudkeep p99 ≤ {LATENCY_BAR_MS} ms): NOT met ({p99} ms, {} missing)",
            ck.matched.missing.len()
        ),
        None => println!("bar (cloudkeep p99 ≤ {LATENCY_BAR_MS} ms): no data"),
    }
}

fn latency_json(outcomes: &[latency::Outcome], spacing_ms: u64) -> serde_json::Value {
    json!({
        "spacing_ms": spacing_ms,
        "contestants": outcomes.iter().map(|o| {
            let sorted = o.sorted();
            let acks = o.acks_ms();
            json!({
                "name": o.name,
                "settings": o.settings,
                "alerts_sent": o.sent.len(),
                "alerts_mailed": sorted.len(),
                "missing": o.matched.missing,
                "mails": o.matched.mails,
                "extra_mails": o.matched.extra_mails,
                "grouped_mails": o.matched.grouped_mails,
                "p50_ms": percentile(&sorted, 0.5),
                "p99_ms": percentile(&sorted, 0.99),
                "max_ms": sorted.last(),
                "ack_p50_ms": percentile(&acks, 0.5),
                "ack_p99_ms": percentile(&acks, 0.99),
                "latencies_ms": o.matched.latencies_ms,
            })
        }).collect::<Vec<_>>(),
    })
}

fn report_server_cost(costs: &[server_cost::ServerCost]) {
    println!();
    if costs.is_empty() {
        return;
    }
    let mut rows = Vec::new();
    for c in costs {
        for (round, (cpu, wall)) in c.round_cpu_s.iter().zip(&c.round_wall_s).enumerate() {
            rows.push(vec![
                server_cost::ROUNDS
                    .get(round)
                    .map_or("-", |(name, _)| *name)
                    .to_owned(),
                if c.with_rules {
                    "with rules".to_owned()
                } else {
                    "no rules".to_owned()
                },
                table::int(c.samples_per_round as u64),
                table::num(*cpu, 2),
                table::num(*wall, 1),
                table::num(c.quiet_cpu_per_s * 100.0, 1),
                if c.went_quiet { "" } else { "never quiet" }.to_owned(),
            ]);
        }
    }
    table::print(
        &[
            "round",
            "server",
            "samples",
            "CPU s",
            "wall s",
            "quiet CPU %",
            "notes",
        ],
        &rows,
    );
    println!(
        "CPU s: from the first request until the server is quiet again, minus the quiet rate over \
         that time; quiet CPU %: of one core afterwards (with rules: the evaluator's 1 s no-data tick)"
    );
    for c in costs {
        println!(
            "{}: applying {} platform specs one by one took {} s",
            if c.with_rules {
                "with rules"
            } else {
                "no rules"
            },
            c.platforms,
            table::num(c.apply_s, 1)
        );
    }
    if let (Some(plain), Some(rules)) = (
        costs.iter().find(|c| !c.with_rules),
        costs.iter().find(|c| c.with_rules),
    ) {
        for (round, (a, b)) in rules.round_cpu_s.iter().zip(&plain.round_cpu_s).enumerate() {
            let extra = a - b;
            println!(
                "{}: alerting adds {} CPU s = {} evaluations per CPU-second in the server",
                server_cost::ROUNDS
                    .get(round)
                    .map_or("-", |(name, _)| *name),
                table::num(extra, 2),
                table::int((rules.samples_per_round as f64 / extra).max(0.0).round() as u64)
            );
        }
        println!(
            "the evaluator's 1 s no-data tick (a deadline check per rule state) at rest: {} % of a core with {} states",
            table::num((rules.quiet_cpu_per_s - plain.quiet_cpu_per_s) * 100.0, 1),
            table::int(rules.samples_per_round as u64)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=250).collect();
        assert_eq!(percentile(&values, 0.5), Some(126));
        assert_eq!(percentile(&values, 0.99), Some(248));
        assert_eq!(percentile::<i64>(&[], 0.5), None);
    }
}
