//! Write-ahead log: numbered segment files of crc-framed records, appending, replay and tail repair
//!
//! Frame: `[payload len u32 le][crc32 of payload u32 le][payload]`. A frame that is cut short or
//! fails its crc ends replay of its segment and the segment is truncated there, because that is
//! exactly what a crash in the middle of a write leaves behind.

pub(crate) mod record;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;

const FRAME_HEADER: usize = 8;

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:08}.log"))
}

/// Segment numbers present in `dir`, ascending; unrelated files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(num);
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The segment currently being appended to.
pub(crate) struct Wal {
    path: PathBuf,
    segment: u64,
    file: File,
    len: u64,
    fsync: bool,
    poisoned: bool,
}

impl Wal {
    /// Creates (or truncates a leftover of) segment `segment` in `dir`.
    pub(crate) fn create(dir: &Path, segment: u64, fsync: bool) -> Result<Wal, Error> {
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if fsync {
            sync_dir(dir)?;
        }
        Ok(Wal {
            path,
            segment,
            file,
            len: 0,
            fsync,
            poisoned: false,
        })
    }

    pub(crate) fn segment(&self) -> u64 {
        self.segment
    }

    /// Appends records and makes them durable (when fsync is enabled); returns bytes written.
    ///
    /// On failure the segment is cut back to its previous length so a half-written frame cannot
    /// hide later acknowledged records from replay; if even that fails the wal refuses further writes.
    pub(crate) fn append(&mut self, payloads: &[&[u8]]) -> Result<u64, Error> {
        if self.poisoned {
            return Err(Error::WalPoisoned);
        }
        let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.len() + FRAME_HEADER).sum());
        for payload in payloads {
            let len = u32::try_from(payload.len())
                .map_err(|_| Error::InvalidInput("wal record larger than 4 GiB".to_string()))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            buf.extend_from_slice(payload);
        }
        let result = self.file.write_all(&buf).and_then(|()| {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(buf.len() as u64)
            }
            Err(e) => {
                if self.file.set_len(self.len).is_err() {
                    tracing::error!(path = %self.path.display(), "wal rollback failed, refusing further appends");
                    self.poisoned = true;
                }
                Err(Error::io(&self.path, e))
            }
        }
    }
}

/// Calls `apply` for every intact record of a segment; truncates a torn or corrupt tail.
///
/// Returns the number of valid bytes. `apply` errors (a record that framed correctly but does
/// not make sense) are reported as corruption of the segment, since truncating them would drop
/// acknowledged data silently.
pub(crate) fn replay_segment(
    path: &Path,
    mut apply: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<u64, Error> {
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut pos = 0usize;
    let torn = loop {
        let rest = &data[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < FRAME_HEADER {
            break Some("incomplete record header");
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if rest.len() - FRAME_HEADER < len {
            break Some("incomplete record payload");
        }
        let payload = &rest[FRAME_HEADER..FRAME_HEADER + len];
        if crc32fast::hash(payload) != crc {
            break Some("record crc mismatch");
        }
        apply(payload)
            .map_err(|reason| Error::corrupt(path, format!("record at offset {pos}: {reason}")))?;
        pos += FRAME_HEADER + len;
    };
    if let Some(reason) = torn {
        tracing::warn!(
            path = %path.display(),
            offset = pos,
            dropped_bytes = data.len() - pos,
            "truncating torn wal tail: {reason}"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.set_len(pos as u64).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(pos as u64)
}
