//! Where a repository lives: a local directory or an S3-compatible bucket, each with a key prefix
//! (one per ISV, e.g. `isv/acme/`) and, for S3, credentials. `Debug` redacts the secret key.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The region used when the configuration names none (what most S3-compatible stores expect).
pub const DEFAULT_REGION: &str = "us-east-1";

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

/// A repository's place, as written in the configuration (`kind = "local"` or `kind = "s3"`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RepoLocation {
    /// A directory on this machine (or a mounted file system). It must exist; the prefix
    /// directories below it are created as needed. Writes are fsynced.
    Local {
        /// The directory.
        path: PathBuf,
        /// Key prefix inside it, e.g. `isv/acme/`; empty for the whole directory.
        #[serde(default)]
        prefix: String,
    },
    /// A bucket on AWS S3 or any S3-compatible store (path-style requests).
    S3 {
        /// The endpoint URL, e.g. `https://s3.example.net`; absent for AWS itself.
        #[serde(default)]
        endpoint: Option<String>,
        /// The bucket, which must exist.
        bucket: String,
        /// The region, `us-east-1` when absent.
        #[serde(default = "default_region")]
        region: String,
        /// The access key id.
        access_key_id: String,
        /// The secret access key (never shown by `Debug`).
        secret_access_key: String,
        /// Allows a plain `http://` endpoint (tests, stores on a trusted network).
        #[serde(default)]
        allow_http: bool,
        /// Key prefix inside the bucket, e.g. `isv/acme/`; empty for the whole bucket.
        #[serde(default)]
        prefix: String,
    },
}

impl RepoLocation {
    /// The key prefix as configured.
    pub fn prefix(&self) -> &str {
        match self {
            RepoLocation::Local { prefix, .. } | RepoLocation::S3 { prefix, .. } => prefix,
        }
    }
}

impl fmt::Debug for RepoLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoLocation::Local { path, prefix } => formatter
                .debug_struct("Local")
                .field("path", path)
                .field("prefix", prefix)
                .finish(),
            RepoLocation::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key: _,
                allow_http,
                prefix,
            } => formatter
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("allow_http", allow_http)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_location_parses_with_defaults_and_hides_its_secret() {
        let location: RepoLocation = serde_json::from_str(
            r#"{"kind":"s3","bucket":"b","access_key_id":"AKIAEXAMPLE","secret_access_key":"very-secret","prefix":"isv/acme/"}"#,
        )
        .unwrap();
        assert_eq!(location.prefix(), "isv/acme/");
        let RepoLocation::S3 {
            region,
            endpoint,
            allow_http,
            ..
        } = &location
        else {
            panic!("expected S3, got {location:?}");
        };
        assert_eq!(region, DEFAULT_REGION);
        assert_eq!(endpoint, &None);
        assert!(!allow_http);
        let debug = format!("{location:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(
            debug.contains("<redacted>") && debug.contains("AKIAEXAMPLE"),
            "{debug}"
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        for (text, expected) in [
            (
                r#"{"kind":"local","path":"/srv","prefx":"a"}"#,
                "unknown field `prefx`",
            ),
            (r#"{"kind":"ftp","path":"/srv"}"#, "unknown variant `ftp`"),
            (
                r#"{"kind":"s3","bucket":"b","access_key_id":"a"}"#,
                "missing field `secret_access_key`",
            ),
        ] {
            let error = serde_json::from_str::<RepoLocation>(text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let local: RepoLocation =
            serde_json::from_str(r#"{"kind":"local","path":"/srv/backups"}"#).unwrap();
        assert_eq!(
            local,
            RepoLocation::Local {
                path: PathBuf::from("/srv/backups"),
                prefix: String::new()
            }
        );
    }
}
