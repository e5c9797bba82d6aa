//! Semantic validation of a parsed `PlatformSpec`: uniqueness, references and threshold ordering.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::duration::Duration;
use crate::error::JsonPath;
use crate::id::{ComponentName, HostName, MonitorName};
use crate::spec::{
    BackupSpec, ComponentKind, Direction, DrillSpec, MonitorSpec, PlatformSpec, RuleSpec,
};

/// A semantic problem: where it is and what it is.
pub(crate) type Problem = (JsonPath, String);

/// How many names to list in "defined ..." hints before eliding the rest.
const MAX_LISTED: usize = 10;

/// Every semantic problem of `spec`, in document order (roughly).
pub(crate) fn validate(spec: &PlatformSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let root = JsonPath::root();
    check_monitor_list(&mut problems, &root.key("monitors"), &spec.monitors);
    check_hosts(&mut problems, spec);
    check_backups(&mut problems, spec);
    check_rules(&mut problems, spec);
    problems
}

/// Duplicate names and zero intervals in the platform-wide monitor list.
fn check_monitor_list(problems: &mut Vec<Problem>, path: &JsonPath, monitors: &[MonitorSpec]) {
    let mut seen: HashMap<&MonitorName, JsonPath> = HashMap::new();
    for (i, monitor) in monitors.iter().enumerate() {
        let here = path.index(i);
        check_interval(problems, &here, monitor);
        let name_path = here.key("name");
        if let Some(first) = seen.get(&monitor.name) {
            problems.push((
                name_path,
                format!(
                    "duplicate monitor {:?} (first defined at {first})",
                    monitor.name.as_str()
                ),
            ));
        } else {
            seen.insert(&monitor.name, name_path);
        }
    }
}

fn check_interval(problems: &mut Vec<Problem>, monitor_path: &JsonPath, monitor: &MonitorSpec) {
    if monitor.interval.is_some_and(|d| d.is_zero()) {
        problems.push((
            monitor_path.key("interval"),
            "interval must be greater than zero".to_owned(),
        ));
    }
}

/// Duplicate hosts, components per host and monitors per host.
fn check_hosts(problems: &mut Vec<Problem>, spec: &PlatformSpec) {
    let hosts_path = JsonPath::root().key("hosts");
    let mut seen_hosts: HashMap<&HostName, JsonPath> = HashMap::new();
    for (h, host) in spec.hosts.iter().enumerate() {
        let host_path = hosts_path.index(h);
        let name_path = host_path.key("name");
        if let Some(first) = seen_hosts.get(&host.name) {
            problems.push((
                name_path,
                format!(
                    "duplicate host {:?} (first defined at {first})",
                    host.name.as_str()
                ),
            ));
        } else {
            seen_hosts.insert(&host.name, name_path);
        }

        let mut seen_components: HashMap<&ComponentName, JsonPath> = HashMap::new();
        for (c, component) in host.components.iter().enumerate() {
            let name_path = host_path.key("components").index(c).key("name");
            if let Some(first) = seen_components.get(&component.name) {
                problems.push((
                    name_path,
                    format!(
                        "duplicate component {:?} on host {:?} (first defined at {first})",
                        component.name.as_str(),
                        host.name.as_str()
                    ),
                ));
            } else {
                seen_components.insert(&component.name, name_path);
            }
        }

        // The host's own monitors and its components' monitors share one namespace.
        let mut lists: Vec<(JsonPath, &[MonitorSpec])> =
            vec![(host_path.key("monitors"), host.monitors.as_slice())];
        for (c, component) in host.components.iter().enumerate() {
            lists.push((
                host_path.key("components").index(c).key("monitors"),
                component.monitors.as_slice(),
            ));
        }
        let mut seen_monitors: HashMap<&MonitorName, JsonPath> = HashMap::new();
        for (list_path, monitors) in lists {
            for (m, monitor) in monitors.iter().enumerate() {
                let here = list_path.index(m);
                check_interval(problems, &here, monitor);
                let name_path = here.key("name");
                if let Some(first) = seen_monitors.get(&monitor.name) {
                    problems.push((
                        name_path,
                        format!(
                            "duplicate monitor {:?} on host {:?} (first defined at {first})",
                            monitor.name.as_str(),
                            host.name.as_str()
                        ),
                    ));
                } else {
                    seen_monitors.insert(&monitor.name, name_path);
                }
            }
        }
    }
}

