//! Alerting: rules compiled from the platform specs, the evaluator fed by ingest, events, the
//! operator workflow (acknowledgements, maintenance, silences) and the notification pipeline.
//!
//! Control flow: `ingest -> EngineHandle::submit -> engine (evaluate) -> store (alert, event)
//! -> notifier (maintenance, silences, grouping, routing, rate limit) -> cloudkeep_notify`.

pub mod engine;
pub mod notifier;
pub mod rules;
mod service;

use std::collections::HashMap;
use std::sync::Arc;

use cloudkeep_alerting::maintenance::{MaintenanceWindow, Schedule, Scope};
use cloudkeep_protocol::alerting::{ScheduleView, ScopeView};
use tokio::sync::{mpsc, watch};

use crate::Server;
pub use engine::{EngineHandle, SeriesSamples};
pub use notifier::{NotifierConfig, NotifyRequest};

/// The alerting side of a running server.
#[derive(Debug)]
pub struct Alerting {
    pub engine: EngineHandle,
    inbox: std::sync::Mutex<Option<engine::EngineInbox>>,
    notifier: mpsc::UnboundedSender<NotifyRequest>,
    notifier_inbox: std::sync::Mutex<Option<mpsc::UnboundedReceiver<NotifyRequest>>>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Alerting {
    pub fn new() -> Alerting {
        let (engine, inbox) = engine::channel(HashMap::new());
        let (notifier, notifier_inbox) = mpsc::unbounded_channel();
        Alerting {
            engine,
            inbox: std::sync::Mutex::new(Some(inbox)),
            notifier,
            notifier_inbox: std::sync::Mutex::new(Some(notifier_inbox)),
            stop: watch::channel(false).0,
            tasks: std::sync::Mutex::default(),
        }
    }

    /// Maintenance windows or silences changed: the notifier reloads them.
    pub fn refresh_notifier(&self) {
        let _ = self.notifier.send(NotifyRequest::Refresh);
    }

    pub fn notify(&self, request: NotifyRequest) {
        let _ = self.notifier.send(request);
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

impl Default for Alerting {
    fn default() -> Self {
        Alerting::new()
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
        let notifier_inbox = alerting
            .notifier_inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let (Some(inbox), Some(notifier_inbox)) = (inbox, notifier_inbox) else {
            return;
        };
        let engine_task = tokio::spawn(engine::run(
            self.clone(),
            alerting.engine.clone(),
            inbox,
            alerting.notifier.clone(),
            alerting.stop.subscribe(),
        ));
        let notifier_task = tokio::spawn(notifier::run(
            self.clone(),
            notifier_inbox,
            alerting.stop.subscribe(),
        ));
        alerting
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend([engine_task, notifier_task]);
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
        ScheduleView::OneOff { start_ms, end_ms } => {
            if end_ms <= start_ms {
                return Err("schedule.one_off: end_ms must be after start_ms".into());
            }
            Schedule::OneOff {
                start_ms: *start_ms,
                end_ms: *end_ms,
            }
        }
        ScheduleView::Recurring {
            cron,
            duration_ms,
            timezone,
            until_ms,
        } => {
            if *duration_ms <= 0 {
                return Err("schedule.recurring.duration_ms: must be positive".into());
            }
            Schedule::recurring(
                cron,
                *duration_ms,
                timezone.as_deref().unwrap_or("UTC"),
                *until_ms,
            )
            .map_err(|err| format!("schedule.recurring: {err}"))?
        }
    };
    Ok(MaintenanceWindow {
        id: id.to_owned(),
        scope,
        schedule,
        comment: String::new(),
    })
}
