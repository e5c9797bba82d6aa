//! End-to-end tests of the engine against real files in temporary directories

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloudkeep_tsdb::{
    Aggregation, Error, InputSeries, Labels, Options, Sample, Selector, SeriesRef, Tier, Tsdb,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// An hour-aligned base timestamp so bucket boundaries are predictable.
const T0: i64 = 1_700_000_000_000 / HOUR * HOUR;

fn opts() -> Options {
    Options {
        fsync: false,
        ..Options::default()
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn input(name: &str, pod: &str, samples: &[(i64, f64)]) -> InputSeries {
    InputSeries {
        labels: vec![("pod".into(), pod.into()), ("__name__".into(), name.into())],
        samples: samples
            .iter()
            .map(|&(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            })
            .collect(),
    }
}

fn labels(name: &str, pod: &str) -> Labels {
    Labels::new(vec![
        ("__name__".into(), name.into()),
        ("pod".into(), pod.into()),
    ])
}

fn raw(db: &Tsdb, selector: &str) -> Vec<(Labels, Vec<Sample>)> {
    db.query_range(&sel(selector), i64::MIN, i64::MAX, None, Aggregation::Last)
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(s.tier, Tier::Raw);
            (s.labels, s.points)
        })
        .collect()
}

fn stepped(
    db: &Tsdb,
    selector: &str,
    start: i64,
    end: i64,
    step: i64,
    agg: Aggregation,
) -> (Tier, Vec<(i64, f64)>) {
    let mut res = db
        .query_range(&sel(selector), start, end, Some(step), agg)
        .unwrap();
    assert_eq!(res.len(), 1, "expected exactly one series for {selector}");
    let s = res.remove(0);
    (
        s.tier,
        s.points.iter().map(|p| (p.timestamp_ms, p.value)).collect(),
    )
}

/// Three series, 100 samples each at 10 s, with a NaN in the middle of one.
fn sample_data() -> Vec<InputSeries> {
    (0..3)
        .map(|p| {
            let samples: Vec<(i64, f64)> = (0..100)
                .map(|i| {
                    let v = if p == 1 && i == 50 {
                        f64::NAN
                    } else {
                        (p * 1000 + i) as f64
                    };
                    (T0 + i * 10_000, v)
                })
                .collect();
            input("cpu", &format!("p{p}"), &samples)
        })
        .collect()
}

fn assert_same(got: &[(Labels, Vec<Sample>)], want: &[InputSeries]) {
    let mut want: Vec<(Labels, Vec<Sample>)> = want
        .iter()
        .map(|s| (Labels::new(s.labels.clone()), s.samples.clone()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), want.len());
    for ((gl, gs), (wl, ws)) in got.iter().zip(&want) {
        assert_eq!(gl, wl);
        assert_eq!(gs.len(), ws.len(), "{gl}");
        for (g, w) in gs.iter().zip(ws) {
            assert_eq!(g.timestamp_ms, w.timestamp_ms);
            assert!(
                g.value == w.value || (g.value.is_nan() && w.value.is_nan()),
                "{gl}: {g:?} != {w:?}"
            );
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("wal"))
}

#[test]
fn round_trip_head_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_data();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let st = db.append(data.clone()).unwrap();
    assert_eq!((st.samples, st.new_series, st.out_of_order), (300, 3, 0));
    assert_same(&raw(&db, "cpu"), &data);
    assert_eq!(db.stats().head_samples, 300);

    db.flush().unwrap();
    let stats = db.stats();
    assert_eq!(stats.head_samples, 0);
    // a seal writes only the raw block; tiers come from `downsample`
    assert_eq!(stats.blocks, 1);
    assert_same(&raw(&db, "cpu"), &data);
    drop(db);

    // reopen after flush: data comes from blocks
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().series, 3);
    assert_same(&raw(&db, "cpu"), &data);

    // more data only in the wal, then reopen without flushing: replay
    let more: Vec<InputSeries> = (0..3)
        .map(|p| input("cpu", &format!("p{p}"), &[(T0 + 2_000_000, p as f64)]))
        .collect();
    db.append(more.clone()).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().head_samples, 3);
    let mut all = data.clone();
    for (a, m) in all.iter_mut().zip(&more) {
        a.samples.extend_from_slice(&m.samples);
    }
    assert_same(&raw(&db, "cpu"), &all);
    db.close().unwrap();

    // reopen after close (which flushed): everything from blocks, wal holds no samples
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().head_samples, 0);
    assert_eq!(db.stats().blocks, 2);
    assert_same(&raw(&db, "cpu"), &all);
    assert_eq!(wal_segments(dir.path()).len(), 1);
    assert_eq!(db.downsample(T0 + DAY, 0).unwrap(), 4);
    assert_eq!(db.downsample(T0 + DAY, 0).unwrap(), 0);
    assert_eq!(db.stats().blocks, 6);
    assert_same(&raw(&db, "cpu"), &all);

    // range filtering
    let res = db
        .query_range(
            &sel(r#"cpu{pod="p2"}"#),
            T0 + 10_000,
            T0 + 30_000,
            None,
            Aggregation::Avg,
        )
        .unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(
        res[0].points.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![2001.0, 2002.0, 2003.0]
    );
}

