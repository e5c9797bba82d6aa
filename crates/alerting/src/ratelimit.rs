//! Per-contact rate limiting: at most `max_per_hour` notifications to one contact in any sliding hour.
//!
//! Exact sliding window: the limiter remembers when each notification of the last hour was allowed, so memory
//! is bounded by `max_per_hour` timestamps per contact notified within the last hour (contacts that have been
//! quiet for an hour are forgotten). A limited notification should not be queued: the notifier counts it and
//! says "N more notifications were held back" in the next one that is allowed.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU32;

use crate::policy_config::{DEFAULT_MAX_PER_HOUR, NotifyPolicy};

const HOUR_MS: i64 = 3_600_000;
/// Sweep idle contacts every this many checks, so a stream of distinct names cannot grow the map.
const SWEEP_EVERY_CHECKS: u32 = 1024;

/// What [`RateLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateDecision {
    /// Send it; the notification was counted.
    Allowed,
    /// Do not send; the contact's limit is reached. A slot frees up in `retry_after_ms`.
    Limited {
        /// Milliseconds until the oldest counted notification leaves the sliding hour (at least 1).
        retry_after_ms: i64,
    },
}

/// Sliding-window rate limiter over all contacts; a pure state machine (time is passed in).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: BTreeMap<String, NonZeroU32>,
    default_limit: NonZeroU32,
    /// Per contact, the instants of the allowed notifications of the last hour, oldest first.
    sent: BTreeMap<String, VecDeque<i64>>,
    checks_since_sweep: u32,
}

impl RateLimiter {
    /// A limiter with `limits` per contact; any other contact gets `default_limit`.
    pub fn new(
        limits: impl IntoIterator<Item = (String, NonZeroU32)>,
        default_limit: NonZeroU32,
    ) -> RateLimiter {
        RateLimiter {
            limits: limits.into_iter().collect(),
            default_limit,
            sent: BTreeMap::new(),
            checks_since_sweep: 0,
        }
    }

    /// A limiter with each contact's `max_per_hour` from the policy (default 30 for unknown contacts).
    pub fn for_policy(policy: &NotifyPolicy) -> RateLimiter {
        RateLimiter::new(
            policy
                .contacts()
                .map(|contact| (contact.name().to_owned(), contact.max_per_hour())),
            NonZeroU32::new(DEFAULT_MAX_PER_HOUR).unwrap_or(NonZeroU32::MIN),
        )
    }

    /// Takes new limits after a configuration reload, keeping what was already sent.
    pub fn update_limits(&mut self, policy: &NotifyPolicy) {
        self.limits = policy
            .contacts()
            .map(|contact| (contact.name().to_owned(), contact.max_per_hour()))
            .collect();
    }

    /// Whether a notification to `contact` may go out at `now_ms`; if so, it is counted.
    pub fn check(&mut self, contact: &str, now_ms: i64) -> RateDecision {
        self.checks_since_sweep += 1;
        if self.checks_since_sweep >= SWEEP_EVERY_CHECKS {
            self.forget_idle(now_ms);
        }
        let limit = self
            .limits
            .get(contact)
            .copied()
            .unwrap_or(self.default_limit);
        let limit = usize::try_from(limit.get()).unwrap_or(usize::MAX);
        let window_start = now_ms.saturating_sub(HOUR_MS);
        let sent = self.sent.entry(contact.to_owned()).or_default();
        while sent.front().is_some_and(|&at| at <= window_start) {
            sent.pop_front();
        }
        // A lowered limit may leave more entries than allowed: drop the oldest beyond it to stay bounded.
        while sent.len() > limit {
            sent.pop_front();
        }
        if sent.len() < limit {
            sent.push_back(now_ms);
            return RateDecision::Allowed;
        }
        let oldest = sent.front().copied().unwrap_or(now_ms);
        RateDecision::Limited {
            retry_after_ms: oldest.saturating_add(HOUR_MS).saturating_sub(now_ms).max(1),
        }
    }

    /// Forgets contacts that have not been notified in the last hour (called regularly by `check`).
    pub fn forget_idle(&mut self, now_ms: i64) {
        let window_start = now_ms.saturating_sub(HOUR_MS);
        self.sent
            .retain(|_, sent| sent.back().is_some_and(|&at| at > window_start));
        self.checks_since_sweep = 0;
    }

    /// How many contacts are tracked (for the server's own metrics and tests).
    pub fn tracked_contacts(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32) -> RateLimiter {
        RateLimiter::new(
            [("alice".to_owned(), NonZeroU32::new(limit).unwrap())],
            NonZeroU32::new(2).unwrap(),
        )
    }

    #[test]
    fn allows_up_to_the_limit_in_any_sliding_hour() {
        let mut limiter = limiter(3);
        assert_eq!(limiter.check("alice", 0), RateDecision::Allowed);
        assert_eq!(limiter.check("alice", 1_000), RateDecision::Allowed);
        assert_eq!(limiter.check("alice", 2_000), RateDecision::Allowed);
        assert_eq!(
            limiter.check("alice", 3_000),
            RateDecision::Limited {
                retry_after_ms: HOUR_MS - 3_000
            }
        );
        // Limited attempts are not counted: the first slot frees exactly an hour after the first send.
        assert_eq!(
            limiter.check("alice", HOUR_MS - 1),
            RateDecision::Limited { retry_after_ms: 1 }
        );
        assert_eq!(limiter.check("alice", HOUR_MS), RateDecision::Allowed);
        assert_eq!(
            limiter.check("alice", HOUR_MS + 500),
            RateDecision::Limited {
                retry_after_ms: 500
            }
        );
        assert_eq!(
            limiter.check("alice", HOUR_MS + 1_000),
            RateDecision::Allowed
        );
    }

    #[test]
    fn contacts_are_independent_and_unknown_ones_use_the_default() {
        let mut limiter = limiter(1);
        assert_eq!(limiter.check("alice", 0), RateDecision::Allowed);
        assert!(matches!(
            limiter.check("alice", 1),
            RateDecision::Limited { .. }
        ));
        assert_eq!(limiter.check("bob", 1), RateDecision::Allowed);
        assert_eq!(limiter.check("bob", 2), RateDecision::Allowed);
        assert!(matches!(
            limiter.check("bob", 3),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut limiter = limiter(5);
        // Many sends: never more than the limit remembered.
        for at in 0..10_000 {
            limiter.check("alice", at);
        }
        assert_eq!(limiter.sent.get("alice").map(VecDeque::len), Some(5));
        // Many distinct contacts over time: idle ones are swept.
        for index in 0..5_000i64 {
            limiter.check(&format!("c{index}"), index * 1_000);
        }
        assert!(limiter.tracked_contacts() <= 3_600 + SWEEP_EVERY_CHECKS as usize);
        limiter.forget_idle(100 * HOUR_MS);
        assert_eq!(limiter.tracked_contacts(), 0);
    }

    #[test]
    fn a_lowered_limit_takes_effect() {
        let mut limiter = limiter(5);
        for at in 0..5 {
            assert_eq!(limiter.check("alice", at), RateDecision::Allowed);
        }
        limiter
            .limits
            .insert("alice".into(), NonZeroU32::new(2).unwrap());
        assert!(matches!(
            limiter.check("alice", 10),
            RateDecision::Limited { .. }
        ));
        assert_eq!(limiter.sent.get("alice").map(VecDeque::len), Some(2));
    }
}
