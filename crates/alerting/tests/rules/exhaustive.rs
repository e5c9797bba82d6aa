//! Every sample sequence of length ≤ 6 over small value alphabets, checked against an
//! independent reference model and the documented invariants.
//!
//! Rule: above, warning 80, critical 95, clear 75 (so critical holds down to 90).

use cloudkeep_alerting::{
    Direction, FlapPolicy, Level, Reason, RuleParams, RuleState, State, evaluate,
};

use crate::support::{SECOND, assert_well_formed, cpu, is_change};

const STEP: i64 = 10 * SECOND;

/// The alphabet of the brief: one value in each region.
const REGIONS: [f64; 5] = [10.0, 74.0, 76.0, 85.0, 96.0];
/// Every boundary and its neighbour on the other side.
const BOUNDARIES: [f64; 9] = [10.0, 74.9, 75.0, 79.9, 80.0, 89.9, 90.0, 94.9, 95.0];

/// Calls `check` with every sequence over `alphabet` of length 1 to `max_len`.
fn for_every_sequence(alphabet: &[f64], max_len: u32, mut check: impl FnMut(&[f64])) {
    let base = alphabet.len();
    let mut values = Vec::with_capacity(max_len as usize);
    for len in 1..=max_len {
        for mut number in 0..base.pow(len) {
            values.clear();
            for _ in 0..len {
                values.push(alphabet[number % base]);
                number /= base;
            }
            check(&values);
        }
    }
}

fn timed(values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| (index as i64 * STEP, value))
        .collect()
}

/// The reference: the documented semantics written directly in the rule's own numbers, with a
/// raise needing `samples_needed` consecutive crossing samples.
struct Reference {
    state: State,
    warning_run: u32,
    critical_run: u32,
    samples_needed: u32,
}

impl Reference {
    fn new(samples_needed: u32) -> Reference {
        Reference {
            state: State::Ok,
            warning_run: 0,
            critical_run: 0,
            samples_needed,
        }
    }

    fn step(&mut self, value: f64) -> State {
        self.warning_run = if value >= 80.0 {
            self.warning_run + 1
        } else {
            0
        };
        self.critical_run = if value >= 95.0 {
            self.critical_run + 1
        } else {
            0
        };
        let critical_ready = self.critical_run >= self.samples_needed;
        let warning_ready = self.warning_run >= self.samples_needed;
        self.state = match self.state {
            State::Critical if value >= 90.0 => State::Critical,
            State::Critical | State::Warning if critical_ready => State::Critical,
            State::Critical | State::Warning if value >= 75.0 => State::Warning,
            State::Critical | State::Warning => State::Ok,
            State::Ok | State::Unknown if critical_ready => State::Critical,
            State::Ok | State::Unknown if warning_ready => State::Warning,
            State::Ok | State::Unknown => State::Ok,
        };
        self.state
    }
}

/// The states a value allows by hysteresis alone, whatever came before.
fn allowed(value: f64, immediate: bool) -> &'static [State] {
    use State::{Critical, Ok, Warning};
    if value < 75.0 {
        &[Ok]
    } else if value < 80.0 {
        &[Ok, Warning]
    } else if value < 90.0 {
        if immediate {
            &[Warning]
        } else {
            &[Ok, Warning]
        }
    } else if value < 95.0 {
        if immediate {
            &[Warning, Critical]
        } else {
            &[Ok, Warning, Critical]
        }
    } else if immediate {
        &[Critical]
    } else {
        &[Ok, Warning, Critical]
    }
}

/// Feeds `values` one by one and checks every step against the reference and invariants;
/// also checks that one batch gives the same result. Returns the per-step states.
fn check_sequence(rule: &RuleParams, values: &[f64], samples_needed: u32) -> Vec<State> {
    let samples = timed(values);
    let immediate = samples_needed <= 1;
    let mut reference = Reference::new(samples_needed);
    let mut state = RuleState::new(0);
    let mut all = Vec::new();
    let mut states = Vec::new();
    for &(at_ms, value) in &samples {
        let before = state.state;
        let (next, transitions) = evaluate(rule, &state, &[(at_ms, value)], at_ms);
        let expected = reference.step(value);
        assert_eq!(next.state, expected, "{values:?} at {at_ms}");
        assert!(
            allowed(value, immediate).contains(&next.state),
            "{values:?} at {at_ms}"
        );
        if value < 75.0 {
            assert_eq!(next.state, State::Ok);
        }
        if immediate && value >= 95.0 {
            assert_eq!(next.state, State::Critical);
        }
        let changes: Vec<_> = transitions.iter().filter(|t| is_change(t)).collect();
        assert!(
            changes.len() <= 1,
            "one sample, at most one change: {values:?}"
        );
        assert_eq!(changes.len(), usize::from(before != next.state));
        for change in &changes {
            assert_eq!(change.at_ms, at_ms);
            assert_eq!(change.value, Some(value));
            let reason = match (change.from, change.to) {
                (_, State::Ok) => Reason::Cleared,
                (State::Critical, State::Warning) => Reason::Deescalated,
                _ => Reason::Crossed,
            };
            assert_eq!(change.reason, reason);
            let threshold = match (change.from, change.to) {
                (_, State::Ok) => 75.0,
                (State::Critical, State::Warning) => 90.0,
                (_, State::Warning) => 80.0,
                _ => 95.0,
            };
            assert_eq!(change.threshold, Some(threshold));
        }
        states.push(next.state);
        state = next;
        all.extend(transitions);
    }
    assert_well_formed(State::Ok, &all, &state);
    let now = samples.last().map_or(0, |sample| sample.0);
    let (batch, batch_transitions) = evaluate(rule, &RuleState::new(0), &samples, now);
    assert_eq!(batch, state, "{values:?}");
    assert_eq!(batch_transitions, all, "{values:?}");
    states
}

