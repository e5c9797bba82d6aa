//! The notifier's brain: whether one alert event is notified, or why not.
//!
//! Pure: the caller gathers the facts (the transition, flapping, windows, silences, acknowledgement, what was
//! last told) and acts on the answer. Suppressed events are still recorded by the caller; only the
//! notification is skipped.

use crate::maintenance::MaintenanceWindow;
use crate::routing::AlertContext;
use crate::silence::Silence;
use cloudkeep_model::State;

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The alert.
    pub alert: &'a AlertContext,
    /// The state the alert moves to (for a reminder, escalation or window-end re-notification: its current state).
    pub transition_to: State,
    /// The state it leaves; equal to `transition_to` for a re-notification without a state change.
    pub transition_from: State,
    /// The rule evaluation judged the monitor to be flapping and asks not to notify.
    pub suppressed_by_flapping: bool,
    /// Every maintenance window (active or not; `decide` checks scope and time).
    pub maintenance: &'a [MaintenanceWindow],
    /// Every silence (expired ones are ignored).
    pub silences: &'a [Silence],
    /// Someone acknowledged the alert.
    pub acked: bool,
    /// The state last notified for this alert, `None` if nobody was ever told about it.
    pub last_notified: Option<State>,
    /// Now (Unix milliseconds).
    pub now_ms: i64,
}

/// What to do with an alert event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Notify its recipients.
    Notify,
    /// Not now: a maintenance window (this id) covers it; it is re-notified at the window's end if still bad.
    SuppressedMaintenance(String),
    /// Not now: a silence (this id) matches it.
    SuppressedSilence(String),
    /// Not now: the monitor is flapping.
    SuppressedFlapping,
    /// Not again: it was acknowledged and its state has not changed.
    SuppressedAcked,
    /// Nothing new to tell: the recovery of an alert nobody was told about, or a state already notified.
    NothingToTell,
}

/// Decides whether an alert event is notified.
///
/// In order:
/// - a re-notification (`transition_from == transition_to`: reminder, escalation, end of a maintenance window)
///   of an `ok` alert tells nothing; of an acknowledged alert, it is suppressed (an acknowledgement holds until
///   the state changes);
/// - a state change to the state last notified tells nothing new (e.g. warning → critical during maintenance →
///   warning again);
/// - a recovery (to `ok`) is notified if its problem was notified, unless a silence matches; neither
///   maintenance nor flapping holds it back, so that whoever was told about the problem learns it is over;
///   a recovery of a problem nobody was told about tells nothing;
/// - anything else is held back by a matching silence, then an active maintenance window covering it, then
///   flapping; otherwise notified. A state change is notified even if the alert was acknowledged.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let is_renotification = input.transition_from == input.transition_to;
    if is_renotification {
        if input.transition_to == State::Ok {
            return Decision::NothingToTell;
        }
        if input.acked {
            return Decision::SuppressedAcked;
        }
    } else if input.last_notified == Some(input.transition_to) {
        return Decision::NothingToTell;
    }

    if let Some(silence) =
        crate::silence::matching_silence(input.silences, input.alert, input.now_ms)
    {
        return Decision::SuppressedSilence(silence.id.clone());
    }

    if input.transition_to == State::Ok {
        let problem_was_notified = input.last_notified.is_some_and(|state| state != State::Ok);
        return if problem_was_notified {
            Decision::Notify
        } else {
            Decision::NothingToTell
        };
    }

    if let Some(window) = active_window(input.maintenance, input.alert, input.now_ms) {
        return Decision::SuppressedMaintenance(window.id.clone());
    }
    if input.suppressed_by_flapping {
        return Decision::SuppressedFlapping;
    }
    Decision::Notify
}

/// The first maintenance window that covers the alert and is active at `now_ms`.
pub fn active_window<'a>(
    windows: &'a [MaintenanceWindow],
    alert: &AlertContext,
    now_ms: i64,
) -> Option<&'a MaintenanceWindow> {
    windows
        .iter()
        .find(|window| window.covers(alert) && window.is_active(now_ms))
}

#[cfg(test)]
mod tests;
