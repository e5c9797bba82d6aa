//! `evaluate_check_status`: Nagios codes, immediate changes, shared no-data and flap logic.

use cloudkeep_alerting::{FlapPolicy, RuleState, State, evaluate_check_status};
use expect_test::expect;

use crate::support::{SECOND, assert_well_formed, render, series};

const NO_DATA: i64 = 30 * SECOND;

#[test]
fn codes_map_to_states_immediately() {
    let codes = [0.0, 1.0, 2.0, 1.0, 3.0, 0.0, 7.0, -1.0, 1.5, 2.0, 0.0];
    let samples = series(0, 10 * SECOND, &codes);
    let (state, transitions) = evaluate_check_status(
        &RuleState::new(0),
        &samples,
        100 * SECOND,
        NO_DATA,
        FlapPolicy::OFF,
    );
    expect![[r#"
        @10s ok->warning crossed value=1
        @20s warning->critical crossed value=2
        @30s critical->warning deescalated value=1
        @40s warning->unknown check_unknown value=3
        @50s unknown->ok cleared value=0
        @60s ok->unknown check_unknown value=7
        @90s unknown->critical crossed value=2
        @100s critical->ok cleared value=0
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
}

#[test]
fn no_data_and_resume() {
    let (state, transitions) = evaluate_check_status(
        &RuleState::new(0),
        &[(0, 2.0), (100 * SECOND, 2.0)],
        200 * SECOND,
        NO_DATA,
        FlapPolicy::OFF,
    );
    expect![[r#"
        @0s ok->critical crossed value=2
        @30s critical->unknown no_data
        @100s unknown->critical data_resumed value=2
        @130s critical->unknown no_data
    "#]]
    .assert_eq(&render(&transitions));
    assert!(state.no_data);
    // Unknown by the check's own code, then no data: still unknown, no transition, but the
    // next code-3 sample is a resume without a change either.
    let (state, transitions) = evaluate_check_status(
        &RuleState::new(0),
        &[(0, 3.0)],
        100 * SECOND,
        NO_DATA,
        FlapPolicy::OFF,
    );
    assert_eq!(
        render(&transitions),
        "@0s ok->unknown check_unknown value=3\n"
    );
    assert!(state.no_data);
    let (state, transitions) = evaluate_check_status(
        &state,
        &[(110 * SECOND, 3.0)],
        110 * SECOND,
        NO_DATA,
        FlapPolicy::OFF,
    );
    assert!(transitions.is_empty());
    assert!(!state.no_data);
    let (state, transitions) = evaluate_check_status(
        &state,
        &[(200 * SECOND, 0.0)],
        200 * SECOND,
        NO_DATA,
        FlapPolicy::OFF,
    );
    // The gap 110 s → 200 s is no data again (no transition: already unknown).
    assert_eq!(
        render(&transitions),
        "@200s unknown->ok data_resumed value=0\n"
    );
    assert_eq!(state.state, State::Ok);
}

#[test]
fn flapping_is_shared_with_threshold_rules() {
    let policy = FlapPolicy {
        window_ms: 60 * SECOND,
        max_changes: 3,
    };
    let samples = series(0, 5 * SECOND, &[2.0, 0.0, 2.0, 0.0, 0.0]);
    let (state, transitions) = evaluate_check_status(
        &RuleState::new(0),
        &samples,
        200 * SECOND,
        1_000_000,
        policy,
    );
    expect![[r#"
        @0s ok->critical crossed value=2
        @5s critical->ok cleared value=0
        @10s ok->critical crossed value=2 [suppressed]
        @10s critical->critical flap_start value=2
        @15s critical->ok cleared value=0 [suppressed]
        @70s ok->ok flap_end value=0
    "#]]
    .assert_eq(&render(&transitions));
    assert_well_formed(State::Ok, &transitions, &state);
    assert!(!state.flapping);
}

#[test]
fn out_of_order_duplicates_and_nan_are_ignored() {
    let samples = [
        (10_000, 2.0),
        (10_000, 0.0),
        (5_000, 0.0),
        (12_000, f64::NAN),
    ];
    let (state, transitions) = evaluate_check_status(
        &RuleState::new(0),
        &samples,
        12_000,
        NO_DATA,
        FlapPolicy::OFF,
    );
    assert_eq!(render(&transitions), "@10s ok->critical crossed value=2\n");
    assert_eq!(state.last_sample_ms, Some(10_000));
}
