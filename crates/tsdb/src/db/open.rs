//! Opening a database: loading blocks, dropping covered wal segments, replaying the rest
//!
//! A corrupt block makes `open` fail with an error naming the file: silently skipping it would
//! hide data loss, and the operator can move the file away to start without it. Blocks refer to
//! series by id; the ids are defined by the wal (whose newest segment starts with a snapshot of
//! every series), and a block id without a definition is reported as corruption of that block.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::{Options, State, Tsdb};
use crate::block::{Block, TIERS, tier_file_name};
use crate::error::Error;
use crate::labels::Sample;
use crate::wal::{self, Wal, record};

fn create_dir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| Error::io(path, e))
}

/// Loads every committed seal directory; leftovers of interrupted seals are removed.
fn load_blocks(blocks_dir: &Path) -> Result<Vec<Block>, Error> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(blocks_dir).map_err(|e| Error::io(blocks_dir, e))? {
        let entry = entry.map_err(|e| Error::io(blocks_dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            tracing::warn!(path = %path.display(), "removing incomplete seal directory");
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        let Ok(seal_id) = name.parse::<u64>() else {
            tracing::warn!(path = %path.display(), "ignoring unexpected entry in blocks directory");
            continue;
        };
        for tier in TIERS {
            // a tier file being written by `downsample` when the process stopped
            let tmp = path.join(format!("{}.tmp", tier_file_name(tier)));
            if tmp.exists() {
                tracing::warn!(path = %tmp.display(), "removing incomplete tier file");
                fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
        }
        for tier in TIERS {
            let file = path.join(tier_file_name(tier));
            if file.exists() {
                blocks.push(Block::open(file, tier, seal_id)?);
            }
        }
    }
    blocks.sort_by_key(|b| (b.seal_id, b.tier));
    Ok(blocks)
}

impl Tsdb {
    /// Opens (creating if needed) the database in `dir`: loads blocks, replays the wal into the
    /// head and starts a fresh wal segment.
    pub fn open(dir: &Path, options: Options) -> Result<Tsdb, Error> {
        if options.raw_retention_ms <= 0
            || options.tier_5m_retention_ms <= 0
            || options.tier_1h_retention_ms <= 0
        {
            return Err(Error::InvalidInput(
                "retentions must be positive".to_string(),
            ));
        }
        if options.downsample_after_ms < 0 {
            return Err(Error::InvalidInput(
                "downsample_after_ms must not be negative".to_string(),
            ));
        }
        if options.head_max_samples == 0 {
            return Err(Error::InvalidInput(
                "head_max_samples must be positive".to_string(),
            ));
        }
        let wal_dir = dir.join("wal");
        let blocks_dir = dir.join("blocks");
        create_dir(&wal_dir)?;
        create_dir(&blocks_dir)?;

        let blocks = load_blocks(&blocks_dir)?;
        let max_seal = blocks.iter().map(|b| b.seal_id).max().unwrap_or(0);
        let mut block_last: HashMap<u64, Sample> = HashMap::new();
        for b in &blocks {
            for e in b.entries() {
                let s = Sample {
                    timestamp_ms: e.max_ts,
                    value: e.last_value,
                };
                block_last
                    .entry(e.id)
                    .and_modify(|cur| {
                        if s.timestamp_ms > cur.timestamp_ms {
                            *cur = s;
                        }
                    })
                    .or_insert(s);
            }
        }
        let block_bytes = blocks.iter().map(|b| b.size).sum();

        let mut st = State {
            blocks: blocks.into_iter().map(Arc::new).collect(),
            ..State::default()
        };
        let segments = wal::list_segments(&wal_dir)?;
        let mut wal_bytes = 0u64;
        for &segment in &segments {
            let path = wal::segment_path(&wal_dir, segment);
            if segment <= max_seal {
                // a seal committed but crashed before deleting the segments it covers
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            wal_bytes += wal::replay_segment(&path, |payload| {
                replay_record(&mut st, &block_last, payload)
            })?;
        }
        // every id a block refers to must be defined by the wal snapshot; otherwise the block
        // cannot be attributed to a series
        for b in &st.blocks {
            if let Some(e) = b.entries().iter().find(|e| !st.series.contains_key(&e.id)) {
                return Err(Error::corrupt(
                    &b.path,
                    format!(
                        "series id {} has no definition in the wal (segment with the series snapshot missing?)",
                        e.id
                    ),
                ));
            }
        }

        let segment = segments.last().copied().unwrap_or(0).max(max_seal) + 1;
        let mut wal = Wal::create(&wal_dir, segment, options.fsync)?;
        let records = st.snapshot_records();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        wal_bytes += wal.append(&refs)?;
        if st.head_samples == 0 {
            // older segments hold no unsealed samples and the new snapshot re-declares every
            // series, so they are redundant; without this each restart would leave one behind
            for &old in segments.iter().filter(|&&s| s > max_seal) {
                let path = wal::segment_path(&wal_dir, old);
                wal_bytes -= fs::metadata(&path)
                    .map(|m| m.len())
                    .unwrap_or(0)
                    .min(wal_bytes);
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }

        tracing::info!(
            dir = %dir.display(),
            series = st.series.len(),
            head_samples = st.head_samples,
            blocks = st.blocks.len(),
            "opened tsdb"
        );
        Ok(Tsdb {
            wal_dir,
            blocks_dir,
            series_count: AtomicU64::new(st.series.len() as u64),
            head_samples: AtomicU64::new(st.head_samples as u64),
            block_count: AtomicU64::new(st.blocks.len() as u64),
            wal_bytes: AtomicU64::new(wal_bytes),
            block_bytes: AtomicU64::new(block_bytes),
            samples_total: AtomicU64::new(0),
            out_of_order_total: AtomicU64::new(0),
            options,
            writer: Mutex::new(wal),
            state: RwLock::new(st),
            seal_lock: Mutex::new(()),
        })
    }
}

fn replay_record(
    st: &mut State,
    block_last: &HashMap<u64, Sample>,
    payload: &[u8],
) -> Result<(), String> {
    let rec = record::decode(payload).map_err(|e| e.to_string())?;
    for (id, labels) in rec.defs {
        match (st.series.get(&id), st.lookup_labels(&labels)) {
            (Some(e), _) if e.labels == labels => {}
            (Some(e), _) => {
                return Err(format!(
                    "series id {id} redefined from {} to {labels}",
                    e.labels
                ));
            }
            (None, Some(other)) => {
                return Err(format!("series {labels} defined with ids {other} and {id}"));
            }
            (None, None) => {
                let last = block_last.get(&id).copied();
                st.register(id, labels, last);
            }
        }
    }
    for (id, samples) in rec.entries {
        let Some(entry) = st.series.get_mut(&id) else {
            return Err(format!("samples for undefined series id {id}"));
        };
        for s in samples {
            // samples already sealed into blocks (crash before segment deletion) are skipped
            if entry.last.is_some_and(|l| s.timestamp_ms <= l.timestamp_ms) {
                continue;
            }
            entry.last = Some(s);
            entry.head.push(s);
            st.head_samples += 1;
        }
    }
    Ok(())
}
