//! Rogue mode of the process check: processes that burn CPU for too long or hold too much memory, tracked per (pid, start time) between runs.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;

use crate::check::options_host::format_duration_ms;
use crate::check::process::HostParameters;
use crate::check::process::proc_entry::{self, ProcStat};
use crate::check::{CheckOutcome, CheckStatus, Sample};

/// At most this many rogue processes are named in the message (it must stay near 1 KiB).
const MAX_NAMED_IN_MESSAGE: usize = 8;

/// What makes a process rogue and how loud that is.
#[derive(Debug, Clone)]
pub struct RogueCriteria {
    /// CPU percent of one core (100 = one core busy) a process must stay above.
    pub max_cpu_percent: Option<f64>,
    /// How long, in milliseconds, the CPU must stay above `max_cpu_percent`.
    pub cpu_for_ms: i64,
    /// Resident memory above which a process is rogue at once.
    pub max_rss_bytes: Option<u64>,
    /// Whole-command-name regex of processes never reported.
    pub exclude: Option<Regex>,
    /// The status when at least one process is rogue.
    pub status: CheckStatus,
}

/// Identifies one process across runs: pids are reused, (pid, start time) is not.
type ProcessKey = (i32, u64);

/// What the tracker remembers of a process from its previous run.
#[derive(Debug, Clone, Copy)]
struct CpuHistory {
    cpu_ticks: u64,
    seen_at_ms: i64,
    /// Start of the first of the consecutive intervals in which the CPU was above the limit.
    above_since_ms: Option<i64>,
}

/// Per-process CPU history between runs; processes that are gone are forgotten.
#[derive(Debug, Clone, Default)]
pub struct RogueTracker {
    previous: HashMap<ProcessKey, CpuHistory>,
}

/// One process found rogue in this run.
#[derive(Debug, Clone)]
struct RogueProcess {
    pid: i32,
    name: String,
    /// CPU percent over the last interval, when this process was seen in the previous run.
    cpu_percent: Option<f64>,
    /// How long the CPU has been above the limit, when that is why it is rogue.
    cpu_above_for_ms: Option<i64>,
    rss_bytes: u64,
    rss_too_high: bool,
}

impl RogueTracker {
    /// Scans the processes below `proc_root` at `now_ms`, updates the history and judges.
    pub fn evaluate(
        &mut self,
        criteria: &RogueCriteria,
        proc_root: &Path,
        host: HostParameters,
        now_ms: i64,
    ) -> CheckOutcome {
        let pids = match proc_entry::list_pids(proc_root) {
            Ok(pids) => pids,
            Err(error) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: error.to_string(),
                    samples: Vec::new(),
                };
            }
        };
        let mut current = HashMap::with_capacity(pids.len());
        let mut rogues = Vec::new();
        let mut checked = 0usize;
        for pid in pids {
            let Some(stat) = proc_entry::read_stat(proc_root, pid) else {
                continue;
            };
            if stat.is_defunct()
                || criteria
                    .exclude
                    .as_ref()
                    .is_some_and(|exclude| exclude.is_match(&stat.comm))
            {
                continue;
            }
            checked += 1;
            let key = (stat.pid, stat.start_ticks);
            let previous = self.previous.get(&key).copied();
            let (history, cpu_percent) = advance(previous, &stat, criteria, host, now_ms);
            current.insert(key, history);
            if let Some(rogue) = judge(&stat, cpu_percent, history, criteria, host, now_ms) {
                rogues.push(rogue);
            }
        }
        self.previous = current;
        outcome(criteria, rogues, checked)
    }
}

/// The new history of a process and its CPU percent over the interval since the previous run
/// (`None` on first sight, or when the clock did not move forward).
fn advance(
    previous: Option<CpuHistory>,
    stat: &ProcStat,
    criteria: &RogueCriteria,
    host: HostParameters,
    now_ms: i64,
) -> (CpuHistory, Option<f64>) {
    let fresh = CpuHistory {
        cpu_ticks: stat.cpu_ticks(),
        seen_at_ms: now_ms,
        above_since_ms: None,
    };
    let Some(previous) = previous else {
        return (fresh, None);
    };
    let elapsed_ms = now_ms.saturating_sub(previous.seen_at_ms);
    if elapsed_ms <= 0 || stat.cpu_ticks() < previous.cpu_ticks || host.clock_ticks_per_second == 0
    {
        // The clock went backwards or the counters reset: start measuring again.
        return (fresh, None);
    }
    let cpu_seconds =
        (stat.cpu_ticks() - previous.cpu_ticks) as f64 / host.clock_ticks_per_second as f64;
    let cpu_percent = cpu_seconds / (elapsed_ms as f64 / 1000.0) * 100.0;
    let above = criteria
        .max_cpu_percent
        .is_some_and(|limit| cpu_percent > limit);
    let above_since_ms = if above {
        // The interval that went above started at the previous run.
        Some(previous.above_since_ms.unwrap_or(previous.seen_at_ms))
    } else {
        None
    };
    (
        CpuHistory {
            above_since_ms,
            ..fresh
        },
        Some(cpu_percent),
    )
}

