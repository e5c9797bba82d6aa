//! Immutable block files: per-series pco-compressed chunks (raw samples or tier aggregates) plus an index
//!
//! Layout of `blocks/<seal:08>/{raw,5m,1h}.blk`:
//! header `["CKTSBLK1"][tier u8][7 zero bytes]`, chunks, index, footer
//! `[index offset u64][index len u64][index crc32 u32][0u32]["CKTSEND1"]` (all little endian).
//! Index: a symbol table `[n uvarint]{[len uvarint][utf-8]}` (label names and values are stored
//! once per block), then `[n uvarint]` entries sorted by labels: `[n labels uvarint]{[name sym]
//! [value sym]}[min ts ivarint][max ts ivarint][last value f64][items uvarint][offset uvarint]
//! [len uvarint][chunk crc32 u32]`.
//! Raw chunk: a timestamp column and a value column. Tier chunk: columns of bucket starts, min,
//! max, sum, count and last (see `column.rs` for the column encodings).
//! A seal directory is written as `<seal>.tmp` and renamed, so the three tiers appear atomically.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Tier;
use crate::aggregate::{Agg, bucket_start};
use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::column::{get_f64s, get_i64s, get_u64s, put_f64s, put_i64s, put_u64s};
use crate::error::Error;
use crate::labels::{Labels, Sample};
use crate::wal::sync_dir;

const HEADER_MAGIC: &[u8; 8] = b"CKTSBLK1";
const FOOTER_MAGIC: &[u8; 8] = b"CKTSEND1";
const HEADER_LEN: u64 = 16;
const FOOTER_LEN: u64 = 32;

pub(crate) const TIERS: [Tier; 3] = [Tier::Raw, Tier::FiveMinutes, Tier::OneHour];

pub(crate) fn tier_file_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Raw => "raw.blk",
        Tier::FiveMinutes => "5m.blk",
        Tier::OneHour => "1h.blk",
    }
}

fn tier_code(tier: Tier) -> u8 {
    match tier {
        Tier::Raw => 0,
        Tier::FiveMinutes => 1,
        Tier::OneHour => 2,
    }
}

pub(crate) fn seal_dir_name(seal_id: u64) -> String {
    format!("{seal_id:08}")
}

/// Where one series' chunk lives in a block, plus summary facts that avoid reading it.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub labels: Labels,
    /// Timestamp of the first raw sample covered (tiers too, not the bucket start).
    pub min_ts: i64,
    /// Timestamp of the last raw sample covered.
    pub max_ts: i64,
    pub last_value: f64,
    /// Samples (raw) or buckets (tiers) in the chunk.
    pub items: u64,
    offset: u64,
    len: u64,
    crc: u32,
}

/// An open, validated block file.
#[derive(Debug)]
pub(crate) struct Block {
    pub path: PathBuf,
    pub tier: Tier,
    pub seal_id: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub size: u64,
    file: File,
    entries: Vec<IndexEntry>,
    by_labels: HashMap<Labels, usize>,
}

