//! `bench backup`: PostgreSQL 15 backups, Cloudkeep against pgBackRest 2.45 on the same cluster in
//! the same run.
//!
//! One cluster (`pgbench -i -s SCALE` plus a table of random base64 text) is backed up by both
//! tools into local repositories on the same disk, each with zstd at its default level (Cloudkeep
//! 1, pgBackRest 3) and pgBackRest also at Cloudkeep's level:
//!
//! - full backups with 1 and 2 processes (Cloudkeep: `backups take --parallel N`, encrypted to an
//!   age key; pgBackRest: `backup --type=full --process-max=N`, unencrypted): wall time, throughput
//!   (data directory bytes / wall time), CPU time, the backup's size in the repository, peak RSS
//!   of the tool's process tree;
//! - restores of the newest backup to the end of the archive and to a time between two marker
//!   rows, each timed to a promoted server that answers queries, and checked (both markers, then
//!   only the first);
//! - WAL: the lag after a `pgbench` burst with archiving live, the rate at which a backlog of
//!   segments is drained, and the RPO (a committed row's WAL segment → that segment in the
//!   repository) sampled every second under steady `pgbench -R` load.
//!
//! Cloudkeep's WAL goes through its real path: the agent (enrolled with a `cloudkeep server`) sets
//! `archive_command = cloudkeep wal-push …` and uploads ahead from `archive_status`. pgBackRest
//! archives with `archive-push` in async mode with 2 processes, its fast setting.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloudkeep_testkit::postgres::{TestPostgres, is_root};
use serde_json::json;

use super::{CommonArgs, TempRoot};
use crate::child::Proc;
use crate::cloudkeep;
use crate::procfs::{self, MIB};
use crate::table;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PLATFORM: &str = "bench";
const DATABASE: &str = "db";
const STANZA: &str = "bench";
/// Processes left out of a tool's memory: `runuser`, which only waits for it, and the PostgreSQL
/// server a restore starts (which is not the tool).
const NOT_THE_TOOL: &[&str] = &["runuser", "sh", "pg_ctl", "postgres"];
const SEGMENT_BYTES: f64 = 16.0 * MIB;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// pgbench scale factor of the backed-up database.
    #[arg(long, default_value_t = 100)]
    pub scale: u32,
    /// MiB of random base64 text added to the database.
    #[arg(long, default_value_t = 1024)]
    pub noise_mib: u64,
    /// Process counts of the full backups (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    pub processes: Vec<u32>,
    /// Cloudkeep's zstd level (its default).
    #[arg(long, default_value_t = 1)]
    pub level: i32,
    /// pgBackRest's zstd levels for the full backups (comma-separated): the first (its default,
    /// 3) is also the one its archiving uses; the others add rows at those levels.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 1])]
    pub pgbackrest_levels: Vec<i32>,
    /// Seconds of each unthrottled pgbench burst.
    #[arg(long, default_value_t = 60)]
    pub burst_s: u64,
    /// Seconds of steady load over which the RPO is sampled.
    #[arg(long, default_value_t = 120)]
    pub rpo_s: u64,
    /// Transactions per second of the steady load.
    #[arg(long, default_value_t = 50)]
    pub rpo_tps: u32,
    /// PostgreSQL's archive_timeout for both tools (Cloudkeep's default).
    #[arg(long, default_value_t = 30)]
    pub archive_timeout_s: u64,
    /// Scale 10, 100 MiB of text, 15 s bursts, 70 s of RPO: a quick check of the harness.
    #[arg(long)]
    pub quick: bool,
    #[arg(long, default_value = "/usr/bin/pgbackrest")]
    pub pgbackrest_bin: PathBuf,
}

impl Args {
    fn effective(&self) -> (u32, u64, u64, u64) {
        if self.quick {
            (10, 100, 15, 70)
        } else {
            (self.scale, self.noise_mib, self.burst_s, self.rpo_s)
        }
    }
}

/// A command run to its end with its wall time and the peak RSS of its process tree.
#[derive(Debug, Clone, Copy)]
struct Measured {
    wall: Duration,
    peak_rss: u64,
    /// CPU time (user + system) of the tool's process tree.
    cpu: Duration,
}

/// Runs `cmd` (stdout to `out`, stderr to `err`) within `timeout`, sampling the summed RSS of its
/// process tree every 20 ms.
fn measure(cmd: &mut Command, timeout: Duration, out: &Path) -> Result<(Measured, String)> {
    let err = out.with_extension("stderr");
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out)?)
        .stderr(std::fs::File::create(&err)?)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let mut peak = 0;
    // Each process's CPU ticks as last seen (a process's last 20 ms before it exits are missed).
    let mut ticks: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let pids = procfs::tree_pids(child.id(), NOT_THE_TOOL);
        peak = peak.max(
            pids.iter()
                .filter_map(|pid| procfs::memory(*pid).ok())
                .map(|memory| memory.rss)
                .sum(),
        );
        for pid in pids {
            if let Ok(now) = procfs::cpu_ticks(pid) {
                let seen = ticks.entry(pid).or_default();
                *seen = (*seen).max(now);
            }
        }
        if start.elapsed() > timeout {
            child.kill().ok();
            child.wait().ok();
            bail!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let stdout = std::fs::read_to_string(out).unwrap_or_default();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        bail!("{what} failed ({status}):\n{stderr}{stdout}");
    }
    Ok((
        Measured {
            wall,
            peak_rss: peak,
            cpu: Duration::from_secs_f64(
                ticks.values().sum::<u64>() as f64 / procfs::clock_ticks(),
            ),
        },
        stdout,
    ))
}

/// `program` run as the `postgres` user.
fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

