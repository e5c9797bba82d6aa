//! Shared helpers for parsing check options: the options-map decoder with JSON paths, durations and small validators.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CheckConfigError;

/// Decode a monitor's `options` object into a kind's options struct.
///
/// The error's path names the offending field (`.timeout`, `.relabel[0].action`) thanks to
/// `serde_path_to_error`; the message is serde's, e.g. ``unknown field `urll`, expected one of ...``.
pub fn decode_options<T: DeserializeOwned>(
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, CheckConfigError> {
    // A clone is cheap next to how rarely options are decoded (once per spec load).
    let value = serde_json::Value::Object(options.clone());
    serde_path_to_error::deserialize(value).map_err(|error| CheckConfigError {
        path: json_path(error.path()),
        message: error.into_inner().to_string(),
    })
}

/// `.url`, `.relabel[0].regex`; empty for the whole object (how [`CheckConfigError::path`] spells paths).
fn json_path(path: &serde_path_to_error::Path) -> String {
    let mut spelled = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                spelled.push_str(&format!("[{index}]"));
            }
            serde_path_to_error::Segment::Map { key } => {
                spelled.push('.');
                spelled.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                spelled.push('.');
                spelled.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => spelled.push_str(".?"),
        }
    }
    spelled
}

/// A [`CheckConfigError`] for the field at `path` (e.g. `.timeout`).
pub fn config_error(path: &str, message: impl Into<String>) -> CheckConfigError {
    CheckConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A duration option written as a string: `"10s"`, `"500ms"`, `"2m"`, `"1h"`, `"1.5s"`, `"1m30s"`.
///
/// Bare numbers are refused because their unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDuration(pub Duration);

impl OptionDuration {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for OptionDuration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for OptionDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(OptionDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for OptionDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

impl JsonSchema for OptionDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit (ms, s, m, h), possibly repeated, e.g. \"10s\", \"500ms\", \"1m30s\".",
            "examples": ["10s", "500ms", "2m"],
        })
    }
}

/// The JSON-schema pattern accepted by [`parse_duration`].
const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Parse a duration like `"10s"`, `"500ms"`, `"2m"`, `"1h"`, `"1.5s"` or `"1m30s"`.
///
/// Units: `ms`, `s`, `m`, `h`. Each part is a decimal number (optionally with a fraction) and a
/// unit; parts add up. The error message says what was wrong, without the field (the caller adds it).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = || {
        format!(
            "invalid duration \"{text}\": expected a number and a unit (ms, s, m, h) like \"10s\", \"500ms\" or \"2m\""
        )
    };
    if text.is_empty() {
        return Err(expected());
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(rest.len());
        let (number_text, after_number) = rest.split_at(number_len);
        let unit_len = after_number
            .find(|character: char| character.is_ascii_digit() || character == '.')
            .unwrap_or(after_number.len());
        let (unit_text, after_unit) = after_number.split_at(unit_len);
        let valid_number = !number_text.is_empty()
            && !number_text.starts_with('.')
            && !number_text.ends_with('.')
            && number_text.matches('.').count() <= 1;
        if !valid_number {
            return Err(expected());
        }
        let number: f64 = number_text.parse().map_err(|_| expected())?;
        let nanos_per_unit: f64 = match unit_text {
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(expected()),
        };
        total_nanos += number * nanos_per_unit;
        rest = after_unit;
    }
    // A year is far beyond any check timeout and keeps the float-to-integer conversion exact.
    if total_nanos > 365.0 * 24.0 * 3600e9 {
        return Err(format!("invalid duration \"{text}\": longer than a year"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// The shortest human spelling of `duration` in the units [`parse_duration`] reads: `30s`, `500ms`, `2m`, `1.5s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 && !duration.is_zero() {
        return format!("{}ms", duration.as_secs_f64() * 1000.0);
    }
    if millis.is_multiple_of(3_600_000) && millis > 0 {
        format!("{}h", millis / 3_600_000)
    } else if millis.is_multiple_of(60_000) && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else if millis > 1000 {
        format!("{}s", duration.as_secs_f64())
    } else {
        format!("{millis}ms")
    }
}

/// Refuse a zero timeout (a check that can never finish) at `path`.
pub fn require_positive_timeout(
    path: &str,
    timeout: OptionDuration,
) -> Result<(), CheckConfigError> {
    if timeout.get().is_zero() {
        return Err(config_error(path, "must be greater than 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_duration_spellings() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_durations_without_a_known_unit() {
        for bad in [
            "", "10", "s", "10x", "1.s", ".5s", "1..5s", "-1s", "10 s", "10S", "1e3s", "9999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        let message = parse_duration("10").unwrap_err();
        assert!(message.starts_with("invalid duration \"10\""), "{message}");
    }

    #[test]
    fn formats_durations_so_that_they_parse_back() {
        for (duration, text) in [
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExampleOptions {
        #[allow(dead_code)]
        timeout: OptionDuration,
        #[allow(dead_code)]
        #[serde(default)]
        items: Vec<ExampleItem>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExampleItem {
        #[allow(dead_code)]
        regex: String,
    }

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn decode_errors_name_the_field_path() {
        let error = decode_options::<ExampleOptions>(&object(serde_json::json!({"timeout": "10"})))
            .unwrap_err();
        assert_eq!(error.path, ".timeout");
        assert!(
            error
                .to_string()
                .starts_with("options.timeout: invalid duration \"10\"")
        );

        let error = decode_options::<ExampleOptions>(&object(
            serde_json::json!({"timeout": "1s", "items": [{"regex": "a"}, {"regexp": "b"}]}),
        ))
        .unwrap_err();
        assert_eq!(error.path, ".items[1].regexp");
        assert!(error.message.contains("unknown field `regexp`"), "{error}");

        let error = decode_options::<ExampleOptions>(&object(serde_json::json!({}))).unwrap_err();
        assert_eq!(error.path, "");
        assert_eq!(error.to_string(), "options: missing field `timeout`");
    }
}
