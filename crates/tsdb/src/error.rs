//! The crate-wide error type

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating system call failed on the named path.
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file on disk does not have the expected structure.
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The caller passed something the engine cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// pcodec refused to compress a chunk.
    #[error("compression failed: {0}")]
    Compression(String),
    /// A previous wal write failed and could not be rolled back, so further appends could corrupt the log.
    #[error(
        "wal is unusable after a failed write that could not be rolled back; reopen the database"
    )]
    WalPoisoned,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
