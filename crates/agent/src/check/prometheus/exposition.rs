//! Parser of the Prometheus text exposition format 0.0.4 (pure, never panics; errors name the line).
//!
//! Reads `# HELP`/`# TYPE` comments (checked for shape, otherwise ignored), sample lines
//! `name{label="value",...} value [timestamp]` with `\\`, `\"` and `\n` escapes in label values,
//! `NaN`/`+Inf`/`-Inf` values and an optional integer timestamp (validated, then ignored: the
//! agent stamps the time). Histogram and summary series are plain samples with their suffixes
//! (`_bucket`, `_sum`, `_count`). Like Prometheus, one bad line fails the whole exposition.

use std::fmt;

use crate::check::Sample;

/// Why an exposition could not be parsed, with the 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpositionError {
    /// 1-based line number of the offending line.
    pub line: usize,
    /// What is wrong on that line.
    pub message: String,
}

impl fmt::Display for ExpositionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ExpositionError {}

/// Parse an exposition body given as bytes (it must be UTF-8).
pub fn parse_exposition_bytes(body: &[u8]) -> Result<Vec<Sample>, ExpositionError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse_exposition(text),
        Err(error) => {
            let valid = body.get(..error.valid_up_to()).unwrap_or_default();
            let line = 1 + valid.iter().filter(|byte| **byte == b'\n').count();
            Err(ExpositionError {
                line,
                message: "invalid UTF-8".to_owned(),
            })
        }
    }
}

/// Parse an exposition; the samples come in the order of the text.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    let mut samples = Vec::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let line = line.trim_start_matches([' ', '\t']);
        let line_number = index + 1;
        let at_line = |message: String| ExpositionError {
            line: line_number,
            message,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            check_comment(comment).map_err(at_line)?;
            continue;
        }
        samples.push(parse_sample_line(line).map_err(at_line)?);
    }
    Ok(samples)
}

/// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
fn check_comment(comment: &str) -> Result<(), String> {
    let comment = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_token(comment);
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    let (metric_name, rest) = split_token(rest);
    if !is_metric_name(metric_name) {
        return Err(format!(
            "invalid metric name {} in {keyword} comment",
            quoted(metric_name)
        ));
    }
    if keyword == "TYPE" {
        let (metric_type, rest) = split_token(rest);
        if !matches!(
            metric_type,
            "counter" | "gauge" | "histogram" | "summary" | "untyped"
        ) {
            return Err(format!(
                "invalid metric type {} for {metric_name}",
                quoted(metric_type)
            ));
        }
        if !rest.trim_matches([' ', '\t']).is_empty() {
            return Err(format!("unexpected text after the type of {metric_name}"));
        }
    }
    Ok(())
}

/// The first blank-separated token and the rest (leading blanks of the rest removed).
fn split_token(text: &str) -> (&str, &str) {
    let end = text.find([' ', '\t']).unwrap_or(text.len());
    let (token, rest) = text.split_at(end);
    (token, rest.trim_start_matches([' ', '\t']))
}

