//! Property test: random appends, flushes, downsampling, crashes and reopens always query back like a simple model

use std::collections::BTreeMap;

use cloudkeep_tsdb::{Aggregation, InputSeries, Labels, Options, Sample, Selector, Tsdb};
use proptest::prelude::*;

const STEP: i64 = 5 * 60_000;

#[derive(Debug, Clone)]
enum Op {
    /// (series index, samples) pairs forming one append call.
    Append(Vec<(usize, Vec<(i64, i32)>)>),
    Flush,
    /// `downsample(now, 0)`: seals whose data ends before `now` get tiers, later ones stay raw.
    Downsample(i64),
    /// Drop without flushing, like a crash after the last acknowledged append.
    Crash,
    CloseAndReopen,
}

fn op() -> impl Strategy<Value = Op> {
    let sample = (0i64..3_000_000, -50i32..50);
    let series = (0usize..5, prop::collection::vec(sample, 0..20));
    prop_oneof![
        6 => prop::collection::vec(series, 1..5).prop_map(Op::Append),
        1 => Just(Op::Flush),
        1 => (0i64..3_500_000).prop_map(Op::Downsample),
        1 => Just(Op::Crash),
        1 => Just(Op::CloseAndReopen),
    ]
}

fn series_labels(i: usize) -> Vec<(String, String)> {
    // label order varies on purpose; identity must not depend on it
    let mut l = vec![
        ("__name__".to_string(), format!("m{}", i % 2)),
        ("idx".to_string(), i.to_string()),
    ];
    if i.is_multiple_of(2) {
        l.reverse();
    }
    l
}

type Model = BTreeMap<Labels, Vec<Sample>>;

fn apply_model(model: &mut Model, batch: &[(usize, Vec<(i64, i32)>)]) {
    for (i, samples) in batch {
        let series = model.entry(Labels::new(series_labels(*i))).or_default();
        for &(ts, v) in samples {
            if series.last().is_none_or(|l| ts > l.timestamp_ms) {
                series.push(Sample {
                    timestamp_ms: ts,
                    value: f64::from(v),
                });
            }
        }
    }
}

fn check(db: &Tsdb, model: &Model) -> Result<(), TestCaseError> {
    let all = Selector::parse(r#"{__name__=~"m.*"}"#).unwrap();
    let got = db
        .query_range(&all, i64::MIN, i64::MAX, None, Aggregation::Last)
        .unwrap();
    let want: Vec<(&Labels, &Vec<Sample>)> = model.iter().filter(|(_, s)| !s.is_empty()).collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, (wl, ws)) in got.iter().zip(&want) {
        prop_assert_eq!(&g.labels, *wl);
        prop_assert_eq!(&g.points, *ws);
    }
    prop_assert_eq!(db.series(&all).len(), model.len());
    // stepped queries use the 5 minute tier wherever blocks exist; values are small integers so sums are exact
    for agg in [
        Aggregation::Sum,
        Aggregation::Count,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Last,
    ] {
        let got = db.query_range(&all, 0, 3_000_000, Some(STEP), agg).unwrap();
        prop_assert_eq!(got.len(), want.len());
        for (g, (_, ws)) in got.iter().zip(&want) {
            let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for s in ws.iter() {
                buckets
                    .entry(s.timestamp_ms / STEP * STEP)
                    .or_default()
                    .push(s.value);
            }
            let expected: Vec<Sample> = buckets
                .into_iter()
                .map(|(t, vs)| {
                    let value = match agg {
                        Aggregation::Sum => vs.iter().sum(),
                        Aggregation::Count => vs.len() as f64,
                        Aggregation::Min => vs.iter().copied().fold(f64::INFINITY, f64::min),
                        Aggregation::Max => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        _ => vs[vs.len() - 1],
                    };
                    Sample {
                        timestamp_ms: t,
                        value,
                    }
                })
                .collect();
            prop_assert_eq!(&g.points, &expected, "{:?} {}", agg, g.labels);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_query_back_exactly(ops in prop::collection::vec(op(), 1..25), head_max in 5usize..200) {
        let dir = tempfile::tempdir().unwrap();
        let options = Options { fsync: false, head_max_samples: head_max, ..Options::default() };
        let mut db = Tsdb::open(dir.path(), options.clone()).unwrap();
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Append(batch) => {
                    let input = batch
                        .iter()
                        .map(|(i, s)| InputSeries {
                            labels: series_labels(*i),
                            samples: s.iter().map(|&(t, v)| Sample { timestamp_ms: t, value: f64::from(v) }).collect(),
                        })
                        .collect();
                    db.append(input).unwrap();
                    apply_model(&mut model, &batch);
                }
                Op::Flush => db.flush().unwrap(),
                Op::Downsample(now) => {
                    db.downsample(now, 0).unwrap();
                }
                Op::Crash => {
                    drop(db);
                    db = Tsdb::open(dir.path(), options.clone()).unwrap();
                }
                Op::CloseAndReopen => {
                    db.close().unwrap();
                    db = Tsdb::open(dir.path(), options.clone()).unwrap();
                }
            }
            check(&db, &model)?;
        }
    }
}