#[test]
fn acknowledged_samples_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        fsync: true,
        ..Options::default()
    };
    let db = Tsdb::open(dir.path(), options.clone()).unwrap();
    let mut expected = Vec::new();
    for batch in 0..20 {
        let series = input("mem", "a", &[(T0 + batch * 1000, batch as f64)]);
        expected.extend(series.samples.clone());
        db.append(vec![series]).unwrap();
    }
    // a crash: no flush, no close, no destructor
    std::mem::forget(db);
    let db = Tsdb::open(dir.path(), options).unwrap();
    assert_eq!(raw(&db, "mem"), vec![(labels("mem", "a"), expected)]);
}

#[test]
fn torn_wal_tail_is_truncated_and_earlier_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    for i in 0..3 {
        db.append(vec![input("up", "a", &[(T0 + i * 1000, i as f64)])])
            .unwrap();
    }
    drop(db);
    let segments = wal_segments(dir.path());
    let last = segments.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);

    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let got = raw(&db, "up");
    assert_eq!(
        got[0].1.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![0.0, 1.0]
    );
    // the torn record's bytes are gone from the file, so new records land after valid data
    assert!(fs::metadata(last).unwrap().len() < len - 3);
    db.append(vec![input("up", "a", &[(T0 + 5000, 5.0)])])
        .unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(
        raw(&db, "up")[0]
            .1
            .iter()
            .map(|s| s.value)
            .collect::<Vec<_>>(),
        vec![0.0, 1.0, 5.0]
    );
}

#[test]
fn corrupt_wal_record_crc_stops_replay_of_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    for i in 0..3 {
        db.append(vec![input("up", "a", &[(T0 + i * 1000, i as f64)])])
            .unwrap();
    }
    drop(db);
    let last = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55; // last value byte of the last record
    fs::write(&last, &bytes).unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(raw(&db, "up")[0].1.len(), 2);
}

#[test]
fn corrupt_block_fails_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    db.append(sample_data()).unwrap();
    db.close().unwrap();
    let block = files_under(&dir.path().join("blocks"))
        .into_iter()
        .find(|p| p.ends_with("raw.blk"))
        .unwrap();
    let mut bytes = fs::read(&block).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 0xff; // inside the index: crc must catch it
    fs::write(&block, &bytes).unwrap();
    let err = Tsdb::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&block.display().to_string()) && msg.contains("index crc mismatch"),
        "{msg}"
    );
}

