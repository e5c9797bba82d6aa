//! Silences: an operator's "do not tell me about this until then", matched against alerts.

use serde::{Deserialize, Serialize};

use crate::pattern::{NamePattern, PatternError};
use crate::routing::AlertContext;
use cloudkeep_model::State;

/// A silence: alerts it matches are not notified until `expires_at_ms` (their events are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSilence", into = "RawSilence")]
pub struct Silence {
    /// Identifier, unique among silences (set by the store).
    pub id: String,
    /// Which alerts it silences (at least one matcher).
    pub matchers: SilenceMatchers,
    /// The silence ends at this instant (Unix milliseconds); it matches nothing from then on.
    pub expires_at_ms: i64,
    /// Who created it (a user name), for the audit trail and the dashboard.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// What a silence matches: every matcher that is set must match; at least one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceMatchers {
    platform: Option<NamePattern>,
    host: Option<NamePattern>,
    monitor: Option<NamePattern>,
    severity: Option<State>,
}

/// The serialized form of a [`Silence`] (JSON in the API and the store); validated on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSilence {
    /// Identifier, unique among silences.
    pub id: String,
    /// Which alerts it silences.
    pub matchers: RawSilenceMatchers,
    /// The silence ends at this instant (Unix milliseconds).
    pub expires_at_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// The serialized form of [`SilenceMatchers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSilenceMatchers {
    /// Platform name, exact or a glob with `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Host name, exact or a glob with `*`; platform-wide alerts (without a host) never match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Monitor name, exact or a glob with `*`; alerts without a monitor never match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// Exactly this severity: `unknown`, `warning` or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<State>,
}

/// Why a silence was rejected; the path is relative to the silence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// `id` is empty.
    #[error("id: must not be empty")]
    EmptyId,
    /// `created_by` is empty.
    #[error("created_by: must not be empty")]
    EmptyCreatedBy,
    /// No matcher: it would silence everything.
    #[error("matchers: set at least one of platform, host, monitor or severity")]
    NoMatcher,
    /// A name matcher is not a valid pattern.
    #[error("matchers.{field}: {source}")]
    Pattern {
        /// Which matcher.
        field: &'static str,
        /// What is wrong with it.
        source: PatternError,
    },
    /// `ok` is not something to silence.
    #[error("matchers.severity: ok is not a severity; use unknown, warning or critical")]
    OkSeverity,
}

impl SilenceMatchers {
    /// Validated matchers: at least one set, patterns well-formed, severity not `ok`.
    pub fn new(raw: &RawSilenceMatchers) -> Result<SilenceMatchers, SilenceError> {
        let pattern = |field: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(NamePattern::parse)
                .transpose()
                .map_err(|source| SilenceError::Pattern { field, source })
        };
        let matchers = SilenceMatchers {
            platform: pattern("platform", &raw.platform)?,
            host: pattern("host", &raw.host)?,
            monitor: pattern("monitor", &raw.monitor)?,
            severity: raw.severity,
        };
        if matchers.severity == Some(State::Ok) {
            return Err(SilenceError::OkSeverity);
        }
        if matchers.platform.is_none()
            && matchers.host.is_none()
            && matchers.monitor.is_none()
            && matchers.severity.is_none()
        {
            return Err(SilenceError::NoMatcher);
        }
        Ok(matchers)
    }

    /// Whether every set matcher matches the alert.
    pub fn matches(&self, alert: &AlertContext) -> bool {
        let optional_name_ok = |pattern: &Option<NamePattern>, name: Option<&str>| match pattern {
            None => true,
            Some(pattern) => name.is_some_and(|name| pattern.matches(name)),
        };
        optional_name_ok(&self.platform, Some(&alert.platform))
            && optional_name_ok(&self.host, alert.host.as_deref())
            && optional_name_ok(&self.monitor, alert.monitor.as_deref())
            && self
                .severity
                .is_none_or(|severity| severity == alert.severity)
    }
}

impl Silence {
    /// Whether the silence is in force at `now_ms` and matches the alert.
    pub fn matches(&self, alert: &AlertContext, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms && self.matchers.matches(alert)
    }
}

/// The first silence in force at `now_ms` that matches the alert.
pub fn matching_silence<'a>(
    silences: &'a [Silence],
    alert: &AlertContext,
    now_ms: i64,
) -> Option<&'a Silence> {
    silences
        .iter()
        .find(|silence| silence.matches(alert, now_ms))
}

impl TryFrom<RawSilence> for Silence {
    type Error = SilenceError;

    fn try_from(raw: RawSilence) -> Result<Self, Self::Error> {
        if raw.id.is_empty() {
            return Err(SilenceError::EmptyId);
        }
        if raw.created_by.is_empty() {
            return Err(SilenceError::EmptyCreatedBy);
        }
        Ok(Silence {
            matchers: SilenceMatchers::new(&raw.matchers)?,
            id: raw.id,
            expires_at_ms: raw.expires_at_ms,
            created_by: raw.created_by,
            comment: raw.comment,
        })
    }
}

