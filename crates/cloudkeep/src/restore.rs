//! `cloudkeep wal-push` (PostgreSQL's `archive_command`, a thin client of the local agent) and
//! `cloudkeep restore` (fetch, verify, recover to a point in time, promote).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cloudkeep_backup::pg::{
    DatabaseLayout, RecoverySettings, RecoveryTarget, plan_restore, recover, restore_files,
};
use cloudkeep_backup::{Identity, RepoLocation, Repository};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::cli::{RestoreArgs, WalPushArgs};
use crate::context;
use crate::output::print;

/// The socket `wal-push` uses unless told otherwise.
pub const DEFAULT_WAL_SOCKET: &str = "/var/lib/cloudkeep/agent/wal.sock";

/// Runs `wal-push`; the exit status is what PostgreSQL looks at.
pub async fn wal_push(args: &WalPushArgs) -> anyhow::Result<()> {
    cloudkeep_agent::backup::socket::wal_push(&args.socket, &args.path)
        .await
        .map_err(|message| anyhow::anyhow!("wal-push {}: {message}", args.path.display()))
}

/// Reads the custodian's private key from a file or, for `-`, standard input.
pub fn read_identities(source: &Path) -> anyhow::Result<Vec<Identity>> {
    let text = if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the private key from stdin")?;
        text
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("cannot read the private key file {}", source.display()))?
    };
    Identity::parse_key_file(&text).map_err(|error| match source == Path::new("-") {
        true => anyhow::anyhow!("the private key on stdin: {error}"),
        false => anyhow::anyhow!("{}: {error}", source.display()),
    })
}

/// A repository location from a file (TOML or JSON), for restores without the server.
fn location_from_file(path: &Path) -> anyhow::Result<RepoLocation> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a repository location", path.display()))
    } else {
        toml::from_str(&text)
            .with_context(|| format!("{}: not a repository location", path.display()))
    }
}

/// Where `platform`'s backups live: from `--repository FILE`, else from the server (admins only),
/// which also names the platform's ISV.
pub async fn location_for(
    platform: &str,
    file: Option<&Path>,
    remote: &crate::cli::Remote,
) -> anyhow::Result<(RepoLocation, Option<String>)> {
    match file {
        Some(path) => Ok((location_from_file(path)?, None)),
        None => {
            let client = context::client(remote)?;
            let access = client
                .backup_repository(platform)
                .await
                .with_context(|| format!("asking the server where {platform}'s backups are"))?;
            let location = serde_json::from_value(access.repository)
                .context("the server sent a repository location this version cannot read")?;
            Ok((location, Some(access.isv)))
        }
    }
}

/// The repository of `platform`: from `--repository FILE`, else from the server (admins only).
pub async fn repository_for(
    platform: &str,
    file: Option<&Path>,
    remote: &crate::cli::Remote,
) -> anyhow::Result<Repository> {
    let (location, _) = location_for(platform, file, remote).await?;
    Repository::open(&location).map_err(|error| anyhow::anyhow!("repository: {error}"))
}

/// The database to restore: the one given, else the platform's only backed-up database.
pub async fn database_for(
    repository: &Repository,
    platform: &str,
    database: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(database) = database {
        return Ok(database.to_owned());
    }
    let mut databases: Vec<String> = repository
        .list_manifests(platform)
        .await?
        .iter()
        .filter_map(|name| name.as_str().split('/').nth(1).map(str::to_owned))
        .collect();
    databases.sort();
    databases.dedup();
    match databases.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!(
            "platform {platform} has no backups in {}",
            repository.root()
        ),
        many => bail!(
            "platform {platform} has backups of several databases ({}): pass --database",
            many.join(", ")
        ),
    }
}

/// Parses `--target-time`: RFC 3339 (`2026-11-22T10:15:00Z`, `…+01:00`) or `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn parse_target_time(text: &str) -> anyhow::Result<i64> {
    let parsed = text.parse::<jiff::Timestamp>().or_else(|_| {
        text.parse::<jiff::civil::DateTime>()
            .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC))
            .map(|zoned| zoned.timestamp())
    });
    parsed.map(|at| at.as_millisecond()).map_err(|_| {
        anyhow::anyhow!(
            "--target-time {text:?}: not a time like 2026-11-22T10:15:00Z or \"2026-11-22 10:15:00\" (UTC)"
        )
    })
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The key, the repository and the database of `--platform`/`--database`/`--key`/`--repository`.
async fn open_source(
    source: &crate::cli::BackupSource,
    remote: &crate::cli::Remote,
) -> anyhow::Result<(Vec<Identity>, Repository, DatabaseLayout)> {
    let identities = read_identities(&source.key)?;
    let repository = repository_for(&source.platform, source.repository.as_deref(), remote).await?;
    let database = database_for(&repository, &source.platform, source.database.as_deref()).await?;
    let layout = DatabaseLayout::new(&source.platform, &database)?;
    Ok((identities, repository, layout))
}

