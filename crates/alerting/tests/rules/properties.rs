//! Property tests: hysteresis bands, flapping start and end, split invariance (including JSON
//! persistence between calls), raises never premature, recoveries immediate.

use cloudkeep_alerting::{
    Direction, FlapPolicy, Level, Reason, RuleParams, RuleState, State, Transition, evaluate,
};
use proptest::prelude::*;

use crate::support::{SECOND, assert_well_formed, cpu, is_change};

/// A random valid two-level rule with integer thresholds, its direction's sign, and its band.
fn two_level_rule() -> impl Strategy<Value = (RuleParams, f64, f64)> {
    (
        prop_oneof![Just(Direction::Above), Just(Direction::Below)],
        -1000i32..1000,
        1i32..50,
        1i32..100,
        prop_oneof![Just(0i64), Just(10 * SECOND), Just(60 * SECOND)],
        0u32..4,
    )
        .prop_map(|(direction, warning, band, gap, for_ms, consecutive)| {
            let sign = if direction.is_above() { 1.0 } else { -1.0 };
            let warning = f64::from(warning);
            let band = f64::from(band);
            let rule = RuleParams {
                direction,
                warning: Some(Level::new(warning, "warning level")),
                critical: Some(Level::new(
                    warning + sign * f64::from(gap),
                    "critical level",
                )),
                clear: Some(warning - sign * band),
                for_ms,
                consecutive,
                no_data_after_ms: 3600 * SECOND,
                flap: FlapPolicy::OFF,
            };
            (rule, sign, band)
        })
}

/// Feed `value` every 10 s from `start_ms` until the rule reaches `target` (at most 20 samples).
fn raise_to(
    rule: &RuleParams,
    state: RuleState,
    start_ms: i64,
    value: f64,
    target: State,
) -> (RuleState, i64) {
    let mut state = state;
    let mut at_ms = start_ms;
    for _ in 0..20 {
        state = evaluate(rule, &state, &[(at_ms, value)], at_ms).0;
        at_ms += 10 * SECOND;
        if state.state == target {
            return (state, at_ms);
        }
    }
    panic!("never reached {target}: {state:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn values_inside_the_warning_band_never_change_a_raised_warning(
        (rule, sign, band) in two_level_rule(),
        fractions in prop::collection::vec(0u32..1000, 1..40),
    ) {
        prop_assert_eq!(rule.validate(), Ok(()));
        let warning = rule.warning.as_ref().map_or(0.0, |level| level.threshold);
        let clear = warning - sign * band;
        let (state, start) = raise_to(&rule, RuleState::new(0), 0, warning, State::Warning);
        // [clear, warning): clear itself holds (clearing is strict).
        let samples: Vec<(i64, f64)> = fractions
            .iter()
            .enumerate()
            .map(|(index, &f)| (start + index as i64 * SECOND, clear + sign * band * f64::from(f) / 1000.0))
            .collect();
        let (after, transitions) = evaluate(&rule, &state, &samples, start + 40 * SECOND);
        prop_assert!(transitions.is_empty(), "{:?}", transitions);
        prop_assert_eq!(after.state, State::Warning);
    }

    #[test]
    fn values_inside_the_critical_band_never_change_a_raised_critical(
        (rule, sign, band) in two_level_rule(),
        fractions in prop::collection::vec(0u32..1000, 1..40),
    ) {
        let critical = rule.critical.as_ref().map_or(0.0, |level| level.threshold);
        let critical_clear = critical - sign * band;
        prop_assert_eq!(rule.critical_clear(), Some(critical_clear));
        let (state, start) = raise_to(&rule, RuleState::new(0), 0, critical, State::Critical);
        let samples: Vec<(i64, f64)> = fractions
            .iter()
            .enumerate()
            .map(|(index, &f)| (start + index as i64 * SECOND, critical_clear + sign * band * f64::from(f) / 1000.0))
            .collect();
        let (after, transitions) = evaluate(&rule, &state, &samples, start + 40 * SECOND);
        prop_assert!(transitions.is_empty(), "{:?}", transitions);
        prop_assert_eq!(after.state, State::Critical);
    }

    #[test]
    fn values_past_clear_after_a_raise_end_in_ok_at_once(
        (rule, sign, _band) in two_level_rule(),
        raise_to_critical in any::<bool>(),
        distances in prop::collection::vec(1u32..100_000, 1..20),
    ) {
        let clear = rule.clear.unwrap_or_default();
        let (target, level) = if raise_to_critical {
            (State::Critical, rule.critical.as_ref())
        } else {
            (State::Warning, rule.warning.as_ref())
        };
        let (state, start) = raise_to(&rule, RuleState::new(0), 0, level.map_or(0.0, |l| l.threshold), target);
        let samples: Vec<(i64, f64)> = distances
            .iter()
            .enumerate()
            .map(|(index, &d)| (start + index as i64 * SECOND, clear - sign * f64::from(d) / 100.0))
            .collect();
        let (after, transitions) = evaluate(&rule, &state, &samples, start + 20 * SECOND);
        prop_assert_eq!(after.state, State::Ok);
        prop_assert_eq!(transitions.len(), 1);
        prop_assert_eq!(transitions[0].at_ms, start);
        prop_assert_eq!(transitions[0].reason, Reason::Cleared);
        prop_assert_eq!(transitions[0].threshold, Some(clear));
    }

    #[test]
    fn fast_alternation_flaps_and_a_calm_tail_ends_it(
        window_ms in (10 * SECOND)..(3600 * SECOND),
        max_changes in 2u32..=12,
        cadence_fraction in 1u32..1000,
        extra_changes in 0usize..20,
        tail_extra_ms in 1i64..(600 * SECOND),
    ) {
        let mut rule = cpu();
        rule.no_data_after_ms = 10 * window_ms;
        rule.flap = FlapPolicy { window_ms, max_changes };
        prop_assert_eq!(rule.validate(), Ok(()));
        // A change every `cadence` ms, faster than window / max_changes.
        let fastest = (window_ms / i64::from(max_changes) - 1).max(1);
        let cadence = (fastest * i64::from(cadence_fraction) / 1000).max(1);
        let changes = max_changes as usize + extra_changes;
        let samples: Vec<(i64, f64)> = (0..changes)
            .map(|index| (index as i64 * cadence, if index % 2 == 0 { 85.0 } else { 70.0 }))
            .collect();
        let last_ms = samples.last().map_or(0, |s| s.0);
        let (state, transitions) = evaluate(&rule, &RuleState::new(0), &samples, last_ms);
        prop_assert!(state.flapping);
        let start = transitions.iter().position(|t| t.reason == Reason::FlapStart);
        // The max_changes-th change starts flapping and is itself suppressed.
        prop_assert_eq!(start, Some(max_changes as usize));
        prop_assert!(transitions[..max_changes as usize - 1].iter().all(|t| !t.suppressed_by_flapping));
        prop_assert!(transitions[max_changes as usize - 1..].iter().filter(|t| is_change(t)).all(|t| t.suppressed_by_flapping));
        assert_well_formed(State::Ok, &transitions, &state);

        // Calm: the same value every `cadence` ms for longer than the window.
        let calm_value = samples.last().map_or(70.0, |s| s.1);
        let tail_end = last_ms + window_ms + tail_extra_ms;
        let tail: Vec<(i64, f64)> = (1..)
            .map(|step| last_ms + step * cadence.max(SECOND))
            .take_while(|&at| at <= tail_end)
            .map(|at| (at, calm_value))
            .collect();
        let (after, tail_transitions) = evaluate(&rule, &state, &tail, tail_end);
        prop_assert!(!after.flapping);
        prop_assert_eq!(tail_transitions.len(), 1);
        let end = &tail_transitions[0];
        prop_assert_eq!(end.reason, Reason::FlapEnd);
        prop_assert_eq!((end.from, end.to), (state.state, state.state));
        // Exactly when the count fell to max_changes / 2.
        let change_times: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let keep = (max_changes / 2) as usize;
        prop_assert_eq!(end.at_ms, change_times[change_times.len() - keep - 1] + window_ms);
    }
}

