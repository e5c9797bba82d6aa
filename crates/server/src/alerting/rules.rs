//! Rules compiled from the platform specs: spec overrides over the shipped defaults, per host,
//! indexed by metric name and host for the ingest path.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cloudkeep_alerting::{FlapPolicy, Level, RuleParams, defaults};

use cloudkeep_model::{MonitorKind, MonitorSpec, PlatformSpec, RuleSpec};

/// Where an alert belongs in the roll-up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub cloud: String,
    pub isv: String,
    pub tenant: String,
    pub platform: String,
    pub host: String,
}

/// How a compiled rule decides its state.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// Thresholds on a metric's value.
    Threshold(RuleParams),
    /// A check's own status (`check_status` samples, Nagios codes).
    CheckStatus {
        no_data_after_ms: i64,
        flap: FlapPolicy,
    },
}

/// What feeds a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Samples of `metric` for the host (and the monitor, for checks' series).
    Rule,
    /// `check_status{monitor}` of the host's check.
    Check,
    /// Computed by the server from the agent's last report.
    Heartbeat,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rule => "rule",
            Source::Check => "check",
            Source::Heartbeat => "heartbeat",
        }
    }
}

/// One rule bound to one host.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    pub scope: Arc<Scope>,
    pub monitor: String,
    pub monitor_kind: MonitorKind,
    pub metric: String,
    pub source: Source,
    pub evaluation: Evaluation,
    /// Contacts or groups named by the rule; empty means "use the routes".
    pub notify: Vec<String>,
    /// For heartbeats: the expected reporting interval.
    pub interval_ms: i64,
    /// Whether the metric's series carry this rule's `monitor` label (checks' metrics do).
    pub match_monitor_label: bool,
}

/// The metric the server computes for heartbeats: whole intervals since the agent last reported.
pub const HEARTBEAT_METRIC: &str = "cloudkeep_heartbeat_missed_intervals";

/// The metric agents send for every check run.
pub const CHECK_STATUS_METRIC: &str = "check_status";

/// The agent's default collection interval, used when a heartbeat monitor names none.
const DEFAULT_INTERVAL_MS: i64 = 10_000;

/// Flap detection applied to every rule: 6 state changes within 30 minutes.
pub const DEFAULT_FLAP: FlapPolicy = FlapPolicy {
    window_ms: 30 * 60_000,
    max_changes: 6,
};

/// Kinds whose state comes from the agent's check (`check_status`).
pub fn is_check_kind(kind: MonitorKind) -> bool {
    matches!(
        kind,
        MonitorKind::Process
            | MonitorKind::Http
            | MonitorKind::Tcp
            | MonitorKind::Command
            | MonitorKind::Postgres
            | MonitorKind::Prometheus
    )
}

/// Every compiled rule of every platform, indexed for lookups.
#[derive(Debug, Default)]
pub struct RuleSet {
    by_metric_host: HashMap<(String, String), Vec<Arc<CompiledRule>>>,
    heartbeats: Vec<Arc<CompiledRule>>,
    watched_metrics: HashSet<String>,
    rule_count: usize,
}

