//! `RuleParams::validate` and `FlapPolicy::validate`: the first problem found, naming the field.

use super::flap::MAX_FLAP_CHANGES;
use super::{FlapPolicy, Level, RuleParams};
use cloudkeep_model::Direction;

/// Why a rule's parameters are not usable. Messages name the field and say what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// Neither a warning nor a critical level.
    #[error("rule: at least one of warning and critical is required")]
    NoLevel,
    /// A threshold or clear point that is NaN or infinite.
    #[error("{field}: must be a finite number, got {value}")]
    NotFinite {
        /// `warning.threshold`, `critical.threshold` or `clear`.
        field: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A level without a name (notifications would say nothing).
    #[error("{field}: must not be empty")]
    EmptyLevelName {
        /// `warning.name` or `critical.name`.
        field: &'static str,
    },
    /// Critical is not beyond warning in the rule's direction.
    #[error(
        "critical.threshold: {critical} must be {side} warning.threshold {warning} (direction {direction})"
    )]
    LevelOrder {
        /// The rule's direction.
        direction: Direction,
        /// The warning threshold.
        warning: f64,
        /// The critical threshold.
        critical: f64,
        /// `above` or `below`: where critical must be.
        side: &'static str,
    },
    /// `clear` is not strictly on the good side of the lowest raise threshold.
    #[error(
        "clear: {clear} must be {side} {level}.threshold {threshold} (direction {direction}): a raised rule returns to ok past it"
    )]
    ClearOnBadSide {
        /// The rule's direction.
        direction: Direction,
        /// The clear point.
        clear: f64,
        /// `warning` or `critical`: the lowest level.
        level: &'static str,
        /// That level's threshold.
        threshold: f64,
        /// `below` or `above`: where clear must be.
        side: &'static str,
    },
    /// A negative `for_ms`.
    #[error("for_ms: must not be negative, got {0}")]
    NegativeFor(i64),
    /// `no_data_after_ms` not positive.
    #[error("no_data_after_ms: must be greater than zero, got {0}")]
    NoDataAfter(i64),
    /// `flap.max_changes` of 1 or above the capacity.
    #[error("flap.max_changes: must be 0 (off) or between 2 and {max}, got {value}")]
    FlapMaxChanges {
        /// The offending value.
        value: u32,
        /// [`MAX_FLAP_CHANGES`].
        max: u32,
    },
    /// Flap detection on with a window that is not positive.
    #[error("flap.window_ms: must be greater than zero when flap.max_changes is set, got {0}")]
    FlapWindow(i64),
}

fn finite(field: &'static str, value: f64) -> Result<(), RuleError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(RuleError::NotFinite { field, value })
    }
}

fn level(
    threshold_field: &'static str,
    name_field: &'static str,
    level: Option<&Level>,
) -> Result<(), RuleError> {
    if let Some(level) = level {
        finite(threshold_field, level.threshold)?;
        if level.name.trim().is_empty() {
            return Err(RuleError::EmptyLevelName { field: name_field });
        }
    }
    Ok(())
}

pub(super) fn rule_params(rule: &RuleParams) -> Result<(), RuleError> {
    if rule.warning.is_none() && rule.critical.is_none() {
        return Err(RuleError::NoLevel);
    }
    level("warning.threshold", "warning.name", rule.warning.as_ref())?;
    level(
        "critical.threshold",
        "critical.name",
        rule.critical.as_ref(),
    )?;
    let above = rule.direction.is_above();
    // `worse(a, b)`: a is strictly on the bad side of b.
    let worse = |a: f64, b: f64| if above { a > b } else { a < b };
    if let (Some(warning), Some(critical)) = (&rule.warning, &rule.critical)
        && !worse(critical.threshold, warning.threshold)
    {
        return Err(RuleError::LevelOrder {
            direction: rule.direction,
            warning: warning.threshold,
            critical: critical.threshold,
            side: if above { "above" } else { "below" },
        });
    }
    if let Some(clear) = rule.clear {
        finite("clear", clear)?;
        let (level_name, lowest) = match (&rule.warning, &rule.critical) {
            (Some(warning), _) => ("warning", warning),
            (None, Some(critical)) => ("critical", critical),
            (None, None) => return Err(RuleError::NoLevel),
        };
        if !worse(lowest.threshold, clear) {
            return Err(RuleError::ClearOnBadSide {
                direction: rule.direction,
                clear,
                level: level_name,
                threshold: lowest.threshold,
                side: if above { "below" } else { "above" },
            });
        }
    }
    if rule.for_ms < 0 {
        return Err(RuleError::NegativeFor(rule.for_ms));
    }
    if rule.no_data_after_ms <= 0 {
        return Err(RuleError::NoDataAfter(rule.no_data_after_ms));
    }
    flap_policy(&rule.flap)
}

pub(super) fn flap_policy(policy: &FlapPolicy) -> Result<(), RuleError> {
    if policy.max_changes == 1 || policy.max_changes > MAX_FLAP_CHANGES {
        return Err(RuleError::FlapMaxChanges {
            value: policy.max_changes,
            max: MAX_FLAP_CHANGES,
        });
    }
    if policy.max_changes > 0 && policy.window_ms <= 0 {
        return Err(RuleError::FlapWindow(policy.window_ms));
    }
    Ok(())
}
