//! Read paths: series listing, latest samples and range queries across blocks, frozen heads and the head

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Frozen, SeriesPoints, Tsdb, read};
use crate::aggregate::{Agg, bucket_start};
use crate::block::{Block, to_buckets};
use crate::error::Error;
use crate::labels::{Labels, Sample};
use crate::selector::Selector;
use crate::{Aggregation, Tier};

const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
const ONE_HOUR_MS: i64 = 60 * 60 * 1000;

/// Tier for a step. A tier is only used when its bucket width divides the step, because a tier
/// bucket straddling two step buckets could not be split; otherwise the next finer tier is used.
pub(crate) fn tier_for_step(step_ms: Option<i64>) -> Tier {
    match step_ms {
        Some(s) if s >= ONE_HOUR_MS && s % ONE_HOUR_MS == 0 => Tier::OneHour,
        Some(s) if s >= FIVE_MINUTES_MS && s % FIVE_MINUTES_MS == 0 => Tier::FiveMinutes,
        _ => Tier::Raw,
    }
}

/// Everything a query needs, captured under one short read lock.
struct Snapshot {
    series: Vec<(u64, Labels)>,
    blocks: Vec<Arc<Block>>,
    frozen: Vec<Arc<Frozen>>,
    head: BTreeMap<u64, Vec<Sample>>,
}

fn in_range(samples: &[Sample], lo: i64, hi: i64) -> &[Sample] {
    let a = samples.partition_point(|s| s.timestamp_ms < lo);
    let b = samples.partition_point(|s| s.timestamp_ms <= hi);
    if a < b { &samples[a..b] } else { &[] }
}

impl Tsdb {
    /// Label sets of all series matching `selector`, sorted.
    pub fn series(&self, selector: &Selector) -> Vec<Labels> {
        let st = read(&self.state);
        let mut out: Vec<Labels> = st
            .matching(selector)
            .into_iter()
            .filter_map(|id| st.series.get(&id).map(|e| e.labels.clone()))
            .collect();
        out.sort();
        out
    }

