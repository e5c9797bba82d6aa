//! The long-running roles: `up` (everything on this machine), `server` and `agent`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use cloudkeep_agent::AgentOptions;
use cloudkeep_backup::RepoLocation;
use cloudkeep_protocol::api::TokenCreateRequest;
use cloudkeep_server::backup_config::BackupConfig;
use cloudkeep_server::{InitialAdmin, Server, ServerConfig};
use cloudkeep_stdx::SystemClock;
use tokio::sync::watch;

use crate::cli::{AgentArgs, ServerArgs, UpArgs};
use crate::context::{self, OperatorContext};

const INITIAL_ADMIN_FILE: &str = "initial-admin.json";

/// A server serving HTTP until stopped.
struct RunningServer {
    server: Server,
    address: SocketAddr,
    stop: watch::Sender<bool>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    async fn start(config: ServerConfig) -> anyhow::Result<(RunningServer, Option<InitialAdmin>)> {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let (server, initial_admin) = Server::start(config, Arc::new(SystemClock)).await?;
        let app = cloudkeep_http::app(server.clone());
        let (stop, mut stopped) = watch::channel(false);
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok((
            RunningServer {
                server,
                address,
                stop,
                serving,
            },
            initial_admin,
        ))
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        match self.serving.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "http server failed"),
            Err(err) => tracing::error!(error = %err, "http server task failed"),
        }
        self.server.shutdown().await;
        tracing::info!("server stopped");
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Saves the first admin's credentials next to the data (mode 0600) so `up` can show them again.
fn remember_initial_admin(data_dir: &Path, admin: &InitialAdmin) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(admin)?;
    let path = data_dir.join(INITIAL_ADMIN_FILE);
    cloudkeep_agent::state::write_private_file(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}

fn recall_initial_admin(data_dir: &Path) -> Option<InitialAdmin> {
    let bytes = std::fs::read(data_dir.join(INITIAL_ADMIN_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(context::default_data_dir);
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path, &data_dir)?,
        None => ServerConfig::defaults(&data_dir),
    };
    if let Some(dir) = args.data_dir {
        let default_url = ServerConfig::defaults(&config.data_dir).database_url;
        if config.database_url == default_url {
            config.database_url = ServerConfig::defaults(&dir).database_url;
        }
        config.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    let data_dir = config.data_dir.clone();
    let (running, initial_admin) = RunningServer::start(config).await?;
    if let Some(admin) = &initial_admin {
        remember_initial_admin(&data_dir, admin)?;
        println!(
            "first admin: user {} password {} (also in {})",
            admin.user,
            admin.password,
            data_dir.join(INITIAL_ADMIN_FILE).display()
        );
    }
    println!("cloudkeep server listening on {}", running.url());
    shutdown_signal().await;
    running.stop().await;
    Ok(())
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let options = AgentOptions {
        server_url: args.server,
        join_token: args.token,
        state_dir: args.state_dir,
        interval: args.interval,
        hostname: args
            .hostname
            .unwrap_or_else(cloudkeep_agent::runner::local_hostname),
        proc_root: args.proc_root,
        outbox_max_bytes: args.outbox_max_mib.saturating_mul(1 << 20),
    };
    cloudkeep_agent::run(options, Arc::new(SystemClock), shutdown_signal()).await?;
    Ok(())
}

/// A host name the spec accepts: lowercase, invalid characters replaced by `-`.
fn spec_host_name(raw: &str) -> String {
    let cleaned: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '-' || c == '.');
    if cloudkeep_model::HostName::new(trimmed).is_ok() {
        trimmed.to_owned()
    } else {
        "localhost".to_owned()
    }
}

fn local_spec(host: &str) -> String {
    serde_json::json!({
        "version": 1,
        "platform": "local",
        "isv": "local",
        "tenant": "local",
        "cloud": "local",
        "description": "this machine, registered by cloudkeep up",
        "hosts": [{"name": host, "components": []}],
    })
    .to_string()
}

