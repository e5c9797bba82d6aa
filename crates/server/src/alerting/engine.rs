//! The evaluator: one task owns every alert's rule state, evaluates samples the moment ingest
//! hands them over, ticks every second for no-data and heartbeats, and turns transitions into
//! alert rows, events and notification requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cloudkeep_alerting::{Reason, RuleState, Transition, evaluate, evaluate_check_status};
use cloudkeep_model::State;
use cloudkeep_store::{AlertRecord, EventRecord};
use tokio::sync::{mpsc, oneshot, watch};

use super::external::{DEFAULT_RESOLVE_TIMEOUT_MS, ExternalAlert};
use super::rules::{CompiledRule, Evaluation, RuleSet, Scope, Source};
use crate::Server;

/// One series' new samples, as ingest hands them over.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub metric: String,
    pub host: String,
    /// Labels other than `__name__`, `host` and `platform`.
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// What the API asks of the evaluator.
#[derive(Debug)]
pub enum Command {
    /// Spec applied: evaluate with these rules from now on.
    Reload(Arc<RuleSet>),
    /// An operator acknowledged an alert: no re-notification until its state changes.
    Acknowledged { alert_id: String },
    /// Alerts from outside (Alertmanager's API), placed in the roll-up.
    External(Vec<(Scope, ExternalAlert)>),
    /// Answer once every command and sample sent before has been handled (tests, shutdown).
    Sync(oneshot::Sender<()>),
}

/// The shared, cheap side of the evaluator that ingest and the API talk to.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    samples: mpsc::Sender<Vec<SeriesSamples>>,
    commands: mpsc::UnboundedSender<Command>,
    rules: Arc<RwLock<Arc<RuleSet>>>,
    last_seen: Arc<Mutex<HashMap<String, i64>>>,
    check_messages: Arc<Mutex<HashMap<(String, String), String>>>,
}

/// Batches of samples waiting for the evaluator; beyond this ingest drops them for alerting
/// (they are stored all the same) and counts `cloudkeep_alerting_dropped_batches_total`.
const QUEUE_BATCHES: usize = 4096;

