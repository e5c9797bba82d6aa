//! The `[notify]` configuration: its raw file schema (contacts, groups, routes) and its validation into a [`NotifyPolicy`].
//!
//! Two stages, like the server config: `RawNotifyConfig` is exactly what the TOML says (every field documented,
//! unknown fields rejected); [`RawNotifyConfig::validate`] turns it into runtime types that cannot hold an
//! invalid state (every name resolves, no escalation cycle, durations in range, time zones loaded) and
//! reports *every* problem at once, each with the path of the offending value, e.g.
//! `notify.routes[2].to[0]: unknown contact or group "noc-l3"; known: alice, bob, noc-l1`.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::pattern::{NamePattern, PatternError};
use cloudkeep_model::State;

/// Default `max_per_hour` of a contact.
pub const DEFAULT_MAX_PER_HOUR: u32 = 30;
/// Largest accepted `max_per_hour`: one message a second is already more than a person can read,
/// and it bounds the rate limiter's memory per contact.
pub const MAX_MAX_PER_HOUR: u32 = 3600;
/// Default `group_wait` of a route, in milliseconds.
pub const DEFAULT_GROUP_WAIT_MS: i64 = 500;
/// Largest accepted `group_wait`, in milliseconds: alerts must stay "seconds after the condition".
pub const MAX_GROUP_WAIT_MS: i64 = 60_000;
/// Shortest accepted `escalate_after`, in milliseconds: a shorter one pages the next level before a person
/// could have acknowledged.
pub const MIN_ESCALATE_AFTER_MS: i64 = 60_000;
/// Longest accepted `escalate_after`, in milliseconds (7 days).
pub const MAX_ESCALATE_AFTER_MS: i64 = 7 * 86_400_000;
/// How many times a group without `escalate_to` is re-notified (every `escalate_after`) while the alert
/// stays unacknowledged; after that it is left alone so that a forgotten alert does not page forever.
pub const MAX_REPEAT_NOTIFICATIONS: u32 = 10;
/// Longest contact or group name.
const MAX_NAME_LEN: usize = 64;

/// The `[notify]` table of the server's configuration file.
///
/// `Webhook` is the type of the server's own `[[notify.webhooks]]` entries: the server owns those channel
/// configs and instantiates this struct with its type; this crate only checks that contacts name existing
/// webhooks (see [`RawNotifyConfig::validate`]). The default accepts and ignores any entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "Webhook: Deserialize<'de>"))]
pub struct RawNotifyConfig<Webhook = IgnoredAny> {
    /// People (or shared mailboxes and pagers) that can be notified, each with their channels.
    #[serde(default)]
    pub contacts: Vec<RawContact>,
    /// Named sets of contacts, e.g. an on-call level, with optional escalation to another group.
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    /// Who gets which alert, in order: the first matching route wins unless it says `continue = true`.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Webhook channels (Slack, Teams, a ticketing system…); owned and validated by the server.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

// By hand: a derive would require `Webhook: Default`, which the server's webhook type need not be.
impl<Webhook> Default for RawNotifyConfig<Webhook> {
    fn default() -> Self {
        RawNotifyConfig {
            contacts: Vec::new(),
            groups: Vec::new(),
            routes: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// One `[[notify.contacts]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    /// Unique name used in groups, routes and rules' `notify`, e.g. `alice` (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Email address, e.g. `alice@example.net`.
    pub email: Option<String>,
    /// Mobile number for SMS in international format, e.g. `+441234567890`.
    pub phone: Option<String>,
    /// Names of `[[notify.webhooks]]` entries to post this contact's notifications to.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// At most this many notifications are sent to the contact in any sliding hour (default 30, 1 to 3600).
    pub max_per_hour: Option<u32>,
}

/// One `[[notify.groups]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Unique name (shared with contacts: a name is either a contact or a group), e.g. `noc-l1`.
    pub name: String,
    /// Contacts in the group; groups cannot contain groups.
    pub members: Vec<String>,
    /// How long an alert may stay unacknowledged before `escalate_to` is notified, e.g. `15m` (1m to 7d).
    /// Without `escalate_to` the group itself is notified again every `escalate_after`, at most 10 times.
    pub escalate_after: Option<String>,
    /// The group notified when `escalate_after` has passed unacknowledged; needs `escalate_after`.
    pub escalate_to: Option<String>,
}

/// One `[[notify.routes]]` entry: which alerts go to whom, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Only alerts of this ISV: an exact name or a glob with `*`, e.g. `acme` or `acme-*`.
    pub isv: Option<String>,
    /// Only alerts of this platform (exact name or glob with `*`).
    pub platform: Option<String>,
    /// Only alerts of this tenant (exact name or glob with `*`).
    pub tenant: Option<String>,
    /// Only alerts from hosts in this cloud (exact name or glob with `*`), e.g. `gc-uk1`.
    pub cloud: Option<String>,
    /// Least severe state routed: `warning` (the default: warning and critical), `critical`, or `unknown`
    /// (unknown, warning and critical: states are ordered ok < unknown < warning < critical).
    pub min_severity: Option<String>,
    /// Only during this local time of day, `HH:MM-HH:MM`; it may wrap midnight (`22:00-06:00`), and `24:00`
    /// may end it. With `days`, a window that wraps midnight belongs to the day it starts on.
    pub hours: Option<String>,
    /// Only on these local days: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Option<Vec<String>>,
    /// IANA time zone of `hours` and `days`, e.g. `Europe/London` (default `UTC`).
    pub timezone: Option<String>,
    /// Contacts and/or groups to notify; at least one.
    #[serde(default)]
    pub to: Vec<String>,
    /// Keep evaluating the following routes after this one matched (default false: first match wins).
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
    /// How long to gather simultaneous alerts of one platform into one notification (default `500ms`, at most `1m`).
    pub group_wait: Option<String>,
}

/// The validated notification policy: every contact, group and route, with all names resolved.
#[derive(Debug, Clone, Default)]
pub struct NotifyPolicy {
    pub(crate) contacts: BTreeMap<String, Contact>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) routes: Vec<Route>,
}

