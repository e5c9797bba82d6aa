//! Rollup: the worst monitor state per host, platform, tenant, isv and cloud, with the monitor
//! that causes it.
//!
//! The worst contributor of a group is the one with the worst state; among equally bad ones the
//! one in that state the longest (earliest `since_ms`), then the first by path
//! (cloud, isv, tenant, platform, host, monitor). The result is therefore deterministic,
//! whatever the order of the input.
//!
//! Groups: a host is keyed by (platform, host) since host names are unique only within a
//! platform; a tenant by (isv, tenant) since it is a customer of one isv; platforms, isvs and
//! clouds by name. A host's cloud is its own (a host may run in another cloud than its
//! platform), so a platform can contribute to several clouds.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use cloudkeep_model::State;

/// Where a monitor sits. Field order is the tie-break order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonitorPath<K> {
    /// The cloud (site/region) the host runs in.
    pub cloud: K,
    /// The isv (vendor) running the platform.
    pub isv: K,
    /// The tenant (customer of the isv) the platform serves.
    pub tenant: K,
    /// The platform.
    pub platform: K,
    /// The host.
    pub host: K,
    /// The monitor on the host.
    pub monitor: K,
}

/// The current state of one monitor (the worst of its rules), with why.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorStatus<K> {
    /// Where the monitor sits.
    pub path: MonitorPath<K>,
    /// Its state.
    pub state: State,
    /// Since when it has been in that state.
    pub since_ms: i64,
    /// The value behind the state (the rule's last value), if any.
    pub value: Option<f64>,
    /// The level crossed (e.g. `cpu busy`), if any.
    pub level_name: Option<String>,
}

/// How many monitors of a group are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Monitors that are ok.
    pub ok: usize,
    /// Monitors that are unknown.
    pub unknown: usize,
    /// Monitors that are warning.
    pub warning: usize,
    /// Monitors that are critical.
    pub critical: usize,
}

impl StateCounts {
    fn add(&mut self, state: State) {
        match state {
            State::Ok => self.ok += 1,
            State::Unknown => self.unknown += 1,
            State::Warning => self.warning += 1,
            State::Critical => self.critical += 1,
        }
    }
}

/// The rolled-up state of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus<K> {
    /// The worst state of the group's monitors.
    pub state: State,
    /// The worst contributor (see the module docs for ties); when the group is ok it is
    /// simply the longest-ok monitor.
    pub cause: MonitorStatus<K>,
    /// How many of the group's monitors are in each state.
    pub counts: StateCounts,
}

/// The worst state of every group that has at least one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup<K> {
    /// Per (platform, host).
    pub hosts: BTreeMap<(K, K), GroupStatus<K>>,
    /// Per platform.
    pub platforms: BTreeMap<K, GroupStatus<K>>,
    /// Per (isv, tenant).
    pub tenants: BTreeMap<(K, K), GroupStatus<K>>,
    /// Per isv.
    pub isvs: BTreeMap<K, GroupStatus<K>>,
    /// Per cloud.
    pub clouds: BTreeMap<K, GroupStatus<K>>,
}

/// Smaller is a worse (more important) contributor.
fn rank<K: Ord>(status: &MonitorStatus<K>) -> (Reverse<State>, i64, &MonitorPath<K>) {
    (Reverse(status.state), status.since_ms, &status.path)
}

/// The index of the worst contributor and the counts, per group, borrowing the keys.
struct Accumulator<Key> {
    groups: BTreeMap<Key, (usize, StateCounts)>,
}

impl<Key: Ord> Accumulator<Key> {
    fn new() -> Self {
        Accumulator {
            groups: BTreeMap::new(),
        }
    }

    fn add<K: Ord>(&mut self, key: Key, index: usize, items: &[MonitorStatus<K>]) {
        let Some(item) = items.get(index) else {
            return;
        };
        let entry = self
            .groups
            .entry(key)
            .or_insert((index, StateCounts::default()));
        entry.1.add(item.state);
        if let Some(current) = items.get(entry.0)
            && rank(item) < rank(current)
        {
            entry.0 = index;
        }
    }

