//! The notifier: turns the evaluator's alert changes into messages people receive.
//!
//! One task owns the policy state (maintenance windows, silences, the per-platform grouper, the per-contact
//! rate limiter). For every notice it asks [`decide`] whether to tell anyone; notices that pass wait
//! `group_wait` in their platform's batch, are routed to contacts, rate limited per contact, and delivered on
//! each of the contact's channels by a task of their own (retries with backoff must not hold up other
//! alerts). Every delivery leaves a row in the delivery log and a `notification_sent` or
//! `notification_failed` event; every notice held back leaves a `notification_suppressed` event saying why.
//!
//! A tick each second reports maintenance windows starting and ending (with a cursor in the store so that a
//! restart neither repeats nor loses them), notifies alerts still bad when a window ends, and sends due
//! escalations of unacknowledged alerts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_alerting::decision::{Decision, DecisionInput, decide};
use cloudkeep_alerting::escalation::escalation_due;
use cloudkeep_alerting::grouping::{DEFAULT_MAX_BATCH_ITEMS, Grouper};
use cloudkeep_alerting::maintenance::{self, MaintenanceWindow};
use cloudkeep_alerting::policy_config::{DEFAULT_GROUP_WAIT_MS, NotifyPolicy, Target};
use cloudkeep_alerting::ratelimit::{RateDecision, RateLimiter};
use cloudkeep_alerting::routing::{
    AlertContext, Recipient, expand_targets, matching_routes, route,
};
use cloudkeep_alerting::silence::{RawSilence, RawSilenceMatchers, Silence};
use cloudkeep_model::State;
use cloudkeep_notify::{
    Channel, Destination, Notification, NotificationAlert, NotificationStatus, RetryPolicy,
};
use cloudkeep_protocol::alerting::{ScheduleView, ScopeView, SilenceMatchers};
use cloudkeep_store::{AlertRecord, DeliveryRecord, EventRecord};
use tokio::sync::{mpsc, oneshot, watch};

use super::service::event_for_alert;
use crate::Server;
use crate::notify_config::NotifyConfig;

/// The store cursor: the last instant whose maintenance transitions were reported.
const MAINTENANCE_CURSOR: &str = "notifier.maintenance";
/// How often open alerts are checked for due escalations.
const ESCALATION_EVERY_MS: i64 = 5_000;

/// The built channels of `[notify]`, shared by the notifier and the test-send.
#[derive(Debug, Default)]
pub struct Channels {
    pub email: Option<Arc<Channel>>,
    pub sms: Option<Arc<Channel>>,
    pub webhooks: BTreeMap<String, Arc<Channel>>,
}

impl Channels {
    /// Builds every configured channel; the error names the channel and the setting.
    pub fn build(config: &NotifyConfig) -> Result<Channels, String> {
        let email = config
            .email
            .clone()
            .map(|smtp| Channel::email(smtp).map_err(|err| format!("notify.email.{err}")))
            .transpose()?
            .map(Arc::new);
        let sms = config
            .sms
            .clone()
            .map(|sms| Channel::sms(sms).map_err(|err| format!("notify.sms.{err}")))
            .transpose()?
            .map(Arc::new);
        let mut webhooks = BTreeMap::new();
        for (name, webhook) in &config.webhooks {
            let channel = Channel::webhook(webhook.clone())
                .map_err(|err| format!("notify.webhooks[{name:?}].{err}"))?;
            webhooks.insert(name.clone(), Arc::new(channel));
        }
        Ok(Channels {
            email,
            sms,
            webhooks,
        })
    }

    /// Each channel of `contact` with its destination and its name in the delivery log.
    pub fn routes_of(
        &self,
        policy: &NotifyPolicy,
        contact: &str,
    ) -> Vec<(String, Arc<Channel>, Destination)> {
        let Some(contact) = policy.contact(contact) else {
            return Vec::new();
        };
        let mut routes = Vec::new();
        if let (Some(address), Some(channel)) = (contact.email(), &self.email) {
            routes.push((
                "email".to_owned(),
                channel.clone(),
                Destination::Email(address.to_owned()),
            ));
        }
        if let (Some(number), Some(channel)) = (contact.phone(), &self.sms) {
            routes.push((
                "sms".to_owned(),
                channel.clone(),
                Destination::Phone(number.to_owned()),
            ));
        }
        for name in contact.webhooks() {
            if let Some(channel) = self.webhooks.get(name) {
                routes.push((
                    format!("webhook:{name}"),
                    channel.clone(),
                    Destination::Webhook,
                ));
            }
        }
        routes
    }
}