/// A validated contact: it has at least one channel and a rate limit of at least 1 per hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    webhooks: Vec<String>,
    max_per_hour: NonZeroU32,
}

/// A validated group: at least one member, every member a contact, escalation resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    name: String,
    members: Vec<String>,
    escalation: Escalation,
}

/// What happens when an alert notified to a group stays unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// Nothing more: the group was told once.
    Never,
    /// Notify the same group again every `every_ms`, at most [`MAX_REPEAT_NOTIFICATIONS`] times.
    Repeat {
        /// Interval between reminders, in milliseconds (positive).
        every_ms: i64,
    },
    /// After `after_ms`, notify `group` (an existing group; the chain has no cycle).
    EscalateTo {
        /// Time from this level's notification to the next level's, in milliseconds (positive).
        after_ms: i64,
        /// Name of the next group.
        group: String,
    },
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    pub(crate) isv: Option<NamePattern>,
    pub(crate) platform: Option<NamePattern>,
    pub(crate) tenant: Option<NamePattern>,
    pub(crate) cloud: Option<NamePattern>,
    pub(crate) min_severity: MinSeverity,
    pub(crate) hours: Option<TimeOfDayWindow>,
    pub(crate) days: Option<WeekdaySet>,
    pub(crate) timezone: TimeZone,
    pub(crate) to: Vec<Target>,
    pub(crate) continue_matching: bool,
    pub(crate) group_wait_ms: i64,
}

/// A recipient named by a route or a rule: a contact or a group, known to exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A single contact.
    Contact(String),
    /// Every member of a group.
    Group(String),
}

/// The least severe state a route accepts; `ok` is not a severity, so it cannot be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MinSeverity {
    /// `unknown`, `warning` and `critical`.
    Unknown,
    /// `warning` and `critical`.
    #[default]
    Warning,
    /// `critical` only.
    Critical,
}

/// A local time-of-day window `[start, end)` in minutes since midnight; `start != end`, and it wraps
/// midnight when `start > end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeOfDayWindow {
    start_minute: u16,
    end_minute: u16,
}

/// A non-empty set of weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekdaySet {
    /// Bit `n` is set for the weekday `n` days after Monday.
    bits: u8,
}

/// One problem in the `[notify]` configuration, with the path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// Where, e.g. `notify.routes[2].to[0]`.
    pub path: String,
    /// What is wrong.
    pub problem: ConfigProblem,
}

