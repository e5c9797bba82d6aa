//! Maintenance windows: what they cover, when they are active, and their start/end transitions over any time range.
//!
//! A window is one-off (`[start_ms, end_ms)`) or recurring (a cron expression evaluated in a time zone, each
//! occurrence lasting `duration_ms`). Occurrences that overlap or touch merge into one span: the window is
//! active from the first start to the last end, with one `Started` and one `Ended` transition.
//!
//! Cron times are local wall-clock times. Across DST (via `jiff`'s "compatible" disambiguation): a time that
//! does not exist (the spring-forward gap) starts one gap length later, e.g. 01:30 on the day London jumps from
//! 01:00 to 02:00 becomes 02:30 BST; a time that exists twice (autumn fold) starts once, at the first.

pub mod cron;

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::routing::AlertContext;
use cloudkeep_model::State;

pub use cron::{CronError, CronField, CronSchedule};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Shortest recurring occurrence.
pub const MIN_RECURRING_DURATION_MS: i64 = MINUTE_MS;
/// Longest recurring occurrence (31 days); longer maintenance is a one-off window.
pub const MAX_RECURRING_DURATION_MS: i64 = 31 * DAY_MS;
/// `transitions_between` reports transitions of at most this long before `to_ms` (366 days): a worker passes
/// its last tick, and a first run should pass `now` minus a small margin rather than the epoch.
pub const MAX_TRANSITION_LOOKBACK_MS: i64 = 366 * DAY_MS;
/// How far `next_start` looks ahead (9 years: `0 0 29 2 *` can be 8 years apart, across 2100).
const NEXT_START_HORIZON_MS: i64 = 9 * 366 * DAY_MS;
/// How far `active_span` follows a chain of overlapping occurrences either way before it stops looking.
const SPAN_SEARCH_LIMIT_MS: i64 = 400 * DAY_MS;
/// Validation scans this many days of a recurring schedule for a gap between occurrences (8 years: every
/// leap-day pattern of a 5-field cron shows up within it).
const GAP_SCAN_DAYS: i64 = 8 * 366;

/// A maintenance window: while it is active, alerts it covers are not notified (the events are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMaintenanceWindow", into = "RawMaintenanceWindow")]
pub struct MaintenanceWindow {
    /// Identifier, unique among windows (set by the store).
    pub id: String,
    /// What the window covers.
    pub scope: Scope,
    /// When it is active.
    pub schedule: Schedule,
    /// Why, shown with suppressed alerts and in events.
    pub comment: String,
}

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// Every host of a cloud, and platform-wide alerts of platforms in it.
    Cloud(String),
    /// Every host of a platform, and its platform-wide alerts.
    Platform(String),
    /// One host of a platform.
    Host {
        /// The platform of the host.
        platform: String,
        /// The host.
        host: String,
    },
}

/// When a maintenance window is active; build it with [`Schedule::one_off`] or [`Schedule::recurring`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Once, over `[start_ms, end_ms)`.
    OneOff(OneOff),
    /// At each occurrence of a cron expression in a time zone, for a fixed duration.
    Recurring(Recurring),
}

/// A validated one-off schedule: `start_ms < end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OneOff {
    start_ms: i64,
    end_ms: i64,
}

/// A validated recurring schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurring {
    cron: CronSchedule,
    duration_ms: i64,
    timezone: TimeZone,
    timezone_name: String,
    until_ms: Option<i64>,
}

/// A maintenance window becoming active or inactive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The window became active (the first instant of its span).
    Started,
    /// The window became inactive (the first instant after its span).
    Ended,
}