/// An alert changed (or is due to be told again), as the evaluator hands it over.
#[derive(Debug, Clone)]
pub struct AlertNotice {
    /// The alert as stored after the change.
    pub alert: AlertRecord,
    pub from: State,
    pub to: State,
    pub suppressed_by_flapping: bool,
    /// The rule's own `notify` list; empty means "use the routes".
    pub explicit: Vec<String>,
}

/// What the notifier is asked.
#[derive(Debug)]
pub enum NotifierMessage {
    Notice(Box<AlertNotice>),
    /// Maintenance windows or silences changed: read them again.
    Refresh,
    /// Answer once every notice sent before was decided and every due batch sent (tests).
    Sync(oneshot::Sender<()>),
}

/// The side of the notifier the evaluator and the API talk to.
#[derive(Debug, Clone)]
pub struct NotifierHandle {
    sender: mpsc::UnboundedSender<NotifierMessage>,
}

impl NotifierHandle {
    pub fn notice(&self, notice: AlertNotice) {
        let _ = self.sender.send(NotifierMessage::Notice(Box::new(notice)));
    }

    pub fn refresh(&self) {
        let _ = self.sender.send(NotifierMessage::Refresh);
    }

    pub async fn sync(&self) {
        let (reply, done) = oneshot::channel();
        if self.sender.send(NotifierMessage::Sync(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

pub fn channel() -> (NotifierHandle, mpsc::UnboundedReceiver<NotifierMessage>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (NotifierHandle { sender }, receiver)
}

/// One alert waiting in its platform's batch.
#[derive(Debug, Clone)]
struct Pending {
    notice: AlertNotice,
    /// 0 for a state change; the escalation level for an escalation or reminder.
    level: u32,
    /// For an escalation: the group to tell instead of routing.
    group: Option<String>,
}

struct Notifier {
    server: Server,
    config: NotifyConfig,
    channels: Arc<Channels>,
    windows: Vec<MaintenanceWindow>,
    silences: Vec<Silence>,
    grouper: Grouper<String, Pending>,
    limiter: RateLimiter,
    /// The rule's `notify` list of every alert seen since the start (escalations route like the first notice).
    explicit: HashMap<String, Vec<String>>,
    maintenance_cursor: i64,
    next_escalation_check_ms: i64,
}

/// Runs the notifier until `stop` turns true.
pub async fn run(
    server: Server,
    channels: Arc<Channels>,
    mut inbox: mpsc::UnboundedReceiver<NotifierMessage>,
    mut stop: watch::Receiver<bool>,
) {
    let config = server.config().notify.clone();
    let now_ms = server.now_ms();
    let maintenance_cursor = match server.store().get_cursor(MAINTENANCE_CURSOR).await {
        Ok(Some(cursor)) => cursor,
        Ok(None) => now_ms,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the maintenance cursor; starting from now");
            now_ms
        }
    };
    let mut notifier = Notifier {
        limiter: RateLimiter::for_policy(&config.policy),
        grouper: Grouper::new(DEFAULT_GROUP_WAIT_MS, DEFAULT_MAX_BATCH_ITEMS),
        config,
        channels,
        server,
        windows: Vec::new(),
        silences: Vec::new(),
        explicit: HashMap::new(),
        maintenance_cursor,
        next_escalation_check_ms: now_ms,
    };
    notifier.refresh().await;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wait = notifier
            .grouper
            .next_deadline()
            .map(|deadline| (deadline - notifier.server.now_ms()).clamp(0, 1_000))
            .unwrap_or(1_000);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(message) = inbox.recv() => match message {
                NotifierMessage::Notice(notice) => notifier.notice(*notice).await,
                NotifierMessage::Refresh => notifier.refresh().await,
                NotifierMessage::Sync(reply) => {
                    while let Ok(message) = inbox.try_recv() {
                        match message {
                            NotifierMessage::Notice(notice) => notifier.notice(*notice).await,
                            NotifierMessage::Refresh => notifier.refresh().await,
                            NotifierMessage::Sync(other) => { let _ = other.send(()); }
                        }
                    }
                    notifier.flush_due().await;
                    let _ = reply.send(());
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())) => notifier.flush_due().await,
            _ = ticker.tick() => notifier.tick().await,
        }
    }
}

/// Routing's view of a stored alert; `severity` is the state routes and silences match.
fn context(alert: &AlertRecord, severity: State) -> AlertContext {
    AlertContext {
        cloud: alert.cloud.clone(),
        isv: alert.isv.clone(),
        tenant: alert.tenant.clone(),
        platform: alert.platform.clone(),
        host: (!alert.host.is_empty()).then(|| alert.host.clone()),
        monitor: (!alert.monitor.is_empty()).then(|| alert.monitor.clone()),
        severity,
    }
}

fn parse_state(text: Option<&str>) -> Option<State> {
    text.and_then(|text| text.parse::<State>().ok())
}

/// Stored silences as the policy's type; unreadable rows are logged and skipped.
fn silences_from_store(records: Vec<cloudkeep_store::SilenceRecord>) -> Vec<Silence> {
    records
        .into_iter()
        .filter_map(|record| {
            let matchers: SilenceMatchers = serde_json::from_str(&record.matchers_json).ok()?;
            let raw = RawSilence {
                id: record.id.clone(),
                matchers: RawSilenceMatchers {
                    platform: matchers.platform,
                    host: matchers.host,
                    monitor: matchers.monitor,
                    severity: None,
                },
                expires_at_ms: record.expires_at_ms,
                created_by: record.created_by,
                comment: record.comment,
            };
            match Silence::try_from(raw) {
                Ok(silence) => Some(silence),
                Err(err) => {
                    tracing::error!(silence = %record.id, error = %err, "a stored silence cannot be used");
                    None
                }
            }
        })
        .collect()
}

impl Notifier {
    fn policy(&self) -> &NotifyPolicy {
        &self.config.policy
    }