/// `<data dir>/backups`, created and made absolute: the local agent writes the backups there.
fn local_backups_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("backups");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let data_dir: PathBuf = args.data_dir.unwrap_or_else(context::default_data_dir);
    let mut config = ServerConfig::defaults(&data_dir);
    config.listen = args.listen;
    let backups_dir = local_backups_dir(&data_dir)?;
    config.backup = BackupConfig::with_default(RepoLocation::Local {
        path: backups_dir.clone(),
        prefix: String::new(),
    });
    let (running, initial_admin) = RunningServer::start(config).await?;
    if let Some(admin) = &initial_admin {
        remember_initial_admin(&data_dir, admin)?;
    }
    let admin = match initial_admin.or_else(|| recall_initial_admin(&data_dir)) {
        Some(admin) => admin,
        None => {
            running.stop().await;
            anyhow::bail!(
                "{} is missing: cannot act as admin on this existing installation; restore it or use a new --data-dir",
                data_dir.join(INITIAL_ADMIN_FILE).display()
            );
        }
    };
    let url = running.url();
    let client = cloudkeep_client::Client::new(&url, Some(admin.token.clone()))?;

    let host = spec_host_name(&cloudkeep_agent::runner::local_hostname());
    client
        .apply_spec("local platform (cloudkeep up)", local_spec(&host))
        .await
        .context("registering this machine")?;
    let agent_state = data_dir.join("agent");
    let join_token = if cloudkeep_agent::state::load_identity(&agent_state)?.is_some() {
        None
    } else {
        let created = client
            .create_token(&TokenCreateRequest {
                platform: "local".into(),
                ttl_seconds: Some(600),
            })
            .await?;
        Some(created.token)
    };
    let options = AgentOptions {
        server_url: url.clone(),
        join_token,
        state_dir: agent_state,
        interval: args.interval,
        hostname: host.clone(),
        proc_root: PathBuf::from("/proc"),
        outbox_max_bytes: 256 << 20,
    };
    let (agent_stop, mut agent_stopped) = watch::channel(false);
    let agent = tokio::spawn(async move {
        let stopped = async move {
            let _ = agent_stopped.wait_for(|stop| *stop).await;
        };
        cloudkeep_agent::run(options, Arc::new(SystemClock), stopped).await
    });
    let context_path = context::save(&OperatorContext {
        server: url.clone(),
        token: admin.token.clone(),
    })?;

    println!("cloudkeep is up");
    println!("  api:        {url}/api/v1 (OpenAPI: {url}/api/v1/openapi.json)");
    println!("  dashboard:  {url}/ (coming with the dashboard work; the API is live now)");
    println!(
        "  admin:      user {} password {}",
        admin.user, admin.password
    );
    println!(
        "  context:    {} (so `cloudkeep hosts` works here with no flags)",
        context_path.display()
    );
    println!("  data:       {}", data_dir.display());
    println!(
        "  backups:    {} (encrypted to each isv's keys: cloudkeep keys create --isv local --out local.key)",
        backups_dir.display()
    );
    println!(
        "  this host:  {host} in platform local, every {}s",
        args.interval.as_secs()
    );

    shutdown_signal().await;
    let _ = agent_stop.send(true);
    match agent.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "local agent failed"),
        Err(err) => tracing::error!(error = %err, "local agent task failed"),
    }
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_made_spec_safe() {
        assert_eq!(spec_host_name("Web_01.Example.COM"), "web-01.example.com");
        assert_eq!(spec_host_name("___"), "localhost");
        assert_eq!(spec_host_name("db1"), "db1");
    }

    #[test]
    fn local_spec_is_valid() {
        let spec = cloudkeep_model::parse_spec("local", &local_spec("myhost")).unwrap();
        assert_eq!(spec.hosts.len(), 1);
    }
}
