//! Series selectors: a subset of PromQL's instant vector selector syntax, parsing and matching
//!
//! Grammar: `metric_name`, `metric_name{matchers}` or `{matchers}` where matchers are
//! `label op "value"` separated by commas (a trailing comma is allowed) and op is one of
//! `=`, `!=`, `=~`, `!~`. Values are double-quoted, single-quoted (both with `\` escapes) or
//! back-quoted (raw). Regexes are fully anchored, as in Prometheus. A label that is absent
//! matches as the empty string. At least one matcher is required.

use std::fmt;

use regex::Regex;

use crate::labels::Labels;

/// A selector could not be parsed; `column` is 1-based, counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector at column {column}: {message}")]
pub struct SelectorError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// One `label op value` condition.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; regex values are compiled anchored at both ends.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, regex::Error> {
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?:{value})$"))?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Tests a label value; an absent label is passed as `""`.
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            // unreachable by construction; failing closed keeps a broken matcher from selecting everything
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => false,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// A parsed series selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        Parser {
            chars: input.chars().collect(),
            pos: 0,
        }
        .parse()
    }

    /// Builds a selector from matchers; `None` when the list is empty.
    pub fn from_matchers(matchers: Vec<Matcher>) -> Option<Selector> {
        if matchers.is_empty() {
            None
        } else {
            Some(Selector { matchers })
        }
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The metric name when the selector pins it with an equality matcher.
    pub fn metric_name(&self) -> Option<&str> {
        self.matchers
            .iter()
            .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
            .map(|m| m.value.as_str())
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }
}

