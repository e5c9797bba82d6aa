//! The Tsdb handle: options, series registry, head, appends, sealing, retention and stats
//!
//! Locking: `writer` serializes appends and wal rotation; `state` (registry, head, frozen heads,
//! blocks) is only write-locked for short in-memory updates, so queries run concurrently with the
//! fsync of an append and with block compression; `seal_lock` lets one seal run at a time.

mod open;
mod query;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use crate::Tier;
use crate::block::{Block, TIERS, write_seal, write_tiers};
use crate::error::Error;
use crate::labels::{InputSeries, Labels, Sample, canonical_order, hash_order};
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
    /// Suggested `min_age_ms` for `Tsdb::downsample`: raw blocks younger than this keep no tiers
    /// yet. The engine does not run downsampling by itself (except for blocks about to expire in
    /// `apply_retention`); the embedding application calls `downsample` periodically.
    pub downsample_after_ms: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            raw_retention_ms: 15 * DAY_MS,
            tier_5m_retention_ms: 90 * DAY_MS,
            tier_1h_retention_ms: 730 * DAY_MS,
            head_max_samples: 2_000_000,
            fsync: true,
            downsample_after_ms: 2 * 60 * 60 * 1000,
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

/// One series of an `append_refs` batch, borrowed from the caller; labels may be in any order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesRef<'a> {
    pub labels: &'a [(&'a str, &'a str)],
    pub samples: &'a [Sample],
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    /// Last accepted sample; drives out-of-order rejection and `latest`.
    last: Option<Sample>,
    /// Unsealed samples of the current head, time ordered.
    head: Vec<Sample>,
}

/// Where the accepted samples of one batch entry are: the caller's slice or the filtered copy.
enum Accepted {
    Input(usize),
    Filtered(std::ops::Range<usize>),
}

/// A head that is being written to blocks; stays queryable until its blocks are visible.
#[derive(Debug)]
struct Frozen {
    /// Highest wal segment whose data it holds; equals the seal directory name.
    seal_id: u64,
    /// Sorted by id, each non-empty.
    series: Vec<(u64, Vec<Sample>)>,
}

impl Frozen {
    fn samples(&self, id: u64) -> &[Sample] {
        self.series
            .binary_search_by_key(&id, |s| s.0)
            .map_or(&[], |i| self.series[i].1.as_slice())
    }
}