/// Why a maintenance window was rejected; the path is relative to the window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceError {
    /// `id` is empty.
    #[error("id: must not be empty")]
    EmptyId,
    /// A one-off window that ends before it starts.
    #[error("schedule.one_off: end_ms {end_ms} is not after start_ms {start_ms}")]
    EmptyOneOff {
        /// Start as given.
        start_ms: i64,
        /// End as given.
        end_ms: i64,
    },
    /// The cron expression is malformed.
    #[error("schedule.recurring.cron: {0}")]
    Cron(#[from] CronError),
    /// A duration outside 1 minute..=31 days.
    #[error(
        "schedule.recurring.duration_ms: {0} is out of range: use 60000 (1 minute) to 2678400000 (31 days)"
    )]
    DurationOutOfRange(i64),
    /// Occurrences always overlap, so the window would never end.
    #[error(
        "schedule.recurring: occurrences of {cron:?} are never more than duration_ms {duration_ms} apart, so the window would never end; shorten the duration"
    )]
    NeverEnds {
        /// The cron expression.
        cron: String,
        /// The duration given.
        duration_ms: i64,
    },
    /// Not an IANA time zone in the bundled database.
    #[error(
        "schedule.recurring.timezone: unknown time zone {0:?}: use an IANA name such as UTC or Europe/London"
    )]
    UnknownTimeZone(String),
}

/// The serialized form of a [`MaintenanceWindow`] (JSON in the API and the store); validated on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenanceWindow {
    /// Identifier, unique among windows.
    pub id: String,
    /// What the window covers: `{"cloud": "gc-uk1"}`, `{"platform": "acme-prod"}` or
    /// `{"host": {"platform": "acme-prod", "host": "db1"}}`.
    pub scope: Scope,
    /// When it is active.
    pub schedule: RawSchedule,
    /// Why, shown with suppressed alerts and in events.
    #[serde(default)]
    pub comment: String,
}

/// The serialized form of a [`Schedule`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSchedule {
    /// Once, over `[start_ms, end_ms)` (Unix milliseconds).
    OneOff {
        /// First instant of the window.
        start_ms: i64,
        /// First instant after the window.
        end_ms: i64,
    },
    /// At each occurrence of `cron` in `timezone`, for `duration_ms`.
    Recurring {
        /// Five-field cron expression in local time, e.g. `0 2 * * SUN` (Sundays at 02:00).
        cron: String,
        /// Length of each occurrence in milliseconds (1 minute to 31 days).
        duration_ms: i64,
        /// IANA time zone of the cron expression (default `UTC`).
        #[serde(default = "utc_name")]
        timezone: String,
        /// No occurrence starts at or after this instant; one already running finishes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<i64>,
    },
}

fn utc_name() -> String {
    "UTC".to_owned()
}

impl TryFrom<RawMaintenanceWindow> for MaintenanceWindow {
    type Error = MaintenanceError;

    fn try_from(raw: RawMaintenanceWindow) -> Result<Self, Self::Error> {
        if raw.id.is_empty() {
            return Err(MaintenanceError::EmptyId);
        }
        let schedule = match raw.schedule {
            RawSchedule::OneOff { start_ms, end_ms } => Schedule::one_off(start_ms, end_ms)?,
            RawSchedule::Recurring {
                cron,
                duration_ms,
                timezone,
                until_ms,
            } => Schedule::recurring(&cron, duration_ms, &timezone, until_ms)?,
        };
        Ok(MaintenanceWindow {
            id: raw.id,
            scope: raw.scope,
            schedule,
            comment: raw.comment,
        })
    }
}

impl From<MaintenanceWindow> for RawMaintenanceWindow {
    fn from(window: MaintenanceWindow) -> Self {
        let schedule = match window.schedule {
            Schedule::OneOff(one_off) => RawSchedule::OneOff {
                start_ms: one_off.start_ms,
                end_ms: one_off.end_ms,
            },
            Schedule::Recurring(recurring) => RawSchedule::Recurring {
                cron: recurring.cron.as_str().to_owned(),
                duration_ms: recurring.duration_ms,
                timezone: recurring.timezone_name,
                until_ms: recurring.until_ms,
            },
        };
        RawMaintenanceWindow {
            id: window.id,
            scope: window.scope,
            schedule,
            comment: window.comment,
        }
    }
}

