//! Runs the host's checks from the server's agent config, each on its own schedule in its own
//! task, and hands their outcomes to the main loop, which ships them with the next batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_protocol::alerting::{AgentConfig, AgentMonitor, CheckResult};
use cloudkeep_protocol::remote_write::{self, Label, TimeSeries};
use cloudkeep_stdx::Clock;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::check::{self, Check, CheckOutcome, CheckStatus};

/// One run of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    pub monitor: String,
    pub kind: String,
    pub at_ms: i64,
    pub outcome: CheckOutcome,
}

/// The running checks of this host.
#[derive(Debug)]
pub struct CheckRunner {
    proc_root: PathBuf,
    clock: Arc<dyn Clock>,
    revision: Option<i64>,
    tasks: Vec<JoinHandle<()>>,
    sender: mpsc::Sender<CheckRun>,
    receiver: mpsc::Receiver<CheckRun>,
}

/// Outcomes kept while the main loop is busy; beyond this the oldest runs are dropped by the
/// tasks' `try_send` (a check result is superseded by the next run anyway).
const QUEUE_CAPACITY: usize = 4096;

impl CheckRunner {
    pub fn new(proc_root: &Path, clock: Arc<dyn Clock>) -> CheckRunner {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        CheckRunner {
            proc_root: proc_root.to_owned(),
            clock,
            revision: None,
            tasks: Vec::new(),
            sender,
            receiver,
        }
    }

    /// The revision of the config the running checks come from.
    pub fn revision(&self) -> Option<i64> {
        self.revision
    }

    /// Replaces the running checks with those of `config`; does nothing when its revision is the
    /// one already running. A monitor whose options are wrong reports `unknown` with the error
    /// on every interval, so the NOC sees the mistake instead of a silently missing check.
    pub fn apply(&mut self, config: &AgentConfig) {
        if self.revision == Some(config.revision) {
            return;
        }
        self.stop();
        for monitor in &config.monitors {
            let Some(built) = check::build(&monitor.kind, &monitor.options, &self.proc_root) else {
                continue;
            };
            let interval =
                Duration::from_millis(u64::try_from(monitor.interval_ms.max(1000)).unwrap_or(1000));
            let runnable: Runnable = match built {
                Ok(check) => Runnable::Check(check),
                Err(err) => {
                    tracing::error!(monitor = %monitor.name, error = %err, "monitor options are wrong; the check reports unknown");
                    Runnable::Misconfigured(err.to_string())
                }
            };
            self.tasks.push(tokio::spawn(run_check(
                monitor.clone(),
                runnable,
                interval,
                self.clock.clone(),
                self.sender.clone(),
            )));
        }
        tracing::info!(
            revision = config.revision,
            checks = self.tasks.len(),
            "checks configured"
        );
        self.revision = Some(config.revision);
    }

    /// Every run finished since the last call.
    pub fn take_runs(&mut self) -> Vec<CheckRun> {
        let mut runs = Vec::new();
        while let Ok(run) = self.receiver.try_recv() {
            runs.push(run);
        }
        runs
    }

    fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for CheckRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Runnable {
    Check(Box<dyn Check>),
    Misconfigured(String),
}

async fn run_check(
    monitor: AgentMonitor,
    mut runnable: Runnable,
    interval: Duration,
    clock: Arc<dyn Clock>,
    sender: mpsc::Sender<CheckRun>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let at_ms = clock.now_ms();
        let outcome = match &mut runnable {
            Runnable::Check(check) => check.run(at_ms).await,
            Runnable::Misconfigured(message) => CheckOutcome {
                status: CheckStatus::Unknown,
                message: format!("monitor {} is misconfigured: {message}", monitor.name),
                samples: Vec::new(),
            },
        };
        let run = CheckRun {
            monitor: monitor.name.clone(),
            kind: monitor.kind.clone(),
            at_ms,
            outcome,
        };
        if sender.try_send(run).is_err() {
            tracing::warn!(monitor = %monitor.name, "check results queue full; dropping a run");
        }
    }
}

