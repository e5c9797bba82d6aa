//! A backup repository: opening it from a [`RepoLocation`], the records kept for each object, and
//! manifests (the commit point), listings and deletion. Writing objects is in `repository/write.rs`,
//! reading and verifying them in `repository/read.rs`.
//!
//! Layout below the repository's prefix:
//! - data objects under caller-chosen unique keys (anything but `manifests/…`), each stored as
//!   exactly `age(zstd(plaintext))`, so `age -d -i key.txt OBJECT | zstd -d` restores it by hand;
//! - manifests at `manifests/<name>.manifest.json`: small plaintext JSON documents, written once
//!   with create-if-absent. A backup exists only once its manifest does: the catalog lists
//!   manifests, never data objects, so a half-written or orphaned object is never taken for a
//!   backup. Manifests are not encrypted so that the server can list and check backups (sizes,
//!   checksums, times) without any private key; they must therefore hold no secret and no
//!   customer data, only names, sizes, checksums and times.

mod read;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::names::{MANIFEST_FOLDER, normalize_prefix};
use crate::{ManifestName, ObjectKey, RepoError, RepoLocation};

pub use write::{DEFAULT_ZSTD_LEVEL, Encoding};

/// The largest manifest accepted, so a damaged or hostile store cannot make a reader allocate
/// without bound.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// What was stored for one object: enough to find, verify and decrypt it later. Recorded in
/// manifests (it holds no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectInfo {
    /// The object's key below the repository's prefix.
    pub key: ObjectKey,
    /// Length of the original data.
    pub plain_len: u64,
    /// Length of the stored (compressed, encrypted) bytes.
    pub stored_len: u64,
    /// blake3 of the original data, lowercase hex: checked after every restore.
    pub plain_blake3: String,
    /// blake3 of the stored bytes, lowercase hex: lets anyone verify the object without the key.
    pub stored_blake3: String,
}

/// A data object found by [`Repository::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Its key below the repository's prefix.
    pub key: ObjectKey,
    /// Its stored length.
    pub stored_len: u64,
    /// When the store last wrote it, Unix milliseconds (for retention: leave recent unreferenced
    /// objects alone, their manifest may be on its way).
    pub last_modified_ms: i64,
}

/// An open repository: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Repository {
    /// The store, already narrowed to the repository's prefix.
    store: Arc<dyn ObjectStore>,
    /// How to show the repository in messages: `/srv/backups/isv/acme` or `s3://bucket/isv/acme`.
    root: String,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Repository({})", self.root)
    }
}

fn config_error(field: &str, message: impl Into<String>) -> RepoError {
    RepoError::Config {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn narrowed(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(
            store,
            StorePath::from_iter(prefix.split('/')),
        ))
    }
}