fn parse_sample_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|(index, character)| !is_metric_name_character(*character, *index == 0))
        .map(|(index, _)| index)
        .unwrap_or(line.len());
    let (name, after_name) = line.split_at(name_end);
    if name.is_empty() {
        return Err(format!(
            "invalid metric name at {}",
            quoted(&line.chars().take(20).collect::<String>())
        ));
    }
    let mut labels = Vec::new();
    let rest =
        if let Some(after_brace) = after_name.trim_start_matches([' ', '\t']).strip_prefix('{') {
            parse_labels(after_brace, &mut labels)?
        } else if after_name.is_empty() || after_name.starts_with([' ', '\t']) {
            after_name
        } else {
            let character = after_name.chars().next().unwrap_or_default();
            return Err(format!(
                "invalid character {character:?} after metric name {name}"
            ));
        };
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value_text, rest) = split_token(rest);
    if value_text.is_empty() {
        return Err(format!("expected a value after {name}"));
    }
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {} for {name}", quoted(value_text)))?;
    let (timestamp_text, rest) = split_token(rest);
    if !timestamp_text.is_empty() && timestamp_text.parse::<i64>().is_err() {
        return Err(format!(
            "invalid timestamp {} for {name}",
            quoted(timestamp_text)
        ));
    }
    if !rest.is_empty() {
        return Err(format!(
            "unexpected text {} after the sample of {name}",
            quoted(&rest.chars().take(20).collect::<String>())
        ));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parse `label="value",...}` (after the `{`); returns the text after the `}`.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .char_indices()
            .find(|(index, character)| !is_label_name_character(*character, *index == 0))
            .map(|(index, _)| index)
            .unwrap_or(rest.len());
        let (label_name, after_name) = rest.split_at(name_end);
        if label_name.is_empty() {
            return Err(match rest.chars().next() {
                None => "unterminated label set (missing '}')".to_owned(),
                Some(character) => format!("invalid label name starting at {character:?}"),
            });
        }
        if label_name == "__name__" {
            return Err("label name \"__name__\" is reserved".to_owned());
        }
        if labels.iter().any(|(existing, _)| existing == label_name) {
            return Err(format!("duplicate label name \"{label_name}\""));
        }
        let after_name = after_name.trim_start_matches([' ', '\t']);
        let Some(after_equals) = after_name.strip_prefix('=') else {
            return Err(format!("expected '=' after label name \"{label_name}\""));
        };
        let after_equals = after_equals.trim_start_matches([' ', '\t']);
        let Some(quoted_value) = after_equals.strip_prefix('"') else {
            return Err(format!(
                "expected '\"' to start the value of label \"{label_name}\""
            ));
        };
        let (label_value, after_value) = read_label_value(quoted_value)
            .map_err(|message| format!("label \"{label_name}\": {message}"))?;
        labels.push((label_name.to_owned(), label_value));
        rest = after_value.trim_start_matches([' ', '\t']);
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if rest.is_empty() {
            return Err("unterminated label set (missing '}')".to_owned());
        } else if !rest.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after the value of label \"{label_name}\""
            ));
        }
    }
}

/// Read an escaped label value up to its closing quote; returns the value and the text after the quote.
fn read_label_value(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut characters = text.char_indices();
    while let Some((index, character)) = characters.next() {
        match character {
            '"' => return Ok((value, text.get(index + 1..).unwrap_or_default())),
            '\\' => match characters.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => {
                    return Err(format!("invalid escape sequence \"\\{other}\""));
                }
                None => return Err("unterminated label value".to_owned()),
            },
            other => value.push(other),
        }
    }
    Err("unterminated label value".to_owned())
}

/// A float as Go's `ParseFloat` reads the format's values: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    // Rust also reads `infinity`; Go does too, so that is fine. Refuse what neither would write.
    if text.contains('_') {
        return None;
    }
    text.parse::<f64>().ok()
}

fn is_metric_name_character(character: char, first: bool) -> bool {
    character.is_ascii_alphabetic()
        || character == '_'
        || character == ':'
        || (!first && character.is_ascii_digit())
}

fn is_label_name_character(character: char, first: bool) -> bool {
    character.is_ascii_alphabetic() || character == '_' || (!first && character.is_ascii_digit())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .char_indices()
            .all(|(index, character)| is_metric_name_character(character, index == 0))
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .char_indices()
            .all(|(index, character)| is_label_name_character(character, index == 0))
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            value,
        }
    }

    #[test]
    fn parses_the_format_documentation_example() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds_count 2693
