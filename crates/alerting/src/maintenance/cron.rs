//! Five-field cron expressions (minute hour day-of-month month day-of-week) matched against civil dates and times.
//!
//! Our own small matcher rather than a crate: it is ~300 lines, works directly on `jiff` civil dates (so time
//! zones and DST are handled in one place, by `jiff`), and its errors say which field is wrong and why.
//!
//! Syntax per field: `*`, a number or name, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to the
//! field's maximum), and comma-separated lists of those. Months take `JAN`..`DEC`, days of the week `SUN`..`SAT`
//! (case-insensitive) and `0`..`7` where both `0` and `7` are Sunday. As in Vixie cron, when both day-of-month
//! and day-of-week are restricted (neither starts with `*`) a day matches if *either* matches; otherwise both
//! must. `L`, `W`, `#`, `?` and seconds are not supported.

use std::fmt;

use jiff::civil::Date;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronSchedule {
    text: String,
    /// Bit `n` set: minute `n` (0-59) matches.
    minutes: u64,
    /// Bit `n` set: hour `n` (0-23) matches.
    hours: u32,
    /// Bit `n` set: day of month `n` (1-31) matches.
    days_of_month: u32,
    /// Bit `n` set: month `n` (1-12) matches.
    months: u16,
    /// Bit `n` set: weekday `n` days after Sunday (0-6) matches.
    days_of_week: u8,
    /// Day-of-month does not start with `*`.
    day_of_month_restricted: bool,
    /// Day-of-week does not start with `*`.
    day_of_week_restricted: bool,
}

/// The five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Minute of the hour, 0-59.
    Minute,
    /// Hour of the day, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or JAN-DEC.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or SUN-SAT.
    DayOfWeek,
}

/// Why a cron expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not exactly five whitespace-separated fields.
    #[error(
        "invalid cron {text:?}: it has {count} fields; use 5: minute hour day-of-month month day-of-week"
    )]
    FieldCount {
        /// The expression.
        text: String,
        /// How many fields it has.
        count: usize,
    },
    /// One field is malformed.
    #[error("invalid cron {text:?}: {field} field {value:?}: {reason}")]
    Field {
        /// The expression.
        text: String,
        /// Which field.
        field: CronField,
        /// The field as written.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Day-of-month and month are each valid but no chosen day exists in any chosen month.
    #[error(
        "invalid cron {text:?}: day-of-month {day_of_month:?} never occurs in month {month:?}, so it never runs"
    )]
    NeverRuns {
        /// The expression.
        text: String,
        /// The day-of-month field.
        day_of_month: String,
        /// The month field.
        month: String,
    },
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        })
    }
}

impl CronField {
    /// Smallest and largest accepted number.
    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    /// Names accepted instead of numbers, with their values.
    fn names(self) -> &'static [(&'static str, u32)] {
        match self {
            CronField::Month => &[
                ("jan", 1),
                ("feb", 2),
                ("mar", 3),
                ("apr", 4),
                ("may", 5),
                ("jun", 6),
                ("jul", 7),
                ("aug", 8),
                ("sep", 9),
                ("oct", 10),
                ("nov", 11),
                ("dec", 12),
            ],
            CronField::DayOfWeek => &[
                ("sun", 0),
                ("mon", 1),
                ("tue", 2),
                ("wed", 3),
                ("thu", 4),
                ("fri", 5),
                ("sat", 6),
            ],
            _ => &[],
        }
    }

    fn value_help(self) -> &'static str {
        match self {
            CronField::Month => "use 1-12 or JAN-DEC",
            CronField::DayOfWeek => "use 0-7 (0 and 7 are Sunday) or SUN-SAT",
            _ => "use a number",
        }
    }
}