impl Block {
    /// Opens a block and validates header, footer and index; chunks are checked when read.
    pub(crate) fn open(path: PathBuf, tier: Tier, seal_id: u64) -> Result<Block, Error> {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if size < HEADER_LEN + FOOTER_LEN {
            return Err(Error::corrupt(
                &path,
                format!("file is {size} bytes, too short for a block"),
            ));
        }
        let read = |offset: u64, len: usize| -> Result<Vec<u8>, Error> {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset)
                .map_err(|e| Error::io(&path, e))?;
            Ok(buf)
        };
        let header = read(0, HEADER_LEN as usize)?;
        if &header[..8] != HEADER_MAGIC {
            return Err(Error::corrupt(&path, "bad header magic"));
        }
        if header[8] != tier_code(tier) {
            return Err(Error::corrupt(
                &path,
                format!(
                    "header says tier code {}, file name says {tier:?}",
                    header[8]
                ),
            ));
        }
        let footer = read(size - FOOTER_LEN, FOOTER_LEN as usize)?;
        if &footer[24..32] != FOOTER_MAGIC {
            return Err(Error::corrupt(
                &path,
                "bad footer magic (file truncated or overwritten)",
            ));
        }
        let mut fr = Reader::new(&footer);
        let (index_offset, index_len, index_crc) =
            (|| Ok((fr.u64_le()?, fr.u64_le()?, fr.u32_le()?)))()
                .map_err(|e: crate::codec::DecodeError| Error::corrupt(&path, e.0))?;
        let index_end = index_offset.checked_add(index_len);
        if index_offset < HEADER_LEN || index_end != Some(size - FOOTER_LEN) {
            return Err(Error::corrupt(
                &path,
                format!("index range {index_offset}+{index_len} does not fit a {size} byte file"),
            ));
        }
        let index = read(index_offset, index_len as usize)?;
        if crc32fast::hash(&index) != index_crc {
            return Err(Error::corrupt(&path, "index crc mismatch"));
        }
        let entries = parse_index(&index, index_offset)
            .map_err(|reason| Error::corrupt(&path, format!("index: {reason}")))?;
        let by_labels = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.labels.clone(), i))
            .collect();
        let min_ts = entries.iter().map(|e| e.min_ts).min().unwrap_or(i64::MAX);
        let max_ts = entries.iter().map(|e| e.max_ts).max().unwrap_or(i64::MIN);
        Ok(Block {
            path,
            tier,
            seal_id,
            min_ts,
            max_ts,
            size,
            file,
            entries,
            by_labels,
        })
    }

    pub(crate) fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub(crate) fn entry(&self, labels: &Labels) -> Option<&IndexEntry> {
        self.by_labels.get(labels).map(|&i| &self.entries[i])
    }

    fn read_chunk(&self, e: &IndexEntry) -> Result<Vec<u8>, Error> {
        let len = usize::try_from(e.len)
            .map_err(|_| Error::corrupt(&self.path, "chunk length overflows"))?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, e.offset)
            .map_err(|err| Error::io(&self.path, err))?;
        if crc32fast::hash(&buf) != e.crc {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "chunk crc mismatch for series {} at offset {}",
                    e.labels, e.offset
                ),
            ));
        }
        Ok(buf)
    }

    fn corrupt_chunk(&self, e: &IndexEntry, reason: impl std::fmt::Display) -> Error {
        Error::corrupt(
            &self.path,
            format!(
                "chunk for series {} at offset {}: {reason}",
                e.labels, e.offset
            ),
        )
    }

    fn items(&self, e: &IndexEntry) -> Result<usize, Error> {
        usize::try_from(e.items).map_err(|_| self.corrupt_chunk(e, "item count overflows"))
    }

    pub(crate) fn read_raw(&self, e: &IndexEntry) -> Result<Vec<Sample>, Error> {
        let buf = self.read_chunk(e)?;
        let mut r = Reader::new(&buf);
        let n = self.items(e)?;
        let ts = get_i64s(&mut r, n).map_err(|err| self.corrupt_chunk(e, err))?;
        let values = get_f64s(&mut r, n).map_err(|err| self.corrupt_chunk(e, err))?;
        Ok(ts
            .into_iter()
            .zip(values)
            .map(|(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            })
            .collect())
    }

    pub(crate) fn read_tier(&self, e: &IndexEntry) -> Result<Vec<(i64, Agg)>, Error> {
        let buf = self.read_chunk(e)?;
        let mut r = Reader::new(&buf);
        let n = self.items(e)?;
        let bad = |err| self.corrupt_chunk(e, err);
        let starts = get_i64s(&mut r, n).map_err(bad)?;
        let mins = get_f64s(&mut r, n).map_err(bad)?;
        let maxs = get_f64s(&mut r, n).map_err(bad)?;
        let sums = get_f64s(&mut r, n).map_err(bad)?;
        let counts = get_u64s(&mut r, n).map_err(bad)?;
        let lasts = get_f64s(&mut r, n).map_err(bad)?;
        Ok((0..starts.len())
            .map(|i| {
                (
                    starts[i],
                    Agg {
                        min: mins[i],
                        max: maxs[i],
                        sum: sums[i],
                        count: counts[i],
                        last: lasts[i],
                    },
                )
            })
            .collect())
    }
}

fn read_labels(r: &mut Reader<'_>, symbols: &[String]) -> Result<Labels, DecodeError> {
    let n = r.len(2)?;
    let mut sym = || -> Result<String, DecodeError> {
        let i = usize::try_from(r.uvarint()?).map_err(|_| DecodeError("symbol index overflows"))?;
        symbols
            .get(i)
            .cloned()
            .ok_or(DecodeError("symbol index out of range"))
    };
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let name = sym()?;
        let value = sym()?;
        pairs.push((name, value));
    }
    let labels = Labels::new(pairs);
    if labels.len() != n {
        return Err(DecodeError("label set is not canonical"));
    }
    Ok(labels)
}