    async fn refresh(&mut self) {
        let now_ms = self.server.now_ms();
        match self.server.store().list_maintenance().await {
            Ok(records) => {
                self.windows = records
                    .into_iter()
                    .filter_map(|record| {
                        let scope: ScopeView = serde_json::from_str(&record.scope_json).ok()?;
                        let schedule: ScheduleView =
                            serde_json::from_str(&record.schedule_json).ok()?;
                        super::maintenance_window(&record.id, &scope, &schedule)
                            .inspect_err(|err| {
                                tracing::error!(window = %record.id, error = %err, "a stored maintenance window cannot be used");
                            })
                            .ok()
                    })
                    .collect();
            }
            Err(err) => tracing::error!(error = %err, "cannot read maintenance windows"),
        }
        match self.server.store().list_silences(now_ms).await {
            Ok(records) => self.silences = silences_from_store(records),
            Err(err) => tracing::error!(error = %err, "cannot read silences"),
        }
    }

    /// Decides about one notice: queue it in its platform's batch, or record why not.
    async fn notice(&mut self, notice: AlertNotice) {
        let now_ms = self.server.now_ms();
        self.explicit
            .insert(notice.alert.alert_key.clone(), notice.explicit.clone());
        let last_notified = parse_state(notice.alert.notified_state.as_deref());
        if notice.from == notice.to && last_notified == Some(notice.to) {
            // Told again with nothing new (flapping ended in the state already notified).
            return;
        }
        let severity = if notice.to == State::Ok {
            last_notified.unwrap_or(notice.from)
        } else {
            notice.to
        };
        let alert_context = context(&notice.alert, severity);
        let decision = decide(&DecisionInput {
            alert: &alert_context,
            transition_to: notice.to,
            transition_from: notice.from,
            suppressed_by_flapping: notice.suppressed_by_flapping,
            maintenance: &self.windows,
            silences: &self.silences,
            acked: notice.alert.acked_by.is_some(),
            last_notified,
            now_ms,
        });
        match decision {
            Decision::Notify => {
                let wait = self.group_wait(&alert_context, &notice.explicit, now_ms);
                let platform = notice.alert.platform.clone();
                self.grouper.push_with_wait(
                    platform,
                    Pending {
                        notice,
                        level: 0,
                        group: None,
                    },
                    now_ms,
                    wait,
                );
            }
            Decision::NothingToTell => {}
            held => self.record_suppressed(&notice.alert, &held, now_ms).await,
        }
    }