impl CronSchedule {
    /// Parses a five-field cron expression.
    pub fn parse(text: &str) -> Result<CronSchedule, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields.as_slice() else {
            return Err(CronError::FieldCount {
                text: text.to_owned(),
                count: fields.len(),
            });
        };
        let field_error = |field: CronField, value: &str, reason: String| CronError::Field {
            text: text.to_owned(),
            field,
            value: value.to_owned(),
            reason,
        };
        let parse = |field: CronField, value: &str| {
            parse_field(field, value).map_err(|reason| field_error(field, value, reason))
        };
        let minutes = parse(CronField::Minute, minute)?;
        let hours = parse(CronField::Hour, hour)?;
        let days_of_month = parse(CronField::DayOfMonth, day_of_month)?;
        let months = parse(CronField::Month, month)?;
        let mut days_of_week = parse(CronField::DayOfWeek, day_of_week)?;
        // 7 is another name for Sunday.
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let schedule = CronSchedule {
            text: text.to_owned(),
            minutes,
            hours: u32::try_from(hours).unwrap_or(0),
            days_of_month: u32::try_from(days_of_month).unwrap_or(0),
            months: u16::try_from(months).unwrap_or(0),
            days_of_week: u8::try_from(days_of_week).unwrap_or(0),
            day_of_month_restricted: !day_of_month.starts_with('*'),
            day_of_week_restricted: !day_of_week.starts_with('*'),
        };
        // With day-of-week unrestricted, days come from day-of-month alone: `31 2` (31 February) never runs.
        if !schedule.day_of_week_restricted && !schedule.some_chosen_day_exists() {
            return Err(CronError::NeverRuns {
                text: text.to_owned(),
                day_of_month: (*day_of_month).to_owned(),
                month: (*month).to_owned(),
            });
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the schedule runs on `date` (at some time of day).
    pub fn matches_date(&self, date: Date) -> bool {
        let month_ok = self.months & (1 << date.month()) != 0;
        let day_of_month_ok = self.days_of_month & (1 << date.day()) != 0;
        let day_of_week_ok = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        let day_ok = if self.day_of_month_restricted && self.day_of_week_restricted {
            day_of_month_ok || day_of_week_ok
        } else {
            day_of_month_ok && day_of_week_ok
        };
        month_ok && day_ok
    }

    /// Every matching time of day as `(hour, minute)`, earliest first (never empty).
    pub fn times_of_day(&self) -> impl Iterator<Item = (i8, i8)> + '_ {
        (0..24i8)
            .filter(|hour| self.hours & (1 << hour) != 0)
            .flat_map(move |hour| {
                (0..60i8)
                    .filter(|minute| self.minutes & (1 << minute) != 0)
                    .map(move |minute| (hour, minute))
            })
    }

    /// Whether some chosen day of the month exists in some chosen month (29 February counts).
    fn some_chosen_day_exists(&self) -> bool {
        const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32).zip(DAYS_IN_MONTH).any(|(month, days)| {
            self.months & (1 << month) != 0
                && (1..=days).any(|day| self.days_of_month & (1 << day) != 0)
        })
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const UNSUPPORTED: &str = "L, W, # and ? are not supported; use *, lists, ranges and steps";

/// Parses one field into a bit set (bit `n` set: value `n` matches).
fn parse_field(field: CronField, text: &str) -> Result<u64, String> {
    if text.contains(['#', '?']) {
        return Err(UNSUPPORTED.to_owned());
    }
    let (min, max) = field.bounds();
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty item in the list".to_owned());
        }
        let (range, step) = match item.split_once('/') {
            None => (item, None),
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("step {step:?} is not a number"))?;
                if step == 0 {
                    return Err("step 0 must be at least 1".to_owned());
                }
                (range, Some(step))
            }
        };
        let (first, last) = if range == "*" {
            // For day-of-week, `*` means 0-6: 7 would only repeat Sunday.
            (
                min,
                if field == CronField::DayOfWeek {
                    6
                } else {
                    max
                },
            )
        } else if let Some((start, end)) = range.split_once('-') {
            let start = parse_value(field, start)?;
            let end = parse_value(field, end)?;
            if start > end {
                return Err(format!(
                    "range {range} is backwards: write the smaller value first"
                ));
            }
            (start, end)
        } else {
            let value = parse_value(field, range)?;
            // `a/n` runs from `a` to the field's maximum.
            (value, if step.is_some() { max } else { value })
        };
        let step = step.unwrap_or(1);
        let mut value = first;
        while value <= last {
            bits |= 1 << value;
            value += step;
        }
    }
    Ok(bits)
}