#[test]
fn out_of_order_and_duplicates_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let batch = vec![input("q", "a", &[(10, 1.0), (20, 2.0), (30, 3.0)])];
    assert_eq!(db.append(batch.clone()).unwrap().samples, 3);
    // re-sending is idempotent
    let st = db.append(batch.clone()).unwrap();
    assert_eq!((st.samples, st.new_series, st.out_of_order), (0, 0, 3));
    let st = db
        .append(vec![input(
            "q",
            "a",
            &[
                (5, 9.0),
                (25, 9.0),
                (40, 4.0),
                (40, 9.0),
                (35, 9.0),
                (50, 5.0),
            ],
        )])
        .unwrap();
    assert_eq!((st.samples, st.out_of_order), (2, 4));
    // the same series twice in one batch obeys the same rule
    let st = db
        .append(vec![
            input("q", "a", &[(60, 6.0)]),
            input("q", "a", &[(60, 9.0), (70, 7.0)]),
        ])
        .unwrap();
    assert_eq!((st.samples, st.out_of_order), (2, 1));
    let values = |db: &Tsdb| {
        raw(db, "q")[0]
            .1
            .iter()
            .map(|s| s.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&db), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    assert_eq!(db.stats().out_of_order_total, 8);
    assert_eq!(db.stats().samples_appended_total, 7);

    // the rule holds across flush and reopen (last timestamp recovered from blocks)
    db.close().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let st = db.append(batch).unwrap();
    assert_eq!((st.samples, st.out_of_order), (0, 3));
    assert_eq!(values(&db), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
}

#[test]
fn tier_aggregates_merge_across_blocks_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    // one 5 minute bucket [T0, T0+5m) split over two blocks and the head
    db.append(vec![input(
        "g",
        "a",
        &[(T0, 1.0), (T0 + MIN, 5.0), (T0 + 2 * MIN, 3.0)],
    )])
    .unwrap();
    db.flush().unwrap();
    // not old enough yet
    assert_eq!(db.downsample(T0 + 2 * MIN, 5 * MIN).unwrap(), 0);
    // only the first seal gets tiers: queries mix its tier blocks with the second seal's raw block
    assert_eq!(db.downsample(T0 + HOUR, 5 * MIN).unwrap(), 2);
    db.append(vec![input(
        "g",
        "a",
        &[(T0 + 3 * MIN, -2.0), (T0 + 4 * MIN, 10.0)],
    )])
    .unwrap();
    db.flush().unwrap();
    db.append(vec![input(
        "g",
        "a",
        &[(T0 + 4 * MIN + 30_000, 4.0), (T0 + 6 * MIN, 100.0)],
    )])
    .unwrap();

    let end = T0 + 10 * MIN;
    let q = |agg| stepped(&db, "g", T0, end, 5 * MIN, agg);
    assert_eq!(
        q(Aggregation::Min),
        (Tier::FiveMinutes, vec![(T0, -2.0), (T0 + 5 * MIN, 100.0)])
    );
    assert_eq!(
        q(Aggregation::Max).1,
        vec![(T0, 10.0), (T0 + 5 * MIN, 100.0)]
    );
    assert_eq!(
        q(Aggregation::Count).1,
        vec![(T0, 6.0), (T0 + 5 * MIN, 1.0)]
    );
    assert_eq!(
        q(Aggregation::Sum).1,
        vec![(T0, 21.0), (T0 + 5 * MIN, 100.0)]
    );
    assert_eq!(
        q(Aggregation::Avg).1,
        vec![(T0, 3.5), (T0 + 5 * MIN, 100.0)]
    );
    assert_eq!(
        q(Aggregation::Last).1,
        vec![(T0, 4.0), (T0 + 5 * MIN, 100.0)]
    );

    // the one hour tier sees the same data
    assert_eq!(
        stepped(&db, "g", T0, end, HOUR, Aggregation::Avg),
        (Tier::OneHour, vec![(T0, 121.0 / 7.0)])
    );
    // a small step uses raw data
    let (tier, points) = stepped(&db, "g", T0, T0 + 3 * MIN, MIN, Aggregation::Sum);
    assert_eq!(tier, Tier::Raw);
    assert_eq!(
        points,
        vec![
            (T0, 1.0),
            (T0 + MIN, 5.0),
            (T0 + 2 * MIN, 3.0),
            (T0 + 3 * MIN, -2.0)
        ]
    );

    // after sealing everything and reopening the answers do not change, before and after the
    // remaining seals are downsampled
    db.close().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    for downsample in [false, true] {
        if downsample {
            assert_eq!(db.downsample(T0 + HOUR, 0).unwrap(), 4);
        }
        assert_eq!(
            stepped(&db, "g", T0, end, 5 * MIN, Aggregation::Avg),
            (Tier::FiveMinutes, vec![(T0, 3.5), (T0 + 5 * MIN, 100.0)])
        );
        assert_eq!(
            stepped(&db, "g", T0, end, 10 * MIN, Aggregation::Count),
            (Tier::FiveMinutes, vec![(T0, 7.0)])
        );
        assert_eq!(
            stepped(&db, "g", T0, end, HOUR, Aggregation::Last),
            (Tier::OneHour, vec![(T0, 100.0)])
        );
    }
    assert_eq!(
        stepped(&db, "g", T0, end, 5 * MIN, Aggregation::Avg),
        (Tier::FiveMinutes, vec![(T0, 3.5), (T0 + 5 * MIN, 100.0)])
    );
    assert_eq!(
        stepped(&db, "g", T0, end, 10 * MIN, Aggregation::Count),
        (Tier::FiveMinutes, vec![(T0, 7.0)])
    );
}