    /// The last accepted sample of every matching series that has one, sorted by labels.
    pub fn latest(&self, selector: &Selector) -> Vec<(Labels, Sample)> {
        let st = read(&self.state);
        let mut out: Vec<(Labels, Sample)> = st
            .matching(selector)
            .into_iter()
            .filter_map(|id| {
                st.series
                    .get(&id)
                    .and_then(|e| Some((e.labels.clone(), e.last?)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Samples (step `None`) or per-step aggregates of matching series in `[start_ms, end_ms]`.
    ///
    /// With a step, points are stamped with the start of their epoch-aligned `[t, t+step)` bucket.
    /// When a tier is used, the range is widened to whole tier buckets at the edges.
    pub fn query_range(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: Option<i64>,
        aggregation: Aggregation,
    ) -> Result<Vec<SeriesPoints>, Error> {
        if start_ms > end_ms {
            return Err(Error::InvalidInput(format!(
                "start {start_ms} is after end {end_ms}"
            )));
        }
        if step_ms.is_some_and(|s| s <= 0) {
            return Err(Error::InvalidInput("step must be positive".to_string()));
        }
        let tier = tier_for_step(step_ms);
        let lo = tier
            .bucket_ms()
            .map_or(start_ms, |w| bucket_start(start_ms, w));
        let snap = self.snapshot(selector, lo, end_ms);
        let mut out = Vec::new();
        for (id, labels) in &snap.series {
            let use_tier = tier != Tier::Raw
                && snap.blocks.iter().any(|b| {
                    b.tier == tier
                        && b.entry(*id)
                            .is_some_and(|e| e.max_ts >= lo && e.min_ts <= end_ms)
                });
            let (used, points) = if use_tier {
                (
                    tier,
                    self.tier_points(&snap, *id, tier, lo, end_ms, step_ms, aggregation)?,
                )
            } else {
                let samples = self.raw_samples(&snap, *id, start_ms, end_ms)?;
                let points = match step_ms {
                    None => samples,
                    Some(step) => to_buckets(&samples, step)
                        .into_iter()
                        .map(|(t, agg)| Sample {
                            timestamp_ms: t,
                            value: agg.value(aggregation),
                        })
                        .collect(),
                };
                (Tier::Raw, points)
            };
            if !points.is_empty() {
                out.push(SeriesPoints {
                    labels: labels.clone(),
                    tier: used,
                    points,
                });
            }
        }
        Ok(out)
    }

    fn snapshot(&self, selector: &Selector, lo: i64, hi: i64) -> Snapshot {
        let st = read(&self.state);
        let mut series: Vec<(u64, Labels)> = st
            .matching(selector)
            .into_iter()
            .filter_map(|id| st.series.get(&id).map(|e| (id, e.labels.clone())))
            .collect();
        series.sort_by(|a, b| a.1.cmp(&b.1));
        let head = series
            .iter()
            .filter_map(|(id, _)| {
                st.series
                    .get(id)
                    .filter(|e| !e.head.is_empty())
                    .map(|e| (*id, in_range(&e.head, lo, hi).to_vec()))
            })
            .collect();
        Snapshot {
            series,
            blocks: st
                .blocks
                .iter()
                .filter(|b| b.max_ts >= lo && b.min_ts <= hi)
                .cloned()
                .collect(),
            frozen: st.frozen.clone(),
            head,
        }
    }

    /// Raw samples in `[lo, hi]` from raw blocks, frozen heads and the head, in time order.
    fn raw_samples(
        &self,
        snap: &Snapshot,
        id: u64,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<Sample>, Error> {
        let mut out = Vec::new();
        for b in snap.blocks.iter().filter(|b| b.tier == Tier::Raw) {
            if let Some(e) = b.entry(id).filter(|e| e.max_ts >= lo && e.min_ts <= hi) {
                out.extend_from_slice(in_range(&b.read_raw(e)?, lo, hi));
            }
        }
        self.unsealed(snap, id, lo, hi, &mut out);
        // sources never overlap for one series by construction; sorting keeps results exact even if they did
        out.sort_by_key(|s| s.timestamp_ms);
        out.dedup_by_key(|s| s.timestamp_ms);
        Ok(out)
    }

    fn unsealed(&self, snap: &Snapshot, id: u64, lo: i64, hi: i64, out: &mut Vec<Sample>) {
        for f in &snap.frozen {
            out.extend_from_slice(in_range(f.samples(id), lo, hi));
        }
        if let Some(s) = snap.head.get(&id) {
            out.extend_from_slice(in_range(s, lo, hi));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tier_points(
        &self,
        snap: &Snapshot,
        id: u64,
        tier: Tier,
        lo: i64,
        hi: i64,
        step_ms: Option<i64>,
        aggregation: Aggregation,
    ) -> Result<Vec<Sample>, Error> {
        let width = tier.bucket_ms().unwrap_or(1);
        let mut buckets: BTreeMap<i64, Agg> = BTreeMap::new();
        let mut merge = |start: i64, agg: &Agg| {
            buckets
                .entry(start)
                .and_modify(|cur| cur.merge(agg))
                .or_insert(*agg);
        };
        // blocks are in seal order, then frozen, then head: each source is later than the previous,
        // which is what `Agg::merge` needs for `last`. A seal not downsampled yet contributes
        // buckets computed from its raw block, over the same whole buckets a tier block covers.
        let hi_full = bucket_start(hi, width).saturating_add(width - 1);
        for (i, b) in snap.blocks.iter().enumerate() {
            // a seal has at most three blocks and they are adjacent (sorted by seal, tier)
            let has_tier = snap.blocks[i.saturating_sub(2)..(i + 3).min(snap.blocks.len())]
                .iter()
                .any(|o| o.seal_id == b.seal_id && o.tier == tier);
            let Some(e) = b.entry(id).filter(|e| e.max_ts >= lo && e.min_ts <= hi) else {
                continue;
            };
            if b.tier == tier {
                for (start, agg) in b.read_tier(e)? {
                    if start >= lo && start <= hi {
                        merge(start, &agg);
                    }
                }
            } else if b.tier == Tier::Raw && !has_tier {
                for (start, agg) in to_buckets(in_range(&b.read_raw(e)?, lo, hi_full), width) {
                    merge(start, &agg);
                }
            }
        }
        let mut rest = Vec::new();
        self.unsealed(snap, id, lo, hi, &mut rest);
        for (start, agg) in to_buckets(&rest, width) {
            merge(start, &agg);
        }
        let step = step_ms.unwrap_or(width);
        let mut stepped: BTreeMap<i64, Agg> = BTreeMap::new();
        for (start, agg) in buckets {
            stepped
                .entry(bucket_start(start, step))
                .and_modify(|cur| cur.merge(&agg))
                .or_insert(agg);
        }
        Ok(stepped
            .into_iter()
            .map(|(t, agg)| Sample {
                timestamp_ms: t,
                value: agg.value(aggregation),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_picks_tier() {
        assert_eq!(tier_for_step(None), Tier::Raw);
        assert_eq!(tier_for_step(Some(60_000)), Tier::Raw);
        assert_eq!(tier_for_step(Some(FIVE_MINUTES_MS)), Tier::FiveMinutes);
        assert_eq!(tier_for_step(Some(30 * 60_000)), Tier::FiveMinutes);
        assert_eq!(tier_for_step(Some(7 * 60_000)), Tier::Raw);
        assert_eq!(tier_for_step(Some(ONE_HOUR_MS)), Tier::OneHour);
        assert_eq!(tier_for_step(Some(24 * ONE_HOUR_MS)), Tier::OneHour);
        assert_eq!(
            tier_for_step(Some(ONE_HOUR_MS + FIVE_MINUTES_MS)),
            Tier::FiveMinutes
        );
    }
}
