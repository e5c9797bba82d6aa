//! Parser of Nagios plugin output: the status text, long text and performance data (pure, never panics).
//!
//! Follows the Nagios plugin development guidelines:
//!
//! ```text
//! TEXT OUTPUT | OPTIONAL PERFDATA
//! LONG TEXT LINE 1
//! LONG TEXT LINE 2 | PERFDATA LINE 2
//! PERFDATA LINE 3
//! ```
//!
//! Perfdata items are separated by spaces: `'label'=value[UOM];[warn];[crit];[min];[max]`.
//! Labels may be single-quoted (a quote inside is doubled: `'it''s'`) and then contain spaces.
//! The value `U` means "could not be determined". A malformed item never fails the parse: it is
//! skipped (or only its bad field is dropped) and a note goes to [`PluginOutput::errors`].

/// What a plugin printed, split the Nagios way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginOutput {
    /// The first line up to the first `|`, trimmed.
    pub message: String,
    /// Further text lines (up to the `|` that starts further perfdata), joined with `\n`.
    pub long_text: String,
    /// The well-formed perfdata items, in order.
    pub perfdata: Vec<PerfDatum>,
    /// One note per perfdata item (or field) that was ignored, e.g. `'a b'=1: missing '='`.
    pub errors: Vec<String>,
}

/// One performance data item.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfDatum {
    /// The label, unquoted (`''` turned back into `'`).
    pub label: String,
    /// The value; `None` when the plugin printed `U` (undetermined).
    pub value: Option<f64>,
    /// The unit of measure as printed (`s`, `ms`, `%`, `B`, `KB`, `c`, ...); empty when none.
    pub unit: String,
    /// The warning threshold range, when present and valid.
    pub warning: Option<ThresholdRange>,
    /// The critical threshold range, when present and valid.
    pub critical: Option<ThresholdRange>,
    /// The minimum possible value, when present and valid.
    pub min: Option<f64>,
    /// The maximum possible value, when present and valid.
    pub max: Option<f64>,
}

/// A Nagios threshold range `[@][start:][end]`: `10`, `10:`, `~:10`, `10:20`, `@10:20`.
///
/// Without `@` the plugin alerts when the value is outside `start..=end`; with `@`, inside.
/// A missing start means 0; `~` means minus infinity; a missing end means plus infinity.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRange {
    /// The range as printed.
    pub text: String,
    /// The start bound as written; `None` when omitted (0) or `~` (minus infinity).
    pub start: Option<f64>,
    /// The end bound as written; `None` when omitted (plus infinity).
    pub end: Option<f64>,
    /// `@` prefix: alert when the value is inside the range.
    pub alert_inside: bool,
}

impl ThresholdRange {
    /// The one number that describes the threshold, when exactly one bound was written:
    /// `10` → 10, `10:` → 10, `~:10` → 10, `@10` → 10; `10:20` or `@10:20` → `None` (ambiguous).
    pub fn single_bound(&self) -> Option<f64> {
        match (self.start, self.end) {
            (Some(start), None) => Some(start),
            (None, Some(end)) => Some(end),
            _ => None,
        }
    }
}

/// Split a plugin's stdout into message, long text and perfdata. Never fails, never panics.
pub fn parse_plugin_output(output: &str) -> PluginOutput {
    let mut parsed = PluginOutput::default();
    let mut lines = output.lines();
    let first_line = lines.next().unwrap_or_default();
    let (message, first_perfdata) = split_at_pipe(first_line);
    parsed.message = message.trim().to_owned();
    let mut perfdata_text = String::new();
    if let Some(first_perfdata) = first_perfdata {
        perfdata_text.push_str(first_perfdata);
    }

    let mut long_text_lines: Vec<&str> = Vec::new();
    let mut in_trailing_perfdata = false;
    for line in lines {
        if in_trailing_perfdata {
            perfdata_text.push(' ');
            perfdata_text.push_str(line);
            continue;
        }
        match split_at_pipe(line) {
            (text, None) => long_text_lines.push(text),
            (text, Some(more_perfdata)) => {
                if !text.trim().is_empty() {
                    long_text_lines.push(text.trim_end());
                }
                perfdata_text.push(' ');
                perfdata_text.push_str(more_perfdata);
                in_trailing_perfdata = true;
            }
        }
    }
    parsed.long_text = long_text_lines.join("\n").trim_end().to_owned();
    parse_perfdata_items(&perfdata_text, &mut parsed.perfdata, &mut parsed.errors);
    parsed
}