#[test]
fn tier_falls_back_to_raw_when_data_is_only_in_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let samples: Vec<(i64, f64)> = (0..30).map(|i| (T0 + i * 20_000, i as f64)).collect();
    db.append(vec![input("h", "a", &samples)]).unwrap();
    let (tier, points) = stepped(&db, "h", T0, T0 + HOUR, 5 * MIN, Aggregation::Count);
    assert_eq!(tier, Tier::Raw);
    assert_eq!(points, vec![(T0, 15.0), (T0 + 5 * MIN, 15.0)]);
    let (tier, points) = stepped(&db, "h", T0, T0 + HOUR, HOUR, Aggregation::Max);
    assert_eq!((tier, points), (Tier::Raw, vec![(T0, 29.0)]));
}

#[test]
fn retention_removes_only_expired_blocks_per_tier() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        raw_retention_ms: DAY,
        tier_5m_retention_ms: 10 * DAY,
        tier_1h_retention_ms: 100 * DAY,
        ..opts()
    };
    let db = Tsdb::open(dir.path(), options.clone()).unwrap();
    db.append(vec![input("r", "a", &[(T0, 1.0), (T0 + MIN, 3.0)])])
        .unwrap();
    db.flush().unwrap();
    let t1 = T0 + 20 * DAY;
    db.append(vec![input("r", "a", &[(t1, 5.0)])]).unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().blocks, 2);
    let bytes_before = db.stats().bytes_on_disk;

    // nothing is old enough yet, and nothing is downsampled for it
    assert_eq!(db.apply_retention(T0 + DAY / 2).unwrap(), 0);
    assert_eq!(db.stats().blocks, 2);
    // the old raw block expires; before it goes, its 1h tier is written (its 5m tier would be
    // expired already, so it is skipped); the new seal keeps only its raw block
    assert_eq!(db.apply_retention(t1 + HOUR).unwrap(), 1);
    assert_eq!(db.stats().blocks, 2);
    assert!(dir.path().join("blocks").read_dir().unwrap().count() == 2);
    // the 1h tier replaced the raw block: the byte count follows the files
    let on_disk: u64 = files_under(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(db.stats().bytes_on_disk, on_disk);
    assert_ne!(db.stats().bytes_on_disk, bytes_before);
    assert_eq!(
        raw(&db, "r")[0].1,
        vec![Sample {
            timestamp_ms: t1,
            value: 5.0
        }]
    );
    assert_eq!(
        stepped(&db, "r", T0, T0 + HOUR, HOUR, Aggregation::Avg),
        (Tier::OneHour, vec![(T0, 2.0)])
    );
    // the 5m query for the old range has no 5m or raw data left
    assert!(
        db.query_range(&sel("r"), T0, T0 + HOUR, Some(5 * MIN), Aggregation::Avg)
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.apply_retention(t1 + HOUR).unwrap(), 0);

    drop(db);
    let db = Tsdb::open(dir.path(), options).unwrap();
    assert_eq!(db.stats().blocks, 2);
    assert_eq!(db.apply_retention(t1 + 1000 * DAY).unwrap(), 2);
    assert!(files_under(&dir.path().join("blocks")).is_empty());
    assert_eq!(fs::read_dir(dir.path().join("blocks")).unwrap().count(), 0);
    // series stay registered and keep rejecting stale samples
    assert_eq!(db.series(&sel("r")), vec![labels("r", "a")]);
}

