//! `bench agent`: host-agent overhead of `cloudkeep agent` vs collectd and node_exporter.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{CommonArgs, TempRoot};
use crate::child::{self, Proc};
use crate::cloudkeep;
use crate::http;
use crate::procfs::{self, MIB};
use crate::table;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SCRAPE_EVERY_SAMPLES: u64 = 2; // node_exporter scraped every 10 s
const MIN_DURATION_S: u64 = 120;
const QUICK_DURATION_S: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Cloudkeep,
    Collectd,
    NodeExporter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CollectdOutput {
    /// network plugin sending to a loopback UDP port nobody listens on.
    Network,
    /// csv plugin writing into the temp dir.
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Measured seconds (at least 120).
    #[arg(long, default_value_t = 150)]
    pub duration: u64,
    /// 30 s run, below the minimum: indicative only, and reported as such.
    #[arg(long)]
    pub quick: bool,
    /// Seconds after start-up before the CPU baseline is taken.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Tools to run (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Which>,
    #[arg(long, value_enum, default_value = "network")]
    pub collectd_output: CollectdOutput,
    #[arg(long, default_value = "/usr/sbin/collectd")]
    pub collectd_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus-node-exporter")]
    pub node_exporter_bin: PathBuf,
    #[arg(long, default_value = "/usr/lib/collectd")]
    pub collectd_plugin_dir: PathBuf,
    #[arg(long, default_value = "/usr/share/collectd/types.db")]
    pub collectd_types_db: PathBuf,
}

/// One measured tool: a name, its process, and an optional URL the harness scrapes.
#[derive(Debug)]
struct Contestant {
    name: &'static str,
    proc: Proc,
    scrape: Option<String>,
    note: String,
    // Measurements.
    cpu0: u64,
    rss: Vec<u64>,
    scrapes_ok: u64,
    scrape_errors: u64,
    scraped_bytes: u64,
}

impl Contestant {
    fn new(name: &'static str, proc: Proc, scrape: Option<String>, note: String) -> Self {
        Self {
            name,
            proc,
            scrape,
            note,
            cpu0: 0,
            rss: Vec::new(),
            scrapes_ok: 0,
            scrape_errors: 0,
            scraped_bytes: 0,
        }
    }
}

/// Results for one tool.
#[derive(Debug)]
struct Outcome {
    name: &'static str,
    mean_rss: f64,
    peak_rss: u64,
    cpu_pct: f64,
    note: String,
}