impl crate::cli::PgRunArgs {
    /// Recovery settings for a server on `port`, with `socket_dir` unless `--socket-dir` is given.
    fn recovery(
        &self,
        port: Option<u16>,
        socket_dir: Option<PathBuf>,
        keep_running: bool,
    ) -> RecoverySettings {
        RecoverySettings {
            port,
            socket_dir: self.socket_dir.clone().or(socket_dir),
            pg_bin: self.pg_bin.clone(),
            run_as: self
                .run_as
                .clone()
                .or_else(|| is_root().then(|| "postgres".to_owned())),
            keep_running,
            timeout: Duration::from_secs(self.timeout_s),
        }
    }
}

/// What `cloudkeep restore` prints.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub platform: String,
    pub database: String,
    pub base_backup: String,
    pub target: String,
    pub directory: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub wal_files: usize,
    pub fetch_seconds: f64,
    pub recovery_seconds: f64,
    /// Fetch plus recovery: the measured recovery time.
    pub total_seconds: f64,
    pub running_on_port: Option<u16>,
}

/// Restores a database into a new directory and recovers it to the target.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (identities, repository, layout) = open_source(&args.source, &args.remote).await?;
    let target = match &args.target_time {
        Some(text) => RecoveryTarget::Time(parse_target_time(text)?),
        None => RecoveryTarget::Latest,
    };
    let plan = plan_restore(&repository, &layout, target.clone()).await?;
    let settings = args.run.recovery(args.port, None, args.port.is_some());
    let fetched = restore_files(
        &repository,
        &identities,
        &plan,
        &args.to,
        &settings,
        args.run.parallel.max(1),
    )
    .await?;
    let recovered = recover(&args.to, &plan.base.pg_version, &settings).await?;
    let report = RestoreReport {
        platform: layout.platform().to_owned(),
        database: layout.database().to_owned(),
        base_backup: plan.base.id.clone(),
        target: match &args.target_time {
            Some(text) => text.clone(),
            None => "latest".to_owned(),
        },
        directory: args.to.clone(),
        files: fetched.files,
        bytes: fetched.bytes,
        wal_files: fetched.wal_files,
        fetch_seconds: fetched.elapsed.as_secs_f64(),
        recovery_seconds: recovered.elapsed.as_secs_f64(),
        total_seconds: started.elapsed().as_secs_f64(),
        running_on_port: recovered.running.then_some(args.port).flatten(),
    };
    match args.remote.output {
        OutputFormat::Json => print(OutputFormat::Json, &report, &[], Vec::new()),
        OutputFormat::Table => {
            println!(
                "restored {}/{} from base backup {} to {} into {}",
                report.platform,
                report.database,
                report.base_backup,
                report.target,
                report.directory.display()
            );
            println!(
                "  {} files, {} bytes, {} WAL files fetched and verified in {:.1} s; recovered and promoted in {:.1} s; total {:.1} s",
                report.files,
                report.bytes,
                report.wal_files,
                report.fetch_seconds,
                report.recovery_seconds,
                report.total_seconds
            );
            match report.running_on_port {
                Some(port) => println!("  PostgreSQL is running on port {port}"),
                None => println!(
                    "  PostgreSQL was stopped cleanly; start it with pg_ctl -D {}",
                    report.directory.display()
                ),
            }
            Ok(())
        }
    }
}

fn free_local_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs a DR drill: restores the latest backup into a scratch server on this host, measures RPO
/// and RTO, checks it, cleans up, and records the result on the server when it can be reached.
pub async fn dr_drill(args: &crate::cli::DrillArgs) -> anyhow::Result<()> {
    use cloudkeep_stdx::Clock;
    let started_at_ms = cloudkeep_stdx::SystemClock.now_ms();
    let (identities, repository, layout) = open_source(&args.source, &args.remote).await?;
    let port = match args.port {
        Some(port) => port,
        None => free_local_port()?,
    };
    let scratch_parent = args.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let settings = cloudkeep_backup::pg::DrillSettings {
        scratch_parent: scratch_parent.clone(),
        port,
        recovery: args.run.recovery(Some(port), Some(scratch_parent), true),
        dbname: args.dbname.clone(),
        user: args.user.clone(),
        parallel: args.run.parallel.max(1),
        check_sql: args.check_sql.clone(),
    };
    let report = cloudkeep_backup::pg::run_drill(
        &repository,
        &layout,
        &identities,
        &settings,
        started_at_ms,
    )
    .await?;
    if args.source.repository.is_none() {
        match context::client(&args.remote) {
            Ok(client) => {
                if let Err(error) = client
                    .record_drill(&cloudkeep_agent::backup::drill::drill_record(&report))
                    .await
                {
                    eprintln!("warning: the drill could not be recorded on the server: {error}");
                }
            }
            Err(error) => {
                eprintln!("warning: the drill could not be recorded on the server: {error}")
            }
        }
    }
    match args.remote.output {
        OutputFormat::Json => print(OutputFormat::Json, &report, &[], Vec::new())?,
        OutputFormat::Table => print_drill(&report),
    }
    if !report.ok {
        bail!(
            "DR drill failed: {}",
            report
                .error
                .clone()
                .unwrap_or_else(|| "see the report".to_owned())
        );
    }
    Ok(())
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "unknown".to_owned(),
        |ms| format!("{:.1} s", ms as f64 / 1000.0),
    )
}