#[derive(Debug, Default)]
struct State {
    series: FastMap<u64, SeriesEntry>,
    /// Identity hash of the labels -> id of the first series with that hash.
    by_hash: FastMap<u64, u64>,
    /// Further ids whose labels share a hash with `by_hash`'s entry (64-bit collisions: rare).
    collisions: FastMap<u64, Vec<u64>>,
    by_name: FastMap<String, Vec<u64>>,
    next_id: u64,
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
        let hash = labels.identity_hash();
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(hash).or_default().push(id);
            }
        }
        self.series.insert(
            id,
            SeriesEntry {
                labels,
                last,
                head: Vec::new(),
            },
        );
        self.next_id = self.next_id.max(id.saturating_add(1));
    }

    /// The id of the series whose labels satisfy `is`, among those with identity hash `hash`.
    fn lookup(&self, hash: u64, is: impl Fn(&Labels) -> bool) -> Option<u64> {
        let check = |id: &u64| self.series.get(id).is_some_and(|e| is(&e.labels));
        let first = self.by_hash.get(&hash)?;
        if check(first) {
            return Some(*first);
        }
        self.collisions
            .get(&hash)
            .and_then(|ids| ids.iter().copied().find(|id| check(id)))
    }

    fn lookup_labels(&self, labels: &Labels) -> Option<u64> {
        self.lookup(labels.identity_hash(), |l| l == labels)
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
        let pairs: Vec<(&str, &str)> = series
            .iter()
            .flat_map(|s| s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .collect();
        let mut refs = Vec::with_capacity(series.len());
        let mut at = 0;
        for s in &series {
            refs.push(SeriesRef {
                labels: &pairs[at..at + s.labels.len()],
                samples: &s.samples,
            });
            at += s.labels.len();
        }
        self.append_refs(&refs)
    }

    /// `append` on borrowed input: same semantics and durability, but series already known are
    /// found by a hash of their canonical labels without allocating.
    pub fn append_refs(&self, series: &[SeriesRef<'_>]) -> Result<AppendStats, Error> {
        let mut stats = AppendStats::default();
        let mut wal = lock(&self.writer);
        let mut new_defs: Vec<(u64, Labels)> = Vec::new();
        let mut new_by_hash: FastMap<u64, Vec<usize>> = FastMap::default();
        let mut accepted: Vec<(u64, Accepted)> = Vec::with_capacity(series.len());
        let mut filtered: Vec<Sample> = Vec::new();
        // last accepted timestamp of series seen earlier in this batch
        let mut batch_last: FastMap<u64, i64> = FastMap::default();
        batch_last.reserve(series.len());
        let mut order: Vec<usize> = Vec::with_capacity(16);
        {
            // registry and `last` only change under the writer lock, so this view stays valid
            let st = read(&self.state);
            let mut next_id = st.next_id;
            for (i, input) in series.iter().enumerate() {
                canonical_order(input.labels, &mut order);
                if !order.iter().any(|&j| input.labels[j].0 == "__name__") {
                    return Err(Error::InvalidInput(format!(
                        "series {} has no __name__ label",
                        Labels::from_order(input.labels, &order)
                    )));
                }
                let hash = hash_order(input.labels, &order);
                let known = st.lookup(hash, |l| l.eq_order(input.labels, &order));
                let id = match known {
                    Some(id) => id,
                    None => {
                        let in_batch = new_by_hash.get(&hash).and_then(|c| {
                            c.iter()
                                .find(|&&k| new_defs[k].1.eq_order(input.labels, &order))
                                .map(|&k| new_defs[k].0)
                        });
                        match in_batch {
                            Some(id) => id,
                            None => {
                                let id = next_id;
                                next_id += 1;
                                new_by_hash.entry(hash).or_default().push(new_defs.len());
                                new_defs.push((id, Labels::from_order(input.labels, &order)));
                                id
                            }
                        }
                    }
                };
                let before = batch_last.get(&id).copied().or_else(|| {
                    st.series
                        .get(&id)
                        .and_then(|e| e.last)
                        .map(|s| s.timestamp_ms)
                });
                let samples = input.samples;
                let Some(newest) = samples.last() else {
                    continue;
                };
                let in_order = samples
                    .first()
                    .is_some_and(|f| before.is_none_or(|l| f.timestamp_ms > l))
                    && samples
                        .windows(2)
                        .all(|w| w[0].timestamp_ms < w[1].timestamp_ms);
                if in_order {
                    // the common case: take the caller's slice as is
                    stats.samples += samples.len() as u64;
                    batch_last.insert(id, newest.timestamp_ms);
                    accepted.push((id, Accepted::Input(i)));
                    continue;
                }
                let start = filtered.len();
                let mut last = before;
                for s in samples {
                    if last.is_some_and(|l| s.timestamp_ms <= l) {
                        stats.out_of_order += 1;
                        continue;
                    }
                    last = Some(s.timestamp_ms);
                    filtered.push(*s);
                }
                if let Some(l) = last {
                    batch_last.insert(id, l);
                }
                if filtered.len() > start {
                    stats.samples += (filtered.len() - start) as u64;
                    accepted.push((id, Accepted::Filtered(start..filtered.len())));
                }
            }
        }
        stats.new_series = new_defs.len() as u64;
        self.out_of_order_total
            .fetch_add(stats.out_of_order, Ordering::Relaxed);
        if new_defs.is_empty() && stats.samples == 0 {
            return Ok(stats);
        }

        let entries: Vec<(u64, &[Sample])> = accepted
            .iter()
            .map(|(id, a)| {
                let samples = match a {
                    Accepted::Input(i) => series[*i].samples,
                    Accepted::Filtered(r) => &filtered[r.clone()],
                };
                (*id, samples)
            })
            .collect();
        let mut payload = Vec::with_capacity(entries.len() * 16 + stats.samples as usize * 9);
        let defs: Vec<(u64, &Labels)> = new_defs.iter().map(|(id, l)| (*id, l)).collect();
        record::encode(&defs, &entries, &mut payload);
        let written = wal.append(&[&payload])?;
        self.wal_bytes.fetch_add(written, Ordering::Relaxed);

        let head_samples = {
            let mut st = write(&self.state);
            for (id, labels) in new_defs {
                st.register(id, labels, None);
            }
            for (id, samples) in entries {
                let Some(&last) = samples.last() else {
                    continue;
                };
                if let Some(e) = st.series.get_mut(&id) {
                    e.last = Some(last);
                    e.head.extend_from_slice(samples);
                }
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

    /// Computes the 5 minute and 1 hour tier blocks of every sealed raw block whose newest
    /// sample is older than `now_ms - min_age_ms` and that lacks them; returns the number of tier
    /// files written. A tier that retention would delete right away is not written.
    pub fn downsample(&self, now_ms: i64, min_age_ms: i64) -> Result<u64, Error> {
        let _guard = lock(&self.seal_lock);
        let cutoff = now_ms.saturating_sub(min_age_ms);
        self.downsample_locked(now_ms, |raw| raw.max_ts < cutoff)
    }

    /// `downsample` for the raw blocks selected by `pick`; the caller holds `seal_lock`, so no
    /// block is deleted or written concurrently.
    fn downsample_locked(&self, now_ms: i64, pick: impl Fn(&Block) -> bool) -> Result<u64, Error> {
        let todo: Vec<(Arc<Block>, Vec<Tier>)> = {
            let st = read(&self.state);
            st.blocks
                .iter()
                .filter(|b| b.tier == Tier::Raw && pick(b))
                .filter_map(|raw| {
                    let missing: Vec<Tier> = TIERS
                        .into_iter()
                        .filter(|&t| t != Tier::Raw)
                        .filter(|&t| {
                            raw.max_ts >= now_ms.saturating_sub(self.options.retention_ms(t))
                        })
                        .filter(|&t| {
                            !st.blocks
                                .iter()
                                .any(|b| b.seal_id == raw.seal_id && b.tier == t)
                        })
                        .collect();
                    (!missing.is_empty()).then(|| (raw.clone(), missing))
                })
                .collect()
        };
        let mut written = 0u64;
        for (raw, tiers) in todo {
            let blocks = write_tiers(&raw, &tiers, self.options.fsync)?;
            let added: u64 = blocks.iter().map(|b| b.size).sum();
            written += blocks.len() as u64;
            let mut st = write(&self.state);
            st.blocks.extend(blocks.into_iter().map(Arc::new));
            st.blocks.sort_by_key(|b| (b.seal_id, b.tier));
            self.block_count
                .store(st.blocks.len() as u64, Ordering::Relaxed);
            self.block_bytes.fetch_add(added, Ordering::Relaxed);
            tracing::debug!(seal = raw.seal_id, bytes = added, "downsampled block");
        }
        Ok(written)
    }

    /// Deletes blocks whose newest sample is older than `now_ms` minus their tier's retention.
    /// Raw blocks about to be deleted are downsampled first, so their tiers always exist.
    pub fn apply_retention(&self, now_ms: i64) -> Result<u64, Error> {
        let _guard = lock(&self.seal_lock);
        let expired_at =
            |b: &Block| b.max_ts < now_ms.saturating_sub(self.options.retention_ms(b.tier));
        self.downsample_locked(now_ms, expired_at)?;
        let expired: Vec<Arc<Block>> = {
            let mut st = write(&self.state);
            let (expired, keep) = std::mem::take(&mut st.blocks)
                .into_iter()
                .partition(|b| expired_at(b));
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
            let block = write_seal(
                &self.blocks_dir,
                frozen.seal_id,
                &frozen.series,
                self.options.fsync,
            )?;
            let added = block.size;
            {
                let mut st = write(&self.state);
                st.blocks.push(Arc::new(block));
                st.blocks.sort_by_key(|b| (b.seal_id, b.tier));
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
        st.head_samples = 0;
        self.head_samples.store(0, Ordering::Relaxed);
        let mut series: Vec<(u64, Vec<Sample>)> = st
            .series
            .iter_mut()
            .filter(|(_, e)| !e.head.is_empty())
            .map(|(id, e)| {
                let n = e.head.len();
                (*id, std::mem::replace(&mut e.head, Vec::with_capacity(n)))
            })
            .collect();
        series.sort_unstable_by_key(|s| s.0);
        st.frozen.push(Arc::new(Frozen {
            seal_id: old_segment,
            series,
        }));
        Ok(())
    }

    /// Deletes the wal segments covered by seal `seal_id`. The current segment (which begins with
    /// the newest series snapshot, the only record of the ids blocks refer to) is never deleted.
    fn delete_segments_upto(&self, seal_id: u64) -> Result<(), Error> {
        let current = lock(&self.writer).segment();
        let mut deleted = false;
        for segment in wal::list_segments(&self.wal_dir)? {
            if segment > seal_id || segment >= current {
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
