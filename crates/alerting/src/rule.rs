//! Rule parameters, the persisted per-series `RuleState`, transitions, and the two entry points
//! `evaluate` (thresholds) and `evaluate_check_status` (Nagios codes). Semantics: crate docs.

mod check;
mod engine;
mod flap;
mod level;
mod validate;

use serde::{Deserialize, Serialize};

use cloudkeep_model::{Direction, State};

pub use flap::{ChangeTimes, MAX_FLAP_CHANGES};
pub use validate::RuleError;

/// A compiled rule: thresholds on one metric series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleParams {
    /// Whether high ([`Direction::Above`]) or low ([`Direction::Below`]) values are bad.
    pub direction: Direction,
    /// The warning level; at least one of `warning` and `critical` is required.
    pub warning: Option<Level>,
    /// The critical level; beyond `warning` in the rule's direction.
    pub critical: Option<Level>,
    /// Hysteresis: once raised, the state drops to ok only when the value is back past `clear`
    /// (strictly below it for above rules, strictly above for below rules). `None`: the lowest
    /// raise threshold (no hysteresis). When set, it must be strictly on the good side of it.
    pub clear: Option<f64>,
    /// A raise (ok→warning, ok→critical, warning→critical) needs the level's condition to hold
    /// continuously for this long, measured between sample timestamps (0 = immediately) …
    pub for_ms: i64,
    /// … and for this many consecutive samples (0 and 1 = the first crossing sample suffices).
    /// When both are set the later of the two wins.
    pub consecutive: u32,
    /// No accepted sample for this long → unknown ("no data"). Typically 3 × the monitor interval.
    pub no_data_after_ms: i64,
    /// When a rule changing state too often is reported as flapping instead of paging each change.
    pub flap: FlapPolicy,
}

/// One threshold level of a rule, e.g. `80.0`, `"cpu busy"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// The value at which the level is crossed (`>=` for above rules, `<=` for below rules).
    pub threshold: f64,
    /// A short human description of what crossing it means, used in notifications.
    pub name: String,
}

impl Level {
    /// A level crossed at `threshold`, described as `name`.
    pub fn new(threshold: f64, name: impl Into<String>) -> Level {
        Level {
            threshold,
            name: name.into(),
        }
    }
}

/// Flap detection: too many state changes in a trailing window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapPolicy {
    /// Length of the trailing window in which changes are counted, e.g. 10 minutes.
    pub window_ms: i64,
    /// Changes within the window that start flapping, e.g. 6; 0 turns flap detection off.
    /// At most [`MAX_FLAP_CHANGES`].
    pub max_changes: u32,
}

impl FlapPolicy {
    /// Flap detection turned off.
    pub const OFF: FlapPolicy = FlapPolicy {
        window_ms: 0,
        max_changes: 0,
    };

    /// The shipped default: 6 changes within 10 minutes.
    pub const DEFAULT: FlapPolicy = FlapPolicy {
        window_ms: 10 * 60 * 1000,
        max_changes: 6,
    };

    /// Whether flap detection is on (`max_changes > 0`).
    pub fn is_enabled(&self) -> bool {
        self.max_changes > 0
    }

    /// Check the policy on its own: `max_changes` is 0 or within `2..=MAX_FLAP_CHANGES`, and
    /// the window is positive when detection is on.
    pub fn validate(&self) -> Result<(), RuleError> {
        validate::flap_policy(self)
    }
}

impl Default for FlapPolicy {
    fn default() -> FlapPolicy {
        FlapPolicy::DEFAULT
    }
}

impl RuleParams {
    /// Check that the rule makes sense; the first problem found is returned, naming the field.
    ///
    /// Thresholds and `clear` are finite; at least one level; level names not empty; warning
    /// below critical for above rules (above it for below rules); `clear` strictly on the good
    /// side of the lowest raise threshold; `for_ms >= 0`; `no_data_after_ms > 0`; a valid
    /// [`FlapPolicy`].
    pub fn validate(&self) -> Result<(), RuleError> {
        validate::rule_params(self)
    }

    /// The effective clear point: `clear`, else the lowest raise threshold (warning if present,
    /// else critical); `None` when the rule has no level at all.
    pub fn effective_clear(&self) -> Option<f64> {
        self.clear.or_else(|| {
            self.warning
                .as_ref()
                .or(self.critical.as_ref())
                .map(|level| level.threshold)
        })
    }

    /// The point past which a critical rule de-escalates: `critical ∓ band` where band is the
    /// distance between the lowest raise threshold and the clear point (the clear point itself
    /// without a warning level); `None` without a critical level.
    pub fn critical_clear(&self) -> Option<f64> {
        level::Thresholds::compile(self).critical_clear_value()
    }
}

/// A raise waiting for its `for` / `consecutive` requirement: the level's condition has held
/// on every accepted sample since `since_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Timestamp of the first sample of the current crossing run.
    pub since_ms: i64,
    /// Number of consecutive crossing samples so far.
    pub samples: u32,
}

/// The pending raises of a threshold rule, one per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PendingRaises {
    /// Warning's condition run, when the last sample crossed warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Pending>,
    /// Critical's condition run, when the last sample crossed critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Pending>,
}

