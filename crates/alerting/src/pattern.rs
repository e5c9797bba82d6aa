//! Name patterns used by route and silence matchers: an exact name or a glob where `*` matches any run of characters.

use std::fmt;

/// A validated name pattern: an exact name (`acme`) or a glob with `*` wildcards (`acme-*`, `*-prod`, `*`).
///
/// `*` matches any run of characters, including none; every other character matches itself
/// (case-sensitive, like the names in platform specs). There is no escaping and no `?`:
/// names in Cloudkeep never contain `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamePattern {
    text: String,
}

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is the empty string.
    #[error("empty pattern: use a name or a glob such as \"acme-*\"")]
    Empty,
    /// The pattern contains whitespace or a control character.
    #[error("invalid pattern {0:?}: whitespace and control characters are not allowed")]
    InvalidCharacter(String),
}

impl NamePattern {
    /// Parses a pattern; it must be non-empty and free of whitespace and control characters.
    pub fn parse(text: &str) -> Result<NamePattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PatternError::InvalidCharacter(text.to_owned()));
        }
        Ok(NamePattern {
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has no wildcard (it matches exactly one name).
    pub fn is_exact(&self) -> bool {
        !self.text.contains('*')
    }

    /// Whether `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_matches(&self.text, name)
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Glob match where `*` matches any run of characters.
///
/// The classic greedy algorithm with one backtrack point: linear in practice and never
/// exponential, since only the most recent `*` needs to be retried.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    // Position of the last `*` seen in the pattern and the name position it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(c) if Some(c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                // Let the last `*` swallow one more character and retry.
                Some((star, tried_at)) => {
                    p = star + 1;
                    n = tried_at + 1;
                    backtrack = Some((star, tried_at + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_glob_matching() {
        let cases = [
            ("acme", "acme", true),
            ("acme", "acme2", false),
            ("acme", "acm", false),
            ("*", "", true),
            ("*", "anything", true),
            ("acme-*", "acme-prod", true),
            ("acme-*", "acme-", true),
            ("acme-*", "acme", false),
            ("*-prod", "acme-prod", true),
            ("*-prod", "acme-prod-2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("**", "x", true),
            ("gc-*1", "gc-uk1", true),
            ("gc-*1", "gc-uk2", false),
        ];
        for (pattern, name, expected) in cases {
            let parsed = NamePattern::parse(pattern).unwrap();
            assert_eq!(parsed.matches(name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        assert_eq!(NamePattern::parse(""), Err(PatternError::Empty));
        assert_eq!(
            NamePattern::parse("a b").map_err(|e| e.to_string()),
            Err(
                "invalid pattern \"a b\": whitespace and control characters are not allowed"
                    .to_owned()
            )
        );
        assert!(NamePattern::parse("acme").unwrap().is_exact());
        assert!(!NamePattern::parse("acme*").unwrap().is_exact());
    }
}