impl EngineHandle {
    /// The current rules, for ingest to pick the series it must hand over.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn submit(&self, batch: Vec<SeriesSamples>) {
        if batch.is_empty() {
            return;
        }
        if self.samples.try_send(batch).is_err() {
            metrics::counter!("cloudkeep_alerting_dropped_batches_total").increment(1);
            tracing::warn!("alert evaluator queue full; a batch was stored but not evaluated");
        }
    }

    pub fn reload(&self, rules: Arc<RuleSet>) {
        *self
            .rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = rules.clone();
        let _ = self.commands.send(Command::Reload(rules));
    }

    pub fn acknowledged(&self, alert_id: &str) {
        let _ = self.commands.send(Command::Acknowledged {
            alert_id: alert_id.to_owned(),
        });
    }

    pub fn external(&self, alerts: Vec<(Scope, ExternalAlert)>) {
        let _ = self.commands.send(Command::External(alerts));
    }

    /// Waits until everything sent before has been evaluated.
    pub async fn sync(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Sync(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// The agent of `host` reported at `at_ms` (server time).
    pub fn host_seen(&self, host: &str, at_ms: i64) {
        let mut seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = seen.entry(host.to_owned()).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    /// Keeps a check's latest message for the alert that its status may raise.
    pub fn check_message(&self, host: &str, monitor: &str, message: &str) {
        self.check_messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((host.to_owned(), monitor.to_owned()), message.to_owned());
    }
}

/// The receiving side, moved into the evaluator task.
#[derive(Debug)]
pub struct EngineInbox {
    samples: mpsc::Receiver<Vec<SeriesSamples>>,
    commands: mpsc::UnboundedReceiver<Command>,
}

pub fn channel(last_seen: HashMap<String, i64>) -> (EngineHandle, EngineInbox) {
    let (samples_tx, samples_rx) = mpsc::channel(QUEUE_BATCHES);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    (
        EngineHandle {
            samples: samples_tx,
            commands: commands_tx,
            rules: Arc::default(),
            last_seen: Arc::new(Mutex::new(last_seen)),
            check_messages: Arc::default(),
        },
        EngineInbox {
            samples: samples_rx,
            commands: commands_rx,
        },
    )
}

/// What an alert row says about where the alert comes from.
struct AlertIdentity<'a> {
    source: &'a str,
    scope: &'a super::rules::Scope,
    monitor: &'a str,
    metric: &'a str,
    explicit: &'a [String],
}

struct Slot {
    rule: Arc<CompiledRule>,
    id: String,
    labels: BTreeMap<String, String>,
    state: RuleState,
}

/// What the evaluator remembers of alerts raised before a restart, so a condition that still
/// holds does not page again.
#[derive(Debug, Clone)]
struct Remembered {
    state: State,
    since_ms: i64,
}

/// An external alert that is not ok, until its `endsAt`.
struct ExternalSlot {
    scope: Scope,
    alert: ExternalAlert,
    state: State,
}

struct Engine {
    server: Server,
    handle: EngineHandle,
    rules: Arc<RuleSet>,
    slots: HashMap<String, Slot>,
    remembered: HashMap<String, Remembered>,
    /// Firing external alerts by alert id.
    external: HashMap<String, ExternalSlot>,
    started_ms: i64,
}

/// Runs the evaluator until `stop` turns true.
pub async fn run(
    server: Server,
    handle: EngineHandle,
    mut inbox: EngineInbox,
    mut stop: watch::Receiver<bool>,
) {
    let started_ms = server.now_ms();
    let mut external = HashMap::new();
    let remembered = match server.store().list_alerts(false).await {
        Ok(alerts) => alerts
            .into_iter()
            .filter_map(|alert| {
                if alert.source == "external" {
                    // The sender repeats firing alerts; one it stopped sending resolves after the timeout.
                    let state = alert.state.parse::<State>().ok()?;
                    let slot = ExternalSlot {
                        scope: Scope {
                            cloud: alert.cloud.clone(),
                            isv: alert.isv.clone(),
                            tenant: alert.tenant.clone(),
                            platform: alert.platform.clone(),
                            host: alert.host.clone(),
                        },
                        alert: ExternalAlert {
                            key: alert.alert_key.clone(),
                            platform: alert.platform.clone(),
                            host: alert.host.clone(),
                            monitor: alert.monitor.clone(),
                            severity: state,
                            message: alert.message.clone(),
                            labels: serde_json::from_str(&alert.labels_json).unwrap_or_default(),
                            starts_at_ms: alert.since_ms,
                            ends_at_ms: started_ms + DEFAULT_RESOLVE_TIMEOUT_MS,
                        },
                        state,
                    };
                    external.insert(alert.alert_key, slot);
                    return None;
                }
                let state = alert.state.parse::<State>().ok()?;
                Some((
                    alert.alert_key,
                    Remembered {
                        state,
                        since_ms: alert.since_ms,
                    },
                ))
            })
            .collect(),
        Err(err) => {
            tracing::error!(error = %err, "cannot read current alerts; alerts still bad will be notified again");
            HashMap::new()
        }
    };
    let mut engine = Engine {
        started_ms,
        external,
        rules: handle.rules(),
        handle,
        server,
        slots: HashMap::new(),
        remembered,
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(command) = inbox.commands.recv() => engine.command(command, &mut inbox).await,
            Some(batch) = inbox.samples.recv() => engine.samples(batch).await,
            _ = ticker.tick() => engine.tick().await,
        }
    }
}

impl Engine {
    async fn command(&mut self, command: Command, inbox: &mut EngineInbox) {
        match command {
            Command::Reload(rules) => {
                self.rules = rules;
                // Slots of rules that no longer exist go; the rest keep their state.
                let live: std::collections::HashSet<String> =
                    self.rules.all().map(|rule| rule_identity(rule)).collect();
                self.slots
                    .retain(|_, slot| live.contains(&rule_identity(&slot.rule)));
                for slot in self.slots.values_mut() {
                    if let Some(rule) = self
                        .rules
                        .all()
                        .find(|rule| rule_identity(rule) == rule_identity(&slot.rule))
                    {
                        slot.rule = rule.clone();
                    }
                }
            }
            Command::Acknowledged { .. } => {}
            Command::External(alerts) => {
                let now_ms = self.server.now_ms();
                for (scope, alert) in alerts {
                    self.external_alert(scope, alert, now_ms).await;
                }
            }
            Command::Sync(reply) => {
                // Everything already queued is evaluated before answering.
                while let Ok(batch) = inbox.samples.try_recv() {
                    self.samples(batch).await;
                }
                let _ = reply.send(());
            }
        }
    }