/// `text | perfdata` → (`text `, `Some(" perfdata")`); a line without `|` → (line, None).
fn split_at_pipe(line: &str) -> (&str, Option<&str>) {
    match line.split_once('|') {
        Some((text, perfdata)) => (text, Some(perfdata)),
        None => (line, None),
    }
}

/// Parse space-separated perfdata items, appending good ones to `items` and notes to `errors`.
pub fn parse_perfdata_items(text: &str, items: &mut Vec<PerfDatum>, errors: &mut Vec<String>) {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return;
        }
        let (label, after_label) = match read_label(rest) {
            Ok(found) => found,
            Err((message, after_bad_item)) => {
                errors.push(message);
                rest = after_bad_item;
                continue;
            }
        };
        // The value part runs to the next whitespace.
        let value_len = after_label
            .find(char::is_whitespace)
            .unwrap_or(after_label.len());
        let (value_part, after_value) = after_label.split_at(value_len);
        rest = after_value;
        match parse_value_part(&label, value_part, errors) {
            Some(datum) => items.push(datum),
            None => continue,
        }
    }
}

/// Read `label=` (quoted or not) at the start of `text`; on error return a note and the text after the bad item.
fn read_label(text: &str) -> Result<(String, &str), (String, &str)> {
    if let Some(quoted) = text.strip_prefix('\'') {
        let mut label = String::new();
        let mut characters = quoted.char_indices().peekable();
        while let Some((index, character)) = characters.next() {
            if character != '\'' {
                label.push(character);
                continue;
            }
            if let Some((_, '\'')) = characters.peek() {
                // `''` inside a quoted label is one quote.
                label.push('\'');
                characters.next();
                continue;
            }
            let after_quote = quoted.get(index + 1..).unwrap_or_default();
            return match after_quote.strip_prefix('=') {
                Some(after_equals) if !label.is_empty() => Ok((label, after_equals)),
                Some(after_equals) => {
                    Err(("empty label".to_owned(), skip_to_whitespace(after_equals)))
                }
                None => Err((
                    format!("'{}': missing '=' after the label", shorten(&label)),
                    skip_to_whitespace(after_quote),
                )),
            };
        }
        return Err((
            format!("'{}: unterminated quoted label", shorten(quoted)),
            "",
        ));
    }
    let token_len = text.find(char::is_whitespace).unwrap_or(text.len());
    let token = text.get(..token_len).unwrap_or_default();
    let after_token = text.get(token_len..).unwrap_or_default();
    match token.split_once('=') {
        Some(("", _)) => Err((format!("{}: empty label", shorten(token)), after_token)),
        Some((label, _)) => {
            let after_equals = text.get(label.len() + 1..).unwrap_or_default();
            Ok((label.to_owned(), after_equals))
        }
        None => Err((format!("{}: missing '='", shorten(token)), after_token)),
    }
}

fn skip_to_whitespace(text: &str) -> &str {
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    text.get(end..).unwrap_or_default()
}

/// Keep notes short: a plugin could print a megabyte of garbage.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_CHARS).collect();
    short.push('…');
    short
}

/// Parse `value[UOM];[warn];[crit];[min];[max]` for `label`. `None` when the item must be skipped.
fn parse_value_part(label: &str, value_part: &str, errors: &mut Vec<String>) -> Option<PerfDatum> {
    let mut fields = value_part.split(';');
    let value_field = fields.next().unwrap_or_default();
    let (value, unit) = if value_field == "U" {
        (None, String::new())
    } else {
        let number_len = number_prefix_len(value_field);
        let (number_text, unit_text) = value_field.split_at(number_len);
        let Ok(value) = number_text.parse::<f64>() else {
            errors.push(format!(
                "'{}': invalid value \"{}\"",
                shorten(label),
                shorten(value_field)
            ));
            return None;
        };
        if !unit_text.chars().all(is_unit_character) {
            errors.push(format!(
                "'{}': invalid value \"{}\"",
                shorten(label),
                shorten(value_field)
            ));
            return None;
        }
        (Some(value), unit_text.to_owned())
    };

    let mut datum = PerfDatum {
        label: label.to_owned(),
        value,
        unit,
        warning: None,
        critical: None,
        min: None,
        max: None,
    };
    let field_names = ["warn", "crit", "min", "max"];
    for (field_index, field_text) in fields.enumerate() {
        if field_text.is_empty() {
            continue;
        }
        let Some(field_name) = field_names.get(field_index) else {
            errors.push(format!(
                "'{}': more than 5 ';'-separated fields",
                shorten(label)
            ));
            break;
        };
        match field_index {
            0 | 1 => match parse_threshold_range(field_text) {
                Some(range) if field_index == 0 => datum.warning = Some(range),
                Some(range) => datum.critical = Some(range),
                None => errors.push(format!(
                    "'{}': invalid {field_name} threshold \"{}\"",
                    shorten(label),
                    shorten(field_text)
                )),
            },
            _ => match parse_plain_number(field_text) {
                Some(number) if field_index == 2 => datum.min = Some(number),
                Some(number) => datum.max = Some(number),
                None => errors.push(format!(
                    "'{}': invalid {field_name} \"{}\"",
                    shorten(label),
                    shorten(field_text)
                )),
            },
        }
    }
    Some(datum)
}

