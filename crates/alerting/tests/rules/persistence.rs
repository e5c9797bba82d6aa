//! `RuleState` as the server persists it: JSON round trips in the middle of pending raises,
//! flapping and no data change nothing.

use cloudkeep_alerting::{FlapPolicy, RuleState, Transition, evaluate};
use expect_test::expect;

use crate::support::{MINUTE, SECOND, cpu, series};

fn through_json(state: &RuleState) -> RuleState {
    serde_json::from_str(&serde_json::to_string(state).unwrap()).unwrap()
}

#[test]
fn json_shape() {
    let mut rule = cpu();
    rule.for_ms = 20 * SECOND;
    rule.flap = FlapPolicy {
        window_ms: 10 * MINUTE,
        max_changes: 4,
    };
    // Warning at 20 s, ok at 30 s, then warning and critical pending since 40 s and 50 s.
    let samples = series(0, 10 * SECOND, &[85.0, 85.0, 85.0, 70.0, 85.0, 96.0]);
    let (state, _) = evaluate(&rule, &RuleState::new(0), &samples, 55 * SECOND);
    expect![[r#"
        {
          "state": "ok",
          "since_ms": 30000,
          "last_value": 96.0,
          "last_sample_ms": 50000,
          "created_ms": 0,
          "no_data": false,
          "flapping": false,
          "evaluated_ms": 55000,
          "pending": {
            "warning": {
              "since_ms": 40000,
              "samples": 2
            },
            "critical": {
              "since_ms": 50000,
              "samples": 1
            }
          },
          "recent_changes": [
            20000,
            30000
          ]
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&state).unwrap());
    let transition = Transition {
        from: cloudkeep_alerting::State::Ok,
        to: cloudkeep_alerting::State::Warning,
        at_ms: 1,
        value: Some(85.0),
        threshold: Some(80.0),
        level_name: Some("cpu busy".to_owned()),
        reason: cloudkeep_alerting::Reason::DataResumed,
        suppressed_by_flapping: false,
    };
    expect![[r#"{"from":"ok","to":"warning","at_ms":1,"value":85.0,"threshold":80.0,"level_name":"cpu busy","reason":"data_resumed","suppressed_by_flapping":false}"#]].assert_eq(&serde_json::to_string(&transition).unwrap());
}

#[test]
fn an_older_json_without_the_later_fields_still_loads() {
    let json =
        r#"{"state":"warning","since_ms":5,"last_value":85.0,"last_sample_ms":5,"created_ms":0}"#;
    let state: RuleState = serde_json::from_str(json).unwrap();
    assert_eq!(state.state, cloudkeep_alerting::State::Warning);
    assert!(state.recent_changes.is_empty());
    let (state, transitions) = evaluate(&cpu(), &state, &[(10, 70.0)], 10);
    assert_eq!(transitions.len(), 1);
    assert_eq!(state.since_ms, 10);
}

#[test]
fn round_trips_between_every_call_change_nothing() {
    let mut rule = cpu();
    rule.for_ms = 20 * SECOND;
    rule.flap = FlapPolicy {
        window_ms: 5 * MINUTE,
        max_changes: 4,
    };
    let mut values = Vec::new();
    for round in 0..6 {
        values.extend([85.0, 85.0, 85.0, 96.0, 96.0, 96.0, 70.0, 70.0]);
        if round % 2 == 0 {
            values.extend([50.0; 10]);
        }
    }
    let mut samples = series(0, 10 * SECOND, &values);
    // A gap for no data.
    for sample in samples.iter_mut().skip(40) {
        sample.0 += 5 * MINUTE;
    }
    let mut plain = RuleState::new(0);
    let mut persisted = RuleState::new(0);
    let mut all_plain = Vec::new();
    let mut all_persisted = Vec::new();
    for &sample in &samples {
        let (next, transitions) = evaluate(&rule, &plain, &[sample], sample.0);
        plain = next;
        all_plain.extend(transitions);
        let (next, transitions) = evaluate(&rule, &through_json(&persisted), &[sample], sample.0);
        persisted = next;
        all_persisted.extend(transitions);
        assert_eq!(through_json(&persisted), persisted);
    }
    assert_eq!(plain, persisted);
    assert_eq!(all_plain, all_persisted);
    assert!(all_plain.iter().any(|t| t.suppressed_by_flapping));
    assert!(
        all_plain
            .iter()
            .any(|t| t.reason == cloudkeep_alerting::Reason::NoData)
    );
}
