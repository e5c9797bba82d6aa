//! Operator verbs of the alerting workflow: alerts, ack, events, status, maintenance, silences,
//! and deliveries.

use cloudkeep_protocol::alerting::{
    EventQuery, MaintenanceCreate, ScheduleView, ScopeView, SilenceCreate, SilenceMatchers,
};
use cloudkeep_stdx::Clock;

use crate::cli::{
    EventsArgs, MaintenanceAddArgs, MaintenanceCommand, Remote, SilenceAddArgs, SilenceCommand,
};
use crate::context;
use crate::output::{self, print};

fn now_ms() -> i64 {
    cloudkeep_stdx::SystemClock.now_ms()
}

pub async fn alerts(all: bool, remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.alerts(all).await?;
    let now = now_ms();
    let rows = list
        .alerts
        .iter()
        .map(|alert| {
            vec![
                alert.id.clone(),
                alert.state.to_uppercase(),
                alert.platform.clone(),
                alert.host.clone(),
                alert.monitor.clone(),
                output::age(Some(alert.since_ms), now),
                alert
                    .acked_by
                    .clone()
                    .map_or_else(|| "-".into(), |by| format!("acked by {by}")),
                alert.message.clone(),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &[
            "ID", "STATE", "PLATFORM", "HOST", "MONITOR", "SINCE", "ACK", "MESSAGE",
        ],
        rows,
    )
}

pub async fn ack(id: &str, comment: &str, remote: &Remote) -> anyhow::Result<()> {
    let alert = context::client(remote)?.ack(id, comment).await?;
    print(
        remote.output,
        &alert,
        &["ID", "STATE", "ACKED BY", "MESSAGE"],
        vec![vec![
            alert.id.clone(),
            alert.state.to_uppercase(),
            alert.acked_by.clone().unwrap_or_default(),
            alert.message.clone(),
        ]],
    )
}

pub async fn events(args: &EventsArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let since_ms = args
        .since
        .map(|since| now - i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let query = EventQuery {
        from_ms: since_ms,
        to_ms: None,
        kind: args.kind.clone(),
        cloud: args.cloud.clone(),
        isv: args.isv.clone(),
        tenant: args.tenant.clone(),
        platform: args.platform.clone(),
        host: args.host.clone(),
        alert: args.alert.clone(),
        limit: Some(args.limit),
    };
    let list = context::client(&args.remote)?.events(&query).await?;
    let rows = list
        .events
        .iter()
        .map(|event| {
            vec![
                output::age(Some(event.at_ms), now),
                event.kind.clone(),
                event.platform.clone(),
                event.host.clone(),
                match (&event.state_from, &event.state_to) {
                    (Some(from), Some(to)) if from != to => format!("{from} -> {to}"),
                    _ => "-".into(),
                },
                event.message.clone(),
            ]
        })
        .collect();
    print(
        args.remote.output,
        &list,
        &["WHEN", "KIND", "PLATFORM", "HOST", "CHANGE", "MESSAGE"],
        rows,
    )
}

pub async fn status(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.status().await?;
    let rows = list
        .nodes
        .iter()
        .map(|node| {
            vec![
                node.level.clone(),
                node.name.clone(),
                node.state.to_uppercase(),
                node.reason
                    .as_ref()
                    .map_or_else(|| "-".into(), |reason| reason.message.clone()),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["LEVEL", "NAME", "STATE", "WHY"],
        rows,
    )
}

pub async fn maintenance(command: &MaintenanceCommand) -> anyhow::Result<()> {
    match command {
        MaintenanceCommand::List(remote) => {
            let list = context::client(remote)?.maintenance().await?;
            let rows = list
                .windows
                .iter()
                .map(|window| {
                    vec![
                        window.id.clone(),
                        scope_text(&window.scope),
                        schedule_text(&window.schedule),
                        if window.active { "active" } else { "-" }.into(),
                        window.comment.clone(),
                    ]
                })
                .collect();
            print(
                remote.output,
                &list,
                &["ID", "SCOPE", "SCHEDULE", "NOW", "COMMENT"],
                rows,
            )
        }
        MaintenanceCommand::Add(args) => maintenance_add(args).await,
        MaintenanceCommand::Remove { id, remote } => {
            context::client(remote)?.delete_maintenance(id).await?;
            println!("maintenance window {id} removed");
            Ok(())
        }
    }
}

async fn maintenance_add(args: &MaintenanceAddArgs) -> anyhow::Result<()> {
    let scope = match (&args.cloud, &args.platform, &args.host) {
        (Some(cloud), None, None) => ScopeView::Cloud(cloud.clone()),
        (None, Some(platform), None) => ScopeView::Platform(platform.clone()),
        (None, Some(platform), Some(host)) => ScopeView::Host {
            platform: platform.clone(),
            host: host.clone(),
        },
        _ => anyhow::bail!("name the scope: --cloud C, --platform P, or --platform P --host H"),
    };
    let duration_ms = i64::try_from(args.duration.as_millis()).unwrap_or(i64::MAX);
    let schedule = match &args.cron {
        Some(cron) => ScheduleView::Recurring {
            cron: cron.clone(),
            duration_ms,
            timezone: args.timezone.clone(),
            until_ms: None,
        },
        None => {
            let start_ms = args.start_ms.unwrap_or_else(now_ms);
            ScheduleView::OneOff {
                start_ms,
                end_ms: start_ms.saturating_add(duration_ms),
            }
        }
    };
    let request = MaintenanceCreate {
        scope,
        schedule,
        comment: args.comment.clone(),
    };
    let window = context::client(&args.remote)?
        .create_maintenance(&request)
        .await?;
    print(
        args.remote.output,
        &window,
        &["ID", "SCOPE", "SCHEDULE", "NOW"],
        vec![vec![
            window.id.clone(),
            scope_text(&window.scope),
            schedule_text(&window.schedule),
            if window.active { "active" } else { "-" }.into(),
        ]],
    )
}

pub async fn silence(command: &SilenceCommand) -> anyhow::Result<()> {
    match command {
        SilenceCommand::List(remote) => {
            let list = context::client(remote)?.silences().await?;
            let now = now_ms();
            let rows = list
                .silences
                .iter()
                .map(|silence| {
                    vec![
                        silence.id.clone(),
                        matchers_text(&silence.matchers),
                        format!("in {}s", (silence.expires_at_ms - now).max(0) / 1000),
                        silence.created_by.clone(),
                        silence.comment.clone(),
                    ]
                })
                .collect();
            print(
                remote.output,
                &list,
                &["ID", "MATCHES", "EXPIRES", "BY", "COMMENT"],
                rows,
            )
        }
        SilenceCommand::Add(args) => silence_add(args).await,
        SilenceCommand::Remove { id, remote } => {
            context::client(remote)?.delete_silence(id).await?;
            println!("silence {id} removed");
            Ok(())
        }
    }
}

async fn silence_add(args: &SilenceAddArgs) -> anyhow::Result<()> {
    let request = SilenceCreate {
        matchers: SilenceMatchers {
            platform: args.platform.clone(),
            host: args.host.clone(),
            monitor: args.monitor.clone(),
        },
        expires_at_ms: now_ms()
            .saturating_add(i64::try_from(args.duration.as_millis()).unwrap_or(i64::MAX)),
        comment: args.comment.clone(),
    };
    let silence = context::client(&args.remote)?
        .create_silence(&request)
        .await?;
    print(
        args.remote.output,
        &silence,
        &["ID", "MATCHES"],
        vec![vec![silence.id.clone(), matchers_text(&silence.matchers)]],
    )
}

pub async fn deliveries(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.deliveries().await?;
    let now = now_ms();
    let rows = list
        .deliveries
        .iter()
        .map(|delivery| {
            vec![
                output::age(Some(delivery.at_ms), now),
                delivery.contact.clone(),
                delivery.channel.clone(),
                delivery.status.clone(),
                delivery.attempts.to_string(),
                delivery.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["WHEN", "CONTACT", "CHANNEL", "STATUS", "ATTEMPTS", "ERROR"],
        rows,
    )
}

pub async fn notify(command: &crate::cli::NotifyCommand) -> anyhow::Result<()> {
    let crate::cli::NotifyCommand::Test {
        contact,
        channel,
        remote,
    } = command;
    let result = context::client(remote)?
        .notify_test(&cloudkeep_protocol::alerting::NotifyTestRequest {
            contact: contact.clone(),
            channel: channel.clone(),
        })
        .await?;
    let failed = result
        .deliveries
        .iter()
        .filter(|delivery| delivery.status != "sent")
        .count();
    let rows = result
        .deliveries
        .iter()
        .map(|delivery| {
            vec![
                delivery.channel.clone(),
                delivery.status.clone(),
                delivery.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print(
        remote.output,
        &result,
        &["CHANNEL", "STATUS", "ERROR"],
        rows,
    )?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} channel(s) failed", result.deliveries.len());
    }
    Ok(())
}

fn scope_text(scope: &ScopeView) -> String {
    match scope {
        ScopeView::Cloud(name) => format!("cloud {name}"),
        ScopeView::Platform(name) => format!("platform {name}"),
        ScopeView::Host { platform, host } => format!("host {platform}/{host}"),
    }
}

fn schedule_text(schedule: &ScheduleView) -> String {
    match schedule {
        ScheduleView::OneOff { start_ms, end_ms } => {
            format!("once, {} min from {start_ms}", (end_ms - start_ms) / 60_000)
        }
        ScheduleView::Recurring {
            cron,
            duration_ms,
            timezone,
            ..
        } => format!(
            "{cron} ({}) for {} min",
            timezone.as_deref().unwrap_or("UTC"),
            duration_ms / 60_000
        ),
    }
}

fn matchers_text(matchers: &SilenceMatchers) -> String {
    let mut parts = Vec::new();
    if let Some(platform) = &matchers.platform {
        parts.push(format!("platform={platform}"));
    }
    if let Some(host) = &matchers.host {
        parts.push(format!("host={host}"));
    }
    if let Some(monitor) = &matchers.monitor {
        parts.push(format!("monitor={monitor}"));
    }
    parts.join(" ")
}
