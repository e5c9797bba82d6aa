//! The outside watcher's judgement (`cloudkeep watch`): is the control plane up, and are its agents
//! still reporting? Pure: the caller probes the server and passes what it saw and when.
//!
//! Two monitors, each with its own state: `server` (the API answers `/readyz`) and `agents` (at least one
//! enrolled host reported within `stale_after_ms`). A monitor goes critical after `failures_to_alert`
//! consecutive bad probes and back to ok on the first good one; each change is reported once.

use cloudkeep_model::State;

/// What one probe of the server found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The API did not answer ready; why (connection refused, timeout, HTTP status…).
    Unreachable(String),
    /// The API answered ready; the agents' last reports, when the watcher may list hosts.
    Reachable {
        /// `(host, last seen in Unix ms)` of every enrolled host; `None` without a token to list them.
        hosts: Option<Vec<(String, Option<i64>)>>,
    },
}

/// Thresholds of the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchPolicy {
    /// Consecutive bad probes before a monitor turns critical (at least 1).
    pub failures_to_alert: u32,
    /// A host that has not reported for this long counts as silent.
    pub stale_after_ms: i64,
}

/// One monitor of the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMonitor {
    /// The control plane's API.
    Server,
    /// The agents' reports, as the server shows them.
    Agents,
}

impl WatchMonitor {
    /// `server` or `agents`.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchMonitor::Server => "server",
            WatchMonitor::Agents => "agents",
        }
    }
}

/// A monitor changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchChange {
    pub monitor: WatchMonitor,
    pub from: State,
    pub to: State,
    /// What a person should read, e.g. `control plane not answering for 3 probes: connection refused`.
    pub message: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MonitorState {
    state: State,
    consecutive_failures: u32,
}

impl Default for MonitorState {
    fn default() -> Self {
        MonitorState {
            state: State::Ok,
            consecutive_failures: 0,
        }
    }
}

impl MonitorState {
    /// Counts one probe; the new state if it changed.
    fn observe(&mut self, bad: bool, policy: &WatchPolicy) -> Option<(State, State)> {
        let from = self.state;
        if bad {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if self.consecutive_failures >= policy.failures_to_alert.max(1) {
                self.state = State::Critical;
            }
        } else {
            self.consecutive_failures = 0;
            self.state = State::Ok;
        }
        (from != self.state).then_some((from, self.state))
    }
}

/// The watcher's memory between probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    server: MonitorState,
    agents: MonitorState,
}

impl Watch {
    /// Judges one probe made at `now_ms`; returns the state changes to notify.
    pub fn observe(
        &mut self,
        probe: &Probe,
        policy: &WatchPolicy,
        now_ms: i64,
    ) -> Vec<WatchChange> {
        let mut changes = Vec::new();
        match probe {
            Probe::Unreachable(why) => {
                if let Some((from, to)) = self.server.observe(true, policy) {
                    changes.push(WatchChange {
                        monitor: WatchMonitor::Server,
                        from,
                        to,
                        message: format!(
                            "control plane not answering for {} probes: {why}",
                            self.server.consecutive_failures
                        ),
                        at_ms: now_ms,
                    });
                }
                // While the server is down nothing is known of the agents: their monitor keeps its state.
            }
            Probe::Reachable { hosts } => {
                if let Some((from, to)) = self.server.observe(false, policy) {
                    changes.push(WatchChange {
                        monitor: WatchMonitor::Server,
                        from,
                        to,
                        message: "control plane answering again".into(),
                        at_ms: now_ms,
                    });
                }
                if let Some(hosts) = hosts {
                    changes.extend(self.observe_agents(hosts, policy, now_ms));
                }
            }
        }
        changes
    }

