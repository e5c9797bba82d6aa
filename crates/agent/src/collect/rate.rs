//! Turning monotonically increasing kernel counters into per-second rates, surviving counter
//! wraps, counter resets, reboots, clock steps and vanished series.
//!
//! State lives only in memory: an agent restart starts with an empty tracker, so the first
//! collection after a restart emits no rate series at all (every series is "first sight").

use std::collections::HashMap;

use crate::collect::Sample;

/// Series not updated for this long are forgotten, so removed interfaces or disks do not keep
/// memory forever.
pub const DEFAULT_FORGET_AFTER_MS: i64 = 10 * 60 * 1000;

/// `btime` in /proc/stat is derived from the wall clock minus uptime and can move by a second
/// when the clock is adjusted; a reboot moves it by at least the previous boot's uptime.
pub const BOOT_TIME_TOLERANCE_SECS: u64 = 2;

/// Whether two boot times (Unix seconds, from /proc/stat `btime`) belong to the same boot.
pub fn same_boot(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= BOOT_TIME_TOLERANCE_SECS
}

/// Identity of one counter series: metric name plus labels (without host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(metric: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Previous {
    value: u64,
    at_ms: i64,
    boot_time: u64,
}

/// Previous value, time and boot time of every counter series a collector has seen.
#[derive(Debug)]
pub struct CounterTracker {
    series: HashMap<SeriesKey, Previous>,
    forget_after_ms: i64,
}

impl Default for CounterTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterTracker {
    /// A tracker that forgets series unseen for [`DEFAULT_FORGET_AFTER_MS`].
    pub fn new() -> Self {
        Self::with_forget_after(DEFAULT_FORGET_AFTER_MS)
    }

    pub fn with_forget_after(forget_after_ms: i64) -> Self {
        Self {
            series: HashMap::new(),
            forget_after_ms: forget_after_ms.max(0),
        }
    }

    /// Per-second rate of `key` since its previous value, or `None` when there is no honest
    /// rate for this interval:
    ///
    /// - first sight of the series;
    /// - elapsed time ≤ 0 (a repeated timestamp keeps the older point; a clock step backwards
    ///   restarts the series from this point);
    /// - boot time changed (the host rebooted, counters restarted from zero);
    /// - value went down and is not a plausible 32-bit wrap (counter reset, e.g. a device was
    ///   re-created): the new value is remembered and the next interval has a rate again.
    ///
    /// A value below the previous one is a 32-bit wrap when the previous value fits in 32 bits
    /// and the wrapped delta `(u32::MAX - prev) + value + 1` is below 2^31. The result is never
    /// negative, NaN or infinite.
    pub fn rate(
        &mut self,
        key: &SeriesKey,
        value: u64,
        now_ms: i64,
        boot_time: u64,
    ) -> Option<f64> {
        let current = Previous {
            value,
            at_ms: now_ms,
            boot_time,
        };
        let Some(prev) = self.series.get_mut(key) else {
            self.series.insert(key.clone(), current);
            return None;
        };
        if !same_boot(prev.boot_time, boot_time) {
            *prev = current;
            return None;
        }
        let elapsed_ms = match now_ms.checked_sub(prev.at_ms) {
            Some(0) => return None,
            Some(ms) if ms > 0 => ms,
            _ => {
                *prev = current;
                return None;
            }
        };
        let delta = counter_delta(prev.value, value);
        *prev = current;
        let rate = delta? as f64 * 1000.0 / elapsed_ms as f64;
        (rate.is_finite() && rate >= 0.0).then_some(rate)
    }

    /// Drop series whose last point is more than the forget-after period away from `now_ms`
    /// (in either direction, so a clock step cannot pin entries forever).
    pub fn forget_stale(&mut self, now_ms: i64) {
        let limit = self.forget_after_ms.unsigned_abs();
        self.series
            .retain(|_, prev| now_ms.abs_diff(prev.at_ms) <= limit);
    }

