//! The repository suite, run against a local directory and against a real S3-compatible server
//! (moto): round trips, corruption, truncation, wrong keys, manifests as the commit point, aborted
//! uploads, and decryption of stored objects with the stock `age` and `zstd` tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use cloudkeep_backup::{
    DEFAULT_ZSTD_LEVEL, Identity, KeyPair, ManifestName, ObjectInfo, ObjectKey, Recipient,
    RepoError, RepoLocation, Repository, generate_keypair,
};
use cloudkeep_testkit::s3::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, TestS3};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const PREFIX: &str = "isv/acme";

/// Where the repository under test lives, with direct access to its raw bytes behind the code's back.
enum Backend {
    Local {
        dir: tempfile::TempDir,
    },
    S3 {
        server: TestS3,
        raw: Arc<dyn ObjectStore>,
    },
}

struct Fixture {
    backend: Backend,
    repository: Repository,
}

impl Fixture {
    fn local() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = RepoLocation::Local {
            path: dir.path().to_owned(),
            prefix: format!("{PREFIX}/"),
        };
        let repository = Repository::open(&location).unwrap();
        Fixture {
            backend: Backend::Local { dir },
            repository,
        }
    }

    fn s3() -> Option<Fixture> {
        let server = TestS3::start()?;
        let location = RepoLocation::S3 {
            endpoint: Some(server.url()),
            bucket: server.bucket().to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: TEST_ACCESS_KEY_ID.to_owned(),
            secret_access_key: TEST_SECRET_ACCESS_KEY.to_owned(),
            allow_http: true,
            prefix: format!("{PREFIX}/"),
        };
        let repository = Repository::open(&location).unwrap();
        let raw = AmazonS3Builder::new()
            .with_endpoint(server.url())
            .with_allow_http(true)
            .with_bucket_name(server.bucket())
            .with_region("us-east-1")
            .with_access_key_id(TEST_ACCESS_KEY_ID)
            .with_secret_access_key(TEST_SECRET_ACCESS_KEY)
            .build()
            .unwrap();
        Some(Fixture {
            backend: Backend::S3 {
                server,
                raw: Arc::new(raw),
            },
            repository,
        })
    }

    fn raw_path(key: &str) -> String {
        format!("{PREFIX}/{key}")
    }

    /// The stored bytes of `key`, read directly.
    async fn raw_get(&self, key: &str) -> Vec<u8> {
        match &self.backend {
            Backend::Local { dir } => std::fs::read(dir.path().join(Self::raw_path(key))).unwrap(),
            Backend::S3 { raw, .. } => raw
                .get(&StorePath::from(Self::raw_path(key)))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec(),
        }
    }

    /// Replaces the stored bytes of `key` directly (the local file is edited in place).
    async fn raw_put(&self, key: &str, bytes: Vec<u8>) {
        match &self.backend {
            Backend::Local { dir } => {
                std::fs::write(dir.path().join(Self::raw_path(key)), bytes).unwrap()
            }
            Backend::S3 { raw, .. } => {
                raw.put(
                    &StorePath::from(Self::raw_path(key)),
                    PutPayload::from(bytes),
                )
                .await
                .unwrap();
            }
        }
    }

    /// How many request lines moto logged containing `needle`; `None` on the local backend.
    fn s3_requests(&self, needle: &str) -> Option<usize> {
        match &self.backend {
            Backend::Local { .. } => None,
            Backend::S3 { server, .. } => Some(
                server
                    .request_log()
                    .iter()
                    .filter(|line| line.contains(needle))
                    .count(),
            ),
        }
    }

    /// moto's logged request lines that mention `key` (empty on the local backend), for messages.
    fn s3_log_for(&self, key: &str) -> Vec<String> {
        match &self.backend {
            Backend::Local { .. } => Vec::new(),
            Backend::S3 { server, .. } => server
                .request_log()
                .into_iter()
                .filter(|line| line.contains(key))
                .collect(),
        }
    }

    /// Every file or object the backend holds, whatever its name (staging files included), and
    /// for S3 every multipart upload still pending.
    fn everything_stored(&self) -> Vec<String> {
        match &self.backend {
            Backend::Local { dir } => {
                let mut found = Vec::new();
                walk(dir.path(), dir.path(), &mut found);
                found.sort();
                found
            }
            Backend::S3 { server, .. } => {
                let mut found = server.list_keys(server.bucket());
                found.extend(
                    server
                        .pending_multipart_uploads(server.bucket())
                        .into_iter()
                        .map(|key| format!("pending upload: {key}")),
                );
                found
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, found);
        } else {
            found.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// Runs a suite function on both backends (S3 is skipped outside CI when moto is missing).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name(super::Fixture::local()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                if let Some(fixture) = super::Fixture::s3() {
                    super::$name(fixture).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    round_trips_keep_data_and_records_exact,
    a_flipped_stored_byte_is_reported_as_corrupt,
    a_truncated_object_is_reported_and_nothing_is_restored,
    a_wrong_identity_is_refused_before_anything_is_written,
    manifests_are_the_only_thing_listed_as_backups,
    an_aborted_upload_leaves_nothing_visible,
    stock_age_and_zstd_decrypt_a_stored_object,
);

/// Deterministic data that zstd cannot shrink (xorshift64).
fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Text-like data that compresses well.
fn compressible(len: usize) -> Vec<u8> {
    let line = b"2026-01-02 03:04:05 UTC LOG:  checkpoint complete: wrote 42 buffers\n";
    line.iter().copied().cycle().take(len).collect()
}

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

async fn put(
    fixture: &Fixture,
    key_text: &str,
    data: &[u8],
    recipients: &[Recipient],
) -> ObjectInfo {
    fixture
        .repository
        .put_object(&key(key_text), data, recipients, DEFAULT_ZSTD_LEVEL)
        .await
        .unwrap()
}

async fn restore(
    fixture: &Fixture,
    info: &ObjectInfo,
    identity: &Identity,
) -> Result<Vec<u8>, RepoError> {
    let mut restored = Vec::new();
    fixture
        .repository
        .restore_object(info, std::slice::from_ref(identity), &mut restored)
        .await
        .map(|()| restored)
}

async fn round_trips_keep_data_and_records_exact(fixture: Fixture) {
    let KeyPair {
        recipient,
        identity,
    } = generate_keypair();
    let second = generate_keypair();
    let recipients = [recipient.clone(), second.recipient.clone()];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("small/empty", Vec::new()),
        ("small/one-byte", vec![0x42]),
        ("medium/text", compressible(3 << 20)),
        ("medium/random", incompressible(300 << 10, 7)),
        // 20 MiB that does not compress: three parts of a multipart upload.
        ("large/random", incompressible(20 << 20, 11)),
    ];
    for (key_text, data) in &cases {
        let info = put(&fixture, key_text, data, &recipients).await;
        let stored = fixture.raw_get(key_text).await;
        assert_eq!(info.key.as_str(), *key_text);
        assert_eq!(info.plain_len, data.len() as u64, "{key_text}");
        assert_eq!(info.plain_blake3, blake3::hash(data).to_hex().to_string());
        assert_eq!(info.stored_len, stored.len() as u64, "{key_text}");
        assert_eq!(
            info.stored_blake3,
            blake3::hash(&stored).to_hex().to_string()
        );
        assert!(
            stored.starts_with(b"age-encryption.org/v1\n"),
            "{key_text}: not a binary age file"
        );
        if key_text.starts_with("large") {
            assert!(
                stored.len() > 16 << 20,
                "stored only {} bytes",
                stored.len()
            );
        }
        // Only objects past one part (8 MiB stored) go as multipart uploads.
        let multipart = fixture.s3_requests(&format!(
            "POST /cloudkeep-test/{PREFIX}/{key_text}?uploads="
        ));
        if key_text.starts_with("large") {
            assert_ne!(
                multipart,
                Some(0),
                "{key_text}: {:#?}",
                fixture.s3_log_for(key_text)
            );
        } else {
            assert!(matches!(multipart, None | Some(0)), "{key_text}");
        }
        if *key_text == "medium/text" {
            assert!(stored.len() < data.len() / 10, "text was not compressed");
        }

        fixture.repository.verify_object(&info).await.unwrap();
        assert_eq!(&restore(&fixture, &info, &identity).await.unwrap(), data);
        // Any one of the recipients' identities decrypts it.
        assert_eq!(
            &restore(&fixture, &info, &second.identity).await.unwrap(),
            data,
            "{key_text} with the second identity"
        );
        // The record survives a manifest's JSON unchanged.
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ObjectInfo>(&json).unwrap(), info);
    }

    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("restored.bin");
    let (large_key, large_data) = cases.last().unwrap();
    let large_info = ObjectInfo {
        key: key(large_key),
        plain_len: large_data.len() as u64,
        stored_len: fixture.raw_get(large_key).await.len() as u64,
        plain_blake3: blake3::hash(large_data).to_hex().to_string(),
        stored_blake3: blake3::hash(&fixture.raw_get(large_key).await)
            .to_hex()
            .to_string(),
    };
    fixture
        .repository
        .restore_to_file(&large_info, std::slice::from_ref(&identity), &target)
        .await
        .unwrap();
    assert_eq!(&std::fs::read(&target).unwrap(), large_data);
    assert_eq!(std::fs::read_dir(target_dir.path()).unwrap().count(), 1);

    // Objects are written once: the same key again is refused, small or multipart.
    for (key_text, data) in [
        ("small/one-byte", vec![1u8]),
        ("large/random", incompressible(9 << 20, 3)),
    ] {
        let error = fixture
            .repository
            .put_object(&key(key_text), data.as_slice(), &recipients, 1)
            .await
            .unwrap_err();
        assert!(matches!(error, RepoError::AlreadyExists { .. }), "{error}");
        assert!(error.to_string().contains(key_text), "{error}");
    }
    // Still the original, intact.
    let listed = fixture.repository.list_objects("").await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|object| object.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "large/random",
            "medium/random",
            "medium/text",
            "small/empty",
            "small/one-byte"
        ]
    );
    let listed_large = listed.first().unwrap();
    assert_eq!(listed_large.stored_len, large_info.stored_len);
    assert!(listed_large.last_modified_ms > 1_600_000_000_000);
    fixture.repository.verify_object(&large_info).await.unwrap();

    // A record that disagrees with the data restored from intact stored bytes is caught too.
    let wrong_plain_hash = ObjectInfo {
        plain_blake3: blake3::hash(b"something else").to_hex().to_string(),
        ..large_info.clone()
    };
    let message = restore(&fixture, &wrong_plain_hash, &identity)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("/large/random: corrupt: restored blake3: expected "),
        "{message}"
    );
    let wrong_plain_len = ObjectInfo {
        plain_len: large_info.plain_len + 1,
        ..large_info.clone()
    };
    let message = restore(&fixture, &wrong_plain_len, &identity)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!(
            "corrupt: restored length: expected {} bytes, found {}",
            large_info.plain_len + 1,
            large_info.plain_len
        )),
        "{message}"
    );
    let bad_hex = ObjectInfo {
        stored_blake3: "xyz".to_owned(),
        ..large_info.clone()
    };
    let message = fixture
        .repository
        .verify_object(&bad_hex)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("object_info.stored_blake3: \"xyz\" is not a blake3 checksum"),
        "{message}"
    );

    // Retention's tools: delete, then it is gone (and deleting again is fine).
    fixture
        .repository
        .delete_object(&key("small/empty"))
        .await
        .unwrap();
    fixture
        .repository
        .delete_object(&key("small/empty"))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .repository
            .list_objects("small")
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_flipped_stored_byte_is_reported_as_corrupt(fixture: Fixture) {
    let pair = generate_keypair();
    let data = incompressible(200 << 10, 5);
    for (key_text, position) in [
        ("flip/payload", 100_000usize),
        // Inside the header's X25519 stanza: age alone would call it "no matching keys".
        ("flip/header", 40),
        ("flip/last", usize::MAX),
    ] {
        let info = put(
            &fixture,
            key_text,
            &data,
            std::slice::from_ref(&pair.recipient),
        )
        .await;
        let mut stored = fixture.raw_get(key_text).await;
        let position = position.min(stored.len() - 1);
        stored[position] ^= 0x01;
        fixture.raw_put(key_text, stored).await;

        for error in [
            fixture.repository.verify_object(&info).await.unwrap_err(),
            restore(&fixture, &info, &pair.identity).await.unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(
                matches!(error, RepoError::Corrupt { .. }),
                "{key_text}: {message}"
            );
            assert!(
                message.contains(&format!(
                    "{PREFIX}/{key_text}: corrupt: stored blake3: expected {}",
                    info.stored_blake3
                )),
                "{message}"
            );
        }
    }
}

