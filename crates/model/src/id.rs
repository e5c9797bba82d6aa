//! Validated identifier newtypes (cloud, isv, tenant, platform, host, component, monitor and metric names).
//!
//! All names except metric names are lowercase DNS-label-like:
//! `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`. Host names are one or more such
//! labels joined by dots (at most 253 characters), and monitor names may also
//! contain `_` (so `rogue_proc` is a valid monitor name). Metric names follow
//! the Prometheus rule `[a-zA-Z_:][a-zA-Z0-9_:]*`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error returned when a string is not a valid identifier of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    /// What kind of name was being parsed, e.g. `host name`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// Why it was rejected and what is allowed.
    pub reason: String,
}

/// The syntax family a name belongs to.
#[derive(Debug, Clone, Copy)]
enum Syntax {
    /// One DNS label.
    Label,
    /// One DNS label that may also contain `_`.
    LabelUnderscore,
    /// Dot-separated DNS labels.
    Host,
    /// Prometheus metric name.
    Metric,
}

const LABEL_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
const LABEL_UNDERSCORE_PATTERN: &str = "^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$";
const HOST_PATTERN: &str =
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$";
const METRIC_PATTERN: &str = "^[a-zA-Z_:][a-zA-Z0-9_:]*$";
const MAX_HOST_LEN: usize = 253;
const MAX_METRIC_LEN: usize = 200;

impl Syntax {
    fn pattern(self) -> &'static str {
        match self {
            Syntax::Label => LABEL_PATTERN,
            Syntax::LabelUnderscore => LABEL_UNDERSCORE_PATTERN,
            Syntax::Host => HOST_PATTERN,
            Syntax::Metric => METRIC_PATTERN,
        }
    }

    fn max_len(self) -> usize {
        match self {
            Syntax::Label | Syntax::LabelUnderscore => 63,
            Syntax::Host => MAX_HOST_LEN,
            Syntax::Metric => MAX_METRIC_LEN,
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Syntax::Label => "lowercase letters, digits and '-'",
            Syntax::LabelUnderscore => "lowercase letters, digits, '-' and '_'",
            Syntax::Host => "lowercase letters, digits, '-' and '.'",
            Syntax::Metric => "letters, digits, '_' and ':'",
        }
    }

    fn check(self, s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let len = s.chars().count();
        if len > self.max_len() {
            return Err(format!(
                "must be at most {} characters (got {len})",
                self.max_len()
            ));
        }
        if let Some(c) = s.chars().find(|c| !self.char_allowed(*c)) {
            return Err(format!(
                "character {c:?} is not allowed; use {}",
                self.allowed()
            ));
        }
        match self {
            Syntax::Label | Syntax::LabelUnderscore => check_label_ends(s),
            Syntax::Host => {
                for label in s.split('.') {
                    if label.is_empty() {
                        return Err(
                            "must not have an empty label (leading, trailing or doubled '.')"
                                .to_owned(),
                        );
                    }
                    if label.len() > 63 {
                        return Err(format!(
                            "label {label:?} must be at most 63 characters (got {})",
                            label.len()
                        ));
                    }
                    check_label_ends(label).map_err(|e| format!("label {label:?} {e}"))?;
                }
                Ok(())
            }
            Syntax::Metric => {
                if s.starts_with(|c: char| c.is_ascii_digit()) {
                    Err("must not start with a digit".to_owned())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn char_allowed(self, c: char) -> bool {
        let lower_alnum = c.is_ascii_lowercase() || c.is_ascii_digit();
        match self {
            Syntax::Label => lower_alnum || c == '-',
            Syntax::LabelUnderscore => lower_alnum || c == '-' || c == '_',
            Syntax::Host => lower_alnum || c == '-' || c == '.',
            Syntax::Metric => c.is_ascii_alphanumeric() || c == '_' || c == ':',
        }
    }
}

fn check_label_ends(label: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !label.starts_with(alnum) {
        return Err("must start with a lowercase letter or digit".to_owned());
    }
    if !label.ends_with(alnum) {
        return Err("must end with a lowercase letter or digit".to_owned());
    }
    Ok(())
}

macro_rules! identifier {
    (@doc Label) => {
        "1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit."
    };
    (@doc LabelUnderscore) => {
        "1 to 63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit."
    };
    (@doc Host) => {
        "Dot-separated labels of 1 to 63 lowercase letters, digits or '-', each starting and ending with a letter or digit; at most 253 characters."
    };
    (@doc Metric) => {
        "A Prometheus metric name: letters, digits, '_' or ':', not starting with a digit; at most 200 characters."
    };
    ($(#[$meta:meta])* $name:ident, $article:literal, $kind:literal, $syntax:ident, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                match Syntax::$syntax.check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(IdError { kind: $kind, value, reason }),
                }
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }

            /// The JSON Schema `pattern` every valid name matches.
            pub fn pattern() -> &'static str {
                Syntax::$syntax.pattern()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!("cloudkeep_model::", stringify!($name)))
            }

            fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
                let mut map = serde_json::Map::new();
                map.insert("type".into(), "string".into());
                map.insert("pattern".into(), Syntax::$syntax.pattern().into());
                map.insert("minLength".into(), 1.into());
                map.insert("maxLength".into(), Syntax::$syntax.max_len().into());
                map.insert(
                    "description".into(),
                    concat!(
                        $article,
                        " ",
                        $kind,
                        ". ",
                        identifier!(@doc $syntax),
                        " Example: `",
                        $example,
                        "`."
                    )
                    .into(),
                );
                map.insert("examples".into(), serde_json::json!([$example]));
                Schema::from(map)
            }
        }
    };
}

