//! Checks that decide their own state: a Nagios exit code per sample, every change immediate.

use super::engine::{Judge, Verdict};
use super::{PendingRaises, Reason};
use cloudkeep_model::State;

/// The judge of `evaluate_check_status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckStatus;

/// The state a Nagios code stands for: 0 ok, 1 warning, 2 critical; 3 and anything else
/// (negative, fractional, infinite) unknown.
pub(crate) fn state_of_code(code: f64) -> State {
    if code == 0.0 {
        State::Ok
    } else if code == 1.0 {
        State::Warning
    } else if code == 2.0 {
        State::Critical
    } else {
        State::Unknown
    }
}

impl Judge for CheckStatus {
    fn judge(
        &self,
        effective: State,
        pending: &mut PendingRaises,
        _at_ms: i64,
        value: f64,
    ) -> Verdict<'_> {
        // Checks raise immediately: nothing is ever pending.
        *pending = PendingRaises::default();
        let to = state_of_code(value);
        let reason = match (effective, to) {
            (_, State::Ok) => Reason::Cleared,
            (_, State::Unknown) => Reason::CheckUnknown,
            (State::Critical, State::Warning) => Reason::Deescalated,
            _ => Reason::Crossed,
        };
        Verdict {
            state: to,
            reason,
            threshold: None,
            level_name: None,
        }
    }
}