fn parse_value(field: CronField, text: &str) -> Result<u32, String> {
    let (min, max) = field.bounds();
    if let Some((_, value)) = field
        .names()
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
    {
        return Ok(*value);
    }
    let value: u32 = text.parse().map_err(|_| {
        // Quartz-style `L` (last) and `15W` (nearest weekday) deserve a clearer word than "not a number".
        let upper = text.to_ascii_uppercase();
        if upper == "L" || upper == "LW" || upper.ends_with('W') || upper.ends_with('L') {
            UNSUPPORTED.to_owned()
        } else {
            format!("{text:?} is not a number; {}", field.value_help())
        }
    })?;
    if value < min || value > max {
        return Err(format!("{value} is out of range {min}-{max}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use jiff::civil::date;

    use super::*;

    fn error(text: &str) -> String {
        CronSchedule::parse(text)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parse_errors_name_the_field_and_the_reason() {
        let cases = [
            "0 2 * *",
            "0 25 * * SUN",
            "60 2 * * *",
            "0 2 0 * *",
            "0 2 * 13 *",
            "0 2 * * 8",
            "0 2 * * SUNDAY",
            "0 2 * FOO *",
            "x 2 * * *",
            "0 5-2 * * *",
            "*/0 2 * * *",
            "*/x 2 * * *",
            "0,,5 2 * * *",
            "0 2 L * *",
            "0 2 * * 5#3",
            "0 0 31 2 *",
            "0 0 30,31 FEB *",
        ];
        let rendered: Vec<String> = cases.iter().map(|case| error(case)).collect();
        expect![[r#"
            invalid cron "0 2 * *": it has 4 fields; use 5: minute hour day-of-month month day-of-week
            invalid cron "0 25 * * SUN": hour field "25": 25 is out of range 0-23
            invalid cron "60 2 * * *": minute field "60": 60 is out of range 0-59
            invalid cron "0 2 0 * *": day-of-month field "0": 0 is out of range 1-31
            invalid cron "0 2 * 13 *": month field "13": 13 is out of range 1-12
            invalid cron "0 2 * * 8": day-of-week field "8": 8 is out of range 0-7
            invalid cron "0 2 * * SUNDAY": day-of-week field "SUNDAY": "SUNDAY" is not a number; use 0-7 (0 and 7 are Sunday) or SUN-SAT
            invalid cron "0 2 * FOO *": month field "FOO": "FOO" is not a number; use 1-12 or JAN-DEC
            invalid cron "x 2 * * *": minute field "x": "x" is not a number; use a number
            invalid cron "0 5-2 * * *": hour field "5-2": range 5-2 is backwards: write the smaller value first
            invalid cron "*/0 2 * * *": minute field "*/0": step 0 must be at least 1
            invalid cron "*/x 2 * * *": minute field "*/x": step "x" is not a number
            invalid cron "0,,5 2 * * *": minute field "0,,5": empty item in the list
            invalid cron "0 2 L * *": day-of-month field "L": L, W, # and ? are not supported; use *, lists, ranges and steps
            invalid cron "0 2 * * 5#3": day-of-week field "5#3": L, W, # and ? are not supported; use *, lists, ranges and steps
            invalid cron "0 0 31 2 *": day-of-month "31" never occurs in month "2", so it never runs
            invalid cron "0 0 30,31 FEB *": day-of-month "30,31" never occurs in month "FEB", so it never runs"#]]
        .assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let schedule = CronSchedule::parse("*/15 8-10,22 * * *").unwrap();
        let times: Vec<(i8, i8)> = schedule.times_of_day().collect();
        assert_eq!(times.len(), 16);
        assert_eq!(times.first(), Some(&(8, 0)));
        assert_eq!(times.last(), Some(&(22, 45)));
        assert!(times.contains(&(9, 30)));

        let schedule = CronSchedule::parse("5/20 0 * * *").unwrap();
        let minutes: Vec<i8> = schedule.times_of_day().map(|(_, m)| m).collect();
        assert_eq!(minutes, vec![5, 25, 45]);

        // MON-FRI, names are case-insensitive.
        let weekdays = CronSchedule::parse("0 2 * * mon-FRI").unwrap();
        assert!(weekdays.matches_date(date(2026, 3, 27))); // Friday
        assert!(!weekdays.matches_date(date(2026, 3, 28))); // Saturday
        assert!(!weekdays.matches_date(date(2026, 3, 29))); // Sunday

        // 0 and 7 are both Sunday.
        for text in ["0 2 * * 0", "0 2 * * 7", "0 2 * * SUN", "0 2 * * 5-7"] {
            let schedule = CronSchedule::parse(text).unwrap();
            assert!(schedule.matches_date(date(2026, 3, 29)), "{text}");
        }

        let months = CronSchedule::parse("0 0 1 jan,JUL *").unwrap();
        assert!(months.matches_date(date(2026, 7, 1)));
        assert!(!months.matches_date(date(2026, 7, 2)));
        assert!(!months.matches_date(date(2026, 6, 1)));

        // 29 February exists in leap years only, and that is enough to be valid.
        let leap = CronSchedule::parse("0 0 29 2 *").unwrap();
        assert!(leap.matches_date(date(2028, 2, 29)));
    }

    #[test]
    fn day_of_month_and_day_of_week_follow_vixie_cron() {
        // Both restricted: either matches (the 13th, or any Friday).
        let either = CronSchedule::parse("0 0 13 * FRI").unwrap();
        assert!(either.matches_date(date(2026, 3, 13))); // Friday the 13th
        assert!(either.matches_date(date(2026, 4, 13))); // a Monday
        assert!(either.matches_date(date(2026, 4, 3))); // a Friday
        assert!(!either.matches_date(date(2026, 4, 4)));
        // Day-of-week starting with `*` (even with a step) is unrestricted: both must match.
        let both = CronSchedule::parse("0 0 13 * */1").unwrap();
        assert!(both.matches_date(date(2026, 4, 13)));
        assert!(!both.matches_date(date(2026, 4, 3)));
    }
}
