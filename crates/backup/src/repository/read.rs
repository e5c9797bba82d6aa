//! Reading one object back: download → blake3 → age → zstd → blake3 → destination, and verifying
//! an object's stored bytes without any key.
//!
//! The stored length is checked against the record before anything is decrypted; the stored and
//! plaintext checksums and lengths once everything went through. Plaintext reaches the destination
//! while it streams, so a caller of [`Repository::restore_object`] must treat the destination as
//! garbage unless `Ok` came back; [`Repository::restore_to_file`] does that for files (a
//! temporary name, renamed into place only after every check passed), which is what a restore
//! uses so that PostgreSQL never starts on unverified data.
//!
//! When decryption or decompression fails midway, the rest of the stored object is still read
//! and hashed, so the error says precisely whether the stored bytes changed (corrupt,
//! truncated) or the key is wrong. That costs reading the whole object on that error path.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{GetResultPayload, ObjectStoreExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{ObjectInfo, Repository};
use crate::{Identity, RepoError};

/// Plaintext is handed to the destination in chunks of this size.
const PLAIN_CHUNK: usize = 1 << 20;
/// Chunks waiting in either queue.
const QUEUE: usize = 4;

/// Where the stored bytes come from: a local file read directly on the blocking thread, or a
/// download stream forwarded by the async side.
enum StoredSource {
    File(std::fs::File, std::ops::Range<u64>),
    Stream(mpsc::Receiver<Bytes>),
}

/// A blocking reader over downloaded chunks; the end of the channel is the end of the data (a
/// failed download is reported by the task that fed it).
struct ChannelReader {
    receiver: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let taken = buffer.len().min(self.current.len());
        let chunk = self.current.split_to(taken);
        buffer
            .get_mut(..taken)
            .ok_or_else(|| io::Error::other("read buffer shorter than reported"))?
            .copy_from_slice(&chunk);
        Ok(taken)
    }
}

/// Counts and hashes the stored bytes as they are read, and remembers a failure of the source.
struct HashingReader {
    inner: Box<dyn Read + Send>,
    hasher: blake3::Hasher,
    len: u64,
    failure: Option<io::Error>,
}

impl Read for HashingReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buffer) {
            Ok(read) => {
                let data = buffer.get(..read).unwrap_or_default();
                self.hasher.update(data);
                self.len += read as u64;
                Ok(read)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let copy = io::Error::new(error.kind(), error.to_string());
                self.failure = Some(error);
                Err(copy)
            }
        }
    }
}

/// Why decoding stopped early.
enum DecodeFailure {
    /// age refused the header or the identities.
    Decrypt(age::DecryptError),
    /// age's payload or zstd's frame is damaged (or the source failed).
    Io(io::Error),
    /// The destination went away (its error is reported by the writer).
    OutputGone,
}

/// What the plaintext turned out to be.
struct PlainSummary {
    len: u64,
    hash: blake3::Hash,
}

/// Everything the blocking thread learned.
struct DecodeReport {
    stored_len: u64,
    stored_hash: blake3::Hash,
    source_failure: Option<io::Error>,
    /// `None` when only verifying.
    outcome: Option<Result<PlainSummary, DecodeFailure>>,
}

/// Decrypts and decompresses, sending plaintext chunks on.
fn decode_into(
    reader: &mut HashingReader,
    identities: &[age::x25519::Identity],
    output: &mpsc::Sender<Bytes>,
) -> Result<PlainSummary, DecodeFailure> {
    let decryptor = age::Decryptor::new(reader).map_err(DecodeFailure::Decrypt)?;
    let plaintext = decryptor
        .decrypt(
            identities
                .iter()
                .map(|identity| identity as &dyn age::Identity),
        )
        .map_err(DecodeFailure::Decrypt)?;
    let mut decompressed =
        zstd::stream::read::Decoder::new(plaintext).map_err(DecodeFailure::Io)?;
    let mut hasher = blake3::Hasher::new();
    let mut len: u64 = 0;
    loop {
        let mut chunk = vec![0u8; PLAIN_CHUNK];
        let mut filled = 0;
        while filled < PLAIN_CHUNK {
            let free = chunk.get_mut(filled..).unwrap_or_default();
            match decompressed.read(free) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(DecodeFailure::Io(error)),
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        hasher.update(&chunk);
        len += filled as u64;
        output
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| DecodeFailure::OutputGone)?;
    }
    Ok(PlainSummary {
        len,
        hash: hasher.finalize(),
    })
}

