//! Flap detection storage: the times of a rule's recent state changes in a fixed-capacity,
//! heap-free array, and when flapping ends.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FlapPolicy;

/// The largest `FlapPolicy::max_changes` accepted: the capacity of [`ChangeTimes`].
pub const MAX_FLAP_CHANGES: u32 = 32;

const CAPACITY: usize = MAX_FLAP_CHANGES as usize;

/// The times of the most recent state changes, oldest first, at most [`MAX_FLAP_CHANGES`]
/// (and at most the policy's `max_changes`: older ones cannot matter).
///
/// A fixed array rather than a `Vec` so that cloning a `RuleState` never allocates.
/// Serialized as a JSON array of millisecond timestamps.
#[derive(Clone, Copy)]
pub struct ChangeTimes {
    times: [i64; CAPACITY],
    len: u8,
}

impl Default for ChangeTimes {
    fn default() -> ChangeTimes {
        ChangeTimes {
            times: [0; CAPACITY],
            len: 0,
        }
    }
}

// Slots past `len` hold stale times: equality looks at the recorded ones only.
impl PartialEq for ChangeTimes {
    fn eq(&self, other: &ChangeTimes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ChangeTimes {}

impl std::fmt::Debug for ChangeTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl ChangeTimes {
    /// The recorded change times, oldest first.
    pub fn as_slice(&self) -> &[i64] {
        self.times.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// How many change times are recorded.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no change time is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget every change time.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Forget the changes that are outside the window `(now_ms − window_ms, now_ms]`.
    pub(crate) fn prune(&mut self, now_ms: i64, window_ms: i64) {
        let oldest_kept_after = now_ms.saturating_sub(window_ms);
        let expired = self
            .as_slice()
            .iter()
            .take_while(|&&time| time <= oldest_kept_after)
            .count();
        if expired > 0 {
            self.times.copy_within(expired..usize::from(self.len), 0);
            // expired <= len <= CAPACITY, so it fits.
            self.len = self
                .len
                .saturating_sub(u8::try_from(expired).unwrap_or(u8::MAX));
        }
    }

    /// Record a change at `at_ms`, keeping at most `max_changes` (capped at the capacity)
    /// newest, and return how many changes are now in the window ending at `at_ms`.
    pub(crate) fn record(&mut self, at_ms: i64, window_ms: i64, max_changes: u32) -> u32 {
        self.prune(at_ms, window_ms);
        let keep = effective_max_changes(max_changes).max(1) as usize;
        while usize::from(self.len) >= keep {
            self.drop_oldest();
        }
        // Change times only grow in practice (transitions never go back in time); a persisted
        // state edited by hand is still kept sorted.
        let position = self.as_slice().partition_point(|&time| time <= at_ms);
        self.times
            .copy_within(position..usize::from(self.len), position + 1);
        if let Some(slot) = self.times.get_mut(position) {
            *slot = at_ms;
        }
        self.len += 1;
        u32::from(self.len)
    }

    fn drop_oldest(&mut self) {
        if self.len > 0 {
            self.times.copy_within(1..usize::from(self.len), 0);
            self.len -= 1;
        }
    }

    fn from_unsorted(mut times: Vec<i64>) -> ChangeTimes {
        times.sort_unstable();
        let newest = times
            .get(times.len().saturating_sub(CAPACITY)..)
            .unwrap_or(&[]);
        let mut change_times = ChangeTimes::default();
        for (slot, &time) in change_times.times.iter_mut().zip(newest) {
            *slot = time;
        }
        // newest.len() <= CAPACITY, so it fits.
        change_times.len = u8::try_from(newest.len()).unwrap_or(0);
        change_times
    }
}

/// `max_changes` capped at what [`ChangeTimes`] can hold.
pub(crate) fn effective_max_changes(max_changes: u32) -> u32 {
    max_changes.min(MAX_FLAP_CHANGES)
}

/// When a flapping rule stops flapping if no further change happens: the moment the count of
/// changes in the trailing window falls to `max_changes / 2`, i.e. when the
/// `(max_changes / 2 + 1)`-th newest change leaves the window. `i64::MIN` (now) when it is
/// already that low or flap detection was turned off.
pub(crate) fn end_deadline(changes: &ChangeTimes, policy: FlapPolicy) -> i64 {
    let max_changes = effective_max_changes(policy.max_changes);
    if max_changes == 0 {
        return i64::MIN;
    }
    let keep = (max_changes / 2) as usize;
    let times = changes.as_slice();
    match times.len().checked_sub(keep + 1) {
        Some(index) => times
            .get(index)
            .map_or(i64::MIN, |time| time.saturating_add(policy.window_ms)),
        None => i64::MIN,
    }
}

impl Serialize for ChangeTimes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChangeTimes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<i64>::deserialize(deserializer).map(ChangeTimes::from_unsorted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(change_times: &ChangeTimes) -> Vec<i64> {
        change_times.as_slice().to_vec()
    }

    #[test]
    fn record_prunes_the_window_and_counts() {
        let mut changes = ChangeTimes::default();
        assert_eq!(changes.record(100, 50, 6), 1);
        assert_eq!(changes.record(120, 50, 6), 2);
        assert_eq!(changes.record(149, 50, 6), 3);
        // 100 leaves the window (100 <= 150 - 50): the window is half-open (now - window, now].
        assert_eq!(changes.record(150, 50, 6), 3);
        assert_eq!(times(&changes), [120, 149, 150]);
    }

    #[test]
    fn record_keeps_only_max_changes_newest() {
        let mut changes = ChangeTimes::default();
        for time in 0..10 {
            changes.record(time, 1000, 4);
        }
        assert_eq!(times(&changes), [6, 7, 8, 9]);
        for time in 10..100 {
            changes.record(time, 1000, 500);
        }
        assert_eq!(changes.len(), CAPACITY);
        assert_eq!(changes.as_slice().first(), Some(&68));
        assert_eq!(changes.as_slice().last(), Some(&99));
    }

    #[test]
    fn record_keeps_out_of_order_times_sorted() {
        let mut changes = ChangeTimes::default();
        changes.record(10, 100, 6);
        changes.record(30, 100, 6);
        changes.record(20, 100, 6);
        changes.record(30, 100, 6);
        assert_eq!(times(&changes), [10, 20, 30, 30]);
    }

    #[test]
    fn end_deadline_is_when_half_remain() {
        let policy = FlapPolicy {
            window_ms: 100,
            max_changes: 6,
        };
        let mut changes = ChangeTimes::default();
        for time in [10, 20, 30, 40, 50, 60] {
            changes.record(time, policy.window_ms, policy.max_changes);
        }
        // 6 changes; count <= 3 once 10, 20 and 30 have left: at 30 + 100.
        assert_eq!(end_deadline(&changes, policy), 130);
        let mut at_deadline = changes;
        at_deadline.prune(130, policy.window_ms);
        assert_eq!(times(&at_deadline), [40, 50, 60]);
        let mut before = changes;
        before.prune(129, policy.window_ms);
        assert_eq!(before.len(), 4);
        assert_eq!(end_deadline(&ChangeTimes::default(), policy), i64::MIN);
        assert_eq!(end_deadline(&changes, FlapPolicy::OFF), i64::MIN);
    }

    #[test]
    fn serde_round_trip_sorts_and_caps() {
        let mut changes = ChangeTimes::default();
        changes.record(5, 100, 6);
        changes.record(7, 100, 6);
        let json = serde_json::to_string(&changes).unwrap();
        assert_eq!(json, "[5,7]");
        assert_eq!(serde_json::from_str::<ChangeTimes>(&json).unwrap(), changes);
        let unsorted: ChangeTimes = serde_json::from_str("[9,3,5]").unwrap();
        assert_eq!(times(&unsorted), [3, 5, 9]);
        let many: Vec<i64> = (0..40).collect();
        let capped: ChangeTimes =
            serde_json::from_str(&serde_json::to_string(&many).unwrap()).unwrap();
        assert_eq!(capped.len(), CAPACITY);
        assert_eq!(capped.as_slice().first(), Some(&8));
    }
}
