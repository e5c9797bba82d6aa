//! Evaluation cost in-process: `cloudkeep_alerting::evaluate` over hosts × rules (rule, state)
//! pairs, one new sample per pair per round, timed by this process's CPU time.

use std::time::Instant;

use anyhow::{Result, ensure};
use cloudkeep_alerting::{Direction, FlapPolicy, Level, RuleParams, RuleState, evaluate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::procfs;

/// Seconds between two samples of one series (an agent's scrape interval).
const ROUND_SPACING_MS: i64 = 15_000;
/// Distinct value patterns cycled through (precomputed so the timed loop only evaluates).
const PATTERNS: usize = 16;
/// Share of samples that jump above the warning or critical threshold.
const SPIKE_PROBABILITY: f64 = 0.01;
/// The server's flap policy (`crates/server/src/alerting/rules.rs`, DEFAULT_FLAP).
const SERVER_FLAP: FlapPolicy = FlapPolicy {
    window_ms: 30 * 60_000,
    max_changes: 6,
};

/// What one measurement found.
#[derive(Debug, Clone)]
pub struct EvaluationCost {
    pub hosts: usize,
    pub rules_per_host: usize,
    pub rounds: usize,
    pub evaluations: u64,
    pub transitions: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl EvaluationCost {
    pub fn per_cpu_s(&self) -> f64 {
        self.evaluations as f64 / self.cpu_s
    }
}

/// Rule `index` of a host: warning 80, critical 95, clear 75; every fourth with `for` 1 min,
/// every fifth a `below` rule (warning 20, critical 5, clear 25); the server's flap policy.
fn params(index: usize) -> RuleParams {
    let below = index % 5 == 4;
    let (warning, critical, clear, direction) = if below {
        (20.0, 5.0, 25.0, Direction::Below)
    } else {
        (80.0, 95.0, 75.0, Direction::Above)
    };
    RuleParams {
        direction,
        warning: Some(Level::new(warning, format!("bench_m{index:02} warning"))),
        critical: Some(Level::new(critical, format!("bench_m{index:02} critical"))),
        clear: Some(clear),
        for_ms: if index.is_multiple_of(4) { 60_000 } else { 0 },
        consecutive: 0,
        no_data_after_ms: 3_600_000,
        flap: SERVER_FLAP,
    }
}

/// `PATTERNS` rounds of one value per pair: a per-series level between 30 and 70 with ±5 noise,
/// and 1 % of samples spiking past a threshold (above or below, by the rule's direction).
fn value_patterns(pairs: usize, rules_per_host: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let levels: Vec<f64> = (0..pairs).map(|_| rng.random_range(30.0..70.0)).collect();
    (0..PATTERNS)
        .map(|_| {
            levels
                .iter()
                .enumerate()
                .map(|(pair, level)| {
                    if rng.random_bool(SPIKE_PROBABILITY) {
                        if (pair % rules_per_host) % 5 == 4 {
                            rng.random_range(0.0..20.0)
                        } else {
                            rng.random_range(80.0..100.0)
                        }
                    } else {
                        level + rng.random_range(-5.0..5.0)
                    }
                })
                .collect()
        })
        .collect()
}

/// Evaluates every pair once per round until at least `min_cpu_s` of CPU (and 3 rounds) are
/// spent, at most `max_rounds`.
pub fn measure(
    hosts: usize,
    rules_per_host: usize,
    min_cpu_s: f64,
    max_rounds: usize,
    seed: u64,
) -> Result<EvaluationCost> {
    ensure!(
        hosts > 0 && rules_per_host > 0 && max_rounds >= 3,
        "hosts, rules per host must be > 0 and max rounds >= 3"
    );
    let templates: Vec<RuleParams> = (0..rules_per_host).map(params).collect();
    for (index, template) in templates.iter().enumerate() {
        template
            .validate()
            .map_err(|err| anyhow::anyhow!("rule template {index}: {err}"))?;
    }
    let pairs = hosts * rules_per_host;
    let patterns = value_patterns(pairs, rules_per_host, seed);
    let start_ms: i64 = 1_800_000_000_000;
    let mut states: Vec<RuleState> = (0..pairs).map(|_| RuleState::new(start_ms)).collect();
    let ticks_per_s = procfs::clock_ticks();
    let pid = std::process::id();
    let cpu0 = procfs::cpu_ticks(pid)?;
    let wall = Instant::now();
    let mut transitions = 0u64;
    let mut rounds = 0usize;
    let mut cpu_s = 0.0;
    while rounds < max_rounds && (rounds < 3 || cpu_s < min_cpu_s) {
        let at_ms = start_ms + (rounds as i64 + 1) * ROUND_SPACING_MS;
        let values = &patterns[rounds % PATTERNS];
        for (pair, (state, value)) in states.iter_mut().zip(values).enumerate() {
            let rule = &templates[pair % rules_per_host];
            let (next, changes) = evaluate(rule, state, &[(at_ms, *value)], at_ms);
            *state = next;
            transitions += changes.len() as u64;
        }
        rounds += 1;
        cpu_s = procfs::cpu_ticks(pid)?.saturating_sub(cpu0) as f64 / ticks_per_s;
    }
    Ok(EvaluationCost {
        hosts,
        rules_per_host,
        rounds,
        evaluations: (pairs * rounds) as u64,
        transitions,
        cpu_s,
        wall_s: wall.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_measurement_evaluates_every_pair_and_sees_some_transitions() {
        let cost = measure(50, 20, 0.0, 3, 1).unwrap();
        assert_eq!(cost.rounds, 3);
        assert_eq!(cost.evaluations, 3_000);
        assert!(
            cost.transitions > 0,
            "1 % spikes over 3 000 samples raise something"
        );
        assert!(cost.transitions < 1_000);
    }

    #[test]
    fn every_template_is_a_valid_rule() {
        for index in 0..20 {
            params(index).validate().unwrap();
        }
    }
}
