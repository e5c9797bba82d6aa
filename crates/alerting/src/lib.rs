//! Alert rule evaluation, the shipped default rules and the state rollup: pure functions, no I/O.
//!
//! # Rules
//!
//! A [`RuleParams`] puts thresholds on one metric series. [`evaluate`] takes the rule, the
//! [`RuleState`] persisted after the previous call, the samples that arrived since, and the
//! current time, and returns the new state plus the [`Transition`]s that happened. It reads no
//! clock and does no I/O; calling it with the same arguments always gives the same answer.
//!
//! ## Crossing, levels and hysteresis
//!
//! - An [`Direction::Above`] rule is crossed by `value >= threshold`; a [`Direction::Below`] rule
//!   by `value <= threshold`. A rule has a warning level, a critical level or both.
//! - `clear` is where a raised rule returns to ok: strictly below it for above rules, strictly
//!   above it for below rules. It defaults to the lowest raise threshold (warning if there is
//!   one, else critical), which means no hysteresis.
//! - The *band* is the distance between the lowest raise threshold and `clear`. Critical
//!   de-escalates at `critical − band` (above; `critical + band` below): a critical rule stays
//!   critical while the value has not gone back past that point. Once it has, the rule becomes
//!   warning when the value has not gone back past `clear` (whether or not it still crosses the
//!   warning threshold: `[clear, warning)` is warning's own hold band), else ok. Without a
//!   warning level, critical holds until the value is back past `clear`.
//! - A warning rule stays warning while the value has not gone back past `clear` and does not
//!   (yet) qualify for critical.
//! - So a value moving only inside a band never changes the state: `[clear, warning)` keeps ok
//!   ok and warning warning, `[critical − band, critical)` keeps warning warning and critical
//!   critical.
//!
//! ## Raises need `for` / `consecutive`, recoveries do not
//!
//! A raise (ok→warning, ok→critical, warning→critical) waits until the level's condition
//! (`value` crosses that level's threshold) has held on every sample since it began, for at
//! least `for_ms` (sample timestamp minus the timestamp of the first crossing sample) **and** on
//! at least `consecutive` samples (0 and 1 both mean one sample). Warning and critical are each
//! pending from the sample where their own condition began; a sample that does not cross a
//! level cancels that level's pending raise. When both are ready on the same sample the rule
//! goes straight to critical; when warning's condition began earlier it may raise to warning
//! first. Time is only measured at samples: a pending raise does not complete between samples.
//! De-escalations and recoveries are immediate.
//!
//! ## Samples
//!
//! Samples must be given in timestamp order. A sample whose timestamp is not newer than the
//! last accepted sample (an older one, or a duplicate of the last timestamp) is ignored. NaN
//! values are ignored as if the sample never arrived: they neither refresh "last seen" nor
//! change state, so a series of only NaNs ends in no data. Infinities are ordinary values
//! (`+inf` crosses every above threshold).
//!
//! ## No data
//!
//! A rule becomes unknown ([`Reason::NoData`]) once `no_data_after_ms` have passed without an
//! accepted sample since the last one (or, before the first sample ever, since
//! [`RuleState::created_ms`]): at exactly `last_sample_ms + no_data_after_ms`, which is the
//! transition's `at_ms`. This is checked before every sample and at `now_ms`. Pending raises are
//! dropped. The next sample is evaluated as if the rule were ok with nothing pending; the
//! single resulting transition out of unknown has reason [`Reason::DataResumed`] (to ok, or to
//! a level whose raise needs no `for`/`consecutive`).
//!
//! A new rule ([`RuleState::new`]) starts ok, with no transition on its first ok sample.
//!
//! ## Flapping
//!
//! Every state change (not the flap markers themselves) is remembered for
//! [`FlapPolicy::window_ms`]. When a change makes the count of changes in the trailing window
//! `(t − window_ms, t]` reach `max_changes`, the rule is flapping: that change is emitted with
//! `suppressed_by_flapping = true`, followed by a [`Reason::FlapStart`] marker. While flapping,
//! changes are still applied and emitted, marked suppressed. Flapping ends at the moment the
//! count falls to `max_changes / 2` or below (when enough old changes leave the window), with a
//! [`Reason::FlapEnd`] marker carrying the then-current state and last value. Markers have
//! `from == to` and are never suppressed. `max_changes = 0` turns this off (a rule flapping
//! when it was turned off ends flapping at its next evaluation).
//!
//! ## Time never goes backwards
//!
//! Timers (no data, end of flapping) fire at their own deadline, before any sample with a later
//! or equal timestamp, and at `now_ms`. [`RuleState::evaluated_ms`] records how far evaluation
//! got; an event older than that (a late sample that arrives after the rule was already
//! declared no-data at an earlier `now_ms`, e.g. an agent's outbox backlog) is evaluated with
//! its own value and timestamp for `for`, but its transitions are stamped `evaluated_ms`, so
//! `since_ms` and transition times never decrease.
//!
//! As a consequence, evaluation is *split invariant*: feeding samples in one call or in several
//! calls gives the same final state and the same transitions, as long as each call's `now_ms`
//! is not later than the first sample of the next call.
//!
//! ## Checks
//!
//! [`evaluate_check_status`] serves checks that decide their own state (Nagios codes: 0 ok,
//! 1 warning, 2 critical, 3 unknown; any other value unknown, reason [`Reason::CheckUnknown`]).
//! Raises are immediate; samples, no data and flapping work as above.
//!
//! # Rollup
//!
//! [`rollup::rollup`] computes the worst state per host, platform, tenant, isv and cloud.

#![forbid(unsafe_code)]

pub mod decision;
pub mod defaults;
pub mod escalation;
pub mod grouping;
pub mod maintenance;
pub mod pattern;
pub mod policy_config;
pub mod ratelimit;
pub mod rollup;
pub mod routing;
pub mod rule;
pub mod silence;
pub mod watch;

pub use cloudkeep_model::{Direction, State};
pub use rule::{
    FlapPolicy, Level, Reason, RuleError, RuleParams, RuleState, Transition, evaluate,
    evaluate_check_status,
};