    /// Number of series currently remembered.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Compute the rate of a counter and, when there is one, push it (times `scale`, e.g. 512
    /// for sectors to bytes) as a sample named `metric`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_rate(
        &mut self,
        out: &mut Vec<Sample>,
        metric: &str,
        labels: &[(&str, &str)],
        value: u64,
        now_ms: i64,
        boot_time: u64,
        scale: f64,
    ) -> Option<f64> {
        let key = SeriesKey::new(metric, labels);
        let rate = self.rate(&key, value, now_ms, boot_time)? * scale;
        if !rate.is_finite() {
            return None;
        }
        out.push(Sample {
            name: key.metric,
            labels: key.labels,
            value: rate,
        });
        Some(rate)
    }
}

/// Increase from `prev` to `value`, or `None` for a counter reset.
fn counter_delta(prev: u64, value: u64) -> Option<u64> {
    if value >= prev {
        return Some(value - prev);
    }
    let max32 = u64::from(u32::MAX);
    if prev <= max32 {
        // value < prev <= u32::MAX, so this cannot overflow.
        let wrapped = (max32 - prev) + value + 1;
        if wrapped < 1 << 31 {
            return Some(wrapped);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOOT: u64 = 1_700_000_000;

    fn key() -> SeriesKey {
        SeriesKey::new(
            "host_network_receive_bytes_per_second",
            &[("interface", "eth0")],
        )
    }

    #[test]
    fn first_sight_has_no_rate_then_rate_per_second() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 1_000, 0, BOOT), None);
        assert_eq!(t.rate(&key(), 51_000, 10_000, BOOT), Some(5_000.0));
        assert_eq!(t.rate(&key(), 51_000, 20_000, BOOT), Some(0.0));
    }

    #[test]
    fn series_are_independent() {
        let mut t = CounterTracker::new();
        let other = SeriesKey::new(
            "host_network_receive_bytes_per_second",
            &[("interface", "eth1")],
        );
        assert_eq!(t.rate(&key(), 0, 0, BOOT), None);
        assert_eq!(t.rate(&other, 100, 0, BOOT), None);
        assert_eq!(t.rate(&key(), 1_000, 1_000, BOOT), Some(1_000.0));
        assert_eq!(t.rate(&other, 300, 1_000, BOOT), Some(200.0));
    }

    #[test]
    fn thirty_two_bit_wrap_gives_the_right_rate() {
        let mut t = CounterTracker::new();
        let prev = u64::from(u32::MAX) - 999;
        assert_eq!(t.rate(&key(), prev, 0, BOOT), None);
        // 1_000 steps to reach 2^32 (wrapping to 0), then 4_000 more.
        assert_eq!(t.rate(&key(), 4_000, 10_000, BOOT), Some(500.0));
        assert_eq!(t.rate(&key(), 14_000, 20_000, BOOT), Some(1_000.0));
    }

    #[test]
    fn reset_gives_none_then_correct_rates() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 5_000_000_000_000, 0, BOOT), None);
        assert_eq!(
            t.rate(&key(), 5_000_000_010_000, 10_000, BOOT),
            Some(1_000.0)
        );
        assert_eq!(t.rate(&key(), 100, 20_000, BOOT), None);
        assert_eq!(t.rate(&key(), 20_100, 30_000, BOOT), Some(2_000.0));
    }

    #[test]
    fn small_counter_going_down_far_is_a_reset_not_a_wrap() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 1_000_000, 0, BOOT), None);
        // wrapped delta would be ~4.29e9 > 2^31: a reset.
        assert_eq!(t.rate(&key(), 10, 10_000, BOOT), None);
        assert_eq!(t.rate(&key(), 110, 20_000, BOOT), Some(10.0));
    }

    #[test]
    fn reboot_gives_none_even_when_counter_grew() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 100, 0, BOOT), None);
        assert_eq!(t.rate(&key(), 1_000_000, 10_000, BOOT + 3_600), None);
        assert_eq!(
            t.rate(&key(), 1_010_000, 20_000, BOOT + 3_600),
            Some(1_000.0)
        );
    }

    #[test]
    fn boot_time_jitter_is_not_a_reboot() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 0, 0, BOOT), None);
        assert_eq!(t.rate(&key(), 10_000, 10_000, BOOT + 1), Some(1_000.0));
    }

    #[test]
    fn non_positive_elapsed_gives_none() {
        let mut t = CounterTracker::new();
        assert_eq!(t.rate(&key(), 0, 10_000, BOOT), None);
        assert_eq!(t.rate(&key(), 500, 10_000, BOOT), None, "same timestamp");
        // the older point is kept, so the next interval covers both
        assert_eq!(t.rate(&key(), 1_000, 11_000, BOOT), Some(1_000.0));
        assert_eq!(
            t.rate(&key(), 2_000, 5_000, BOOT),
            None,
            "clock stepped back"
        );
        assert_eq!(t.rate(&key(), 3_000, 6_000, BOOT), Some(1_000.0));
    }

    #[test]
    fn stale_series_are_forgotten() {
        let mut t = CounterTracker::with_forget_after(60_000);
        let other = SeriesKey::new("m", &[("interface", "veth0")]);
        t.rate(&key(), 0, 0, BOOT);
        t.rate(&other, 0, 0, BOOT);
        t.rate(&key(), 10, 50_000, BOOT);
        t.forget_stale(70_000);
        assert_eq!(t.len(), 1);
        // the forgotten series starts over
        assert_eq!(t.rate(&other, 10, 70_000, BOOT), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn push_rate_scales_and_labels() {
        let mut t = CounterTracker::new();
        let mut out = Vec::new();
        let labels = [("device", "sda")];
        assert_eq!(t.push_rate(&mut out, "m", &labels, 0, 0, BOOT, 512.0), None);
        assert!(out.is_empty());
        assert_eq!(
            t.push_rate(&mut out, "m", &labels, 20, 10_000, BOOT, 512.0),
            Some(1024.0)
        );
        assert_eq!(out, vec![Sample::with_labels("m", &labels, 1024.0)]);
    }

    fn counter_value() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0..=u64::from(u32::MAX),
            (u64::from(u32::MAX) - 1_000)..=u64::from(u32::MAX),
            Just(0),
            Just(u64::MAX),
        ]
    }

    fn step() -> impl Strategy<Value = (u64, i64, u64)> {
        (
            counter_value(),
            prop_oneof![any::<i64>(), -20_000i64..=60_000, Just(0)],
            prop_oneof![Just(BOOT), Just(BOOT + 1), any::<u64>()],
        )
    }

    proptest! {
        #[test]
        fn rate_is_never_negative_nan_or_infinite(
            steps in proptest::collection::vec(step(), 1..64),
            start in any::<i64>(),
        ) {
            let mut t = CounterTracker::with_forget_after(30_000);
            let mut now = start;
            for (value, dt, boot) in steps {
                now = now.wrapping_add(dt);
                if let Some(r) = t.rate(&key(), value, now, boot) {
                    prop_assert!(r.is_finite(), "rate {r} not finite");
                    prop_assert!(r >= 0.0, "rate {r} negative");
                }
                t.forget_stale(now);
                prop_assert!(t.len() <= 1);
            }
        }

        #[test]
        fn increasing_counter_rate_is_exact(
            deltas in proptest::collection::vec((0u64..1_000_000_000, 1i64..120_000), 1..32),
        ) {
            let mut t = CounterTracker::new();
            let (mut value, mut now) = (7u64, 1_000i64);
            prop_assert_eq!(t.rate(&key(), value, now, BOOT), None);
            for (dv, dt) in deltas {
                value += dv;
                now += dt;
                let r = t.rate(&key(), value, now, BOOT);
                prop_assert_eq!(r, Some(dv as f64 * 1000.0 / dt as f64));
            }
        }
    }
}