impl From<Silence> for RawSilence {
    fn from(silence: Silence) -> Self {
        let text = |pattern: Option<NamePattern>| pattern.map(|p| p.as_str().to_owned());
        RawSilence {
            id: silence.id,
            matchers: RawSilenceMatchers {
                platform: text(silence.matchers.platform),
                host: text(silence.matchers.host),
                monitor: text(silence.matchers.monitor),
                severity: silence.matchers.severity,
            },
            expires_at_ms: silence.expires_at_ms,
            created_by: silence.created_by,
            comment: silence.comment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(host: Option<&str>, monitor: Option<&str>, severity: State) -> AlertContext {
        AlertContext {
            cloud: "gc-uk1".into(),
            isv: "acme".into(),
            tenant: "shop".into(),
            platform: "acme-prod".into(),
            host: host.map(str::to_owned),
            monitor: monitor.map(str::to_owned),
            severity,
        }
    }

    fn silence(matchers: RawSilenceMatchers, expires_at_ms: i64) -> Silence {
        Silence::try_from(RawSilence {
            id: "s1".into(),
            matchers,
            expires_at_ms,
            created_by: "alice".into(),
            comment: "disk swap".into(),
        })
        .unwrap()
    }

    #[test]
    fn matches_until_expiry_exclusive() {
        let s = silence(
            RawSilenceMatchers {
                platform: Some("acme-prod".into()),
                ..RawSilenceMatchers::default()
            },
            10_000,
        );
        let a = alert(Some("db1"), Some("df"), State::Critical);
        assert!(s.matches(&a, 0));
        assert!(s.matches(&a, 9_999));
        assert!(!s.matches(&a, 10_000));
        assert!(!s.matches(&a, 20_000));
    }

    #[test]
    fn every_set_matcher_must_match() {
        let s = silence(
            RawSilenceMatchers {
                host: Some("db*".into()),
                monitor: Some("df".into()),
                severity: Some(State::Warning),
                ..RawSilenceMatchers::default()
            },
            i64::MAX,
        );
        assert!(s.matches(&alert(Some("db1"), Some("df"), State::Warning), 0));
        assert!(!s.matches(&alert(Some("db1"), Some("df"), State::Critical), 0));
        assert!(!s.matches(&alert(Some("web1"), Some("df"), State::Warning), 0));
        assert!(!s.matches(&alert(Some("db1"), Some("cpu"), State::Warning), 0));
        // A host or monitor matcher never matches an alert without one.
        assert!(!s.matches(&alert(None, Some("df"), State::Warning), 0));
        assert!(!s.matches(&alert(Some("db1"), None, State::Warning), 0));

        let silences = vec![
            silence(
                RawSilenceMatchers {
                    platform: Some("other".into()),
                    ..RawSilenceMatchers::default()
                },
                i64::MAX,
            ),
            s,
        ];
        let a = alert(Some("db1"), Some("df"), State::Warning);
        assert_eq!(
            matching_silence(&silences, &a, 0).map(|s| s.matchers.clone()),
            silences.get(1).map(|s| s.matchers.clone())
        );
        assert!(matching_silence(&silences, &alert(None, None, State::Warning), 0).is_none());
    }

    #[test]
    fn invalid_silences_are_rejected_with_their_path() {
        let raw = |matchers: RawSilenceMatchers| RawSilence {
            id: "s1".into(),
            matchers,
            expires_at_ms: 1,
            created_by: "alice".into(),
            comment: String::new(),
        };
        let err = |raw: RawSilence| Silence::try_from(raw).unwrap_err().to_string();
        assert_eq!(
            err(raw(RawSilenceMatchers::default())),
            "matchers: set at least one of platform, host, monitor or severity"
        );
        assert_eq!(
            err(raw(RawSilenceMatchers {
                severity: Some(State::Ok),
                ..RawSilenceMatchers::default()
            })),
            "matchers.severity: ok is not a severity; use unknown, warning or critical"
        );
        assert_eq!(
            err(raw(RawSilenceMatchers {
                host: Some(String::new()),
                ..RawSilenceMatchers::default()
            })),
            "matchers.host: empty pattern: use a name or a glob such as \"acme-*\""
        );
        let mut no_author = raw(RawSilenceMatchers {
            platform: Some("p".into()),
            ..RawSilenceMatchers::default()
        });
        no_author.created_by = String::new();
        assert_eq!(err(no_author), "created_by: must not be empty");
    }

    #[test]
    fn json_round_trip_validates() {
        let json = r#"{"id":"s1","matchers":{"platform":"acme-*","severity":"warning"},"expires_at_ms":5,"created_by":"alice","comment":"c"}"#;
        let parsed: Silence = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        let invalid = r#"{"id":"s1","matchers":{},"expires_at_ms":5,"created_by":"alice"}"#;
        let error = serde_json::from_str::<Silence>(invalid)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("matchers: set at least one"), "{error}");
    }
}