#[test]
fn immediate_rule_over_every_region_sequence() {
    let rule = cpu();
    for_every_sequence(&REGIONS, 6, |values| {
        check_sequence(&rule, values, 1);
    });
}

#[test]
fn immediate_rule_over_every_boundary_sequence() {
    let rule = cpu();
    for_every_sequence(&BOUNDARIES, 5, |values| {
        check_sequence(&rule, values, 1);
    });
}

#[test]
fn consecutive_and_for_agree_with_the_reference() {
    for samples_needed in [2, 3] {
        let mut by_count = cpu();
        by_count.consecutive = samples_needed;
        let mut by_time = cpu();
        by_time.for_ms = i64::from(samples_needed - 1) * STEP;
        for_every_sequence(&REGIONS, 6, |values| {
            let counted = check_sequence(&by_count, values, samples_needed);
            let timed = check_sequence(&by_time, values, samples_needed);
            assert_eq!(counted, timed, "{values:?}");
        });
    }
}

#[test]
fn flap_detection_never_changes_states() {
    let mut rule = cpu();
    rule.flap = FlapPolicy {
        window_ms: 40 * SECOND,
        max_changes: 3,
    };
    let plain = cpu();
    for_every_sequence(&REGIONS, 6, |values| {
        let flapping = check_sequence(&rule, values, 1);
        let samples = timed(values);
        let mut state = RuleState::new(0);
        let mut suppressed = Vec::new();
        for &sample in &samples {
            let (next, transitions) = evaluate(&rule, &state, &[sample], sample.0);
            suppressed.extend(
                transitions
                    .iter()
                    .filter(|t| is_change(t))
                    .map(|t| t.suppressed_by_flapping),
            );
            state = next;
        }
        let (_, plain_transitions) = evaluate(&plain, &RuleState::new(0), &samples, 0);
        assert_eq!(flapping.len(), values.len());
        assert_eq!(suppressed.len(), plain_transitions.len());
        // The first max_changes - 1 changes can never be suppressed.
        assert!(suppressed.iter().take(2).all(|&s| !s), "{values:?}");
        // With changes at most every 10 s and a 40 s window, the 3rd change always flaps.
        if suppressed.len() >= 3 {
            let change_times: Vec<i64> = plain_transitions.iter().map(|t| t.at_ms).collect();
            let third_within_window = change_times[2] - change_times[0] < 40 * SECOND;
            assert_eq!(suppressed[2], third_within_window, "{values:?}");
        }
    });
}

#[test]
fn below_rules_mirror_above_rules() {
    let above = cpu();
    let below = RuleParams {
        direction: Direction::Below,
        warning: Some(Level::new(-80.0, "cpu busy")),
        critical: Some(Level::new(-95.0, "cpu overloaded")),
        clear: Some(-75.0),
        ..cpu()
    };
    for_every_sequence(&BOUNDARIES, 5, |values| {
        let samples = timed(values);
        let mirrored: Vec<(i64, f64)> = samples.iter().map(|&(t, v)| (t, -v)).collect();
        let (above_state, above_transitions) = evaluate(&above, &RuleState::new(0), &samples, 0);
        let (below_state, below_transitions) = evaluate(&below, &RuleState::new(0), &mirrored, 0);
        assert_eq!(above_state.state, below_state.state, "{values:?}");
        assert_eq!(above_transitions.len(), below_transitions.len());
        for (a, b) in above_transitions.iter().zip(&below_transitions) {
            assert_eq!(
                (a.from, a.to, a.reason, a.at_ms),
                (b.from, b.to, b.reason, b.at_ms)
            );
            assert_eq!(a.threshold.map(|t| -t), b.threshold);
        }
    });
}

/// A gap symbol: the next sample comes 40 s later (beyond no data at 30 s).
const GAP: f64 = -1.0;

#[test]
fn sequences_with_gaps_are_split_invariant_and_well_formed() {
    let mut rule = cpu();
    rule.consecutive = 2;
    rule.flap = FlapPolicy {
        window_ms: 60 * SECOND,
        max_changes: 3,
    };
    let alphabet = [10.0, 76.0, 85.0, 96.0, GAP];
    for_every_sequence(&alphabet, 6, |symbols| {
        let mut samples = Vec::new();
        let mut at_ms = 0;
        for &symbol in symbols {
            if symbol == GAP {
                at_ms += 40 * SECOND;
            } else {
                samples.push((at_ms, symbol));
                at_ms += STEP;
            }
        }
        let now = at_ms;
        let (batch, batch_transitions) = evaluate(&rule, &RuleState::new(0), &samples, now);
        assert_well_formed(State::Ok, &batch_transitions, &batch);
        let mut state = RuleState::new(0);
        let mut all = Vec::new();
        for &sample in &samples {
            let (next, transitions) = evaluate(&rule, &state, &[sample], sample.0);
            state = next;
            all.extend(transitions);
        }
        let (state, transitions) = evaluate(&rule, &state, &[], now);
        all.extend(transitions);
        assert_eq!(state, batch, "{symbols:?}");
        assert_eq!(all, batch_transitions, "{symbols:?}");
        // Every no data is followed by a resume when a sample follows it.
        for (index, t) in batch_transitions.iter().enumerate() {
            if t.reason == Reason::NoData
                && let Some(next_change) =
                    batch_transitions[index + 1..].iter().find(|t| is_change(t))
            {
                assert_eq!(next_change.reason, Reason::DataResumed, "{symbols:?}");
            }
        }
    });
}