/// What is wrong with a value of the `[notify]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// A contact or group name has characters or a length that is not allowed.
    #[error("invalid name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    /// The name is already used by another contact or group.
    #[error("{name:?} is already defined at {first}")]
    DuplicateName {
        /// The repeated name.
        name: String,
        /// Path of the first definition.
        first: String,
    },
    /// A contact without email, phone or webhooks could never be reached.
    #[error("contact {0:?} has no channel: set email, phone or webhooks")]
    NoChannel(String),
    /// Not an email address.
    #[error("invalid email address {0:?}")]
    InvalidEmail(String),
    /// Not a phone number in international format.
    #[error("invalid phone number {0:?}: use + and 8 to 15 digits, e.g. +441234567890")]
    InvalidPhone(String),
    /// A contact names a webhook that `[[notify.webhooks]]` does not define.
    #[error("unknown webhook {name:?}; known: {known}")]
    UnknownWebhook {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// A number outside its accepted range.
    #[error("{value} is out of range: use {min} to {max}")]
    NumberOutOfRange {
        /// The value given.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// A list that must not be empty is.
    #[error("must list at least one {0}")]
    EmptyList(&'static str),
    /// The same name appears twice in one list.
    #[error("{0:?} is listed twice")]
    ListedTwice(String),
    /// A group member that is not a contact.
    #[error("unknown contact {name:?}; known contacts: {known}")]
    UnknownContact {
        /// The name given.
        name: String,
        /// The contacts that exist, comma-separated.
        known: String,
    },
    /// A group member that is a group.
    #[error("{0:?} is a group; groups cannot contain groups")]
    GroupInGroup(String),
    /// `escalate_to` names no group.
    #[error("unknown group {name:?}; known groups: {known}")]
    UnknownGroup {
        /// The name given.
        name: String,
        /// The groups that exist, comma-separated.
        known: String,
    },
    /// `escalate_to` names a contact instead of a group.
    #[error("{0:?} is a contact; escalate_to needs a group")]
    EscalateToContact(String),
    /// A route's `to` or a rule's `notify` names neither a contact nor a group.
    #[error("unknown contact or group {name:?}; known: {known}")]
    UnknownRecipient {
        /// The name given.
        name: String,
        /// The contacts and groups that exist, comma-separated.
        known: String,
    },
    /// `escalate_to` without `escalate_after`.
    #[error("escalate_to needs escalate_after (how long to wait unacknowledged before escalating)")]
    EscalateToWithoutAfter,
    /// Following `escalate_to` comes back to a group already on the chain.
    #[error("escalation cycle {0}: remove escalate_to from one of these groups")]
    EscalationCycle(String),
    /// Not a duration.
    #[error(
        "invalid duration {0:?}: use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)"
    )]
    InvalidDuration(String),
    /// A duration outside its accepted range.
    #[error("{value} is out of range: use {min} to {max}")]
    DurationOutOfRange {
        /// The duration given, as written.
        value: String,
        /// Smallest accepted, e.g. `1m`.
        min: &'static str,
        /// Largest accepted, e.g. `7d`.
        max: &'static str,
    },
    /// Not a severity a route can start at.
    #[error("invalid severity {0:?}: use warning, critical or unknown")]
    InvalidSeverity(String),
    /// Not a `HH:MM-HH:MM` window.
    #[error("invalid time window {value:?}: {reason}")]
    InvalidHours {
        /// The window given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a day name.
    #[error("invalid day {0:?}: use mon, tue, wed, thu, fri, sat or sun")]
    InvalidDay(String),
    /// Not an IANA time zone in the bundled database.
    #[error("unknown time zone {0:?}: use an IANA name such as UTC or Europe/London")]
    UnknownTimeZone(String),
    /// A matcher that is not a valid name pattern.
    #[error(transparent)]
    InvalidPattern(#[from] PatternError),
}

/// Every problem found in a `[notify]` configuration (at least one), in file order: contacts, groups, routes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for PolicyConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// A name in a rule's `notify` list that is neither a contact nor a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notify[{index}]: unknown contact or group {name:?}; known: {known}")]
pub struct UnknownRecipient {
    /// Position in the list.
    pub index: usize,
    /// The name given.
    pub name: String,
    /// The contacts and groups that exist, comma-separated.
    pub known: String,
}

impl<Webhook> RawNotifyConfig<Webhook> {
    /// Validates the configuration into a [`NotifyPolicy`], reporting every problem at once.
    ///
    /// `known_webhooks` are the names of the server's `[[notify.webhooks]]` entries (the server parses those).
    pub fn validate(&self, known_webhooks: &[&str]) -> Result<NotifyPolicy, PolicyConfigErrors> {
        let mut validator = Validator::new(&self.contacts, &self.groups, known_webhooks);
        let contacts: BTreeMap<String, Contact> = self
            .contacts
            .iter()
            .enumerate()
            .filter_map(|(index, raw)| validator.contact(index, raw))
            .map(|contact| (contact.name.clone(), contact))
            .collect();
        let mut groups: BTreeMap<String, Group> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(index, raw)| validator.group(index, raw))
            .map(|group| (group.name.clone(), group))
            .collect();
        for cyclic in validator.escalation_cycles(&self.groups) {
            groups.remove(cyclic);
        }
        let routes: Vec<Route> = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(index, raw)| validator.route(index, raw))
            .collect();
        let mut errors = validator.errors;
        if errors.is_empty() {
            return Ok(NotifyPolicy {
                contacts,
                groups,
                routes,
            });
        }
        // Names were checked first and cycles after the groups: present every entry's problems together,
        // in file order (the sort is stable, so each entry keeps its fields in order).
        errors.sort_by_key(|error| entry_order(&error.path));
        Err(PolicyConfigErrors(errors))
    }
}