#[test]
fn series_and_latest_follow_the_selector() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    db.append(vec![
        input("up", "api-1", &[(1, 1.0), (2, 0.0)]),
        input("up", "api-2", &[(1, 1.0)]),
        input("up", "web-1", &[]),
        input("down", "api-1", &[(5, 7.0)]),
    ])
    .unwrap();
    assert_eq!(db.series(&sel("up")).len(), 3);
    assert_eq!(
        db.series(&sel(r#"{pod=~"api-.*"}"#)),
        vec![
            labels("down", "api-1"),
            labels("up", "api-1"),
            labels("up", "api-2")
        ]
    );
    assert_eq!(db.series(&sel(r#"up{pod=~"api"}"#)), Vec::<Labels>::new());
    assert_eq!(
        db.latest(&sel("up")),
        vec![
            (
                labels("up", "api-1"),
                Sample {
                    timestamp_ms: 2,
                    value: 0.0
                }
            ),
            (
                labels("up", "api-2"),
                Sample {
                    timestamp_ms: 1,
                    value: 1.0
                }
            ),
        ]
    );
    // a series registered without samples survives restart
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert!(db.series(&sel(r#"up{pod="web-1"}"#)).len() == 1);
    db.flush().unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().series, 4);
    assert_eq!(
        db.latest(&sel(r#"{__name__="down"}"#)),
        vec![(
            labels("down", "api-1"),
            Sample {
                timestamp_ms: 5,
                value: 7.0
            }
        )]
    );
}

#[test]
fn invalid_input_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let nameless = InputSeries {
        labels: vec![("a".into(), "b".into())],
        samples: vec![],
    };
    assert!(matches!(
        db.append(vec![nameless]),
        Err(Error::InvalidInput(_))
    ));
    assert!(
        db.query_range(&sel("x"), 10, 5, None, Aggregation::Avg)
            .is_err()
    );
    assert!(
        db.query_range(&sel("x"), 0, 5, Some(0), Aggregation::Avg)
            .is_err()
    );
    assert_eq!(db.stats().series, 0);
}

#[test]
fn head_is_sealed_automatically_and_concurrent_use_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Tsdb::open(
            dir.path(),
            Options {
                head_max_samples: 500,
                ..opts()
            },
        )
        .unwrap(),
    );
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..250 {
                    db.append(vec![input(
                        "c",
                        &format!("w{w}"),
                        &[(T0 + i * 1000, i as f64)],
                    )])
                    .unwrap();
                    if i % 50 == 0 {
                        // queries must never see a sample twice or lose one mid-seal
                        let got = db
                            .query_range(
                                &sel(&format!(r#"c{{pod="w{w}"}}"#)),
                                i64::MIN,
                                i64::MAX,
                                None,
                                Aggregation::Avg,
                            )
                            .unwrap();
                        assert_eq!(got[0].points.len() as i64, i + 1);
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert!(db.stats().blocks >= 1, "{:?}", db.stats());
    let check = |db: &Tsdb| {
        let got = raw(db, "c");
        assert_eq!(got.len(), 4);
        for (_, samples) in got {
            assert_eq!(
                samples.iter().map(|s| s.value).collect::<Vec<_>>(),
                (0..250).map(|i| i as f64).collect::<Vec<_>>()
            );
        }
    };
    check(&db);
    let db = Arc::into_inner(db).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    check(&db);
}

#[test]
fn block_ids_without_a_wal_definition_fail_open_naming_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    db.append(sample_data()).unwrap();
    db.close().unwrap();
    // the newest segment (with the series snapshot) is the only one left after a seal
    assert_eq!(wal_segments(dir.path()).len(), 1);
    for seg in wal_segments(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let err = Tsdb::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("raw.blk") && msg.contains("no definition"),
        "{msg}"
    );
}

#[test]
fn ids_survive_many_seals_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4i64 {
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        // a new series per round, and the old ones keep getting samples
        let batch: Vec<InputSeries> = (0..=round)
            .map(|p| input("s", &format!("p{p}"), &[(T0 + round * MIN, p as f64)]))
            .collect();
        db.append(batch).unwrap();
        db.flush().unwrap();
        if round % 2 == 1 {
            db.downsample(T0 + DAY, 0).unwrap();
        }
        drop(db);
    }
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let got = raw(&db, "s");
    assert_eq!(got.len(), 4);
    for (p, (l, samples)) in got.iter().enumerate() {
        assert_eq!(l, &labels("s", &format!("p{p}")));
        let want: Vec<i64> = (p as i64..4).map(|r| T0 + r * MIN).collect();
        assert_eq!(
            samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(),
            want
        );
    }
}

#[test]
fn interrupted_downsampling_leaves_no_partial_tier() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    db.append(sample_data()).unwrap();
    db.close().unwrap();
    let seal = fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // a crash before the rename leaves only a temp file, which open removes
    fs::write(seal.join("5m.blk.tmp"), b"partial").unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert!(!seal.join("5m.blk.tmp").exists());
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(db.downsample(T0 + DAY, 0).unwrap(), 2);
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().blocks, 3);
    assert_eq!(db.downsample(T0 + DAY, 0).unwrap(), 0);
}

#[test]
fn append_refs_matches_append() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let s = |t: i64, v: f64| Sample {
        timestamp_ms: t,
        value: v,
    };
    let a1 = [s(T0, 1.0), s(T0 + 1000, 2.0)];
    let a2 = [s(T0 + 1000, 9.0), s(T0 + 2000, 3.0), s(T0 + 1500, 9.0)];
    let st = db
        .append_refs(&[
            SeriesRef {
                labels: &[("pod", "a"), ("__name__", "m"), ("empty", "")],
                samples: &a1,
            },
            // same series: labels in another order, a repeated name where the last value wins
            SeriesRef {
                labels: &[("pod", "x"), ("__name__", "m"), ("pod", "a")],
                samples: &a2,
            },
        ])
        .unwrap();
    assert_eq!((st.samples, st.new_series, st.out_of_order), (3, 1, 2));
    // the owned path finds the same series
    let st = db
        .append(vec![input("m", "a", &[(T0 + 2000, 0.0), (T0 + 3000, 4.0)])])
        .unwrap();
    assert_eq!((st.samples, st.new_series, st.out_of_order), (1, 0, 1));
    let want = vec![
        s(T0, 1.0),
        s(T0 + 1000, 2.0),
        s(T0 + 2000, 3.0),
        s(T0 + 3000, 4.0),
    ];
    assert_eq!(raw(&db, "m"), vec![(labels("m", "a"), want.clone())]);
    let err = db
        .append_refs(&[SeriesRef {
            labels: &[("pod", "a"), ("__name__", "")],
            samples: &a1,
        }])
        .unwrap_err();
    assert!(err.to_string().contains("no __name__"), "{err}");
    drop(db);
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(raw(&db, "m"), vec![(labels("m", "a"), want)]);
}