impl Schedule {
    /// A one-off schedule over `[start_ms, end_ms)`.
    pub fn one_off(start_ms: i64, end_ms: i64) -> Result<Schedule, MaintenanceError> {
        if start_ms >= end_ms {
            return Err(MaintenanceError::EmptyOneOff { start_ms, end_ms });
        }
        Ok(Schedule::OneOff(OneOff { start_ms, end_ms }))
    }

    /// A recurring schedule: each occurrence of `cron` in `timezone` (an IANA name) lasts `duration_ms`;
    /// no occurrence starts at or after `until_ms`.
    pub fn recurring(
        cron: &str,
        duration_ms: i64,
        timezone: &str,
        until_ms: Option<i64>,
    ) -> Result<Schedule, MaintenanceError> {
        let cron = CronSchedule::parse(cron)?;
        if !(MIN_RECURRING_DURATION_MS..=MAX_RECURRING_DURATION_MS).contains(&duration_ms) {
            return Err(MaintenanceError::DurationOutOfRange(duration_ms));
        }
        let zone = TimeZone::get(timezone)
            .map_err(|_| MaintenanceError::UnknownTimeZone(timezone.to_owned()))?;
        if longest_civil_gap_ms(&cron) <= duration_ms {
            return Err(MaintenanceError::NeverEnds {
                cron: cron.as_str().to_owned(),
                duration_ms,
            });
        }
        Ok(Schedule::Recurring(Recurring {
            cron,
            duration_ms,
            timezone: zone,
            timezone_name: timezone.to_owned(),
            until_ms,
        }))
    }
}

impl OneOff {
    /// First instant of the window.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// First instant after the window.
    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }
}

impl Recurring {
    /// The cron expression.
    pub fn cron(&self) -> &CronSchedule {
        &self.cron
    }