async fn a_truncated_object_is_reported_and_nothing_is_restored(fixture: Fixture) {
    let pair = generate_keypair();
    let data = compressible(1 << 20);
    let info = put(
        &fixture,
        "cut/object",
        &data,
        std::slice::from_ref(&pair.recipient),
    )
    .await;
    let stored = fixture.raw_get("cut/object").await;
    fixture
        .raw_put("cut/object", stored[..stored.len() - 17].to_vec())
        .await;

    let expected = format!(
        "{PREFIX}/cut/object: truncated: expected {} stored bytes, found {}",
        info.stored_len,
        info.stored_len - 17
    );
    let verified = fixture.repository.verify_object(&info).await.unwrap_err();
    assert!(
        matches!(verified, RepoError::Truncated { .. }),
        "{verified}"
    );
    assert!(verified.to_string().contains(&expected), "{verified}");

    let mut restored = Vec::new();
    let error = fixture
        .repository
        .restore_object(&info, std::slice::from_ref(&pair.identity), &mut restored)
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&expected), "{error}");
    assert!(
        restored.is_empty(),
        "the length check comes before any data"
    );

    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("000000010000000000000001");
    let error = fixture
        .repository
        .restore_to_file(&info, std::slice::from_ref(&pair.identity), &target)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::Truncated { .. }), "{error}");
    assert_eq!(std::fs::read_dir(target_dir.path()).unwrap().count(), 0);

    // A missing object is named too.
    fixture.repository.delete_object(&info.key).await.unwrap();
    let error = fixture.repository.verify_object(&info).await.unwrap_err();
    assert!(matches!(error, RepoError::NotFound { .. }), "{error}");
    assert!(
        error.to_string().ends_with("/cut/object: not found"),
        "{error}"
    );
}

