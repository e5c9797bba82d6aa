//! The Tsdb handle: options, series registry, head, appends, sealing, retention and stats
//!
//! Locking: `writer` serializes appends and wal rotation; `state` (registry, head, frozen heads,
//! blocks) is only write-locked for short in-memory updates, so queries run concurrently with the
//! fsync of an append and with block compression; `seal_lock` lets one seal run at a time.

mod open;
mod query;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use crate::Tier;
use crate::block::{Block, write_seal};
use crate::error::Error;
use crate::labels::{InputSeries, Labels, Sample};
use crate::selector::Selector;
use crate::wal::{self, Wal, record};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Engine configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub raw_retention_ms: i64,
    pub tier_5m_retention_ms: i64,
    pub tier_1h_retention_ms: i64,
    /// The head is sealed into blocks once it holds more samples than this.
    pub head_max_samples: usize,
    /// fsync the wal before acknowledging appends (and block files before publishing them).
    pub fsync: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            raw_retention_ms: 15 * DAY_MS,
            tier_5m_retention_ms: 90 * DAY_MS,
            tier_1h_retention_ms: 730 * DAY_MS,
            head_max_samples: 2_000_000,
            fsync: true,
        }
    }
}

impl Options {
    fn retention_ms(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.raw_retention_ms,
            Tier::FiveMinutes => self.tier_5m_retention_ms,
            Tier::OneHour => self.tier_1h_retention_ms,
        }
    }
}

/// What one `append` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendStats {
    /// Samples accepted and made durable.
    pub samples: u64,
    /// Series seen for the first time.
    pub new_series: u64,
    /// Samples dropped because their timestamp was not after the series' last accepted one.
    pub out_of_order: u64,
}

/// Cheap counters describing the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbStats {
    pub series: u64,
    pub head_samples: u64,
    pub blocks: u64,
    pub bytes_on_disk: u64,
    pub samples_appended_total: u64,
    pub out_of_order_total: u64,
}

/// Query result for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub labels: Labels,
    /// The tier the points were computed from (raw when a tier had no data for the range).
    pub tier: Tier,
    pub points: Vec<Sample>,
}

#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    /// Last accepted sample; drives out-of-order rejection and `latest`.
    last: Option<Sample>,
}

/// A head that is being written to blocks; stays queryable until its blocks are visible.
#[derive(Debug)]
struct Frozen {
    /// Highest wal segment whose data it holds; equals the seal directory name.
    seal_id: u64,
    /// Sorted by labels.
    series: Vec<(Labels, Vec<Sample>)>,
    by_id: HashMap<u64, usize>,
}

impl Frozen {
    fn samples(&self, id: u64) -> &[Sample] {
        self.by_id
            .get(&id)
            .map_or(&[], |&i| self.series[i].1.as_slice())
    }
}

#[derive(Debug, Default)]
struct State {
    series: HashMap<u64, SeriesEntry>,
    by_labels: HashMap<Labels, u64>,
    by_name: HashMap<String, Vec<u64>>,
    next_id: u64,
    head: HashMap<u64, Vec<Sample>>,
    head_samples: usize,
    frozen: Vec<Arc<Frozen>>,
    /// Ordered by (seal id, tier).
    blocks: Vec<Arc<Block>>,
}

impl State {
    fn register(&mut self, id: u64, labels: Labels, last: Option<Sample>) {
        if let Some(name) = labels.name() {
            self.by_name.entry(name.to_string()).or_default().push(id);
        }
        self.by_labels.insert(labels.clone(), id);
        self.series.insert(id, SeriesEntry { labels, last });
        self.next_id = self.next_id.max(id + 1);
    }

    /// Ids of series matching `selector`, using the name index when the name is pinned.
    fn matching(&self, selector: &Selector) -> Vec<u64> {
        let check = |id: &u64| {
            self.series
                .get(id)
                .is_some_and(|e| selector.matches(&e.labels))
        };
        match selector.metric_name() {
            Some(name) => self
                .by_name
                .get(name)
                .map(|ids| ids.iter().copied().filter(check).collect())
                .unwrap_or_default(),
            None => self.series.keys().copied().filter(check).collect(),
        }
    }