    /// The shortest `group_wait` of the routes that apply (the default for a rule's own list).
    fn group_wait(&self, alert: &AlertContext, explicit: &[String], now_ms: i64) -> i64 {
        if explicit
            .iter()
            .any(|name| self.policy().target(name).is_some())
        {
            return DEFAULT_GROUP_WAIT_MS;
        }
        matching_routes(self.policy(), alert, now_ms)
            .iter()
            .map(|route| route.group_wait_ms())
            .min()
            .unwrap_or(DEFAULT_GROUP_WAIT_MS)
    }

    async fn record_suppressed(&self, alert: &AlertRecord, decision: &Decision, now_ms: i64) {
        let (reason, detail) = match decision {
            Decision::SuppressedMaintenance(id) => ("maintenance", Some(id.clone())),
            Decision::SuppressedSilence(id) => ("silence", Some(id.clone())),
            Decision::SuppressedFlapping => ("flapping", None),
            Decision::SuppressedAcked => ("acknowledged", None),
            Decision::Notify | Decision::NothingToTell => return,
        };
        let message = match &detail {
            Some(id) => format!("notification held ({reason} {id}): {}", alert.message),
            None => format!("notification held ({reason}): {}", alert.message),
        };
        self.server
            .record_event(EventRecord {
                kind: "notification_suppressed".into(),
                actor: Some("notifier".into()),
                state_to: Some(alert.state.clone()),
                message,
                data_json: serde_json::json!({ "reason": reason, "by": detail }).to_string(),
                ..event_for_alert(alert, now_ms)
            })
            .await;
    }

    /// Sends every batch whose `group_wait` is over.
    async fn flush_due(&mut self) {
        let now_ms = self.server.now_ms();
        // Batch keys are platforms, with a suffix for escalations (they never wait for state changes).
        for (_, items) in self.grouper.due(now_ms) {
            let Some(platform) = items.first().map(|item| item.notice.alert.platform.clone())
            else {
                continue;
            };
            self.send_batch(&platform, items, now_ms).await;
        }
    }

