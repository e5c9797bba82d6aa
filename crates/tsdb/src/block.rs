//! Immutable block files: per-series pco-compressed chunks (raw samples or tier aggregates) plus an index
//!
//! Layout of `blocks/<seal:08>/{raw,5m,1h}.blk`:
//! header `["CKTSBLK2"][tier u8][7 zero bytes]`, chunks, index, footer
//! `[index offset u64][index len u64][index crc32 u32][0u32]["CKTSEND1"]` (all little endian).
//! Index: `[n uvarint][base ts ivarint]`, then `n` entries sorted by series id:
//! `[id delta uvarint][min ts - base ivarint][max ts - min ts uvarint][last value uvarint]
//! [items uvarint][chunk len uvarint][chunk crc32 u32]`. Series are referenced by their wal id
//! (labels live in the wal's series snapshot); chunks are stored back to back in index order
//! from the end of the header, so offsets are implicit. The last value is the f64 bit pattern
//! with its bytes reversed, which makes round numbers short varints.
//! Raw chunk: a timestamp column and a value column. Tier chunk: columns of bucket starts, min,
//! max, sum, count and last (see `column.rs` for the column encodings).
//! A seal writes only `raw.blk` (as `<seal>.tmp/raw.blk`, renamed to `<seal>/`); the tiers are
//! computed later from it by `write_tiers` (`<tier>.blk.tmp` files, fsynced and renamed).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Tier;
use crate::aggregate::{Agg, bucket_start};
use crate::codec::{DecodeError, Reader, put_ivarint, put_uvarint};
use crate::column::{get_f64s, get_i64s, get_u64s, put_f64s, put_i64s, put_u64s};
use crate::error::Error;
use crate::labels::Sample;
use crate::wal::sync_dir;