/// `backup` sections: only on databases, one per database name in the platform (the catalog and the
/// repository know a database by platform and name), and every setting in range.
fn check_backups(problems: &mut Vec<Problem>, spec: &PlatformSpec) {
    let hosts_path = JsonPath::root().key("hosts");
    let mut seen: HashMap<&ComponentName, (JsonPath, &HostName)> = HashMap::new();
    for (h, host) in spec.hosts.iter().enumerate() {
        for (c, component) in host.components.iter().enumerate() {
            let Some(backup) = &component.backup else {
                continue;
            };
            let backup_path = hosts_path.index(h).key("components").index(c).key("backup");
            if component.kind != ComponentKind::Database {
                problems.push((
                    backup_path.clone(),
                    format!(
                        "`backup` is only allowed on components of kind \"database\"; {:?} is of kind {:?}",
                        component.name.as_str(),
                        component.kind.as_str()
                    ),
                ));
            }
            if let Some((first, first_host)) = seen.get(&component.name) {
                problems.push((
                    backup_path.clone(),
                    format!(
                        "database {:?} is already backed up on host {:?} (at {first}); backed-up databases need distinct component names in a platform",
                        component.name.as_str(),
                        first_host.as_str()
                    ),
                ));
            } else {
                seen.insert(&component.name, (backup_path.clone(), &host.name));
            }
            check_backup_settings(problems, &backup_path, backup);
        }
    }
}

fn check_backup_settings(problems: &mut Vec<Problem>, path: &JsonPath, backup: &BackupSpec) {
    if !backup.pgdata.starts_with('/') {
        problems.push((
            path.key("pgdata"),
            format!(
                "{:?} is not an absolute path; give PostgreSQL's data directory, e.g. \"/var/lib/postgresql/15/main\"",
                backup.pgdata
            ),
        ));
    }
    if let Some(connection) = &backup.connection
        && !(connection.starts_with("postgres://") || connection.starts_with("postgresql://"))
    {
        // The text may hold a password: it is not repeated.
        problems.push((
            path.key("connection"),
            "must be a postgres:// or postgresql:// URL".to_owned(),
        ));
    }
    if let Some(full_every) = backup.full_every
        && full_every < BackupSpec::MIN_FULL_EVERY
    {
        problems.push((
            path.key("full_every"),
            format!(
                "{full_every} is too short; use at least {}",
                BackupSpec::MIN_FULL_EVERY
            ),
        ));
    }
    if let Some(every) = backup.incremental_every {
        if every < BackupSpec::MIN_FULL_EVERY {
            problems.push((
                path.key("incremental_every"),
                format!(
                    "{every} is too short; use at least {}",
                    BackupSpec::MIN_FULL_EVERY
                ),
            ));
        } else if every >= backup.effective_full_every() {
            problems.push((
                path.key("incremental_every"),
                format!(
                    "{every} is not less than full_every ({}): no incremental backup would ever be taken",
                    backup.effective_full_every()
                ),
            ));
        }
    }
    check_in_range(
        problems,
        path,
        "archive_timeout",
        backup.archive_timeout,
        &(BackupSpec::MIN_ARCHIVE_TIMEOUT..=BackupSpec::MAX_ARCHIVE_TIMEOUT),
    );
    if backup.heartbeat_every.is_some_and(Duration::is_zero) {
        problems.push((
            path.key("heartbeat_every"),
            "must be greater than zero".to_owned(),
        ));
    }
    if backup.keep_full == Some(0) {
        problems.push((
            path.key("keep_full"),
            "must be at least 1: retention never deletes the newest full backup".to_owned(),
        ));
    }
    check_in_range(
        problems,
        path,
        "compression_level",
        backup.compression_level,
        &BackupSpec::COMPRESSION_LEVELS,
    );
    check_in_range(
        problems,
        path,
        "parallel",
        backup.parallel,
        &BackupSpec::PARALLEL,
    );
    if let Some(split_size) = backup.split_size
        && split_size < BackupSpec::MIN_SPLIT_SIZE
    {
        problems.push((
            path.key("split_size"),
            format!(
                "{split_size} bytes is too small; use at least {} (1 MiB)",
                BackupSpec::MIN_SPLIT_SIZE
            ),
        ));
    }
    if let Some(drill) = &backup.drill {
        let drill_path = path.key("drill");
        if drill.every < DrillSpec::MIN_EVERY {
            problems.push((
                drill_path.key("every"),
                format!(
                    "{} is too short; use at least {}",
                    drill.every,
                    DrillSpec::MIN_EVERY
                ),
            ));
        }
        if let Some(key_file) = &drill.key_file
            && !key_file.starts_with('/')
        {
            problems.push((
                drill_path.key("key_file"),
                format!(
                    "{key_file:?} is not an absolute path; give the private key file's path on the database host"
                ),
            ));
        }
        if drill
            .check_sql
            .as_deref()
            .is_some_and(|sql| sql.trim().is_empty())
        {
            problems.push((
                drill_path.key("check_sql"),
                "is empty; give a query returning one row whose first column is true when healthy, or leave it out"
                    .to_owned(),
            ));
        }
    }
}

