//! `RuleParams::validate` and `FlapPolicy::validate`: every error and its message.

use cloudkeep_alerting::{Direction, FlapPolicy, Level, RuleParams};
use expect_test::expect;

use crate::support::{cpu, free_disk};

fn message(rule: &RuleParams) -> String {
    match rule.validate() {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    }
}

#[test]
fn valid_rules() {
    assert_eq!(cpu().validate(), Ok(()));
    assert_eq!(free_disk().validate(), Ok(()));
    let mut no_clear = cpu();
    no_clear.clear = None;
    assert_eq!(no_clear.validate(), Ok(()));
    let mut only_critical_below = free_disk();
    only_critical_below.warning = None;
    assert_eq!(only_critical_below.validate(), Ok(()));
    let mut flap = cpu();
    flap.flap = FlapPolicy::DEFAULT;
    assert_eq!(flap.validate(), Ok(()));
}

#[test]
fn every_error_names_its_field() {
    let mut cases: Vec<RuleParams> = Vec::new();
    let mut rule = cpu();
    rule.warning = None;
    rule.critical = None;
    cases.push(rule);
    let mut rule = cpu();
    rule.warning = Some(Level::new(f64::NAN, "cpu busy"));
    cases.push(rule);
    let mut rule = cpu();
    rule.critical = Some(Level::new(f64::INFINITY, "x"));
    cases.push(rule);
    let mut rule = cpu();
    rule.clear = Some(f64::NEG_INFINITY);
    cases.push(rule);
    let mut rule = cpu();
    rule.critical = Some(Level::new(95.0, " "));
    cases.push(rule);
    let mut rule = cpu();
    rule.critical = Some(Level::new(80.0, "cpu overloaded"));
    cases.push(rule);
    let mut rule = free_disk();
    rule.critical = Some(Level::new(30.0, "disk full"));
    cases.push(rule);
    let mut rule = cpu();
    rule.clear = Some(80.0);
    cases.push(rule);
    let mut rule = cpu();
    rule.warning = None;
    rule.clear = Some(96.0);
    cases.push(rule);
    let mut rule = free_disk();
    rule.clear = Some(15.0);
    cases.push(rule);
    let mut rule = cpu();
    rule.for_ms = -1;
    cases.push(rule);
    let mut rule = cpu();
    rule.no_data_after_ms = 0;
    cases.push(rule);
    let mut rule = cpu();
    rule.flap = FlapPolicy {
        window_ms: 1000,
        max_changes: 1,
    };
    cases.push(rule);
    let mut rule = cpu();
    rule.flap = FlapPolicy {
        window_ms: 1000,
        max_changes: 33,
    };
    cases.push(rule);
    let mut rule = cpu();
    rule.flap = FlapPolicy {
        window_ms: 0,
        max_changes: 6,
    };
    cases.push(rule);
    let mut rule = cpu();
    rule.direction = Direction::Below;
    cases.push(rule);
    let rendered: String = cases.iter().map(|rule| message(rule) + "\n").collect();
    expect![[r#"
        rule: at least one of warning and critical is required
        warning.threshold: must be a finite number, got NaN
        critical.threshold: must be a finite number, got inf
        clear: must be a finite number, got -inf
        critical.name: must not be empty
        critical.threshold: 80 must be above warning.threshold 80 (direction above)
        critical.threshold: 30 must be below warning.threshold 20 (direction below)
        clear: 80 must be below warning.threshold 80 (direction above): a raised rule returns to ok past it
        clear: 96 must be below critical.threshold 95 (direction above): a raised rule returns to ok past it
        clear: 15 must be above warning.threshold 20 (direction below): a raised rule returns to ok past it
        for_ms: must not be negative, got -1
        no_data_after_ms: must be greater than zero, got 0
        flap.max_changes: must be 0 (off) or between 2 and 32, got 1
        flap.max_changes: must be 0 (off) or between 2 and 32, got 33
        flap.window_ms: must be greater than zero when flap.max_changes is set, got 0
        critical.threshold: 95 must be below warning.threshold 80 (direction below)
    "#]].assert_eq(&rendered);
}

#[test]
fn flap_policy_on_its_own() {
    assert_eq!(FlapPolicy::OFF.validate(), Ok(()));
    assert_eq!(FlapPolicy::DEFAULT.validate(), Ok(()));
    assert_eq!(
        FlapPolicy {
            window_ms: -3,
            max_changes: 0
        }
        .validate(),
        Ok(())
    );
    assert!(
        FlapPolicy {
            window_ms: 1,
            max_changes: 32
        }
        .validate()
        .is_ok()
    );
    assert!(!FlapPolicy::OFF.is_enabled());
}
