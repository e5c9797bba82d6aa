//! Named background workers: each has a status, a run count, its last error, and stops cooperatively.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudkeep_protocol::api::WorkerStatus;
use cloudkeep_stdx::Clock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
struct Status {
    name: String,
    state: &'static str,
    runs: u64,
    last_run_ms: Option<i64>,
    last_error: Option<String>,
}

/// The registry of running workers.
#[derive(Debug, Clone)]
pub struct Workers {
    statuses: Arc<Mutex<Vec<Status>>>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    stop: watch::Sender<bool>,
    clock: Arc<dyn Clock>,
}

impl Workers {
    pub fn new(clock: Arc<dyn Clock>) -> Workers {
        Workers {
            statuses: Arc::default(),
            handles: Arc::default(),
            stop: watch::channel(false).0,
            clock,
        }
    }

    /// Runs `work` every `interval` (first run after one interval) until shutdown.
    pub fn spawn<F, Fut>(&self, name: &str, interval: Duration, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let index = {
            let mut statuses = self
                .statuses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            statuses.push(Status {
                name: name.into(),
                state: "idle",
                runs: 0,
                last_run_ms: None,
                last_error: None,
            });
            statuses.len() - 1
        };
        let statuses = self.statuses.clone();
        let clock = self.clock.clone();
        let mut stop = self.stop.subscribe();
        let worker_name = name.to_owned();
        let handle = tokio::spawn(async move {
            let set = |update: &dyn Fn(&mut Status)| {
                let mut statuses = statuses
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                update(&mut statuses[index]);
            };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => break,
                }
                set(&|status| status.state = "running");
                let outcome = work().await;
                if let Err(err) = &outcome {
                    tracing::warn!(worker = %worker_name, error = %err, "worker run failed");
                }
                set(&|status| {
                    status.state = "idle";
                    status.runs += 1;
                    status.last_run_ms = Some(clock.now_ms());
                    status.last_error = outcome.clone().err();
                });
            }
            set(&|status| status.state = "stopped");
        });
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(handle);
    }

    pub fn list(&self) -> Vec<WorkerStatus> {
        let statuses = self
            .statuses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        statuses
            .iter()
            .map(|status| WorkerStatus {
                name: status.name.clone(),
                state: status.state.into(),
                runs: status.runs,
                last_run_ms: status.last_run_ms,
                last_error: status.last_error.clone(),
            })
            .collect()
    }

    /// Asks every worker to stop and waits for the ones mid-run to finish.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handles: Vec<_> = std::mem::take(
            &mut *self
                .handles
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for handle in handles {
            let _ = handle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn worker_runs_records_errors_and_stops() {
        let workers = Workers::new(Arc::new(cloudkeep_stdx::FakeClock::new(5_000)));
        let mut count = 0;
        workers.spawn("flaky", Duration::from_secs(10), move || {
            count += 1;
            let fail = count == 2;
            async move { if fail { Err("boom".to_owned()) } else { Ok(()) } }
        });
        tokio::time::sleep(Duration::from_secs(25)).await;
        let status = &workers.list()[0];
        assert_eq!(status.name, "flaky");
        assert_eq!(status.runs, 2);
        assert_eq!(status.last_error.as_deref(), Some("boom"));
        assert_eq!(
            status.last_run_ms,
            Some(5_000),
            "run times come from the injected clock"
        );
        workers.shutdown().await;
        assert_eq!(workers.list()[0].state, "stopped");
    }
}