async fn a_wrong_identity_is_refused_before_anything_is_written(fixture: Fixture) {
    let owner = generate_keypair();
    let stranger = generate_keypair();
    let data = incompressible(10 << 20, 9);
    let info = put(
        &fixture,
        "keys/object",
        &data,
        std::slice::from_ref(&owner.recipient),
    )
    .await;

    let mut restored = Vec::new();
    let error = fixture
        .repository
        .restore_object(
            &info,
            std::slice::from_ref(&stranger.identity),
            &mut restored,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::WrongKey { .. }), "{error}");
    assert!(
        error.to_string().contains(&format!(
            "{PREFIX}/keys/object: none of the 1 given identities can decrypt it"
        )),
        "{error}"
    );
    assert!(restored.is_empty());

    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("restored");
    let error = fixture
        .repository
        .restore_to_file(&info, std::slice::from_ref(&stranger.identity), &target)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::WrongKey { .. }), "{error}");
    assert_eq!(std::fs::read_dir(target_dir.path()).unwrap().count(), 0);

    // The stored bytes are fine: anyone can verify them, and the right key restores them.
    fixture.repository.verify_object(&info).await.unwrap();
    let both = [stranger.identity.clone(), owner.identity.clone()];
    let mut restored = Vec::new();
    fixture
        .repository
        .restore_object(&info, &both, &mut restored)
        .await
        .unwrap();
    assert_eq!(restored, data);
}

