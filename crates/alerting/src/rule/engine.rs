//! The event loop shared by threshold rules and checks: sample filtering, no-data and
//! flap-end timers, state changes and their transitions.

use super::flap;
use super::{FlapPolicy, PendingRaises, Reason, RuleState, Transition};
use cloudkeep_model::State;

/// What a judge decided for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Verdict<'params> {
    /// The state the sample leads to (equal to the effective state when nothing changes).
    pub state: State,
    /// Why, when `state` differs from the current one.
    pub reason: Reason,
    /// The threshold passed, in the metric's own units.
    pub threshold: Option<f64>,
    /// The level entered or left.
    pub level_name: Option<&'params str>,
}

impl Verdict<'_> {
    /// No change from `state`.
    pub(crate) fn stay(state: State) -> Verdict<'static> {
        Verdict {
            state,
            reason: Reason::Crossed,
            threshold: None,
            level_name: None,
        }
    }
}

/// Decides the state a sample leads to; the part that differs between thresholds and checks.
pub(crate) trait Judge {
    /// The verdict for the sample `(at_ms, value)` (never NaN) given the `effective` state,
    /// updating the pending raises.
    fn judge(
        &self,
        effective: State,
        pending: &mut PendingRaises,
        at_ms: i64,
        value: f64,
    ) -> Verdict<'_>;
}

/// The timer settings of a rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub no_data_after_ms: i64,
    pub flap: FlapPolicy,
}

/// Run `samples` then the timers up to `now_ms` through `judge`, starting from `previous`.
pub(crate) fn run<J: Judge>(
    judge: &J,
    timing: Timing,
    previous: &RuleState,
    samples: &[(i64, f64)],
    now_ms: i64,
) -> (RuleState, Vec<Transition>) {
    let mut state = previous.clone();
    let mut transitions = Vec::new();
    for &(sample_ms, value) in samples {
        if value.is_nan() {
            continue;
        }
        if state.last_sample_ms.is_some_and(|last| sample_ms <= last) {
            continue;
        }
        fire_timers(&mut state, &mut transitions, sample_ms, timing);
        let at_ms = sample_ms.max(state.evaluated_ms);
        state.evaluated_ms = at_ms;
        let resumed = state.no_data;
        let effective = if resumed {
            // Evaluation restarts from ok conditions: nothing pending, as if the rule were ok.
            state.no_data = false;
            state.pending = PendingRaises::default();
            State::Ok
        } else {
            state.state
        };
        let verdict = judge.judge(effective, &mut state.pending, sample_ms, value);
        state.last_value = Some(value);
        state.last_sample_ms = Some(sample_ms);
        if verdict.state != state.state {
            let reason = if resumed {
                Reason::DataResumed
            } else {
                verdict.reason
            };
            change_state(
                &mut state,
                &mut transitions,
                timing.flap,
                Change {
                    to: verdict.state,
                    at_ms,
                    value: Some(value),
                    threshold: verdict.threshold,
                    level_name: verdict.level_name,
                    reason,
                },
            );
        }
    }
    fire_timers(&mut state, &mut transitions, now_ms, timing);
    state.evaluated_ms = state.evaluated_ms.max(now_ms);
    if timing.flap.is_enabled() {
        // Canonical form: what is older than the window no longer matters (and pruning later or
        // earlier gives the same result, which keeps evaluation split invariant).
        state
            .recent_changes
            .prune(state.evaluated_ms, timing.flap.window_ms);
    } else {
        state.recent_changes.clear();
    }
    (state, transitions)
}

/// A state change about to be applied.
struct Change<'params> {
    to: State,
    at_ms: i64,
    value: Option<f64>,
    threshold: Option<f64>,
    level_name: Option<&'params str>,
    reason: Reason,
}

/// Apply a state change, record it for flap detection and emit its transition (and a
/// `FlapStart` marker when it starts flapping).
fn change_state(
    state: &mut RuleState,
    transitions: &mut Vec<Transition>,
    policy: FlapPolicy,
    change: Change<'_>,
) {
    let from = state.state;
    state.state = change.to;
    state.since_ms = change.at_ms;
    let mut starts_flapping = false;
    if policy.is_enabled() {
        let count = state
            .recent_changes
            .record(change.at_ms, policy.window_ms, policy.max_changes);
        if !state.flapping && count >= flap::effective_max_changes(policy.max_changes) {
            state.flapping = true;
            starts_flapping = true;
        }
    }
    transitions.push(Transition {
        from,
        to: change.to,
        at_ms: change.at_ms,
        value: change.value,
        threshold: change.threshold,
        level_name: change.level_name.map(str::to_owned),
        reason: change.reason,
        suppressed_by_flapping: state.flapping,
    });
    if starts_flapping {
        transitions.push(marker(state, change.at_ms, Reason::FlapStart));
    }
}

/// A flap marker carrying the current state and last value.
fn marker(state: &RuleState, at_ms: i64, reason: Reason) -> Transition {
    Transition {
        from: state.state,
        to: state.state,
        at_ms,
        value: state.last_value,
        threshold: None,
        level_name: None,
        reason,
        suppressed_by_flapping: false,
    }
}

/// Fire, in time order, every timer whose deadline is at or before `limit_ms`.
fn fire_timers(
    state: &mut RuleState,
    transitions: &mut Vec<Transition>,
    limit_ms: i64,
    timing: Timing,
) {
    // Each round disarms the timer it fires (no data stays set until a sample; flapping only
    // restarts on a state change, whose own end deadline lies after it), so this ends after at
    // most a few rounds.
    loop {
        let no_data_deadline = (!state.no_data).then(|| {
            state
                .last_sample_ms
                .unwrap_or(state.created_ms)
                .saturating_add(timing.no_data_after_ms)
        });
        let flap_end_deadline = state
            .flapping
            .then(|| flap::end_deadline(&state.recent_changes, timing.flap));
        match (no_data_deadline, flap_end_deadline) {
            // Ties: no data first, so a flap end sees the change it causes.
            (Some(no_data), flap_end)
                if no_data <= limit_ms && flap_end.is_none_or(|end| no_data <= end) =>
            {
                let at_ms = no_data.max(state.evaluated_ms);
                state.evaluated_ms = at_ms;
                state.no_data = true;
                state.pending = PendingRaises::default();
                if state.state != State::Unknown {
                    change_state(
                        state,
                        transitions,
                        timing.flap,
                        Change {
                            to: State::Unknown,
                            at_ms,
                            value: None,
                            threshold: None,
                            level_name: None,
                            reason: Reason::NoData,
                        },
                    );
                }
            }
            (_, Some(flap_end)) if flap_end <= limit_ms => {
                let at_ms = flap_end.max(state.evaluated_ms);
                state.evaluated_ms = at_ms;
                state.flapping = false;
                transitions.push(marker(state, at_ms, Reason::FlapEnd));
            }
            _ => break,
        }
    }
}