    async fn send_batch(&mut self, platform: &str, items: Vec<Pending>, now_ms: i64) {
        // One entry per alert: the latest change wins, keeping the state it left first.
        let mut latest: Vec<Pending> = Vec::new();
        for item in items {
            match latest
                .iter_mut()
                .find(|known| known.notice.alert.alert_key == item.notice.alert.alert_key)
            {
                Some(known) => {
                    let from = known.notice.from;
                    *known = item;
                    known.notice.from = from;
                }
                None => latest.push(item),
            }
        }
        // Per contact: the alerts it is told about, at which escalation level.
        let mut per_contact: BTreeMap<String, Vec<(Pending, Recipient)>> = BTreeMap::new();
        let mut told: Vec<(String, State, u32)> = Vec::new();
        for item in latest {
            let current = self
                .server
                .store()
                .get_alert(&item.notice.alert.alert_key)
                .await
                .ok()
                .flatten();
            let last_notified = current
                .as_ref()
                .and_then(|alert| parse_state(alert.notified_state.as_deref()));
            if item.group.is_none()
                && item.notice.from != item.notice.to
                && last_notified == Some(item.notice.to)
            {
                // It went back to the state already told while it waited: nothing new.
                continue;
            }
            if current
                .as_ref()
                .is_some_and(|alert| alert.state != item.notice.to.as_str())
            {
                // It changed again while it waited and that change was decided on its own (e.g. a
                // problem that recovered within `group_wait`, never told, so nothing to tell).
                continue;
            }
            let severity = if item.notice.to == State::Ok {
                last_notified.unwrap_or(item.notice.from)
            } else {
                item.notice.to
            };
            let alert_context = context(&item.notice.alert, severity);
            let recipients = match &item.group {
                Some(group) => {
                    expand_targets(self.policy(), &[Target::Group(group.clone())], item.level)
                }
                None => route(self.policy(), &alert_context, now_ms, &item.notice.explicit),
            };
            if recipients.is_empty() {
                self.record_unrouted(&item.notice.alert, now_ms).await;
                continue;
            }
            told.push((
                item.notice.alert.alert_key.clone(),
                item.notice.to,
                item.level,
            ));
            for recipient in recipients {
                per_contact
                    .entry(recipient.contact.clone())
                    .or_default()
                    .push((item.clone(), recipient));
            }
        }
        for (key, state, level) in told {
            if let Err(err) = self
                .server
                .store()
                .mark_alert_notified(&key, state.as_str(), now_ms, i64::from(level))
                .await
            {
                tracing::error!(alert = %key, error = %err, "cannot record a notification");
            }
        }
        for (contact, items) in per_contact {
            let notification = self.notification(platform, &items, now_ms);
            let alert_keys: Vec<String> = items
                .iter()
                .map(|(item, _)| item.notice.alert.alert_key.clone())
                .collect();
            if let RateDecision::Limited { retry_after_ms } = self.limiter.check(&contact, now_ms) {
                self.record_rate_limited(
                    &contact,
                    &notification,
                    &alert_keys,
                    retry_after_ms,
                    now_ms,
                )
                .await;
                continue;
            }
            let routes = self.channels.routes_of(self.policy(), &contact);
            for (channel_name, channel, destination) in routes {
                tokio::spawn(deliver(
                    self.server.clone(),
                    DeliveryJob {
                        contact: contact.clone(),
                        channel_name,
                        channel,
                        destination,
                        notification: notification.clone(),
                        alert_keys: alert_keys.clone(),
                        retry: self.config.retry.clone(),
                    },
                ));
            }
        }
    }

    fn notification(
        &self,
        platform: &str,
        items: &[(Pending, Recipient)],
        now_ms: i64,
    ) -> Notification {
        let first = &items[0].0.notice.alert;
        let alerts: Vec<NotificationAlert> = items
            .iter()
            .map(|(item, _)| {
                let alert = &item.notice.alert;
                NotificationAlert {
                    host: alert.host.clone(),
                    monitor: alert.monitor.clone(),
                    metric: (!alert.metric.is_empty()).then(|| alert.metric.clone()),
                    state: item.notice.to.as_str().into(),
                    previous_state: item.notice.from.as_str().into(),
                    value: alert.value,
                    threshold: alert.threshold,
                    level_name: alert.level_name.clone(),
                    since_ms: alert.since_ms,
                    message: alert.message.clone(),
                    labels: serde_json::from_str(&alert.labels_json).unwrap_or_default(),
                    acknowledged_by: alert.acked_by.clone(),
                }
            })
            .collect();
        let worst = items
            .iter()
            .map(|(item, _)| item.notice.to)
            .max()
            .unwrap_or(State::Ok);
        Notification {
            id: cloudkeep_stdx::ids::random_hex(16),
            status: if worst == State::Ok {
                NotificationStatus::Resolved
            } else {
                NotificationStatus::Firing
            },
            severity: worst.as_str().into(),
            cloud: first.cloud.clone(),
            isv: first.isv.clone(),
            tenant: first.tenant.clone(),
            platform: platform.to_owned(),
            alerts,
            escalation_level: items.iter().map(|(_, r)| r.level).max().unwrap_or(0),
            dashboard_url: self
                .config
                .dashboard_url
                .as_ref()
                .map(|base| format!("{base}/platforms/{platform}")),
            sent_at_ms: now_ms,
            test: false,
        }
    }

