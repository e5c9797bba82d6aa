//! Bytes-on-disk benchmark: 1000 series x 360 samples at 10 s with a random-walk gauge

use std::fs;
use std::path::Path;

use cloudkeep_tsdb::{InputSeries, Options, Sample, Tsdb};

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                fs::metadata(&p).unwrap().len()
            }
        })
        .sum()
}

fn raw_block_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for seal in fs::read_dir(dir.join("blocks")).unwrap() {
        total += fs::metadata(seal.unwrap().path().join("raw.blk"))
            .unwrap()
            .len();
    }
    total
}

/// Appends one scrape per 10 s for all series; `step` picks the gauge's resolution.
fn run(step: f64, jitter_ms: u64) -> (f64, f64, f64) {
    const SERIES: usize = 1000;
    const SAMPLES: i64 = 360;
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(
        dir.path(),
        Options {
            fsync: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut rng = Rng(42);
    let mut values: Vec<f64> = (0..SERIES).map(|i| 100.0 + i as f64).collect();
    let t0 = 1_700_000_000_000i64;
    for n in 0..SAMPLES {
        let batch = (0..SERIES)
            .map(|i| {
                // gauge: random walk of -3..=3 increments
                let delta = (rng.next() % 7) as f64 - 3.0;
                values[i] = ((values[i] + delta * step) / step).round() * step;
                let jitter = if jitter_ms > 0 {
                    (rng.next() % jitter_ms) as i64
                } else {
                    0
                };
                InputSeries {
                    labels: vec![
                        ("__name__".into(), "node_memory_used".into()),
                        ("instance".into(), format!("host-{i:04}:9100")),
                        ("job".into(), "node".into()),
                    ],
                    samples: vec![Sample {
                        timestamp_ms: t0 + n * 10_000 + jitter,
                        value: values[i],
                    }],
                }
            })
            .collect();
        db.append(batch).unwrap();
    }
    let samples = (SERIES as i64 * SAMPLES) as f64;
    let wal_only = dir_bytes(dir.path()) as f64 / samples;
    db.flush().unwrap();
    let stats = db.stats();
    assert_eq!(
        stats.bytes_on_disk,
        dir_bytes(dir.path()),
        "stats must match the files"
    );
    (
        wal_only,
        dir_bytes(dir.path()) as f64 / samples,
        raw_block_bytes(dir.path()) as f64 / samples,
    )
}

#[test]
fn bytes_per_sample_after_flush() {
    for (name, step, jitter) in [
        ("integer gauge", 1.0, 0),
        ("0.5 step gauge", 0.5, 0),
        ("integer gauge, 0-50 ms jitter", 1.0, 50),
    ] {
        let (wal, total, raw) = run(step, jitter);
        println!(
            "{name}: wal {wal:.2} B/sample before flush; after flush {total:.3} B/sample on disk (raw block alone {raw:.3})"
        );
        assert!(wal < 12.0, "{name}: wal {wal}");
        if jitter == 0 {
            assert!(total < 2.0, "{name}: {total} bytes/sample");
        }
    }
}

/// The remote_write benchmark shape: 50 000 series x 60 samples at 15 s with five labels, sent as
/// requests of 5 000 series (one scrape each), then a flush.
#[test]
fn bytes_per_sample_50k_series_after_flush() {
    const SERIES: usize = 50_000;
    const SAMPLES: i64 = 60;
    const METRICS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(
        dir.path(),
        Options {
            fsync: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut rng = Rng(7);
    let labels: Vec<Vec<(String, String)>> = (0..SERIES)
        .map(|i| {
            let host = i / METRICS;
            let metric = i % METRICS;
            let kind = if metric.is_multiple_of(2) {
                "gauge"
            } else {
                "total"
            };
            vec![
                ("__name__".into(), format!("app_metric_{metric:02}_{kind}")),
                (
                    "instance".into(),
                    format!("10.0.{}.{}:9100", host / 250, host % 250),
                ),
                ("job".into(), format!("service-{}", host % 25)),
                ("region".into(), format!("eu-west-{}", host % 3)),
                ("env".into(), "production".into()),
            ]
        })
        .collect();
    let mut values: Vec<f64> = (0..SERIES).map(|i| (i % 1000) as f64).collect();
    let t0 = 1_700_000_000_000i64;
    for n in 0..SAMPLES {
        for start in (0..SERIES).step_by(5_000) {
            let batch = (start..start + 5_000)
                .map(|i| {
                    values[i] = if (i % METRICS).is_multiple_of(2) {
                        // gauge: random walk of -3..=3
                        values[i] + (rng.next() % 7) as f64 - 3.0
                    } else {
                        // counter: increments of 0..=100
                        values[i] + (rng.next() % 101) as f64
                    };
                    InputSeries {
                        labels: labels[i].clone(),
                        samples: vec![Sample {
                            timestamp_ms: t0 + n * 15_000,
                            value: values[i],
                        }],
                    }
                })
                .collect();
            db.append(batch).unwrap();
        }
    }
    db.flush().unwrap();
    let samples = (SERIES as i64 * SAMPLES) as f64;
    let total = dir_bytes(dir.path());
    assert_eq!(
        db.stats().bytes_on_disk,
        total,
        "stats must match the files"
    );
    let raw = raw_block_bytes(dir.path());
    let wal = dir_bytes(&dir.path().join("wal"));
    let per_sample = total as f64 / samples;
    println!(
        "50k series x 60: {per_sample:.3} B/sample on disk after flush (raw blocks {:.3}, wal snapshot {:.3})",
        raw as f64 / samples,
        wal as f64 / samples
    );
    assert!(per_sample < 4.0, "{per_sample} bytes/sample");
}

/// Append throughput through the borrowed path: 50 000 series x 20 rounds, fsync off (printed only).
#[test]
fn append_refs_throughput() {
    use cloudkeep_tsdb::SeriesRef;
    const SERIES: usize = 50_000;
    const ROUNDS: i64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(
        dir.path(),
        Options {
            fsync: false,
            ..Options::default()
        },
    )
    .unwrap();
    let owned: Vec<[(String, String); 5]> = (0..SERIES)
        .map(|i| {
            [
                ("__name__".into(), format!("app_metric_{:02}", i % 20)),
                (
                    "instance".into(),
                    format!("10.0.{}.{}:9100", i / 5000, i / 20 % 250),
                ),
                ("job".into(), format!("service-{}", i % 25)),
                ("region".into(), format!("eu-west-{}", i % 3)),
                ("env".into(), "production".into()),
            ]
        })
        .collect();
    let pairs: Vec<[(&str, &str); 5]> = owned
        .iter()
        .map(|l| l.each_ref().map(|(n, v)| (n.as_str(), v.as_str())))
        .collect();
    let mut rng = Rng(3);
    let t0 = 1_700_000_000_000i64;
    let start = std::time::Instant::now();
    for round in 0..ROUNDS {
        let samples: Vec<[Sample; 1]> = (0..SERIES)
            .map(|_| {
                [Sample {
                    timestamp_ms: t0 + round * 15_000,
                    value: (rng.next() % 1000) as f64,
                }]
            })
            .collect();
        for chunk in (0..SERIES).collect::<Vec<_>>().chunks(5_000) {
            let batch: Vec<SeriesRef<'_>> = chunk
                .iter()
                .map(|&i| SeriesRef {
                    labels: &pairs[i],
                    samples: &samples[i],
                })
                .collect();
            db.append_refs(&batch).unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (SERIES as i64 * ROUNDS) as f64;
    assert_eq!(db.stats().samples_appended_total, n as u64);
    println!(
        "append_refs: {n} samples in {secs:.3} s = {:.0} samples/s (first round creates the series)",
        n / secs
    );
}
