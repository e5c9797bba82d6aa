//! The error of the PostgreSQL backup layer: what failed, where, and what to do.

use std::path::PathBuf;

use crate::RepoError;

/// What can go wrong archiving, backing up, verifying or restoring a database.
#[derive(Debug, thiserror::Error)]
pub enum PgBackupError {
    /// The repository failed (names the object).
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A WAL file name is not one PostgreSQL writes.
    #[error("{name:?} is not a WAL file name (expected e.g. 000000010000000000000003)")]
    NotWal {
        /// The name as given.
        name: String,
    },
    /// A WAL file is already archived with other content.
    #[error(
        "WAL file {name} is already archived with different content (blake3 {archived} in the repository, {local} here): another cluster or timeline wrote this name; refusing to overwrite"
    )]
    WalConflict {
        /// The file's name.
        name: String,
        /// blake3 of the archived copy.
        archived: String,
        /// blake3 of the local file.
        local: String,
    },
    /// A manifest or receipt in the repository cannot be read as one.
    #[error("manifest {name}: {message}")]
    Manifest {
        /// The manifest's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The data directory holds something this version cannot back up.
    #[error("{}: {message}", path.display())]
    Unsupported {
        /// What was found.
        path: PathBuf,
        /// Why it is refused.
        message: String,
    },
    /// No restore can reach the requested target with what the repository holds.
    #[error("cannot restore: {0}")]
    Plan(String),
    /// The restore destination is unusable.
    #[error("{}: {message}", path.display())]
    Destination {
        /// The destination.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// PostgreSQL failed to start, recover or stop.
    #[error("postgresql: {0}")]
    Postgres(String),
}

impl PgBackupError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PgBackupError {
        let path = path.into();
        move |source| PgBackupError::Io { path, source }
    }
}
