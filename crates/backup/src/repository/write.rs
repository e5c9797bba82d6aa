//! Writing one object: plaintext → blake3 → zstd → age → blake3 → upload, streamed with bounded
//! memory, and published only once complete.
//!
//! Three stages run at once, joined by bounded channels:
//! 1. this task reads the source in 1 MiB chunks;
//! 2. a blocking thread hashes, compresses and encrypts (zstd and age are synchronous writers) and
//!    cuts the stored bytes into 1 MiB chunks, hashing them too; zstd itself compresses on a
//!    worker thread of its own (see [`Encoding`]), so compressing overlaps the rest;
//! 3. this task uploads them. An object below one part (8 MiB stored) is sent with a single
//!    create-if-absent PUT; a larger one as a multipart upload of 8 MiB parts, at most two in
//!    flight. Memory stays under about 40 MiB whatever the object's size.
//!
//! Publication is atomic: a single PUT appears whole or not at all (the local store writes a
//! `#N` staging file and hard-links it into place); a multipart upload is invisible until
//! completed (the local store renames its staging file). On any failure the upload is aborted and
//! nothing appears under the key. A multipart upload cannot be create-if-absent (object_store
//! does not offer it), so before starting one the key is checked to be free; keys are meant to be
//! unique anyway.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::{ObjectInfo, Repository};
use crate::{ObjectKey, Recipient, RepoError};

/// The zstd level used unless configured: low, because the agent shares the database's CPU. On
/// PostgreSQL's pages level 1 is also no bigger than level 3 (see `docs/benchmarks.md`).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// How an object's plaintext is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// zstd level.
    pub level: i32,
    /// zstd worker threads. With 1 or more, compression runs on them while the encoder thread
    /// hashes and encrypts what they produced (a pipeline over two cores for one object); with 0
    /// the encoder thread compresses too. The output is one ordinary zstd frame either way.
    pub threads: u32,
}

impl Encoding {
    /// `level`, compressed on one worker thread beside the encoder.
    pub const fn new(level: i32) -> Self {
        Self { level, threads: 1 }
    }
}

impl From<i32> for Encoding {
    fn from(level: i32) -> Self {
        Self::new(level)
    }
}

/// Plaintext is read and handed over in chunks of this size.
const PLAIN_CHUNK: usize = 1 << 20;
/// Plaintext chunks waiting for the encoder.
const PLAIN_QUEUE: usize = 4;
/// Stored bytes are handed to the uploader in chunks of this size.
const STORED_CHUNK: usize = 1 << 20;
/// Stored chunks waiting for the uploader.
const STORED_QUEUE: usize = 4;
/// Size of a multipart part (S3 wants at least 5 MiB for all parts but the last).
pub(crate) const PART_SIZE: usize = 8 << 20;
/// Parts uploaded at the same time.
const PARTS_IN_FLIGHT: usize = 2;

/// What the reader hands to the encoder. `End` is explicit so that a reader that stops early
/// (error, cancellation) can never be mistaken for a complete source.
enum PlainMessage {
    Chunk(Bytes),
    End,
}

/// Why reading the source stopped.
enum FeedError {
    /// The source failed.
    Source(io::Error),
    /// The encoder stopped taking data (it failed, or the upload did).
    PipelineStopped,
}

/// What the encoder saw.
struct EncodeSummary {
    plain_len: u64,
    plain_hash: blake3::Hash,
    stored_len: u64,
    stored_hash: blake3::Hash,
}

/// Why the encoder stopped.
enum EncodeError {
    /// The reader went away without `End`: the source is incomplete.
    InputStopped,
    /// zstd or age failed, or the uploader went away.
    Io(io::Error),
}

/// The upload so far: buffered while smaller than one part, then a multipart upload.
enum PendingUpload {
    Small { chunks: Vec<Bytes>, len: usize },
    Multipart(WriteMultipart),
}

/// The encoder's output: hashes and counts the stored bytes and sends them on in chunks.
struct StoredSink {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    hasher: blake3::Hasher,
    len: u64,
}