/// The blocking thread: reads (and hashes) the stored bytes, decoding them when `decode` is given.
fn read_stored(
    source: StoredSource,
    decode: Option<(Vec<age::x25519::Identity>, mpsc::Sender<Bytes>)>,
    destination_failed: Arc<AtomicBool>,
) -> DecodeReport {
    let inner: io::Result<Box<dyn Read + Send>> = match source {
        StoredSource::File(mut file, range) => file
            .seek(SeekFrom::Start(range.start))
            .map(|_| Box::new(file.take(range.end.saturating_sub(range.start))) as _),
        StoredSource::Stream(receiver) => Ok(Box::new(ChannelReader {
            receiver,
            current: Bytes::new(),
        })),
    };
    let mut reader = match inner {
        Ok(inner) => HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            len: 0,
            failure: None,
        },
        Err(error) => {
            return DecodeReport {
                stored_len: 0,
                stored_hash: blake3::Hasher::new().finalize(),
                source_failure: Some(error),
                outcome: None,
            };
        }
    };
    let outcome = decode.map(|(identities, output)| {
        let outcome = decode_into(&mut reader, &identities, &output);
        drop(output);
        outcome
    });
    let stop_early = matches!(outcome, Some(Err(DecodeFailure::OutputGone)))
        || destination_failed.load(Ordering::Relaxed);
    if !stop_early {
        // Read what decoding left (all of it when only verifying) so the stored checksum covers
        // every byte; a failure is recorded by the reader.
        let _ = io::copy(&mut reader, &mut io::sink());
    }
    DecodeReport {
        stored_len: reader.len,
        stored_hash: reader.hasher.finalize(),
        source_failure: reader.failure,
        outcome,
    }
}

