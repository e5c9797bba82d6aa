//! `bench ingest`: remote_write ingestion cost of Cloudkeep vs Prometheus and VictoriaMetrics.

mod receiver;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use self::receiver::{Auth, Layout, QueryApi, Receiver};
use super::CommonArgs;
use crate::child::{self, Proc};
use crate::http;
use crate::payload::{self, Payloads};
use crate::procfs::{self, MIB};
use crate::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Prometheus,
    Victoriametrics,
    Cloudkeep,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Distinct series per round [default: 50000; 5000 with --quick].
    #[arg(long)]
    pub series: Option<usize>,
    /// Rounds (one sample per series each, 15 s apart) [default: 60; 20 with --quick].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Series per request [default: 5000; 1000 with --quick so 2 senders still overlap].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Small run: 5000 series × 20 rounds.
    #[arg(long)]
    pub quick: bool,
    /// Concurrent senders.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Seed for the synthetic values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Receivers to run (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Which>,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    pub victoria_metrics_bin: PathBuf,
    /// Time limit for one receiver's sends; requests not sent by then are counted as skipped.
    #[arg(long, default_value_t = 900)]
    pub send_timeout_secs: u64,
    /// Time limit for one request.
    #[arg(long, default_value_t = 60)]
    pub request_timeout_secs: u64,
}