    async fn samples(&mut self, batch: Vec<SeriesSamples>) {
        let now_ms = self.server.now_ms();
        for series in batch {
            let rules: Vec<Arc<CompiledRule>> =
                self.rules.lookup(&series.metric, &series.host).to_vec();
            for rule in rules {
                let monitor_label = series
                    .labels
                    .iter()
                    .find(|(name, _)| name == "monitor")
                    .map(|(_, value)| value.as_str());
                if rule.match_monitor_label && monitor_label.is_some_and(|m| m != rule.monitor) {
                    continue;
                }
                let labels: BTreeMap<String, String> = series
                    .labels
                    .iter()
                    .filter(|(name, _)| name != "monitor" && name != "kind")
                    .cloned()
                    .collect();
                self.evaluate_slot(&rule, labels, &series.samples, now_ms)
                    .await;
            }
        }
    }

    /// One external alert received: a transition when its state changes, else a refreshed `endsAt`.
    async fn external_alert(&mut self, scope: Scope, alert: ExternalAlert, now_ms: i64) {
        let id = alert_id(&alert.key);
        let to = if alert.ends_at_ms <= now_ms {
            State::Ok
        } else {
            alert.severity
        };
        let from = self
            .external
            .get(&id)
            .map(|slot| slot.state)
            .unwrap_or(State::Ok);
        if from != to {
            self.external_transition(&id, &scope, &alert, from, to, now_ms)
                .await;
        }
        if to == State::Ok {
            self.external.remove(&id);
        } else {
            self.external.insert(
                id,
                ExternalSlot {
                    scope,
                    alert,
                    state: to,
                },
            );
        }
    }

    async fn external_transition(
        &self,
        id: &str,
        scope: &Scope,
        alert: &ExternalAlert,
        from: State,
        to: State,
        at_ms: i64,
    ) {
        let transition = Transition {
            from,
            to,
            at_ms,
            value: None,
            threshold: None,
            level_name: (to != State::Ok).then(|| alert.monitor.clone()),
            reason: if to == State::Ok {
                Reason::Cleared
            } else {
                Reason::Crossed
            },
            suppressed_by_flapping: false,
        };
        let message = if to == State::Ok {
            format!("{} resolved: {}", alert.monitor, alert.message)
        } else {
            alert.message.clone()
        };
        let identity = AlertIdentity {
            source: "external",
            scope,
            monitor: &alert.monitor,
            metric: "",
            explicit: &[],
        };
        self.store_transition(&identity, id, &alert.labels, false, &transition, message)
            .await;
    }

