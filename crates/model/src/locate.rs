//! Finding the line and column of a JSON path in a JSON text, so semantic errors can point into the file.
//!
//! The text has already been accepted by `serde_json`, but the scanner still
//! treats every byte defensively: anything unexpected yields `None`.

use crate::error::{JsonPath, Segment};

/// One-based `(line, column)` of the value at `path` in `text`, columns counted in characters.
pub(crate) fn locate(text: &str, path: &JsonPath) -> Option<(usize, usize)> {
    let mut scanner = Scanner {
        chars: text.char_indices().peekable(),
        line: 1,
        column: 1,
    };
    scanner.skip_ws();
    for segment in path.segments() {
        match segment {
            Segment::Key(key) => scanner.enter_member(key)?,
            Segment::Index(index) => scanner.enter_element(*index)?,
        }
        scanner.skip_ws();
    }
    scanner.peek()?;
    Some((scanner.line, scanner.column))
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
    column: usize,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|(_, c)| *c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, expected: char) -> Option<()> {
        self.skip_ws();
        (self.bump()? == expected).then_some(())
    }

    /// Reads a string (cursor on its opening quote) and returns its decoded value.
    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(out),
                '\\' => match self.bump()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            code = code * 16 + self.bump()?.to_digit(16)?;
                        }
                        // lone surrogates cannot be keys we look for; keep a placeholder
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
    }

    /// Skips one value of any type, without recursion.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                '"' => {
                    self.string()?;
                }
                '{' | '[' => {
                    self.bump();
                    depth += 1;
                }
                '}' | ']' => {
                    if depth == 0 {
                        return Some(());
                    }
                    self.bump();
                    depth -= 1;
                }
                ',' | ':' if depth > 0 => {
                    self.bump();
                }
                ',' => return Some(()),
                c if c.is_whitespace() => {
                    self.bump();
                }
                _ => {
                    // number or literal
                    while !matches!(
                        self.peek(),
                        None | Some(',' | '}' | ']' | ' ' | '\t' | '\n' | '\r')
                    ) {
                        self.bump();
                    }
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }

    /// With the cursor on an object, moves to the value of member `key`.
    fn enter_member(&mut self, key: &str) -> Option<()> {
        self.expect('{')?;
        self.skip_ws();
        if self.peek()? == '}' {
            return None;
        }
        loop {
            self.skip_ws();
            let name = self.string()?;
            self.expect(':')?;
            self.skip_ws();
            if name == key {
                return Some(());
            }
            self.skip_value()?;
            self.skip_ws();
            match self.bump()? {
                ',' => {}
                _ => return None,
            }
        }
    }

    /// With the cursor on an array, moves to its element `index`.
    fn enter_element(&mut self, index: usize) -> Option<()> {
        self.expect('[')?;
        self.skip_ws();
        if self.peek()? == ']' {
            return None;
        }
        for _ in 0..index {
            self.skip_value()?;
            self.skip_ws();
            if self.bump()? != ',' {
                return None;
            }
            self.skip_ws();
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\\\"}\"}, [2, 3]],\n  \"c\\u0064\": {\"e\": true},\n  \"f\": -1.5e3\n}";
        let root = JsonPath::root();
        assert_eq!(locate(text, &root), Some((1, 1)));
        assert_eq!(locate(text, &root.key("a")), Some((2, 8)));
        assert_eq!(locate(text, &root.key("a").index(0)), Some((2, 9)));
        assert_eq!(locate(text, &root.key("a").index(1)), Some((2, 12)));
        assert_eq!(
            locate(text, &root.key("a").index(1).key("b")),
            Some((2, 18))
        );
        assert_eq!(locate(text, &root.key("a").index(2)), Some((2, 27)));
        assert_eq!(
            locate(text, &root.key("a").index(2).index(1)),
            Some((2, 31))
        );
        assert_eq!(locate(text, &root.key("cd").key("e")), Some((3, 20)));
        assert_eq!(locate(text, &root.key("f")), Some((4, 8)));
        assert_eq!(locate(text, &root.key("missing")), None);
        assert_eq!(locate(text, &root.key("a").index(3)), None);
        assert_eq!(locate(text, &root.key("f").key("x")), None);
    }

    #[test]
    fn never_panics_on_garbage() {
        let path = JsonPath::root().key("a").index(3).key("b");
        for text in [
            "",
            "{",
            "[",
            "{\"a\"",
            "{\"a\":[",
            "\"\\u12",
            "}}}",
            "{\"a\":[1,",
            "\u{fffd}",
        ] {
            let _ = locate(text, &path);
        }
    }
}