fn parse_index(index: &[u8], index_offset: u64) -> Result<Vec<IndexEntry>, String> {
    let mut r = Reader::new(index);
    let n_symbols = r.len(1).map_err(|e| format!("symbol table: {e}"))?;
    let mut symbols = Vec::with_capacity(n_symbols);
    for i in 0..n_symbols {
        symbols.push(r.string().map_err(|e| format!("symbol {i}: {e}"))?);
    }
    let n = r.len(16).map_err(|e| e.to_string())?;
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let entry = (|| {
            Ok::<_, DecodeError>(IndexEntry {
                labels: read_labels(&mut r, &symbols)?,
                min_ts: r.ivarint()?,
                max_ts: r.ivarint()?,
                last_value: r.f64_le()?,
                items: r.uvarint()?,
                offset: r.uvarint()?,
                len: r.uvarint()?,
                crc: r.u32_le()?,
            })
        })()
        .map_err(|e| format!("entry {i}: {e}"))?;
        if entry.offset < HEADER_LEN
            || entry
                .offset
                .checked_add(entry.len)
                .is_none_or(|end| end > index_offset)
        {
            return Err(format!(
                "entry {i} ({}) points outside the chunk area",
                entry.labels
            ));
        }
        if entry.items == 0 || entry.min_ts > entry.max_ts {
            return Err(format!(
                "entry {i} ({}) has an empty or inverted range",
                entry.labels
            ));
        }
        if entries
            .last()
            .is_some_and(|prev| prev.labels >= entry.labels)
        {
            return Err(format!("entry {i} ({}) is out of order", entry.labels));
        }
        entries.push(entry);
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(entries)
}

/// Aggregates time-ordered samples into epoch-aligned buckets of `width` ms.
pub(crate) fn to_buckets(samples: &[Sample], width: i64) -> Vec<(i64, Agg)> {
    let mut out: Vec<(i64, Agg)> = Vec::new();
    for s in samples {
        let b = bucket_start(s.timestamp_ms, width);
        match out.last_mut() {
            Some((start, agg)) if *start == b => agg.add(s.value),
            _ => out.push((b, Agg::one(s.value))),
        }
    }
    out
}

fn chunk_bytes(tier: Tier, samples: &[Sample]) -> Result<(Vec<u8>, u64), Error> {
    let mut out = Vec::new();
    match tier.bucket_ms() {
        None => {
            let ts: Vec<i64> = samples.iter().map(|s| s.timestamp_ms).collect();
            let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
            put_i64s(&mut out, &ts)?;
            put_f64s(&mut out, &values)?;
            Ok((out, samples.len() as u64))
        }
        Some(width) => {
            let buckets = to_buckets(samples, width);
            let col = |f: fn(&(i64, Agg)) -> f64| buckets.iter().map(f).collect::<Vec<f64>>();
            put_i64s(&mut out, &buckets.iter().map(|b| b.0).collect::<Vec<i64>>())?;
            put_f64s(&mut out, &col(|b| b.1.min))?;
            put_f64s(&mut out, &col(|b| b.1.max))?;
            put_f64s(&mut out, &col(|b| b.1.sum))?;
            put_u64s(
                &mut out,
                &buckets.iter().map(|b| b.1.count).collect::<Vec<u64>>(),
            )?;
            put_f64s(&mut out, &col(|b| b.1.last))?;
            Ok((out, buckets.len() as u64))
        }
    }
}

/// Serializes one tier of a seal; `series` must be sorted by labels with non-empty, time-ordered samples.
fn block_bytes(tier: Tier, series: &[(Labels, Vec<Sample>)]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    out.extend_from_slice(HEADER_MAGIC);
    out.push(tier_code(tier));
    out.extend_from_slice(&[0u8; 7]);
    let series: Vec<&(Labels, Vec<Sample>)> = series.iter().filter(|s| !s.1.is_empty()).collect();
    let mut symbols: HashMap<&str, u64> = HashMap::new();
    let mut index = Vec::new();
    let mut symbol_table = Vec::new();
    for (name, value) in series.iter().flat_map(|s| s.0.iter()) {
        for text in [name, value] {
            if !symbols.contains_key(text) {
                symbols.insert(text, symbols.len() as u64);
                put_bytes(&mut symbol_table, text.as_bytes());
            }
        }
    }
    put_uvarint(&mut index, symbols.len() as u64);
    index.extend_from_slice(&symbol_table);
    put_uvarint(&mut index, series.len() as u64);
    for (labels, samples) in series {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            continue;
        };
        let (chunk, items) = chunk_bytes(tier, samples)?;
        put_uvarint(&mut index, labels.len() as u64);
        for (name, value) in labels.iter() {
            put_uvarint(&mut index, symbols.get(name).copied().unwrap_or_default());
            put_uvarint(&mut index, symbols.get(value).copied().unwrap_or_default());
        }
        put_ivarint(&mut index, first.timestamp_ms);
        put_ivarint(&mut index, last.timestamp_ms);
        index.extend_from_slice(&last.value.to_bits().to_le_bytes());
        put_uvarint(&mut index, items);
        put_uvarint(&mut index, out.len() as u64);
        put_uvarint(&mut index, chunk.len() as u64);
        index.extend_from_slice(&crc32fast::hash(&chunk).to_le_bytes());
        out.extend_from_slice(&chunk);
    }
    let index_offset = out.len() as u64;
    out.extend_from_slice(&index);
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&(index.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(FOOTER_MAGIC);
    Ok(out)
}