/// A problem at `path.field` when `value` is given and outside `range`.
fn check_in_range<T: PartialOrd + std::fmt::Display>(
    problems: &mut Vec<Problem>,
    path: &JsonPath,
    field: &str,
    value: Option<T>,
    range: &std::ops::RangeInclusive<T>,
) {
    if let Some(value) = value
        && !range.contains(&value)
    {
        problems.push((
            path.key(field),
            format!(
                "{value} is out of range; use {} to {}",
                range.start(),
                range.end()
            ),
        ));
    }
}

/// `a, b, c` with at most [`MAX_LISTED`] names, or `none`.
fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut out = names
        .iter()
        .take(MAX_LISTED)
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    out
}

/// Specificity of a rule's targeting; the most specific rule wins on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Platform,
    Component,
    Hosts,
}

impl Level {
    fn of(rule: &RuleSpec) -> Level {
        if rule.hosts.is_some() {
            Level::Hosts
        } else if rule.component.is_some() {
            Level::Component
        } else {
            Level::Platform
        }
    }
}

fn check_rules(problems: &mut Vec<Problem>, spec: &PlatformSpec) {
    let rules_path = JsonPath::root().key("rules");
    let declared_hosts: BTreeSet<&str> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
    let all_components: BTreeSet<&str> = spec
        .hosts
        .iter()
        .flat_map(|h| h.components.iter().map(|c| c.name.as_str()))
        .collect();
    let all_monitors: BTreeSet<&str> = spec
        .monitors
        .iter()
        .chain(spec.hosts.iter().flat_map(|h| h.local_monitors()))
        .map(|m| m.name.as_str())
        .collect();
    // The first host of each name (a duplicate name is reported on its own).
    let mut host_monitors: HashMap<&HostName, BTreeSet<&str>> = HashMap::new();
    for host in &spec.hosts {
        host_monitors.entry(&host.name).or_insert_with(|| {
            spec.monitors_of(host)
                .into_iter()
                .map(|m| m.name.as_str())
                .collect()
        });
    }

    // (host, monitor, metric, level) -> index of the first rule claiming it
    let mut claimed: BTreeMap<(&str, &str, &str, Level), usize> = BTreeMap::new();

    for (r, rule) in spec.rules.iter().enumerate() {
        let rule_path = rules_path.index(r);
        check_thresholds(problems, &rule_path, rule);

        let monitor_known = all_monitors.contains(rule.monitor.as_str());
        if !monitor_known {
            problems.push((
                rule_path.key("monitor"),
                format!(
                    "unknown monitor {:?}; defined monitors: {}",
                    rule.monitor.as_str(),
                    list_names(all_monitors.iter().copied())
                ),
            ));
        }

        let mut targets_ok = true;
        if rule.hosts.is_some() && rule.component.is_some() {
            problems.push((
                rule_path.key("component"),
                "`hosts` and `component` cannot be combined; use one of them".to_owned(),
            ));
            targets_ok = false;
        }
        if let Some(hosts) = &rule.hosts {
            if hosts.is_empty() {
                problems.push((
                    rule_path.key("hosts"),
                    "must list at least one host; leave `hosts` out to target every host with the monitor"
                        .to_owned(),
                ));
                targets_ok = false;
            }
            let mut seen: HashMap<&HostName, usize> = HashMap::new();
            for (i, host) in hosts.iter().enumerate() {
                let here = rule_path.key("hosts").index(i);
                if let Some(first) = seen.get(host) {
                    problems.push((
                        here,
                        format!(
                            "host {:?} is listed twice (first at {})",
                            host.as_str(),
                            rule_path.key("hosts").index(*first)
                        ),
                    ));
                } else {
                    seen.insert(host, i);
                }
                if !declared_hosts.contains(host.as_str()) {
                    problems.push((
                        rule_path.key("hosts").index(i),
                        format!(
                            "unknown host {:?}; defined hosts: {}",
                            host.as_str(),
                            list_names(declared_hosts.iter().copied())
                        ),
                    ));
                    targets_ok = false;
                }
            }
        }
        if let Some(component) = &rule.component
            && !all_components.contains(component.as_str())
        {
            problems.push((
                rule_path.key("component"),
                format!(
                    "no host has component {:?}; defined components: {}",
                    component.as_str(),
                    list_names(all_components.iter().copied())
                ),
            ));
            targets_ok = false;
        }

        if !(monitor_known && targets_ok) {
            continue;
        }
        // a set: duplicate host names are reported elsewhere
        let targets: BTreeSet<&HostName> = spec.rule_targets(rule).into_iter().collect();
        let missing: Vec<&str> = targets
            .iter()
            .filter(|h| {
                !host_monitors
                    .get(*h)
                    .is_some_and(|names| names.contains(rule.monitor.as_str()))
            })
            .map(|h| h.as_str())
            .collect();
        if !missing.is_empty() {
            let via = match &rule.component {
                Some(component) => format!(" (targeted via component {:?})", component.as_str()),
                None => String::new(),
            };
            let plural = if missing.len() == 1 { "" } else { "s" };
            problems.push((
                rule_path.key("monitor"),
                format!(
                    "monitor {:?} is not defined on host{plural} {}{via}",
                    rule.monitor.as_str(),
                    list_names(missing.iter().copied())
                ),
            ));
            continue;
        }

        let level = Level::of(rule);
        let mut conflicts: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for host in targets {
            let key = (
                host.as_str(),
                rule.monitor.as_str(),
                rule.metric.as_str(),
                level,
            );
            if let Some(first) = claimed.get(&key) {
                conflicts.entry(*first).or_default().push(host.as_str());
            } else {
                claimed.insert(key, r);
            }
        }
        for (first, hosts) in conflicts {
            problems.push((
                rule_path.clone(),
                format!(
                    "duplicates {} for monitor {:?} metric {:?} on {} {} (both {}); merge them or target different hosts",
                    rules_path.index(first),
                    rule.monitor.as_str(),
                    rule.metric.as_str(),
                    if hosts.len() == 1 { "host" } else { "hosts" },
                    list_names(hosts),
                    match level {
                        Level::Hosts => "list hosts",
                        Level::Component => "target by component",
                        Level::Platform => "platform-wide",
                    }
                ),
            ));
        }
    }
}

