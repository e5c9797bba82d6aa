//! `cloudkeep watch`: probes a control plane from outside and notifies through its own channels.
//!
//! Wiring only: the judgement is `cloudkeep_alerting::watch`, the channels are `cloudkeep_notify`'s, built
//! from the watcher's own `[notify]` section. Nothing here needs the watched server to work.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cloudkeep_alerting::routing::expand_targets;
use cloudkeep_alerting::watch::{Probe, Watch, WatchChange, WatchPolicy};
use cloudkeep_model::State;
use cloudkeep_notify::{Notification, NotificationAlert, NotificationStatus};
use cloudkeep_server::alerting::notifier::Channels;
use cloudkeep_server::notify_config::{NotifyConfig, RawNotifySection};
use cloudkeep_stdx::{Clock, SystemClock};
use serde::Deserialize;

use crate::cli::WatchArgs;

/// The watcher's configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatchConfig {
    /// Schema version; only 1 exists.
    version: u32,
    /// Contacts or groups of `[notify]` told about every change.
    to: Vec<String>,
    /// Channels and contacts, as in the server's configuration.
    notify: RawNotifySection,
}

struct WatchConfig {
    notify: NotifyConfig,
    contacts: Vec<String>,
}

fn read_config(path: &Path) -> anyhow::Result<WatchConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw: RawWatchConfig = toml::from_str(&text)
        .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.to_string().trim_end()))?;
    if raw.version != 1 {
        anyhow::bail!(
            "{}: version = {} is not supported; this build reads version 1",
            path.display(),
            raw.version
        );
    }
    let notify = raw.notify.validate().map_err(|problems| {
        anyhow::anyhow!(
            "{}: the [notify] section has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )
    })?;
    let mut targets = Vec::new();
    for (index, name) in raw.to.iter().enumerate() {
        match notify.policy.target(name) {
            Some(target) => targets.push(target),
            None => anyhow::bail!(
                "{}: to[{index}]: unknown contact or group {name:?}; known: {}",
                path.display(),
                notify.policy.known_recipients()
            ),
        }
    }
    let contacts: Vec<String> = expand_targets(&notify.policy, &targets, 0)
        .into_iter()
        .map(|recipient| recipient.contact)
        .collect();
    if contacts.is_empty() {
        anyhow::bail!(
            "{}: `to` names nobody; a watcher that tells no one is no use",
            path.display()
        );
    }
    Ok(WatchConfig { notify, contacts })
}

pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let config = read_config(&args.config)?;
    let channels = Channels::build(&config.notify).map_err(|err| anyhow::anyhow!("{err}"))?;
    let client = cloudkeep_client::Client::new(&args.server, args.token.clone())
        .with_context(|| format!("--server {}", args.server))?;
    let policy = WatchPolicy {
        failures_to_alert: args.failures.max(1),
        stale_after_ms: i64::try_from(args.stale_after.as_millis()).unwrap_or(i64::MAX),
    };
    let probe_timeout = args.interval.min(Duration::from_secs(10));
    tracing::info!(server = %args.server, interval = ?args.interval, contacts = ?config.contacts, "watching");
    let mut watch = Watch::default();
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let probe = probe(&client, args.token.is_some(), probe_timeout).await;
        let now_ms = SystemClock.now_ms();
        for change in watch.observe(&probe, &policy, now_ms) {
            tracing::warn!(monitor = change.monitor.as_str(), to = %change.to, message = %change.message, "control plane state changed");
            notify(&config, &channels, &args.server, &change).await;
        }
    }
}

async fn probe(client: &cloudkeep_client::Client, list_hosts: bool, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, client.readyz()).await {
        Err(_) => return Probe::Unreachable(format!("no answer within {timeout:?}")),
        Ok(Err(err)) => return Probe::Unreachable(err.to_string()),
        Ok(Ok(())) => {}
    }
    if !list_hosts {
        return Probe::Reachable { hosts: None };
    }
    match tokio::time::timeout(timeout, client.hosts()).await {
        Ok(Ok(list)) => Probe::Reachable {
            hosts: Some(
                list.hosts
                    .into_iter()
                    .map(|host| (host.name, host.last_seen_ms))
                    .collect(),
            ),
        },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot list hosts; checking the server only");
            Probe::Reachable { hosts: None }
        }
        Err(_) => Probe::Unreachable(format!("the host list did not come within {timeout:?}")),
    }
}

async fn notify(config: &WatchConfig, channels: &Channels, server: &str, change: &WatchChange) {
    let notification = Notification {
        id: cloudkeep_stdx::ids::random_hex(16),
        status: if change.to == State::Ok {
            NotificationStatus::Resolved
        } else {
            NotificationStatus::Firing
        },
        severity: change.to.as_str().into(),
        cloud: String::new(),
        isv: String::new(),
        tenant: String::new(),
        platform: "cloudkeep control plane".into(),
        alerts: vec![NotificationAlert {
            host: server.to_owned(),
            monitor: change.monitor.as_str().into(),
            metric: None,
            state: change.to.as_str().into(),
            previous_state: change.from.as_str().into(),
            value: None,
            threshold: None,
            level_name: (change.to != State::Ok).then(|| match change.monitor {
                cloudkeep_alerting::watch::WatchMonitor::Server => "control plane down".to_owned(),
                cloudkeep_alerting::watch::WatchMonitor::Agents => {
                    "agents not reporting".to_owned()
                }
            }),
            since_ms: change.at_ms,
            message: change.message.clone(),
            labels: Default::default(),
            acknowledged_by: None,
        }],
        escalation_level: 0,
        dashboard_url: None,
        sent_at_ms: change.at_ms,
        test: false,
    };
    for contact in &config.contacts {
        for (channel_name, channel, destination) in
            channels.routes_of(&config.notify.policy, contact)
        {
            let outcome = cloudkeep_notify::deliver_with_retries(
                &channel,
                &destination,
                &notification,
                &config.notify.retry,
                |_| {},
            )
            .await;
            match outcome {
                Ok(_) => {
                    tracing::info!(contact = %contact, channel = %channel_name, "notification sent")
                }
                Err(err) => {
                    tracing::error!(contact = %contact, channel = %channel_name, error = %err, "notification failed")
                }
            }
        }
    }
}