async fn manifests_are_the_only_thing_listed_as_backups(fixture: Fixture) {
    let pair = generate_keypair();
    let recipients = std::slice::from_ref(&pair.recipient);
    let repository = &fixture.repository;
    assert!(repository.list_manifests("").await.unwrap().is_empty());
    assert!(repository.list_objects("").await.unwrap().is_empty());

    let first = put(&fixture, "base/20260102T030405Z/data/1", b"one", recipients).await;
    // Data objects whose names look like manifests are still not manifests.
    put(
        &fixture,
        "base/20260102T030405Z.manifest.json",
        b"decoy",
        recipients,
    )
    .await;
    put(&fixture, "wal/000000010000000000000001", b"wal", recipients).await;
    assert!(repository.list_manifests("").await.unwrap().is_empty());

    let name = ManifestName::new("base/20260102T030405Z").unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({ "objects": [first] })).unwrap();
    repository.put_manifest(&name, &manifest).await.unwrap();
    let error = repository
        .put_manifest(&name, br#"{"objects":[]}"#)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::AlreadyExists { .. }), "{error}");
    assert!(
        error.to_string().contains(&format!(
            "{PREFIX}/manifests/base/20260102T030405Z.manifest.json: already exists"
        )),
        "{error}"
    );
    assert_eq!(repository.get_manifest(&name).await.unwrap(), manifest);

    let invalid = ManifestName::new("base/broken").unwrap();
    let error = repository
        .put_manifest(&invalid, b"{not json")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepoError::InvalidManifest { .. }),
        "{error}"
    );

    let wal = ManifestName::new("wal/batch-0001").unwrap();
    repository.put_manifest(&wal, b"[]").await.unwrap();
    assert_eq!(
        repository.list_manifests("").await.unwrap(),
        [name.clone(), wal.clone()]
    );
    assert_eq!(
        repository.list_manifests("base/").await.unwrap(),
        std::slice::from_ref(&name)
    );
    assert!(
        repository
            .list_manifests("nothing")
            .await
            .unwrap()
            .is_empty()
    );

    let objects: Vec<String> = repository
        .list_objects("")
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key.to_string())
        .collect();
    assert_eq!(
        objects,
        [
            "base/20260102T030405Z.manifest.json",
            "base/20260102T030405Z/data/1",
            "wal/000000010000000000000001"
        ]
    );
    let error = repository.list_objects("manifests").await.unwrap_err();
    assert!(matches!(error, RepoError::InvalidName { .. }), "{error}");

    repository.delete_manifest(&name).await.unwrap();
    assert_eq!(repository.list_manifests("").await.unwrap(), [wal]);
    let error = repository.get_manifest(&name).await.unwrap_err();
    assert!(matches!(error, RepoError::NotFound { .. }), "{error}");
}