    async fn tick(&mut self) {
        let now_ms = self.server.now_ms();
        let expired: Vec<String> = self
            .external
            .iter()
            .filter(|(_, slot)| slot.alert.ends_at_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(slot) = self.external.remove(&id) {
                self.external_transition(
                    &id,
                    &slot.scope,
                    &slot.alert,
                    slot.state,
                    State::Ok,
                    now_ms,
                )
                .await;
            }
        }
        for rule in self.rules.heartbeats().to_vec() {
            let last = self
                .handle
                .last_seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&rule.scope.host)
                .copied()
                .unwrap_or(self.started_ms);
            let missed = ((now_ms - last).max(0) / rule.interval_ms.max(1)) as f64;
            self.evaluate_slot(&rule, BTreeMap::new(), &[(now_ms, missed)], now_ms)
                .await;
        }
        // Only the slots whose timer (no data, end of flapping) may have fired: a tick costs a
        // comparison per slot, not an evaluation.
        let keys: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| {
                slot.rule.source != Source::Heartbeat && timer_due(&slot.rule, &slot.state, now_ms)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let Some(slot) = self.slots.get(&key) else {
                continue;
            };
            let (state, transitions) = run_rule(&slot.rule, &slot.state, &[], now_ms);
            self.finish(&key, state, transitions).await;
        }
    }

    async fn evaluate_slot(
        &mut self,
        rule: &Arc<CompiledRule>,
        labels: BTreeMap<String, String>,
        samples: &[(i64, f64)],
        now_ms: i64,
    ) {
        let key = alert_key(rule, &labels);
        if !self.slots.contains_key(&key) {
            let id = alert_id(&key);
            let mut state = RuleState::new(now_ms);
            if let Some(remembered) = self.remembered.remove(&id) {
                state.state = remembered.state;
                state.since_ms = remembered.since_ms;
            }
            self.slots.insert(
                key.clone(),
                Slot {
                    rule: rule.clone(),
                    id,
                    labels,
                    state,
                },
            );
        }
        let Some(slot) = self.slots.get(&key) else {
            return;
        };
        let (state, transitions) = run_rule(&slot.rule, &slot.state, samples, now_ms);
        self.finish(&key, state, transitions).await;
    }

    async fn finish(&mut self, key: &str, state: RuleState, transitions: Vec<Transition>) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.state = state;
        if transitions.is_empty() {
            return;
        }
        let rule = slot.rule.clone();
        let id = slot.id.clone();
        let labels = slot.labels.clone();
        let flapping = slot.state.flapping;
        for transition in transitions {
            self.record(&rule, &id, &labels, flapping, &transition)
                .await;
        }
    }

    async fn record(
        &self,
        rule: &CompiledRule,
        id: &str,
        labels: &BTreeMap<String, String>,
        flapping: bool,
        transition: &Transition,
    ) {
        let message = self.message(rule, labels, transition);
        let identity = AlertIdentity {
            source: rule.source.as_str(),
            scope: &rule.scope,
            monitor: &rule.monitor,
            metric: &rule.metric,
            explicit: &rule.notify,
        };
        self.store_transition(&identity, id, labels, flapping, transition, message)
            .await;
    }

    /// Writes the alert row and the event of one transition, and hands it to the notifier.
    async fn store_transition(
        &self,
        identity: &AlertIdentity<'_>,
        id: &str,
        labels: &BTreeMap<String, String>,
        flapping: bool,
        transition: &Transition,
        message: String,
    ) {
        let previous = match self.server.store().get_alert(id).await {
            Ok(previous) => previous,
            Err(err) => {
                tracing::error!(alert = %id, error = %err, "cannot read an alert");
                None
            }
        };
        let changed = transition.from != transition.to;
        let kept = previous.as_ref().filter(|_| !changed);
        let scope = identity.scope;
        let record = AlertRecord {
            alert_key: id.to_owned(),
            source: identity.source.into(),
            cloud: scope.cloud.clone(),
            isv: scope.isv.clone(),
            tenant: scope.tenant.clone(),
            platform: scope.platform.clone(),
            host: scope.host.clone(),
            monitor: identity.monitor.to_owned(),
            metric: identity.metric.to_owned(),
            labels_json: serde_json::to_string(labels).unwrap_or_else(|_| "{}".into()),
            state: transition.to.as_str().into(),
            since_ms: if changed {
                transition.at_ms
            } else {
                previous.as_ref().map_or(transition.at_ms, |p| p.since_ms)
            },
            value: transition.value,
            threshold: transition.threshold,
            level_name: transition.level_name.clone(),
            message: message.clone(),
            flapping,
            // An acknowledgement holds until the state changes.
            acked_by: kept.and_then(|p| p.acked_by.clone()),
            acked_at_ms: kept.and_then(|p| p.acked_at_ms),
            ack_comment: kept.and_then(|p| p.ack_comment.clone()),
            notified_state: previous.as_ref().and_then(|p| p.notified_state.clone()),
            notified_at_ms: previous.as_ref().and_then(|p| p.notified_at_ms),
            escalation_level: if changed {
                0
            } else {
                previous.as_ref().map_or(0, |p| p.escalation_level)
            },
            updated_at_ms: transition.at_ms,
        };
        if let Err(err) = self.server.store().upsert_alert(&record).await {
            tracing::error!(alert = %id, error = %err, "cannot store an alert's state");
        }
        if transition.reason != Reason::FlapStart {
            // `record` carries what was last told, read from the store above (the notifier writes it).
            self.server
                .alerting()
                .notifier
                .notice(super::notifier::AlertNotice {
                    alert: record.clone(),
                    from: transition.from,
                    to: transition.to,
                    suppressed_by_flapping: transition.suppressed_by_flapping,
                    explicit: identity.explicit.to_vec(),
                });
        }
        let kind = match transition.reason {
            Reason::FlapStart => "flapping_started",
            Reason::FlapEnd => "flapping_ended",
            _ => "state_change",
        };
        let event = EventRecord {
            id: cloudkeep_stdx::ids::random_hex(16),
            at_ms: transition.at_ms,
            kind: kind.into(),
            cloud: record.cloud.clone(),
            isv: record.isv.clone(),
            tenant: record.tenant.clone(),
            platform: record.platform.clone(),
            host: record.host.clone(),
            monitor: record.monitor.clone(),
            alert_key: id.to_owned(),
            state_from: Some(transition.from.as_str().into()),
            state_to: Some(transition.to.as_str().into()),
            value: transition.value,
            threshold: transition.threshold,
            message,
            actor: Some(
                if identity.source == "external" {
                    "external"
                } else {
                    "alert-evaluator"
                }
                .into(),
            ),
            data_json: serde_json::json!({
                "metric": identity.metric,
                "labels": labels,
                "level": transition.level_name,
                "reason": format!("{:?}", transition.reason),
                "suppressed_by_flapping": transition.suppressed_by_flapping,
            })
            .to_string(),
        };
        if let Err(err) = self.server.store().insert_event(&event).await {
            tracing::error!(alert = %id, error = %err, "cannot store an event");
        }
        metrics::counter!("cloudkeep_alert_transitions_total", "to" => transition.to.as_str())
            .increment(1);
    }

    fn message(
        &self,
        rule: &CompiledRule,
        labels: &BTreeMap<String, String>,
        transition: &Transition,
    ) -> String {
        let host = &rule.scope.host;
        let series = if labels.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({})", parts.join(", "))
        };
        match (rule.source, transition.reason) {
            (_, Reason::NoData) => format!(
                "no data from {host} for {} {}{series}",
                rule.monitor, rule.metric
            ),
            (_, Reason::FlapStart) => format!(
                "{} on {host} is flapping{series}; notifications paused until it settles",
                rule.monitor
            ),
            (_, Reason::FlapEnd) => format!(
                "{} on {host} stopped flapping{series}; now {}",
                rule.monitor, transition.to
            ),
            (Source::Heartbeat, _) if transition.to >= State::Warning => format!(
                "instance not responding: no report from {host} for {} intervals of {} s",
                transition.value.unwrap_or(0.0),
                rule.interval_ms / 1000
            ),
            (Source::Heartbeat, _) => format!("{host} is reporting again"),
            (Source::Check, _) => {
                let message = self
                    .handle
                    .check_messages
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .get(&(host.clone(), rule.monitor.clone()))
                    .cloned()
                    .unwrap_or_default();
                format!("{} on {host}: {message}", rule.monitor)
            }
            (Source::Rule, _) => {
                let level = transition
                    .level_name
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", rule.monitor, transition.to));
                match (transition.value, transition.threshold) {
                    (Some(value), Some(threshold)) if transition.to >= State::Warning => {
                        let comparison = match &rule.evaluation {
                            Evaluation::Threshold(params)
                                if params.direction == cloudkeep_alerting::Direction::Below =>
                            {
                                "≤"
                            }
                            _ => "≥",
                        };
                        format!(
                            "{level} on {host}: {} {} {comparison} {}{series}",
                            rule.metric,
                            format_value(value),
                            format_value(threshold)
                        )
                    }
                    (Some(value), _) => format!(
                        "{} on {host} back to {}: {} {}{series}",
                        rule.monitor,
                        transition.to,
                        rule.metric,
                        format_value(value)
                    ),
                    _ => format!("{} on {host} is {}{series}", rule.monitor, transition.to),
                }
            }
        }
    }
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Whether evaluating `rule` without new samples at `now_ms` may change anything: its no-data deadline
/// has passed, or it is flapping (flapping ends when old changes leave the window).
fn timer_due(rule: &CompiledRule, state: &RuleState, now_ms: i64) -> bool {
    if state.flapping {
        return true;
    }
    if state.no_data {
        return false;
    }
    let no_data_after_ms = match &rule.evaluation {
        Evaluation::Threshold(params) => params.no_data_after_ms,
        Evaluation::CheckStatus {
            no_data_after_ms, ..
        } => *no_data_after_ms,
    };
    let last = state.last_sample_ms.unwrap_or(state.created_ms);
    now_ms >= last.saturating_add(no_data_after_ms)
}

fn run_rule(
    rule: &CompiledRule,
    state: &RuleState,
    samples: &[(i64, f64)],
    now_ms: i64,
) -> (RuleState, Vec<Transition>) {
    match &rule.evaluation {
        Evaluation::Threshold(params) => evaluate(params, state, samples, now_ms),
        Evaluation::CheckStatus {
            no_data_after_ms,
            flap,
        } => evaluate_check_status(state, samples, now_ms, *no_data_after_ms, *flap),
    }
}

/// The readable identity of an alert: platform/host/monitor/metric{labels}.
pub fn alert_key(rule: &CompiledRule, labels: &BTreeMap<String, String>) -> String {
    let mut key = format!(
        "{}/{}/{}/{}",
        rule.scope.platform, rule.scope.host, rule.monitor, rule.metric
    );
    if !labels.is_empty() {
        let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        key.push('{');
        key.push_str(&parts.join(","));
        key.push('}');
    }
    key
}

/// The short stable id of an alert key (what `cloudkeep ack` takes).
pub fn alert_id(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex()[..16].to_owned()
}

fn rule_identity(rule: &CompiledRule) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        rule.scope.platform,
        rule.scope.host,
        rule.monitor,
        rule.metric,
        rule.source.as_str()
    )
}
