//! The `postgres` check kind: connect to a PostgreSQL server with a fresh connection each run and sample its health statistics.

mod queries;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::check::options_host::{deserialize_options, format_duration_ms, parse_duration_ms};
use crate::check::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus, Sample};
use queries::ServerStatistics;

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_USER: &str = "postgres";
const DEFAULT_DATABASE: &str = "postgres";
const DEFAULT_TIMEOUT_MS: i64 = 10_000;
/// How the agent's sessions show up in `pg_stat_activity`.
const APPLICATION_NAME: &str = "cloudkeep-agent";

/// Options of the `postgres` monitor kind. The check connects afresh at every run (no pool is
/// kept open between runs), reads the statistics views and reports the samples; it is
/// critical only when the server cannot be reached or logged into. Thresholds on the samples
/// (connections, lag, ...) are the server's rules, not options here.
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    /// Host name or IP address of the server, default `127.0.0.1`; a path starting with `/` is the directory of its Unix socket, e.g. `/var/run/postgresql`.
    #[serde(default)]
    pub host: Option<String>,
    /// TCP port (or the number in the Unix socket's name), default 5432.
    #[serde(default)]
    pub port: Option<u16>,
    /// User to log in as, default `postgres`. A monitoring user needs the `pg_monitor` role to see every session and statistic.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, when the server asks for one. Prefer `password_file` to keep it out of the spec.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the password (one trailing newline is ignored), read at every run so a rotated password is picked up. Cannot be combined with `password`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Database to connect to, default `postgres`. Statistics cover every database whatever this is.
    #[serde(default)]
    pub database: Option<String>,
    /// Limit on connecting and querying together, e.g. `10s` (the default); past it the run is critical.
    #[serde(default)]
    #[schemars(pattern(r"^[0-9]+(ms|s|m|h|d)$"))]
    pub timeout: Option<String>,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PostgresOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where the password comes from.
#[derive(Clone)]
enum PasswordSource {
    None,
    Inline(String),
    File(PathBuf),
}

/// A configured `postgres` check.
#[derive(Clone)]
pub struct PostgresCheck {
    host: String,
    port: u16,
    user: String,
    password: PasswordSource,
    database: String,
    timeout_ms: i64,
}

impl fmt::Debug for PostgresCheck {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = match &self.password {
            PasswordSource::None => "none".to_owned(),
            PasswordSource::Inline(_) => "<redacted>".to_owned(),
            PasswordSource::File(path) => format!("file {}", path.display()),
        };
        formatter
            .debug_struct("PostgresCheck")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &password)
            .field("database", &self.database)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

fn config_error(path: &str, message: impl Into<String>) -> CheckConfigError {
    CheckConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn non_empty(value: Option<String>, default: &str, path: &str) -> Result<String, CheckConfigError> {
    match value {
        None => Ok(default.to_owned()),
        Some(text) if text.is_empty() => Err(config_error(path, "must not be empty")),
        Some(text) => Ok(text),
    }
}

impl PostgresCheck {
    /// Builds the check from a monitor's `options`; the error names the offending option.
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PostgresCheck, CheckConfigError> {
        let parsed: PostgresOptions = deserialize_options(options)?;
        let port = parsed.port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(config_error(".port", "must be between 1 and 65535"));
        }
        let password = match (parsed.password, parsed.password_file) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    ".password_file",
                    "cannot be combined with password",
                ));
            }
            (Some(password), None) => PasswordSource::Inline(password),
            (None, Some(file)) if file.is_empty() => {
                return Err(config_error(".password_file", "must not be empty"));
            }
            (None, Some(file)) => PasswordSource::File(PathBuf::from(file)),
            (None, None) => PasswordSource::None,
        };
        let timeout_ms = match parsed.timeout.as_deref() {
            None => DEFAULT_TIMEOUT_MS,
            Some(text) => {
                let millis =
                    parse_duration_ms(text).map_err(|message| config_error(".timeout", message))?;
                if millis <= 0 {
                    return Err(config_error(".timeout", "must be above 0"));
                }
                millis
            }
        };
        Ok(PostgresCheck {
            host: non_empty(parsed.host, DEFAULT_HOST, ".host")?,
            port,
            user: non_empty(parsed.user, DEFAULT_USER, ".user")?,
            password,
            database: non_empty(parsed.database, DEFAULT_DATABASE, ".database")?,
            timeout_ms,
        })
    }

    /// `127.0.0.1:5432`, `[::1]:5432` or the Unix socket path, for messages.
    pub fn target(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn password(&self) -> Result<Option<String>, String> {
        match &self.password {
            PasswordSource::None => Ok(None),
            PasswordSource::Inline(password) => Ok(Some(password.clone())),
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!(
                        "options.password_file: cannot read {}: {error}",
                        path.display()
                    )
                })?;
                let password = text
                    .strip_suffix('\n')
                    .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
                    .unwrap_or(&text);
                Ok(Some(password.to_owned()))
            }
        }
    }

    fn connect_options(&self, password: Option<&str>) -> PgConnectOptions {
        let options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.database)
            .application_name(APPLICATION_NAME);
        match password {
            Some(password) => options.password(password),
            None => options,
        }
    }

    /// One run: connect, query, close, all within the timeout.
    async fn check_once(&self) -> CheckOutcome {
        let password = match self.password() {
            Ok(password) => password,
            Err(message) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message,
                    samples: Vec::new(),
                };
            }
        };
        let options = self.connect_options(password.as_deref());
        let timeout = Duration::from_millis(self.timeout_ms.unsigned_abs());
        let attempt = async {
            let mut connection = PgConnection::connect_with(&options)
                .await
                .map_err(|error| self.unreachable(&error))?;
            let statistics = queries::read_statistics(&mut connection).await;
            // Say goodbye properly so the server does not log an unexpected EOF; a failure here
            // changes nothing about the statistics already read.
            if let Err(error) = connection.close().await {
                tracing::debug!(target = %self.target(), error = %error, "closing the postgres connection failed");
            }
            Ok::<_, CheckOutcome>(statistics)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Err(_elapsed) => down_outcome(format!(
                "postgres at {}: no answer within {}",
                self.target(),
                format_duration_ms(self.timeout_ms)
            )),
            Ok(Err(outcome)) => outcome,
            Ok(Ok(statistics)) => statistics_outcome(&statistics),
        }
    }

    fn unreachable(&self, error: &sqlx::Error) -> CheckOutcome {
        down_outcome(format!(
            "postgres at {} unreachable: {}",
            self.target(),
            describe_error(error)
        ))
    }
}

