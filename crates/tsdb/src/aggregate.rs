//! Mergeable per-bucket aggregates (min, max, sum, count, last) used by tiers and step queries

use crate::Aggregation;

/// Aggregate of the samples in one bucket; two aggregates of adjacent time ranges merge exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Agg {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    pub last: f64,
}

impl Agg {
    pub(crate) fn one(v: f64) -> Agg {
        Agg {
            min: v,
            max: v,
            sum: v,
            count: 1,
            last: v,
        }
    }

    /// Adds a sample that is later than everything already aggregated.
    pub(crate) fn add(&mut self, v: f64) {
        self.merge(&Agg::one(v));
    }

    /// Folds in an aggregate of later samples; `f64::min`/`max` skip NaN so one NaN does not hide the range.
    pub(crate) fn merge(&mut self, later: &Agg) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.last = later.last;
    }

    pub(crate) fn value(&self, aggregation: Aggregation) -> f64 {
        match aggregation {
            Aggregation::Avg => self.sum / self.count as f64,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Count => self.count as f64,
            Aggregation::Last => self.last,
            Aggregation::Sum => self.sum,
        }
    }
}

/// Start of the epoch-aligned bucket of width `width` containing `ts` (also right for negative timestamps).
pub(crate) fn bucket_start(ts: i64, width: i64) -> i64 {
    ts - ts.rem_euclid(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_equals_aggregating_everything() {
        let values = [3.0, -1.0, 7.5, 2.0, 2.0];
        let mut whole = Agg::one(values[0]);
        for v in &values[1..] {
            whole.add(*v);
        }
        let mut left = Agg::one(values[0]);
        left.add(values[1]);
        let mut right = Agg::one(values[2]);
        right.add(values[3]);
        right.add(values[4]);
        left.merge(&right);
        assert_eq!(left, whole);
        assert_eq!(whole.value(Aggregation::Min), -1.0);
        assert_eq!(whole.value(Aggregation::Max), 7.5);
        assert_eq!(whole.value(Aggregation::Count), 5.0);
        assert_eq!(whole.value(Aggregation::Sum), 13.5);
        assert_eq!(whole.value(Aggregation::Avg), 2.7);
        assert_eq!(whole.value(Aggregation::Last), 2.0);
    }

    #[test]
    fn buckets_align_to_epoch() {
        assert_eq!(bucket_start(0, 300_000), 0);
        assert_eq!(bucket_start(299_999, 300_000), 0);
        assert_eq!(bucket_start(300_000, 300_000), 300_000);
        assert_eq!(bucket_start(-1, 300_000), -300_000);
    }
}