/// The rogue process this is, if it is one.
fn judge(
    stat: &ProcStat,
    cpu_percent: Option<f64>,
    history: CpuHistory,
    criteria: &RogueCriteria,
    host: HostParameters,
    now_ms: i64,
) -> Option<RogueProcess> {
    let cpu_above_for_ms = history
        .above_since_ms
        .map(|since| now_ms.saturating_sub(since))
        .filter(|above_for| *above_for >= criteria.cpu_for_ms);
    let rss_bytes = stat.rss_pages.saturating_mul(host.page_size_bytes);
    let rss_too_high = criteria
        .max_rss_bytes
        .is_some_and(|limit| rss_bytes > limit);
    if cpu_above_for_ms.is_none() && !rss_too_high {
        return None;
    }
    Some(RogueProcess {
        pid: stat.pid,
        name: stat.comm.clone(),
        cpu_percent,
        cpu_above_for_ms,
        rss_bytes,
        rss_too_high,
    })
}

fn outcome(
    criteria: &RogueCriteria,
    mut rogues: Vec<RogueProcess>,
    checked: usize,
) -> CheckOutcome {
    // Worst first: highest CPU, then largest memory; pid keeps the order stable.
    rogues.sort_by(|a, b| {
        let cpu_a = a.cpu_above_for_ms.and(a.cpu_percent).unwrap_or(0.0);
        let cpu_b = b.cpu_above_for_ms.and(b.cpu_percent).unwrap_or(0.0);
        cpu_b
            .total_cmp(&cpu_a)
            .then(b.rss_bytes.cmp(&a.rss_bytes))
            .then(a.pid.cmp(&b.pid))
    });
    let mut samples = vec![Sample {
        name: "process_rogue_count".to_owned(),
        labels: Vec::new(),
        value: rogues.len() as f64,
    }];
    for rogue in &rogues {
        let labels = vec![
            ("pid".to_owned(), rogue.pid.to_string()),
            ("name".to_owned(), rogue.name.clone()),
        ];
        if let Some(cpu_percent) = rogue.cpu_percent {
            samples.push(Sample {
                name: "process_cpu_percent".to_owned(),
                labels: labels.clone(),
                value: cpu_percent,
            });
        }
        samples.push(Sample {
            name: "process_rss_bytes".to_owned(),
            labels,
            value: rogue.rss_bytes as f64,
        });
    }
    if rogues.is_empty() {
        let noun = if checked == 1 { "process" } else { "processes" };
        return CheckOutcome {
            status: CheckStatus::Ok,
            message: format!("no rogue processes among {checked} {noun}"),
            samples,
        };
    }
    let noun = if rogues.len() == 1 {
        "rogue process"
    } else {
        "rogue processes"
    };
    let mut described: Vec<String> = rogues
        .iter()
        .take(MAX_NAMED_IN_MESSAGE)
        .map(describe)
        .collect();
    if rogues.len() > MAX_NAMED_IN_MESSAGE {
        described.push(format!("and {} more", rogues.len() - MAX_NAMED_IN_MESSAGE));
    }
    CheckOutcome {
        status: criteria.status,
        message: format!("{} {noun}: {}", rogues.len(), described.join("; ")),
        samples,
    }
}

/// `burn (pid 4242) 99% cpu for 6m` / `java (pid 17) rss 5.1 GiB` / both, comma-separated.
fn describe(rogue: &RogueProcess) -> String {
    let mut reasons = Vec::new();
    if let (Some(above_for), Some(cpu_percent)) = (rogue.cpu_above_for_ms, rogue.cpu_percent) {
        reasons.push(format!(
            "{cpu_percent:.0}% cpu for {}",
            format_duration_ms(above_for)
        ));
    }
    if rogue.rss_too_high {
        reasons.push(format!("rss {}", format_bytes(rogue.rss_bytes)));
    }
    let name: String = rogue.name.chars().filter(|c| !c.is_control()).collect();
    format!("{name} (pid {}) {}", rogue.pid, reasons.join(", "))
}

/// `5.1 GiB`, `812.0 MiB`, `64.0 KiB`: one decimal in the largest fitting binary unit.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    let value = bytes as f64;
    for (unit, size) in UNITS {
        if value >= size {
            return format!("{:.1} {unit}", value / size);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes() {
        assert_eq!(format_bytes(5_476_083_302), "5.1 GiB");
        assert_eq!(format_bytes(812 * 1024 * 1024), "812.0 MiB");
        assert_eq!(format_bytes(65_536), "64.0 KiB");
        assert_eq!(format_bytes(12), "12 B");
    }
}
