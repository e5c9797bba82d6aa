//! Routing: which contacts an alert goes to, from the rule's own `notify` list or the first matching routes.

use jiff::Timestamp;

use crate::policy_config::{NotifyPolicy, Route, Target};
use cloudkeep_model::State;

/// What routing, silences and maintenance windows know about an alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertContext {
    /// The cloud of the host (or, for a platform-wide alert, the platform's cloud).
    pub cloud: String,
    /// The ISV owning the platform's tenant.
    pub isv: String,
    /// The tenant the platform belongs to.
    pub tenant: String,
    /// The platform.
    pub platform: String,
    /// The host, unless the alert is about the platform as a whole.
    pub host: Option<String>,
    /// The monitor the alert is about, when it is about one (silences can match it).
    pub monitor: Option<String>,
    /// The alert's severity: its current state while it is bad; for a recovery, the bad state that was
    /// notified (so that the recovery reaches the same people as the problem did).
    pub severity: State,
}

/// One contact to notify, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    /// Contact name (exists in the policy).
    pub contact: String,
    /// The group through which the contact was reached, `None` when named directly.
    pub via_group: Option<String>,
    /// Escalation level: 0 for the first notification, `n` for the `n`-th escalation step.
    pub level: u32,
}

/// The contacts to notify about `alert` at `now_ms`, each once, in order of first appearance.
///
/// `explicit` is the rule's own `notify` list from the platform spec: when any of its names resolves, it takes
/// precedence over every route (and so over their severity and time-of-day conditions). Names that no longer
/// resolve are skipped (the server rejects them with [`crate::policy_config::validate_contact_refs`] when a
/// spec is applied or `[notify]` is reloaded); if none resolves, the routes apply so that the alert still
/// reaches someone.
///
/// Otherwise routes are evaluated in order; the first matching route wins unless it has `continue = true`,
/// in which case evaluation goes on and the recipients of every matching route are merged. No matching
/// route means no recipient: the caller should count and log such alerts.
pub fn route(
    policy: &NotifyPolicy,
    alert: &AlertContext,
    now_ms: i64,
    explicit: &[String],
) -> Vec<Recipient> {
    let explicit_targets: Vec<Target> = explicit
        .iter()
        .filter_map(|name| policy.target(name))
        .collect();
    if !explicit_targets.is_empty() {
        return expand_targets(policy, &explicit_targets, 0);
    }
    let targets: Vec<Target> = matching_routes(policy, alert, now_ms)
        .into_iter()
        .flat_map(|route| route.to().iter().cloned())
        .collect();
    expand_targets(policy, &targets, 0)
}

/// The routes that apply to `alert` at `now_ms`: the first match, plus the following matches for as long
/// as each matched route has `continue = true`.
pub fn matching_routes<'policy>(
    policy: &'policy NotifyPolicy,
    alert: &AlertContext,
    now_ms: i64,
) -> Vec<&'policy Route> {
    let mut matched = Vec::new();
    for route in policy.routes() {
        if route_matches(route, alert, now_ms) {
            matched.push(route);
            if !route.continue_matching() {
                break;
            }
        }
    }
    matched
}

/// The contacts of `targets` (groups expanded to their members), each once, tagged with `level`.
pub fn expand_targets(policy: &NotifyPolicy, targets: &[Target], level: u32) -> Vec<Recipient> {
    let mut recipients: Vec<Recipient> = Vec::new();
    let mut add = |contact: &str, via_group: Option<&str>| {
        if policy.contact(contact).is_some()
            && !recipients.iter().any(|known| known.contact == contact)
        {
            recipients.push(Recipient {
                contact: contact.to_owned(),
                via_group: via_group.map(str::to_owned),
                level,
            });
        }
    };
    for target in targets {
        match target {
            Target::Contact(name) => add(name, None),
            Target::Group(group_name) => {
                for member in policy.group(group_name).map(|g| g.members()).unwrap_or(&[]) {
                    add(member, Some(group_name));
                }
            }
        }
    }
    recipients
}

/// Whether one route applies to `alert` at `now_ms`.
pub fn route_matches(route: &Route, alert: &AlertContext, now_ms: i64) -> bool {
    let name_ok = |pattern: &Option<crate::pattern::NamePattern>, name: &str| {
        pattern.as_ref().is_none_or(|pattern| pattern.matches(name))
    };
    name_ok(&route.isv, &alert.isv)
        && name_ok(&route.platform, &alert.platform)
        && name_ok(&route.tenant, &alert.tenant)
        && name_ok(&route.cloud, &alert.cloud)
        && route.min_severity.admits(alert.severity)
        && in_time_window(route, now_ms)
}

/// Whether `now_ms` is inside the route's `hours` and `days`, in the route's time zone.
///
/// A window that wraps midnight belongs to the day it starts on: with `days = ["fri"]` and
/// `hours = "22:00-06:00"`, Saturday 03:00 is inside (Friday night) and Friday 03:00 is not.
fn in_time_window(route: &Route, now_ms: i64) -> bool {
    if route.hours.is_none() && route.days.is_none() {
        return true;
    }
    let Ok(timestamp) = Timestamp::from_millisecond(now_ms) else {
        // Outside jiff's range (years -9999..=9999): no sensible local time, so the window cannot hold.
        return false;
    };
    let local = route.timezone.to_datetime(timestamp);
    let weekday = local.weekday();
    let day_of_window = match route.hours {
        None => weekday,
        Some(window) => {
            let minute_of_day =
                u16::try_from(i16::from(local.hour()) * 60 + i16::from(local.minute()))
                    .unwrap_or(0);
            match window.locate(minute_of_day) {
                None => return false,
                Some(true) => weekday.previous(),
                Some(false) => weekday,
            }
        }
    };
    route.days.is_none_or(|days| days.contains(day_of_window))
}

#[cfg(test)]
mod tests;