/// Threshold presence, finiteness and ordering for the rule's direction.
fn check_thresholds(problems: &mut Vec<Problem>, rule_path: &JsonPath, rule: &RuleSpec) {
    for (field, value) in [
        ("warning", rule.warning),
        ("critical", rule.critical),
        ("clear", rule.clear),
    ] {
        if value.is_some_and(|v| !v.is_finite()) {
            problems.push((rule_path.key(field), "must be a finite number".to_owned()));
            return;
        }
    }
    if rule.warning.is_none() && rule.critical.is_none() {
        problems.push((
            rule_path.clone(),
            "a rule needs a `warning` or a `critical` threshold (or both)".to_owned(),
        ));
        return;
    }
    let direction = rule.direction;
    // "worse" is above for above rules, below for below rules
    let (worse, better) = match direction {
        Direction::Above => ("above", "below"),
        Direction::Below => ("below", "above"),
    };
    let is_worse = |a: f64, b: f64| match direction {
        Direction::Above => a > b,
        Direction::Below => a < b,
    };
    if let (Some(warning), Some(critical)) = (rule.warning, rule.critical)
        && !is_worse(critical, warning)
    {
        problems.push((
            rule_path.key("critical"),
            format!(
                "critical threshold {critical} must be {worse} warning threshold {warning} (direction {:?})",
                direction.as_str()
            ),
        ));
    }
    if let Some(clear) = rule.clear {
        // clear must be on the good side of the first threshold that raises the state
        let (name, threshold) = match (rule.warning, rule.critical) {
            (Some(warning), _) => ("warning", warning),
            (None, Some(critical)) => ("critical", critical),
            (None, None) => return,
        };
        if !is_worse(threshold, clear) {
            problems.push((
                rule_path.key("clear"),
                format!(
                    "clear threshold {clear} must be {better} {name} threshold {threshold} (direction {:?})",
                    direction.as_str()
                ),
            ));
        }
    }
}