/// Everything measured for one receiver.
#[derive(Debug, Default)]
struct Outcome {
    name: &'static str,
    samples_sent: u64,
    samples_ok: u64,
    requests_ok: u64,
    http_errors: u64,
    skipped_requests: u64,
    first_error: Option<String>,
    ready_s: f64,
    wall_s: f64,
    cpu_s: f64,
    cpu_incl_flush_s: f64,
    cpu_incl_stop_s: f64,
    peak_rss: u64,
    disk_bytes: u64,
    disk_allocated: u64,
    disk_files: u64,
    stored: Vec<(String, Result<u64, String>)>,
    graceful_stop: bool,
    stop_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

impl Outcome {
    fn samples_per_cpu_s(&self) -> f64 {
        self.samples_ok as f64 / self.cpu_s
    }
    fn bytes_per_sample(&self) -> f64 {
        self.disk_bytes as f64 / self.samples_ok as f64
    }
    fn peak_rss_mib(&self) -> f64 {
        self.peak_rss as f64 / MIB
    }
    fn to_json(&self) -> serde_json::Value {
        json!({
            "receiver": self.name,
            "samples_sent": self.samples_sent,
            "samples_accepted": self.samples_ok,
            "requests_ok": self.requests_ok,
            "http_errors": self.http_errors,
            "skipped_requests": self.skipped_requests,
            "first_error": self.first_error,
            "ready_s": self.ready_s,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_incl_flush_and_query_s": self.cpu_incl_flush_s,
            "cpu_incl_shutdown_s": self.cpu_incl_stop_s,
            "samples_per_cpu_s": finite(self.samples_per_cpu_s()),
            "peak_rss_bytes": self.peak_rss,
            "disk_bytes": self.disk_bytes,
            "disk_allocated_bytes": self.disk_allocated,
            "disk_files": self.disk_files,
            "bytes_per_sample": finite(self.bytes_per_sample()),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "graceful_stop": self.graceful_stop,
            "stop_s": self.stop_s,
            "stored_samples": self.stored.iter().map(|(sel, r)| json!({
                "selector": sel,
                "count": r.as_ref().ok(),
                "error": r.as_ref().err(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

pub fn run(args: &Args) -> Result<()> {
    let which = if args.only.is_empty() {
        vec![Which::Prometheus, Which::Victoriametrics, Which::Cloudkeep]
    } else {
        args.only.clone()
    };
    let (series, rounds, batch) = if args.quick {
        (
            args.series.unwrap_or(5_000),
            args.rounds.unwrap_or(20),
            args.batch.unwrap_or(1_000),
        )
    } else {
        (
            args.series.unwrap_or(50_000),
            args.rounds.unwrap_or(60),
            args.batch.unwrap_or(5_000),
        )
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    // Build cloudkeep first so a broken build fails before minutes of reference runs.
    let mut receivers = Vec::new();
    for w in &which {
        receivers.push(match w {
            Which::Prometheus => Receiver::prometheus(args.prometheus_bin.clone()),
            Which::Victoriametrics => Receiver::victoria_metrics(args.victoria_metrics_bin.clone()),
            Which::Cloudkeep => Receiver::cloudkeep(args.common.cloudkeep_bin()?),
        });
    }
    for r in &receivers {
        if !r.program.is_file() {
            bail!("{}: {} not found", r.name, r.program.display());
        }
    }

    let built = Instant::now();
    let start_ms = payload::default_start_ms();
    let payloads = payload::build(series, rounds, batch, args.seed, start_ms)?;
    println!(
        "payload: {series} series × {rounds} rounds = {} samples in {} requests of ≤{batch} series; \
         {:.1} MiB protobuf, {:.1} MiB snappy; built in {:.1} s",
        table::int(payloads.total_samples() as u64),
        payloads.total_requests(),
        payloads.uncompressed_bytes as f64 / MIB,
        payloads.compressed_bytes as f64 / MIB,
        built.elapsed().as_secs_f64(),
    );
    println!(
        "timestamps {} .. {} ms (15 s apart), {} concurrent senders, seed {}{}",
        payloads.start_ms,
        payloads.last_ms(),
        args.concurrency,
        args.seed,
        if args.quick { " [--quick]" } else { "" }
    );

    let ticks = procfs::clock_ticks();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for r in &receivers {
        println!("\n== {} ({})", r.name, r.program.display());
        // One receiver failing must not throw away the others' numbers.
        let o = match run_one(r, &payloads, args, ticks) {
            Ok(o) => o,
            Err(e) => {
                println!("   FAILED: {e:#}");
                failures.push((r.name, format!("{e:#}")));
                continue;
            }
        };
        println!(
            "   {} samples accepted, {} HTTP errors in {:.1} s, {:.2} CPU s; stored per series: {}",
            table::int(o.samples_ok),
            o.http_errors,
            o.wall_s,
            o.cpu_s,
            stored_summary(&o)
        );
        if let Some(e) = &o.first_error {
            println!("   first error: {e}");
        }
        outcomes.push(o);
    }

    report(&receivers, &outcomes, &payloads);

    let json = json!({
        "bench": "ingest",
        "quick": args.quick,
        "series": series,
        "rounds": rounds,
        "series_per_request": batch,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "start_ms": payloads.start_ms,
        "payload_protobuf_bytes": payloads.uncompressed_bytes,
        "payload_snappy_bytes": payloads.compressed_bytes,
        "clock_ticks_per_s": ticks,
        "results": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        "failed": failures.iter().map(|(n, e)| json!({"receiver": n, "error": e})).collect::<Vec<_>>(),
        "cloudkeep_ratios": ratios_json(&outcomes),
    });
    args.common.write_json(&json)?;

    let want = payloads.rounds.len() as u64;
    let mismatched: Vec<&str> = outcomes
        .iter()
        .filter(|o| {
            !o.stored
                .iter()
                .all(|(_, r)| r.as_ref().is_ok_and(|n| *n == want))
        })
        .map(|o| o.name)
        .collect();
    if !failures.is_empty() || !mismatched.is_empty() {
        let failed: Vec<&str> = failures.iter().map(|(n, _)| *n).collect();
        bail!(
            "benchmark incomplete: failed to run: [{}]; stored sample count wrong: [{}]",
            failed.join(", "),
            mismatched.join(", ")
        );
    }
    Ok(())
}

fn stored_summary(o: &Outcome) -> String {
    o.stored
        .iter()
        .map(|(_, r)| match r {
            Ok(n) => n.to_string(),
            Err(e) => format!("error ({})", http::truncate(e, 120)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn stored_cell(o: &Outcome, want: u64) -> String {
    let all_ok = o
        .stored
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|n| *n == want));
    let mark = if all_ok { "" } else { " MISMATCH" };
    format!("{} of {want}{mark}", stored_summary(o))
}

fn run_one(r: &Receiver, payloads: &Payloads, args: &Args, ticks: f64) -> Result<Outcome> {
    let tmp = args.common.temp_dir(r.name)?;
    let layout = Layout {
        root: tmp.path().to_path_buf(),
        data: tmp.path().join("data"),
        addr: child::free_tcp_addr()?,
    };
    std::fs::create_dir_all(&layout.data)?;
    let mut cmd = (r.command)(&r.program, &layout)?;
    let mut proc = Proc::spawn(r.name, &mut cmd, &layout.root.join("server.log"))?;
    let base = format!("http://{}", layout.addr);
    let ready = proc.wait_ready(&format!("{base}{}", r.ready_path), Duration::from_secs(120))?;

    let token = match r.auth {
        Auth::None => None,
        Auth::CloudkeepAdmin => Some(crate::cloudkeep::admin_token(
            &layout.data,
            Duration::from_secs(10),
        )?),
    };
    let mut headers = vec![
        ("Content-Encoding", "snappy".to_owned()),
        ("Content-Type", "application/x-protobuf".to_owned()),
        ("X-Prometheus-Remote-Write-Version", "0.1.0".to_owned()),
        ("User-Agent", "cloudkeep-xtask-bench/0.1".to_owned()),
    ];
    if let Some(t) = &token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }

    let agent = http::agent(Duration::from_secs(args.request_timeout_secs));
    let url = format!("{base}{}", r.write_path);
    let cpu0 = procfs::cpu_ticks(proc.pid)?;
    let t0 = Instant::now();
    let stats = send_all(
        &agent,
        &url,
        &headers,
        payloads,
        args.concurrency,
        t0 + Duration::from_secs(args.send_timeout_secs),
    );
    let wall = t0.elapsed();
    proc.ensure_running()?;
    let cpu1 = procfs::cpu_ticks(proc.pid)?;
    let mem = procfs::memory(proc.pid)?;

    if let Some(path) = r.flush_path {
        let mut resp = agent
            .get(format!("{base}{path}"))
            .call()
            .context("force flush")?;
        resp.body_mut().read_to_string().ok();
        if !resp.status().is_success() {
            bail!("{path}: HTTP {}", resp.status());
        }
    }
    let probes = [
        &payloads.series[0],
        &payloads.series[payloads.series.len() - 1],
    ];
    let stored = probes
        .iter()
        .map(|s| {
            let sel = payload::selector(&s.labels);
            let n = stored_count(r.query, &agent, &base, &sel, token.as_deref(), payloads)
                .map_err(|e| format!("{e:#}"));
            (sel, n)
        })
        .collect();
    let cpu2 = procfs::cpu_ticks(proc.pid)?;
    let stop = proc.terminate(Duration::from_secs(120))?;
    let disk = procfs::disk_usage(&layout.data)?;

    let mut lat = stats.latencies;
    lat.sort();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i].as_secs_f64() * 1000.0
    };
    Ok(Outcome {
        name: r.name,
        samples_sent: payloads.total_samples() as u64,
        samples_ok: stats.samples_ok,
        requests_ok: stats.requests_ok,
        http_errors: stats.http_errors,
        skipped_requests: stats.skipped,
        first_error: stats.first_error,
        ready_s: ready.as_secs_f64(),
        wall_s: wall.as_secs_f64(),
        cpu_s: cpu1.saturating_sub(cpu0) as f64 / ticks,
        cpu_incl_flush_s: cpu2.saturating_sub(cpu0) as f64 / ticks,
        cpu_incl_stop_s: stop.last_cpu_ticks.unwrap_or(cpu2).saturating_sub(cpu0) as f64 / ticks,
        peak_rss: mem.hwm,
        disk_bytes: disk.apparent,
        disk_allocated: disk.allocated,
        disk_files: disk.files,
        stored,
        graceful_stop: stop.graceful && stop.status.is_some_and(|s| s.success()),
        stop_s: stop.took.as_secs_f64(),
        latency_p50_ms: pct(0.5),
        latency_p99_ms: pct(0.99),
    })
}

#[derive(Debug, Default)]
struct SendStats {
    requests_ok: u64,
    samples_ok: u64,
    http_errors: u64,
    skipped: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

impl SendStats {
    fn merge(&mut self, other: SendStats) {
        self.requests_ok += other.requests_ok;
        self.samples_ok += other.samples_ok;
        self.http_errors += other.http_errors;
        self.skipped += other.skipped;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
    fn error(&mut self, msg: String) {
        self.http_errors += 1;
        self.first_error.get_or_insert(msg);
    }
}

/// Sends every request exactly once, round by round (a round finishes before the next
/// starts, so no series' samples arrive out of order), `concurrency` at a time, until
/// done or `deadline`. Bounded: at most `total_requests` requests.
fn send_all(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, String)],
    payloads: &Payloads,
    concurrency: usize,
    deadline: Instant,
) -> SendStats {
    let mut total = SendStats::default();
    for round in &payloads.rounds {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    scope.spawn(|| {
                        let mut stats = SendStats::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(req) = round.get(i) else { break };
                            if Instant::now() >= deadline {
                                stats.skipped += 1;
                                continue;
                            }
                            let mut builder = agent.post(url);
                            for (k, v) in headers {
                                builder = builder.header(*k, v);
                            }
                            let t = Instant::now();
                            match builder.send(req.body.as_slice()) {
                                Ok(mut resp) => {
                                    let status = resp.status();
                                    let body = resp.body_mut().read_to_string().unwrap_or_default();
                                    stats.latencies.push(t.elapsed());
                                    if status.is_success() {
                                        stats.requests_ok += 1;
                                        stats.samples_ok += req.samples as u64;
                                    } else {
                                        stats.error(format!(
                                            "HTTP {status}: {}",
                                            http::truncate(body.trim(), 300)
                                        ));
                                    }
                                }
                                Err(e) => stats.error(format!("transport: {e}")),
                            }
                        }
                        stats
                    })
                })
                .collect();
            for w in workers {
                match w.join() {
                    Ok(s) => total.merge(s),
                    Err(_) => total.error("sender thread panicked".to_owned()),
                }
            }
        });
    }
    total
}

fn stored_count(
    api: QueryApi,
    agent: &ureq::Agent,
    base: &str,
    selector: &str,
    token: Option<&str>,
    payloads: &Payloads,
) -> Result<u64> {
    match api {
        QueryApi::Prometheus => {
            let time = (payloads.last_ms() + 1000) as f64 / 1000.0;
            let v = http::get_json(
                agent,
                &format!("{base}/api/v1/query"),
                &[
                    ("query", format!("count_over_time({selector}[1d])")),
                    ("time", format!("{time:.3}")),
                ],
                token,
            )?;
            let result = v["data"]["result"].as_array().context("no data.result")?;
            let Some(first) = result.first() else {
                return Ok(0);
            };
            let value = &first["value"][1];
            let n = value
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .or_else(|| value.as_f64())
                .with_context(|| format!("unexpected value {value}"))?;
            Ok(n as u64)
        }
        QueryApi::Cloudkeep => {
            let v = http::get_json(
                agent,
                &format!("{base}/api/v1/query_range"),
                &[
                    ("query", selector.to_owned()),
                    ("start", payloads.start_ms.to_string()),
                    ("end", (payloads.last_ms() + 1).to_string()),
                ],
                token,
            )?;
            let series = v["series"].as_array().context("no \"series\" array")?;
            Ok(series
                .iter()
                .map(|s| s["points"].as_array().map_or(0, |p| p.len() as u64))
                .sum())
        }
    }
}

fn report(receivers: &[Receiver], outcomes: &[Outcome], payloads: &Payloads) {
    println!();
    if outcomes.is_empty() {
        println!("no receiver completed");
        return;
    }
    let headers = [
        "receiver",
        "samples sent",
        "HTTP errors",
        "wall s",
        "CPU s",
        "CPU s +stop",
        "samples/CPU-s",
        "peak RSS MiB",
        "bytes on disk",
        "bytes/sample",
        "stored per probed series",
    ];
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.name.to_owned(),
                table::int(o.samples_sent),
                table::int(o.http_errors + o.skipped_requests),
                table::num(o.wall_s, 1),
                table::num(o.cpu_s, 2),
                table::num(o.cpu_incl_stop_s, 2),
                table::int(o.samples_per_cpu_s().max(0.0).round() as u64),
                table::num(o.peak_rss_mib(), 1),
                table::int(o.disk_bytes),
                table::num(o.bytes_per_sample(), 2),
                stored_cell(o, payloads.rounds.len() as u64),
            ]
        })
        .collect();
    table::print(&headers, &rows);
    for r in receivers
        .iter()
        .filter(|r| outcomes.iter().any(|o| o.name == r.name))
    {
        if let Some(note) = r.disk_note {
            println!("note: {note}");
        }
    }
    println!(
        "note: CPU s covers the sends; CPU s +stop adds flush, the stored-count queries and \
         SIGTERM shutdown (samples/CPU-s uses CPU s)"
    );
    for o in outcomes
        .iter()
        .filter(|o| o.stop_s > 5.0 || !o.graceful_stop)
    {
        println!(
            "note: {} took {:.1} s to stop{}",
            o.name,
            o.stop_s,
            if o.graceful_stop {
                ""
            } else {
                " and did not exit 0 on SIGTERM"
            }
        );
    }
    if outcomes.iter().any(|o| o.skipped_requests > 0) {
        println!("note: HTTP errors include requests skipped at the send time limit");
    }
    if let Some(ck) = outcomes.iter().find(|o| o.name == "cloudkeep") {
        let refs: Vec<&Outcome> = outcomes.iter().filter(|o| o.name != "cloudkeep").collect();
        if !refs.is_empty() {
            println!("\ncloudkeep relative to each reference (>1 means cloudkeep has more):");
            let rows: Vec<Vec<String>> = refs
                .iter()
                .map(|r| {
                    vec![
                        r.name.to_owned(),
                        table::ratio(ck.samples_per_cpu_s(), r.samples_per_cpu_s()),
                        table::ratio(ck.bytes_per_sample(), r.bytes_per_sample()),
                        table::ratio(ck.peak_rss as f64, r.peak_rss as f64),
                    ]
                })
                .collect();
            table::print(
                &[
                    "vs",
                    "samples/CPU-s (higher=better)",
                    "bytes/sample (lower=better)",
                    "peak RSS (lower=better)",
                ],
                &rows,
            );
        }
    }
}

fn ratios_json(outcomes: &[Outcome]) -> serde_json::Value {
    let Some(ck) = outcomes.iter().find(|o| o.name == "cloudkeep") else {
        return serde_json::Value::Null;
    };
    let div = |a: f64, b: f64| finite(a / b);
    outcomes
        .iter()
        .filter(|o| o.name != "cloudkeep")
        .map(|r| {
            (
                r.name.to_owned(),
                json!({
                    "samples_per_cpu_s": div(ck.samples_per_cpu_s(), r.samples_per_cpu_s()),
                    "bytes_per_sample": div(ck.bytes_per_sample(), r.bytes_per_sample()),
                    "peak_rss": div(ck.peak_rss as f64, r.peak_rss as f64),
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