    /// Wal records re-declaring every series, written at the start of each segment so that
    /// deleting older segments never loses a series definition.
    fn snapshot_records(&self) -> Vec<Vec<u8>> {
        let mut defs: Vec<(u64, &Labels)> =
            self.series.iter().map(|(id, e)| (*id, &e.labels)).collect();
        defs.sort_unstable_by_key(|d| d.0);
        defs.chunks(10_000)
            .map(|chunk| {
                let mut buf = Vec::new();
                record::encode(chunk, &[], &mut buf);
                buf
            })
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic elsewhere must not wedge the database; the protected data stays consistent
    // because every critical section either completes or returns before mutating
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An embedded time-series database rooted at one directory.
pub struct Tsdb {
    wal_dir: PathBuf,
    blocks_dir: PathBuf,
    options: Options,
    writer: Mutex<Wal>,
    state: RwLock<State>,
    seal_lock: Mutex<()>,
    series_count: AtomicU64,
    head_samples: AtomicU64,
    block_count: AtomicU64,
    wal_bytes: AtomicU64,
    block_bytes: AtomicU64,
    samples_total: AtomicU64,
    out_of_order_total: AtomicU64,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("wal_dir", &self.wal_dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Tsdb {
    /// Appends samples; returns only after the accepted samples are in the wal (fsynced when
    /// `options.fsync`). Samples not strictly after their series' last accepted timestamp are dropped.
    pub fn append(&self, series: Vec<InputSeries>) -> Result<AppendStats, Error> {
        let mut stats = AppendStats::default();
        let mut wal = lock(&self.writer);
        let mut new_defs: Vec<(u64, Labels)> = Vec::new();
        let mut new_ids: HashMap<Labels, u64> = HashMap::new();
        let mut accepted: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
        let mut batch_last: HashMap<u64, i64> = HashMap::new();
        {
            // registry and `last` only change under the writer lock, so this view stays valid
            let st = read(&self.state);
            let mut next_id = st.next_id;
            for input in series {
                let labels = Labels::new(input.labels);
                if labels.name().is_none() {
                    return Err(Error::InvalidInput(format!(
                        "series {labels} has no __name__ label"
                    )));
                }
                let id = match st.by_labels.get(&labels).or_else(|| new_ids.get(&labels)) {
                    Some(&id) => id,
                    None => {
                        let id = next_id;
                        next_id += 1;
                        new_ids.insert(labels.clone(), id);
                        new_defs.push((id, labels));
                        id
                    }
                };
                let mut last = batch_last.get(&id).copied().or_else(|| {
                    st.series
                        .get(&id)
                        .and_then(|e| e.last)
                        .map(|s| s.timestamp_ms)
                });
                let out = accepted.entry(id).or_default();
                for s in input.samples {
                    if last.is_some_and(|l| s.timestamp_ms <= l) {
                        stats.out_of_order += 1;
                        continue;
                    }
                    last = Some(s.timestamp_ms);
                    out.push(s);
                }
                if let Some(l) = last {
                    batch_last.insert(id, l);
                }
            }
        }
        stats.new_series = new_defs.len() as u64;
        stats.samples = accepted.values().map(|s| s.len() as u64).sum();
        self.out_of_order_total
            .fetch_add(stats.out_of_order, Ordering::Relaxed);
        if new_defs.is_empty() && stats.samples == 0 {
            return Ok(stats);
        }

        let mut payload = Vec::new();
        let defs: Vec<(u64, &Labels)> = new_defs.iter().map(|(id, l)| (*id, l)).collect();
        let entries: Vec<(u64, &[Sample])> =
            accepted.iter().map(|(id, s)| (*id, s.as_slice())).collect();
        record::encode(&defs, &entries, &mut payload);
        let written = wal.append(&[&payload])?;
        self.wal_bytes.fetch_add(written, Ordering::Relaxed);

        let head_samples = {
            let mut st = write(&self.state);
            for (id, labels) in new_defs {
                st.register(id, labels, None);
            }
            for (id, samples) in accepted {
                let Some(&last) = samples.last() else {
                    continue;
                };
                if let Some(e) = st.series.get_mut(&id) {
                    e.last = Some(last);
                }
                st.head.entry(id).or_default().extend(samples);
            }
            st.head_samples += stats.samples as usize;
            self.series_count
                .store(st.series.len() as u64, Ordering::Relaxed);
            self.head_samples
                .store(st.head_samples as u64, Ordering::Relaxed);
            st.head_samples
        };
        self.samples_total
            .fetch_add(stats.samples, Ordering::Relaxed);
        drop(wal);

        if head_samples > self.options.head_max_samples {
            // the samples are already durable; a failed seal is retried by the next one and must
            // not make the caller think the append failed
            if let Err(e) = self.seal(false) {
                tracing::error!(error = %e, "sealing the head failed, will retry");
            }
        }
        Ok(stats)
    }

    /// Seals the whole head into blocks and deletes the wal segments they cover.
    pub fn flush(&self) -> Result<(), Error> {
        self.seal(true)
    }

    /// Flushes and releases the database.
    pub fn close(self) -> Result<(), Error> {
        self.flush()
    }

    /// Deletes blocks whose newest sample is older than `now_ms` minus their tier's retention.
    pub fn apply_retention(&self, now_ms: i64) -> Result<u64, Error> {
        let expired: Vec<Arc<Block>> = {
            let mut st = write(&self.state);
            let (expired, keep) = std::mem::take(&mut st.blocks)
                .into_iter()
                .partition(|b| b.max_ts < now_ms.saturating_sub(self.options.retention_ms(b.tier)));
            st.blocks = keep;
            self.block_count
                .store(st.blocks.len() as u64, Ordering::Relaxed);
            expired
        };
        for b in &expired {
            // queries holding this block keep reading through their open handle
            match fs::remove_file(&b.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&b.path, e)),
            }
            self.block_bytes.fetch_sub(b.size, Ordering::Relaxed);
            tracing::info!(path = %b.path.display(), tier = ?b.tier, max_ts = b.max_ts, "deleted expired block");
            if let Some(seal_dir) = b.path.parent()
                && fs::read_dir(seal_dir).is_ok_and(|mut d| d.next().is_none())
            {
                fs::remove_dir(seal_dir).map_err(|e| Error::io(seal_dir, e))?;
            }
        }
        if !expired.is_empty() && self.options.fsync {
            wal::sync_dir(&self.blocks_dir)?;
        }
        Ok(expired.len() as u64)
    }

    pub fn stats(&self) -> DbStats {
        DbStats {
            series: self.series_count.load(Ordering::Relaxed),
            head_samples: self.head_samples.load(Ordering::Relaxed),
            blocks: self.block_count.load(Ordering::Relaxed),
            bytes_on_disk: self.wal_bytes.load(Ordering::Relaxed)
                + self.block_bytes.load(Ordering::Relaxed),
            samples_appended_total: self.samples_total.load(Ordering::Relaxed),
            out_of_order_total: self.out_of_order_total.load(Ordering::Relaxed),
        }
    }

    /// Freezes the head (if `wait`, even when another seal is running) and writes every pending
    /// frozen head to blocks, oldest first.
    fn seal(&self, wait: bool) -> Result<(), Error> {
        let _guard = if wait {
            lock(&self.seal_lock)
        } else {
            match self.seal_lock.try_lock() {
                Ok(g) => g,
                Err(TryLockError::WouldBlock) => return Ok(()),
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            }
        };
        self.freeze()?;
        loop {
            let Some(frozen) = read(&self.state).frozen.first().cloned() else {
                return Ok(());
            };
            // compression runs without any lock held: appends and queries continue
            let blocks = write_seal(
                &self.blocks_dir,
                frozen.seal_id,
                &frozen.series,
                self.options.fsync,
            )?;
            let added: u64 = blocks.iter().map(|b| b.size).sum();
            {
                let mut st = write(&self.state);
                st.blocks.extend(blocks.into_iter().map(Arc::new));
                st.frozen.retain(|f| !Arc::ptr_eq(f, &frozen));
                self.block_count
                    .store(st.blocks.len() as u64, Ordering::Relaxed);
            }
            self.block_bytes.fetch_add(added, Ordering::Relaxed);
            tracing::debug!(
                seal = frozen.seal_id,
                series = frozen.series.len(),
                bytes = added,
                "sealed head"
            );
            self.delete_segments_upto(frozen.seal_id)?;
        }
    }

    /// Moves the head into a frozen head and switches the wal to a new segment.
    fn freeze(&self) -> Result<(), Error> {
        let mut wal = lock(&self.writer);
        if read(&self.state).head_samples == 0 {
            return Ok(());
        }
        let old_segment = wal.segment();
        let mut next = Wal::create(&self.wal_dir, old_segment + 1, self.options.fsync)?;
        let records = read(&self.state).snapshot_records();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let written = next.append(&refs)?;
        self.wal_bytes.fetch_add(written, Ordering::Relaxed);
        *wal = next;

        let mut st = write(&self.state);
        let head = std::mem::take(&mut st.head);
        st.head_samples = 0;
        self.head_samples.store(0, Ordering::Relaxed);
        let mut series: Vec<(u64, Labels, Vec<Sample>)> = head
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .filter_map(|(id, s)| st.series.get(&id).map(|e| (id, e.labels.clone(), s)))
            .collect();
        series.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        let by_id = series.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
        st.frozen.push(Arc::new(Frozen {
            seal_id: old_segment,
            series: series.into_iter().map(|(_, l, s)| (l, s)).collect(),
            by_id,
        }));
        Ok(())
    }

    fn delete_segments_upto(&self, seal_id: u64) -> Result<(), Error> {
        let mut deleted = false;
        for segment in wal::list_segments(&self.wal_dir)? {
            if segment > seal_id {
                continue;
            }
            let path = wal::segment_path(&self.wal_dir, segment);
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            self.wal_bytes.fetch_sub(
                size.min(self.wal_bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            deleted = true;
        }
        if deleted && self.options.fsync {
            wal::sync_dir(&self.wal_dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsdb_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tsdb>();
        assert_eq!(Options::default().tier_1h_retention_ms, 730 * DAY_MS);
    }
}
