//! Option parsing shared by the host checks: the options object into a typed struct, and durations like `500ms`, `10s`, `2m`.

use crate::check::CheckConfigError;

/// Deserializes a monitor's `options` object into `T`; the error's path names the offending
/// field (`.port`, `.user`), empty for the object itself (e.g. an unknown field).
pub fn deserialize_options<T: serde::de::DeserializeOwned>(
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, CheckConfigError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(options.clone())).map_err(|error| {
        let path = error.path().to_string();
        CheckConfigError {
            path: if path == "." {
                String::new()
            } else {
                format!(".{path}")
            },
            message: error.into_inner().to_string(),
        }
    })
}

/// The units a duration may be written in, with their length in milliseconds. `ms` must be
/// tried as a whole word, so the lookup compares the complete suffix.
const DURATION_UNITS: [(&str, i64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses a non-negative duration written as a whole number followed by a unit (`ms`, `s`,
/// `m`, `h` or `d`, e.g. `500ms`, `10s`, `2m`, `1h`, `7d`) into milliseconds. This is the
/// syntax of the spec's durations (cloudkeep-model's `Duration`).
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    const SYNTAX_HELP: &str =
        "use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)";
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() || unit.is_empty() {
        return Err(format!("invalid duration {text:?}: {SYNTAX_HELP}"));
    }
    let unit_millis = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, millis)| *millis)
        .ok_or_else(|| format!("invalid duration {text:?}: {SYNTAX_HELP}"))?;
    digits
        .parse::<i64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_millis))
        .ok_or_else(|| format!("invalid duration {text:?}: is too large"))
}

/// Formats milliseconds as a short human duration for messages: `850ms`, `42s`, `6m`,
/// `1h5m`, `3d2h` (truncated to the two largest units; never more precise than needed).
pub fn format_duration_ms(millis: i64) -> String {
    let millis = millis.max(0);
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let seconds = millis / 1_000;
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) if secs == 0 => format!("{minutes}m"),
        (0, 0, _) => format!("{minutes}m{secs}s"),
        (0, _, 0) => format!("{hours}h"),
        (0, _, _) => format!("{hours}h{minutes}m"),
        (_, 0, _) => format!("{days}d"),
        (_, _, _) => format!("{days}d{hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
    }

    #[test]
    fn rejects_malformed_durations_with_the_value_in_the_message() {
        for bad in [
            "", "10", "s", "-1s", "1.5s", "10 s", "10sec", "1m30s", " 10s",
        ] {
            let error = parse_duration_ms(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid duration {bad:?}")),
                "{bad:?}: {error}"
            );
        }
        assert_eq!(
            parse_duration_ms("99999999999999999999d").unwrap_err(),
            "invalid duration \"99999999999999999999d\": is too large"
        );
        assert!(parse_duration_ms("9223372036854775807d").is_err());
    }

    #[test]
    fn formats_human_durations() {
        assert_eq!(format_duration_ms(-5), "0ms");
        assert_eq!(format_duration_ms(850), "850ms");
        assert_eq!(format_duration_ms(42_000), "42s");
        assert_eq!(format_duration_ms(360_000), "6m");
        assert_eq!(format_duration_ms(375_000), "6m15s");
        assert_eq!(format_duration_ms(3_600_000), "1h");
        assert_eq!(format_duration_ms(3_900_000), "1h5m");
        assert_eq!(format_duration_ms(86_400_000), "1d");
        assert_eq!(format_duration_ms(93_600_000), "1d2h");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,24}") {
            let _ = parse_duration_ms(&text);
        }

        #[test]
        fn round_trips_seconds(seconds in 0i64..1_000_000) {
            proptest::prop_assert_eq!(parse_duration_ms(&format!("{seconds}s")), Ok(seconds * 1_000));
        }
    }
}