    fn finish<K: Clone, Owned: Ord>(
        self,
        items: &[MonitorStatus<K>],
        own: impl Fn(Key) -> Owned,
    ) -> BTreeMap<Owned, GroupStatus<K>> {
        self.groups
            .into_iter()
            .filter_map(|(key, (index, counts))| {
                let cause = items.get(index)?.clone();
                Some((
                    own(key),
                    GroupStatus {
                        state: cause.state,
                        cause,
                        counts,
                    },
                ))
            })
            .collect()
    }
}

/// Roll the monitors' states up to hosts, platforms, tenants, isvs and clouds.
#[must_use]
pub fn rollup<K: Ord + Clone>(items: &[MonitorStatus<K>]) -> Rollup<K> {
    let mut hosts = Accumulator::new();
    let mut platforms = Accumulator::new();
    let mut tenants = Accumulator::new();
    let mut isvs = Accumulator::new();
    let mut clouds = Accumulator::new();
    for (index, item) in items.iter().enumerate() {
        let path = &item.path;
        hosts.add((&path.platform, &path.host), index, items);
        platforms.add(&path.platform, index, items);
        tenants.add((&path.isv, &path.tenant), index, items);
        isvs.add(&path.isv, index, items);
        clouds.add(&path.cloud, index, items);
    }
    Rollup {
        hosts: hosts.finish(items, |(platform, host)| (platform.clone(), host.clone())),
        platforms: platforms.finish(items, K::clone),
        tenants: tenants.finish(items, |(isv, tenant)| (isv.clone(), tenant.clone())),
        isvs: isvs.finish(items, K::clone),
        clouds: clouds.finish(items, K::clone),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::{Debug, Write};

    use expect_test::expect;

    use super::*;

    fn status(
        path: [&'static str; 6],
        state: State,
        since_ms: i64,
        value: Option<f64>,
        level_name: Option<&str>,
    ) -> MonitorStatus<&'static str> {
        let [cloud, isv, tenant, platform, host, monitor] = path;
        MonitorStatus {
            path: MonitorPath {
                cloud,
                isv,
                tenant,
                platform,
                host,
                monitor,
            },
            state,
            since_ms,
            value,
            level_name: level_name.map(str::to_owned),
        }
    }

    fn render<Key: Debug>(
        out: &mut String,
        title: &str,
        groups: &BTreeMap<Key, GroupStatus<&str>>,
    ) {
        for (key, group) in groups {
            let c = &group.counts;
            writeln!(
                out,
                "{title} {key:?}: {} by {}/{} {:?} {:?} since {} [ok {} unknown {} warning {} critical {}]",
                group.state,
                group.cause.path.host,
                group.cause.path.monitor,
                group.cause.value,
                group.cause.level_name,
                group.cause.since_ms,
                c.ok,
                c.unknown,
                c.warning,
                c.critical
            )
            .unwrap();
        }
    }

    fn render_all(rollup: &Rollup<&str>) -> String {
        let mut out = String::new();
        render(&mut out, "host", &rollup.hosts);
        render(&mut out, "platform", &rollup.platforms);
        render(&mut out, "tenant", &rollup.tenants);
        render(&mut out, "isv", &rollup.isvs);
        render(&mut out, "cloud", &rollup.clouds);
        out
    }

    fn fixture() -> Vec<MonitorStatus<&'static str>> {
        vec![
            status(
                ["uk1", "acme", "globex", "acme-prod", "app1", "cpu"],
                State::Warning,
                500,
                Some(85.0),
                Some("cpu busy"),
            ),
            status(
                ["uk1", "acme", "globex", "acme-prod", "app1", "df"],
                State::Ok,
                100,
                Some(40.0),
                None,
            ),
            status(
                ["uk1", "acme", "globex", "acme-prod", "db1", "df"],
                State::Critical,
                900,
                Some(97.0),
                Some("filesystem full"),
            ),
            // Same state, earlier since: wins over db1/df for platform, tenant, isv.
            status(
                ["de1", "acme", "globex", "acme-prod", "db2", "memory"],
                State::Critical,
                700,
                Some(98.0),
                Some("memory exhausted"),
            ),
            status(
                ["uk1", "acme", "initech", "acme-test", "app1", "heartbeat"],
                State::Unknown,
                300,
                None,
                None,
            ),
            // A tenant of the same name under another isv: tenants are keyed by (isv, tenant).
            status(
                ["uk1", "umbrella", "initech", "umb-prod", "web1", "cpu"],
                State::Ok,
                50,
                Some(3.0),
                None,
            ),
        ]
    }

    #[test]
    fn worst_contributor_per_group() {
        let items = fixture();
        expect![[r#"
            host ("acme-prod", "app1"): warning by app1/cpu Some(85.0) Some("cpu busy") since 500 [ok 1 unknown 0 warning 1 critical 0]
            host ("acme-prod", "db1"): critical by db1/df Some(97.0) Some("filesystem full") since 900 [ok 0 unknown 0 warning 0 critical 1]
            host ("acme-prod", "db2"): critical by db2/memory Some(98.0) Some("memory exhausted") since 700 [ok 0 unknown 0 warning 0 critical 1]
            host ("acme-test", "app1"): unknown by app1/heartbeat None None since 300 [ok 0 unknown 1 warning 0 critical 0]
            host ("umb-prod", "web1"): ok by web1/cpu Some(3.0) None since 50 [ok 1 unknown 0 warning 0 critical 0]
            platform "acme-prod": critical by db2/memory Some(98.0) Some("memory exhausted") since 700 [ok 1 unknown 0 warning 1 critical 2]
            platform "acme-test": unknown by app1/heartbeat None None since 300 [ok 0 unknown 1 warning 0 critical 0]
            platform "umb-prod": ok by web1/cpu Some(3.0) None since 50 [ok 1 unknown 0 warning 0 critical 0]
            tenant ("acme", "globex"): critical by db2/memory Some(98.0) Some("memory exhausted") since 700 [ok 1 unknown 0 warning 1 critical 2]
            tenant ("acme", "initech"): unknown by app1/heartbeat None None since 300 [ok 0 unknown 1 warning 0 critical 0]
            tenant ("umbrella", "initech"): ok by web1/cpu Some(3.0) None since 50 [ok 1 unknown 0 warning 0 critical 0]
            isv "acme": critical by db2/memory Some(98.0) Some("memory exhausted") since 700 [ok 1 unknown 1 warning 1 critical 2]
            isv "umbrella": ok by web1/cpu Some(3.0) None since 50 [ok 1 unknown 0 warning 0 critical 0]
            cloud "de1": critical by db2/memory Some(98.0) Some("memory exhausted") since 700 [ok 0 unknown 0 warning 0 critical 1]
            cloud "uk1": critical by db1/df Some(97.0) Some("filesystem full") since 900 [ok 2 unknown 1 warning 1 critical 1]
        "#]].assert_eq(&render_all(&rollup(&items)));
    }

    #[test]
    fn order_of_items_does_not_matter() {
        let items = fixture();
        let expected = rollup(&items);
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(rollup(&reversed), expected);
        for shift in 0..items.len() {
            let mut rotated = items.clone();
            rotated.rotate_left(shift);
            assert_eq!(rollup(&rotated), expected);
        }
    }

    #[test]
    fn full_ties_break_by_path() {
        let items = vec![
            status(
                ["c", "i", "t", "p", "h", "zeta"],
                State::Warning,
                10,
                None,
                None,
            ),
            status(
                ["c", "i", "t", "p", "h", "alpha"],
                State::Warning,
                10,
                None,
                None,
            ),
            status(
                ["c", "i", "t", "p", "h", "mid"],
                State::Warning,
                5,
                None,
                None,
            ),
        ];
        let result = rollup(&items);
        assert_eq!(result.hosts[&("p", "h")].cause.path.monitor, "mid");
        let tied = &items[..2];
        assert_eq!(rollup(tied).hosts[&("p", "h")].cause.path.monitor, "alpha");
        assert_eq!(
            rollup::<&str>(&[]),
            Rollup {
                hosts: BTreeMap::new(),
                platforms: BTreeMap::new(),
                tenants: BTreeMap::new(),
                isvs: BTreeMap::new(),
                clouds: BTreeMap::new(),
            }
        );
    }
}