/// Units are letters, `%` and `/` (e.g. `B/s`, common though not in the guidelines).
fn is_unit_character(character: char) -> bool {
    character.is_alphabetic() || character == '%' || character == '/'
}

/// Length of the leading decimal number: `[-+]digits[.digits][e[-+]digits]`.
fn number_prefix_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut index = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        index += 1;
    }
    let mantissa_start = index;
    while matches!(bytes.get(index), Some(byte) if byte.is_ascii_digit() || *byte == b'.') {
        index += 1;
    }
    if index == mantissa_start {
        return 0;
    }
    // An exponent only counts when digits follow it; otherwise `e` could start a unit.
    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        let mut exponent_end = index + 1;
        if matches!(bytes.get(exponent_end), Some(b'-' | b'+')) {
            exponent_end += 1;
        }
        let digits_start = exponent_end;
        while matches!(bytes.get(exponent_end), Some(byte) if byte.is_ascii_digit()) {
            exponent_end += 1;
        }
        if exponent_end > digits_start {
            index = exponent_end;
        }
    }
    index
}

/// A number and nothing else (min/max and range bounds); no `inf`/`nan` spellings.
fn parse_plain_number(text: &str) -> Option<f64> {
    if text.is_empty() || number_prefix_len(text) != text.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|number| number.is_finite())
}