    fn observe_agents(
        &mut self,
        hosts: &[(String, Option<i64>)],
        policy: &WatchPolicy,
        now_ms: i64,
    ) -> Option<WatchChange> {
        let reported: Vec<&(String, Option<i64>)> =
            hosts.iter().filter(|(_, seen)| seen.is_some()).collect();
        let silent: Vec<&str> = reported
            .iter()
            .filter(|(_, seen)| seen.is_some_and(|seen| now_ms - seen > policy.stale_after_ms))
            .map(|(host, _)| host.as_str())
            .collect();
        // Every agent that ever reported is silent: the server stopped receiving, or every host is gone.
        let bad = !reported.is_empty() && silent.len() == reported.len();
        let (from, to) = self.agents.observe(bad, policy)?;
        let message = if to == State::Ok {
            "agents reporting again".to_owned()
        } else {
            let mut names = silent
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if silent.len() > 10 {
                names.push_str(&format!(" and {} more", silent.len() - 10));
            }
            format!(
                "no agent has reported for more than {} s ({} silent: {names})",
                policy.stale_after_ms / 1000,
                silent.len()
            )
        };
        Some(WatchChange {
            monitor: WatchMonitor::Agents,
            from,
            to,
            message,
            at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: WatchPolicy = WatchPolicy {
        failures_to_alert: 3,
        stale_after_ms: 60_000,
    };

    fn down() -> Probe {
        Probe::Unreachable("connection refused".into())
    }

    fn up(hosts: &[(&str, Option<i64>)]) -> Probe {
        Probe::Reachable {
            hosts: Some(
                hosts
                    .iter()
                    .map(|(name, seen)| ((*name).to_owned(), *seen))
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_server_pages_after_consecutive_failures_and_recovers_once() {
        let mut watch = Watch::default();
        assert!(watch.observe(&down(), &POLICY, 1).is_empty());
        assert!(watch.observe(&down(), &POLICY, 2).is_empty());
        let changes = watch.observe(&down(), &POLICY, 3);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].monitor, WatchMonitor::Server);
        assert_eq!(
            (changes[0].from, changes[0].to),
            (State::Ok, State::Critical)
        );
        assert!(changes[0].message.contains("3 probes: connection refused"));
        assert!(watch.observe(&down(), &POLICY, 4).is_empty(), "told once");
        let changes = watch.observe(&up(&[]), &POLICY, 5);
        assert_eq!(
            (changes[0].from, changes[0].to),
            (State::Critical, State::Ok)
        );
        assert!(watch.observe(&up(&[]), &POLICY, 6).is_empty());
    }

    #[test]
    fn a_good_probe_resets_the_count() {
        let mut watch = Watch::default();
        for at in 0..10 {
            assert!(watch.observe(&down(), &POLICY, at * 2).is_empty());
            assert!(watch.observe(&up(&[]), &POLICY, at * 2 + 1).is_empty());
        }
    }

    #[test]
    fn agents_page_only_when_every_reporting_agent_is_silent() {
        let mut watch = Watch::default();
        let now = 1_000_000;
        let one_fresh = up(&[
            ("a", Some(now - 120_000)),
            ("b", Some(now - 1_000)),
            ("new", None),
        ]);
        for _ in 0..5 {
            assert!(watch.observe(&one_fresh, &POLICY, now).is_empty());
        }
        let all_silent = up(&[
            ("a", Some(now - 120_000)),
            ("b", Some(now - 61_000)),
            ("new", None),
        ]);
        assert!(watch.observe(&all_silent, &POLICY, now).is_empty());
        assert!(watch.observe(&all_silent, &POLICY, now).is_empty());
        let changes = watch.observe(&all_silent, &POLICY, now);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].monitor, WatchMonitor::Agents);
        assert!(
            changes[0].message.contains("2 silent: a, b"),
            "{}",
            changes[0].message
        );
        // The server going away says nothing new about the agents.
        for at in 0..3 {
            let changes = watch.observe(&down(), &POLICY, now + at);
            assert!(changes.iter().all(|c| c.monitor == WatchMonitor::Server));
        }
        let changes = watch.observe(&one_fresh, &POLICY, now + 10);
        assert_eq!(changes.len(), 2, "server and agents both back: {changes:?}");
    }

    #[test]
    fn no_host_or_no_token_never_pages_the_agents() {
        let mut watch = Watch::default();
        for at in 0..10 {
            assert!(watch.observe(&up(&[]), &POLICY, at).is_empty());
            assert!(
                watch
                    .observe(&Probe::Reachable { hosts: None }, &POLICY, at)
                    .is_empty()
            );
        }
    }
}