pub fn run(args: &Args) -> Result<()> {
    let duration = if args.quick {
        QUICK_DURATION_S
    } else if args.duration < MIN_DURATION_S {
        bail!(
            "--duration must be at least {MIN_DURATION_S} s (use --quick for a 30 s indicative run)"
        );
    } else {
        args.duration
    };
    let which = if args.only.is_empty() {
        vec![Which::Cloudkeep, Which::Collectd, Which::NodeExporter]
    } else {
        args.only.clone()
    };
    let ck_bin = if which.contains(&Which::Cloudkeep) {
        Some(args.common.cloudkeep_bin()?)
    } else {
        None
    };
    let tmp = args.common.temp_dir("agent")?;
    let mut server = None;
    let mut tools = Vec::new();
    for w in &which {
        tools.push(match w {
            Which::Cloudkeep => {
                let bin = ck_bin.as_deref().context("cloudkeep binary")?;
                let (srv, c) = start_cloudkeep(bin, &tmp)?;
                server = Some(srv);
                c
            }
            Which::Collectd => start_collectd(args, &tmp)?,
            Which::NodeExporter => start_node_exporter(args, &tmp)?,
        });
    }

    println!(
        "measuring {} for {duration} s{} (RSS every {} s, node_exporter scraped every {} s, {} s warm-up)",
        tools.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        if args.quick {
            " [--quick: below the 120 s minimum, indicative only]"
        } else {
            ""
        },
        SAMPLE_EVERY.as_secs(),
        SAMPLE_EVERY.as_secs() * SCRAPE_EVERY_SAMPLES,
        args.warmup,
    );
    std::thread::sleep(Duration::from_secs(args.warmup.min(60)));
    let ticks = procfs::clock_ticks();
    let agent = http::agent(Duration::from_secs(5));
    for t in &mut tools {
        t.proc.ensure_running()?;
        t.cpu0 = procfs::cpu_ticks(t.proc.pid)?;
    }
    let t0 = Instant::now();
    let samples = duration / SAMPLE_EVERY.as_secs();
    for k in 0..=samples {
        if k > 0 {
            let due = t0 + SAMPLE_EVERY * k as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        for t in &mut tools {
            t.proc.ensure_running()?;
            t.rss.push(procfs::memory(t.proc.pid)?.rss);
        }
        // Scrape at the start of each 10 s period, never at the very end.
        if k % SCRAPE_EVERY_SAMPLES == 0 && k < samples {
            for t in &mut tools {
                if let Some(url) = &t.scrape {
                    match scrape(&agent, url) {
                        Ok(n) => {
                            t.scrapes_ok += 1;
                            t.scraped_bytes += n;
                        }
                        Err(e) => {
                            t.scrape_errors += 1;
                            eprintln!("warning: scraping {}: {e:#}", t.name);
                        }
                    }
                }
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let mut outcomes = Vec::new();
    for t in &mut tools {
        let cpu = procfs::cpu_ticks(t.proc.pid)?.saturating_sub(t.cpu0) as f64 / ticks;
        let mem = procfs::memory(t.proc.pid)?;
        let mut note = t.note.clone();
        if t.scrape.is_some() {
            note = format!(
                "{note}; scraped {}× ({} errors), {:.0} KiB/scrape",
                t.scrapes_ok,
                t.scrape_errors,
                t.scraped_bytes as f64 / 1024.0 / t.scrapes_ok.max(1) as f64
            );
        }
        outcomes.push(Outcome {
            name: t.name,
            mean_rss: t.rss.iter().sum::<u64>() as f64 / t.rss.len().max(1) as f64,
            peak_rss: mem.hwm,
            cpu_pct: cpu / wall * 100.0,
            note,
        });
    }
    for t in &mut tools {
        t.proc.terminate(Duration::from_secs(30))?;
    }
    if let Some(mut s) = server {
        s.proc.terminate(Duration::from_secs(60))?;
    }

    report(&outcomes, wall, args.quick);
    println!(
        "CPU resolution: 1 clock tick = {:.3} % of one core over this run",
        100.0 / ticks / wall
    );
    let find = |n: &str| outcomes.iter().find(|o| o.name == n);
    let ratio = |a: Option<&Outcome>, b: Option<&Outcome>| match (a, b) {
        (Some(a), Some(b)) => json!({
            "mean_rss": a.mean_rss / b.mean_rss,
            "peak_rss": a.peak_rss as f64 / b.peak_rss as f64,
            "cpu_pct": if b.cpu_pct > 0.0 { Some(a.cpu_pct / b.cpu_pct) } else { None },
        }),
        _ => serde_json::Value::Null,
    };
    let json = json!({
        "bench": "agent",
        "quick": args.quick,
        "duration_s": wall,
        "warmup_s": args.warmup,
        "clock_ticks_per_s": ticks,
        "results": outcomes.iter().map(|o| json!({
            "tool": o.name,
            "mean_rss_bytes": o.mean_rss,
            "peak_rss_bytes": o.peak_rss,
            "cpu_pct_one_core": o.cpu_pct,
            "note": o.note,
        })).collect::<Vec<_>>(),
        "cloudkeep_vs_collectd": ratio(find("cloudkeep"), find("collectd")),
        "cloudkeep_vs_node_exporter": ratio(find("cloudkeep"), find("node_exporter")),
    });
    args.common.write_json(&json)
}

fn scrape(agent: &ureq::Agent, url: &str) -> Result<u64> {
    let mut resp = agent.get(url).call()?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()?;
    if !status.is_success() {
        bail!("HTTP {status}");
    }
    Ok(body.len() as u64)
}

fn report(outcomes: &[Outcome], wall: f64, quick: bool) {
    println!(
        "\nagent overhead over {wall:.0} s{}:",
        if quick {
            " (QUICK run, below the 120 s minimum: indicative only)"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.name.to_owned(),
                table::num(o.mean_rss / MIB, 1),
                table::num(o.peak_rss as f64 / MIB, 1),
                table::num(o.cpu_pct, 3),
                o.note.clone(),
            ]
        })
        .collect();
    table::print(
        &[
            "tool",
            "mean RSS MiB",
            "peak RSS MiB",
            "CPU % of one core",
            "notes",
        ],
        &rows,
    );
    let ck = outcomes.iter().find(|o| o.name == "cloudkeep");
    for other in ["collectd", "node_exporter"] {
        if let (Some(a), Some(b)) = (ck, outcomes.iter().find(|o| o.name == other)) {
            println!(
                "cloudkeep / {other}: mean RSS {}, peak RSS {}, CPU {}",
                table::ratio(a.mean_rss, b.mean_rss),
                table::ratio(a.peak_rss as f64, b.peak_rss as f64),
                table::ratio(a.cpu_pct, b.cpu_pct),
            );
        }
    }
}

fn start_cloudkeep(bin: &Path, tmp: &TempRoot) -> Result<(cloudkeep::Server, Contestant)> {
    let root = tmp.path().join("cloudkeep");
    std::fs::create_dir_all(&root)?;
    let server = cloudkeep::start_server(bin, &root)?;
    let token = cloudkeep::agent_token(bin, &server, &root)?;
    let state = root.join("agent-state");
    std::fs::create_dir_all(&state)?;
    let mut cmd = Command::new(bin);
    cmd.arg("agent")
        .arg("--server")
        .arg(&server.url)
        .arg("--token")
        .arg(&token)
        .arg("--state-dir")
        .arg(&state)
        .arg("--interval")
        .arg("10s")
        .env("RUST_LOG", "warn")
        .env("CLOUDKEEP_LOG", "warn");
    let mut proc = Proc::spawn("cloudkeep agent", &mut cmd, &root.join("agent.log"))?;
    std::thread::sleep(Duration::from_secs(1));
    proc.ensure_running()?;
    let note = "10 s interval, shipping to a local cloudkeep server".to_owned();
    Ok((server, Contestant::new("cloudkeep", proc, None, note)))
}

fn collectd_config(args: &Args, dir: &Path) -> Result<(String, String)> {
    let mut conf = format!(
        "Hostname \"bench\"\nFQDNLookup false\nBaseDir \"{base}\"\nPIDFile \"{base}/collectd.pid\"\n\
         PluginDir \"{plugins}\"\nTypesDB \"{types}\"\nInterval 10\n\n\
         LoadPlugin logfile\n<Plugin logfile>\n  LogLevel \"warning\"\n  File STDOUT\n  Timestamp true\n</Plugin>\n\n",
        base = dir.display(),
        plugins = args.collectd_plugin_dir.display(),
        types = args.collectd_types_db.display(),
    );
    for p in [
        "cpu",
        "load",
        "memory",
        "swap",
        "df",
        "disk",
        "interface",
        "processes",
        "contextswitch",
        "uptime",
    ] {
        conf.push_str(&format!("LoadPlugin {p}\n"));
    }
    let note = match args.collectd_output {
        CollectdOutput::Network => {
            let addr = child::free_udp_addr()?;
            conf.push_str(&format!(
                "\nLoadPlugin network\n<Plugin network>\n  Server \"{}\" \"{}\"\n</Plugin>\n",
                addr.ip(),
                addr.port()
            ));
            format!("Interval 10, network plugin → unused UDP {addr}")
        }
        CollectdOutput::Csv => {
            let csv = dir.join("csv");
            std::fs::create_dir_all(&csv)?;
            conf.push_str(&format!(
                "\nLoadPlugin csv\n<Plugin csv>\n  DataDir \"{}\"\n  StoreRates false\n</Plugin>\n",
                csv.display()
            ));
            "Interval 10, csv plugin → temp dir".to_owned()
        }
    };
    Ok((conf, note))
}

fn start_collectd(args: &Args, tmp: &TempRoot) -> Result<Contestant> {
    let dir = tmp.path().join("collectd");
    std::fs::create_dir_all(&dir)?;
    let (conf, note) = collectd_config(args, &dir)?;
    let conf_path = dir.join("collectd.conf");
    std::fs::write(&conf_path, conf)?;
    child::run_bounded(
        Command::new(&args.collectd_bin)
            .arg("-t")
            .arg("-C")
            .arg(&conf_path),
        Duration::from_secs(30),
        &dir,
    )
    .context("collectd rejected the generated config")?;
    let mut cmd = Command::new(&args.collectd_bin);
    cmd.arg("-f").arg("-C").arg(&conf_path);
    let mut proc = Proc::spawn("collectd", &mut cmd, &dir.join("collectd.log"))?;
    std::thread::sleep(Duration::from_secs(1));
    proc.ensure_running()?;
    Ok(Contestant::new("collectd", proc, None, note))
}

fn start_node_exporter(args: &Args, tmp: &TempRoot) -> Result<Contestant> {
    let dir = tmp.path().join("node_exporter");
    std::fs::create_dir_all(&dir)?;
    let addr = child::free_tcp_addr()?;
    let mut cmd = Command::new(&args.node_exporter_bin);
    cmd.arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn");
    let mut proc = Proc::spawn("node_exporter", &mut cmd, &dir.join("node_exporter.log"))?;
    let url = format!("http://{addr}/metrics");
    proc.wait_ready(&url, Duration::from_secs(30))?;
    Ok(Contestant::new(
        "node_exporter",
        proc,
        Some(url),
        "default collectors".to_owned(),
    ))
}
