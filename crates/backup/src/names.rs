//! The names objects and manifests have inside a repository, checked so that they mean the same on
//! a file system and on S3, and so that data objects can never be mistaken for manifests.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RepoError;

/// The top-level folder that holds manifests and nothing else.
pub const MANIFEST_FOLDER: &str = "manifests";

/// The ending of every manifest's stored name.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The longest name accepted, in bytes (S3 allows 1024 for the whole key, prefix included).
const MAX_NAME_BYTES: usize = 900;

/// Why `name` is not a valid slash-separated name, or `None` when it is. Segments use only
/// `A-Z a-z 0-9 . _ -` (so no `#`, which the local store reserves for half-written files).
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!("longer than {MAX_NAME_BYTES} bytes"));
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Some("empty path segment (leading, trailing or doubled \"/\")".to_owned());
        }
        if segment == "." || segment == ".." {
            return Some(format!("path segment {segment:?} is not allowed"));
        }
        if let Some(bad) = segment
            .chars()
            .find(|character| !(character.is_ascii_alphanumeric() || "._-".contains(*character)))
        {
            return Some(format!(
                "character {bad:?} is not allowed (use A-Z a-z 0-9 . _ - and / between segments)"
            ));
        }
    }
    None
}

/// Checks a prefix (a repository's prefix, or a folder to list): like a name, but may be empty and
/// may have a leading or trailing `/`. Returns it without those slashes.
pub(crate) fn normalize_prefix(prefix: &str, what: &str) -> Result<String, RepoError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    match name_problem(trimmed) {
        None => Ok(trimmed.to_owned()),
        Some(reason) => Err(RepoError::InvalidName {
            what: what.to_owned(),
            name: prefix.to_owned(),
            reason,
        }),
    }
}

/// The key of a data object inside a repository (below its prefix), e.g.
/// `base/20260102T030405Z/base/16384/2619.0`. Keys are chosen by the caller and must be unique:
/// an object is written once and never replaced. Keys under `manifests/` are refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks a key: segments of `A-Z a-z 0-9 . _ -` separated by `/`, not under `manifests/`.
    pub fn new(key: impl Into<String>) -> Result<ObjectKey, RepoError> {
        let key = key.into();
        let problem = name_problem(&key).or_else(|| {
            (key.split('/').next() == Some(MANIFEST_FOLDER))
                .then(|| format!("the {MANIFEST_FOLDER}/ folder is reserved for manifests"))
        });
        match problem {
            None => Ok(ObjectKey(key)),
            Some(reason) => Err(RepoError::InvalidName {
                what: "object key".to_owned(),
                name: key,
                reason,
            }),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = RepoError;

    fn try_from(key: String) -> Result<ObjectKey, RepoError> {
        ObjectKey::new(key)
    }
}

impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> String {
        key.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ObjectKey({:?})", self.0)
    }
}

/// The name of a manifest, e.g. `base/20260102T030405Z`; stored as
/// `manifests/base/20260102T030405Z.manifest.json`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ManifestName(String);

impl ManifestName {
    /// Checks a name: segments of `A-Z a-z 0-9 . _ -` separated by `/`.
    pub fn new(name: impl Into<String>) -> Result<ManifestName, RepoError> {
        let name = name.into();
        match name_problem(&name) {
            None => Ok(ManifestName(name)),
            Some(reason) => Err(RepoError::InvalidName {
                what: "manifest name".to_owned(),
                name,
                reason,
            }),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the manifest is stored, below the repository's prefix.
    pub(crate) fn stored_key(&self) -> String {
        format!("{MANIFEST_FOLDER}/{}{MANIFEST_SUFFIX}", self.0)
    }

    /// The manifest a stored key (below the repository's prefix) holds, if it is one.
    pub(crate) fn from_stored_key(stored: &str) -> Option<ManifestName> {
        let name = stored
            .strip_prefix(MANIFEST_FOLDER)?
            .strip_prefix('/')?
            .strip_suffix(MANIFEST_SUFFIX)?;
        ManifestName::new(name).ok()
    }
}

impl TryFrom<String> for ManifestName {
    type Error = RepoError;

    fn try_from(name: String) -> Result<ManifestName, RepoError> {
        ManifestName::new(name)
    }
}

impl From<ManifestName> for String {
    fn from(name: ManifestName) -> String {
        name.0
    }
}

impl fmt::Display for ManifestName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for ManifestName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ManifestName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_checked() {
        for good in [
            "a",
            "wal/00000001/000000010000000000000001",
            "base/2026-01-02T03.04.05Z/base/16384/2619.0_chunk-1",
            "manifests-not-really/x",
        ] {
            assert_eq!(ObjectKey::new(good).unwrap().as_str(), good);
        }
        for (bad, reason) in [
            ("", "empty"),
            ("/a", "empty path segment"),
            ("a/", "empty path segment"),
            ("a//b", "empty path segment"),
            ("a/../b", "\"..\" is not allowed"),
            ("./a", "\".\" is not allowed"),
            ("a b", "character ' ' is not allowed"),
            ("a#1", "character '#' is not allowed"),
            ("é", "character 'é' is not allowed"),
            ("manifests/x", "reserved for manifests"),
            ("manifests", "reserved for manifests"),
        ] {
            let message = ObjectKey::new(bad).unwrap_err().to_string();
            assert!(message.contains(reason), "{bad:?}: {message}");
            assert!(message.starts_with("object key "), "{message}");
        }
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        assert!(ObjectKey::new(long).is_err());
    }

    #[test]
    fn manifest_names_map_to_stored_keys_and_back() {
        let name = ManifestName::new("base/20260102T030405Z").unwrap();
        assert_eq!(
            name.stored_key(),
            "manifests/base/20260102T030405Z.manifest.json"
        );
        assert_eq!(
            ManifestName::from_stored_key(&name.stored_key()),
            Some(name)
        );
        assert_eq!(ManifestName::from_stored_key("manifests/x.json"), None);
        assert_eq!(ManifestName::from_stored_key("data/x.manifest.json"), None);
        assert!(ManifestName::new("a/../b").is_err());
    }

    #[test]
    fn prefixes_lose_their_outer_slashes() {
        assert_eq!(normalize_prefix("isv/acme/", "prefix").unwrap(), "isv/acme");
        assert_eq!(normalize_prefix("/", "prefix").unwrap(), "");
        assert_eq!(normalize_prefix("", "prefix").unwrap(), "");
        let message = normalize_prefix("isv/../x", "prefix")
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("prefix \"isv/../x\": "), "{message}");
    }

    proptest! {
        /// A key that passes the check survives serde unchanged; nothing panics.
        #[test]
        fn any_text_is_checked_without_panicking(text in "[a-z/._#-]{0,40}") {
            if let Ok(key) = ObjectKey::new(text.clone()) {
                let json = serde_json::to_string(&key).unwrap();
                prop_assert_eq!(serde_json::from_str::<ObjectKey>(&json).unwrap(), key);
                prop_assert!(!text.contains("//") && !text.starts_with('/') && !text.contains('#'));
            }
        }
    }
}
