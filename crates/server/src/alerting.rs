//! Alerting: rules compiled from the platform specs, the evaluator fed by ingest, events, the
//! operator workflow (acknowledgements, maintenance, silences) and the notification pipeline.
//!
//! Control flow: `ingest -> EngineHandle::submit -> engine (evaluate) -> store (alert, event)
//! -> notifier (maintenance, silences, grouping, routing, rate limit) -> cloudkeep_notify`.

pub mod engine;
pub mod external;
pub mod notifier;
pub mod rules;
mod service;

use std::collections::HashMap;
use std::sync::Arc;

use cloudkeep_alerting::maintenance::{MaintenanceWindow, Schedule, Scope};
use cloudkeep_protocol::alerting::{ScheduleView, ScopeView};
use tokio::sync::watch;

use crate::Server;
pub use engine::{EngineHandle, SeriesSamples};

/// The alerting side of a running server.
#[derive(Debug)]
pub struct Alerting {
    pub engine: EngineHandle,
    inbox: std::sync::Mutex<Option<engine::EngineInbox>>,
    pub notifier: notifier::NotifierHandle,
    notifier_inbox:
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<notifier::NotifierMessage>>>,
    pub channels: Arc<notifier::Channels>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Alerting {
    pub fn new(channels: notifier::Channels) -> Alerting {
        let (engine, inbox) = engine::channel(HashMap::new());
        let (notifier, notifier_inbox) = notifier::channel();
        Alerting {
            engine,
            inbox: std::sync::Mutex::new(Some(inbox)),
            notifier,
            notifier_inbox: std::sync::Mutex::new(Some(notifier_inbox)),
            channels: Arc::new(channels),
            stop: watch::channel(false).0,
            tasks: std::sync::Mutex::default(),
        }
    }

    /// Maintenance windows or silences changed: the notifier reads them again.
    pub fn refresh_notifier(&self) {
        self.notifier.refresh();
    }

    /// Waits until the evaluator and then the notifier have handled everything sent before
    /// (tests: after it, every due notification has been handed to its delivery task).
    pub async fn sync(&self) {
        self.engine.sync().await;
        self.notifier.sync().await;
    }

    /// Runs a long-lived task that stops when the server shuts down.
    pub fn spawn_task<F, Fut>(&self, task: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.stop.subscribe()));
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(handle);
    }

    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Server {
    pub fn alerting(&self) -> &Alerting {
        &self.inner.alerting
    }

    /// Compiles the rules of every stored platform and hands them to the evaluator.
    pub async fn reload_rules(&self) -> Result<usize, crate::ServiceError> {
        let platforms = self.store().list_platforms().await?;
        let specs: Vec<cloudkeep_model::PlatformSpec> = platforms
            .iter()
            .filter_map(|record| match serde_json::from_str(&record.spec_json) {
                Ok(spec) => Some(spec),
                Err(err) => {
                    tracing::error!(platform = %record.name, error = %err, "a stored spec cannot be read; its rules are not evaluated");
                    None
                }
            })
            .collect();
        let rules = Arc::new(rules::compile(&specs));
        let count = rules.len();
        self.alerting().engine.reload(rules);
        Ok(count)
    }

    /// Starts the evaluator and the notifier (once).
    pub(crate) async fn start_alerting(&self) {
        if let Err(err) = self.reload_rules().await {
            tracing::error!(error = %err, "cannot compile the alert rules");
        }
        if let Ok(hosts) = self.store().list_hosts().await {
            for host in hosts {
                if let Some(seen) = host.last_seen_ms {
                    self.alerting().engine.host_seen(&host.name, seen);
                }
            }
        }
        let alerting = self.alerting();
        let inbox = alerting
            .inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(inbox) = inbox else {
            return;
        };
        let engine_task = tokio::spawn(engine::run(
            self.clone(),
            alerting.engine.clone(),
            inbox,
            alerting.stop.subscribe(),
        ));
        alerting
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(engine_task);
        let notifier_inbox = alerting
            .notifier_inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(notifier_inbox) = notifier_inbox {
            let server = self.clone();
            let channels = alerting.channels.clone();
            alerting.spawn_task(move |stop| notifier::run(server, channels, notifier_inbox, stop));
        }
    }
}

/// A stored maintenance window as the policy's type; the error says what is wrong.
pub fn maintenance_window(
    id: &str,
    scope: &ScopeView,
    schedule: &ScheduleView,
) -> Result<MaintenanceWindow, String> {
    let scope = match scope {
        ScopeView::Cloud(name) => Scope::Cloud(name.clone()),
        ScopeView::Platform(name) => Scope::Platform(name.clone()),
        ScopeView::Host { platform, host } => Scope::Host {
            platform: platform.clone(),
            host: host.clone(),
        },
    };
    let schedule = match schedule {
        ScheduleView::OneOff { start_ms, end_ms } => Schedule::one_off(*start_ms, *end_ms)
            .map_err(|err| format!("schedule.one_off: {err}"))?,
        ScheduleView::Recurring {
            cron,
            duration_ms,
            timezone,
            until_ms,
        } => Schedule::recurring(
            cron,
            *duration_ms,
            timezone.as_deref().unwrap_or("UTC"),
            *until_ms,
        )
        .map_err(|err| format!("schedule.recurring: {err}"))?,
    };
    Ok(MaintenanceWindow {
        id: id.to_owned(),
        scope,
        schedule,
        comment: String::new(),
    })
}
