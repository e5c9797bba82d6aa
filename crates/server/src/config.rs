//! Server configuration in two stages: the versioned TOML file schema, validated into the runtime config.
//!
//! The file says what to manage; command-line flags (in the binary) say how this process runs and win over the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The configuration file, `cloudkeep-server.toml`. Every field is optional; defaults live in `ServerConfig::defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerConfig {
    /// Schema version of this file; only 1 exists.
    pub version: u32,
    /// Address the API listens on, e.g. `127.0.0.1:8440`.
    pub listen: Option<String>,
    /// Directory for the time-series store and, by default, the SQLite state store.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`; default `sqlite://DATA_DIR/state.db`.
    pub database_url: Option<String>,
    /// Time-series storage settings.
    #[serde(default)]
    pub tsdb: RawTsdbConfig,
    /// Ingest settings.
    #[serde(default)]
    pub ingest: RawIngestConfig,
    /// collectd's network protocol and write_http JSON in.
    #[serde(default)]
    pub collectd: RawCollectdConfig,
    /// Notification channels, contacts, groups and routes.
    #[serde(default)]
    pub notify: crate::notify_config::RawNotifySection,
    /// Where the ISVs' backups live.
    #[serde(default)]
    pub backup: crate::backup_config::RawBackupSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectdConfig {
    /// UDP address for collectd's network plugin, e.g. `0.0.0.0:25826` (its default port); off when absent.
    pub listen: Option<String>,
    /// Lowest security accepted on UDP: `none` (default), `sign` or `encrypt`, as collectd's `SecurityLevel`.
    pub security_level: Option<String>,
    /// collectd users and passwords for signed or encrypted packets (collectd's `AuthFile`).
    #[serde(default)]
    pub users: std::collections::BTreeMap<String, String>,
    /// Platform of samples from hosts no platform declares (default `collectd`).
    pub default_platform: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsdbConfig {
    /// How long raw samples are kept, in days (default 15).
    pub raw_retention_days: Option<u32>,
    /// How long 5-minute aggregates are kept, in days (default 90).
    pub five_minute_retention_days: Option<u32>,
    /// How long 1-hour aggregates are kept, in days (default 730).
    pub one_hour_retention_days: Option<u32>,
    /// Seal the in-memory head into compressed blocks at least this often, in minutes (default 120).
    pub seal_interval_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngestConfig {
    /// Largest accepted compressed request body, in MiB (default 32).
    pub max_body_mib: Option<u32>,
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub raw_retention: Duration,
    pub five_minute_retention: Duration,
    pub one_hour_retention: Duration,
    pub seal_interval: Duration,
    pub max_body_bytes: usize,
    pub collectd: CollectdConfig,
    pub notify: crate::notify_config::NotifyConfig,
    /// The backup repositories; none by default (`cloudkeep up` sets a local one).
    pub backup: crate::backup_config::BackupConfig,
}

/// collectd in, validated.
#[derive(Clone)]
pub struct CollectdConfig {
    pub listen: Option<std::net::SocketAddr>,
    pub security: cloudkeep_protocol::collectd::Security,
    pub default_platform: String,
}

impl std::fmt::Debug for CollectdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Security`'s own Debug shows user names only, never passwords.
        f.debug_struct("CollectdConfig")
            .field("listen", &self.listen)
            .field("security", &self.security)
            .field("default_platform", &self.default_platform)
            .finish()
    }
}

impl Default for CollectdConfig {
    fn default() -> Self {
        CollectdConfig {
            listen: None,
            security: cloudkeep_protocol::collectd::Security::none(),
            default_platform: "collectd".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

const DAY: u64 = 24 * 3600;

impl ServerConfig {
    pub fn defaults(data_dir: &Path) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:8440".into(),
            data_dir: data_dir.to_path_buf(),
            database_url: format!("sqlite://{}", data_dir.join("state.db").display()),
            raw_retention: Duration::from_secs(15 * DAY),
            five_minute_retention: Duration::from_secs(90 * DAY),
            one_hour_retention: Duration::from_secs(730 * DAY),
            seal_interval: Duration::from_secs(7200),
            max_body_bytes: 32 << 20,
            collectd: CollectdConfig::default(),
            notify: crate::notify_config::NotifyConfig::default(),
            backup: crate::backup_config::BackupConfig::default(),
        }
    }

    /// Reads and validates a config file; `data_dir` is the fallback when the file names none.
    pub fn from_file(path: &Path, fallback_data_dir: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        ServerConfig::from_toml(path, &text, fallback_data_dir)
    }

    pub fn from_toml(
        path: &Path,
        text: &str,
        fallback_data_dir: &Path,
    ) -> Result<ServerConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let raw: RawServerConfig =
            toml::from_str(text).map_err(|err| invalid(err.to_string().trim_end().to_owned()))?;
        if raw.version != 1 {
            return Err(invalid(format!(
                "version = {} is not supported; this build reads version 1",
                raw.version
            )));
        }
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| fallback_data_dir.to_path_buf());
        let mut config = ServerConfig::defaults(&data_dir);
        if let Some(listen) = raw.listen {
            config.listen = listen;
        }
        if let Some(url) = raw.database_url {
            config.database_url = url;
        }
        let days =
            |value: Option<u32>, default: Duration, field: &str| -> Result<Duration, ConfigError> {
                match value {
                    None => Ok(default),
                    Some(0) => Err(invalid(format!("tsdb.{field} must be at least 1"))),
                    Some(days) => Ok(Duration::from_secs(u64::from(days) * DAY)),
                }
            };
        config.raw_retention = days(
            raw.tsdb.raw_retention_days,
            config.raw_retention,
            "raw_retention_days",
        )?;
        config.five_minute_retention = days(
            raw.tsdb.five_minute_retention_days,
            config.five_minute_retention,
            "five_minute_retention_days",
        )?;
        config.one_hour_retention = days(
            raw.tsdb.one_hour_retention_days,
            config.one_hour_retention,
            "one_hour_retention_days",
        )?;
        if let Some(minutes) = raw.tsdb.seal_interval_minutes {
            if minutes == 0 {
                return Err(invalid(
                    "tsdb.seal_interval_minutes must be at least 1".into(),
                ));
            }
            config.seal_interval = Duration::from_secs(u64::from(minutes) * 60);
        }
        if let Some(mib) = raw.ingest.max_body_mib {
            if mib == 0 || mib > 1024 {
                return Err(invalid(
                    "ingest.max_body_mib must be between 1 and 1024".into(),
                ));
            }
            config.max_body_bytes = (mib as usize) << 20;
        }
        config.collectd = collectd_config(raw.collectd).map_err(invalid)?;
        config.notify = raw.notify.validate().map_err(|problems| {
            invalid(format!(
                "the [notify] section has {} problem(s):\n  {}",
                problems.len(),
                problems.join("\n  ")
            ))
        })?;
        config.backup = raw.backup.validate().map_err(|problems| {
            invalid(format!(
                "the [backup] section has {} problem(s):\n  {}",
                problems.len(),
                problems.join("\n  ")
            ))
        })?;
        Ok(config)
    }

    pub(crate) fn tsdb_options(&self) -> cloudkeep_tsdb::Options {
        let ms = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        cloudkeep_tsdb::Options {
            raw_retention_ms: ms(self.raw_retention),
            tier_5m_retention_ms: ms(self.five_minute_retention),
            tier_1h_retention_ms: ms(self.one_hour_retention),
            ..cloudkeep_tsdb::Options::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_is_read() {
        let text = r#"
version = 1
listen = "0.0.0.0:9000"
database_url = "postgres://u@h/db"
[tsdb]
raw_retention_days = 3
seal_interval_minutes = 30
[ingest]
max_body_mib = 8
"#;
        let config = ServerConfig::from_toml(Path::new("c.toml"), text, Path::new("/d")).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.database_url, "postgres://u@h/db");
        assert_eq!(config.raw_retention, Duration::from_secs(3 * DAY));
        assert_eq!(config.seal_interval, Duration::from_secs(1800));
        assert_eq!(config.max_body_bytes, 8 << 20);
        assert_eq!(config.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn unknown_field_and_wrong_version_are_clear_errors() {
        let err = ServerConfig::from_toml(
            Path::new("c.toml"),
            "version = 1\nlisten_addr = \"x\"\n",
            Path::new("/d"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml: "), "{err}");
        assert!(err.contains("unknown field `listen_addr`"), "{err}");
        let err = ServerConfig::from_toml(Path::new("c.toml"), "version = 2\n", Path::new("/d"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "c.toml: version = 2 is not supported; this build reads version 1"
        );
        let err = ServerConfig::from_toml(
            Path::new("c.toml"),
            "version = 1\n[tsdb]\nraw_retention_days = 0\n",
            Path::new("/d"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "c.toml: tsdb.raw_retention_days must be at least 1");
    }

    #[test]
    fn backup_section_is_validated_with_paths() {
        let text = "version = 1\n[backup.isv.acme.repository]\nkind = \"s3\"\nbucket = \"\"\naccess_key_id = \"a\"\nsecret_access_key = \"s\"\n";
        let err = ServerConfig::from_toml(Path::new("c.toml"), text, Path::new("/d"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "c.toml: the [backup] section has 1 problem(s):\n  backup.isv.acme.repository.bucket: empty"
        );
        let text = "version = 1\n[backup.repository]\nkind = \"local\"\npath = \"/srv/backups\"\n";
        let config = ServerConfig::from_toml(Path::new("c.toml"), text, Path::new("/d")).unwrap();
        assert_eq!(
            config.backup.repository_for("acme"),
            Some(cloudkeep_backup::RepoLocation::Local {
                path: "/srv/backups".into(),
                prefix: "isv/acme".into()
            })
        );
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    #[test]
    fn the_documented_example_file_is_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cloudkeep-server.example.toml");
        let config = ServerConfig::from_file(&path, Path::new("/unused")).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/cloudkeep"));
        assert_eq!(config.seal_interval, Duration::from_secs(7200));
        assert_eq!(config.notify.policy.contacts().count(), 3);
        assert_eq!(config.notify.policy.routes().len(), 2);
        let globex = config.backup.repository_for("globex").unwrap();
        assert_eq!(globex.prefix(), "cloudkeep/isv/globex");
        let acme = config.backup.repository_for("acme").unwrap();
        assert_eq!(acme.prefix(), "");
    }
}

fn collectd_config(raw: RawCollectdConfig) -> Result<CollectdConfig, String> {
    use cloudkeep_protocol::collectd::{Security, SecurityLevel};
    let listen = raw
        .listen
        .map(|text| {
            text.parse::<std::net::SocketAddr>().map_err(|err| {
                format!("collectd.listen: {text:?} is not an address like 0.0.0.0:25826: {err}")
            })
        })
        .transpose()?;
    let level = match raw.security_level.as_deref() {
        None | Some("none") => SecurityLevel::None,
        Some("sign") => SecurityLevel::Sign,
        Some("encrypt") => SecurityLevel::Encrypt,
        Some(other) => {
            return Err(format!(
                "collectd.security_level: {other:?} is not one of none, sign, encrypt"
            ));
        }
    };
    if level != SecurityLevel::None && raw.users.is_empty() {
        return Err("collectd.users: signed or encrypted packets need at least one user".into());
    }
    Ok(CollectdConfig {
        listen,
        security: Security::new(level, raw.users),
        default_platform: raw.default_platform.unwrap_or_else(|| "collectd".into()),
    })
}

#[cfg(test)]
mod collectd_tests {
    use super::*;

    #[test]
    fn collectd_section_is_validated() {
        let parse = |text: &str| {
            ServerConfig::from_toml(Path::new("s.toml"), text, Path::new("/data"))
                .map(|config| config.collectd)
                .map_err(|err| err.to_string())
        };
        let config = parse(
            "version = 1\n[collectd]\nlisten = \"127.0.0.1:25826\"\nsecurity_level = \"sign\"\nusers = { ck = \"secret\" }\n",
        )
        .unwrap();
        assert_eq!(config.listen, Some("127.0.0.1:25826".parse().unwrap()));
        assert!(
            !format!("{config:?}").contains("secret"),
            "passwords never show in Debug"
        );
        assert_eq!(
            parse("version = 1\n[collectd]\nsecurity_level = \"paranoid\"\n").unwrap_err(),
            "s.toml: collectd.security_level: \"paranoid\" is not one of none, sign, encrypt"
        );
        assert_eq!(
            parse("version = 1\n[collectd]\nsecurity_level = \"sign\"\n").unwrap_err(),
            "s.toml: collectd.users: signed or encrypted packets need at least one user"
        );
        assert!(
            parse("version = 1\n[collectd]\nlisten = \"nowhere\"\n")
                .unwrap_err()
                .contains("collectd.listen: \"nowhere\" is not an address")
        );
    }
}
