//! Escalation: which group to notify next while an alert stays unacknowledged, and when.
//!
//! Level 0 is the group a route (or rule) notified when the alert was raised. If that group has
//! `escalate_after` and `escalate_to`, level 1 is `escalate_to`, due `escalate_after` after level 0; level 2
//! follows from level 1's group the same way, and so on down the chain (validation guarantees it has no
//! cycle). A group with `escalate_after` but no `escalate_to` is reminded instead: the same group again every
//! `escalate_after`, at most [`MAX_REPEAT_NOTIFICATIONS`] times, each reminder one level higher. An
//! acknowledgement stops the whole thing.

use crate::policy_config::{Escalation, MAX_REPEAT_NOTIFICATIONS, NotifyPolicy};

/// One step of an alert's escalation plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EscalationStep {
    /// 1 for the first escalation or reminder, 2 for the next, …
    pub level: u32,
    /// The group to notify at this level.
    pub group: String,
    /// When it is due (Unix milliseconds).
    pub due_at_ms: i64,
}

/// Every escalation step of an alert first notified to `start_group` at `raised_at_ms`, in order.
///
/// Finite: each group appears once along a chain (no cycles), plus at most [`MAX_REPEAT_NOTIFICATIONS`]
/// reminders at its end. Empty when the group does not escalate or does not exist.
pub fn escalation_plan(
    policy: &NotifyPolicy,
    start_group: &str,
    raised_at_ms: i64,
) -> Vec<EscalationStep> {
    let mut plan = Vec::new();
    let Some(mut group) = policy.group(start_group) else {
        return plan;
    };
    let mut due_at_ms = raised_at_ms;
    let mut level = 0u32;
    // Reminders sent to the current group (they restart when the chain moves on to another group).
    let mut repeats = 0u32;
    // Validation rejects cycles; this bound keeps a bug from ever looping forever.
    let max_steps = policy.groups().count() + MAX_REPEAT_NOTIFICATIONS as usize + 1;
    while plan.len() < max_steps {
        let next_group = match group.escalation() {
            Escalation::Never => break,
            Escalation::Repeat { every_ms } => {
                if repeats >= MAX_REPEAT_NOTIFICATIONS {
                    break;
                }
                repeats += 1;
                due_at_ms = due_at_ms.saturating_add(*every_ms);
                group
            }
            Escalation::EscalateTo {
                after_ms,
                group: next,
            } => {
                let Some(next) = policy.group(next) else {
                    break;
                };
                repeats = 0;
                due_at_ms = due_at_ms.saturating_add(*after_ms);
                next
            }
        };
        level += 1;
        plan.push(EscalationStep {
            level,
            group: next_group.name().to_owned(),
            due_at_ms,
        });
        group = next_group;
    }
    plan
}

/// The escalation to send now, if any: the highest level above `last_level` that is due at `now_ms`.
///
/// `last_level` is the level last notified (0 after the first notification). After a gap (a restart) this
/// jumps straight to where the chain should be instead of sending every missed level in a burst.
/// `None` once the alert is acknowledged.
pub fn escalation_due(
    policy: &NotifyPolicy,
    start_group: &str,
    raised_at_ms: i64,
    acked: bool,
    last_level: u32,
    now_ms: i64,
) -> Option<EscalationStep> {
    if acked {
        return None;
    }
    escalation_plan(policy, start_group, raised_at_ms)
        .into_iter()
        .take_while(|step| step.due_at_ms <= now_ms)
        .filter(|step| step.level > last_level)
        .last()
}

