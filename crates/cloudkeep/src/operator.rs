//! Operator verbs: each builds the typed client, makes one call and prints the answer.

use std::path::Path;

use anyhow::Context as _;
use cloudkeep_protocol::api::{LoginRequest, TokenCreateRequest};
use cloudkeep_stdx::Clock;

use crate::cli::{LoginArgs, OutputFormat, Remote};
use crate::context::{self, OperatorContext};
use crate::output::{self, print};

fn now_ms() -> i64 {
    cloudkeep_stdx::SystemClock.now_ms()
}

pub async fn hosts(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.hosts().await?;
    let now = now_ms();
    let rows = list
        .hosts
        .iter()
        .map(|host| {
            let worst_df = host
                .filesystems
                .iter()
                .map(|fs| fs.used_percent)
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                });
            let rx: Option<f64> = host
                .interfaces
                .iter()
                .filter_map(|i| i.receive_bytes_per_second)
                .reduce(|a, b| a + b);
            let tx: Option<f64> = host
                .interfaces
                .iter()
                .filter_map(|i| i.transmit_bytes_per_second)
                .reduce(|a, b| a + b);
            vec![
                host.name.clone(),
                host.platform.clone(),
                host.cloud.clone(),
                output::age(host.last_seen_ms, now),
                output::number(host.cpu_busy_percent),
                output::number(host.memory_used_percent),
                output::number(host.load1),
                output::number(worst_df),
                output::rate(rx),
                output::rate(tx),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &[
            "HOST",
            "PLATFORM",
            "CLOUD",
            "LAST SEEN",
            "CPU %",
            "MEM %",
            "LOAD1",
            "DF MAX %",
            "NET RX",
            "NET TX",
        ],
        rows,
    )
}

pub async fn platforms(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.platforms().await?;
    let rows = list
        .platforms
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.isv.clone(),
                p.tenant.clone(),
                p.cloud.clone(),
                p.revision.to_string(),
                p.hosts.join(","),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["PLATFORM", "ISV", "TENANT", "CLOUD", "REVISION", "HOSTS"],
        rows,
    )
}

fn print_spec_errors(errors: &[cloudkeep_model::SpecError]) -> anyhow::Error {
    for error in errors {
        eprintln!("{error}");
    }
    anyhow::anyhow!("{} error(s) in the spec", errors.len())
}

pub fn spec_validate(path: &Path, remote: &Remote) -> anyhow::Result<()> {
    let specs =
        cloudkeep_model::load_spec_path(path).map_err(|errors| print_spec_errors(&errors))?;
    let summary: Vec<serde_json::Value> = specs
        .iter()
        .map(|(file, spec)| {
            serde_json::json!({"file": file.display().to_string(), "platform": spec.platform.to_string(), "hosts": spec.hosts.len()})
        })
        .collect();
    let rows = specs
        .iter()
        .map(|(file, spec)| {
            vec![
                file.display().to_string(),
                spec.platform.to_string(),
                spec.hosts.len().to_string(),
                "ok".into(),
            ]
        })
        .collect();
    print(
        remote.output,
        &summary,
        &["FILE", "PLATFORM", "HOSTS", "RESULT"],
        rows,
    )
}

pub fn spec_schema() -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&cloudkeep_model::spec_json_schema())?
    );
    Ok(())
}

pub async fn spec_apply(path: &Path, remote: &Remote) -> anyhow::Result<()> {
    // Validate everything locally first, so a directory is applied all or nothing as far as the spec goes.
    let specs =
        cloudkeep_model::load_spec_path(path).map_err(|errors| print_spec_errors(&errors))?;
    let client = context::client(remote)?;
    let mut applied = Vec::new();
    for (file, _) in &specs {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let result = client
            .apply_spec(&file.display().to_string(), text)
            .await
            .with_context(|| format!("applying {}", file.display()))?;
        applied.push(result);
    }
    let rows = applied
        .iter()
        .map(|a| {
            vec![
                a.platform.clone(),
                a.revision.to_string(),
                a.outcome.clone(),
            ]
        })
        .collect();
    print(
        remote.output,
        &applied,
        &["PLATFORM", "REVISION", "OUTCOME"],
        rows,
    )
}

