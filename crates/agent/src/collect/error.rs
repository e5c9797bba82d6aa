//! The collectors' error type: every variant names the file it concerns.

use std::path::PathBuf;

/// Why a collector could not produce its samples.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is not what the kernel writes.
    #[error("malformed {}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
}

impl CollectError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. } | Self::Malformed { path, .. } => path,
        }
    }
}