/// Validation state: the names every reference resolves against, and the problems found so far.
struct Validator<'raw> {
    errors: Vec<ConfigError>,
    /// Valid, unique contact names and the index of their entry.
    contact_names: BTreeMap<&'raw str, usize>,
    /// Valid, unique group names and the index of their entry.
    group_names: BTreeMap<&'raw str, usize>,
    known_webhooks: &'raw [&'raw str],
    /// The lists quoted in "known: …" messages.
    known_contacts: String,
    known_groups: String,
    known_recipients: String,
    known_webhook_list: String,
}

impl<'raw> Validator<'raw> {
    /// Checks every contact and group name first: every later check resolves references against them.
    fn new(
        contacts: &'raw [RawContact],
        groups: &'raw [RawGroup],
        known_webhooks: &'raw [&'raw str],
    ) -> Validator<'raw> {
        let mut validator = Validator {
            errors: Vec::new(),
            contact_names: BTreeMap::new(),
            group_names: BTreeMap::new(),
            known_webhooks,
            known_contacts: String::new(),
            known_groups: String::new(),
            known_recipients: String::new(),
            known_webhook_list: String::new(),
        };
        let mut first_definition: BTreeMap<&str, String> = BTreeMap::new();
        for (index, contact) in contacts.iter().enumerate() {
            let path = format!("notify.contacts[{index}].name");
            if validator.check_name(&contact.name, path, &mut first_definition) {
                validator.contact_names.insert(&contact.name, index);
            }
        }
        for (index, group) in groups.iter().enumerate() {
            let path = format!("notify.groups[{index}].name");
            if validator.check_name(&group.name, path, &mut first_definition) {
                validator.group_names.insert(&group.name, index);
            }
        }
        validator.known_contacts = join_names(validator.contact_names.keys().copied());
        validator.known_groups = join_names(validator.group_names.keys().copied());
        validator.known_recipients = join_names(first_definition.keys().copied());
        let mut webhook_names = known_webhooks.to_vec();
        webhook_names.sort_unstable();
        validator.known_webhook_list = join_names(webhook_names);
        validator
    }

    fn report(&mut self, path: String, problem: ConfigProblem) {
        self.errors.push(ConfigError { path, problem });
    }

    /// Checks a contact or group name and records its first definition; false when it cannot be used.
    fn check_name(
        &mut self,
        name: &'raw str,
        path: String,
        first_definition: &mut BTreeMap<&'raw str, String>,
    ) -> bool {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if name.is_empty() || name.len() > MAX_NAME_LEN || !valid_chars {
            self.report(path, ConfigProblem::InvalidName(name.to_owned()));
            return false;
        }
        if let Some(first) = first_definition.get(name) {
            let first = first.clone();
            self.report(
                path,
                ConfigProblem::DuplicateName {
                    name: name.to_owned(),
                    first,
                },
            );
            return false;
        }
        first_definition.insert(name, path);
        true
    }

    fn contact(&mut self, index: usize, raw: &RawContact) -> Option<Contact> {
        let errors_before = self.errors.len();
        let at = |field: &str| format!("notify.contacts[{index}].{field}");
        if raw.email.is_none() && raw.phone.is_none() && raw.webhooks.is_empty() {
            self.report(
                format!("notify.contacts[{index}]"),
                ConfigProblem::NoChannel(raw.name.clone()),
            );
        }
        if let Some(email) = &raw.email
            && !is_plausible_email(email)
        {
            self.report(at("email"), ConfigProblem::InvalidEmail(email.clone()));
        }
        if let Some(phone) = &raw.phone
            && !is_international_phone(phone)
        {
            self.report(at("phone"), ConfigProblem::InvalidPhone(phone.clone()));
        }
        for (webhook_index, webhook) in raw.webhooks.iter().enumerate() {
            if !self.known_webhooks.contains(&webhook.as_str()) {
                self.report(
                    format!("notify.contacts[{index}].webhooks[{webhook_index}]"),
                    ConfigProblem::UnknownWebhook {
                        name: webhook.clone(),
                        known: self.known_webhook_list.clone(),
                    },
                );
            }
        }
        let max_per_hour = raw.max_per_hour.unwrap_or(DEFAULT_MAX_PER_HOUR);
        let max_per_hour =
            NonZeroU32::new(max_per_hour).filter(|_| max_per_hour <= MAX_MAX_PER_HOUR);
        if max_per_hour.is_none() {
            self.report(
                at("max_per_hour"),
                ConfigProblem::NumberOutOfRange {
                    value: u64::from(raw.max_per_hour.unwrap_or_default()),
                    min: 1,
                    max: u64::from(MAX_MAX_PER_HOUR),
                },
            );
        }
        let name_is_usable = self.contact_names.get(raw.name.as_str()) == Some(&index);
        if !name_is_usable || self.errors.len() > errors_before {
            return None;
        }
        Some(Contact {
            name: raw.name.clone(),
            email: raw.email.clone(),
            phone: raw.phone.clone(),
            webhooks: raw.webhooks.clone(),
            max_per_hour: max_per_hour?,
        })
    }

    fn group(&mut self, index: usize, raw: &RawGroup) -> Option<Group> {
        let errors_before = self.errors.len();
        let at = |field: &str| format!("notify.groups[{index}].{field}");
        if raw.members.is_empty() {
            self.report(at("members"), ConfigProblem::EmptyList("contact"));
        }
        let mut members: Vec<String> = Vec::with_capacity(raw.members.len());
        for (member_index, member) in raw.members.iter().enumerate() {
            let path = format!("notify.groups[{index}].members[{member_index}]");
            if self.group_names.contains_key(member.as_str()) {
                self.report(path, ConfigProblem::GroupInGroup(member.clone()));
            } else if !self.contact_names.contains_key(member.as_str()) {
                let known = self.known_contacts.clone();
                let name = member.clone();
                self.report(path, ConfigProblem::UnknownContact { name, known });
            } else if members.contains(member) {
                self.report(path, ConfigProblem::ListedTwice(member.clone()));
            } else {
                members.push(member.clone());
            }
        }
        let after_ms = raw.escalate_after.as_deref().and_then(|text| {
            let range = (MIN_ESCALATE_AFTER_MS, MAX_ESCALATE_AFTER_MS, "1m", "7d");
            self.duration(at("escalate_after"), text, range)
        });
        let escalation = match (&raw.escalate_to, after_ms) {
            (None, None) => Escalation::Never,
            (None, Some(every_ms)) => Escalation::Repeat { every_ms },
            (Some(target), after_ms) => {
                if !self.group_names.contains_key(target.as_str()) {
                    let problem = if self.contact_names.contains_key(target.as_str()) {
                        ConfigProblem::EscalateToContact(target.clone())
                    } else {
                        ConfigProblem::UnknownGroup {
                            name: target.clone(),
                            known: self.known_groups.clone(),
                        }
                    };
                    self.report(at("escalate_to"), problem);
                }
                if raw.escalate_after.is_none() {
                    self.report(at("escalate_to"), ConfigProblem::EscalateToWithoutAfter);
                }
                Escalation::EscalateTo {
                    after_ms: after_ms.unwrap_or(MIN_ESCALATE_AFTER_MS),
                    group: target.clone(),
                }
            }
        };
        let name_is_usable = self.group_names.get(raw.name.as_str()) == Some(&index);
        if !name_is_usable || self.errors.len() > errors_before {
            return None;
        }
        Some(Group {
            name: raw.name.clone(),
            members,
            escalation,
        })
    }

    /// Reports every escalation cycle once, at the group of the cycle that comes first in the file, and
    /// returns the names of those groups.
    fn escalation_cycles(&mut self, groups: &'raw [RawGroup]) -> Vec<&'raw str> {
        let mut cyclic = Vec::new();
        for (index, raw) in groups.iter().enumerate() {
            if let Some(chain) = escalation_cycle_from(index, groups, &self.group_names) {
                self.report(
                    format!("notify.groups[{index}].escalate_to"),
                    ConfigProblem::EscalationCycle(chain),
                );
                cyclic.push(raw.name.as_str());
            }
        }
        cyclic
    }

    fn route(&mut self, index: usize, raw: &RawRoute) -> Option<Route> {
        let errors_before = self.errors.len();
        let at = |field: &str| format!("notify.routes[{index}].{field}");
        let isv = self.pattern(at("isv"), raw.isv.as_deref());
        let platform = self.pattern(at("platform"), raw.platform.as_deref());
        let tenant = self.pattern(at("tenant"), raw.tenant.as_deref());
        let cloud = self.pattern(at("cloud"), raw.cloud.as_deref());
        let min_severity = match raw.min_severity.as_deref() {
            None => MinSeverity::default(),
            Some("unknown") => MinSeverity::Unknown,
            Some("warning") => MinSeverity::Warning,
            Some("critical") => MinSeverity::Critical,
            Some(other) => {
                self.report(
                    at("min_severity"),
                    ConfigProblem::InvalidSeverity(other.to_owned()),
                );
                MinSeverity::default()
            }
        };
        let hours = raw
            .hours
            .as_deref()
            .and_then(|text| match TimeOfDayWindow::parse(text) {
                Ok(window) => Some(window),
                Err(reason) => {
                    let value = text.to_owned();
                    self.report(at("hours"), ConfigProblem::InvalidHours { value, reason });
                    None
                }
            });
        let days = match &raw.days {
            None => None,
            Some(names) if names.is_empty() => {
                let problem = ConfigProblem::EmptyList("day (or omit days for every day)");
                self.report(at("days"), problem);
                None
            }
            Some(names) => {
                let mut set = WeekdaySet { bits: 0 };
                for (day_index, name) in names.iter().enumerate() {
                    match parse_weekday(name) {
                        Some(day) => set.insert(day),
                        None => self.report(
                            format!("notify.routes[{index}].days[{day_index}]"),
                            ConfigProblem::InvalidDay(name.clone()),
                        ),
                    }
                }
                Some(set)
            }
        };
        let timezone = match raw.timezone.as_deref() {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).unwrap_or_else(|_| {
                self.report(
                    at("timezone"),
                    ConfigProblem::UnknownTimeZone(name.to_owned()),
                );
                TimeZone::UTC
            }),
        };
        if raw.to.is_empty() {
            self.report(at("to"), ConfigProblem::EmptyList("contact or group"));
        }
        let mut to = Vec::with_capacity(raw.to.len());
        for (to_index, name) in raw.to.iter().enumerate() {
            let path = format!("notify.routes[{index}].to[{to_index}]");
            let target = if self.contact_names.contains_key(name.as_str()) {
                Target::Contact(name.clone())
            } else if self.group_names.contains_key(name.as_str()) {
                Target::Group(name.clone())
            } else {
                let known = self.known_recipients.clone();
                let name = name.clone();
                self.report(path, ConfigProblem::UnknownRecipient { name, known });
                continue;
            };
            if to.contains(&target) {
                self.report(path, ConfigProblem::ListedTwice(name.clone()));
            } else {
                to.push(target);
            }
        }
        let group_wait_ms = match raw.group_wait.as_deref() {
            None => Some(DEFAULT_GROUP_WAIT_MS),
            Some(text) => {
                self.duration(at("group_wait"), text, (0, MAX_GROUP_WAIT_MS, "0ms", "1m"))
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Route {
            isv,
            platform,
            tenant,
            cloud,
            min_severity,
            hours,
            days,
            timezone,
            to,
            continue_matching: raw.continue_matching,
            group_wait_ms: group_wait_ms?,
        })
    }

    fn pattern(&mut self, path: String, text: Option<&str>) -> Option<NamePattern> {
        match NamePattern::parse(text?) {
            Ok(pattern) => Some(pattern),
            Err(error) => {
                self.report(path, error.into());
                None
            }
        }
    }

    /// Parses a duration that must lie in `(min_ms, max_ms, min_label, max_label)`.
    fn duration(
        &mut self,
        path: String,
        text: &str,
        (min_ms, max_ms, min, max): (i64, i64, &'static str, &'static str),
    ) -> Option<i64> {
        match parse_duration_ms(text) {
            Some(ms) if (min_ms..=max_ms).contains(&ms) => Some(ms),
            Some(_) => {
                let value = text.to_owned();
                self.report(path, ConfigProblem::DurationOutOfRange { value, min, max });
                None
            }
            None => {
                self.report(path, ConfigProblem::InvalidDuration(text.to_owned()));
                None
            }
        }
    }
}