fn print_drill(report: &cloudkeep_backup::pg::DrillReport) {
    println!(
        "DR drill of {}/{}: {}",
        report.platform,
        report.database,
        if report.ok { "PASSED" } else { "FAILED" }
    );
    println!(
        "  base backup {}, {} WAL files replayed",
        report.base_backup.as_deref().unwrap_or("none"),
        report.wal_files
    );
    println!(
        "  measured RPO {} (newest heartbeat restored)",
        seconds(report.rpo_ms)
    );
    println!(
        "  measured RTO {} (restore, recovery and promotion)",
        seconds(report.rto_ms)
    );
    for (table, count) in &report.row_counts {
        println!("  {table}: {count} rows");
    }
    if let Some(check) = &report.check {
        println!(
            "  check {:?} returned {} ({})",
            check.sql,
            check.value.as_deref().unwrap_or("no row"),
            if check.passed { "passed" } else { "failed" }
        );
    }
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
}

/// What `cloudkeep backups verify` prints for one database.
#[derive(Debug, Serialize)]
pub struct VerifyOutput {
    pub platform: String,
    pub database: String,
    pub repository: String,
    pub base_backups: usize,
    pub wal_files: usize,
    pub stream_tails: usize,
    pub objects: usize,
    pub stored_bytes: u64,
    pub problems: Vec<VerifyProblemOutput>,
    /// Objects no manifest or receipt names: uploads cut short (or under way). They never
    /// count as backups; they only take space.
    pub orphans: Vec<OrphanOutput>,
}

/// An object no backup names.
#[derive(Debug, Serialize)]
pub struct OrphanOutput {
    pub object: String,
    pub stored_bytes: u64,
    pub written_at_ms: i64,
}

/// One problem found.
#[derive(Debug, Serialize)]
pub struct VerifyProblemOutput {
    pub what: String,
    pub object: String,
    pub message: String,
}

/// Reads back every object of a platform's backups (no key needed) and fails when any is bad.
pub async fn verify(
    platform: &str,
    database: Option<&str>,
    repository_file: Option<&Path>,
    parallel: usize,
    remote: &crate::cli::Remote,
) -> anyhow::Result<()> {
    let repository = repository_for(platform, repository_file, remote).await?;
    let database = database_for(&repository, platform, database).await?;
    let layout = DatabaseLayout::new(platform, &database)?;
    let report =
        cloudkeep_backup::pg::verify_database(&repository, &layout, parallel.max(1)).await?;
    let output = VerifyOutput {
        platform: platform.to_owned(),
        database,
        repository: repository.root().to_owned(),
        base_backups: report.base_backups,
        wal_files: report.wal_files,
        stream_tails: report.stream_tails,
        objects: report.objects,
        stored_bytes: report.stored_bytes,
        problems: report
            .problems
            .iter()
            .map(|problem| VerifyProblemOutput {
                what: problem.what.clone(),
                object: problem.object.clone(),
                message: problem.message.clone(),
            })
            .collect(),
        orphans: report
            .orphans
            .iter()
            .map(|orphan| OrphanOutput {
                object: orphan.key.to_string(),
                stored_bytes: orphan.stored_len,
                written_at_ms: orphan.last_modified_ms,
            })
            .collect(),
    };
    match remote.output {
        OutputFormat::Json => print(OutputFormat::Json, &output, &[], Vec::new())?,
        OutputFormat::Table => {
            println!(
                "{}/{} in {}: {} base backups, {} WAL files, {} streamed WAL tails, {} objects ({} stored bytes) read back",
                output.platform,
                output.database,
                output.repository,
                output.base_backups,
                output.wal_files,
                output.stream_tails,
                output.objects,
                output.stored_bytes
            );
            for problem in &output.problems {
                println!(
                    "  PROBLEM {}: {}: {}",
                    problem.what, problem.object, problem.message
                );
            }
            if output.problems.is_empty() {
                println!("  all objects intact, every backup's WAL present");
            }
            if !output.orphans.is_empty() {
                println!(
                    "  {} object(s), {} stored bytes, named by no backup (uploads cut short or under way; never counted):",
                    output.orphans.len(),
                    output
                        .orphans
                        .iter()
                        .map(|orphan| orphan.stored_bytes)
                        .sum::<u64>()
                );
                for orphan in &output.orphans {
                    println!("    {}", orphan.object);
                }
            }
        }
    }
    if !output.problems.is_empty() {
        bail!(
            "{} problem(s) found in the backups of {platform}/{}",
            output.problems.len(),
            output.database
        );
    }
    Ok(())
}