/// When the next escalation after `last_level` is due, so the notifier knows when to look again.
pub fn next_escalation_at(
    policy: &NotifyPolicy,
    start_group: &str,
    raised_at_ms: i64,
    acked: bool,
    last_level: u32,
) -> Option<i64> {
    if acked {
        return None;
    }
    escalation_plan(policy, start_group, raised_at_ms)
        .into_iter()
        .find(|step| step.level > last_level)
        .map(|step| step.due_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_config::RawNotifyConfig;

    const MINUTE: i64 = 60_000;

    fn policy(toml_text: &str) -> NotifyPolicy {
        #[derive(serde::Deserialize)]
        struct File {
            notify: RawNotifyConfig,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        file.notify.validate(&[]).unwrap()
    }

    const CHAIN: &str = r#"
[[notify.contacts]]
name = "alice"
email = "alice@example.net"
[[notify.contacts]]
name = "bob"
email = "bob@example.net"
[[notify.contacts]]
name = "carol"
phone = "+441234567890"
[[notify.groups]]
name = "noc-l1"
members = ["alice"]
escalate_after = "15m"
escalate_to = "noc-l2"
[[notify.groups]]
name = "noc-l2"
members = ["bob"]
escalate_after = "30m"
escalate_to = "managers"
[[notify.groups]]
name = "managers"
members = ["carol"]
[[notify.groups]]
name = "nagging"
members = ["alice"]
escalate_after = "10m"
[[notify.groups]]
name = "l1-then-nag"
members = ["bob"]
escalate_after = "5m"
escalate_to = "nagging"
"#;

    #[test]
    fn chain_escalates_at_cumulative_times() {
        let policy = policy(CHAIN);
        let raised = 1_000_000;
        let due =
            |last_level, now| escalation_due(&policy, "noc-l1", raised, false, last_level, now);
        assert_eq!(due(0, raised), None);
        assert_eq!(due(0, raised + 15 * MINUTE - 1), None);
        assert_eq!(
            due(0, raised + 15 * MINUTE),
            Some(EscalationStep {
                level: 1,
                group: "noc-l2".into(),
                due_at_ms: raised + 15 * MINUTE
            })
        );
        // Already sent level 1: nothing until level 2 at 15m + 30m.
        assert_eq!(due(1, raised + 44 * MINUTE), None);
        assert_eq!(
            due(1, raised + 45 * MINUTE).map(|s| (s.level, s.group)),
            Some((2, "managers".into()))
        );
        // End of the chain: managers do not escalate.
        assert_eq!(due(2, raised + 1000 * MINUTE), None);
        assert_eq!(
            next_escalation_at(&policy, "noc-l1", raised, false, 0),
            Some(raised + 15 * MINUTE)
        );
        assert_eq!(
            next_escalation_at(&policy, "noc-l1", raised, false, 1),
            Some(raised + 45 * MINUTE)
        );
        assert_eq!(
            next_escalation_at(&policy, "noc-l1", raised, false, 2),
            None
        );
    }

    #[test]
    fn a_gap_jumps_to_the_current_level() {
        let policy = policy(CHAIN);
        let step = escalation_due(&policy, "noc-l1", 0, false, 0, 50 * MINUTE).unwrap();
        assert_eq!((step.level, step.group.as_str()), (2, "managers"));
    }

    #[test]
    fn acknowledgement_stops_escalation() {
        let policy = policy(CHAIN);
        assert_eq!(
            escalation_due(&policy, "noc-l1", 0, true, 0, 20 * MINUTE),
            None
        );
        assert_eq!(
            escalation_due(&policy, "noc-l1", 0, true, 1, 50 * MINUTE),
            None
        );
        assert_eq!(next_escalation_at(&policy, "noc-l1", 0, true, 0), None);
    }

    #[test]
    fn a_group_without_escalate_to_is_reminded_at_most_ten_times() {
        let policy = policy(CHAIN);
        let plan = escalation_plan(&policy, "nagging", 0);
        assert_eq!(plan.len(), MAX_REPEAT_NOTIFICATIONS as usize);
        for (index, step) in plan.iter().enumerate() {
            let level = index as u32 + 1;
            assert_eq!(step.level, level);
            assert_eq!(step.group, "nagging");
            assert_eq!(step.due_at_ms, i64::from(level) * 10 * MINUTE);
        }
        assert_eq!(
            escalation_due(&policy, "nagging", 0, false, 10, i64::MAX),
            None
        );
        let due = escalation_due(&policy, "nagging", 0, false, 3, 41 * MINUTE).unwrap();
        assert_eq!(due.level, 4);

        // Escalating into a reminding group: one escalation, then ten reminders of that group.
        let plan = escalation_plan(&policy, "l1-then-nag", 0);
        assert_eq!(plan.len(), 1 + MAX_REPEAT_NOTIFICATIONS as usize);
        assert_eq!(
            plan.first().map(|s| (s.group.as_str(), s.due_at_ms)),
            Some(("nagging", 5 * MINUTE))
        );
        assert_eq!(plan.get(1).map(|s| s.due_at_ms), Some(15 * MINUTE));
    }

    #[test]
    fn groups_without_escalation_or_unknown_have_no_plan() {
        let policy = policy(CHAIN);
        assert!(escalation_plan(&policy, "managers", 0).is_empty());
        assert!(escalation_plan(&policy, "nobody", 0).is_empty());
        assert_eq!(
            escalation_due(&policy, "nobody", 0, false, 0, i64::MAX),
            None
        );
    }
}