"#;
        let samples = parse_exposition(text).unwrap();
        assert_eq!(samples.len(), 11);
        assert_eq!(
            samples[0],
            sample(
                "http_requests_total",
                &[("method", "post"), ("code", "200")],
                1027.0
            )
        );
        assert_eq!(
            samples[2],
            sample(
                "msdos_file_access_time_seconds",
                &[
                    ("path", "C:\\DIR\\FILE.TXT"),
                    ("error", "Cannot find file:\n\"FILE.TXT\"")
                ],
                1.458255915e9
            )
        );
        assert_eq!(
            samples[3],
            sample("metric_without_timestamp_and_labels", &[], 12.47)
        );
        assert_eq!(samples[4].value, f64::INFINITY);
        assert_eq!(samples[6].labels, [("le".to_owned(), "+Inf".to_owned())]);
        assert_eq!(samples[8].name, "http_request_duration_seconds_count");
    }

    #[test]
    fn reads_special_values_and_loose_spacing() {
        let samples =
            parse_exposition("a NaN\nb -Inf\r\n  c { x = \"1\" , } 2\t\nd{} 3\ne:f_1 4e-3 -5")
                .unwrap();
        assert!(samples[0].value.is_nan());
        assert_eq!(samples[1].value, f64::NEG_INFINITY);
        assert_eq!(samples[2], sample("c", &[("x", "1")], 2.0));
        assert_eq!(samples[3], sample("d", &[], 3.0));
        assert_eq!(samples[4], sample("e:f_1", &[], 0.004));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("ok 1\n9bad 1", "line 2: invalid metric name at \"9bad 1\""),
            ("ok 1\n\nnovalue", "line 3: expected a value after novalue"),
            ("a{x=\"1\"}", "line 1: expected a value after a"),
            ("a abc", "line 1: invalid value \"abc\" for a"),
            ("a 1 12.5", "line 1: invalid timestamp \"12.5\" for a"),
            (
                "a 1 2 3",
                "line 1: unexpected text \"3\" after the sample of a",
            ),
            ("a{x=\"1\",x=\"2\"} 1", "line 1: duplicate label name \"x\""),
            (
                "a{x=\"\\t\"} 1",
                "line 1: label \"x\": invalid escape sequence \"\\t\"",
            ),
            (
                "a{x=\"1} 1",
                "line 1: label \"x\": unterminated label value",
            ),
            (
                "a{x=1} 1",
                "line 1: expected '\"' to start the value of label \"x\"",
            ),
            (
                "a{x=\"1\" y=\"2\"} 1",
                "line 1: expected ',' or '}' after the value of label \"x\"",
            ),
            (
                "a{1x=\"1\"} 1",
                "line 1: invalid label name starting at '1'",
            ),
            ("a{x=\"1\"", "line 1: unterminated label set (missing '}')"),
            (
                "# TYPE a countr",
                "line 1: invalid metric type \"countr\" for a",
            ),
            (
                "# HELP 1a help",
                "line 1: invalid metric name \"1a\" in HELP comment",
            ),
            (
                "a{__name__=\"b\"} 1",
                "line 1: label name \"__name__\" is reserved",
            ),
            ("a 1_000", "line 1: invalid value \"1_000\" for a"),
            ("a-b 1", "line 1: invalid character '-' after metric name a"),
        ];
        for (text, expected) in cases {
            let error = parse_exposition(text).unwrap_err();
            assert_eq!(error.to_string(), expected, "for {text:?}");
        }
        let error = parse_exposition_bytes(b"a 1\nb{x=\"\xff\"} 1").unwrap_err();
        assert_eq!(error.to_string(), "line 2: invalid UTF-8");
    }

    #[test]
    fn other_comments_are_ignored() {
        let samples = parse_exposition("#\n# just a note\n#HELP a text\n# EOF\na 1").unwrap();
        assert_eq!(samples, [sample("a", &[], 1.0)]);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse_exposition(&text);
        }

        #[test]
        fn never_panics_on_exposition_like_text(text in "[a-z_{}=\",# \\\\\nHELPTYE0-9.+-]{0,120}") {
            let _ = parse_exposition(&text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_exposition_bytes(&bytes);
        }

        #[test]
        fn written_samples_parse_back(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}",
            labels in proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,8}", any::<String>(), 0..4),
            value in any::<f64>().prop_filter("NaN never equals itself", |v| !v.is_nan()),
        ) {
            let rendered_labels: Vec<String> = labels
                .iter()
                .map(|(key, label_value)| {
                    let escaped = label_value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                    format!("{key}=\"{escaped}\"")
                })
                .collect();
            let value_text = if value == f64::INFINITY { "+Inf".to_owned() } else if value == f64::NEG_INFINITY { "-Inf".to_owned() } else { format!("{value:e}") };
            let line = format!("{name}{{{}}} {value_text} 1700000000000\n", rendered_labels.join(","));
            let samples = parse_exposition(&line).unwrap();
            prop_assert_eq!(samples.len(), 1);
            prop_assert_eq!(&samples[0].name, &name);
            prop_assert_eq!(samples[0].value, value);
            let expected: Vec<(String, String)> = labels.into_iter().collect();
            prop_assert_eq!(&samples[0].labels, &expected);
        }
    }
}