    async fn record_unrouted(&self, alert: &AlertRecord, now_ms: i64) {
        metrics::counter!("cloudkeep_notifications_unrouted_total").increment(1);
        if self.policy().contacts().next().is_none() {
            // Notifications are not configured at all: the events and the dashboard are the only record.
            return;
        }
        tracing::warn!(alert = %alert.alert_key, platform = %alert.platform, "no route or contact for an alert; nobody was notified");
        self.server
            .record_event(EventRecord {
                kind: "notification_unrouted".into(),
                actor: Some("notifier".into()),
                state_to: Some(alert.state.clone()),
                message: format!(
                    "nobody to notify (no [[notify.routes]] entry matches): {}",
                    alert.message
                ),
                ..event_for_alert(alert, now_ms)
            })
            .await;
    }

    async fn record_rate_limited(
        &self,
        contact: &str,
        notification: &Notification,
        alert_keys: &[String],
        retry_after_ms: i64,
        now_ms: i64,
    ) {
        metrics::counter!("cloudkeep_notifications_rate_limited_total").increment(1);
        let delivery = DeliveryRecord {
            id: cloudkeep_stdx::ids::random_hex(16),
            at_ms: now_ms,
            notification_id: notification.id.clone(),
            platform: notification.platform.clone(),
            contact: contact.to_owned(),
            channel: "all".into(),
            status: "rate_limited".into(),
            attempts: 0,
            error: Some(format!(
                "rate limit of the contact reached; a slot frees in {} s",
                (retry_after_ms + 999) / 1000
            )),
        };
        if let Err(err) = self.server.store().insert_delivery(&delivery).await {
            tracing::error!(error = %err, "cannot record a delivery");
        }
        self.server
            .record_event(delivery_event(
                notification,
                alert_keys,
                &delivery,
                "notification_rate_limited",
                format!(
                    "not sent to {contact}: the contact's rate limit is reached ({} alert(s) of {})",
                    notification.alerts.len(),
                    notification.platform
                ),
            ))
            .await;
    }

    async fn tick(&mut self) {
        let now_ms = self.server.now_ms();
        self.maintenance_transitions(now_ms).await;
        if now_ms >= self.next_escalation_check_ms {
            self.next_escalation_check_ms = now_ms + ESCALATION_EVERY_MS;
            self.escalations(now_ms).await;
        }
        self.silences
            .retain(|silence| silence.expires_at_ms > now_ms);
    }

    /// Reports windows that started or ended since the last tick; alerts still bad at a window's end are
    /// notified now.
    async fn maintenance_transitions(&mut self, now_ms: i64) {
        let from_ms = self.maintenance_cursor;
        if now_ms <= from_ms {
            return;
        }
        let mut ended: Vec<MaintenanceWindow> = Vec::new();
        for window in &self.windows {
            for (at_ms, transition) in window.transitions_between(from_ms, now_ms) {
                let (kind, verb) = match transition {
                    maintenance::Transition::Started => ("maintenance_started", "started"),
                    maintenance::Transition::Ended => ("maintenance_ended", "ended"),
                };
                let (platform, host) = match &window.scope {
                    maintenance::Scope::Cloud(_) => (String::new(), String::new()),
                    maintenance::Scope::Platform(platform) => (platform.clone(), String::new()),
                    maintenance::Scope::Host { platform, host } => (platform.clone(), host.clone()),
                };
                let cloud = match &window.scope {
                    maintenance::Scope::Cloud(cloud) => cloud.clone(),
                    _ => String::new(),
                };
                self.server
                    .record_event(EventRecord {
                        id: cloudkeep_stdx::ids::random_hex(16),
                        at_ms,
                        kind: kind.into(),
                        cloud,
                        isv: String::new(),
                        tenant: String::new(),
                        platform,
                        host,
                        monitor: String::new(),
                        alert_key: String::new(),
                        state_from: None,
                        state_to: None,
                        value: None,
                        threshold: None,
                        message: format!("maintenance window {} {verb}", window.id),
                        actor: Some("notifier".into()),
                        data_json: serde_json::json!({ "window": window.id }).to_string(),
                    })
                    .await;
                if transition == maintenance::Transition::Ended {
                    ended.push(window.clone());
                }
            }
        }
        self.maintenance_cursor = now_ms;
        if let Err(err) = self
            .server
            .store()
            .set_cursor(MAINTENANCE_CURSOR, now_ms)
            .await
        {
            tracing::error!(error = %err, "cannot save the maintenance cursor");
        }
        if ended.is_empty() {
            return;
        }
        for (alert, state) in self.open_alerts("at the end of a maintenance window").await {
            let covered = ended
                .iter()
                .any(|window| window.covers(&context(&alert, state)));
            if !covered || state == State::Ok {
                continue;
            }
            let explicit = self
                .explicit
                .get(&alert.alert_key)
                .cloned()
                .unwrap_or_default();
            // Told again as "still in this state"; `notice` skips it if this state was already told.
            self.notice(AlertNotice {
                from: state,
                to: state,
                suppressed_by_flapping: alert.flapping,
                explicit,
                alert,
            })
            .await;
        }
    }

