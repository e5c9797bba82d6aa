//! Small helpers the network and plugin checks share for building outcomes: samples, messages, latencies.

use std::time::Duration;

use super::Sample;

/// A sample named `name` with `labels` given as `(name, value)` pairs.
pub fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(label_name, label_value)| ((*label_name).to_owned(), (*label_value).to_owned()))
            .collect(),
        value,
    }
}

/// Cut `text` to at most `max_bytes` bytes on a character boundary, marking the cut with `…`.
pub fn truncate_message(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub('…'.len_utf8());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text.get(..end).unwrap_or_default().to_owned();
    cut.push('…');
    cut
}

/// The longest NOC message a check produces (the API asks for at most ~1 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A human latency for messages: `12 ms`, `1.25 s`.
pub fn format_latency(elapsed: Duration) -> String {
    let millis = elapsed.as_secs_f64() * 1000.0;
    if millis < 1000.0 {
        format!("{millis:.0} ms")
    } else {
        format!("{:.2} s", elapsed.as_secs_f64())
    }
}

/// An error and its chain of sources on one line: `error sending request: connection refused`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some libraries repeat their source's text in their own message; say it once.
        if !line.contains(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate_message("short", 10), "short");
        let cut = truncate_message("ééééééé", 8);
        assert!(cut.len() <= 8, "{cut}");
        assert!(cut.ends_with('…'));
    }
}