impl RuleSet {
    /// Rules fed by `metric` on `host`.
    pub fn lookup(&self, metric: &str, host: &str) -> &[Arc<CompiledRule>] {
        // A tuple key of owned strings cannot be looked up by borrowed parts without allocating;
        // the watched-metric check in front of this keeps the allocation off the common path.
        self.by_metric_host
            .get(&(metric.to_owned(), host.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    pub fn watches(&self, metric: &str) -> bool {
        self.watched_metrics.contains(metric)
    }

    pub fn heartbeats(&self) -> &[Arc<CompiledRule>] {
        &self.heartbeats
    }

    pub fn len(&self) -> usize {
        self.rule_count
    }

    pub fn is_empty(&self) -> bool {
        self.rule_count == 0
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<CompiledRule>> {
        self.by_metric_host
            .values()
            .flatten()
            .chain(self.heartbeats.iter())
    }

    fn add(&mut self, rule: CompiledRule) {
        self.rule_count += 1;
        let rule = Arc::new(rule);
        if rule.source == Source::Heartbeat {
            self.heartbeats.push(rule);
            return;
        }
        self.watched_metrics.insert(rule.metric.clone());
        self.by_metric_host
            .entry((rule.metric.clone(), rule.scope.host.clone()))
            .or_default()
            .push(rule);
    }
}

/// Compiles every platform's rules: for each host and each of its monitors, the spec's rules
/// targeting it, then the shipped defaults for the monitor's kind that no spec rule replaces
/// (same monitor and metric), then the check-status rule for check kinds.
pub fn compile(platforms: &[PlatformSpec]) -> RuleSet {
    let mut set = RuleSet::default();
    for platform in platforms {
        for host in &platform.hosts {
            let scope = Arc::new(Scope {
                cloud: host.effective_cloud(&platform.cloud).to_string(),
                isv: platform.isv.to_string(),
                tenant: platform.tenant.to_string(),
                platform: platform.platform.to_string(),
                host: host.name.to_string(),
            });
            let monitors = platform.monitors_of(host);
            let mut overridden: BTreeSet<(String, String)> = BTreeSet::new();
            for rule in &platform.rules {
                if !platform.rule_applies_to(rule, host) {
                    continue;
                }
                let Some(monitor) = monitors.iter().find(|m| m.name == rule.monitor) else {
                    continue;
                };
                overridden.insert((rule.monitor.to_string(), rule.metric.to_string()));
                set.add(spec_rule(&scope, monitor, rule));
            }
            for component in &host.components {
                let Some(backup) = &component.backup else {
                    continue;
                };
                let archive_timeout_ms = millis(backup.effective_archive_timeout());
                let full_every_ms = millis(backup.effective_full_every());
                for (metric, params) in defaults::backup_rules(archive_timeout_ms, full_every_ms) {
                    set.add(CompiledRule {
                        scope: scope.clone(),
                        monitor: format!("{}-backup", component.name),
                        monitor_kind: MonitorKind::Postgres,
                        metric: metric.to_owned(),
                        source: Source::Rule,
                        evaluation: Evaluation::Threshold(params),
                        notify: Vec::new(),
                        interval_ms: defaults::DEFAULT_AGENT_INTERVAL_MS,
                        match_monitor_label: false,
                    });
                }
            }
            for monitor in &monitors {
                let interval_ms = monitor_interval_ms(monitor);
                for default in defaults::DEFAULT_RULES
                    .iter()
                    .filter(|default| default.monitor_kind == monitor.kind.as_str())
                {
                    if overridden.contains(&(monitor.name.to_string(), default.metric.to_owned())) {
                        continue;
                    }
                    let params = default.params_for_interval(interval_ms);
                    set.add(CompiledRule {
                        scope: scope.clone(),
                        monitor: monitor.name.to_string(),
                        monitor_kind: monitor.kind,
                        metric: default.metric.to_owned(),
                        source: if monitor.kind == MonitorKind::Heartbeat {
                            Source::Heartbeat
                        } else {
                            Source::Rule
                        },
                        evaluation: Evaluation::Threshold(params),
                        notify: Vec::new(),
                        interval_ms,
                        match_monitor_label: is_check_kind(monitor.kind),
                    });
                }
                if is_check_kind(monitor.kind) {
                    set.add(CompiledRule {
                        scope: scope.clone(),
                        monitor: monitor.name.to_string(),
                        monitor_kind: monitor.kind,
                        metric: CHECK_STATUS_METRIC.to_owned(),
                        source: Source::Check,
                        evaluation: Evaluation::CheckStatus {
                            no_data_after_ms: defaults::check_no_data_after_ms(interval_ms),
                            flap: DEFAULT_FLAP,
                        },
                        notify: Vec::new(),
                        interval_ms,
                        match_monitor_label: true,
                    });
                }
            }
        }
    }
    set
}

fn monitor_interval_ms(monitor: &MonitorSpec) -> i64 {
    monitor
        .interval
        .map_or(DEFAULT_INTERVAL_MS, millis)
        .max(1000)
}

fn spec_rule(scope: &Arc<Scope>, monitor: &MonitorSpec, rule: &RuleSpec) -> CompiledRule {
    let interval_ms = monitor_interval_ms(monitor);
    let level = |threshold: Option<f64>, name: &Option<String>, fallback: &str| {
        threshold.map(|threshold| {
            Level::new(
                threshold,
                name.clone()
                    .unwrap_or_else(|| format!("{} {fallback}", monitor.name)),
            )
        })
    };
    let params = RuleParams {
        direction: rule.direction,
        warning: level(rule.warning, &rule.warning_name, "warning"),
        critical: level(rule.critical, &rule.critical_name, "critical"),
        clear: rule.clear,
        for_ms: rule.for_duration.map_or(0, millis),
        consecutive: rule.consecutive.unwrap_or(0),
        no_data_after_ms: rule.no_data_after.map_or(3 * interval_ms, millis),
        flap: DEFAULT_FLAP,
    };
    let is_heartbeat =
        monitor.kind == MonitorKind::Heartbeat && rule.metric.as_str() == HEARTBEAT_METRIC;
    CompiledRule {
        scope: scope.clone(),
        monitor: monitor.name.to_string(),
        monitor_kind: monitor.kind,
        metric: rule.metric.to_string(),
        source: if is_heartbeat {
            Source::Heartbeat
        } else {
            Source::Rule
        },
        evaluation: Evaluation::Threshold(params),
        notify: rule.notify.clone(),
        interval_ms,
        match_monitor_label: is_check_kind(monitor.kind),
    }
}

fn millis(duration: cloudkeep_model::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backed_up_database_gets_rpo_full_backup_and_failure_rules() {
        let spec: PlatformSpec = serde_json::from_str(
            r#"{"version": 1, "platform": "shop", "isv": "acme", "tenant": "globex", "cloud": "gc-uk1",
                "hosts": [{"name": "db1", "components": [{"name": "db", "kind": "database",
                    "backup": {"pgdata": "/pg", "archive_timeout": "30s", "full_every": "12h"}}]},
                          {"name": "app1", "components": [{"name": "app", "kind": "app_server"}]}]}"#,
        )
        .unwrap();
        let set = compile(&[spec]);
        let backup_rules: Vec<&Arc<CompiledRule>> = set
            .all()
            .filter(|rule| rule.monitor == "db-backup")
            .collect();
        let metrics: BTreeSet<&str> = backup_rules
            .iter()
            .map(|rule| rule.metric.as_str())
            .collect();
        assert_eq!(
            metrics,
            BTreeSet::from([
                "cloudkeep_backup_failing",
                "cloudkeep_backup_full_age_seconds",
                "cloudkeep_backup_wal_archive_age_seconds",
            ])
        );
        assert!(backup_rules.iter().all(|rule| rule.scope.host == "db1"));
        let full = backup_rules
            .iter()
            .find(|rule| rule.metric == "cloudkeep_backup_full_age_seconds")
            .unwrap();
        let Evaluation::Threshold(params) = &full.evaluation else {
            panic!("a threshold rule");
        };
        assert_eq!(
            params.warning.as_ref().unwrap().threshold,
            1.5 * 12.0 * 3600.0
        );
    }
}