/// A random rule for the split and soundness properties.
fn any_rule() -> impl Strategy<Value = RuleParams> {
    (
        prop_oneof![Just(0i64), Just(5 * SECOND), Just(30 * SECOND)],
        0u32..4,
        prop_oneof![Just(15 * SECOND), Just(45 * SECOND)],
        prop_oneof![
            Just(FlapPolicy::OFF),
            ((20 * SECOND)..(120 * SECOND), 2u32..6).prop_map(|(window_ms, max_changes)| {
                FlapPolicy {
                    window_ms,
                    max_changes,
                }
            }),
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(for_ms, consecutive, no_data_after_ms, flap, with_warning, with_critical)| {
                let mut rule = cpu();
                rule.for_ms = for_ms;
                rule.consecutive = consecutive;
                rule.no_data_after_ms = no_data_after_ms;
                rule.flap = flap;
                if !with_warning && with_critical {
                    rule.warning = None;
                    rule.clear = Some(90.0);
                } else if with_warning && !with_critical {
                    rule.critical = None;
                }
                rule
            },
        )
}

/// Samples with duplicates, out-of-order ones, gaps beyond no data, NaN and boundary values.
fn any_samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    let step = prop_oneof![
        3 => Just(10 * SECOND),
        1 => Just(0i64),
        1 => Just(-7 * SECOND),
        1 => 1i64..(60 * SECOND),
    ];
    let value = prop_oneof![
        Just(10.0),
        Just(74.9),
        Just(75.0),
        Just(78.0),
        Just(80.0),
        Just(85.0),
        Just(89.9),
        Just(90.0),
        Just(92.0),
        Just(95.0),
        Just(99.0),
        Just(f64::NAN),
    ];
    prop::collection::vec((step, value), 0..60).prop_map(|steps| {
        let mut at_ms = 1_000;
        steps
            .into_iter()
            .map(|(step, value)| {
                // Never before the rule's creation (0), which would be stamped at it.
                at_ms = (at_ms + step).max(1_000);
                (at_ms, value)
            })
            .collect()
    })
}