/// Writes the raw and tier blocks of one seal and makes them visible atomically.
///
/// `series` must be sorted by labels, each with at least one sample, in time order.
pub(crate) fn write_seal(
    blocks_dir: &Path,
    seal_id: u64,
    series: &[(Labels, Vec<Sample>)],
    fsync: bool,
) -> Result<Vec<Block>, Error> {
    let final_dir = blocks_dir.join(seal_dir_name(seal_id));
    let tmp_dir = blocks_dir.join(format!("{}.tmp", seal_dir_name(seal_id)));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
    }
    fs::create_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
    for tier in TIERS {
        let bytes = block_bytes(tier, series)?;
        let path = tmp_dir.join(tier_file_name(tier));
        let mut f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&path, e))?;
        if fsync {
            f.sync_all().map_err(|e| Error::io(&path, e))?;
        }
    }
    if fsync {
        sync_dir(&tmp_dir)?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    if fsync {
        sync_dir(blocks_dir)?;
    }
    TIERS
        .iter()
        .map(|&tier| Block::open(final_dir.join(tier_file_name(tier)), tier, seal_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<(Labels, Vec<Sample>)> {
        let mut out: Vec<_> = (0..n)
            .map(|i| {
                let labels = Labels::new(vec![
                    ("__name__".into(), "m".into()),
                    ("i".into(), i.to_string()),
                ]);
                let samples = (0..100)
                    .map(|j| Sample {
                        timestamp_ms: 1_000_000 + j * 10_000,
                        value: (i * 1000 + j as usize) as f64,
                    })
                    .collect();
                (labels, samples)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn seal_round_trips_all_tiers() {
        let dir = tempfile::tempdir().unwrap();
        let data = series(5);
        let blocks = write_seal(dir.path(), 3, &data, false).unwrap();
        assert_eq!(blocks.len(), 3);
        let raw = &blocks[0];
        assert_eq!(raw.entries().len(), 5);
        for (labels, samples) in &data {
            let e = raw.entry(labels).unwrap();
            assert_eq!(&raw.read_raw(e).unwrap(), samples);
            assert_eq!(e.last_value, samples[99].value);
            let five = &blocks[1];
            let buckets = five.read_tier(five.entry(labels).unwrap()).unwrap();
            assert_eq!(buckets, to_buckets(samples, 300_000));
            assert_eq!(buckets.iter().map(|b| b.1.count).sum::<u64>(), 100);
        }
        assert!(dir.path().join("00000003/1h.blk").exists());
        assert!(!dir.path().join("00000003.tmp").exists());
    }

    #[test]
    fn corrupt_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = write_seal(dir.path(), 1, &series(3), false).unwrap();
        let path = blocks[0].path.clone();
        drop(blocks);
        let mut bytes = fs::read(&path).unwrap();
        // flip a byte in the first chunk: index still valid, chunk read must fail
        bytes[20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let b = Block::open(path.clone(), Tier::Raw, 1).unwrap();
        let err = b.read_raw(&b.entries()[0]).unwrap_err().to_string();
        assert!(
            err.contains("raw.blk") && err.contains("crc mismatch"),
            "{err}"
        );

        // chop the footer: open must fail naming the file
        fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = Block::open(path.clone(), Tier::Raw, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("raw.blk") && err.contains("footer"), "{err}");
        fs::write(&path, b"short").unwrap();
        let err = Block::open(path, Tier::Raw, 1).unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
    }
}