/// Everything evaluation remembers about one rule on one series between calls.
///
/// Serializable so the server can persist it as JSON across restarts; fields added later are
/// `#[serde(default)]`. It owns no heap memory (the recent change times are a fixed-capacity
/// array), so cloning it is a plain copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The current state.
    pub state: State,
    /// When the current state began (the `at_ms` of the transition into it, or `created_ms`).
    pub since_ms: i64,
    /// The value of the last accepted sample, kept through no data. Non-finite values are
    /// persisted as JSON `null` (serde_json cannot represent them) and read back as `None`.
    pub last_value: Option<f64>,
    /// The timestamp of the last accepted sample; samples not newer than it are ignored.
    pub last_sample_ms: Option<i64>,
    /// When the rule state was created; before the first sample, no data is counted from here.
    pub created_ms: i64,
    /// Whether the rule is unknown because samples stopped (as opposed to a check reporting
    /// unknown itself).
    #[serde(default)]
    pub no_data: bool,
    /// Whether the rule is flapping: its changes are marked `suppressed_by_flapping`.
    #[serde(default)]
    pub flapping: bool,
    /// How far evaluation got: the latest sample timestamp or `now_ms` seen. Transitions are
    /// never stamped earlier than this.
    #[serde(default)]
    pub evaluated_ms: i64,
    /// Raises waiting for `for` / `consecutive`.
    #[serde(default)]
    pub pending: PendingRaises,
    /// Times of the recent state changes, for flap detection.
    #[serde(default)]
    pub recent_changes: ChangeTimes,
}

impl RuleState {
    /// A fresh rule: ok since `now_ms`, never sampled, not flapping. Its first ok sample is no
    /// transition; it becomes unknown only when no sample arrives within `no_data_after_ms`.
    pub fn new(now_ms: i64) -> RuleState {
        RuleState {
            state: State::Ok,
            since_ms: now_ms,
            last_value: None,
            last_sample_ms: None,
            created_ms: now_ms,
            no_data: false,
            flapping: false,
            evaluated_ms: now_ms,
            pending: PendingRaises::default(),
            recent_changes: ChangeTimes::default(),
        }
    }

    /// Since when a raise to `level` (warning or critical) has been pending, if it is.
    pub fn pending_since(&self, level: State) -> Option<i64> {
        match level {
            State::Warning => self.pending.warning.map(|pending| pending.since_ms),
            State::Critical => self.pending.critical.map(|pending| pending.since_ms),
            State::Ok | State::Unknown => None,
        }
    }
}

/// Something that happened to a rule: a state change or a flap marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The state before. Equal to `to` for the flap markers.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened (a sample timestamp or a timer deadline; see the crate docs).
    pub at_ms: i64,
    /// The sample value that caused it; the last value for flap markers; `None` for no data.
    pub value: Option<f64>,
    /// The threshold passed: the level's threshold for a raise, the de-escalation point
    /// (`critical ∓ band`) for [`Reason::Deescalated`], the clear point for [`Reason::Cleared`];
    /// `None` for checks, no data and flap markers.
    pub threshold: Option<f64>,
    /// The name of the level entered (raise, de-escalation, data resumed into a level) or left
    /// (cleared); `None` for checks, no data and flap markers.
    pub level_name: Option<String>,
    /// Why it happened.
    pub reason: Reason,
    /// The rule is flapping: record this change but do not page for it.
    pub suppressed_by_flapping: bool,
}

/// Why a [`Transition`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A level was raised: ok→warning, ok→critical, warning→critical (checks also from unknown).
    Crossed,
    /// Back to ok: the value went back past the clear point (checks: code 0).
    Cleared,
    /// Critical→warning: the value went back past the de-escalation point (checks: code 1).
    Deescalated,
    /// No sample for `no_data_after_ms`: → unknown.
    NoData,
    /// The first sample after no data: unknown → what that sample gives.
    DataResumed,
    /// A check reported unknown (code 3) or an invalid code.
    CheckUnknown,
    /// Flapping started (marker, `from == to`).
    FlapStart,
    /// Flapping ended (marker carrying the current state).
    FlapEnd,
}

/// Pure: the new state and what changed, for the samples `(timestamp_ms, value)` that arrived
/// since the last call, evaluated up to `now_ms`. See the crate docs for the semantics.
///
/// Allocates nothing when nothing changes (the returned `Vec` is then empty and unallocated).
#[must_use = "the new state must be persisted for the next call"]
pub fn evaluate(
    rule: &RuleParams,
    previous: &RuleState,
    samples: &[(i64, f64)],
    now_ms: i64,
) -> (RuleState, Vec<Transition>) {
    let judge = level::Thresholds::compile(rule);
    engine::run(
        &judge,
        engine::Timing {
            no_data_after_ms: rule.no_data_after_ms,
            flap: rule.flap,
        },
        previous,
        samples,
        now_ms,
    )
}

/// Pure: like [`evaluate`] for a check that decides its own state. Each sample's value is a
/// Nagios code: 0 ok, 1 warning, 2 critical, 3 unknown, anything else unknown. Every change is
/// immediate; no data and flapping work as for [`evaluate`].
#[must_use = "the new state must be persisted for the next call"]
pub fn evaluate_check_status(
    previous: &RuleState,
    samples: &[(i64, f64)],
    now_ms: i64,
    no_data_after_ms: i64,
    flap: FlapPolicy,
) -> (RuleState, Vec<Transition>) {
    engine::run(
        &check::CheckStatus,
        engine::Timing {
            no_data_after_ms,
            flap,
        },
        previous,
        samples,
        now_ms,
    )
}