pub async fn token_create(
    platform: &str,
    ttl: Option<std::time::Duration>,
    remote: &Remote,
) -> anyhow::Result<()> {
    let request = TokenCreateRequest {
        platform: platform.into(),
        ttl_seconds: ttl.map(|ttl| ttl.as_secs().max(1)),
    };
    let created = context::client(remote)?.create_token(&request).await?;
    match remote.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&created)?),
        OutputFormat::Table => {
            println!("{}", created.token);
            eprintln!(
                "single-use join token for platform {} (expires in {}s); on the host run:\n  cloudkeep agent --server URL --token {}",
                created.platform,
                (created.expires_at_ms - now_ms()).max(0) / 1000,
                created.token
            );
        }
    }
    Ok(())
}

pub async fn agents(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.agents().await?;
    let now = now_ms();
    let rows = list
        .agents
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.host.clone(),
                a.platform.clone(),
                output::age(Some(a.created_at_ms), now),
                a.revoked_at_ms.map_or_else(
                    || "active".into(),
                    |at| format!("revoked {}", output::age(Some(at), now)),
                ),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["AGENT", "HOST", "PLATFORM", "ENROLLED", "STATUS"],
        rows,
    )
}

pub async fn agent_revoke(id: &str, remote: &Remote) -> anyhow::Result<()> {
    context::client(remote)?.revoke_agent(id).await?;
    println!("agent {id} revoked");
    Ok(())
}

pub async fn metrics_query(
    selector: &str,
    start: &str,
    end: &str,
    step: Option<&str>,
    agg: Option<&str>,
    remote: &Remote,
) -> anyhow::Result<()> {
    let answer = context::client(remote)?
        .query_range(selector, start, end, step, agg)
        .await?;
    let mut rows = Vec::new();
    for series in &answer.series {
        let labels = series
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        for (at, value) in &series.points {
            rows.push(vec![
                labels.clone(),
                at.to_string(),
                value.map_or_else(|| "NaN".into(), |v| v.to_string()),
            ]);
        }
    }
    print(
        remote.output,
        &answer,
        &["SERIES", "TIMESTAMP_MS", "VALUE"],
        rows,
    )
}

pub async fn series(selector: &str, remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.series(selector).await?;
    let rows = list
        .series
        .iter()
        .map(|labels| {
            vec![
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    print(remote.output, &list, &["SERIES"], rows)
}

pub async fn audit(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.audit().await?;
    let rows = list
        .entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.at_ms.to_string(),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["SEQ", "AT_MS", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        rows,
    )?;
    if remote.output == OutputFormat::Table {
        println!(
            "hash chain: {}",
            if list.chain_valid { "valid" } else { "BROKEN" }
        );
    }
    Ok(())
}

pub async fn workers(remote: &Remote) -> anyhow::Result<()> {
    let list = context::client(remote)?.workers().await?;
    let rows = list
        .workers
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.state.clone(),
                w.runs.to_string(),
                w.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print(
        remote.output,
        &list,
        &["WORKER", "STATE", "RUNS", "LAST ERROR"],
        rows,
    )
}

pub async fn login(args: &LoginArgs) -> anyhow::Result<()> {
    let server = args
        .remote
        .server
        .clone()
        .context("pass --server URL or set CLOUDKEEP_SERVER")?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let client = cloudkeep_client::Client::new(&server, None)?;
    let session = client
        .login(&LoginRequest {
            user: args.user.clone(),
            password: password.trim_end_matches(['\r', '\n']).to_owned(),
        })
        .await?;
    let path = context::save(&OperatorContext {
        server,
        token: session.token,
    })?;
    println!(
        "logged in as {}; context saved to {}",
        args.user,
        path.display()
    );
    Ok(())
}