/// The runs' metrics as remote_write series, each labelled with its monitor, plus one
/// `check_status{monitor,kind}` series (the Nagios code) per run.
pub fn runs_to_series(runs: &[CheckRun]) -> Vec<TimeSeries> {
    let mut series = Vec::new();
    for run in runs {
        let point = |value: f64| {
            vec![remote_write::Sample {
                value,
                timestamp: run.at_ms,
            }]
        };
        for sample in run.outcome.samples.iter().filter(|s| s.value.is_finite()) {
            let mut labels = Vec::with_capacity(sample.labels.len() + 2);
            labels.push(Label {
                name: "__name__".into(),
                value: sample.name.clone(),
            });
            labels.extend(
                sample
                    .labels
                    .iter()
                    .filter(|(name, _)| name != "monitor")
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    }),
            );
            labels.push(Label {
                name: "monitor".into(),
                value: run.monitor.clone(),
            });
            series.push(TimeSeries {
                labels,
                samples: point(sample.value),
            });
        }
        series.push(TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "check_status".into(),
                },
                Label {
                    name: "kind".into(),
                    value: run.kind.clone(),
                },
                Label {
                    name: "monitor".into(),
                    value: run.monitor.clone(),
                },
            ],
            samples: point(f64::from(run.outcome.status.code())),
        });
    }
    series
}

/// The newest run of each monitor as the check report the server keeps for messages.
pub fn runs_to_report(runs: &[CheckRun]) -> Vec<CheckResult> {
    let mut latest: std::collections::BTreeMap<&str, &CheckRun> = std::collections::BTreeMap::new();
    for run in runs {
        latest
            .entry(run.monitor.as_str())
            .and_modify(|current| {
                if run.at_ms >= current.at_ms {
                    *current = run;
                }
            })
            .or_insert(run);
    }
    latest
        .values()
        .map(|run| CheckResult {
            monitor: run.monitor.clone(),
            kind: run.kind.clone(),
            status: run.outcome.status.code(),
            message: run.outcome.message.clone(),
            at_ms: run.at_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Sample;

    fn run(monitor: &str, at_ms: i64, status: CheckStatus) -> CheckRun {
        CheckRun {
            monitor: monitor.into(),
            kind: "command".into(),
            at_ms,
            outcome: CheckOutcome {
                status,
                message: format!("{monitor} at {at_ms}"),
                samples: vec![
                    Sample::with_labels(
                        "check_perfdata",
                        &[("label", "load1"), ("monitor", "spoofed")],
                        0.5,
                    ),
                    Sample::new("check_duration_seconds", f64::NAN),
                ],
            },
        }
    }

    #[test]
    fn series_carry_monitor_status_and_run_time() {
        let series = runs_to_series(&[run("load", 1000, CheckStatus::Warning)]);
        assert_eq!(series.len(), 2, "the NaN sample is dropped: {series:?}");
        let perf = &series[0];
        let labels: Vec<(&str, &str)> = perf
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__name__", "check_perfdata"),
                ("label", "load1"),
                ("monitor", "load")
            ],
            "a check cannot choose its own monitor label"
        );
        assert_eq!(perf.samples[0].timestamp, 1000);
        assert_eq!(series[1].labels[0].value, "check_status");
        assert_eq!(series[1].samples[0].value, 1.0);
    }

    #[test]
    fn report_keeps_the_newest_run_per_monitor() {
        let report = runs_to_report(&[
            run("a", 2000, CheckStatus::Critical),
            run("a", 1000, CheckStatus::Ok),
            run("b", 1500, CheckStatus::Unknown),
        ]);
        assert_eq!(report.len(), 2);
        assert_eq!(
            (
                report[0].monitor.as_str(),
                report[0].status,
                report[0].at_ms
            ),
            ("a", 2, 2000)
        );
        assert_eq!((report[1].monitor.as_str(), report[1].status), ("b", 3));
    }
}