    /// Every alert not ok, with its state; empty (and logged) when the store cannot answer.
    async fn open_alerts(&self, purpose: &str) -> Vec<(AlertRecord, State)> {
        match self.server.store().list_alerts(false).await {
            Ok(alerts) => alerts
                .into_iter()
                .filter_map(|alert| {
                    let state = parse_state(Some(&alert.state))?;
                    Some((alert, state))
                })
                .collect(),
            Err(err) => {
                tracing::error!(error = %err, "cannot read open alerts {purpose}");
                Vec::new()
            }
        }
    }

    /// Sends the escalations and reminders due for unacknowledged alerts.
    async fn escalations(&mut self, now_ms: i64) {
        if self.policy().groups().next().is_none() {
            return;
        }
        for (alert, state) in self.open_alerts("for escalation").await {
            let notified = parse_state(alert.notified_state.as_deref());
            if state == State::Ok || notified != Some(state) || alert.acked_by.is_some() {
                continue;
            }
            let explicit = self
                .explicit
                .get(&alert.alert_key)
                .cloned()
                .unwrap_or_default();
            let alert_context = context(&alert, state);
            // The groups first told, as routing chose them when the alert was raised.
            let mut groups: Vec<String> =
                route(self.policy(), &alert_context, alert.since_ms, &explicit)
                    .into_iter()
                    .filter_map(|recipient| recipient.via_group)
                    .collect();
            groups.sort();
            groups.dedup();
            let last_level = u32::try_from(alert.escalation_level).unwrap_or(0);
            let steps: Vec<_> = groups
                .iter()
                .filter_map(|group| {
                    escalation_due(
                        self.policy(),
                        group,
                        alert.since_ms,
                        false,
                        last_level,
                        now_ms,
                    )
                })
                .collect();
            if steps.is_empty() {
                continue;
            }
            let decision = decide(&DecisionInput {
                alert: &alert_context,
                transition_to: state,
                transition_from: state,
                suppressed_by_flapping: alert.flapping,
                maintenance: &self.windows,
                silences: &self.silences,
                acked: false,
                last_notified: notified,
                now_ms,
            });
            if decision != Decision::Notify {
                continue;
            }
            let level = steps.iter().map(|step| step.level).max().unwrap_or(1);
            if let Err(err) = self
                .server
                .store()
                .mark_alert_notified(&alert.alert_key, state.as_str(), now_ms, i64::from(level))
                .await
            {
                tracing::error!(alert = %alert.alert_key, error = %err, "cannot record an escalation");
                continue;
            }
            self.server
                .record_event(EventRecord {
                    kind: "escalated".into(),
                    actor: Some("notifier".into()),
                    state_from: Some(state.as_str().into()),
                    state_to: Some(state.as_str().into()),
                    message: format!(
                        "unacknowledged; escalated to level {level} ({}): {}",
                        steps
                            .iter()
                            .map(|step| step.group.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        alert.message
                    ),
                    data_json: serde_json::json!({
                        "level": level,
                        "groups": steps.iter().map(|step| step.group.clone()).collect::<Vec<_>>(),
                    })
                    .to_string(),
                    ..event_for_alert(&alert, now_ms)
                })
                .await;
            let platform = alert.platform.clone();
            for step in steps {
                self.grouper.push_with_wait(
                    format!("{platform}\u{0}escalation"),
                    Pending {
                        notice: AlertNotice {
                            alert: alert.clone(),
                            from: state,
                            to: state,
                            suppressed_by_flapping: false,
                            explicit: explicit.clone(),
                        },
                        level: step.level,
                        group: Some(step.group),
                    },
                    now_ms,
                    0,
                );
            }
        }
    }
}

/// One message to one destination, sent by a task of its own.
struct DeliveryJob {
    contact: String,
    channel_name: String,
    channel: Arc<Channel>,
    destination: Destination,
    notification: Notification,
    alert_keys: Vec<String>,
    retry: RetryPolicy,
}

async fn deliver(server: Server, job: DeliveryJob) {
    let mut attempts = 0i64;
    let outcome = cloudkeep_notify::deliver_with_retries(
        &job.channel,
        &job.destination,
        &job.notification,
        &job.retry,
        |record| {
            attempts = i64::from(record.attempt);
            if let Some(error) = &record.error {
                tracing::warn!(contact = %job.contact, channel = %job.channel_name, attempt = record.attempt, error = %error, "notification delivery failed");
            }
        },
    )
    .await;
    let now_ms = server.now_ms();
    let (status, error) = match &outcome {
        Ok(_) => ("sent", None),
        Err(err) => ("failed", Some(err.to_string())),
    };
    metrics::counter!("cloudkeep_notifications_total", "status" => status).increment(1);
    let delivery = DeliveryRecord {
        id: cloudkeep_stdx::ids::random_hex(16),
        at_ms: now_ms,
        notification_id: job.notification.id.clone(),
        platform: job.notification.platform.clone(),
        contact: job.contact.clone(),
        channel: job.channel_name.clone(),
        status: status.into(),
        attempts,
        error: error.clone(),
    };
    if let Err(err) = server.store().insert_delivery(&delivery).await {
        tracing::error!(error = %err, "cannot record a delivery");
    }
    let subject = cloudkeep_notify::render_subject(&job.notification);
    let (kind, message) = match &error {
        None => (
            "notification_sent",
            format!("sent to {} by {}: {subject}", job.contact, job.channel_name),
        ),
        Some(error) => (
            "notification_failed",
            format!(
                "could not reach {} by {} after {attempts} attempt(s): {error}",
                job.contact, job.channel_name
            ),
        ),
    };
    server
        .record_event(delivery_event(
            &job.notification,
            &job.alert_keys,
            &delivery,
            kind,
            message,
        ))
        .await;
}

/// The event of one delivery; it names the alert when the notification is about one.
fn delivery_event(
    notification: &Notification,
    alert_keys: &[String],
    delivery: &DeliveryRecord,
    kind: &str,
    message: String,
) -> EventRecord {
    let single = (notification.alerts.len() == 1).then(|| &notification.alerts[0]);
    EventRecord {
        id: cloudkeep_stdx::ids::random_hex(16),
        at_ms: delivery.at_ms,
        kind: kind.into(),
        cloud: notification.cloud.clone(),
        isv: notification.isv.clone(),
        tenant: notification.tenant.clone(),
        platform: notification.platform.clone(),
        host: single.map(|alert| alert.host.clone()).unwrap_or_default(),
        monitor: single
            .map(|alert| alert.monitor.clone())
            .unwrap_or_default(),
        alert_key: match alert_keys {
            [single] => single.clone(),
            _ => String::new(),
        },
        state_from: None,
        state_to: Some(notification.severity.clone()),
        value: None,
        threshold: None,
        message,
        actor: Some("notifier".into()),
        data_json: serde_json::json!({
            "notification": notification.id,
            "contact": delivery.contact,
            "channel": delivery.channel,
            "attempts": delivery.attempts,
            "error": delivery.error,
            "alerts": alert_keys,
        })
        .to_string(),
    }
}
