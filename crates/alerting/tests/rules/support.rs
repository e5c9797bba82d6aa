//! Shared helpers: rule builders, feeding samples, and a one-line-per-transition rendering for
//! snapshots.

use std::fmt::Write;

use cloudkeep_alerting::{
    Direction, FlapPolicy, Level, Reason, RuleParams, RuleState, State, Transition, evaluate,
};

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;

/// Above, warning 80 "cpu busy", critical 95 "cpu overloaded", clear 75, immediate, no data
/// after 30 s, no flap detection.
pub fn cpu() -> RuleParams {
    RuleParams {
        direction: Direction::Above,
        warning: Some(Level::new(80.0, "cpu busy")),
        critical: Some(Level::new(95.0, "cpu overloaded")),
        clear: Some(75.0),
        for_ms: 0,
        consecutive: 0,
        no_data_after_ms: 30 * SECOND,
        flap: FlapPolicy::OFF,
    }
}

/// Below, warning 20 "disk low", critical 10 "disk full", clear 25 (free percent).
pub fn free_disk() -> RuleParams {
    RuleParams {
        direction: Direction::Below,
        warning: Some(Level::new(20.0, "disk low")),
        critical: Some(Level::new(10.0, "disk full")),
        clear: Some(25.0),
        for_ms: 0,
        consecutive: 0,
        no_data_after_ms: 30 * SECOND,
        flap: FlapPolicy::OFF,
    }
}

/// Samples every `step_ms` starting at `start_ms`.
pub fn series(start_ms: i64, step_ms: i64, values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| (start_ms + index as i64 * step_ms, value))
        .collect()
}

/// A fresh rule created at 0, fed `samples` in one call evaluated at `now_ms`.
pub fn run(rule: &RuleParams, samples: &[(i64, f64)], now_ms: i64) -> (RuleState, Vec<Transition>) {
    evaluate(rule, &RuleState::new(0), samples, now_ms)
}

/// Like the server: one call per sample, evaluated at the sample's time; then one at `now_ms`.
pub fn run_one_by_one(
    rule: &RuleParams,
    previous: &RuleState,
    samples: &[(i64, f64)],
    now_ms: i64,
) -> (RuleState, Vec<Transition>) {
    let mut state = previous.clone();
    let mut all = Vec::new();
    for &sample in samples {
        let (next, transitions) = evaluate(rule, &state, &[sample], sample.0);
        state = next;
        all.extend(transitions);
    }
    let (next, transitions) = evaluate(rule, &state, &[], now_ms);
    all.extend(transitions);
    (next, all)
}

/// The states after each sample, fed one by one.
pub fn states_after_each(rule: &RuleParams, samples: &[(i64, f64)]) -> Vec<State> {
    let mut state = RuleState::new(0);
    samples
        .iter()
        .map(|&sample| {
            state = evaluate(rule, &state, &[sample], sample.0).0;
            state.state
        })
        .collect()
}

fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::Crossed => "crossed",
        Reason::Cleared => "cleared",
        Reason::Deescalated => "deescalated",
        Reason::NoData => "no_data",
        Reason::DataResumed => "data_resumed",
        Reason::CheckUnknown => "check_unknown",
        Reason::FlapStart => "flap_start",
        Reason::FlapEnd => "flap_end",
    }
}

/// One line per transition: `@12.5s ok->warning crossed value=85 threshold=80 "cpu busy"`.
pub fn render(transitions: &[Transition]) -> String {
    let mut out = String::new();
    for t in transitions {
        write!(
            out,
            "@{}s {}->{} {}",
            t.at_ms as f64 / 1000.0,
            t.from,
            t.to,
            reason_name(t.reason)
        )
        .unwrap();
        if let Some(value) = t.value {
            write!(out, " value={value}").unwrap();
        }
        if let Some(threshold) = t.threshold {
            write!(out, " threshold={threshold}").unwrap();
        }
        if let Some(name) = &t.level_name {
            write!(out, " {name:?}").unwrap();
        }
        if t.suppressed_by_flapping {
            out.push_str(" [suppressed]");
        }
        out.push('\n');
    }
    out
}

/// Whether a transition is a state change (not a flap marker).
pub fn is_change(t: &Transition) -> bool {
    !matches!(t.reason, Reason::FlapStart | Reason::FlapEnd)
}

/// Structural invariants every transition list must satisfy, starting from `initial`.
pub fn assert_well_formed(initial: State, transitions: &[Transition], final_state: &RuleState) {
    let mut current = initial;
    let mut last_at = i64::MIN;
    let mut last_change: Option<(State, State)> = None;
    for t in transitions {
        assert_eq!(t.from, current, "chain broken at {t:?}");
        assert!(t.at_ms >= last_at, "time went back at {t:?}");
        last_at = t.at_ms;
        if is_change(t) {
            assert_ne!(t.from, t.to, "a change that changes nothing: {t:?}");
            assert_ne!(
                last_change,
                Some((t.from, t.to)),
                "same change twice: {t:?}"
            );
            last_change = Some((t.from, t.to));
            let expected_reasons: &[Reason] = match t.to {
                State::Ok => &[Reason::Cleared, Reason::DataResumed],
                State::Unknown => &[Reason::NoData, Reason::CheckUnknown],
                State::Warning => &[Reason::Crossed, Reason::Deescalated, Reason::DataResumed],
                State::Critical => &[Reason::Crossed, Reason::DataResumed],
            };
            assert!(expected_reasons.contains(&t.reason), "reason of {t:?}");
            if t.reason == Reason::Deescalated {
                assert_eq!((t.from, t.to), (State::Critical, State::Warning));
            }
            if t.reason == Reason::DataResumed {
                assert_eq!(t.from, State::Unknown);
            }
        } else {
            assert_eq!(t.from, t.to);
            assert!(!t.suppressed_by_flapping);
        }
        current = t.to;
    }
    assert_eq!(final_state.state, current);
    if let Some(last) = transitions.iter().rev().find(|t| is_change(t)) {
        assert_eq!(final_state.since_ms, last.at_ms);
    }
    // Flap markers alternate: start, end, start, ...
    let mut flapping = None;
    for t in transitions {
        match t.reason {
            Reason::FlapStart => {
                assert_ne!(flapping, Some(true), "two flap starts");
                flapping = Some(true);
            }
            Reason::FlapEnd => {
                assert_ne!(flapping, Some(false), "two flap ends");
                flapping = Some(false);
            }
            _ => {}
        }
    }
    if let Some(flapping) = flapping {
        assert_eq!(final_state.flapping, flapping);
    }
}