/// Checks that a rule's `notify` list (in a platform spec) names only contacts and groups of `config`.
///
/// The server calls this when a spec is applied, and again when `[notify]` is reloaded, so that a rule
/// never points at nobody. Errors are relative to the list (`notify[1]: …`); the caller prefixes the rule's path.
pub fn validate_contact_refs(
    names: &[&str],
    config: &NotifyPolicy,
) -> Result<(), Vec<UnknownRecipient>> {
    let unknown: Vec<UnknownRecipient> = names
        .iter()
        .enumerate()
        .filter(|(_, name)| config.target(name).is_none())
        .map(|(index, name)| UnknownRecipient {
            index,
            name: (*name).to_owned(),
            known: config.known_recipients(),
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown)
    }
}

impl NotifyPolicy {
    /// Every contact, by name.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    /// Every group, by name.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Every route, in evaluation order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The contact of this name.
    pub fn contact(&self, name: &str) -> Option<&Contact> {
        self.contacts.get(name)
    }

    /// The group of this name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// What `name` designates: a contact, a group, or nothing.
    pub fn target(&self, name: &str) -> Option<Target> {
        if self.contacts.contains_key(name) {
            Some(Target::Contact(name.to_owned()))
        } else if self.groups.contains_key(name) {
            Some(Target::Group(name.to_owned()))
        } else {
            None
        }
    }