impl StoredSink {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(STORED_CHUNK),
        ));
        self.sender
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for StoredSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = STORED_CHUNK.saturating_sub(self.buffer.len()).max(1);
        let taken = data.len().min(room);
        let (taken_data, _) = data.split_at(taken);
        self.hasher.update(taken_data);
        self.len += taken as u64;
        self.buffer.extend_from_slice(taken_data);
        if self.buffer.len() >= STORED_CHUNK {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    /// Nothing to do: chunks are sent when full, and the rest by `send_buffer` at the end.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Stage 1: reads the source and hands it over, then `End`.
async fn feed_plaintext<R: AsyncRead + Unpin>(
    source: &mut R,
    sender: mpsc::Sender<PlainMessage>,
) -> Result<(), FeedError> {
    loop {
        let mut buffer = BytesMut::with_capacity(PLAIN_CHUNK);
        let mut at_end = false;
        while buffer.len() < PLAIN_CHUNK {
            if source
                .read_buf(&mut buffer)
                .await
                .map_err(FeedError::Source)?
                == 0
            {
                at_end = true;
                break;
            }
        }
        if !buffer.is_empty() {
            sender
                .send(PlainMessage::Chunk(buffer.freeze()))
                .await
                .map_err(|_| FeedError::PipelineStopped)?;
        }
        if at_end {
            return sender
                .send(PlainMessage::End)
                .await
                .map_err(|_| FeedError::PipelineStopped);
        }
    }
}

/// Stage 2 (on a blocking thread): hashes, compresses and encrypts.
fn encode(
    mut input: mpsc::Receiver<PlainMessage>,
    output: mpsc::Sender<Bytes>,
    recipients: Vec<age::x25519::Recipient>,
    Encoding { level, threads }: Encoding,
) -> Result<EncodeSummary, EncodeError> {
    let sink = StoredSink {
        sender: output,
        buffer: Vec::with_capacity(STORED_CHUNK),
        hasher: blake3::Hasher::new(),
        len: 0,
    };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|error| EncodeError::Io(io::Error::other(error.to_string())))?;
    let encrypted = encryptor.wrap_output(sink).map_err(EncodeError::Io)?;
    let mut compressed =
        zstd::stream::write::Encoder::new(encrypted, level).map_err(EncodeError::Io)?;
    // zstd's own frame checksum lets `zstd -d` detect damage in a hand restore too.
    compressed.include_checksum(true).map_err(EncodeError::Io)?;
    if threads > 0 {
        compressed.multithread(threads).map_err(EncodeError::Io)?;
    }
    let mut plain_hasher = blake3::Hasher::new();
    let mut plain_len: u64 = 0;
    loop {
        match input.blocking_recv() {
            Some(PlainMessage::Chunk(chunk)) => {
                plain_hasher.update(&chunk);
                plain_len += chunk.len() as u64;
                compressed.write_all(&chunk).map_err(EncodeError::Io)?;
            }
            Some(PlainMessage::End) => break,
            None => return Err(EncodeError::InputStopped),
        }
    }
    let encrypted = compressed.finish().map_err(EncodeError::Io)?;
    // age's final chunk is written here; without it the object would not decrypt.
    let mut sink = encrypted.finish().map_err(EncodeError::Io)?;
    sink.send_buffer().map_err(EncodeError::Io)?;
    Ok(EncodeSummary {
        plain_len,
        plain_hash: plain_hasher.finalize(),
        stored_len: sink.len,
        stored_hash: sink.hasher.finalize(),
    })
}

impl Repository {
    /// Stores `source` under `key`, compressed with zstd as `encoding` says and encrypted to every one of
    /// `recipients`, and returns what to record in the manifest. The object appears under its key
    /// only once completely written and its stored length checked; on any error nothing appears
    /// (a multipart upload is aborted). `key` must not exist yet: objects are never replaced.
    ///
    /// If the returned future is dropped midway, a local staging file is removed, but an S3
    /// multipart upload stays pending (invisible, billed) until the bucket's lifecycle rule for
    /// incomplete multipart uploads removes it.
    pub async fn put_object<R: AsyncRead + Unpin>(
        &self,
        key: &ObjectKey,
        mut source: R,
        recipients: &[Recipient],
        encoding: impl Into<Encoding>,
    ) -> Result<ObjectInfo, RepoError> {
        let encoding = encoding.into();
        let level = encoding.level;
        if recipients.is_empty() {
            return Err(RepoError::Config {
                field: "recipients".to_owned(),
                message: "no recipient: an object must be encrypted to at least one age public key"
                    .to_owned(),
            });
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&level) {
            return Err(RepoError::Config {
                field: "zstd level".to_owned(),
                message: format!("{level} is outside {}..={}", levels.start(), levels.end()),
            });
        }
        let location = self.location(key.as_str());
        let path = self.store_path(key.as_str())?;
        let age_recipients: Vec<age::x25519::Recipient> = recipients
            .iter()
            .map(|recipient| recipient.as_age().clone())
            .collect();

        let (plain_sender, plain_receiver) = mpsc::channel(PLAIN_QUEUE);
        let (stored_sender, stored_receiver) = mpsc::channel(STORED_QUEUE);
        let encoder = tokio::task::spawn_blocking(move || {
            encode(plain_receiver, stored_sender, age_recipients, encoding)
        });
        let (fed, received) = tokio::join!(
            feed_plaintext(&mut source, plain_sender),
            self.receive_stored(key, &path, stored_receiver)
        );
        let encoded = encoder.await;

        // The first cause wins: a failing source makes the encoder and the uploader stop too.
        let pending = match (fed, received) {
            (Err(FeedError::Source(source)), received) => {
                if let Ok(pending) = received {
                    abort(pending).await;
                }
                return Err(RepoError::Source {
                    key: location,
                    source,
                });
            }
            (_, Err(error)) => return Err(error),
            (_, Ok(pending)) => pending,
        };
        let summary = match encoded {
            Ok(Ok(summary)) => summary,
            Ok(Err(EncodeError::Io(source))) => {
                abort(pending).await;
                return Err(RepoError::Encode {
                    key: location,
                    source,
                });
            }
            Ok(Err(EncodeError::InputStopped)) => {
                abort(pending).await;
                return Err(RepoError::Internal {
                    key: location,
                    message: "the source reader stopped without an error".to_owned(),
                });
            }
            Err(join_error) => {
                abort(pending).await;
                return Err(RepoError::Internal {
                    key: location,
                    message: format!("the encoder thread failed: {join_error}"),
                });
            }
        };

        self.publish(key, &path, pending).await?;
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(self.store_error(key.as_str(), "check after upload"))?;
        if meta.size != summary.stored_len {
            return Err(RepoError::Corrupt {
                key: location,
                what: format!(
                    "right after upload the store reports {} bytes, {} were written",
                    meta.size, summary.stored_len
                ),
            });
        }
        Ok(ObjectInfo {
            key: key.clone(),
            plain_len: summary.plain_len,
            stored_len: summary.stored_len,
            plain_blake3: summary.plain_hash.to_hex().to_string(),
            stored_blake3: summary.stored_hash.to_hex().to_string(),
        })
    }