/// Runs a short command and returns its stdout; fails with its stderr.
fn run_cmd(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs each of `statements` in its own transaction on the server at `port`; returns the output.
fn psql(port: u16, statements: &[&str]) -> Result<String> {
    let mut cmd = Command::new(Path::new(PG_BIN).join("psql"));
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
    ])
    .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"]);
    for statement in statements {
        cmd.args(["-c", statement]);
    }
    run_cmd(&mut cmd)
}

fn chown_postgres(path: &Path) -> Result<()> {
    run_cmd(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path),
    )
    .map(drop)
}

fn mkdir_postgres(path: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    chown_postgres(path)?;
    Ok(path.to_path_buf())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// The bytes of a data directory that a backup reads (everything but `pg_wal`).
fn data_bytes(pgdata: &Path) -> Result<u64> {
    let all = procfs::disk_usage(pgdata)?.apparent;
    let wal = procfs::disk_usage(&pgdata.join("pg_wal"))?.apparent;
    Ok(all.saturating_sub(wal))
}

/// A WAL segment name (24 hex digits, timeline 1) from a file name, if it is one.
fn segment_of(file_name: &str) -> Option<&str> {
    let name = file_name.get(..24)?;
    name.bytes().all(|b| b.is_ascii_hexdigit()).then_some(name)
}

/// The ordinal of segment `name` on its timeline (log × 256 + seg for 16 MiB segments).
fn segment_number(name: &str) -> Option<u64> {
    let log = u64::from_str_radix(name.get(8..16)?, 16).ok()?;
    let seg = u64::from_str_radix(name.get(16..24)?, 16).ok()?;
    Some(log * 256 + seg)
}

/// One of the two tools, as far as the WAL measurements need it.
trait Archiver {
    fn name(&self) -> &'static str;
    /// The newest WAL segment in the repository.
    fn newest_archived(&self) -> Result<Option<String>>;
    /// How far the repository holds the WAL: a segment and the bytes of it (a whole segment for
    /// an archived one; fewer for a streamed tail).
    fn newest_position(&self) -> Result<Option<(String, u64)>> {
        Ok(self.newest_archived()?.map(|name| (name, u64::MAX)))
    }
    /// Stops archiving (the backlog then accumulates in `archive_status`).
    fn pause(&mut self, pg: &Pg) -> Result<()>;
    /// Starts archiving again.
    fn resume(&mut self, pg: &Pg) -> Result<()>;
}

/// The benchmarked cluster.
struct Pg {
    server: TestPostgres,
}

impl Pg {
    fn port(&self) -> u16 {
        self.server.port()
    }

    fn sql(&self, statements: &[&str]) -> Result<String> {
        psql(self.port(), statements)
    }

    fn pgdata(&self) -> PathBuf {
        self.server.data_dir()
    }

    /// The segment holding everything written so far, after switching to a new one.
    fn switch(&self) -> Result<String> {
        let name = self.sql(&["SELECT pg_walfile_name(pg_current_wal_lsn())"])?;
        self.sql(&["SELECT pg_switch_wal()"])?;
        Ok(name)
    }

    fn ready_files(&self) -> usize {
        std::fs::read_dir(self.pgdata().join("pg_wal/archive_status"))
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".ready"))
                    .count()
            })
            .unwrap_or(0)
    }

    fn pgbench(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(Path::new(PG_BIN).join("pgbench"));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(extra)
        .arg("postgres");
        cmd
    }
}