identifier!(
    /// Name of a cloud (a site/region), e.g. `gc-uk1`.
    CloudName, "A", "cloud name", Label, "gc-uk1"
);
identifier!(
    /// Name of an isv (a vendor organisation), e.g. `acme`.
    IsvName, "An", "isv name", Label, "acme"
);
identifier!(
    /// Name of a tenant (a customer of an isv), e.g. `globex`.
    TenantName, "A", "tenant name", Label, "globex"
);
identifier!(
    /// Name of a platform (one deployed stack for a tenant), e.g. `acme-prod`.
    PlatformName, "A", "platform name", Label, "acme-prod"
);
identifier!(
    /// Name of a host (one machine running the agent), e.g. `app1.acme-prod`; may contain dots.
    HostName, "A", "host name", Host, "app1.acme-prod"
);
identifier!(
    /// Name of a component (a role on a host), e.g. `app` or `db`.
    ComponentName, "A", "component name", Label, "app"
);
identifier!(
    /// Name of a monitor (a named thing watched on a host), e.g. `cpu` or `rogue_proc`; may contain `_`.
    MonitorName, "A", "monitor name", LabelUnderscore, "df"
);
identifier!(
    /// Name of a metric a monitor produces, e.g. `host_cpu_busy_percent` (Prometheus naming rules).
    MetricName, "A", "metric name", Metric, "host_cpu_busy_percent"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = IdError>>(s: &str) -> String {
        match s.parse::<T>() {
            Ok(_) => "accepted".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_label_names() {
        let long = "a".repeat(63);
        for good in [
            "a",
            "0",
            "gc-uk1",
            "acme-prod",
            "a-b-c",
            "9lives",
            long.as_str(),
        ] {
            assert!(CloudName::new(good).is_ok(), "{good}");
            assert!(IsvName::new(good).is_ok(), "{good}");
            assert!(TenantName::new(good).is_ok(), "{good}");
            assert!(PlatformName::new(good).is_ok(), "{good}");
            assert!(ComponentName::new(good).is_ok(), "{good}");
            assert!(MonitorName::new(good).is_ok(), "{good}");
            assert!(HostName::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_label_names() {
        assert_eq!(
            err::<CloudName>(""),
            "invalid cloud name \"\": must not be empty"
        );
        assert_eq!(
            err::<CloudName>("GC-UK1"),
            "invalid cloud name \"GC-UK1\": character 'G' is not allowed; use lowercase letters, digits and '-'"
        );
        assert_eq!(
            err::<PlatformName>("-acme"),
            "invalid platform name \"-acme\": must start with a lowercase letter or digit"
        );
        assert_eq!(
            err::<TenantName>("globex-"),
            "invalid tenant name \"globex-\": must end with a lowercase letter or digit"
        );
        assert_eq!(
            err::<IsvName>(&"a".repeat(64)),
            format!(
                "invalid isv name {:?}: must be at most 63 characters (got 64)",
                "a".repeat(64)
            )
        );
        assert_eq!(
            err::<ComponentName>("app.server"),
            "invalid component name \"app.server\": character '.' is not allowed; use lowercase letters, digits and '-'"
        );
        assert_eq!(
            err::<ComponentName>("app_server"),
            "invalid component name \"app_server\": character '_' is not allowed; use lowercase letters, digits and '-'"
        );
        assert_eq!(
            err::<IsvName>("é"),
            "invalid isv name \"é\": character 'é' is not allowed; use lowercase letters, digits and '-'"
        );
        assert_eq!(
            err::<IsvName>("a b"),
            "invalid isv name \"a b\": character ' ' is not allowed; use lowercase letters, digits and '-'"
        );
    }

    #[test]
    fn monitor_names_allow_underscore() {
        assert!(MonitorName::new("rogue_proc").is_ok());
        assert!(MonitorName::new("http-api_2").is_ok());
        assert_eq!(
            err::<MonitorName>("_cpu"),
            "invalid monitor name \"_cpu\": must start with a lowercase letter or digit"
        );
        assert_eq!(
            err::<MonitorName>("Cpu"),
            "invalid monitor name \"Cpu\": character 'C' is not allowed; use lowercase letters, digits, '-' and '_'"
        );
    }

    #[test]
    fn host_names() {
        for good in ["app1", "app1.acme-prod", "a.b.c.d", "db-1.gc-uk1.example"] {
            assert!(HostName::new(good).is_ok(), "{good}");
        }
        assert_eq!(
            err::<HostName>("app1..acme"),
            "invalid host name \"app1..acme\": must not have an empty label (leading, trailing or doubled '.')"
        );
        assert_eq!(
            err::<HostName>(".app1"),
            "invalid host name \".app1\": must not have an empty label (leading, trailing or doubled '.')"
        );
        assert_eq!(
            err::<HostName>("app1.-x"),
            "invalid host name \"app1.-x\": label \"-x\" must start with a lowercase letter or digit"
        );
        assert_eq!(
            err::<HostName>("App1"),
            "invalid host name \"App1\": character 'A' is not allowed; use lowercase letters, digits, '-' and '.'"
        );
        let long_label = format!("{}.b", "a".repeat(64));
        assert_eq!(
            err::<HostName>(&long_label),
            format!(
                "invalid host name {long_label:?}: label {:?} must be at most 63 characters (got 64)",
                "a".repeat(64)
            )
        );
        let long = vec!["abc"; 64].join(".");
        assert_eq!(long.len(), 255);
        assert_eq!(
            err::<HostName>(&long),
            format!("invalid host name {long:?}: must be at most 253 characters (got 255)")
        );
    }

    #[test]
    fn metric_names() {
        for good in [
            "host_cpu_busy_percent",
            "up",
            "_x",
            "a:b",
            "HTTP_requests_total",
        ] {
            assert!(MetricName::new(good).is_ok(), "{good}");
        }
        assert_eq!(
            err::<MetricName>("1up"),
            "invalid metric name \"1up\": must not start with a digit"
        );
        assert_eq!(
            err::<MetricName>("cpu-busy"),
            "invalid metric name \"cpu-busy\": character '-' is not allowed; use letters, digits, '_' and ':'"
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let name: HostName = serde_json::from_str("\"app1.acme-prod\"").unwrap_or_else(|_| {
            HostName::new("x").unwrap_or_else(|_| unreachable!("static name is valid"))
        });
        assert_eq!(name, "app1.acme-prod");
        assert_eq!(
            serde_json::to_string(&name).ok().as_deref(),
            Some("\"app1.acme-prod\"")
        );
        let bad = serde_json::from_str::<HostName>("\"App1\"").map_err(|e| e.to_string());
        assert_eq!(
            bad.err().as_deref(),
            Some(
                "invalid host name \"App1\": character 'A' is not allowed; use lowercase letters, digits, '-' and '.'"
            )
        );
        assert!(serde_json::from_str::<CloudName>("42").is_err());
    }

    #[test]
    fn schema_has_pattern() {
        let schema = schemars::schema_for!(CloudName).to_value();
        assert_eq!(schema["pattern"], LABEL_PATTERN);
        assert_eq!(schema["type"], "string");
        let schema = schemars::schema_for!(HostName).to_value();
        assert_eq!(schema["pattern"], HOST_PATTERN);
    }
}