impl Repository {
    /// Opens a repository. A local directory must exist (the prefix below it is created on first
    /// write); an S3 bucket is not contacted until the first operation.
    pub fn open(location: &RepoLocation) -> Result<Repository, RepoError> {
        let prefix = normalize_prefix(location.prefix(), "repository.prefix")?;
        match location {
            RepoLocation::Local { path, .. } => {
                let metadata = std::fs::metadata(path).map_err(|error| {
                    config_error(
                        "repository.path",
                        format!("{}: cannot use it: {error}", path.display()),
                    )
                })?;
                if !metadata.is_dir() {
                    return Err(config_error(
                        "repository.path",
                        format!("{}: not a directory", path.display()),
                    ));
                }
                let local = LocalFileSystem::new_with_prefix(path)
                    .map_err(|error| {
                        config_error(
                            "repository.path",
                            format!("{}: cannot use it: {error}", path.display()),
                        )
                    })?
                    // Without fsync a crash after "written" could lose an object a manifest names.
                    .with_fsync(true);
                let shown = path.display().to_string();
                let root = [shown.trim_end_matches('/'), prefix.as_str()]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                Ok(Repository {
                    store: narrowed(Arc::new(local), &prefix),
                    root,
                })
            }
            RepoLocation::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                ..
            } => {
                if bucket.trim().is_empty() {
                    return Err(config_error("repository.bucket", "empty"));
                }
                if access_key_id.trim().is_empty() {
                    return Err(config_error("repository.access_key_id", "empty"));
                }
                if secret_access_key.is_empty() {
                    return Err(config_error("repository.secret_access_key", "empty"));
                }
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key)
                    .with_virtual_hosted_style_request(false);
                if let Some(endpoint) = endpoint {
                    if endpoint.starts_with("http://") {
                        if !allow_http {
                            return Err(config_error(
                                "repository.endpoint",
                                format!(
                                    "{endpoint:?} is plain http: use https, or set allow_http: true for a trusted network"
                                ),
                            ));
                        }
                    } else if !endpoint.starts_with("https://") {
                        return Err(config_error(
                            "repository.endpoint",
                            format!("{endpoint:?} is not an http(s) URL"),
                        ));
                    }
                    builder = builder.with_endpoint(endpoint).with_allow_http(*allow_http);
                }
                let s3 = builder.build().map_err(|error| {
                    config_error(
                        "repository",
                        format!("cannot set up the S3 client: {error}"),
                    )
                })?;
                let root = if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                };
                Ok(Repository {
                    store: narrowed(Arc::new(s3), &prefix),
                    root,
                })
            }
        }
    }

    /// The repository as shown in messages: a directory, or `s3://bucket/prefix`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The full location of a key, for messages.
    fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.root)
    }

    /// The store path of a key that already passed the naming rules.
    fn store_path(&self, key: &str) -> Result<StorePath, RepoError> {
        StorePath::parse(key).map_err(|error| RepoError::InvalidName {
            what: "key".to_owned(),
            name: key.to_owned(),
            reason: error.to_string(),
        })
    }

    fn store_error(
        &self,
        key: &str,
        operation: &'static str,
    ) -> impl FnOnce(object_store::Error) -> RepoError {
        let location = self.location(key);
        move |source| match source {
            object_store::Error::NotFound { .. } => RepoError::NotFound { key: location },
            object_store::Error::AlreadyExists { .. } => RepoError::AlreadyExists { key: location },
            source => RepoError::Store {
                key: location,
                operation,
                source,
            },
        }
    }

    /// Commits a manifest: writes `manifests/<name>.manifest.json` only if it does not exist yet
    /// (atomically on both stores), else fails with [`RepoError::AlreadyExists`]. The bytes must
    /// be valid JSON of at most [`MAX_MANIFEST_BYTES`]. Write every object it names first.
    pub async fn put_manifest(&self, name: &ManifestName, json: &[u8]) -> Result<(), RepoError> {
        let stored_key = name.stored_key();
        check_manifest_json(json, &self.location(&stored_key))?;
        let path = self.store_path(&stored_key)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(
                &path,
                PutPayload::from(Bytes::copy_from_slice(json)),
                options,
            )
            .await
            .map_err(self.store_error(&stored_key, "manifest upload"))?;
        Ok(())
    }

    /// Reads a manifest's JSON bytes (checked to be valid JSON).
    pub async fn get_manifest(&self, name: &ManifestName) -> Result<Vec<u8>, RepoError> {
        let stored_key = name.stored_key();
        let path = self.store_path(&stored_key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(self.store_error(&stored_key, "manifest download"))?;
        if result.meta.size > MAX_MANIFEST_BYTES {
            return Err(RepoError::InvalidManifest {
                key: self.location(&stored_key),
                message: format!(
                    "{} bytes, more than the {MAX_MANIFEST_BYTES} accepted",
                    result.meta.size
                ),
            });
        }
        let bytes = result
            .bytes()
            .await
            .map_err(self.store_error(&stored_key, "manifest download"))?;
        check_manifest_json(&bytes, &self.location(&stored_key))?;
        Ok(bytes.to_vec())
    }

    /// The manifests in `folder` and below (empty for all), sorted by name. Only committed
    /// manifests are listed; data objects never are.
    pub async fn list_manifests(&self, folder: &str) -> Result<Vec<ManifestName>, RepoError> {
        let folder = normalize_prefix(folder, "manifest folder")?;
        let listed = if folder.is_empty() {
            self.list_below(MANIFEST_FOLDER).await?
        } else {
            self.list_below(&format!("{MANIFEST_FOLDER}/{folder}"))
                .await?
        };
        let mut names: Vec<ManifestName> = listed
            .iter()
            .filter_map(|meta| ManifestName::from_stored_key(meta.location.as_ref()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes a manifest, which un-commits its backup. Deleting a missing one is not an error.
    pub async fn delete_manifest(&self, name: &ManifestName) -> Result<(), RepoError> {
        self.delete_key(&name.stored_key()).await
    }

    /// The data objects in `folder` and below (empty for all), sorted by key; manifests and
    /// foreign files whose names break the naming rules are left out. Meant for retention:
    /// whether an object belongs to a backup is decided by the manifests, not by this listing.
    pub async fn list_objects(&self, folder: &str) -> Result<Vec<ListedObject>, RepoError> {
        let folder = normalize_prefix(folder, "object folder")?;
        if folder.split('/').next() == Some(MANIFEST_FOLDER) {
            return Err(RepoError::InvalidName {
                what: "object folder".to_owned(),
                name: folder,
                reason: format!("the {MANIFEST_FOLDER}/ folder holds manifests, not objects"),
            });
        }
        let mut objects: Vec<ListedObject> = self
            .list_below(&folder)
            .await?
            .into_iter()
            .filter_map(|meta| {
                ObjectKey::new(meta.location.as_ref())
                    .ok()
                    .map(|key| ListedObject {
                        key,
                        stored_len: meta.size,
                        last_modified_ms: meta.last_modified.timestamp_millis(),
                    })
            })
            .collect();
        objects.sort_by(|left, right| left.key.cmp(&right.key));
        Ok(objects)
    }

    /// Deletes a data object. Deleting a missing one is not an error (S3 does not tell either).
    pub async fn delete_object(&self, key: &ObjectKey) -> Result<(), RepoError> {
        self.delete_key(key.as_str()).await
    }

    async fn delete_key(&self, key: &str) -> Result<(), RepoError> {
        let path = self.store_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(RepoError::Store {
                key: self.location(key),
                operation: "delete",
                source,
            }),
        }
    }

    /// Everything below a folder (empty for the whole repository). A folder that does not exist
    /// yet is empty.
    async fn list_below(&self, folder: &str) -> Result<Vec<object_store::ObjectMeta>, RepoError> {
        let prefix = if folder.is_empty() {
            None
        } else {
            Some(self.store_path(folder)?)
        };
        match self.store.list(prefix.as_ref()).try_collect().await {
            Ok(listed) => Ok(listed),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(source) => Err(RepoError::Store {
                key: self.location(folder),
                operation: "list",
                source,
            }),
        }
    }
}

fn check_manifest_json(json: &[u8], location: &str) -> Result<(), RepoError> {
    if json.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(RepoError::InvalidManifest {
            key: location.to_owned(),
            message: format!(
                "{} bytes, more than the {MAX_MANIFEST_BYTES} accepted",
                json.len()
            ),
        });
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(json)
        .map(|_| ())
        .map_err(|error| RepoError::InvalidManifest {
            key: location.to_owned(),
            message: error.to_string(),
        })
}
