//! The `Duration` newtype used in specs (`500ms`, `10s`, `2m`, `1h`, `7d`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration written as a whole number followed by a unit:
/// `ms` (milliseconds), `s` (seconds), `m` (minutes), `h` (hours) or `d` (days),
/// e.g. `500ms`, `10s`, `2m`, `1h`, `7d`.
///
/// Stored with millisecond precision. It serializes in its canonical form:
/// the largest unit that represents the value exactly (`120s` becomes `2m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Duration {
    millis: u64,
}

/// Error returned when a duration string is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {value:?}: {reason}")]
pub struct DurationError {
    /// The rejected input.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

const SYNTAX_HELP: &str =
    "use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)";

/// The JSON Schema pattern of a duration string.
const PATTERN: &str = "^[0-9]+(ms|s|m|h|d)$";

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    /// A duration of `secs` seconds, saturating at the maximum.
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Whole milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whether the duration is zero.
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }

    /// The equivalent [`std::time::Duration`].
    pub const fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.as_std()
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| DurationError {
            value: s.to_owned(),
            reason,
        };
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(digits_end);
        if digits.is_empty() || unit.is_empty() {
            return Err(fail(SYNTAX_HELP));
        }
        let factor = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, factor)| *factor)
            .ok_or_else(|| fail(SYNTAX_HELP))?;
        let millis = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(factor))
            .ok_or_else(|| fail("is too large"))?;
        Ok(Duration { millis })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in UNITS {
            if self.millis.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.millis / factor);
            }
        }
        write!(f, "{}ms", self.millis)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Duration")
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("cloudkeep_model::Duration")
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), "string".into());
        map.insert("pattern".into(), PATTERN.into());
        map.insert(
            "description".into(),
            "A duration: a whole number followed by ms, s, m, h or d, e.g. `500ms`, `10s`, `2m`, `1h`, `7d`."
                .into(),
        );
        map.insert(
            "examples".into(),
            serde_json::json!(["500ms", "10s", "2m", "1h", "7d"]),
        );
        Schema::from(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, String> {
        s.parse::<Duration>()
            .map(Duration::as_millis)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("500ms"), Ok(500));
        assert_eq!(parse("10s"), Ok(10_000));
        assert_eq!(parse("2m"), Ok(120_000));
        assert_eq!(parse("1h"), Ok(3_600_000));
        assert_eq!(parse("7d"), Ok(604_800_000));
        assert_eq!(parse("0s"), Ok(0));
        assert_eq!(parse("007s"), Ok(7_000));
    }

    #[test]
    fn rejects_malformed_durations() {
        let help = "use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)";
        for bad in [
            "", "10", "s", "10 s", " 10s", "10s ", "1.5s", "-1s", "+1s", "10S", "10sec", "1h30m",
            "10µs", "ms",
        ] {
            assert_eq!(
                parse(bad),
                Err(format!("invalid duration {bad:?}: {help}")),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("99999999999999999999d"),
            Err("invalid duration \"99999999999999999999d\": is too large".to_owned())
        );
        assert_eq!(
            parse("999999999999999999d"),
            Err("invalid duration \"999999999999999999d\": is too large".to_owned())
        );
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        for (input, shown) in [
            ("500ms", "500ms"),
            ("1500ms", "1500ms"),
            ("1000ms", "1s"),
            ("120s", "2m"),
            ("90s", "90s"),
            ("60m", "1h"),
            ("48h", "2d"),
            ("0ms", "0s"),
        ] {
            let d: Duration = input.parse().unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(shown.parse::<Duration>(), Ok(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{shown}\""));
            assert_eq!(serde_json::from_str::<Duration>(&json).unwrap(), d);
        }
        assert_eq!(
            Duration::from_secs(90).as_std(),
            std::time::Duration::from_secs(90)
        );
    }
}
