//! Synthetic, node_exporter-like Prometheus remote_write 1.0 payloads.
//!
//! The messages are `cloudkeep_protocol::remote_write`'s; requests are
//! snappy block-compressed once and the same bytes go to every receiver.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// The remote_write messages are the protocol crate's, the same ones the server decodes against.
#[cfg(test)]
use cloudkeep_protocol::remote_write::WriteRequest;
use cloudkeep_protocol::remote_write::{Label, Sample, TimeSeries};

pub const HOSTS: usize = 500;
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Monotonically increasing; `step` is the mean increase per second.
    Counter {
        start: f64,
        step: f64,
    },
    /// Random walk around `center`, moving by up to `step` per round.
    Gauge {
        center: f64,
        step: f64,
    },
    Constant {
        value: f64,
    },
}

struct Metric {
    name: &'static str,
    kind: Kind,
    /// Values are rounded to a multiple of this, as real exporters' are.
    quantum: f64,
    /// Extra label sets (cpu/device/mode...); empty for host-level metrics.
    extra: fn() -> Vec<Vec<(&'static str, String)>>,
}

fn none() -> Vec<Vec<(&'static str, String)>> {
    vec![vec![]]
}
fn cpu_mode() -> Vec<Vec<(&'static str, String)>> {
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    (0..8)
        .flat_map(|cpu| {
            modes
                .iter()
                .map(move |m| vec![("cpu", cpu.to_string()), ("mode", (*m).to_owned())])
        })
        .collect()
}
fn disks() -> Vec<Vec<(&'static str, String)>> {
    ["nvme0n1", "nvme1n1", "sda", "sdb", "dm-0"]
        .iter()
        .map(|d| vec![("device", (*d).to_owned())])
        .collect()
}
fn nics() -> Vec<Vec<(&'static str, String)>> {
    ["eth0", "eth1", "lo", "docker0"]
        .iter()
        .map(|d| vec![("device", (*d).to_owned())])
        .collect()
}
fn filesystems() -> Vec<Vec<(&'static str, String)>> {
    [
        ("/dev/nvme0n1p1", "/"),
        ("/dev/nvme0n1p2", "/var"),
        ("tmpfs", "/run"),
    ]
    .iter()
    .map(|(d, m)| {
        vec![
            ("device", (*d).to_owned()),
            ("fstype", "ext4".to_owned()),
            ("mountpoint", (*m).to_owned()),
        ]
    })
    .collect()
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn metrics() -> Vec<Metric> {
    use Kind::*;
    let m = |name, kind, quantum, extra| Metric {
        name,
        kind,
        quantum,
        extra,
    };
    vec![
        m(
            "node_cpu_seconds_total",
            Counter {
                start: 1e5,
                step: 0.12,
            },
            0.01,
            cpu_mode as fn() -> _,
        ),
        m(
            "node_load1",
            Gauge {
                center: 1.5,
                step: 0.2,
            },
            0.01,
            none,
        ),
        m(
            "node_load5",
            Gauge {
                center: 1.4,
                step: 0.05,
            },
            0.01,
            none,
        ),
        m(
            "node_load15",
            Gauge {
                center: 1.3,
                step: 0.02,
            },
            0.01,
            none,
        ),
        m(
            "node_memory_MemTotal_bytes",
            Constant { value: 64.0 * GIB },
            4096.0,
            none,
        ),
        m(
            "node_memory_MemAvailable_bytes",
            Gauge {
                center: 40.0 * GIB,
                step: 2e7,
            },
            4096.0,
            none,
        ),
        m(
            "node_memory_MemFree_bytes",
            Gauge {
                center: 20.0 * GIB,
                step: 2e7,
            },
            4096.0,
            none,
        ),
        m(
            "node_memory_Cached_bytes",
            Gauge {
                center: 18.0 * GIB,
                step: 1e7,
            },
            4096.0,
            none,
        ),
        m(
            "node_disk_read_bytes_total",
            Counter {
                start: 1e12,
                step: 2e6,
            },
            512.0,
            disks,
        ),
        m(
            "node_disk_written_bytes_total",
            Counter {
                start: 3e12,
                step: 5e6,
            },
            512.0,
            disks,
        ),
        m(
            "node_disk_reads_completed_total",
            Counter {
                start: 1e8,
                step: 150.0,
            },
            1.0,
            disks,
        ),
        m(
            "node_disk_io_time_seconds_total",
            Counter {
                start: 1e5,
                step: 0.05,
            },
            0.001,
            disks,
        ),
        m(
            "node_network_receive_bytes_total",
            Counter {
                start: 5e12,
                step: 1e7,
            },
            1.0,
            nics,
        ),
        m(
            "node_network_transmit_bytes_total",
            Counter {
                start: 4e12,
                step: 8e6,
            },
            1.0,
            nics,
        ),
        m(
            "node_network_receive_packets_total",
            Counter {
                start: 5e9,
                step: 9e3,
            },
            1.0,
            nics,
        ),
        m("node_network_up", Constant { value: 1.0 }, 1.0, nics),
        m(
            "node_filesystem_avail_bytes",
            Gauge {
                center: 200.0 * GIB,
                step: 1e6,
            },
            4096.0,
            filesystems,
        ),
        m(
            "node_filesystem_size_bytes",
            Constant { value: 500.0 * GIB },
            4096.0,
            filesystems,
        ),
        m(
            "node_context_switches_total",
            Counter {
                start: 1e10,
                step: 2e4,
            },
            1.0,
            none,
        ),
        m(
            "node_procs_running",
            Gauge {
                center: 3.0,
                step: 1.0,
            },
            1.0,
            none,
        ),
        m(
            "node_boot_time_seconds",
            Constant { value: 1.7e9 },
            1.0,
            none,
        ),
    ]
}

/// One series: its sorted labels and how its value evolves.
#[derive(Debug, Clone)]
pub struct SeriesDef {
    pub labels: Vec<Label>,
    kind: Kind,
    quantum: f64,
}

/// Builds `n` distinct series: host `i % 500`, the per-host catalog entry
/// `i / 500` (catalog interleaved across metrics so small `n` still mixes them).
pub fn series(n: usize) -> Vec<SeriesDef> {
    let metrics = metrics();
    let per_metric: Vec<Vec<Vec<(&'static str, String)>>> =
        metrics.iter().map(|m| (m.extra)()).collect();
    let mut catalog: Vec<(usize, usize)> = Vec::new();
    let longest = per_metric.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..longest {
        for (mi, sets) in per_metric.iter().enumerate() {
            if k < sets.len() {
                catalog.push((mi, k));
            }
        }
    }
    (0..n)
        .map(|i| {
            let host = i % HOSTS;
            let j = i / HOSTS;
            let (mi, k) = catalog[j % catalog.len()];
            let metric = &metrics[mi];
            let mut labels = vec![
                label("__name__", metric.name.to_owned()),
                label("instance", format!("host-{host:03}.bench.internal:9100")),
                label("job", "node".to_owned()),
            ];
            let copy = j / catalog.len();
            for (name, value) in &per_metric[mi][k] {
                let value = if copy == 0 {
                    value.clone()
                } else {
                    format!("{value}-{copy}")
                };
                labels.push(label(name, value));
            }
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            SeriesDef {
                labels,
                kind: metric.kind,
                quantum: metric.quantum,
            }
        })
        .collect()
}

fn label(name: &str, value: String) -> Label {
    Label {
        name: name.to_owned(),
        value,
    }
}

/// One pre-built HTTP body.
#[derive(Debug)]
pub struct Request {
    pub body: Vec<u8>,
    pub samples: usize,
}

#[derive(Debug)]
pub struct Payloads {
    /// `rounds[r]` holds the requests of round `r`, each series once.
    pub rounds: Vec<Vec<Request>>,
    pub series: Vec<SeriesDef>,
    pub start_ms: i64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
}

impl Payloads {
    pub fn total_samples(&self) -> usize {
        self.rounds.iter().flatten().map(|r| r.samples).sum()
    }
    pub fn total_requests(&self) -> usize {
        self.rounds.iter().map(Vec::len).sum()
    }
    pub fn last_ms(&self) -> i64 {
        self.start_ms + (self.rounds.len() as i64 - 1).max(0) * SCRAPE_INTERVAL_MS
    }
}

/// Now − 2 h, rounded down to the minute, in ms.
// The benchmark harness is a tool outside the product; the Clock seam is for product code.
#[allow(clippy::disallowed_methods)]
pub fn default_start_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64;
    let t = now - 2 * 3600 * 1000;
    t - t.rem_euclid(60_000)
}

pub fn build(
    n_series: usize,
    rounds: usize,
    batch: usize,
    seed: u64,
    start_ms: i64,
) -> Result<Payloads> {
    ensure!(
        n_series > 0 && rounds > 0 && batch > 0,
        "series, rounds and batch must be > 0"
    );
    let defs = series(n_series);
    let mut rng = StdRng::seed_from_u64(seed);
    // Per-series state: current value and, for counters, its own rate.
    let mut state: Vec<(f64, f64)> = defs
        .iter()
        .map(|d| match d.kind {
            Kind::Counter { start, step } => (
                start * rng.random_range(0.5..1.5),
                step * rng.random_range(0.2..2.0),
            ),
            Kind::Gauge { center, step } => (center * rng.random_range(0.8..1.2), step),
            Kind::Constant { value } => (value, 0.0),
        })
        .collect();
    let mut series: Vec<TimeSeries> = defs
        .iter()
        .map(|d| TimeSeries {
            labels: d.labels.clone(),
            samples: vec![Sample::default()],
        })
        .collect();
    let mut encoder = snap::raw::Encoder::new();
    let mut out = Payloads {
        rounds: Vec::with_capacity(rounds),
        series: defs,
        start_ms,
        uncompressed_bytes: 0,
        compressed_bytes: 0,
    };
    let secs = SCRAPE_INTERVAL_MS as f64 / 1000.0;
    let mut buf = Vec::new();
    for round in 0..rounds {
        let ts = start_ms + round as i64 * SCRAPE_INTERVAL_MS;
        for ((s, def), (value, rate)) in series.iter_mut().zip(&out.series).zip(&mut state) {
            if round > 0 {
                match def.kind {
                    Kind::Counter { .. } => *value += *rate * secs * rng.random_range(0.5..1.5),
                    Kind::Gauge { center, .. } => {
                        *value += *rate * rng.random_range(-1.0..1.0);
                        // Keep the walk near its center and non-negative.
                        *value += (center - *value) * 0.05;
                        *value = value.max(0.0);
                    }
                    Kind::Constant { .. } => {}
                }
            }
            let q = def.quantum;
            s.samples[0] = Sample {
                value: (*value / q).round() * q,
                timestamp: ts,
            };
        }
        let mut reqs = Vec::with_capacity(n_series.div_ceil(batch));
        for chunk in series.chunks(batch) {
            buf.clear();
            // A WriteRequest is just `repeated TimeSeries timeseries = 1`.
            for ts in chunk {
                prost::encoding::message::encode(1, ts, &mut buf);
            }
            let body = encoder.compress_vec(&buf)?;
            out.uncompressed_bytes += buf.len() as u64;
            out.compressed_bytes += body.len() as u64;
            reqs.push(Request {
                body,
                samples: chunk.len(),
            });
        }
        out.rounds.push(reqs);
    }
    Ok(out)
}

/// A PromQL selector matching exactly one series.
pub fn selector(labels: &[Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|l| {
            format!(
                "{}=\"{}\"",
                l.name,
                l.value.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use prost::Message;

    use super::*;

    #[test]
    fn series_are_distinct_and_sorted() {
        let defs = series(50_000);
        let keys: HashSet<String> = defs.iter().map(|d| selector(&d.labels)).collect();
        assert_eq!(keys.len(), 50_000);
        for d in &defs {
            assert!(d.labels.windows(2).all(|w| w[0].name < w[1].name));
            assert_eq!(d.labels[0].name, "__name__");
        }
        let small = series(5_000);
        let names: HashSet<&str> = small.iter().map(|d| d.labels[0].value.as_str()).collect();
        assert!(names.len() >= 10, "small runs still mix metrics: {names:?}");
    }

    #[test]
    fn payload_roundtrips_and_counters_increase() {
        let p = build(1_200, 5, 500, 7, 1_700_000_000_000).unwrap();
        assert_eq!(p.rounds.len(), 5);
        assert_eq!(p.rounds[0].len(), 3);
        assert_eq!(p.total_samples(), 6_000);
        let decode = |r: &Request| {
            let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
            WriteRequest::decode(raw.as_slice()).unwrap()
        };
        let first = decode(&p.rounds[0][0]);
        let last = decode(&p.rounds[4][0]);
        assert_eq!(first.timeseries.len(), 500);
        assert_eq!(first.timeseries[0].labels, p.series[0].labels);
        assert_eq!(first.timeseries[0].samples[0].timestamp, 1_700_000_000_000);
        assert_eq!(last.timeseries[0].samples[0].timestamp, 1_700_000_060_000);
        assert_eq!(p.last_ms(), 1_700_000_060_000);
        // Series 0 is node_cpu_seconds_total, a counter.
        assert_eq!(p.series[0].labels[0].value, "node_cpu_seconds_total");
        assert!(last.timeseries[0].samples[0].value > first.timeseries[0].samples[0].value);
        // Deterministic.
        let again = build(1_200, 5, 500, 7, 1_700_000_000_000).unwrap();
        assert_eq!(again.rounds[3][2].body, p.rounds[3][2].body);
    }

    #[test]
    fn selector_quotes_values() {
        let l = vec![label("__name__", "up".into()), label("a", "x\"y".into())];
        assert_eq!(selector(&l), r#"{__name__="up",a="x\"y"}"#);
    }
}
