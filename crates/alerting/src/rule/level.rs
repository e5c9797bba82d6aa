//! Threshold rules: crossing, hysteresis bands and pending raises, computed in a normalised
//! "badness" coordinate where higher is always worse.

use super::engine::{Judge, Verdict};
use super::{Level, Pending, PendingRaises, Reason, RuleParams};
use cloudkeep_model::{Direction, State};

/// One level in normalised coordinates.
#[derive(Debug, Clone, Copy)]
struct NormalisedLevel<'params> {
    /// `sign × threshold`: crossed when `sign × value >= at`.
    at: f64,
    level: &'params Level,
}

/// A rule's thresholds compiled for evaluation.
///
/// Every value is multiplied by `sign` (+1 above, −1 below) so that one set of comparisons
/// serves both directions: crossing is `x >= at`, clearing is `x < clear`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds<'params> {
    sign: f64,
    warning: Option<NormalisedLevel<'params>>,
    critical: Option<NormalisedLevel<'params>>,
    /// Normalised clear point: below it a raised rule is ok.
    clear: f64,
    /// Normalised de-escalation point of critical: `critical − band`, or `clear` without warning.
    critical_clear: f64,
    for_ms: i64,
    consecutive: u32,
}

impl<'params> Thresholds<'params> {
    pub(crate) fn compile(rule: &'params RuleParams) -> Thresholds<'params> {
        let sign = match rule.direction {
            Direction::Above => 1.0,
            Direction::Below => -1.0,
        };
        let normalise = |level: &'params Level| NormalisedLevel {
            at: sign * level.threshold,
            level,
        };
        let warning = rule.warning.as_ref().map(normalise);
        let critical = rule.critical.as_ref().map(normalise);
        // Without any level nothing is ever crossed; +inf keeps a stray raised state clearing.
        let clear = rule
            .effective_clear()
            .map_or(f64::INFINITY, |clear| sign * clear);
        let critical_clear = match (warning, critical) {
            (Some(warning), Some(critical)) => critical.at - (warning.at - clear),
            _ => clear,
        };
        Thresholds {
            sign,
            warning,
            critical,
            clear,
            critical_clear,
            for_ms: rule.for_ms,
            consecutive: rule.consecutive,
        }
    }

    /// The de-escalation point of critical in the metric's units, `None` without critical.
    pub(crate) fn critical_clear_value(&self) -> Option<f64> {
        self.critical.map(|_| self.sign * self.critical_clear)
    }

    /// Whether a pending raise has met both `for_ms` and `consecutive` at `at_ms`.
    fn ready(&self, pending: Option<Pending>, at_ms: i64) -> bool {
        pending.is_some_and(|pending| {
            at_ms.saturating_sub(pending.since_ms) >= self.for_ms
                && pending.samples >= self.consecutive.max(1)
        })
    }

    fn raise(&self, to: State, level: NormalisedLevel<'params>) -> Verdict<'params> {
        Verdict {
            state: to,
            reason: Reason::Crossed,
            threshold: Some(level.level.threshold),
            level_name: Some(&level.level.name),
        }
    }

    fn cleared(&self, left: Option<NormalisedLevel<'params>>) -> Verdict<'params> {
        Verdict {
            state: State::Ok,
            reason: Reason::Cleared,
            threshold: self.clear.is_finite().then_some(self.sign * self.clear),
            level_name: left.map(|level| level.level.name.as_str()),
        }
    }
}

/// Extend a crossing run with the sample at `at_ms`, or start one.
fn advance(pending: Option<Pending>, at_ms: i64) -> Pending {
    match pending {
        Some(pending) => Pending {
            since_ms: pending.since_ms,
            samples: pending.samples.saturating_add(1),
        },
        None => Pending {
            since_ms: at_ms,
            samples: 1,
        },
    }
}

impl Judge for Thresholds<'_> {
    fn judge(
        &self,
        effective: State,
        pending: &mut PendingRaises,
        at_ms: i64,
        value: f64,
    ) -> Verdict<'_> {
        let x = self.sign * value;
        // Each level's run continues only while its own threshold is crossed.
        pending.warning = self
            .warning
            .filter(|warning| x >= warning.at)
            .map(|_| advance(pending.warning, at_ms));
        pending.critical = self
            .critical
            .filter(|critical| x >= critical.at)
            .map(|_| advance(pending.critical, at_ms));
        let critical_ready = self
            .critical
            .filter(|_| self.ready(pending.critical, at_ms));
        let warning_ready = self.warning.filter(|_| self.ready(pending.warning, at_ms));
        match effective {
            State::Critical => {
                if self.critical.is_some() && x >= self.critical_clear {
                    Verdict::stay(State::Critical)
                } else if let Some(warning) = self.warning.filter(|_| x >= self.clear) {
                    Verdict {
                        state: State::Warning,
                        reason: Reason::Deescalated,
                        threshold: self.critical_clear_value(),
                        level_name: Some(&warning.level.name),
                    }
                } else {
                    self.cleared(self.critical)
                }
            }
            State::Warning => {
                if let Some(critical) = critical_ready {
                    self.raise(State::Critical, critical)
                } else if self.warning.is_some() && x >= self.clear {
                    Verdict::stay(State::Warning)
                } else {
                    self.cleared(self.warning)
                }
            }
            // Unknown is only seen here for a state persisted by a check: evaluate it as ok.
            State::Ok | State::Unknown => {
                if let Some(critical) = critical_ready {
                    self.raise(State::Critical, critical)
                } else if let Some(warning) = warning_ready {
                    self.raise(State::Warning, warning)
                } else if effective == State::Unknown {
                    self.cleared(None)
                } else {
                    Verdict::stay(State::Ok)
                }
            }
        }
    }
}
