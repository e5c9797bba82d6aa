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
