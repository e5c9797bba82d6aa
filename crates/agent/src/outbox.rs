//! The bounded on-disk outbox: every batch is written here first and deleted only once the server acknowledged it.
//!
//! Invariant: batches leave in the order they were written; a crash mid-write leaves only a `.tmp` file,
//! which is discarded at open, never a truncated batch.

use std::path::{Path, PathBuf};

use crate::state::write_private_file;

const EXTENSION: &str = "batch";

#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    next_seq: u64,
    max_bytes: u64,
    /// Sequence numbers and sizes of stored batches, oldest first.
    entries: std::collections::VecDeque<(u64, u64)>,
    dropped_batches: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {source}")]
pub struct OutboxError {
    path: PathBuf,
    source: std::io::Error,
}

fn error(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError {
        path: path.to_path_buf(),
        source,
    }
}

impl Outbox {
    /// Opens (creating) the outbox in `dir`, holding at most `max_bytes` of batches.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(dir).map_err(error(dir))?;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(error(dir))? {
            let entry = entry.map_err(error(dir))?;
            let path = entry.path();
            match path.extension().and_then(|ext| ext.to_str()) {
                Some(EXTENSION) => {
                    let seq = path
                        .file_stem()
                        .and_then(|stem| stem.to_str())
                        .and_then(|stem| stem.parse::<u64>().ok());
                    match seq {
                        Some(seq) => {
                            entries.push((seq, entry.metadata().map_err(error(&path))?.len()))
                        }
                        None => {
                            tracing::warn!(file = %path.display(), "ignoring a file with an unexpected name in the outbox")
                        }
                    }
                }
                Some("tmp") => {
                    // A write interrupted by a crash; the batch was never acknowledged to anyone.
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        entries.sort_unstable();
        let next_seq = entries.last().map_or(1, |(seq, _)| seq + 1);
        Ok(Outbox {
            dir: dir.to_path_buf(),
            next_seq,
            max_bytes,
            entries: entries.into(),
            dropped_batches: 0,
        })
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXTENSION}"))
    }

    /// Stores a batch durably; when over the bound, drops the oldest batches (counted and logged).
    pub fn push(&mut self, body: &[u8]) -> Result<(), OutboxError> {
        let seq = self.next_seq;
        let path = self.path_of(seq);
        write_private_file(&path, body).map_err(error(&path))?;
        self.next_seq += 1;
        self.entries.push_back((seq, body.len() as u64));
        while self.bytes() > self.max_bytes && self.entries.len() > 1 {
            if let Some((oldest, _)) = self.entries.pop_front() {
                let oldest_path = self.path_of(oldest);
                let _ = std::fs::remove_file(&oldest_path);
                self.dropped_batches += 1;
                tracing::warn!(file = %oldest_path.display(), "outbox full: dropped the oldest batch");
            }
        }
        Ok(())
    }

    /// The oldest batch, if any.
    pub fn peek(&self) -> Result<Option<(u64, Vec<u8>)>, OutboxError> {
        let Some(&(seq, _)) = self.entries.front() else {
            return Ok(None);
        };
        let path = self.path_of(seq);
        let bytes = std::fs::read(&path).map_err(error(&path))?;
        Ok(Some((seq, bytes)))
    }

    /// Deletes an acknowledged batch.
    pub fn remove(&mut self, seq: u64) -> Result<(), OutboxError> {
        let path = self.path_of(seq);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(error(&path)(err)),
        }
        self.entries.retain(|(stored, _)| *stored != seq);
        Ok(())
    }

    /// Moves a batch the server refused as malformed aside, so it cannot block the queue forever.
    pub fn reject(&mut self, seq: u64) -> Result<(), OutboxError> {
        let rejected = self.dir.join("rejected");
        std::fs::create_dir_all(&rejected).map_err(error(&rejected))?;
        let path = self.path_of(seq);
        let target = rejected.join(format!("{seq:020}.{EXTENSION}"));
        std::fs::rename(&path, &target).map_err(error(&path))?;
        self.entries.retain(|(stored, _)| *stored != seq);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|(_, size)| size).sum()
    }

    pub fn dropped_batches(&self) -> u64 {
        self.dropped_batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_leave_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 1 << 20).unwrap();
        for index in 0..3u8 {
            outbox.push(&[index; 10]).unwrap();
        }
        drop(outbox);
        let mut reopened = Outbox::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.len(), 3);
        let (seq, body) = reopened.peek().unwrap().unwrap();
        assert_eq!(body, vec![0u8; 10]);
        reopened.remove(seq).unwrap();
        reopened.push(&[9; 10]).unwrap();
        let order: Vec<u8> = std::iter::from_fn(|| {
            let (seq, body) = reopened.peek().unwrap()?;
            reopened.remove(seq).unwrap();
            Some(body[0])
        })
        .collect();
        assert_eq!(order, [1, 2, 9]);
    }

    #[test]
    fn bound_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 25).unwrap();
        for index in 0..4u8 {
            outbox.push(&[index; 10]).unwrap();
        }
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.dropped_batches(), 2);
        assert_eq!(outbox.peek().unwrap().unwrap().1[0], 2);
    }

    #[test]
    fn interrupted_write_is_discarded_and_rejects_move_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000000000000001.tmp"), b"half").unwrap();
        let mut outbox = Outbox::open(dir.path(), 1 << 20).unwrap();
        assert!(outbox.is_empty());
        assert!(!dir.path().join("00000000000000000001.tmp").exists());
        outbox.push(b"bad").unwrap();
        let (seq, _) = outbox.peek().unwrap().unwrap();
        outbox.reject(seq).unwrap();
        assert!(outbox.is_empty());
        assert!(
            dir.path()
                .join("rejected")
                .join(format!("{seq:020}.batch"))
                .exists()
        );
    }
}