const HEADER_MAGIC: &[u8; 8] = b"CKTSBLK2";
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
    /// The series id, as defined in the wal.
    pub id: u64,
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
    /// Sorted by id.
    entries: Vec<IndexEntry>,
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
        if &header[..8] == b"CKTSBLK1" {
            return Err(Error::corrupt(
                &path,
                "block format version 1 (label index) is no longer supported",
            ));
        }
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
        })
    }

    pub(crate) fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub(crate) fn entry(&self, id: u64) -> Option<&IndexEntry> {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.entries[i])
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
                    "chunk crc mismatch for series id {} at offset {}",
                    e.id, e.offset
                ),
            ));
        }
        Ok(buf)
    }

    fn corrupt_chunk(&self, e: &IndexEntry, reason: impl std::fmt::Display) -> Error {
        Error::corrupt(
            &self.path,
            format!(
                "chunk for series id {} at offset {}: {reason}",
                e.id, e.offset
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

/// Last values are stored as the byte-reversed f64 bits: integers and other round numbers have
/// zero low mantissa bytes, which become high zero bytes and so a short varint.
fn last_value_bits(v: f64) -> u64 {
    v.to_bits().swap_bytes()
}

fn parse_index(index: &[u8], index_offset: u64) -> Result<Vec<IndexEntry>, String> {
    let mut r = Reader::new(index);
    // an entry is at least 10 bytes: six one-byte varints and the crc
    let n = r.len(10).map_err(|e| e.to_string())?;
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(n);
    if n == 0 {
        if r.remaining() != 0 {
            return Err(format!("{} trailing bytes", r.remaining()));
        }
        return Ok(entries);
    }
    let base = r.ivarint().map_err(|e| format!("base timestamp: {e}"))?;
    let mut offset = HEADER_LEN;
    for i in 0..n {
        let entry = (|| {
            let id_delta = r.uvarint()?;
            let id = match entries.last() {
                None => id_delta,
                Some(prev) => {
                    if id_delta == 0 {
                        return Err(DecodeError("series ids are not strictly increasing"));
                    }
                    prev.id
                        .checked_add(id_delta)
                        .ok_or(DecodeError("series id overflows"))?
                }
            };
            let min_ts = base
                .checked_add(r.ivarint()?)
                .ok_or(DecodeError("timestamp overflows"))?;
            let span = i64::try_from(r.uvarint()?).map_err(|_| DecodeError("span overflows"))?;
            let max_ts = min_ts
                .checked_add(span)
                .ok_or(DecodeError("timestamp overflows"))?;
            Ok::<_, DecodeError>(IndexEntry {
                id,
                min_ts,
                max_ts,
                last_value: f64::from_bits(r.uvarint()?.swap_bytes()),
                items: r.uvarint()?,
                offset,
                len: r.uvarint()?,
                crc: r.u32_le()?,
            })
        })()
        .map_err(|e| format!("entry {i}: {e}"))?;
        let end = entry.offset.checked_add(entry.len);
        if end.is_none_or(|end| end > index_offset) {
            return Err(format!(
                "entry {i} (series id {}) points outside the chunk area",
                entry.id
            ));
        }
        if entry.items == 0 {
            return Err(format!("entry {i} (series id {}) is empty", entry.id));
        }
        offset = end.unwrap_or(index_offset);
        entries.push(entry);
    }
    if offset != index_offset {
        return Err(format!(
            "chunks end at {offset} but the index starts at {index_offset}"
        ));
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

/// Serializes one block; `series` must be sorted by id, each with a time-ordered, non-empty
/// sample list (raw samples; tiers are computed from them).
fn block_bytes<'a>(
    tier: Tier,
    series: impl Iterator<Item = Result<(u64, std::borrow::Cow<'a, [Sample]>), Error>>,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    out.extend_from_slice(HEADER_MAGIC);
    out.push(tier_code(tier));
    out.extend_from_slice(&[0u8; 7]);
    // (id, min ts, max ts, last value, items, len, crc)
    let mut metas: Vec<(u64, i64, i64, f64, u64, u64, u32)> = Vec::new();
    for item in series {
        let (id, samples) = item?;
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            continue;
        };
        let (chunk, items) = chunk_bytes(tier, &samples)?;
        metas.push((
            id,
            first.timestamp_ms,
            last.timestamp_ms,
            last.value,
            items,
            chunk.len() as u64,
            crc32fast::hash(&chunk),
        ));
        out.extend_from_slice(&chunk);
    }
    let mut index = Vec::with_capacity(metas.len() * 16 + 16);
    put_uvarint(&mut index, metas.len() as u64);
    let base = metas.iter().map(|m| m.1).min().unwrap_or(0);
    if !metas.is_empty() {
        put_ivarint(&mut index, base);
    }
    let mut prev_id = None;
    for &(id, min_ts, max_ts, last, items, len, crc) in &metas {
        put_uvarint(&mut index, prev_id.map_or(id, |p: u64| id.wrapping_sub(p)));
        prev_id = Some(id);
        put_ivarint(&mut index, min_ts.wrapping_sub(base));
        put_uvarint(&mut index, max_ts.wrapping_sub(min_ts) as u64);
        put_uvarint(&mut index, last_value_bits(last));
        put_uvarint(&mut index, items);
        put_uvarint(&mut index, len);
        index.extend_from_slice(&crc.to_le_bytes());
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

fn write_file(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), Error> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    if fsync {
        f.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Writes the raw block of one seal and makes it visible atomically (directory rename).
///
/// `series` must be sorted by id, each with at least one sample, in time order.
pub(crate) fn write_seal(
    blocks_dir: &Path,
    seal_id: u64,
    series: &[(u64, Vec<Sample>)],
    fsync: bool,
) -> Result<Block, Error> {
    let final_dir = blocks_dir.join(seal_dir_name(seal_id));
    let tmp_dir = blocks_dir.join(format!("{}.tmp", seal_dir_name(seal_id)));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
    }
    fs::create_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
    let bytes = block_bytes(
        Tier::Raw,
        series
            .iter()
            .map(|(id, s)| Ok((*id, std::borrow::Cow::Borrowed(s.as_slice())))),
    )?;
    write_file(&tmp_dir.join(tier_file_name(Tier::Raw)), &bytes, fsync)?;
    if fsync {
        sync_dir(&tmp_dir)?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    if fsync {
        sync_dir(blocks_dir)?;
    }
    Block::open(
        final_dir.join(tier_file_name(Tier::Raw)),
        Tier::Raw,
        seal_id,
    )
}

/// Computes the given tiers from a raw block and writes them next to it. Each tier file is
/// written as `<name>.tmp`, fsynced and renamed, so a crash leaves either no file or a complete one.
pub(crate) fn write_tiers(raw: &Block, tiers: &[Tier], fsync: bool) -> Result<Vec<Block>, Error> {
    let Some(dir) = raw.path.parent() else {
        return Err(Error::corrupt(&raw.path, "block has no seal directory"));
    };
    let mut out = Vec::new();
    for &tier in tiers.iter().filter(|t| **t != Tier::Raw) {
        let bytes = block_bytes(
            tier,
            raw.entries()
                .iter()
                .map(|e| Ok((e.id, std::borrow::Cow::Owned(raw.read_raw(e)?)))),
        )?;
        let path = dir.join(tier_file_name(tier));
        let tmp = dir.join(format!("{}.tmp", tier_file_name(tier)));
        write_file(&tmp, &bytes, fsync)?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        out.push(path);
    }
    if fsync && !out.is_empty() {
        sync_dir(dir)?;
    }
    out.into_iter()
        .zip(tiers.iter().filter(|t| **t != Tier::Raw))
        .map(|(path, &tier)| Block::open(path, tier, raw.seal_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<(u64, Vec<Sample>)> {
        (0..n)
            .map(|i| {
                let samples = (0..100)
                    .map(|j| Sample {
                        timestamp_ms: 1_000_000 + j * 10_000,
                        value: (i * 1000 + j as usize) as f64,
                    })
                    .collect();
                // sparse ids exercise the delta encoding
                (i as u64 * 7 + 3, samples)
            })
            .collect()
    }

    #[test]
    fn seal_round_trips_all_tiers() {
        let dir = tempfile::tempdir().unwrap();
        let data = series(5);
        let raw = write_seal(dir.path(), 3, &data, false).unwrap();
        assert!(!dir.path().join("00000003/5m.blk").exists());
        let tiers = write_tiers(&raw, &[Tier::FiveMinutes, Tier::OneHour], false).unwrap();
        assert_eq!(tiers.len(), 2);
        assert_eq!(raw.entries().len(), 5);
        for (id, samples) in &data {
            let e = raw.entry(*id).unwrap();
            assert_eq!(&raw.read_raw(e).unwrap(), samples);
            assert_eq!(e.last_value, samples[99].value);
            let five = &tiers[0];
            let e5 = five.entry(*id).unwrap();
            assert_eq!((e5.min_ts, e5.max_ts), (e.min_ts, e.max_ts));
            let buckets = five.read_tier(e5).unwrap();
            assert_eq!(buckets, to_buckets(samples, 300_000));
            assert_eq!(buckets.iter().map(|b| b.1.count).sum::<u64>(), 100);
        }
        assert!(raw.entry(4).is_none());
        assert!(dir.path().join("00000003/1h.blk").exists());
        assert!(!dir.path().join("00000003/1h.blk.tmp").exists());
        assert!(!dir.path().join("00000003.tmp").exists());
    }

    #[test]
    fn index_is_small_and_last_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = series(1000);
        data[0].1[99].value = f64::NAN;
        data[1].1[99].value = -0.1;
        let raw = write_seal(dir.path(), 1, &data, false).unwrap();
        assert!(raw.entry(3).unwrap().last_value.is_nan());
        assert_eq!(raw.entry(10).unwrap().last_value, -0.1);
        let bytes = fs::read(&raw.path).unwrap();
        let footer = &bytes[bytes.len() - 32..];
        let index_len = u64::from_le_bytes(footer[8..16].try_into().unwrap());
        assert!(index_len < 1000 * 16, "index is {index_len} bytes");
    }

    #[test]
    fn corrupt_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let block = write_seal(dir.path(), 1, &series(3), false).unwrap();
        let path = block.path.clone();
        drop(block);
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
        let mut old = bytes.clone();
        old[..8].copy_from_slice(b"CKTSBLK1");
        fs::write(&path, &old).unwrap();
        let err = Block::open(path.clone(), Tier::Raw, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 1"), "{err}");
        fs::write(&path, b"short").unwrap();
        let err = Block::open(path, Tier::Raw, 1).unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
    }
}
