//! `SpecError`, the one error type of spec parsing and validation, and the JSON path it points at.

use std::fmt;

/// One problem found in a spec file.
///
/// Displays compiler-style so editors and terminals can jump to it:
/// `file:line:column: path: message` when the position is known, and
/// `file: path: message` otherwise. The path part is left out when the error
/// concerns the whole document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub struct SpecError {
    /// The source name given by the caller (usually the file path).
    pub file: String,
    /// JSON path of the offending value, e.g. `hosts[0].components[1].kind`; empty for the document itself.
    pub path: String,
    /// One-based line of the offending value, when known.
    pub line: Option<usize>,
    /// One-based column of the offending value, when known.
    pub column: Option<usize>,
    /// What is wrong, lowercase, without trailing period.
    pub message: String,
}

impl SpecError {
    /// An error without position.
    pub fn new(
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            file: file.into(),
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// The same error with a position.
    #[must_use]
    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, ":{line}:{column}")?,
            (Some(line), None) => write!(f, ":{line}")?,
            _ => {}
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Segment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A path into a JSON document, displayed like `hosts[0].components[1].kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct JsonPath(pub(crate) Vec<Segment>);

impl JsonPath {
    pub(crate) fn root() -> Self {
        JsonPath(Vec::new())
    }

    /// This path extended by an object member.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        JsonPath(segments)
    }

    /// This path extended by an array element.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        JsonPath(segments)
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = SpecError::new(
            "specs/acme.json",
            "hosts[1].name",
            "duplicate host \"app1\" (first defined at hosts[0].name)",
        );
        assert_eq!(
            e.to_string(),
            "specs/acme.json: hosts[1].name: duplicate host \"app1\" (first defined at hosts[0].name)"
        );
        let e = e.at(Some((12, 15)));
        assert_eq!(
            e.to_string(),
            "specs/acme.json:12:15: hosts[1].name: duplicate host \"app1\" (first defined at hosts[0].name)"
        );
        let e = SpecError::new("x.json", "", "expected value");
        assert_eq!(e.to_string(), "x.json: expected value");
    }

    #[test]
    fn path_display() {
        let p = JsonPath::root()
            .key("hosts")
            .index(0)
            .key("components")
            .index(1)
            .key("kind");
        assert_eq!(p.to_string(), "hosts[0].components[1].kind");
        assert_eq!(JsonPath::root().to_string(), "");
        assert_eq!(JsonPath::root().index(2).key("a").to_string(), "[2].a");
    }
}