/// A critical outcome with `postgres_up` 0.
fn down_outcome(message: String) -> CheckOutcome {
    CheckOutcome {
        status: CheckStatus::Critical,
        message,
        samples: vec![Sample {
            name: "postgres_up".to_owned(),
            labels: Vec::new(),
            value: 0.0,
        }],
    }
}

/// The interesting part of a sqlx error, lowercase first (`connection refused (os error 111)`,
/// `password authentication failed for user "x"`).
pub(crate) fn describe_error(error: &sqlx::Error) -> String {
    let text = match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(database) => database.message().to_owned(),
        sqlx::Error::Tls(tls) => format!("tls: {tls}"),
        other => other.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_owned(),
    }
}

fn statistics_outcome(statistics: &ServerStatistics) -> CheckOutcome {
    let mut message = match &statistics.version {
        Some(version) => format!("postgres {version} up"),
        None => "postgres up".to_owned(),
    };
    if statistics.in_recovery == Some(true) {
        message.push_str(" (standby)");
    }
    if let (Some(connections), Some(max)) = (statistics.connections, statistics.max_connections) {
        message.push_str(&format!(", {connections}/{max} connections"));
    }
    if let Some(ratio) = statistics.cache_hit_ratio_percent() {
        message.push_str(&format!(", cache hit {ratio:.1}%"));
    }
    let status = if statistics.errors.is_empty() {
        CheckStatus::Ok
    } else {
        message.push_str("; ");
        message.push_str(&statistics.errors.join("; "));
        CheckStatus::Unknown
    };
    CheckOutcome {
        status,
        message,
        samples: statistics.samples(),
    }
}

impl Check for PostgresCheck {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn run(&mut self, _now_ms: i64) -> CheckFuture<'_> {
        Box::pin(async move { self.check_once().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_apply() {
        let check = PostgresCheck::from_options(&serde_json::Map::new()).unwrap();
        assert_eq!(check.target(), "127.0.0.1:5432");
        assert_eq!(check.user, "postgres");
        assert_eq!(check.database, "postgres");
        assert_eq!(check.timeout_ms, 10_000);
        let socket = PostgresCheck::from_options(&options(
            json!({"host": "/var/run/postgresql/", "port": 5433}),
        ))
        .unwrap();
        assert_eq!(socket.target(), "/var/run/postgresql/.s.PGSQL.5433");
        let v6 = PostgresCheck::from_options(&options(json!({"host": "::1"}))).unwrap();
        assert_eq!(v6.target(), "[::1]:5432");
    }

    #[test]
    fn options_errors_name_the_field() {
        let cases = [
            (
                json!({"port": 0}),
                "options.port: must be between 1 and 65535",
            ),
            (
                json!({"port": 70000}),
                "options.port: invalid value: integer `70000`",
            ),
            (json!({"host": ""}), "options.host: must not be empty"),
            (json!({"user": ""}), "options.user: must not be empty"),
            (
                json!({"database": ""}),
                "options.database: must not be empty",
            ),
            (json!({"timeout": "0s"}), "options.timeout: must be above 0"),
            (
                json!({"timeout": "10"}),
                "options.timeout: invalid duration \"10\"",
            ),
            (
                json!({"password": "a", "password_file": "/x"}),
                "options.password_file: cannot be combined with password",
            ),
            (
                json!({"password_file": ""}),
                "options.password_file: must not be empty",
            ),
            (
                json!({"max_replication_lag": 5}),
                "options.max_replication_lag: unknown field `max_replication_lag`",
            ),
        ];
        for (value, expected) in cases {
            let error = PostgresCheck::from_options(&options(value.clone()))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(expected), "{value}: {error}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let check = PostgresCheck::from_options(&options(json!({"password": "hunter2"}))).unwrap();
        assert!(!format!("{check:?}").contains("hunter2"));
        let parsed: PostgresOptions =
            serde_json::from_value(json!({"password": "hunter2"})).unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    #[test]
    fn password_files_are_read_at_each_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        let check =
            PostgresCheck::from_options(&options(json!({"password_file": file.to_str().unwrap()})))
                .unwrap();
        assert_eq!(check.password(), Ok(Some("s3cret".to_owned())));
        std::fs::write(&file, "rotated\n\n").unwrap();
        assert_eq!(check.password(), Ok(Some("rotated\n".to_owned())));
        std::fs::remove_file(&file).unwrap();
        let error = check.password().unwrap_err();
        assert!(
            error.starts_with("options.password_file: cannot read "),
            "{error}"
        );
    }

    #[test]
    fn options_schema_documents_every_field() {
        let schema = schemars::schema_for!(PostgresOptions);
        let properties = schema
            .as_value()
            .get("properties")
            .and_then(|value| value.as_object())
            .unwrap();
        assert_eq!(properties.len(), 7);
        for (name, property) in properties {
            assert!(
                property.get("description").is_some(),
                "{name} has no description"
            );
        }
    }
}
