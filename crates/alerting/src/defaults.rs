//! The shipped default rules as data: one per (monitor kind, metric), used when a platform spec
//! has no rule override for that metric.
//!
//! Metric names are those of `docs/metrics.md` (host metrics from the agent) plus the two the
//! server computes (`cloudkeep_heartbeat_missed_intervals`) or a backup check reports
//! (`backup_last_success_age_seconds`). The load default watches `host_load5_per_cpu` (the raw
//! averages are not divided by the cpu count, so no threshold would fit every host).
//!
//! Checks that decide their own state (command, http, tcp… reporting a Nagios code) have no
//! thresholds: they go through [`crate::evaluate_check_status`] with
//! [`check_no_data_after_ms`] and [`FlapPolicy::DEFAULT`].

use crate::rule::{FlapPolicy, Level, RuleParams};
use cloudkeep_model::Direction;

/// A rule is unknown after this many monitor intervals without a sample.
pub const NO_DATA_INTERVALS: i64 = 3;

/// The agent's default collection interval (`cloudkeep agent --interval`), 10 s.
pub const DEFAULT_AGENT_INTERVAL_MS: i64 = 10_000;

const SECOND_MS: i64 = 1000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// A built-in rule for one metric of one monitor kind.
#[derive(Debug, Clone, Copy)]
pub struct DefaultRule {
    /// The monitor kind (`MonitorKind::as_str`), e.g. `cpu`.
    pub monitor_kind: &'static str,
    /// The metric the thresholds apply to, e.g. `host_cpu_busy_percent`.
    pub metric: &'static str,
    /// The monitor interval the default `no_data_after_ms` assumes.
    pub assumed_interval_ms: i64,
    /// The rule's parameters, with `no_data_after_ms` = [`NO_DATA_INTERVALS`] ×
    /// `assumed_interval_ms`.
    pub params: fn() -> RuleParams,
}

impl DefaultRule {
    /// The parameters for a monitor sampled every `interval_ms` (its spec `interval`): no data
    /// after [`NO_DATA_INTERVALS`] intervals instead of the assumed ones.
    pub fn params_for_interval(&self, interval_ms: i64) -> RuleParams {
        let mut params = (self.params)();
        if interval_ms > 0 {
            params.no_data_after_ms = interval_ms.saturating_mul(NO_DATA_INTERVALS);
        }
        params
    }
}

/// `no_data_after_ms` for a check sampled every `interval_ms`.
pub fn check_no_data_after_ms(interval_ms: i64) -> i64 {
    interval_ms.max(1).saturating_mul(NO_DATA_INTERVALS)
}

/// An above rule with the default flap policy and no consecutive-sample requirement.
fn above(
    warning: (f64, &str),
    critical: (f64, &str),
    clear: Option<f64>,
    for_ms: i64,
    assumed_interval_ms: i64,
) -> RuleParams {
    RuleParams {
        direction: Direction::Above,
        warning: Some(Level::new(warning.0, warning.1)),
        critical: Some(Level::new(critical.0, critical.1)),
        clear,
        for_ms,
        consecutive: 0,
        no_data_after_ms: assumed_interval_ms * NO_DATA_INTERVALS,
        flap: FlapPolicy::DEFAULT,
    }
}

