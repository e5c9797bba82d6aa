//! Formatting Unix-millisecond instants and spans for people and for machine formats (RFC 3339, UTC).

/// `2026-03-01T11:48:00Z`; milliseconds are shown only when not zero (`…:00.250Z`).
pub fn rfc3339_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    );
    if millis == 0 {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
    }
}

/// `HH:MMZ`, the time of day in UTC, for the tight SMS format.
pub(crate) fn clock_utc(ms: i64) -> String {
    let second_of_day = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60
    )
}

/// A span as a person says it: `45s`, `12m`, `2h 5m`, `3d 4h`. Negative spans read as `0s`.
pub(crate) fn human_span(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    if days > 0 {
        if hours > 0 {
            format!("{days}d {hours}h")
        } else {
            format!("{days}d")
        }
    } else if hours > 0 {
        if minutes > 0 {
            format!("{hours}h {minutes}m")
        } else {
            format!("{hours}h")
        }
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        format!("{seconds}s")
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_772_365_680_250), "2026-03-01T11:48:00.250Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_utc(253_402_300_799_000), "9999-12-31T23:59:59Z");
        // Extremes never panic.
        let _ = rfc3339_utc(i64::MAX);
        let _ = rfc3339_utc(i64::MIN);
    }

    #[test]
    fn clock_and_spans() {
        assert_eq!(clock_utc(1_772_365_680_250), "11:48Z");
        assert_eq!(human_span(-5), "0s");
        assert_eq!(human_span(45_000), "45s");
        assert_eq!(human_span(12 * 60_000 + 59_000), "12m");
        assert_eq!(human_span(2 * 3_600_000 + 5 * 60_000), "2h 5m");
        assert_eq!(human_span(3 * 3_600_000), "3h");
        assert_eq!(human_span(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(human_span(86_400_000), "1d");
    }
}