fn through_json(state: &RuleState) -> RuleState {
    serde_json::from_str(&serde_json::to_string(state).unwrap()).unwrap()
}

/// The samples evaluation accepts: not NaN and newer than every accepted one before.
fn accepted(samples: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut last = None;
    samples
        .iter()
        .copied()
        .filter(|&(at_ms, value)| {
            let keep = !value.is_nan() && last.is_none_or(|last| at_ms > last);
            if keep {
                last = Some(at_ms);
            }
            keep
        })
        .collect()
}

fn crosses(rule: &RuleParams, to: State, value: f64) -> bool {
    let level = match to {
        State::Warning => rule.warning.as_ref(),
        State::Critical => rule.critical.as_ref(),
        State::Ok | State::Unknown => None,
    };
    level.is_some_and(|level| value >= level.threshold)
}

/// A raise at `t` to `to` needs a run of accepted samples crossing that level, ending at `t`,
/// with at least `consecutive` samples and lasting at least `for_ms`.
fn assert_not_premature(rule: &RuleParams, accepted: &[(i64, f64)], t: &Transition) {
    let Some(end) = accepted.iter().position(|s| s.0 == t.at_ms) else {
        panic!("raise at {} without a sample", t.at_ms);
    };
    let run: Vec<_> = accepted[..=end]
        .iter()
        .rev()
        .take_while(|s| crosses(rule, t.to, s.1))
        .collect();
    assert!(run.len() >= rule.consecutive.max(1) as usize, "{t:?}");
    let run_start = run.last().map_or(i64::MAX, |s| s.0);
    assert!(t.at_ms - run_start >= rule.for_ms, "{t:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn split_invariance_with_persistence(
        rule in any_rule(),
        samples in any_samples(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        now_backoffs in prop::collection::vec(0i64..(20 * SECOND), 6),
        final_extra in 0i64..(100 * SECOND),
    ) {
        let final_now = samples.iter().map(|s| s.0).max().unwrap_or(0) + final_extra;
        let (whole, whole_transitions) = evaluate(&rule, &RuleState::new(0), &samples, final_now);
        assert_well_formed(State::Ok, &whole_transitions, &whole);

        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(samples.len() + 1)).collect();
        cut_points.sort_unstable();
        cut_points.dedup();
        let mut state = RuleState::new(0);
        let mut transitions = Vec::new();
        let mut begin = 0;
        for (index, &cut) in cut_points.iter().enumerate() {
            // now_ms no later than any sample still to come.
            let next_sample = samples[cut..].iter().map(|s| s.0).min().unwrap_or(final_now);
            let now = next_sample - now_backoffs[index % now_backoffs.len()];
            let (next, produced) = evaluate(&rule, &through_json(&state), &samples[begin..cut], now);
            state = next;
            transitions.extend(produced);
            begin = cut;
        }
        let (state, produced) = evaluate(&rule, &through_json(&state), &samples[begin..], final_now);
        transitions.extend(produced);
        prop_assert_eq!(&state, &whole);
        prop_assert_eq!(&transitions, &whole_transitions);
    }

    #[test]
    fn raises_are_never_premature_and_recoveries_are_immediate(
        rule in any_rule(),
        samples in any_samples(),
    ) {
        let accepted = accepted(&samples);
        let (state, transitions) = evaluate(&rule, &RuleState::new(0), &samples, 0);
        assert_well_formed(State::Ok, &transitions, &state);
        for t in transitions.iter().filter(|t| matches!(t.to, State::Warning | State::Critical)) {
            if t.reason == Reason::Crossed || (t.reason == Reason::DataResumed) {
                assert_not_premature(&rule, &accepted, t);
            }
        }
        // Fed one by one: after every accepted sample past clear the rule is ok. Acceptance is
        // judged by position (a later copy of an earlier sample is not newer, so it is ignored).
        let clear = rule.effective_clear().unwrap_or_default();
        let mut state = RuleState::new(0);
        let mut last_accepted: Option<i64> = None;
        for &sample in &samples {
            state = evaluate(&rule, &state, &[sample], sample.0).0;
            let is_accepted = !sample.1.is_nan() && last_accepted.is_none_or(|last| sample.0 > last);
            if is_accepted {
                last_accepted = Some(sample.0);
                if sample.1 < clear {
                    prop_assert_eq!(state.state, State::Ok);
                }
            }
        }
    }
}