/// Every default rule, in a stable order.
pub static DEFAULT_RULES: &[DefaultRule] = &[
    DefaultRule {
        monitor_kind: "cpu",
        metric: "host_cpu_busy_percent",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // Short bursts are normal: two minutes of sustained load before raising.
        params: || {
            above(
                (80.0, "cpu busy"),
                (95.0, "cpu overloaded"),
                Some(75.0),
                2 * MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "memory",
        metric: "host_memory_used_percent",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // Used excludes reclaimable cache, so 90 % is real pressure; allocation spikes pass.
        params: || {
            above(
                (90.0, "memory low"),
                (97.0, "memory exhausted"),
                Some(85.0),
                2 * MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "swap",
        metric: "host_swap_used_percent",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // Swap fills slowly and stays used after the pressure is gone: a wide band.
        params: || {
            above(
                (50.0, "swap in use"),
                (80.0, "swap nearly full"),
                Some(40.0),
                5 * MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "df",
        metric: "host_filesystem_used_percent",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // df's Use%: 100 means users cannot write. A minute rides out a temp file written and
        // removed; a log rotation brings it back under 80.
        params: || {
            above(
                (85.0, "filesystem filling up"),
                (95.0, "filesystem full"),
                Some(80.0),
                MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "df",
        metric: "host_filesystem_inodes_used_percent",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // 0 on filesystems without an inode table (btrfs, vfat), so never raised there.
        params: || {
            above(
                (85.0, "inodes running out"),
                (95.0, "inodes exhausted"),
                Some(80.0),
                MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "load",
        metric: "host_load5_per_cpu",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // Twice as many runnable tasks as cpus for five minutes is a queue, four times an overload;
        // the 5-minute average already smooths bursts, so five more minutes before raising.
        params: || {
            above(
                (2.0, "load high"),
                (4.0, "load overloaded"),
                Some(1.5),
                5 * MINUTE_MS,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "heartbeat",
        metric: "cloudkeep_heartbeat_missed_intervals",
        assumed_interval_ms: DEFAULT_AGENT_INTERVAL_MS,
        // Already a duration: raise at once. Clear below 1: the next heartbeat brings it to 0.
        params: || {
            above(
                (2.0, "heartbeat late"),
                (3.0, "instance not responding"),
                Some(1.0),
                0,
                DEFAULT_AGENT_INTERVAL_MS,
            )
        },
    },
    DefaultRule {
        monitor_kind: "command",
        metric: "backup_last_success_age_seconds",
        // Backup checks run about hourly.
        assumed_interval_ms: HOUR_MS,
        // Daily backups: 26 h leaves two hours of slack, 50 h means two were missed. The age
        // drops to ~0 on success, so no hysteresis is needed.
        params: || {
            above(
                (26.0 * 3600.0, "backup overdue"),
                (50.0 * 3600.0, "backup missing"),
                None,
                0,
                HOUR_MS,
            )
        },
    },
];

/// The default rules of a backed-up database (a spec component with `backup`), as (metric,
/// parameters), scaled to its `archive_timeout` and `full_every`:
/// - RPO: `cloudkeep_backup_wal_archive_age_seconds` (time since the newest archived WAL file),
///   late past 3 archive timeouts (at least a minute), breached past 10 (at least 5 minutes);
/// - full backups: `cloudkeep_backup_full_age_seconds`, overdue at 1.5 × `full_every`, missing at
///   2.5 × (no full backup at all reads as no data, which is raised too);
/// - failures: `cloudkeep_backup_failing` (kinds of backup work whose latest attempt failed),
///   critical at 1, cleared by the next success.
pub fn backup_rules(
    archive_timeout_ms: i64,
    full_every_ms: i64,
) -> Vec<(&'static str, RuleParams)> {
    let timeout_s = (archive_timeout_ms.max(1000) / SECOND_MS) as f64;
    let full_s = (full_every_ms.max(MINUTE_MS) / SECOND_MS) as f64;
    let late = (3.0 * timeout_s).max(60.0);
    let breached = (10.0 * timeout_s).max(300.0);
    vec![
        (
            "cloudkeep_backup_wal_archive_age_seconds",
            above(
                (late, "WAL archiving late, RPO at risk"),
                (breached, "RPO breached: WAL not archived"),
                Some(late * 0.8),
                0,
                DEFAULT_AGENT_INTERVAL_MS,
            ),
        ),
        (
            "cloudkeep_backup_full_age_seconds",
            above(
                (1.5 * full_s, "full backup overdue"),
                (2.5 * full_s, "full backup missing"),
                None,
                0,
                DEFAULT_AGENT_INTERVAL_MS,
            ),
        ),
        (
            "cloudkeep_backup_failing",
            RuleParams {
                direction: Direction::Above,
                warning: None,
                critical: Some(Level::new(1.0, "backup failed")),
                clear: None,
                for_ms: 0,
                consecutive: 0,
                no_data_after_ms: DEFAULT_AGENT_INTERVAL_MS * NO_DATA_INTERVALS,
                flap: FlapPolicy::DEFAULT,
            },
        ),
    ]
}

/// The default rule for `metric` of a `monitor_kind` monitor, if there is one.
pub fn default_rule(monitor_kind: &str, metric: &str) -> Option<&'static DefaultRule> {
    DEFAULT_RULES
        .iter()
        .find(|rule| rule.monitor_kind == monitor_kind && rule.metric == metric)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use expect_test::expect;

    use super::*;

    #[test]
    fn every_default_is_valid_and_unique() {
        for (index, rule) in DEFAULT_RULES.iter().enumerate() {
            let params = (rule.params)();
            assert_eq!(
                params.validate(),
                Ok(()),
                "{}/{}",
                rule.monitor_kind,
                rule.metric
            );
            assert_eq!(
                params.no_data_after_ms,
                rule.assumed_interval_ms * NO_DATA_INTERVALS
            );
            assert!(DEFAULT_RULES.iter().skip(index + 1).all(|other| (
                other.monitor_kind,
                other.metric
            ) != (
                rule.monitor_kind,
                rule.metric
            )));
            assert!(std::ptr::eq(
                default_rule(rule.monitor_kind, rule.metric).unwrap(),
                rule
            ));
        }
        assert!(default_rule("load", "host_load1").is_none());
        assert!(default_rule("load", "host_load5_per_cpu").is_some());
    }

    #[test]
    fn backup_rules_scale_with_the_archive_timeout_and_full_interval() {
        let rules = backup_rules(60 * SECOND_MS, 24 * HOUR_MS);
        let threshold = |metric: &str, critical: bool| {
            let (_, params) = rules.iter().find(|(name, _)| *name == metric).unwrap();
            let level = if critical {
                &params.critical
            } else {
                &params.warning
            };
            level.as_ref().unwrap().threshold
        };
        assert_eq!(
            threshold("cloudkeep_backup_wal_archive_age_seconds", false),
            180.0
        );
        assert_eq!(
            threshold("cloudkeep_backup_wal_archive_age_seconds", true),
            600.0
        );
        assert_eq!(
            threshold("cloudkeep_backup_full_age_seconds", false),
            1.5 * 86_400.0
        );
        assert_eq!(threshold("cloudkeep_backup_failing", true), 1.0);
        // A short archive timeout still leaves a minute before warning.
        let quick = backup_rules(2 * SECOND_MS, HOUR_MS);
        assert_eq!(quick[0].1.warning.as_ref().unwrap().threshold, 60.0);
        assert_eq!(quick[0].1.critical.as_ref().unwrap().threshold, 300.0);
    }

    #[test]
    fn params_for_interval_scales_no_data() {
        let cpu = default_rule("cpu", "host_cpu_busy_percent").unwrap();
        assert_eq!(cpu.params_for_interval(60_000).no_data_after_ms, 180_000);
        assert_eq!(cpu.params_for_interval(0).no_data_after_ms, 30_000);
        assert_eq!(check_no_data_after_ms(30_000), 90_000);
        assert_eq!(check_no_data_after_ms(0), 3);
    }

    #[test]
    fn the_shipped_table() {
        let mut table = String::new();
        for rule in DEFAULT_RULES {
            let params = (rule.params)();
            let level = |level: &Option<Level>| {
                level
                    .as_ref()
                    .map(|level| format!("{} {:?}", level.threshold, level.name))
                    .unwrap_or_default()
            };
            writeln!(
                table,
                "{}/{}: {} warning {} critical {} clear {:?} for {}s no-data {}s flap {}/{}s",
                rule.monitor_kind,
                rule.metric,
                params.direction,
                level(&params.warning),
                level(&params.critical),
                params.effective_clear(),
                params.for_ms / 1000,
                params.no_data_after_ms / 1000,
                params.flap.max_changes,
                params.flap.window_ms / 1000,
            )
            .unwrap();
        }
        expect![[r#"
            cpu/host_cpu_busy_percent: above warning 80 "cpu busy" critical 95 "cpu overloaded" clear Some(75.0) for 120s no-data 30s flap 6/600s
            memory/host_memory_used_percent: above warning 90 "memory low" critical 97 "memory exhausted" clear Some(85.0) for 120s no-data 30s flap 6/600s
            swap/host_swap_used_percent: above warning 50 "swap in use" critical 80 "swap nearly full" clear Some(40.0) for 300s no-data 30s flap 6/600s
            df/host_filesystem_used_percent: above warning 85 "filesystem filling up" critical 95 "filesystem full" clear Some(80.0) for 60s no-data 30s flap 6/600s
            df/host_filesystem_inodes_used_percent: above warning 85 "inodes running out" critical 95 "inodes exhausted" clear Some(80.0) for 60s no-data 30s flap 6/600s
            load/host_load5_per_cpu: above warning 2 "load high" critical 4 "load overloaded" clear Some(1.5) for 300s no-data 30s flap 6/600s
            heartbeat/cloudkeep_heartbeat_missed_intervals: above warning 2 "heartbeat late" critical 3 "instance not responding" clear Some(1.0) for 0s no-data 30s flap 6/600s
            command/backup_last_success_age_seconds: above warning 93600 "backup overdue" critical 180000 "backup missing" clear Some(93600.0) for 0s no-data 10800s flap 6/600s
        "#]].assert_eq(&table);
    }
}
