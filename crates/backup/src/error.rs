//! The one error type of the repository layer: every variant says which object (by its full
//! location, e.g. `s3://bucket/isv/acme/wal/…`) and what went wrong.

/// What can go wrong opening, writing, reading or listing a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The configuration or an argument is unusable.
    #[error("{field}: {message}")]
    Config {
        /// The setting or argument at fault, e.g. `repository.path`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An object key, manifest name or prefix breaks the naming rules.
    #[error("{what} {name:?}: {reason}")]
    InvalidName {
        /// What kind of name, e.g. `object key`.
        what: String,
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The object or manifest does not exist.
    #[error("object {key}: not found")]
    NotFound {
        /// Its full location.
        key: String,
    },
    /// Something already exists under a key meant to be written once.
    #[error("object {key}: already exists, refusing to overwrite it")]
    AlreadyExists {
        /// Its full location.
        key: String,
    },
    /// The stored bytes or the data they decode to differ from what was recorded at write time.
    #[error("object {key}: corrupt: {what}")]
    Corrupt {
        /// Its full location.
        key: String,
        /// What differs, with the expected and the actual value.
        what: String,
    },
    /// The stored object is shorter than recorded at write time.
    #[error("object {key}: truncated: expected {expected} stored bytes, found {actual}")]
    Truncated {
        /// Its full location.
        key: String,
        /// The stored length recorded at write time.
        expected: u64,
        /// The stored length found.
        actual: u64,
    },
    /// None of the given identities can decrypt the object (it is intact, but encrypted to other
    /// recipients).
    #[error(
        "object {key}: none of the {identities} given identities can decrypt it (it was encrypted to other recipients)"
    )]
    WrongKey {
        /// Its full location.
        key: String,
        /// How many identities were tried.
        identities: usize,
    },
    /// The object store failed (network, permissions, disk).
    #[error("object {key}: {operation} failed: {source}")]
    Store {
        /// Its full location (or the repository's for listings).
        key: String,
        /// What was being done, e.g. `upload`.
        operation: &'static str,
        /// The store's error.
        source: object_store::Error,
    },
    /// Reading the data to back up failed; nothing was stored.
    #[error("object {key}: reading the data to back up failed, nothing was stored: {source}")]
    Source {
        /// The full location it was meant for.
        key: String,
        /// The reader's error.
        source: std::io::Error,
    },
    /// Writing the restored data to its destination failed.
    #[error("object {key}: writing the restored data failed: {source}")]
    Destination {
        /// Its full location.
        key: String,
        /// The writer's error.
        source: std::io::Error,
    },
    /// Compressing or encrypting failed; nothing was stored.
    #[error("object {key}: compressing or encrypting failed, nothing was stored: {source}")]
    Encode {
        /// The full location it was meant for.
        key: String,
        /// The encoder's error.
        source: std::io::Error,
    },
    /// A manifest is not valid JSON (refused on write, reported on read).
    #[error("manifest {key}: not valid JSON: {message}")]
    InvalidManifest {
        /// Its full location.
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A background task of the pipeline ended abnormally (a bug, or the runtime shutting down).
    #[error("object {key}: internal error: {message}")]
    Internal {
        /// The full location being worked on.
        key: String,
        /// What happened.
        message: String,
    },
}