    /// Every contact and group name, sorted and comma-separated (for error messages).
    pub fn known_recipients(&self) -> String {
        let mut names: Vec<&str> = self
            .contacts
            .keys()
            .chain(self.groups.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        join_names(names)
    }
}

impl Contact {
    /// Unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Email address, if any.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Phone number for SMS in international format, if any.
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }

    /// Names of the server's webhook channels for this contact.
    pub fn webhooks(&self) -> &[String] {
        &self.webhooks
    }

    /// Most notifications in any sliding hour.
    pub fn max_per_hour(&self) -> NonZeroU32 {
        self.max_per_hour
    }
}

impl Group {
    /// Unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Member contacts, in configuration order (never empty).
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// What happens when an alert notified to this group stays unacknowledged.
    pub fn escalation(&self) -> &Escalation {
        &self.escalation
    }
}

impl Route {
    /// The recipients, in configuration order (never empty).
    pub fn to(&self) -> &[Target] {
        &self.to
    }

    /// Whether evaluation goes on with the next routes after this one matched.
    pub fn continue_matching(&self) -> bool {
        self.continue_matching
    }

    /// How long to gather simultaneous alerts of one platform, in milliseconds.
    pub fn group_wait_ms(&self) -> i64 {
        self.group_wait_ms
    }