/// A source that yields `good` bytes of incompressible data, then fails.
struct FailingSource {
    data: Vec<u8>,
    position: usize,
}

impl tokio::io::AsyncRead for FailingSource {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
        buffer: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.position >= self.data.len() {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "disk read error at the end",
            )));
        }
        let end = self
            .data
            .len()
            .min(self.position + buffer.remaining().min(64 << 10));
        buffer.put_slice(&self.data[self.position..end]);
        self.position = end;
        std::task::Poll::Ready(Ok(()))
    }
}

async fn an_aborted_upload_leaves_nothing_visible(fixture: Fixture) {
    let pair = generate_keypair();
    // Past one part (a multipart upload was started) and well below one part.
    for (key_text, good) in [("aborted/large", 30 << 20), ("aborted/small", 100 << 10)] {
        let source = FailingSource {
            data: incompressible(good, 13),
            position: 0,
        };
        let error = fixture
            .repository
            .put_object(
                &key(key_text),
                source,
                std::slice::from_ref(&pair.recipient),
                1,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, RepoError::Source { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains(&format!("{PREFIX}/{key_text}: reading the data to back up failed, nothing was stored: disk read error")),
            "{message}"
        );
    }
    // On S3 the large one was a multipart upload, aborted.
    for request in ["POST", "DELETE"] {
        let suffix = if request == "POST" {
            "uploads="
        } else {
            "uploadId="
        };
        let needle = format!("{request} /cloudkeep-test/{PREFIX}/aborted/large?{suffix}");
        assert_ne!(
            fixture.s3_requests(&needle),
            Some(0),
            "{needle}: {:#?}",
            fixture.s3_log_for("aborted/large")
        );
    }
    assert!(
        fixture
            .repository
            .list_objects("")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        fixture
            .repository
            .list_manifests("")
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing at all behind the code's back either: no staging file, no pending upload.
    // The local store may leave the empty folders it created.
    assert_eq!(fixture.everything_stored(), Vec::<String>::new());

    // The key stays usable.
    let info = put(
        &fixture,
        "aborted/small",
        b"second try",
        std::slice::from_ref(&pair.recipient),
    )
    .await;
    assert_eq!(
        restore(&fixture, &info, &pair.identity).await.unwrap(),
        b"second try"
    );
}

/// Whether a stock tool is installed; under CI a missing one fails the test.
fn tool_present(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{path} not found (CI=true): apt-get install {package}"
    );
    eprintln!("skipping: {path} not found (apt-get install {package})");
    false
}

async fn stock_age_and_zstd_decrypt_a_stored_object(fixture: Fixture) {
    if !tool_present("/usr/bin/age", "age") || !tool_present("/usr/bin/zstd", "zstd") {
        return;
    }
    let pair = generate_keypair();
    let other = generate_keypair();
    let data = [compressible(2 << 20), incompressible(9 << 20, 17)].concat();
    put(
        &fixture,
        "interop/object",
        &data,
        &[other.recipient.clone(), pair.recipient.clone()],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let key_file: PathBuf = dir.path().join("key.txt");
    std::fs::write(
        &key_file,
        format!("# created: by the test\n{}", pair.identity.to_key_file()),
    )
    .unwrap();
    let object = dir.path().join("object.age");
    std::fs::write(&object, fixture.raw_get("interop/object").await).unwrap();

    let mut age = Command::new("/usr/bin/age")
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&object)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let zstd = Command::new("/usr/bin/zstd")
        .args(["-d", "-c"])
        .stdin(age.stdout.take().unwrap())
        .output()
        .unwrap();
    let mut age_stderr = String::new();
    std::io::Read::read_to_string(&mut age.stderr.take().unwrap(), &mut age_stderr).unwrap();
    let age_status = age.wait().unwrap();
    assert!(
        age_status.success() && zstd.status.success(),
        "age | zstd failed: age said {age_stderr:?}, zstd said {:?}",
        String::from_utf8_lossy(&zstd.stderr)
    );
    assert!(zstd.stdout == data, "stock tools restored different bytes");

    // The stock tool refuses the wrong key, as the library does.
    std::fs::write(&key_file, generate_keypair().identity.to_key_file()).unwrap();
    let refused = Command::new("/usr/bin/age")
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&object)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn opening_checks_the_location() {
    let missing = RepoLocation::Local {
        path: PathBuf::from("/nonexistent/cloudkeep-backups"),
        prefix: String::new(),
    };
    let message = Repository::open(&missing).unwrap_err().to_string();
    assert!(
        message.starts_with("repository.path: /nonexistent/cloudkeep-backups: cannot use it: "),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad_prefix = RepoLocation::Local {
        path: dir.path().to_owned(),
        prefix: "isv/../other".to_owned(),
    };
    let message = Repository::open(&bad_prefix).unwrap_err().to_string();
    assert!(
        message.starts_with("repository.prefix \"isv/../other\": "),
        "{message}"
    );

    let plain_http = RepoLocation::S3 {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        bucket: "b".to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: "a".to_owned(),
        secret_access_key: "s".to_owned(),
        allow_http: false,
        prefix: String::new(),
    };
    let message = Repository::open(&plain_http).unwrap_err().to_string();
    assert!(
        message.starts_with("repository.endpoint: \"http://127.0.0.1:9\" is plain http"),
        "{message}"
    );

    let opened = Repository::open(&RepoLocation::Local {
        path: dir.path().to_owned(),
        prefix: "/isv/acme/".to_owned(),
    })
    .unwrap();
    assert!(opened.root().ends_with("/isv/acme"), "{}", opened.root());
}

#[tokio::test]
async fn arguments_are_checked_before_anything_is_stored() {
    let fixture = Fixture::local();
    let error = fixture
        .repository
        .put_object(&key("a"), &b"x"[..], &[], DEFAULT_ZSTD_LEVEL)
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("recipients: no recipient"),
        "{error}"
    );
    let recipient = generate_keypair().recipient;
    let error = fixture
        .repository
        .put_object(&key("a"), &b"x"[..], &[recipient], 99)
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("zstd level: 99 is outside"),
        "{error}"
    );
    assert_eq!(fixture.everything_stored(), Vec::<String>::new());
}