/// Waits until the repository has segment `name` (or a later one); returns when it was seen.
fn wait_archived(tool: &dyn Archiver, name: &str, timeout: Duration) -> Result<Instant> {
    let start = Instant::now();
    loop {
        if tool
            .newest_archived()?
            .is_some_and(|newest| newest.as_str() >= name)
        {
            return Ok(Instant::now());
        }
        if start.elapsed() > timeout {
            bail!(
                "{}: segment {name} not in the repository after {timeout:?}",
                tool.name()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- pgBackRest

struct PgBackRest {
    bin: PathBuf,
    config: PathBuf,
    repo: PathBuf,
    archive_command: String,
}

impl PgBackRest {
    fn setup(bin: &Path, root: &Path, pg: &Pg, level: i32) -> Result<PgBackRest> {
        let dir = mkdir_postgres(&root.join("pgbackrest"))?;
        let repo = mkdir_postgres(&dir.join("repo"))?;
        for sub in ["log", "lock", "spool"] {
            mkdir_postgres(&dir.join(sub))?;
        }
        let config = dir.join("pgbackrest.conf");
        std::fs::write(
            &config,
            format!(
                "[global]\nrepo1-path={repo}\nrepo1-retention-full=100\nlog-path={d}/log\nlock-path={d}/lock\n\
                 spool-path={d}/spool\nlog-level-console=warn\nlog-level-file=off\ncompress-type=zst\n\
                 compress-level={level}\nstart-fast=y\narchive-async=y\n\n\
                 [global:archive-push]\nprocess-max=2\n\n\
                 [{STANZA}]\npg1-path={pgdata}\npg1-port={port}\npg1-socket-path={socket}\npg1-user=postgres\n",
                repo = repo.display(),
                d = dir.display(),
                pgdata = pg.pgdata().display(),
                port = pg.port(),
                socket = pg.server.socket_dir().display(),
            ),
        )?;
        chown_postgres(&dir)?;
        let tool = PgBackRest {
            bin: bin.to_path_buf(),
            archive_command: format!(
                "{} --config={} --stanza={STANZA} archive-push %p",
                bin.display(),
                config.display()
            ),
            config,
            repo,
        };
        run_cmd(&mut tool.command(&["stanza-create"]))?;
        Ok(tool)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = as_postgres(&self.bin);
        cmd.arg(format!("--config={}", self.config.display()))
            .arg(format!("--stanza={STANZA}"))
            .args(args);
        cmd
    }

    fn set_archive_command(&self, pg: &Pg, command: &str) -> Result<()> {
        pg.sql(&[
            &format!(
                "ALTER SYSTEM SET archive_command = '{}'",
                command.replace('\'', "''")
            ),
            "SELECT pg_reload_conf()",
        ])
        .map(drop)
    }

    /// The newest full backup's directory.
    fn newest_backup_dir(&self) -> Result<PathBuf> {
        let dir = self.repo.join("backup").join(STANZA);
        let mut labels: Vec<String> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with('F'))
            .collect();
        labels.sort();
        let label = labels.pop().context("pgBackRest wrote no backup")?;
        Ok(dir.join(label))
    }
}

impl Archiver for PgBackRest {
    fn name(&self) -> &'static str {
        "pgBackRest 2.45"
    }

    fn newest_archived(&self) -> Result<Option<String>> {
        let root = self.repo.join("archive").join(STANZA);
        let mut newest: Option<String> = None;
        let Ok(versions) = std::fs::read_dir(&root) else {
            return Ok(None);
        };
        for version in versions.flatten().filter(|e| e.path().is_dir()) {
            for log in std::fs::read_dir(version.path())?
                .flatten()
                .filter(|e| e.path().is_dir())
            {
                for file in std::fs::read_dir(log.path())?.flatten() {
                    let file_name = file.file_name().to_string_lossy().into_owned();
                    if file_name.ends_with(".backup") {
                        continue;
                    }
                    if let Some(name) = segment_of(&file_name)
                        && newest.as_deref().is_none_or(|n| name > n)
                    {
                        newest = Some(name.to_owned());
                    }
                }
            }
        }
        Ok(newest)
    }

    fn pause(&mut self, pg: &Pg) -> Result<()> {
        self.set_archive_command(pg, "false")
    }

    fn resume(&mut self, pg: &Pg) -> Result<()> {
        let command = self.archive_command.clone();
        self.set_archive_command(pg, &command)
    }
}

// ---------------------------------------------------------------- Cloudkeep

struct Cloudkeep {
    bin: PathBuf,
    root: PathBuf,
    repo: PathBuf,
    server: cloudkeep::Server,
    agent: Option<Proc>,
    agent_token: String,
    key: PathBuf,
    agents_started: u32,
    streaming: bool,
}

/// The bench platform: one database component backed up into the bench repository.
fn bench_spec(pg: &Pg, archive_timeout_s: u64, streaming: bool) -> serde_json::Value {
    json!({
        "version": 1,
        "platform": PLATFORM,
        "isv": PLATFORM,
        "tenant": "bench",
        "cloud": "local",
        "hosts": [{
            "name": cloudkeep::hostname(),
            "components": [{
                "name": DATABASE,
                "kind": "database",
                "backup": {
                    "pgdata": pg.pgdata().display().to_string(),
                    "connection": pg.server.url(),
                    "archive_timeout": format!("{archive_timeout_s}s"),
                    "full_every": "7d",
                    "keep_full": 100,
                    "streaming": streaming,
                }
            }]
        }]
    })
}

impl Cloudkeep {
    /// Applies the spec with streaming on or off; the agent picks it up at its next poll.
    fn set_streaming(&mut self, pg: &Pg, archive_timeout_s: u64, on: bool) -> Result<()> {
        let path = self.root.join("bench-spec.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&bench_spec(pg, archive_timeout_s, on))?,
        )?;
        run_cmd(&mut self.cli(&["spec", "apply", &path.to_string_lossy()]))?;
        self.streaming = on;
        Ok(())
    }

    /// The longest streamed tail in the repository: its segment and valid bytes.
    fn newest_tail(&self) -> Option<(String, u64)> {
        std::fs::read_dir(self.manifests("stream"))
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".manifest.json")?;
                let (segment, bytes) = stem.rsplit_once('.')?;
                Some((
                    segment_of(segment)?.to_owned(),
                    u64::from_str_radix(bytes, 16).ok()?,
                ))
            })
            .max()
    }

    fn setup(bin: &Path, root: &Path, pg: &Pg, archive_timeout_s: u64) -> Result<Cloudkeep> {
        let dir = root.join("cloudkeep");
        let repo = dir.join("repo");
        std::fs::create_dir_all(&repo)?;
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\n[backup.isv.{PLATFORM}.repository]\nkind = \"local\"\npath = \"{}\"\n",
                repo.display()
            ),
        )?;
        let server =
            cloudkeep::start_server_with(bin, &dir, &["--config", &config.to_string_lossy()])?;
        // Readable by postgres, which runs the restored servers.
        let key = dir.join("bench.key");
        run_cmd(&mut cloudkeep::cli(
            bin,
            &server,
            &[
                "keys",
                "create",
                "--isv",
                PLATFORM,
                "--out",
                &key.to_string_lossy(),
            ],
        ))?;
        let spec = bench_spec(pg, archive_timeout_s, false);
        let agent_token = cloudkeep::spec_token(bin, &server, &dir, &spec)?;
        let mut tool = Cloudkeep {
            bin: bin.to_path_buf(),
            root: dir,
            repo,
            server,
            agent: None,
            agent_token,
            key,
            agents_started: 0,
            streaming: false,
        };
        tool.start_agent()?;
        Ok(tool)
    }

    fn start_agent(&mut self) -> Result<()> {
        let state = self.root.join("agent-state");
        std::fs::create_dir_all(&state)?;
        set_mode(&state, 0o755)?;
        self.agents_started += 1;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("agent")
            .arg("--server")
            .arg(&self.server.url)
            .arg("--token")
            .arg(&self.agent_token)
            .arg("--state-dir")
            .arg(&state)
            .arg("--interval")
            .arg("10s")
            .env("CLOUDKEEP_LOG", "info");
        let log = self.root.join(format!("agent-{}.log", self.agents_started));
        self.agent = Some(Proc::spawn("cloudkeep agent", &mut cmd, &log)?);
        Ok(())
    }

    fn stop_agent(&mut self) -> Result<()> {
        if let Some(mut agent) = self.agent.take() {
            agent.terminate(Duration::from_secs(30))?;
        }
        Ok(())
    }

    fn cli(&self, args: &[&str]) -> Command {
        cloudkeep::cli(&self.bin, &self.server, args)
    }

    fn manifests(&self, folder: &str) -> PathBuf {
        self.repo
            .join("manifests")
            .join(PLATFORM)
            .join(DATABASE)
            .join(folder)
    }

    /// Waits for the agent's own first full backup (taken when it finds none).
    fn wait_for_first_full(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let done = std::fs::read_dir(self.manifests("base"))
                .map(|dir| dir.flatten().count() > 0)
                .unwrap_or(false);
            if done {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!("the agent took no full backup within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Archiver for Cloudkeep {
    fn name(&self) -> &'static str {
        "Cloudkeep"
    }

    fn newest_archived(&self) -> Result<Option<String>> {
        let Ok(dir) = std::fs::read_dir(self.manifests("wal")) else {
            return Ok(None);
        };
        Ok(dir
            .flatten()
            .filter_map(|e| {
                let file_name = e.file_name().to_string_lossy().into_owned();
                segment_of(&file_name)
                    .filter(|_| file_name.ends_with(".manifest.json"))
                    .map(str::to_owned)
            })
            .max())
    }

    fn newest_position(&self) -> Result<Option<(String, u64)>> {
        let archived = self.newest_archived()?.map(|name| (name, u64::MAX));
        let tail = self.streaming.then(|| self.newest_tail()).flatten();
        Ok(archived.max(tail))
    }

    fn pause(&mut self, _pg: &Pg) -> Result<()> {
        self.stop_agent()
    }

    fn resume(&mut self, pg: &Pg) -> Result<()> {
        self.start_agent()?;
        // The archiver sleeps up to a minute after failed attempts; both tools get this nudge.
        pg.sql(&["SELECT pg_reload_conf()"]).map(drop)
    }
}

// ---------------------------------------------------------------- measurements

#[derive(Debug, Clone, serde::Serialize)]
struct BackupRow {
    tool: &'static str,
    /// zstd level.
    level: i32,
    processes: u32,
    wall_s: f64,
    mib_per_s: f64,
    /// CPU seconds of the tool's processes (user + system).
    cpu_s: f64,
    repo_bytes: u64,
    peak_rss_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
struct RestoreRow {
    tool: &'static str,
    kind: &'static str,
    wall_s: f64,
    peak_rss_bytes: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
struct WalRow {
    tool: &'static str,
    burst_segments: u64,
    burst_lag_s: f64,
    backlog_segments: usize,
    drain_s: f64,
    drain_segments_per_s: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
struct RpoRow {
    tool: &'static str,
    mode: &'static str,
    samples: usize,
    mean_s: f64,
    p95_s: f64,
    max_s: f64,
}

/// The two marker rows and the time between them.
struct Markers {
    /// `recovery_target_time` for pgBackRest (`2026-11-22 10:15:00.123456+00`).
    between_pg: String,
    /// The same as RFC 3339 for Cloudkeep.
    between_rfc3339: String,
    /// The segment holding the second marker.
    last_segment: String,
}

fn add_markers(pg: &Pg, tag: &str) -> Result<Markers> {
    pg.sql(&[
        "CREATE TABLE IF NOT EXISTS bench_marker (tool text, name text, at timestamptz DEFAULT now())",
        &format!("INSERT INTO bench_marker (tool, name) VALUES ('{tag}', 'before')"),
    ])?;
    std::thread::sleep(Duration::from_millis(1500));
    let between = pg.sql(&[
        "SELECT now()::text || '|' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    ])?;
    std::thread::sleep(Duration::from_millis(1500));
    pg.sql(&[&format!(
        "INSERT INTO bench_marker (tool, name) VALUES ('{tag}', 'after')"
    )])?;
    let (between_pg, between_rfc3339) = between
        .split_once('|')
        .context("unexpected output from now()")?;
    let last_segment = pg.switch()?;
    Ok(Markers {
        between_pg: between_pg.to_owned(),
        between_rfc3339: between_rfc3339.to_owned(),
        last_segment,
    })
}

/// Checks the markers in a restored server: `after` present or not.
fn check_markers(port: u16, tag: &str, after_expected: bool) -> Result<()> {
    let names = psql(
        port,
        &[&format!(
            "SELECT string_agg(name, ',' ORDER BY name) FROM bench_marker WHERE tool = '{tag}'"
        )],
    )?;
    let expected = if after_expected {
        "after,before"
    } else {
        "before"
    };
    if names != expected {
        bail!("the restored server has markers {names:?}, expected {expected:?}");
    }
    Ok(())
}

/// Polls until the server on `port` answers and is out of recovery.
fn wait_promoted(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if psql(port, &["SELECT pg_is_in_recovery()"]).is_ok_and(|out| out == "f") {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("the restored server on port {port} was not promoted within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_restored(dir: &Path) -> Result<()> {
    run_cmd(
        as_postgres(Path::new(PG_BIN).join("pg_ctl"))
            .args(["-D"])
            .arg(dir)
            .args(["-m", "fast", "-w", "stop"]),
    )
    .map(drop)
}

fn free_port() -> Result<u16> {
    Ok(crate::child::free_tcp_addr()?.port())
}

const LONG: Duration = Duration::from_secs(3600);

fn pgbackrest_restore(
    tool: &PgBackRest,
    root: &Path,
    markers: &Markers,
    pitr: bool,
) -> Result<Measured> {
    let dir = mkdir_postgres(&root.join(if pitr { "pgbr-pitr" } else { "pgbr-latest" }))?;
    set_mode(&dir, 0o700)?;
    let socket = pg_socket_dir(root)?;
    let port = free_port()?;
    let mut args = vec![
        format!("--pg1-path={}", dir.display()),
        "--process-max=2".to_owned(),
    ];
    if pitr {
        args.extend([
            "--type=time".to_owned(),
            format!("--target={}", markers.between_pg),
            "--target-action=promote".to_owned(),
        ]);
    }
    args.push("restore".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let (files, _) = measure(
        &mut tool.command(&args),
        LONG,
        &root.join("pgbr-restore.out"),
    )?;
    run_cmd(
        as_postgres(Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(&dir)
            .arg("-l")
            .arg(mkdir_postgres(&root.join("pglogs"))?.join(format!("pgbr-restored-{pitr}.log")))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c archive_mode=off",
                socket.display()
            ))
            .args(["-w", "-t", "3600", "start"]),
    )?;
    wait_promoted(port, LONG)?;
    let wall = start.elapsed();
    check_markers(port, "pgbackrest", !pitr)?;
    stop_restored(&dir)?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(Measured {
        wall,
        peak_rss: files.peak_rss,
        cpu: files.cpu,
    })
}

fn cloudkeep_restore(
    tool: &Cloudkeep,
    root: &Path,
    markers: &Markers,
    pitr: bool,
) -> Result<Measured> {
    let dir = root.join(if pitr { "ck-pitr" } else { "ck-latest" });
    let socket = pg_socket_dir(root)?;
    let port = free_port()?.to_string();
    let key = tool.key.to_string_lossy().into_owned();
    let to = dir.to_string_lossy().into_owned();
    let socket_text = socket.to_string_lossy().into_owned();
    let mut args = vec![
        "restore",
        "--platform",
        PLATFORM,
        "--database",
        DATABASE,
        "--key",
        &key,
        "--to",
        &to,
        "--port",
        &port,
        "--socket-dir",
        &socket_text,
    ];
    if pitr {
        args.extend(["--target-time", &markers.between_rfc3339]);
    } else {
        args.push("--latest");
    }
    let (measured, _) = measure(&mut tool.cli(&args), LONG, &root.join("ck-restore.out"))?;
    let port: u16 = port.parse()?;
    wait_promoted(port, Duration::from_secs(10))?;
    check_markers(port, "cloudkeep", !pitr)?;
    stop_restored(&dir)?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(measured)
}

/// A directory the restored servers' sockets go in (postgres-owned, short path).
fn pg_socket_dir(root: &Path) -> Result<PathBuf> {
    mkdir_postgres(&root.join("sock"))
}

/// Segments written between two `pg_walfile_name`s.
fn segments_between(first: &str, last: &str) -> u64 {
    match (segment_number(first), segment_number(last)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    }
}

fn wal_bench(tool: &mut dyn Archiver, pg: &Pg, burst_s: u64) -> Result<WalRow> {
    let mut row = WalRow {
        tool: tool.name(),
        ..WalRow::default()
    };
    let burst = |label: &str| -> Result<()> {
        run_cmd(&mut pg.pgbench(&["-n", "-c", "4", "-j", "2", "-T", &burst_s.to_string()]))
            .with_context(|| format!("pgbench burst ({label})"))
            .map(drop)
    };

    // A burst with archiving live, then how long the repository takes to catch up.
    let first = pg.switch()?;
    wait_archived(tool, &first, Duration::from_secs(120))?;
    eprintln!(
        "  {}: {burst_s} s pgbench burst, archiving live",
        tool.name()
    );
    burst("live")?;
    let end = Instant::now();
    let last = pg.switch()?;
    row.burst_segments = segments_between(&first, &last);
    let seen = wait_archived(tool, &last, Duration::from_secs(1800))?;
    row.burst_lag_s = seen.duration_since(end).as_secs_f64();

    // A backlog: archiving stopped during a burst, then drained.
    tool.pause(pg)?;
    eprintln!(
        "  {}: {burst_s} s pgbench burst, archiving stopped",
        tool.name()
    );
    burst("backlog")?;
    let last = pg.switch()?;
    std::thread::sleep(Duration::from_secs(1));
    row.backlog_segments = pg.ready_files();
    let start = Instant::now();
    tool.resume(pg)?;
    let seen = wait_archived(tool, &last, Duration::from_secs(1800))?;
    row.drain_s = seen.duration_since(start).as_secs_f64();
    row.drain_segments_per_s = row.backlog_segments as f64 / row.drain_s;

    Ok(row)
}

/// RPO under steady load: each second a row is committed and the WAL position after it noted;
/// its RPO is the time until the repository holds the WAL up to there.
fn rpo_bench(
    tool: &dyn Archiver,
    mode: &'static str,
    pg: &Pg,
    rpo_s: u64,
    rpo_tps: u32,
    archive_timeout_s: u64,
    scratch: &Path,
) -> Result<RpoRow> {
    eprintln!(
        "  {} ({mode}): {rpo_s} s at {rpo_tps} tps, RPO probed every second",
        tool.name()
    );
    pg.sql(&["CREATE TABLE IF NOT EXISTS rpo_probe (at timestamptz DEFAULT now())"])?;
    let mut load: Child = pg
        .pgbench(&[
            "-n",
            "-c",
            "2",
            "-j",
            "1",
            "-R",
            &rpo_tps.to_string(),
            "-T",
            &rpo_s.to_string(),
        ])
        .stdout(std::fs::File::create(scratch.join("pgbench-rpo.out"))?)
        .stderr(Stdio::null())
        .spawn()
        .context("starting pgbench")?;
    let started = Instant::now();
    let mut probes: Vec<(Instant, String, u64)> = Vec::new();
    let mut resolved: Vec<f64> = Vec::new();
    let deadline = Duration::from_secs(rpo_s + archive_timeout_s * 2 + 60);
    let mut next_probe = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_probe && started.elapsed() < Duration::from_secs(rpo_s) {
            let position = pg.sql(&[
                "INSERT INTO rpo_probe DEFAULT VALUES",
                "SELECT pg_walfile_name(pg_current_wal_lsn()) || ' ' || \
                 ((pg_current_wal_lsn() - '0/0'::pg_lsn) % 16777216)::bigint",
            ])?;
            let (segment, offset) = position
                .split_once(' ')
                .context("unexpected WAL position")?;
            // At a segment boundary the record ends exactly at the end of the named segment.
            let offset = match offset.parse::<u64>()? {
                0 => SEGMENT_BYTES as u64,
                offset => offset,
            };
            probes.push((now, segment.to_owned(), offset));
            next_probe = now + Duration::from_secs(1);
        }
        if let Some((newest, bytes)) = tool.newest_position()? {
            let seen = Instant::now();
            probes.retain(|(at, segment, offset)| {
                let done = segment.as_str() < newest.as_str()
                    || (segment.as_str() == newest.as_str() && *offset <= bytes);
                if done {
                    resolved.push(seen.duration_since(*at).as_secs_f64());
                }
                !done
            });
        }
        if started.elapsed() >= Duration::from_secs(rpo_s) && probes.is_empty() {
            break;
        }
        if started.elapsed() > deadline {
            load.kill().ok();
            bail!(
                "{}: {} committed rows' WAL not in the repository after {deadline:?}",
                tool.name(),
                probes.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    load.wait().ok();
    resolved.sort_by(f64::total_cmp);
    Ok(RpoRow {
        tool: tool.name(),
        mode,
        samples: resolved.len(),
        mean_s: resolved.iter().sum::<f64>() / resolved.len().max(1) as f64,
        p95_s: resolved
            .get((resolved.len() * 95 / 100).min(resolved.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN),
        max_s: resolved.last().copied().unwrap_or(f64::NAN),
    })
}

// ---------------------------------------------------------------- the run

fn load_data(pg: &Pg, scale: u32, noise_mib: u64) -> Result<()> {
    eprintln!("loading: pgbench -i -s {scale}, then {noise_mib} MiB of random base64 text");
    run_cmd(&mut pg.pgbench(&["-i", "-q", "-s", &scale.to_string()]))?;
    pg.sql(&[
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "CREATE TABLE noise (id bigint, body text)",
    ])?;
    // 768 random bytes are 1024 base64 characters (plus 13 newlines) per row.
    let rows = noise_mib * 1024 * 1024 / 1040;
    let batch = 100_000;
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        pg.sql(&[&format!(
            "INSERT INTO noise SELECT g, encode(gen_random_bytes(768), 'base64') \
             FROM generate_series({}, {}) g",
            done + 1,
            done + n
        )])?;
        done += n;
    }
    pg.sql(&["VACUUM ANALYZE", "CHECKPOINT"])?;
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let (scale, noise_mib, burst_s, rpo_s) = args.effective();
    if !is_root() {
        bail!("bench backup runs PostgreSQL and pgBackRest as the postgres user: run it as root");
    }
    let version =
        run_cmd(Command::new(&args.pgbackrest_bin).arg("version")).with_context(|| {
            format!(
                "{} (apt-get install pgbackrest)",
                args.pgbackrest_bin.display()
            )
        })?;
    let bin = args.common.cloudkeep_bin()?;
    let tmp: TempRoot = args.common.temp_dir("backup")?;
    let root = tmp.path().to_path_buf();
    set_mode(&root, 0o755)?;
    eprintln!("working in {} ({version})", root.display());

    let server = TestPostgres::start_with(&[
        ("archive_mode", "on"),
        ("max_wal_size", "2GB"),
        ("wal_level", "replica"),
    ])
    .context("PostgreSQL 15 binaries not found")?;
    let pg = Pg { server };
    pg.sql(&[
        "ALTER SYSTEM SET archive_command = 'true'",
        &format!(
            "ALTER SYSTEM SET archive_timeout = '{}s'",
            args.archive_timeout_s
        ),
        "SELECT pg_reload_conf()",
    ])?;
    load_data(&pg, scale, noise_mib)?;
    let data = data_bytes(&pg.pgdata())?;
    eprintln!(
        "data directory: {:.0} MiB (without pg_wal)",
        data as f64 / MIB
    );

    let mut backups = Vec::new();
    let mut restores = Vec::new();

    // pgBackRest: archiving, full backups, restores.
    let pgbr_level = args.pgbackrest_levels.first().copied().unwrap_or(3);
    let mut pgbr = PgBackRest::setup(&args.pgbackrest_bin, &root, &pg, pgbr_level)?;
    let command = pgbr.archive_command.clone();
    pgbr.set_archive_command(&pg, &command)?;
    run_cmd(&mut pgbr.command(&["check"]))?;
    for &level in &args.pgbackrest_levels {
        for &processes in &args.processes {
            eprintln!("pgBackRest: full backup, zstd level {level}, {processes} process(es)");
            let (measured, _) = measure(
                &mut pgbr.command(&[
                    "--type=full",
                    &format!("--process-max={processes}"),
                    &format!("--compress-level={level}"),
                    "backup",
                ]),
                LONG,
                &root.join("pgbr-backup.out"),
            )?;
            let size = procfs::disk_usage(&pgbr.newest_backup_dir()?)?.apparent;
            backups.push(backup_row(
                ("pgBackRest 2.45", level, processes),
                measured,
                data,
                size,
            ));
        }
    }
    let markers = add_markers(&pg, "pgbackrest")?;
    wait_archived(&pgbr, &markers.last_segment, Duration::from_secs(300))?;
    eprintln!("pgBackRest: restore (end of archive), PITR restore");
    for pitr in [false, true] {
        let measured = pgbackrest_restore(&pgbr, &root, &markers, pitr)?;
        restores.push(restore_row("pgBackRest 2.45", pitr, measured));
    }

    // Cloudkeep: the agent takes over archive_command and takes its first full backup.
    eprintln!("Cloudkeep: server, key, spec, agent; waiting for the agent's first full backup");
    let mut ck = Cloudkeep::setup(&bin, &root, &pg, args.archive_timeout_s)?;
    let first_full = ck.wait_for_first_full(LONG)?;
    eprintln!(
        "Cloudkeep: the agent's first full backup was committed after {:.1} s",
        first_full.as_secs_f64()
    );
    for &processes in &args.processes {
        eprintln!("Cloudkeep: full backup, {processes} process(es)");
        let pgdata = pg.pgdata().to_string_lossy().into_owned();
        let url = pg.server.url();
        let (measured, out) = measure(
            &mut ck.cli(&[
                "backups",
                "take",
                "--platform",
                PLATFORM,
                "--database",
                DATABASE,
                "--pgdata",
                &pgdata,
                "--connection",
                &url,
                "--parallel",
                &processes.to_string(),
                "--level",
                &args.level.to_string(),
                "-o",
                "json",
            ]),
            LONG,
            &root.join("ck-backup.out"),
        )?;
        let taken: serde_json::Value =
            serde_json::from_str(&out).context("backups take printed no JSON")?;
        let id = taken["id"].as_str().context("backups take printed no id")?;
        let objects =
            procfs::disk_usage(&ck.repo.join(PLATFORM).join(DATABASE).join("base").join(id))?;
        let manifest = std::fs::metadata(ck.manifests("base").join(format!("{id}.manifest.json")))?;
        backups.push(backup_row(
            ("Cloudkeep", args.level, processes),
            measured,
            data,
            objects.apparent + manifest.len(),
        ));
    }
    let markers = add_markers(&pg, "cloudkeep")?;
    wait_archived(&ck, &markers.last_segment, Duration::from_secs(300))?;
    eprintln!("Cloudkeep: restore (end of archive), PITR restore");
    for pitr in [false, true] {
        let measured = cloudkeep_restore(&ck, &root, &markers, pitr)?;
        restores.push(restore_row("Cloudkeep", pitr, measured));
    }

    // WAL: Cloudkeep while its agent runs, then pgBackRest.
    let mut wal = Vec::new();
    eprintln!("WAL: Cloudkeep");
    wal.push(wal_bench(&mut ck, &pg, burst_s)?);
    let mut rpo = vec![rpo_bench(
        &ck,
        "archive",
        &pg,
        rpo_s,
        args.rpo_tps,
        args.archive_timeout_s,
        &root,
    )?];
    eprintln!("WAL: Cloudkeep, streaming on");
    ck.set_streaming(&pg, args.archive_timeout_s, true)?;
    let start = Instant::now();
    while ck.newest_tail().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            bail!("Cloudkeep streamed no tail within 2 min of turning streaming on");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    rpo.push(rpo_bench(
        &ck,
        "streaming",
        &pg,
        rpo_s,
        args.rpo_tps,
        args.archive_timeout_s,
        &root,
    )?);
    ck.stop_agent()?;
    pgbr.set_archive_command(&pg, &command)?;
    eprintln!("WAL: pgBackRest");
    wal.push(wal_bench(&mut pgbr, &pg, burst_s)?);
    rpo.push(rpo_bench(
        &pgbr,
        "archive",
        &pg,
        rpo_s,
        args.rpo_tps,
        args.archive_timeout_s,
        &root,
    )?);

    report(args, data, &backups, &restores, &wal, &rpo)
}

fn backup_row(
    (tool, level, processes): (&'static str, i32, u32),
    measured: Measured,
    data: u64,
    repo_bytes: u64,
) -> BackupRow {
    let wall_s = measured.wall.as_secs_f64();
    BackupRow {
        tool,
        level,
        processes,
        wall_s,
        mib_per_s: data as f64 / MIB / wall_s,
        cpu_s: measured.cpu.as_secs_f64(),
        repo_bytes,
        peak_rss_bytes: measured.peak_rss,
    }
}

fn restore_row(tool: &'static str, pitr: bool, measured: Measured) -> RestoreRow {
    RestoreRow {
        tool,
        kind: if pitr { "PITR" } else { "end of archive" },
        wall_s: measured.wall.as_secs_f64(),
        peak_rss_bytes: measured.peak_rss,
    }
}

fn report(
    args: &Args,
    data: u64,
    backups: &[BackupRow],
    restores: &[RestoreRow],
    wal: &[WalRow],
    rpo: &[RpoRow],
) -> Result<()> {
    let (scale, noise_mib, burst_s, rpo_s) = args.effective();
    println!(
        "\nfull backups of {:.0} MiB (pgbench scale {scale} + {noise_mib} MiB random text)",
        data as f64 / MIB,
    );
    table::print(
        &[
            "tool",
            "zstd level",
            "processes",
            "wall s",
            "MiB/s",
            "CPU s",
            "repo MiB",
            "peak RSS MiB",
        ],
        &backups
            .iter()
            .map(|b| {
                vec![
                    b.tool.to_owned(),
                    b.level.to_string(),
                    b.processes.to_string(),
                    table::num(b.wall_s, 1),
                    table::num(b.mib_per_s, 1),
                    table::num(b.cpu_s, 1),
                    table::num(b.repo_bytes as f64 / MIB, 1),
                    table::num(b.peak_rss_bytes as f64 / MIB, 1),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let mut ratios = Vec::new();
    for &level in &args.pgbackrest_levels {
        for &processes in &args.processes {
            let find = |tool: &str, level: i32| {
                backups.iter().find(|b| {
                    b.tool.starts_with(tool) && b.processes == processes && b.level == level
                })
            };
            if let (Some(ck), Some(br)) = (find("Cloudkeep", args.level), find("pgBackRest", level))
            {
                ratios.push(vec![
                    level.to_string(),
                    processes.to_string(),
                    table::ratio(ck.mib_per_s, br.mib_per_s),
                    table::ratio(ck.repo_bytes as f64, br.repo_bytes as f64),
                    table::ratio(ck.cpu_s, br.cpu_s),
                    table::ratio(ck.peak_rss_bytes as f64, br.peak_rss_bytes as f64),
                ]);
            }
        }
    }
    println!(
        "\nCloudkeep (zstd level {}, encrypted) vs pgBackRest (throughput: higher is better; size, CPU, RSS: lower is better)",
        args.level
    );
    table::print(
        &[
            "pgBackRest level",
            "processes",
            "throughput",
            "repo size",
            "CPU",
            "peak RSS",
        ],
        &ratios,
    );

    println!("\nrestores of the newest backup, to a promoted server that answers queries");
    table::print(
        &["tool", "target", "wall s", "peak RSS MiB"],
        &restores
            .iter()
            .map(|r| {
                vec![
                    r.tool.to_owned(),
                    r.kind.to_owned(),
                    table::num(r.wall_s, 1),
                    table::num(r.peak_rss_bytes as f64 / MIB, 1),
                ]
            })
            .collect::<Vec<_>>(),
    );
    for kind in ["end of archive", "PITR"] {
        let find = |tool: &str| {
            restores
                .iter()
                .find(|r| r.tool.starts_with(tool) && r.kind == kind)
        };
        if let (Some(ck), Some(br)) = (find("Cloudkeep"), find("pgBackRest")) {
            println!(
                "  {kind}: Cloudkeep takes {} of pgBackRest's time",
                table::ratio(ck.wall_s, br.wall_s)
            );
        }
    }

    println!("\nWAL archiving: {burst_s} s unthrottled pgbench bursts (4 clients)");
    table::print(
        &[
            "tool",
            "burst segments",
            "lag after burst s",
            "backlog segments",
            "drain s",
            "segments/s",
        ],
        &wal.iter()
            .map(|w| {
                vec![
                    w.tool.to_owned(),
                    w.burst_segments.to_string(),
                    table::num(w.burst_lag_s, 2),
                    w.backlog_segments.to_string(),
                    table::num(w.drain_s, 2),
                    table::num(w.drain_segments_per_s, 1),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if let (Some(ck), Some(br)) = (wal.first(), wal.get(1)) {
        println!(
            "  Cloudkeep vs pgBackRest: drain rate {} (higher is better), lag after burst {} (lower is better)",
            table::ratio(ck.drain_segments_per_s, br.drain_segments_per_s),
            table::ratio(ck.burst_lag_s, br.burst_lag_s),
        );
    }
    println!(
        "\nRPO (a commit -> its WAL in the repository), probed every second over {rpo_s} s at {} tps, archive_timeout {} s",
        args.rpo_tps, args.archive_timeout_s
    );
    table::print(
        &["tool", "mode", "samples", "mean s", "p95 s", "max s"],
        &rpo.iter()
            .map(|r| {
                vec![
                    r.tool.to_owned(),
                    r.mode.to_owned(),
                    r.samples.to_string(),
                    table::num(r.mean_s, 2),
                    table::num(r.p95_s, 2),
                    table::num(r.max_s, 2),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let find = |tool: &str, mode: &str| {
        rpo.iter()
            .find(|r| r.tool.starts_with(tool) && r.mode == mode)
    };
    if let (Some(ck), Some(br)) = (find("Cloudkeep", "archive"), find("pgBackRest", "archive")) {
        println!(
            "  archive mode, Cloudkeep vs pgBackRest: RPO max {} (lower is better); bar: max <= 60 s",
            table::ratio(ck.max_s, br.max_s)
        );
    }
    if let (Some(ck), Some(br)) = (
        find("Cloudkeep", "streaming"),
        find("pgBackRest", "archive"),
    ) {
        println!(
            "  Cloudkeep streaming vs pgBackRest archive-push: RPO max {} (pgBackRest 2.45 has no streaming mode); bar: max <= 5 s",
            table::ratio(ck.max_s, br.max_s)
        );
    }

    args.common.write_json(&json!({
        "bench": "backup",
        "quick": args.quick,
        "data_bytes": data,
        "scale": scale,
        "noise_mib": noise_mib,
        "level": args.level,
        "pgbackrest_levels": args.pgbackrest_levels,
        "backups": backups,
        "restores": restores,
        "wal": wal,
        "rpo": rpo,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_recognised() {
        assert_eq!(
            segment_of("000000010000000200000003-3f2a.zst"),
            Some("000000010000000200000003")
        );
        assert_eq!(
            segment_of("000000010000000200000003.manifest.json"),
            Some("000000010000000200000003")
        );
        assert_eq!(segment_of("00000002.history"), None);
        assert_eq!(segment_of("backup.info"), None);
        assert_eq!(
            segment_number("000000010000000200000003"),
            Some(2 * 256 + 3)
        );
        assert_eq!(
            segments_between("0000000100000000000000FE", "000000010000000100000001"),
            3
        );
    }
}