/// Parse a Nagios threshold range; `None` when malformed.
pub fn parse_threshold_range(text: &str) -> Option<ThresholdRange> {
    let (alert_inside, body) = match text.strip_prefix('@') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (start, end) = match body.split_once(':') {
        Some((start_text, end_text)) => {
            let start = match start_text {
                "" | "~" => None,
                number => Some(parse_plain_number(number)?),
            };
            let end = match end_text {
                "" => None,
                number => Some(parse_plain_number(number)?),
            };
            if start_text.is_empty() && end_text.is_empty() {
                return None;
            }
            (start, end)
        }
        None => (None, Some(parse_plain_number(body)?)),
    };
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return None;
    }
    Some(ThresholdRange {
        text: text.to_owned(),
        start,
        end,
        alert_inside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datum(label: &str, value: Option<f64>, unit: &str) -> PerfDatum {
        PerfDatum {
            label: label.to_owned(),
            value,
            unit: unit.to_owned(),
            warning: None,
            critical: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn parses_check_load_output() {
        let parsed = parse_plugin_output(
            "LOAD OK - total load average: 0.10, 0.72, 0.98|load1=0.100;1.000;2.000;0; load5=0.720;1.000;2.000;0; load15=0.980;1.000;2.000;0; \n",
        );
        assert_eq!(
            parsed.message,
            "LOAD OK - total load average: 0.10, 0.72, 0.98"
        );
        assert_eq!(parsed.long_text, "");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.perfdata.len(), 3);
        let load1 = &parsed.perfdata[0];
        assert_eq!(load1.label, "load1");
        assert_eq!(load1.value, Some(0.1));
        assert_eq!(load1.unit, "");
        assert_eq!(load1.warning.as_ref().unwrap().single_bound(), Some(1.0));
        assert_eq!(load1.critical.as_ref().unwrap().single_bound(), Some(2.0));
        assert_eq!(load1.min, Some(0.0));
        assert_eq!(load1.max, None);
    }

    #[test]
    fn parses_the_guidelines_multiline_example() {
        let parsed = parse_plugin_output(
            "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
             / 15272 MB (77%);\n\
             /boot 68 MB (69%);\n\
             /home 69357 MB (27%);\n\
             /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
             /home=69357MB;253404;253409;0;253414 \n\
             /var/log=818MB;970;975;0;980\n",
        );
        assert_eq!(parsed.message, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(
            parsed.long_text,
            "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
        );
        let labels: Vec<&str> = parsed.perfdata.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["/", "/boot", "/home", "/var/log"]);
        assert_eq!(parsed.perfdata[2].value, Some(69357.0));
        assert_eq!(parsed.perfdata[2].unit, "MB");
        assert_eq!(parsed.perfdata[2].max, Some(253414.0));
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn parses_quoted_labels_units_and_undetermined_values() {
        let parsed = parse_plugin_output(
            "OK | 'free space'=12.5% 'it''s'=3s 'rate'=1e3c time=0.5ms temp=U size=-1.5e-2B",
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(
            parsed.perfdata,
            vec![
                datum("free space", Some(12.5), "%"),
                datum("it's", Some(3.0), "s"),
                datum("rate", Some(1000.0), "c"),
                datum("time", Some(0.5), "ms"),
                datum("temp", None, ""),
                datum("size", Some(-0.015), "B"),
            ]
        );
    }

    #[test]
    fn reads_threshold_ranges() {
        let single = |text: &str| parse_threshold_range(text).and_then(|r| r.single_bound());
        assert_eq!(single("10"), Some(10.0));
        assert_eq!(single("10:"), Some(10.0));
        assert_eq!(single("~:10"), Some(10.0));
        assert_eq!(single("@10"), Some(10.0));
        assert_eq!(single("10:20"), None);
        assert_eq!(single("@10:20"), None);
        assert!(parse_threshold_range("10:20").is_some());
        assert!(parse_threshold_range("@~:-5").unwrap().alert_inside);
        for bad in ["", ":", "abc", "20:10", "1:2:3", "@", "inf", "10%"] {
            assert_eq!(parse_threshold_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn skips_bad_items_and_keeps_the_rest() {
        let parsed = parse_plugin_output("WARNING - things | good=1 novalue 'unterminated=2 ");
        assert_eq!(parsed.message, "WARNING - things");
        assert_eq!(parsed.perfdata, vec![datum("good", Some(1.0), "")]);
        assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
        assert_eq!(parsed.errors[0], "novalue: missing '='");
        assert!(parsed.errors[1].contains("unterminated quoted label"));

        let parsed = parse_plugin_output("OK | a=1,5 b=abc c=5;x;;0 =3 d=4 e=5q1");
        assert_eq!(parsed.perfdata.len(), 2, "{:?}", parsed.perfdata);
        assert_eq!(parsed.perfdata[0].label, "c");
        assert_eq!(parsed.perfdata[0].min, Some(0.0));
        assert_eq!(parsed.perfdata[0].warning, None);
        assert_eq!(parsed.perfdata[1].label, "d");
        assert_eq!(
            parsed.errors,
            [
                "'a': invalid value \"1,5\"",
                "'b': invalid value \"abc\"",
                "'c': invalid warn threshold \"x\"",
                "=3: empty label",
                "'e': invalid value \"5q1\"",
            ]
        );
    }

    #[test]
    fn output_without_perfdata_or_text() {
        assert_eq!(parse_plugin_output(""), PluginOutput::default());
        let parsed = parse_plugin_output("just text\r\nmore\r\n");
        assert_eq!(parsed.message, "just text");
        assert_eq!(parsed.long_text, "more");
        assert!(parsed.perfdata.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse_plugin_output(&text);
        }

        #[test]
        fn never_panics_on_perfdata_like_text(text in "[a-z'= ;:@~.0-9|\n%U-]{0,80}") {
            let parsed = parse_plugin_output(&text);
            prop_assert!(!parsed.message.contains('|'));
        }

        #[test]
        fn well_formed_items_round_trip(
            label in "[a-z][a-z ]{0,10}",
            value in -1.0e6f64..1.0e6,
            unit in prop::sample::select(vec!["", "s", "ms", "%", "B", "KB", "c"]),
            warning in 0u32..100,
        ) {
            let line = format!("OK | '{}'={}{};{};;0", label.replace('\'', "''"), value, unit, warning);
            let parsed = parse_plugin_output(&line);
            prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            prop_assert_eq!(parsed.perfdata.len(), 1);
            prop_assert_eq!(&parsed.perfdata[0].label, &label);
            prop_assert_eq!(parsed.perfdata[0].value, Some(value));
            prop_assert_eq!(&parsed.perfdata[0].unit, unit);
            prop_assert_eq!(parsed.perfdata[0].warning.as_ref().and_then(|r| r.single_bound()), Some(f64::from(warning)));
        }
    }
}