    /// Length of each occurrence in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.duration_ms
    }

    /// IANA name of the time zone.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// No occurrence starts at or after this instant.
    pub fn until_ms(&self) -> Option<i64> {
        self.until_ms
    }

    /// Every occurrence start `s` with `from_ms <= s <= to_ms` (and `s < until_ms`), sorted, without duplicates.
    pub fn starts_between(&self, from_ms: i64, to_ms: i64) -> Vec<i64> {
        let to_ms = match self.until_ms {
            Some(until_ms) => to_ms.min(until_ms.saturating_sub(1)),
            None => to_ms,
        };
        if from_ms > to_ms {
            return Vec::new();
        }
        // A day of slack either side: a local date's times can map up to a day (in practice hours) away
        // from the UTC range, and gap times are shifted forward.
        let (Some(first_date), Some(last_date)) = (
            self.local_date(from_ms.saturating_sub(DAY_MS)),
            self.local_date(to_ms.saturating_add(DAY_MS)),
        ) else {
            return Vec::new();
        };
        let mut starts = Vec::new();
        let mut date = first_date;
        while date <= last_date {
            if self.cron.matches_date(date) {
                for (hour, minute) in self.cron.times_of_day() {
                    let Ok(timestamp) = self.timezone.to_timestamp(date.at(hour, minute, 0, 0))
                    else {
                        continue;
                    };
                    let start_ms = timestamp.as_millisecond();
                    if (from_ms..=to_ms).contains(&start_ms) {
                        starts.push(start_ms);
                    }
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// The local date of an instant, clamped to jiff's range; `None` only if the range is unusable.
    fn local_date(&self, at_ms: i64) -> Option<Date> {
        let clamped = at_ms.clamp(
            Timestamp::MIN.as_millisecond().saturating_add(DAY_MS),
            Timestamp::MAX.as_millisecond().saturating_sub(DAY_MS),
        );
        let timestamp = Timestamp::from_millisecond(clamped).ok()?;
        Some(self.timezone.to_datetime(timestamp).date())
    }

    /// The merged spans of the occurrences starting in `[from_ms, to_ms]`.
    fn spans_of_starts_between(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        merge_occurrences(&self.starts_between(from_ms, to_ms), self.duration_ms)
    }
}

/// Merges occurrences `[start, start + duration)` (starts sorted) into disjoint, non-touching spans.
fn merge_occurrences(starts: &[i64], duration_ms: i64) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &start in starts {
        let end = start.saturating_add(duration_ms);
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// The longest time between one occurrence and the next in local civil time, over [`GAP_SCAN_DAYS`] days.
///
/// A window whose duration is at least this long would chain occurrences into one span that never ends.
/// DST can stretch or shrink one gap a year by an hour, which only makes a finite span longer or shorter.
fn longest_civil_gap_ms(cron: &CronSchedule) -> i64 {
    let times: Vec<i64> = cron
        .times_of_day()
        .map(|(hour, minute)| i64::from(hour) * 60 + i64::from(minute))
        .collect();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return 0;
    };
    let within_day = times
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] => Some(b - a),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut longest_minutes = within_day;
    let mut previous_last: Option<i64> = None;
    let mut date = Date::constant(2026, 1, 1);
    for day in 0..GAP_SCAN_DAYS {
        if cron.matches_date(date) {
            let day_start = day * 1440;
            if let Some(previous) = previous_last {
                longest_minutes = longest_minutes.max(day_start + first - previous);
            }
            previous_last = Some(day_start + last);
        }
        let Ok(next) = date.tomorrow() else { break };
        date = next;
    }
    longest_minutes.saturating_mul(MINUTE_MS)
}

impl MaintenanceWindow {
    /// Whether the window is active at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        match &self.schedule {
            Schedule::OneOff(one_off) => one_off.start_ms <= now_ms && now_ms < one_off.end_ms,
            Schedule::Recurring(recurring) => !recurring
                .starts_between(
                    now_ms
                        .saturating_sub(recurring.duration_ms)
                        .saturating_add(1),
                    now_ms,
                )
                .is_empty(),
        }
    }

    /// The span `[start_ms, end_ms)` the window is in at `now_ms`, `None` when inactive.
    ///
    /// Overlapping occurrences are merged into one span; a chain of them is followed up to 400 days either way.
    pub fn active_span(&self, now_ms: i64) -> Option<(i64, i64)> {
        match &self.schedule {
            Schedule::OneOff(one_off) => self
                .is_active(now_ms)
                .then_some((one_off.start_ms, one_off.end_ms)),
            Schedule::Recurring(recurring) => {
                let duration = recurring.duration_ms;
                let mut reach = duration.saturating_mul(2);
                loop {
                    let spans = recurring.spans_of_starts_between(
                        now_ms.saturating_sub(reach),
                        now_ms.saturating_add(reach),
                    );
                    let (start, end) = spans
                        .into_iter()
                        .find(|(start, end)| *start <= now_ms && now_ms < *end)?;
                    // The span is complete when no occurrence that could extend it lies outside what we looked at.
                    let complete = start.saturating_sub(duration) >= now_ms.saturating_sub(reach)
                        && end <= now_ms.saturating_add(reach);
                    if complete || reach >= SPAN_SEARCH_LIMIT_MS {
                        return Some((start, end));
                    }
                    reach = reach.saturating_mul(4).min(SPAN_SEARCH_LIMIT_MS);
                }
            }
        }
    }

    /// The first instant after `after_ms` at which the window becomes active (a `Started` transition).
    ///
    /// While a span is active this is the start of the next span, not of the current one. `None` when the
    /// window never starts again (a past one-off window, `until_ms` reached, or nothing within 9 years).
    pub fn next_start(&self, after_ms: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::OneOff(one_off) => (one_off.start_ms > after_ms).then_some(one_off.start_ms),
            Schedule::Recurring(recurring) => {
                let horizon = after_ms.saturating_add(NEXT_START_HORIZON_MS);
                let mut from = after_ms;
                let mut chunk = recurring.duration_ms.saturating_mul(2).max(8 * DAY_MS);
                while from < horizon {
                    if recurring.until_ms.is_some_and(|until_ms| from >= until_ms) {
                        return None;
                    }
                    let to = from.saturating_add(chunk).min(horizon);
                    let started = self
                        .transitions_unbounded(from, to)
                        .into_iter()
                        .find(|(_, transition)| *transition == Transition::Started);
                    if let Some((at, _)) = started {
                        return Some(at);
                    }
                    from = to;
                    chunk = chunk.saturating_mul(2).min(366 * DAY_MS);
                }
                None
            }
        }
    }

    /// Whether the window covers the alert (by cloud, platform, or platform and host).
    pub fn covers(&self, alert: &AlertContext) -> bool {
        self.scope.covers(alert)
    }

    /// Every transition at an instant `t` with `from_ms < t <= to_ms`, in time order.
    ///
    /// Half-open on the left so that consecutive calls `(a, b]`, `(b, c]` report each transition exactly once,
    /// whatever the ticks and gaps (a worker persists its last processed instant and passes it back after a
    /// restart). Transitions more than [`MAX_TRANSITION_LOOKBACK_MS`] before `to_ms` are not reported.
    pub fn transitions_between(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, Transition)> {
        let from_ms = from_ms.max(to_ms.saturating_sub(MAX_TRANSITION_LOOKBACK_MS));
        self.transitions_unbounded(from_ms, to_ms)
    }

    fn transitions_unbounded(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, Transition)> {
        if from_ms >= to_ms {
            return Vec::new();
        }
        let spans = match &self.schedule {
            Schedule::OneOff(one_off) => vec![(one_off.start_ms, one_off.end_ms)],
            // A span starting in (from, to] has every occurrence that could precede it at or after
            // from - duration; one ending in (from, to] has its last occurrence after from - duration too.
            // Spans merged from a partial view begin at or before `from`, so they are never reported wrongly.
            Schedule::Recurring(recurring) => recurring
                .spans_of_starts_between(from_ms.saturating_sub(recurring.duration_ms), to_ms),
        };
        let inside = |at: i64| from_ms < at && at <= to_ms;
        let mut transitions = Vec::new();
        for (start, end) in spans {
            if inside(start) {
                transitions.push((start, Transition::Started));
            }
            if inside(end) {
                transitions.push((end, Transition::Ended));
            }
        }
        transitions
    }
}

impl Scope {
    /// Whether the scope covers the alert.
    pub fn covers(&self, alert: &AlertContext) -> bool {
        match self {
            Scope::Cloud(cloud) => alert.cloud == *cloud,
            Scope::Platform(platform) => alert.platform == *platform,
            Scope::Host { platform, host } => {
                alert.platform == *platform && alert.host.as_deref() == Some(host.as_str())
            }
        }
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transition::Started => "started",
            Transition::Ended => "ended",
        })
    }
}

/// The alerts covered by `window` that are still bad (not `ok`), to be notified again when it ends.
///
/// The caller (the notifier, on the window's `Ended` transition) passes the current state of every open alert;
/// each returned alert then goes through [`crate::decision::decide`] with `transition_from == transition_to`
/// so that silences, acknowledgements and other still-active windows are respected.
pub fn still_bad_at_window_end<'a>(
    window: &MaintenanceWindow,
    alerts: &'a [(AlertContext, State)],
) -> Vec<(&'a AlertContext, State)> {
    alerts
        .iter()
        .filter(|(alert, state)| *state != State::Ok && window.covers(alert))
        .map(|(alert, state)| (alert, *state))
        .collect()
}

#[cfg(test)]
mod tests;