fn is_metric_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn describe(c: Option<char>) -> String {
    match c {
        Some(c) => format!("'{c}'"),
        None => "end of input".to_string(),
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err<T>(&self, at: usize, message: String) -> Result<T, SelectorError> {
        Err(SelectorError {
            column: at + 1,
            message,
        })
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn ident(&mut self, rest: fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(rest) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn parse(mut self) -> Result<Selector, SelectorError> {
        let mut matchers = Vec::new();
        self.skip_ws();
        match self.peek() {
            Some(c) if is_metric_start(c) => {
                let name = self.ident(is_metric_char);
                matchers.push(Matcher {
                    name: "__name__".to_string(),
                    op: MatchOp::Equal,
                    value: name,
                    regex: None,
                });
            }
            Some('{') => {}
            other => {
                return self.err(
                    self.pos,
                    format!("expected metric name or '{{', found {}", describe(other)),
                );
            }
        }
        self.skip_ws();
        if self.peek() == Some('{') {
            self.pos += 1;
            self.parse_matchers(&mut matchers)?;
        }
        self.skip_ws();
        if let Some(c) = self.peek() {
            return self.err(self.pos, format!("expected end of selector, found '{c}'"));
        }
        if matchers.is_empty() {
            return self.err(0, "expected at least one matcher".to_string());
        }
        Ok(Selector { matchers })
    }

    fn parse_matchers(&mut self, out: &mut Vec<Matcher>) -> Result<(), SelectorError> {
        loop {
            self.skip_ws();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) if is_label_start(c) => {}
                other => {
                    return self.err(
                        self.pos,
                        format!("expected label name or '}}', found {}", describe(other)),
                    );
                }
            }
            let name = self.ident(is_label_char);
            self.skip_ws();
            let op_at = self.pos;
            let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
                (Some('='), Some('~')) => MatchOp::RegexMatch,
                (Some('!'), Some('~')) => MatchOp::RegexNoMatch,
                (Some('!'), Some('=')) => MatchOp::NotEqual,
                (Some('='), _) => MatchOp::Equal,
                (other, _) => {
                    return self.err(
                        op_at,
                        format!(
                            "expected one of '=', '!=', '=~', '!~', found {}",
                            describe(other)
                        ),
                    );
                }
            };
            self.pos += op.as_str().len();
            self.skip_ws();
            let value_at = self.pos;
            let value = self.parse_string()?;
            let matcher = Matcher::new(&name, op, &value).map_err(|e| SelectorError {
                column: value_at + 1,
                message: format!(
                    "invalid regex: {}",
                    e.to_string().to_lowercase().trim_end_matches('.')
                ),
            })?;
            out.push(matcher);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    return Ok(());
                }
                other => {
                    return self.err(
                        self.pos,
                        format!("expected ',' or '}}', found {}", describe(other)),
                    );
                }
            }
        }
    }

    fn parse_string(&mut self) -> Result<String, SelectorError> {
        let open_at = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            other => {
                return self.err(
                    open_at,
                    format!("expected quoted string, found {}", describe(other)),
                );
            }
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.err(open_at, "unterminated string".to_string());
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                let esc_at = self.pos - 1;
                let Some(e) = self.peek() else {
                    return self.err(open_at, "unterminated string".to_string());
                };
                self.pos += 1;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' | '"' | '\'' | '`' => e,
                    other => {
                        return self.err(esc_at, format!("unknown escape sequence '\\{other}'"));
                    }
                });
            } else {
                out.push(c);
            }
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in v.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Selector {
    /// Canonical form that parses back to an equal selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest: &[Matcher] = &self.matchers;
        if let Some(first) = self.matchers.first()
            && first.name == "__name__"
            && first.op == MatchOp::Equal
            && first.value.chars().next().is_some_and(is_metric_start)
            && first.value.chars().all(is_metric_char)
        {
            f.write_str(&first.value)?;
            rest = &self.matchers[1..];
            if rest.is_empty() {
                return Ok(());
            }
        }
        f.write_str("{")?;
        for (i, m) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}", m.name, m.op.as_str())?;
            write_quoted(f, &m.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    fn err(input: &str) -> SelectorError {
        match Selector::parse(input) {
            Ok(s) => panic!("expected {input:?} to fail, got {s}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_valid_selectors() {
        let s = Selector::parse("http_requests_total").unwrap();
        assert_eq!(s.metric_name(), Some("http_requests_total"));
        assert_eq!(s.matchers().len(), 1);

        let s = Selector::parse(r#" up { job = "api", env!='prod', pod=~"a.*", zone!~`b\d`, } "#)
            .unwrap();
        assert_eq!(s.matchers().len(), 5);
        assert_eq!(s.matchers()[2].op(), MatchOp::NotEqual);
        assert_eq!(s.matchers()[4].value(), r"b\d");

        let s = Selector::parse(r#"{__name__="m", a="x\"y"}"#).unwrap();
        assert_eq!(s.metric_name(), Some("m"));
        assert_eq!(s.matchers()[1].value(), "x\"y");
        assert!(Selector::parse("m{}").is_ok());
    }

    #[test]
    fn display_round_trips() {
        for input in [
            r#"up{job="a\"b", x!~"c.*"}"#,
            r#"{__name__=~"m.*", a="b"}"#,
            "up",
            r#"{a="\n"}"#,
        ] {
            let s = Selector::parse(input).unwrap();
            let again = Selector::parse(&s.to_string()).unwrap();
            assert_eq!(s, again, "{input} -> {s}");
        }
        assert_eq!(
            Selector::parse(r#"up{ a = "b" }"#).unwrap().to_string(),
            r#"up{a="b"}"#
        );
    }

    #[test]
    fn reports_column_and_expectation() {
        let e = err("");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("expected metric name"), "{e}");

        let e = err("{}");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("at least one matcher"), "{e}");

        let e = err(r#"up{job "a"}"#);
        assert_eq!(e.column, 8);
        assert!(e.message.contains("expected one of '='"), "{e}");

        let e = err(r#"up{job="a""#);
        assert_eq!(e.column, 11);
        assert!(e.message.contains("expected ',' or '}'"), "{e}");

        let e = err(r#"up{job="a}"#);
        assert_eq!(e.column, 8);
        assert_eq!(e.message, "unterminated string");

        let e = err(r#"up{job=~"("}"#);
        assert_eq!(e.column, 9);
        assert!(e.message.starts_with("invalid regex"), "{e}");

        let e = err(r#"up{1a="x"}"#);
        assert_eq!(e.column, 4);
        assert!(e.message.contains("expected label name"), "{e}");

        let e = err("up extra");
        assert_eq!(e.column, 4);
        assert!(e.to_string().contains("column 4"), "{e}");

        let e = err(r#"up{a="\q"}"#);
        assert_eq!(e.column, 7);
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let s = Selector::parse(r#"up{job=~"api"}"#).unwrap();
        assert!(s.matches(&labels(&[("__name__", "up"), ("job", "api")])));
        assert!(!s.matches(&labels(&[("__name__", "up"), ("job", "api-2")])));
        assert!(!s.matches(&labels(&[("__name__", "up"), ("job", "my-api")])));

        let s = Selector::parse(r#"up{job=~"a|b"}"#).unwrap();
        assert!(s.matches(&labels(&[("__name__", "up"), ("job", "b")])));
        assert!(!s.matches(&labels(&[("__name__", "up"), ("job", "ab")])));

        let s = Selector::parse(r#"up{job!~"api.*"}"#).unwrap();
        assert!(!s.matches(&labels(&[("__name__", "up"), ("job", "api-2")])));
        assert!(s.matches(&labels(&[("__name__", "up"), ("job", "xapi")])));
    }

    #[test]
    fn absent_labels_match_as_empty() {
        let s = Selector::parse(r#"up{env=""}"#).unwrap();
        assert!(s.matches(&labels(&[("__name__", "up")])));
        assert!(!s.matches(&labels(&[("__name__", "up"), ("env", "p")])));
        let s = Selector::parse(r#"up{env!="p"}"#).unwrap();
        assert!(s.matches(&labels(&[("__name__", "up")])));
        assert!(!s.matches(&labels(&[("__name__", "down")])));
    }
}