/// Forwards a download stream to the blocking thread; ends early if that thread stops reading.
async fn forward_download(
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    sender: Option<mpsc::Sender<Bytes>>,
) -> Result<(), object_store::Error> {
    let (Some(mut stream), Some(sender)) = (stream, sender) else {
        return Ok(());
    };
    while let Some(chunk) = stream.next().await {
        if sender.send(chunk?).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes plaintext chunks to the destination and flushes it; on failure tells the reader.
async fn write_plaintext<W: AsyncWrite + Unpin>(
    receiver: Option<mpsc::Receiver<Bytes>>,
    destination: Option<&mut W>,
    destination_failed: &AtomicBool,
) -> io::Result<()> {
    let (Some(mut receiver), Some(destination)) = (receiver, destination) else {
        return Ok(());
    };
    let result = async {
        while let Some(chunk) = receiver.recv().await {
            destination.write_all(&chunk).await?;
        }
        destination.flush().await
    }
    .await;
    if result.is_err() {
        destination_failed.store(true, Ordering::Relaxed);
    }
    result
}

fn parse_recorded_hash(text: &str, field: &str) -> Result<blake3::Hash, RepoError> {
    blake3::Hash::from_hex(text).map_err(|error| RepoError::Config {
        field: format!("object_info.{field}"),
        message: format!("{text:?} is not a blake3 checksum in hex: {error}"),
    })
}

impl Repository {
    /// Checks the stored bytes of an object against its record (length and blake3), without any
    /// key: proves the repository still holds exactly what was written.
    pub async fn verify_object(&self, info: &ObjectInfo) -> Result<(), RepoError> {
        self.read_object::<tokio::io::Sink>(info, None).await
    }

    /// Decrypts an object with the first of `identities` that fits, decompresses it and writes
    /// the original data to `destination`, then checks lengths and checksums of both the stored
    /// and the original bytes. Data reaches `destination` while it streams: on any error its
    /// contents are undefined and must be discarded (see [`Repository::restore_to_file`]). A
    /// wrong key and a stored length that differs from the record are found before anything is
    /// written.
    pub async fn restore_object<W: AsyncWrite + Unpin>(
        &self,
        info: &ObjectInfo,
        identities: &[Identity],
        destination: &mut W,
    ) -> Result<(), RepoError> {
        if identities.is_empty() {
            return Err(RepoError::Config {
                field: "identities".to_owned(),
                message: "no identity: restoring needs at least one age secret key".to_owned(),
            });
        }
        self.read_object(info, Some((identities, destination)))
            .await
    }

    /// Restores an object into the file `path` all or nothing: the data goes to a temporary file
    /// beside it (`.<name>.cloudkeep-partial`), is flushed to disk, and is renamed to `path`
    /// (replacing it) only once every check passed. On error the temporary file is removed and
    /// `path` is untouched.
    pub async fn restore_to_file(
        &self,
        info: &ObjectInfo,
        identities: &[Identity],
        path: &Path,
    ) -> Result<(), RepoError> {
        let location = self.location(info.key.as_str());
        let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(RepoError::Config {
                field: "restore destination".to_owned(),
                message: format!("{}: not a file path", path.display()),
            });
        };
        let temporary = directory.join(format!(".{}.cloudkeep-partial", name.to_string_lossy()));
        let destination_error = |source: io::Error| RepoError::Destination {
            key: location.clone(),
            source: io::Error::new(source.kind(), format!("{}: {source}", path.display())),
        };
        let result = async {
            let mut file = tokio::fs::File::create(&temporary)
                .await
                .map_err(destination_error)?;
            self.restore_object(info, identities, &mut file).await?;
            file.sync_all().await.map_err(destination_error)?;
            drop(file);
            tokio::fs::rename(&temporary, path)
                .await
                .map_err(destination_error)?;
            // The rename itself must survive a crash too.
            let directory = if directory.as_os_str().is_empty() {
                Path::new(".")
            } else {
                directory
            };
            tokio::fs::File::open(directory)
                .await
                .map_err(destination_error)?
                .sync_all()
                .await
                .map_err(destination_error)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
        result
    }

    async fn read_object<W: AsyncWrite + Unpin>(
        &self,
        info: &ObjectInfo,
        decode: Option<(&[Identity], &mut W)>,
    ) -> Result<(), RepoError> {
        let key = info.key.as_str();
        let location = self.location(key);
        let expected_stored = parse_recorded_hash(&info.stored_blake3, "stored_blake3")?;
        let expected_plain = parse_recorded_hash(&info.plain_blake3, "plain_blake3")?;
        let path = self.store_path(key)?;
        let download = self
            .store
            .get(&path)
            .await
            .map_err(self.store_error(key, "download"))?;
        let found = download.meta.size;
        if found < info.stored_len {
            return Err(RepoError::Truncated {
                key: location,
                expected: info.stored_len,
                actual: found,
            });
        }
        if found > info.stored_len {
            return Err(RepoError::Corrupt {
                key: location,
                what: format!(
                    "stored length: expected {} bytes, found {found}",
                    info.stored_len
                ),
            });
        }

        let (source, stream, stored_sender) = match download.payload {
            GetResultPayload::File(file, _) => {
                (StoredSource::File(file, download.range.clone()), None, None)
            }
            GetResultPayload::Stream(stream) => {
                let (sender, receiver) = mpsc::channel(QUEUE);
                (StoredSource::Stream(receiver), Some(stream), Some(sender))
            }
        };
        let identity_count = decode
            .as_ref()
            .map_or(0, |(identities, _)| identities.len());
        let (decode_arguments, plain_receiver, destination) = match decode {
            Some((identities, destination)) => {
                let (sender, receiver) = mpsc::channel(QUEUE);
                let identities: Vec<age::x25519::Identity> = identities
                    .iter()
                    .map(|identity| identity.as_age().clone())
                    .collect();
                (
                    Some((identities, sender)),
                    Some(receiver),
                    Some(destination),
                )
            }
            None => (None, None, None),
        };
        let destination_failed = Arc::new(AtomicBool::new(false));
        let reader = {
            let destination_failed = Arc::clone(&destination_failed);
            tokio::task::spawn_blocking(move || {
                read_stored(source, decode_arguments, destination_failed)
            })
        };
        let (downloaded, written) = tokio::join!(
            forward_download(stream, stored_sender),
            write_plaintext(plain_receiver, destination, &destination_failed)
        );
        let report = reader.await.map_err(|join_error| RepoError::Internal {
            key: location.clone(),
            message: format!("the decoder thread failed: {join_error}"),
        })?;

        // Causes first: the transport, the destination; then what the bytes say.
        if let Err(source) = downloaded {
            return Err(self.store_error(key, "download")(source));
        }
        if let Err(source) = written {
            return Err(RepoError::Destination {
                key: location,
                source,
            });
        }
        if let Some(failure) = report.source_failure {
            return Err(RepoError::Store {
                key: location,
                operation: "download",
                source: object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(failure),
                },
            });
        }
        if report.stored_len < info.stored_len {
            return Err(RepoError::Truncated {
                key: location,
                expected: info.stored_len,
                actual: report.stored_len,
            });
        }
        if report.stored_len > info.stored_len {
            return Err(mismatch(
                location,
                "stored length",
                format!("{} bytes", info.stored_len),
                report.stored_len,
            ));
        }
        if report.stored_hash != expected_stored {
            return Err(mismatch(
                location,
                "stored blake3",
                expected_stored.to_hex(),
                report.stored_hash.to_hex(),
            ));
        }
        let plain = match report.outcome {
            None => return Ok(()),
            Some(Ok(plain)) => plain,
            Some(Err(DecodeFailure::Decrypt(age::DecryptError::NoMatchingKeys))) => {
                return Err(RepoError::WrongKey {
                    key: location,
                    identities: identity_count,
                });
            }
            Some(Err(DecodeFailure::Decrypt(error))) => {
                return Err(RepoError::Corrupt {
                    key: location,
                    what: format!(
                        "the stored bytes match their record but do not decrypt: {error}"
                    ),
                });
            }
            Some(Err(DecodeFailure::Io(error))) => {
                return Err(RepoError::Corrupt {
                    key: location,
                    what: format!(
                        "the stored bytes match their record but do not decrypt or decompress: {error}"
                    ),
                });
            }
            Some(Err(DecodeFailure::OutputGone)) => {
                return Err(RepoError::Internal {
                    key: location,
                    message: "the writer stopped without an error".to_owned(),
                });
            }
        };
        if plain.len != info.plain_len {
            return Err(mismatch(
                location,
                "restored length",
                format!("{} bytes", info.plain_len),
                plain.len,
            ));
        }
        if plain.hash != expected_plain {
            return Err(mismatch(
                location,
                "restored blake3",
                expected_plain.to_hex(),
                plain.hash.to_hex(),
            ));
        }
        Ok(())
    }
}

/// A stored or restored property that differs from the object's record.
fn mismatch(
    key: String,
    what: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> RepoError {
    RepoError::Corrupt {
        key,
        what: format!("{what}: expected {expected}, found {found}"),
    }
}