    /// The least severe state routed.
    pub fn min_severity(&self) -> MinSeverity {
        self.min_severity
    }
}

impl MinSeverity {
    /// Whether an alert of this severity passes.
    pub fn admits(self, severity: State) -> bool {
        let least = match self {
            MinSeverity::Unknown => State::Unknown,
            MinSeverity::Warning => State::Warning,
            MinSeverity::Critical => State::Critical,
        };
        severity >= least
    }
}

impl TimeOfDayWindow {
    /// Parses `HH:MM-HH:MM` (the hour may have one digit; `24:00` only as the end).
    pub fn parse(text: &str) -> Result<TimeOfDayWindow, &'static str> {
        const SYNTAX: &str = "use HH:MM-HH:MM, e.g. 08:00-18:00 or 22:00-06:00";
        let (start, end) = text.split_once('-').ok_or(SYNTAX)?;
        let start_minute = parse_clock(start).ok_or(SYNTAX)?;
        let end_minute = parse_clock(end).ok_or(SYNTAX)?;
        if start_minute == 24 * 60 {
            return Err("24:00 can only end a window");
        }
        if start_minute == end_minute || (start_minute == 0 && end_minute == 24 * 60) {
            return Err("the window covers the whole day; omit hours instead");
        }
        Ok(TimeOfDayWindow {
            start_minute,
            end_minute,
        })
    }

    /// Where a local time (minutes since midnight) falls: `None` outside, `Some(false)` in the part that
    /// starts today, `Some(true)` in the part after midnight of a window that started yesterday.
    pub fn locate(self, minute_of_day: u16) -> Option<bool> {
        if self.start_minute < self.end_minute {
            (self.start_minute <= minute_of_day && minute_of_day < self.end_minute).then_some(false)
        } else if minute_of_day >= self.start_minute {
            Some(false)
        } else if minute_of_day < self.end_minute {
            Some(true)
        } else {
            None
        }
    }
}

