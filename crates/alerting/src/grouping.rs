//! Grouping: gather alerts that arrive together for one key (a platform) into one notification.
//!
//! A pure state machine: the first item for a key opens a batch due `group_wait` later; items pushed before
//! then join it; [`Grouper::due`] hands out the batches whose time has come. When a platform fails as a
//! whole (its database goes down and ten monitors follow), the NOC gets one message instead of ten.

use std::collections::BTreeMap;

use crate::policy_config::DEFAULT_GROUP_WAIT_MS;

/// Default largest batch: a batch that reaches it is due at once, which bounds memory per key.
pub const DEFAULT_MAX_BATCH_ITEMS: usize = 1000;

/// Batches of `Item` per `Key`, each due `group_wait` after its first item.
#[derive(Debug, Clone)]
pub struct Grouper<Key, Item> {
    default_wait_ms: i64,
    max_batch_items: usize,
    batches: BTreeMap<Key, Batch<Item>>,
}

#[derive(Debug, Clone)]
struct Batch<Item> {
    due_at_ms: i64,
    items: Vec<Item>,
}

impl<Key: Ord + Clone, Item> Default for Grouper<Key, Item> {
    fn default() -> Self {
        Grouper::new(DEFAULT_GROUP_WAIT_MS, DEFAULT_MAX_BATCH_ITEMS)
    }
}

impl<Key: Ord + Clone, Item> Grouper<Key, Item> {
    /// A grouper whose batches wait `default_wait_ms` and hold at most `max_batch_items` (at least 1).
    pub fn new(default_wait_ms: i64, max_batch_items: usize) -> Self {
        Grouper {
            default_wait_ms: default_wait_ms.max(0),
            max_batch_items: max_batch_items.max(1),
            batches: BTreeMap::new(),
        }
    }

    /// Adds an item at `now_ms`; the first item of a key opens a batch due `default_wait_ms` later.
    pub fn push(&mut self, key: Key, item: Item, now_ms: i64) {
        self.push_with_wait(key, item, now_ms, self.default_wait_ms);
    }

    /// Adds an item; a new batch waits `wait_ms` (the route's `group_wait`). An open batch keeps its deadline:
    /// later items never delay it.
    pub fn push_with_wait(&mut self, key: Key, item: Item, now_ms: i64, wait_ms: i64) {
        let batch = self.batches.entry(key).or_insert_with(|| Batch {
            due_at_ms: now_ms.saturating_add(wait_ms.max(0)),
            items: Vec::new(),
        });
        batch.items.push(item);
        if batch.items.len() >= self.max_batch_items {
            // Full: hand it out at the next `due` call rather than grow without bound.
            batch.due_at_ms = batch.due_at_ms.min(now_ms);
        }
    }

    /// Removes and returns the batches due at `now_ms`, earliest deadline first (then by key).
    pub fn due(&mut self, now_ms: i64) -> Vec<(Key, Vec<Item>)> {
        let due_keys: Vec<(i64, Key)> = self
            .batches
            .iter()
            .filter(|(_, batch)| batch.due_at_ms <= now_ms)
            .map(|(key, batch)| (batch.due_at_ms, key.clone()))
            .collect();
        let mut due_keys = due_keys;
        due_keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        due_keys
            .into_iter()
            .filter_map(|(_, key)| {
                let batch = self.batches.remove(&key)?;
                Some((key, batch.items))
            })
            .collect()
    }

    /// The earliest deadline of an open batch: when to call [`Grouper::due`] next.
    pub fn next_deadline(&self) -> Option<i64> {
        self.batches.values().map(|batch| batch.due_at_ms).min()
    }

    /// Number of open batches.
    pub fn open_batches(&self) -> usize {
        self.batches.len()
    }

    /// Whether no batch is open.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_one_key_within_the_wait_form_one_batch() {
        let mut grouper: Grouper<&str, u32> = Grouper::default();
        assert_eq!(grouper.next_deadline(), None);
        grouper.push("acme-prod", 1, 1_000);
        grouper.push("acme-prod", 2, 1_200);
        grouper.push("other", 10, 1_300);
        grouper.push("acme-prod", 3, 1_499);
        assert_eq!(grouper.next_deadline(), Some(1_500));
        assert_eq!(grouper.due(1_499), vec![]);
        assert_eq!(grouper.due(1_500), vec![("acme-prod", vec![1, 2, 3])]);
        assert_eq!(grouper.next_deadline(), Some(1_800));
        // An item after the batch went out opens a new batch.
        grouper.push("acme-prod", 4, 1_600);
        assert_eq!(grouper.open_batches(), 2);
        assert_eq!(
            grouper.due(5_000),
            vec![("other", vec![10]), ("acme-prod", vec![4])]
        );
        assert!(grouper.is_empty());
        assert_eq!(grouper.next_deadline(), None);
    }

    #[test]
    fn later_items_never_delay_a_batch_and_waits_can_differ() {
        let mut grouper: Grouper<String, &str> = Grouper::new(500, 100);
        grouper.push_with_wait("p".into(), "a", 0, 10_000);
        grouper.push_with_wait("p".into(), "b", 9_000, 60_000);
        grouper.push("q".into(), "c", 100);
        assert_eq!(grouper.due(600), vec![("q".to_owned(), vec!["c"])]);
        assert_eq!(grouper.next_deadline(), Some(10_000));
        assert_eq!(grouper.due(10_000), vec![("p".to_owned(), vec!["a", "b"])]);
    }

    #[test]
    fn a_full_batch_is_due_at_once() {
        let mut grouper: Grouper<u8, usize> = Grouper::new(60_000, 3);
        for item in 0..3 {
            grouper.push(7, item, 100 + item as i64);
        }
        assert_eq!(grouper.next_deadline(), Some(102));
        assert_eq!(grouper.due(102), vec![(7, vec![0, 1, 2])]);
    }
}
