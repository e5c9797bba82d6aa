//! Reading files below the proc root and turning parse failures into errors that name the file.

use std::fmt::Display;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use procfs::FromRead;

use crate::collect::{CollectError, ProcRoot};

/// A proc file's path and its whole content, read in one go so the kernel's snapshot is
/// consistent and parse errors are separated from I/O errors.
pub(crate) struct ProcFile {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
}

impl ProcFile {
    pub(crate) fn read(root: &ProcRoot, rel: &str) -> Result<Self, CollectError> {
        let path = root.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Self { path, bytes }),
            Err(source) => Err(CollectError::Read { path, source }),
        }
    }

    /// The content as text; proc files are ASCII, anything else is malformed.
    pub(crate) fn text(&self) -> Result<&str, CollectError> {
        std::str::from_utf8(&self.bytes).map_err(|e| self.malformed(e))
    }

    pub(crate) fn malformed(&self, reason: impl Display) -> CollectError {
        malformed(&self.path, reason)
    }

    /// Parse the content with one of procfs's `FromRead` types.
    pub(crate) fn parse<T: FromRead>(&self) -> Result<T, CollectError> {
        T::from_read(Cursor::new(&self.bytes)).map_err(|e| self.malformed(e))
    }
}

pub(crate) fn malformed(path: &Path, reason: impl Display) -> CollectError {
    let reason = reason.to_string();
    let mut chars = reason.chars();
    let reason = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::from("unparsable content"),
    };
    CollectError::Malformed {
        path: path.to_owned(),
        reason,
    }
}

/// The `btime` line of `<root>/stat`: boot time in Unix seconds. Rate trackers use it to
/// notice a reboot between two collections.
pub(crate) fn boot_time(root: &ProcRoot) -> Result<u64, CollectError> {
    let file = ProcFile::read(root, "stat")?;
    boot_time_from(&file)
}

pub(crate) fn boot_time_from(file: &ProcFile) -> Result<u64, CollectError> {
    let text = file.text()?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .ok_or_else(|| file.malformed("no btime line"))?;
    value
        .trim()
        .parse::<u64>()
        .map_err(|e| file.malformed(format_args!("btime {value:?}: {e}")))
}

/// Parse with one of procfs's types that want system information (`KernelStats`). The values
/// given here only feed procfs's tick-to-millisecond helpers, which the collectors never call:
/// they use the raw jiffy counts.
pub(crate) fn parse_kernel_stats(file: &ProcFile) -> Result<procfs::KernelStats, CollectError> {
    use procfs::FromReadSI;
    let info = procfs::ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    procfs::KernelStats::from_read(Cursor::new(&file.bytes), &info).map_err(|e| file.malformed(e))
}
