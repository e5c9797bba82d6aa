//! One test per documented semantic of threshold rules, as transition snapshots plus asserts.

use cloudkeep_alerting::{FlapPolicy, Level, Reason, RuleState, State, evaluate};
use expect_test::expect;

use crate::support::{
    MINUTE, SECOND, assert_well_formed, cpu, free_disk, render, run, run_one_by_one, series,
    states_after_each,
};

#[test]
fn a_new_rule_is_ok_and_its_first_ok_sample_is_no_transition() {
    let fresh = RuleState::new(5_000);
    assert_eq!(fresh.state, State::Ok);
    assert_eq!((fresh.since_ms, fresh.created_ms), (5_000, 5_000));
    let (state, transitions) = evaluate(&cpu(), &fresh, &[(6_000, 20.0)], 6_000);
    assert!(transitions.is_empty());
    // The common no-change path allocates no transition list.
    assert_eq!(transitions.capacity(), 0);
    assert_eq!(state.state, State::Ok);
    assert_eq!(state.since_ms, 5_000);
    assert_eq!(state.last_value, Some(20.0));
    assert_eq!(state.last_sample_ms, Some(6_000));
}

#[test]
fn above_raises_at_or_above_and_clears_strictly_below_clear() {
    let samples = series(
        0,
        10 * SECOND,
        &[70.0, 79.9, 80.0, 78.0, 76.0, 75.0, 74.9, 80.0],
    );
    let (state, transitions) = run(&cpu(), &samples, 70 * SECOND);
    expect![[r#"
        @20s ok->warning crossed value=80 threshold=80 "cpu busy"
        @60s warning->ok cleared value=74.9 threshold=75 "cpu busy"
        @70s ok->warning crossed value=80 threshold=80 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    assert_eq!(state.state, State::Warning);
}

#[test]
fn below_raises_at_or_below_and_clears_strictly_above_clear() {
    let samples = series(
        0,
        10 * SECOND,
        &[
            30.0, 20.1, 20.0, 24.0, 25.0, 25.1, 10.0, 14.0, 15.0, 15.1, 24.0, 25.5,
        ],
    );
    let (state, transitions) = run(&free_disk(), &samples, 110 * SECOND);
    // Band 5: critical (10) de-escalates above 15, i.e. at 15.1; 15 still holds critical.
    expect![[r#"
        @20s ok->warning crossed value=20 threshold=20 "disk low"
        @50s warning->ok cleared value=25.1 threshold=25 "disk low"
        @60s ok->critical crossed value=10 threshold=10 "disk full"
        @90s critical->warning deescalated value=15.1 threshold=15 "disk low"
        @110s warning->ok cleared value=25.5 threshold=25 "disk low"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    assert_eq!(state.state, State::Ok);
}

#[test]
fn only_warning() {
    let mut rule = cpu();
    rule.critical = None;
    assert_eq!(rule.validate(), Ok(()));
    let samples = series(0, 10 * SECOND, &[50.0, 99.0, 1000.0, 76.0, 74.0]);
    let (state, transitions) = run(&rule, &samples, 40 * SECOND);
    expect![[r#"
        @10s ok->warning crossed value=99 threshold=80 "cpu busy"
        @40s warning->ok cleared value=74 threshold=75 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    assert_eq!(rule.critical_clear(), None);
}

#[test]
fn only_critical_defaults_clear_to_critical() {
    let mut rule = cpu();
    rule.warning = None;
    rule.clear = None;
    assert_eq!(rule.validate(), Ok(()));
    assert_eq!(rule.effective_clear(), Some(95.0));
    assert_eq!(rule.critical_clear(), Some(95.0));
    let samples = series(0, 10 * SECOND, &[94.9, 95.0, 95.0, 94.9, 99.0]);
    let (state, transitions) = run(&rule, &samples, 40 * SECOND);
    expect![[r#"
        @10s ok->critical crossed value=95 threshold=95 "cpu overloaded"
        @30s critical->ok cleared value=94.9 threshold=95 "cpu overloaded"
        @40s ok->critical crossed value=99 threshold=95 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);

    // With a clear point, critical holds down to it and then goes straight to ok.
    rule.clear = Some(90.0);
    assert_eq!(rule.critical_clear(), Some(90.0));
    let samples = series(0, 10 * SECOND, &[96.0, 92.0, 90.0, 89.9]);
    let (state, transitions) = run(&rule, &samples, 30 * SECOND);
    expect![[r#"
        @0s ok->critical crossed value=96 threshold=95 "cpu overloaded"
        @30s critical->ok cleared value=89.9 threshold=90 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
}

#[test]
fn clear_defaults_to_the_lowest_raise_threshold() {
    let mut rule = cpu();
    rule.clear = None;
    assert_eq!(rule.effective_clear(), Some(80.0));
    // No band: critical de-escalates as soon as it is below 95.
    assert_eq!(rule.critical_clear(), Some(95.0));
    let samples = series(0, 10 * SECOND, &[80.0, 79.99, 95.0, 94.99, 79.0]);
    assert_eq!(
        states_after_each(&rule, &samples),
        [
            State::Warning,
            State::Ok,
            State::Critical,
            State::Warning,
            State::Ok
        ]
    );
    let mut below = free_disk();
    below.clear = None;
    assert_eq!(below.effective_clear(), Some(20.0));
    below.warning = None;
    assert_eq!(below.effective_clear(), Some(10.0));
}

#[test]
fn critical_deescalates_past_critical_minus_band() {
    let rule = cpu();
    // band = 80 - 75 = 5, so critical holds down to 90.
    assert_eq!(rule.critical_clear(), Some(90.0));
    let samples = series(
        0,
        10 * SECOND,
        &[96.0, 94.0, 90.0, 89.9, 96.0, 77.0, 96.0, 74.0],
    );
    let (state, transitions) = run(&rule, &samples, 70 * SECOND);
    // 77 is below the warning threshold but not past clear: warning's own hold band.
    expect![[r#"
        @0s ok->critical crossed value=96 threshold=95 "cpu overloaded"
        @30s critical->warning deescalated value=89.9 threshold=90 "cpu busy"
        @40s warning->critical crossed value=96 threshold=95 "cpu overloaded"
        @50s critical->warning deescalated value=77 threshold=90 "cpu busy"
        @60s warning->critical crossed value=96 threshold=95 "cpu overloaded"
        @70s critical->ok cleared value=74 threshold=75 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
}

#[test]
fn a_value_oscillating_inside_a_band_never_changes_state() {
    let rule = cpu();
    let inside_ok = [79.9, 75.0, 78.0, 76.5, 79.0, 75.1];
    let inside_warning = [75.0, 79.9, 94.9, 76.0, 89.9, 80.0, 94.0];
    let inside_critical = [90.0, 94.9, 99.0, 91.0, 1e9, 90.0];
    for (start, band) in [
        (70.0, &inside_ok[..]),
        (85.0, &inside_warning[..]),
        (99.0, &inside_critical[..]),
    ] {
        let mut values = vec![start];
        for _ in 0..5 {
            values.extend_from_slice(band);
        }
        let samples = series(0, SECOND, &values);
        let (state, transitions) = run(&rule, &samples, samples.len() as i64 * SECOND);
        let raised = usize::from(start > 75.0);
        assert_eq!(
            transitions.len(),
            raised,
            "{start}: {}",
            render(&transitions)
        );
        assert_eq!(state.state, states_after_each(&rule, &samples[..1])[0]);
    }
}

#[test]
fn for_duration_with_interruptions() {
    let mut rule = cpu();
    rule.for_ms = 2 * MINUTE;
    // 85 for 110 s, one 78 (crosses nothing: cancels although it is above clear), then 85 again.
    let mut values = vec![85.0; 12];
    values.push(78.0);
    values.extend([85.0; 14]);
    let samples = series(0, 10 * SECOND, &values);
    let (state, transitions) = run(&rule, &samples, 270 * SECOND);
    // The second run starts at 130 s, so the raise comes at 250 s (not 120 s).
    expect![[r#"
        @250s ok->warning crossed value=85 threshold=80 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    assert_eq!(state.pending_since(State::Warning), Some(130 * SECOND));

    // Time is measured between samples: sparse samples raise at the first one past `for`.
    rule.no_data_after_ms = 10 * MINUTE;
    let samples = [
        (0, 85.0),
        (100 * SECOND, 85.0),
        (119_999, 85.0),
        (200 * SECOND, 85.0),
    ];
    let (_, transitions) = run(&rule, &samples, 200 * SECOND);
    expect![[r#"
        @200s ok->warning crossed value=85 threshold=80 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
}

#[test]
fn consecutive_samples() {
    let mut rule = cpu();
    rule.consecutive = 3;
    let samples = series(
        0,
        SECOND,
        &[85.0, 85.0, 70.0, 85.0, 85.0, 85.0, 96.0, 96.0, 96.0],
    );
    let (state, transitions) = run(&rule, &samples, 9 * SECOND);
    expect![[r#"
        @5s ok->warning crossed value=85 threshold=80 "cpu busy"
        @8s warning->critical crossed value=96 threshold=95 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);

    // 0 and 1 both mean immediately.
    for consecutive in [0, 1] {
        rule.consecutive = consecutive;
        assert_eq!(states_after_each(&rule, &[(0, 85.0)]), [State::Warning]);
    }
}

#[test]
fn for_and_consecutive_together_wait_for_the_later() {
    let mut rule = cpu();
    rule.for_ms = 30 * SECOND;
    rule.consecutive = 5;
    // `for` is met at the 4th sample (30 s), consecutive at the 5th (40 s).
    let samples = series(0, 10 * SECOND, &[85.0; 6]);
    let (_, transitions) = run(&rule, &samples, 50 * SECOND);
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].at_ms, 40 * SECOND);

    rule.for_ms = 60 * SECOND;
    rule.consecutive = 2;
    let (_, transitions) = run(&rule, &samples, 50 * SECOND);
    assert!(transitions.is_empty());
    let samples = series(0, 10 * SECOND, &[85.0; 8]);
    let (_, transitions) = run(&rule, &samples, 70 * SECOND);
    assert_eq!(transitions[0].at_ms, 60 * SECOND);
}

#[test]
fn jump_to_critical_with_for_goes_through_warning_when_warning_began_earlier() {
    let mut rule = cpu();
    rule.for_ms = MINUTE;
    // Warning's condition begins at 0, critical's at 30 s: warning at 60 s, critical at 90 s.
    let samples = series(
        0,
        10 * SECOND,
        &[85.0, 85.0, 85.0, 96.0, 96.0, 96.0, 96.0, 96.0, 96.0, 96.0],
    );
    let (state, transitions) = run(&rule, &samples, 90 * SECOND);
    expect![[r#"
        @60s ok->warning crossed value=96 threshold=80 "cpu busy"
        @90s warning->critical crossed value=96 threshold=95 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);

    // Both begin together: straight to critical once `for` has passed.
    let samples = series(0, 10 * SECOND, &[96.0; 7]);
    let (_, transitions) = run(&rule, &samples, 60 * SECOND);
    expect![[r#"
        @60s ok->critical crossed value=96 threshold=95 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));

    // Critical's run is interrupted by 90 (still crossing warning): warning keeps its start.
    let samples = series(
        0,
        10 * SECOND,
        &[
            96.0, 96.0, 96.0, 90.0, 96.0, 96.0, 96.0, 96.0, 96.0, 96.0, 96.0,
        ],
    );
    let (_, transitions) = run(&rule, &samples, 100 * SECOND);
    expect![[r#"
        @60s ok->warning crossed value=96 threshold=80 "cpu busy"
        @100s warning->critical crossed value=96 threshold=95 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
}

#[test]
fn recovery_is_immediate_even_with_for_and_consecutive() {
    let mut rule = cpu();
    rule.for_ms = 2 * MINUTE;
    rule.consecutive = 10;
    let mut values = vec![99.0; 13];
    values.push(50.0);
    values.push(99.0);
    values.push(88.0);
    let samples = series(0, 10 * SECOND, &values);
    let (state, transitions) = run(&rule, &samples, 150 * SECOND);
    expect![[r#"
        @120s ok->critical crossed value=99 threshold=95 "cpu overloaded"
        @130s critical->ok cleared value=50 threshold=75 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    // De-escalation is immediate too.
    let mut values = vec![99.0; 13];
    values.push(85.0);
    let (_, transitions) = run(&rule, &series(0, 10 * SECOND, &values), 130 * SECOND);
    assert_eq!(
        transitions.last().map(|t| (t.to, t.reason, t.at_ms)),
        Some((State::Warning, Reason::Deescalated, 130 * SECOND))
    );
}

#[test]
fn a_pending_raise_is_cancelled_when_the_condition_stops() {
    let mut rule = cpu();
    rule.for_ms = 30 * SECOND;
    let samples = series(0, 10 * SECOND, &[85.0, 85.0, 85.0, 79.0, 85.0, 85.0, 85.0]);
    let (state, transitions) = run(&rule, &samples, 60 * SECOND);
    assert!(transitions.is_empty(), "{}", render(&transitions));
    assert_eq!(state.pending_since(State::Warning), Some(40 * SECOND));
    assert_eq!(state.pending_since(State::Critical), None);
    let (state, transitions) = evaluate(&rule, &state, &[(70 * SECOND, 85.0)], 70 * SECOND);
    assert_eq!(
        render(&transitions),
        "@70s ok->warning crossed value=85 threshold=80 \"cpu busy\"\n"
    );
    assert_eq!(state.state, State::Warning);
}

#[test]
fn no_data_then_data_resumed() {
    let rule = cpu();
    let fresh = RuleState::new(0);
    // Never a sample: unknown once the rule has existed for no_data_after_ms.
    let (state, transitions) = evaluate(&rule, &fresh, &[], 29_999);
    assert!(transitions.is_empty());
    let (state, transitions) = evaluate(&rule, &state, &[], 30_000);
    expect![[r#"
        @30s ok->unknown no_data
    "#]]
    .assert_eq(&render(&transitions));
    assert!(state.no_data);
    // Still no data: no repeat.
    let (state, transitions) = evaluate(&rule, &state, &[], 90_000);
    assert!(transitions.is_empty());
    // Data comes back crossing warning: one transition out of unknown.
    let (state, transitions) = evaluate(&rule, &state, &[(100_000, 85.0)], 100_000);
    expect![[r#"
        @100s unknown->warning data_resumed value=85 threshold=80 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert!(!state.no_data);
    // Samples stop again: unknown at the last sample + 30 s, whatever now is.
    let (state, transitions) = evaluate(&rule, &state, &[(110_000, 85.0)], 200_000);
    expect![[r#"
        @140s warning->unknown no_data
    "#]]
    .assert_eq(&render(&transitions));
    // Back with an ok value.
    let (state, transitions) = evaluate(&rule, &state, &[(210_000, 10.0)], 210_000);
    expect![[r#"
        @210s unknown->ok data_resumed value=10
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Unknown, &transitions, &state);
}

#[test]
fn no_data_inside_one_batch_and_pending_reset_on_resume() {
    let mut rule = cpu();
    rule.for_ms = MINUTE;
    // Warning pending from 0; the gap 20 s → 60 s exceeds 30 s: no data at 50 s; the run
    // restarts at 60 s so the raise comes at 120 s, not 60 s.
    let samples = [
        (0, 85.0),
        (10_000, 85.0),
        (20_000, 85.0),
        (60_000, 85.0),
        (70_000, 85.0),
        (80_000, 85.0),
        (90_000, 85.0),
        (100_000, 85.0),
        (110_000, 85.0),
        (120_000, 85.0),
    ];
    let (state, transitions) = run(&rule, &samples, 120_000);
    expect![[r#"
        @50s ok->unknown no_data
        @60s unknown->ok data_resumed value=85
        @120s ok->warning crossed value=85 threshold=80 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    // Same when fed one by one.
    let (one_by_one, transitions_one_by_one) =
        run_one_by_one(&rule, &RuleState::new(0), &samples, 120_000);
    assert_eq!(one_by_one, state);
    assert_eq!(transitions_one_by_one, transitions);
}

#[test]
fn a_sample_exactly_at_the_no_data_deadline_is_late() {
    let rule = cpu();
    // "No sample for 30 s": at exactly 30 s after the last one the rule is unknown.
    let (_, transitions) = run(&rule, &[(0, 10.0), (30_000, 10.0)], 30_000);
    expect![[r#"
        @30s ok->unknown no_data
        @30s unknown->ok data_resumed value=10
    "#]]
    .assert_eq(&render(&transitions));
    let (_, transitions) = run(&rule, &[(0, 10.0), (29_999, 10.0)], 30_000);
    assert!(transitions.is_empty());
}

#[test]
fn late_samples_after_no_data_are_stamped_no_earlier_than_evaluation() {
    let rule = cpu();
    let (state, _) = run(&rule, &[(0, 10.0)], 0);
    // The server declares no data at 30 s (evaluated at 60 s) ...
    let (state, transitions) = evaluate(&rule, &state, &[], 60_000);
    assert_eq!(transitions[0].at_ms, 30_000);
    // ... then the agent's backlog arrives, with older timestamps than 60 s.
    let backlog = series(10_000, 10_000, &[10.0, 96.0, 96.0, 10.0, 10.0, 10.0, 10.0]);
    let (state, transitions) = evaluate(&rule, &state, &backlog, 80_000);
    expect![[r#"
        @60s unknown->ok data_resumed value=10
        @60s ok->critical crossed value=96 threshold=95 "cpu overloaded"
        @60s critical->ok cleared value=10 threshold=75 "cpu overloaded"
    "#]]
    .assert_eq(&render(&transitions));
    assert_eq!(state.evaluated_ms, 80_000);
    assert!(state.since_ms >= 60_000);
}

#[test]
fn flapping_starts_suppresses_and_ends_with_one_summary() {
    let mut rule = cpu();
    rule.no_data_after_ms = 90 * SECOND;
    rule.flap = FlapPolicy {
        window_ms: 10 * MINUTE,
        max_changes: 4,
    };
    // A change every 30 s: the 4th change starts flapping.
    let flapping = series(0, 30 * SECOND, &[85.0, 70.0, 85.0, 70.0, 85.0, 70.0, 96.0]);
    let (state, transitions) = run(&rule, &flapping, 180 * SECOND);
    expect![[r#"
        @0s ok->warning crossed value=85 threshold=80 "cpu busy"
        @30s warning->ok cleared value=70 threshold=75 "cpu busy"
        @60s ok->warning crossed value=85 threshold=80 "cpu busy"
        @90s warning->ok cleared value=70 threshold=75 "cpu busy" [suppressed]
        @90s ok->ok flap_start value=70
        @120s ok->warning crossed value=85 threshold=80 "cpu busy" [suppressed]
        @150s warning->ok cleared value=70 threshold=75 "cpu busy" [suppressed]
        @180s ok->critical crossed value=96 threshold=95 "cpu overloaded" [suppressed]
    "#]]
    .assert_eq(&render(&transitions));
    assert!(state.flapping);
    // Calm at critical: the count falls to 2 when the 3rd newest change (at 120 s) leaves
    // the window, at 720 s; samples keep coming every 30 s.
    let calm = series(210 * SECOND, 30 * SECOND, &[96.0; 25]);
    let (state, transitions) = evaluate(&rule, &state, &calm, 930 * SECOND);
    expect![[r#"
        @720s critical->critical flap_end value=96
    "#]]
    .assert_eq(&render(&transitions));
    assert!(!state.flapping);
    assert_well_formed(State::Critical, &transitions, &state);
}

#[test]
fn flapping_ends_on_the_timer_without_samples() {
    let mut rule = cpu();
    rule.no_data_after_ms = 24 * 3600 * SECOND;
    rule.flap = FlapPolicy {
        window_ms: 100 * SECOND,
        max_changes: 3,
    };
    let samples = series(0, SECOND, &[85.0, 70.0, 85.0]);
    let (state, transitions) = run(&rule, &samples, 2 * SECOND);
    assert_eq!(
        transitions.last().map(|t| t.reason),
        Some(Reason::FlapStart)
    );
    // Ends when 2 changes have left: the change at 1 s leaves at 101 s.
    let (state, transitions) = evaluate(&rule, &state, &[], 100_999);
    assert!(transitions.is_empty());
    let (state, transitions) = evaluate(&rule, &state, &[], 500 * SECOND);
    expect![[r#"
        @101s warning->warning flap_end value=85
    "#]]
    .assert_eq(&render(&transitions));
    assert!(!state.flapping);
    // Old changes are forgotten.
    assert!(state.recent_changes.is_empty());
}

#[test]
fn turning_flap_detection_off_ends_flapping_at_the_next_evaluation() {
    let mut rule = cpu();
    rule.flap = FlapPolicy {
        window_ms: 10 * MINUTE,
        max_changes: 2,
    };
    let (state, _) = run(&rule, &series(0, SECOND, &[85.0, 70.0]), SECOND);
    assert!(state.flapping);
    rule.flap = FlapPolicy::OFF;
    let (state, transitions) = evaluate(&rule, &state, &[], 5 * SECOND);
    expect![[r#"
        @1s ok->ok flap_end value=70
    "#]]
    .assert_eq(&render(&transitions));
    assert!(!state.flapping);
    assert!(state.recent_changes.is_empty());
}

#[test]
fn out_of_order_and_duplicate_samples_are_ignored() {
    let rule = cpu();
    let samples = [
        (10_000, 85.0),
        (5_000, 96.0),
        (10_000, 96.0),
        (20_000, 70.0),
        (15_000, 99.0),
    ];
    let (state, transitions) = run(&rule, &samples, 20_000);
    expect![[r#"
        @10s ok->warning crossed value=85 threshold=80 "cpu busy"
        @20s warning->ok cleared value=70 threshold=75 "cpu busy"
    "#]]
    .assert_eq(&render(&transitions));
    assert_eq!(state.last_sample_ms, Some(20_000));
    assert_eq!(state.last_value, Some(70.0));
    // Across calls too.
    let (state, transitions) = evaluate(&rule, &state, &[(20_000, 99.0), (19_000, 99.0)], 21_000);
    assert!(transitions.is_empty());
    assert_eq!(state.last_value, Some(70.0));
}

#[test]
fn nan_samples_are_absent() {
    let mut rule = cpu();
    rule.consecutive = 2;
    // NaN neither breaks the run of crossing samples nor counts as one.
    let samples = [(0, 85.0), (10_000, f64::NAN), (20_000, 85.0)];
    let (state, transitions) = run(&rule, &samples, 20_000);
    assert_eq!(
        render(&transitions),
        "@20s ok->warning crossed value=85 threshold=80 \"cpu busy\"\n"
    );
    // Only NaNs: they do not refresh "last seen", so the rule goes to no data.
    let nans = series(30_000, 10_000, &[f64::NAN; 5]);
    let (state, transitions) = evaluate(&rule, &state, &nans, 70_000);
    expect![[r#"
        @50s warning->unknown no_data
    "#]]
    .assert_eq(&render(&transitions));
    assert_eq!(state.last_sample_ms, Some(20_000));
    assert_eq!(state.last_value, Some(85.0));
    // A NaN does not move the "already seen" mark either.
    let (_, transitions) = run(&cpu(), &[(10_000, f64::NAN), (5_000, 85.0)], 10_000);
    assert_eq!(transitions.len(), 1);
}

#[test]
fn infinities_are_ordinary_values() {
    let samples = [(0, f64::INFINITY), (1_000, f64::NEG_INFINITY)];
    assert_eq!(
        states_after_each(&cpu(), &samples),
        [State::Critical, State::Ok]
    );
    assert_eq!(
        states_after_each(&free_disk(), &samples),
        [State::Ok, State::Critical]
    );
}

#[test]
fn transitions_carry_the_level_entered_or_left() {
    let mut rule = cpu();
    rule.warning = Some(Level::new(80.0, "busy"));
    rule.critical = Some(Level::new(95.0, "overloaded"));
    let samples = series(0, SECOND, &[85.0, 96.0, 89.0, 70.0]);
    let (_, transitions) = run(&rule, &samples, 3 * SECOND);
    expect![[r#"
        @0s ok->warning crossed value=85 threshold=80 "busy"
        @1s warning->critical crossed value=96 threshold=95 "overloaded"
        @2s critical->warning deescalated value=89 threshold=90 "busy"
        @3s warning->ok cleared value=70 threshold=75 "busy"
    "#]]
    .assert_eq(&render(&transitions));
}

#[test]
fn an_unvalidated_rule_never_panics() {
    let mut rule = cpu();
    rule.warning = None;
    rule.critical = None;
    rule.no_data_after_ms = -5;
    rule.for_ms = i64::MIN;
    rule.flap = FlapPolicy {
        window_ms: -1,
        max_changes: 1000,
    };
    let samples = series(i64::MAX - 100, 10, &[1.0, f64::INFINITY, -1.0]);
    let (state, transitions) = run(&rule, &samples, i64::MAX);
    assert_well_formed(State::Ok, &transitions, &state);
    let mut inverted = cpu();
    inverted.clear = Some(99.0);
    inverted.flap = FlapPolicy {
        window_ms: 0,
        max_changes: 1,
    };
    let samples = series(i64::MIN, 1, &[85.0, 96.0, 85.0, 70.0, 98.0]);
    let (state, transitions) = run(&inverted, &samples, 0);
    assert_well_formed(State::Ok, &transitions, &state);
}