    /// Stage 3: collects stored chunks, switching to a multipart upload past one part. On error
    /// the multipart upload (if any) is already aborted.
    async fn receive_stored(
        &self,
        key: &ObjectKey,
        path: &StorePath,
        mut input: mpsc::Receiver<Bytes>,
    ) -> Result<PendingUpload, RepoError> {
        let mut pending = PendingUpload::Small {
            chunks: Vec::new(),
            len: 0,
        };
        while let Some(chunk) = input.recv().await {
            pending = match pending {
                PendingUpload::Small { mut chunks, len } => {
                    let len = len + chunk.len();
                    chunks.push(chunk);
                    if len < PART_SIZE {
                        PendingUpload::Small { chunks, len }
                    } else {
                        self.refuse_existing(key, path).await?;
                        let upload = self
                            .store
                            .put_multipart(path)
                            .await
                            .map_err(self.store_error(key.as_str(), "start of upload"))?;
                        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                        for chunk in chunks {
                            writer.put(chunk);
                        }
                        PendingUpload::Multipart(writer)
                    }
                }
                PendingUpload::Multipart(mut writer) => {
                    if let Err(error) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        let _ = writer.abort().await;
                        return Err(self.store_error(key.as_str(), "upload")(error));
                    }
                    writer.put(chunk);
                    PendingUpload::Multipart(writer)
                }
            };
        }
        Ok(pending)
    }

    /// Fails with [`RepoError::AlreadyExists`] when something is stored under `key`.
    async fn refuse_existing(&self, key: &ObjectKey, path: &StorePath) -> Result<(), RepoError> {
        match self.store.head(path).await {
            Ok(_) => Err(RepoError::AlreadyExists {
                key: self.location(key.as_str()),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.store_error(key.as_str(), "check that the key is free")(error)),
        }
    }

    /// Makes the complete object visible under its key.
    async fn publish(
        &self,
        key: &ObjectKey,
        path: &StorePath,
        pending: PendingUpload,
    ) -> Result<(), RepoError> {
        match pending {
            PendingUpload::Small { chunks, .. } => {
                let options = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                self.store
                    .put_opts(path, chunks.into_iter().collect::<PutPayload>(), options)
                    .await
                    .map_err(self.store_error(key.as_str(), "upload"))?;
            }
            PendingUpload::Multipart(writer) => {
                // `finish` aborts the upload itself when completing fails.
                writer
                    .finish()
                    .await
                    .map_err(self.store_error(key.as_str(), "completion of upload"))?;
            }
        }
        Ok(())
    }
}

/// Drops an unfinished upload, removing its parts. A failure to abort is not reported: the
/// upload stays invisible either way, and only costs storage until a lifecycle rule removes it.
async fn abort(pending: PendingUpload) {
    if let PendingUpload::Multipart(writer) = pending {
        let _ = writer.abort().await;
    }
}