impl WeekdaySet {
    fn insert(&mut self, day: Weekday) {
        self.bits |= 1 << day.to_monday_zero_offset();
    }

    /// Whether the set holds `day`.
    pub fn contains(self, day: Weekday) -> bool {
        self.bits & (1 << day.to_monday_zero_offset()) != 0
    }
}

/// Parses `H:MM` or `HH:MM` into minutes since midnight; `24:00` is allowed (as 1440).
fn parse_clock(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || hours.len() > 2 || minutes.len() != 2 || !all_digits(minutes) {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    match (hours, minutes) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(hours * 60 + minutes),
        _ => None,
    }
}

fn parse_weekday(name: &str) -> Option<Weekday> {
    let lower = name.to_ascii_lowercase();
    let day = match lower.as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    };
    Some(day)
}

/// Parses a duration in the spec's grammar (`cloudkeep_model::Duration`): a whole number followed by
/// `ms`, `s`, `m`, `h` or `d`. Returns milliseconds, `None` when malformed or too large.
pub(crate) fn parse_duration_ms(text: &str) -> Option<i64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let factor: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(factor)
}

/// If following `escalate_to` from group `start` comes back to `start`, and `start` is the first group of
/// that cycle in the file, the cycle as `a → b → a`.
fn escalation_cycle_from(
    start: usize,
    groups: &[RawGroup],
    group_names: &BTreeMap<&str, usize>,
) -> Option<String> {
    let mut chain = vec![start];
    let mut current = start;
    // A chain without a cycle visits each group at most once, so this bound is never the reason to stop.
    for _ in 0..=groups.len() {
        let next_name = groups.get(current)?.escalate_to.as_deref()?;
        let next = *group_names.get(next_name)?;
        if next == start {
            if chain.iter().any(|index| *index < start) {
                return None;
            }
            chain.push(start);
            let names: Vec<&str> = chain
                .iter()
                .filter_map(|index| groups.get(*index).map(|group| group.name.as_str()))
                .collect();
            return Some(names.join(" → "));
        }
        if chain.contains(&next) {
            // A cycle that does not pass through `start`: reported from its own first group.
            return None;
        }
        chain.push(next);
        current = next;
    }
    None
}

fn is_plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_international_phone(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let joined: Vec<&str> = names.into_iter().collect();
    if joined.is_empty() {
        "(none)".to_owned()
    } else {
        joined.join(", ")
    }
}

/// Sort key of an error path by the entry it belongs to: `notify.groups[3].members[1]` → (1, 3).
fn entry_order(path: &str) -> (u8, usize) {
    let rest = path.strip_prefix("notify.").unwrap_or(path);
    let (section, index) = rest.split_once('[').unwrap_or((rest, ""));
    let rank = match section {
        "contacts" => 0,
        "groups" => 1,
        _ => 2,
    };
    let index = index
        .split(']')
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0);
    (rank, index)
}

#[cfg(test)]
mod tests;
