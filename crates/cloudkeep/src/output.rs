//! Printing answers: aligned tables by default, JSON with `--output json`.

use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints `value` as JSON, or as a table built from `headers` and `rows`.
pub fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
        OutputFormat::Table => print!("{}", table(headers, &rows)),
    }
    Ok(())
}

pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (index, cell) in cells.iter().enumerate() {
            let width = widths.get(index).copied().unwrap_or(0);
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `12.3` for a value, `-` for none.
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.1}"))
}

/// Bytes per second in human units.
pub fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{}/s", binary_units(value)))
}

/// A size in human units, e.g. `1.5 GiB`.
pub fn bytes(value: u64) -> String {
    // Precision beyond 2^53 bytes does not matter for display.
    binary_units(value as f64)
}

fn binary_units(value: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < units.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", units[unit])
}

/// A Unix time in ms as UTC, e.g. `2026-11-22 10:15:00Z`; the raw number if out of range.
pub fn utc_time(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms).map_or_else(
        |_| at_ms.to_string(),
        |at| at.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

/// A length of time, e.g. `45s`, `12m05s`, `3h07m`.
pub fn duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Age of a timestamp relative to now, e.g. `4s ago`.
pub fn age(at_ms: Option<i64>, now_ms: i64) -> String {
    let Some(at_ms) = at_ms else {
        return "never".into();
    };
    let seconds = (now_ms - at_ms).max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["NAME", "CPU"],
            &[
                vec!["web1".into(), "3.0".into()],
                vec!["database-1".into(), "97.5".into()],
            ],
        );
        assert_eq!(text, "NAME        CPU\nweb1        3.0\ndatabase-1  97.5\n");
    }

    #[test]
    fn human_units() {
        assert_eq!(rate(Some(2048.0)), "2.0 KiB/s");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(12), "12.0 B");
        assert_eq!(utc_time(1_795_342_500_000), "2026-11-22 10:15:00Z");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(725_000), "12m05s");
        assert_eq!(duration(11_220_000), "3h07m");
        assert_eq!(rate(None), "-");
        assert_eq!(age(Some(1000), 66_000), "1m ago");
        assert_eq!(age(None, 0), "never");
    }
}
