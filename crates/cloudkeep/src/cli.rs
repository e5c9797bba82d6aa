//! Command-line flags and subcommands, and dispatch to the role or operator verb they name.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{alerts, backups, keys, operator, roles, watch};

#[derive(Debug, Parser)]
#[command(
    name = "cloudkeep",
    version,
    about = "Run SaaS platforms hands-free: server, agent and operator CLI in one binary"
)]
pub struct Cli {
    /// Log as JSON lines instead of text (logs go to stderr; level via CLOUDKEEP_LOG, e.g. debug).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// How operator verbs find and talk to the server.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Server URL; default from the operator context written by `cloudkeep up`.
    #[arg(long, env = "CLOUDKEEP_SERVER", global = true)]
    pub server: Option<String>,
    /// API token; default from the operator context.
    #[arg(
        long,
        env = "CLOUDKEEP_API_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t, global = true)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on this machine: the server on SQLite in a data dir and a local agent.
    Up(UpArgs),
    /// Run the control-plane server.
    Server(ServerArgs),
    /// Run the agent on this host.
    Agent(AgentArgs),
    /// Watch a control plane from another site: alerts through its own channels when the server stops
    /// answering or its agents stop reporting; depends on nothing of the server it watches.
    Watch(WatchArgs),
    /// List hosts with their latest key metrics.
    Hosts(Remote),
    /// List platforms.
    Platforms(Remote),
    /// Validate, apply or describe platform specs.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Join tokens for enrolling agents.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Enrolled agents.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Query stored metrics.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Show the audit log and whether its hash chain verifies (admins only).
    Audit(Remote),
    /// Show the server's background workers.
    Workers(Remote),
    /// Log in with a user name and password (read from stdin) and save the operator context.
    Login(LoginArgs),
    /// Current alerts (not ok), with who acknowledged them.
    Alerts {
        /// Also list alerts back to ok.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge an alert: no re-notification until its state changes.
    Ack {
        /// Alert id from `cloudkeep alerts`.
        id: String,
        /// Why, for the record (e.g. "restarting the app server").
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Events: state changes, acknowledgements, notifications, maintenance.
    Events(EventsArgs),
    /// Rolled-up state of every cloud, isv, tenant, platform and host, with why.
    Status(Remote),
    /// Maintenance windows: notifications suppressed, events kept.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Silences: stop notifications matching a platform, host or monitor until they expire.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// The notification delivery log.
    Deliveries(Remote),
    /// Notifications: send a test message to a contact.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Backup encryption keys: the server keeps only their public halves.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// PostgreSQL's archive_command: hands a WAL file to the local agent and waits until it is
    /// safely in the repository (`archive_command = 'cloudkeep wal-push %p'`; the agent sets it).
    WalPush(WalPushArgs),
    /// Restore a database from its backups into a new directory, recover it to a point in time
    /// (or the latest) and promote it. Needs the ISV's private key (a file, or - for stdin).
    Restore(RestoreArgs),
    /// DR drill: restore the latest backup into a scratch PostgreSQL on this host, measure RPO (from
    /// the agent's heartbeat row) and RTO, count rows, run a check query, record the result, clean up.
    DrDrill(DrillArgs),
    /// The backup catalog: base backups, archived WAL and failures per database.
    #[command(subcommand)]
    Backups(BackupsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// One row per backed-up database: base backups, WAL runs, newest WAL and last failure.
    List {
        /// Only this platform's databases.
        #[arg(long)]
        platform: Option<String>,
        /// Only databases of this name.
        #[arg(long)]
        database: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Read back every object of a platform's backups and check lengths, blake3 checksums and
    /// that each base backup's WAL is there (no key needed); names every bad object.
    Verify {
        #[arg(long)]
        platform: String,
        /// The database; needed when the platform backs up several.
        #[arg(long)]
        database: Option<String>,
        /// A repository location file (TOML or JSON), to verify without asking the server.
        #[arg(long)]
        repository: Option<PathBuf>,
        /// Objects read at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[command(flatten)]
        remote: Remote,
    },
    /// Take a base backup now, from this host (e.g. before an upgrade): the same backup the agent
    /// takes on schedule (full, or with --incremental only the changed pages), written to the
    /// platform's repository and encrypted to the ISV's public keys. The agent's retention
    /// applies to it like to any other.
    Take(TakeArgs),
    /// One database's base backups (times, LSNs, sizes), WAL runs and last failure.
    Show {
        #[arg(long)]
        platform: String,
        #[arg(long)]
        database: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct TakeArgs {
    /// The platform the database belongs to.
    #[arg(long)]
    pub platform: String,
    /// The database (component) name, as in the spec.
    #[arg(long)]
    pub database: String,
    /// The cluster's data directory (read directly, so run this on the database host).
    #[arg(long)]
    pub pgdata: PathBuf,
    /// How to reach the cluster as a superuser (a postgres:// URL; a socket directory as `?host=/dir`).
    #[arg(long, default_value = cloudkeep_model::BackupSpec::DEFAULT_CONNECTION)]
    pub connection: String,
    /// A repository location file (TOML or JSON, as in the server's [backup] section), to work
    /// without the server; then --recipient is needed too.
    #[arg(long)]
    pub repository: Option<PathBuf>,
    /// An age public key (age1…) to encrypt to; repeatable. Default: the ISV's keys on the server.
    #[arg(long = "recipient")]
    pub recipients: Vec<String>,
    /// Pieces uploaded at once.
    #[arg(long, default_value_t = cloudkeep_model::BackupSpec::DEFAULT_PARALLEL)]
    pub parallel: u32,
    /// zstd level (1-19).
    #[arg(long, default_value_t = cloudkeep_model::BackupSpec::DEFAULT_COMPRESSION_LEVEL)]
    pub level: i32,
    /// Largest piece of a big file, in MiB.
    #[arg(long, default_value_t = cloudkeep_model::BackupSpec::DEFAULT_SPLIT_SIZE >> 20)]
    pub split_mib: u64,
    /// Store only the pages changed since the newest backup of this cluster and timeline (which
    /// a restore then needs too); a full backup when there is none.
    #[arg(long)]
    pub incremental: bool,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub source: BackupSource,
    /// Where the scratch data directory is made (default: the temp dir).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
    /// Port of the scratch server (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// A query whose first column is true (or non-zero) when the restored data is healthy.
    #[arg(long)]
    pub check_sql: Option<String>,
    /// The database holding the heartbeat table and checked by --check-sql.
    #[arg(long, default_value = "postgres")]
    pub dbname: String,
    /// The user to connect as.
    #[arg(long, default_value = "postgres")]
    pub user: String,
    #[command(flatten)]
    pub run: PgRunArgs,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct WalPushArgs {
    /// The agent's socket (in its state directory).
    #[arg(long, env = "CLOUDKEEP_WAL_SOCKET", default_value = crate::restore::DEFAULT_WAL_SOCKET)]
    pub socket: PathBuf,
    /// The WAL file (PostgreSQL's %p, relative to the data directory).
    pub path: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["target_time", "latest"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub source: BackupSource,
    /// Recover to this time: RFC 3339, or "YYYY-MM-DD HH:MM:SS" in UTC.
    #[arg(long)]
    pub target_time: Option<String>,
    /// Recover to the end of the archived WAL.
    #[arg(long)]
    pub latest: bool,
    /// The new data directory (must not exist, or be empty).
    #[arg(long)]
    pub to: PathBuf,
    /// Start the restored server on this port and leave it running; without it the server is
    /// stopped cleanly once promoted.
    #[arg(long)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub run: PgRunArgs,
    #[command(flatten)]
    pub remote: Remote,
}

/// Which database's backups, and the key that reads them.
#[derive(Debug, Args)]
pub struct BackupSource {
    /// The platform whose database is restored.
    #[arg(long)]
    pub platform: String,
    /// The database (component) name; needed when the platform backs up several.
    #[arg(long)]
    pub database: Option<String>,
    /// The ISV's private key file, or - to read it from stdin.
    #[arg(long)]
    pub key: PathBuf,
    /// A repository location file (TOML or JSON, as in the server's [backup] section), to work
    /// without asking the server.
    #[arg(long)]
    pub repository: Option<PathBuf>,
}

/// How the restored PostgreSQL is fetched and run.
#[derive(Debug, Args)]
pub struct PgRunArgs {
    /// Unix socket directory for the restored server (restore: its configured one; drill: the
    /// scratch dir's parent).
    #[arg(long)]
    pub socket_dir: Option<PathBuf>,
    /// Directory of pg_ctl (default /usr/lib/postgresql/<version>/bin).
    #[arg(long)]
    pub pg_bin: Option<PathBuf>,
    /// Run PostgreSQL as this user (default postgres when run as root).
    #[arg(long)]
    pub run_as: Option<String>,
    /// Objects fetched at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Give up when recovery takes longer than this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make an age key pair for an ISV here: the private key goes to --out (mode 0600, for the key
    /// custodian), only the public key goes to the server.
    Create {
        #[arg(long)]
        isv: String,
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Who keeps the private key, for the record.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The stored public keys.
    List {
        #[arg(long)]
        isv: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification to a contact of the server's [notify] section and show each channel's answer.
    Test {
        /// Contact name.
        contact: String,
        /// Only this channel: email, sms or webhook:NAME.
        #[arg(long)]
        channel: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of the last DURATION, e.g. 1h.
    #[arg(long, value_parser = parse_interval)]
    pub since: Option<std::time::Duration>,
    /// Comma-separated kinds, e.g. state_change,acknowledged.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub cloud: Option<String>,
    #[arg(long)]
    pub isv: Option<String>,
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    /// Only events of this alert id.
    #[arg(long)]
    pub alert: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// List maintenance windows.
    List(Remote),
    /// Add a one-off (from now or --start-ms) or recurring (--cron) window.
    Add(MaintenanceAddArgs),
    /// Remove a window.
    Remove {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct MaintenanceAddArgs {
    #[arg(long)]
    pub cloud: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    /// With --platform: only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// How long the window lasts, e.g. 2h.
    #[arg(long, value_parser = parse_interval)]
    pub duration: std::time::Duration,
    /// Start of a one-off window, Unix ms; now when absent.
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Recurring start as a five-field cron expression, e.g. "0 2 * * SUN".
    #[arg(long)]
    pub cron: Option<String>,
    /// Time zone of --cron, e.g. Europe/London (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    #[arg(long, short = 'm', default_value = "")]
    pub comment: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// List active silences.
    List(Remote),
    /// Silence notifications matching a platform, host and/or monitor for a while.
    Add(SilenceAddArgs),
    /// Remove a silence.
    Remove {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct SilenceAddArgs {
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub monitor: Option<String>,
    /// How long, e.g. 30m.
    #[arg(long, value_parser = parse_interval)]
    pub duration: std::time::Duration,
    #[arg(long, short = 'm', default_value = "")]
    pub comment: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where state, metrics and the local agent live; default $XDG_DATA_HOME/cloudkeep.
    #[arg(long, env = "CLOUDKEEP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for the API and dashboard.
    #[arg(long, default_value = "127.0.0.1:8440")]
    pub listen: String,
    /// Collection interval of the local agent, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Configuration file (TOML, version = 1); flags win over it.
    #[arg(long, env = "CLOUDKEEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory; default $XDG_DATA_HOME/cloudkeep.
    #[arg(long, env = "CLOUDKEEP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8440 (port 0 picks a free port and prints it).
    #[arg(long)]
    pub listen: Option<String>,
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CLOUDKEEP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// URL of the server to watch.
    #[arg(long, env = "CLOUDKEEP_SERVER")]
    pub server: String,
    /// The watcher's own configuration (TOML): `version = 1`, `to = [contacts or groups]` and a
    /// `[notify]` section in the server's format.
    #[arg(long)]
    pub config: PathBuf,
    /// An API token (viewer is enough) to also check that agents keep reporting.
    #[arg(long, env = "CLOUDKEEP_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Time between probes.
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Consecutive failed probes before alerting.
    #[arg(long, default_value_t = 3)]
    pub failures: u32,
    /// A host silent for longer than this counts as not reporting; alert when all are.
    #[arg(long, default_value = "5m", value_parser = parse_interval)]
    pub stale_after: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Server URL.
    #[arg(long, env = "CLOUDKEEP_SERVER")]
    pub server: String,
    /// Join token, needed on the first start only.
    #[arg(long, env = "CLOUDKEEP_JOIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where the agent keeps its identity and outbox.
    #[arg(
        long,
        env = "CLOUDKEEP_AGENT_STATE_DIR",
        default_value = "/var/lib/cloudkeep-agent"
    )]
    pub state_dir: PathBuf,
    /// Collection interval, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Host name to report; default the kernel's host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Largest size of the on-disk outbox in MiB; the oldest batches go first when full.
    #[arg(long, default_value_t = 256)]
    pub outbox_max_mib: u64,
    /// Root of the proc filesystem to read.
    #[arg(long, default_value = "/proc", hide = true)]
    pub proc_root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Check a spec file or a directory of them; prints every error with file and JSON path.
    Validate {
        path: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the JSON Schema of platform specs (for editors).
    Schema,
    /// Register or update the platforms of a spec file or directory in the server.
    Apply {
        path: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a single-use join token for a platform.
    Create {
        #[arg(long)]
        platform: String,
        /// Lifetime, e.g. 1h, 30m (default 1h, at most 7d).
        #[arg(long, value_parser = parse_interval)]
        ttl: Option<std::time::Duration>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List enrolled agents.
    List(Remote),
    /// Revoke an agent; its credential is refused from then on.
    Revoke {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Samples over a time range: `cloudkeep metrics query 'host_cpu_busy_percent{host="web1"}' --start now-1h --step 1m`.
    Query {
        selector: String,
        /// ms since the epoch, now, or now-DURATION.
        #[arg(long, default_value = "now-1h")]
        start: String,
        #[arg(long, default_value = "now")]
        end: String,
        /// Bucket width (30s, 5m, 1h); absent: raw samples.
        #[arg(long)]
        step: Option<String>,
        /// avg, min, max, sum, count or last (with --step).
        #[arg(long)]
        agg: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Series matching a selector.
    Series {
        selector: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long, default_value = "admin")]
    pub user: String,
    #[command(flatten)]
    pub remote: Remote,
}

pub enum RuntimeKind {
    CurrentThread,
    MultiThread,
}

impl Command {
    /// The agent runs on a single thread to stay small; the server and `up` use all cores.
    pub fn runtime(&self) -> RuntimeKind {
        match self {
            Command::Up(_) | Command::Server(_) | Command::Restore(_) | Command::DrDrill(_) => {
                RuntimeKind::MultiThread
            }
            _ => RuntimeKind::CurrentThread,
        }
    }

    pub fn is_long_running(&self) -> bool {
        matches!(
            self,
            Command::Up(_) | Command::Server(_) | Command::Agent(_) | Command::Watch(_)
        )
    }
}

/// `10s`, `2m`, `1h`, `500ms`.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 2m or 1h"))?;
    let duration = match unit {
        "ms" => std::time::Duration::from_millis(value),
        "s" => std::time::Duration::from_secs(value),
        "m" => std::time::Duration::from_secs(value * 60),
        "h" => std::time::Duration::from_secs(value * 3600),
        "d" => std::time::Duration::from_secs(value * 86400),
        _ => return Err(format!("{text:?} is not a duration like 10s, 2m or 1h")),
    };
    if duration.is_zero() {
        return Err("a duration must be positive".into());
    }
    Ok(duration)
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => roles::up(args).await,
        Command::Server(args) => roles::server(args).await,
        Command::Agent(args) => roles::agent(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Hosts(remote) => operator::hosts(&remote).await,
        Command::Platforms(remote) => operator::platforms(&remote).await,
        Command::Spec(SpecCommand::Validate { path, remote }) => {
            operator::spec_validate(&path, &remote)
        }
        Command::Spec(SpecCommand::Schema) => operator::spec_schema(),
        Command::Spec(SpecCommand::Apply { path, remote }) => {
            operator::spec_apply(&path, &remote).await
        }
        Command::Token(TokenCommand::Create {
            platform,
            ttl,
            remote,
        }) => operator::token_create(&platform, ttl, &remote).await,
        Command::Agents(AgentsCommand::List(remote)) => operator::agents(&remote).await,
        Command::Agents(AgentsCommand::Revoke { id, remote }) => {
            operator::agent_revoke(&id, &remote).await
        }
        Command::Metrics(MetricsCommand::Query {
            selector,
            start,
            end,
            step,
            agg,
            remote,
        }) => {
            operator::metrics_query(
                &selector,
                &start,
                &end,
                step.as_deref(),
                agg.as_deref(),
                &remote,
            )
            .await
        }
        Command::Metrics(MetricsCommand::Series { selector, remote }) => {
            operator::series(&selector, &remote).await
        }
        Command::Audit(remote) => operator::audit(&remote).await,
        Command::Workers(remote) => operator::workers(&remote).await,
        Command::Login(args) => operator::login(&args).await,
        Command::Alerts { all, remote } => alerts::alerts(all, &remote).await,
        Command::Ack {
            id,
            comment,
            remote,
        } => alerts::ack(&id, &comment, &remote).await,
        Command::Events(args) => alerts::events(&args).await,
        Command::Status(remote) => alerts::status(&remote).await,
        Command::Maintenance(command) => alerts::maintenance(&command).await,
        Command::Silence(command) => alerts::silence(&command).await,
        Command::Deliveries(remote) => alerts::deliveries(&remote).await,
        Command::Notify(command) => alerts::notify(&command).await,
        Command::Keys(command) => keys::run(&command).await,
        Command::WalPush(args) => crate::restore::wal_push(&args).await,
        Command::Restore(args) => crate::restore::restore(&args).await,
        Command::DrDrill(args) => crate::restore::dr_drill(&args).await,
        Command::Backups(command) => backups::run(&command).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval("10s"),
            Ok(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            parse_interval("2m"),
            Ok(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            parse_interval("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("ten").is_err());
        assert!(parse_interval("10").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
