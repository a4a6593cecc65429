//! Field lookups on JSON text without building a tree.
//!
//! A sink that needs two fields of a 300-byte event does not need the other twenty parsed:
//! [`lookup_raw`] walks the text once, skipping what is not on the path, and returns the text of
//! the value found; [`as_str`], [`as_f64`], [`as_i64`] and [`as_bool`] read it as `serde_json`'s
//! `Value` accessors would.
//!
//! What is checked: the parts the walk reads (the containers on the path, their keys and the
//! structure of the values skipped: brackets, strings, separators). A malformed document is an
//! error as soon as the walk meets the fault; a fault after the value found is not seen (the SDK
//! has already checked every message it delivers is valid JSON). Never a panic: every index is
//! bounds-checked. Duplicate keys: the first wins (`serde_json` keeps the last).

use std::borrow::Cow;

/// Why a lookup failed: the JSON text is malformed where the walk read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JSON at byte {offset}: {what}")]
pub struct RawError {
    /// Where in the text.
    pub offset: usize,
    /// What was expected.
    pub what: &'static str,
}

/// Deepest nesting the walk follows (`serde_json` refuses past 128 as well).
const MAX_DEPTH: usize = 128;

/// The JSON text of the value at the dotted `path` (`data.fps`, `items.0.id`: a segment indexes an
/// array when it is a number) in the document `json`, without surrounding whitespace.
/// `Ok(None)`: absent (a key missing, an index past the end, a step into a scalar). An empty
/// `path` is the whole document.
pub fn lookup_raw<'a>(json: &'a str, path: &str) -> Result<Option<&'a str>, RawError> {
    let mut s = Scanner {
        b: json.as_bytes(),
        i: 0,
    };
    s.ws();
    if !path.is_empty() {
        for key in path.split('.') {
            let found = match s.peek() {
                Some(b'{') => s.find_key(key)?,
                Some(b'[') => match key.parse::<usize>() {
                    Ok(n) => s.find_index(n)?,
                    Err(_) => {
                        s.skip_value(0)?;
                        false
                    }
                },
                Some(_) => {
                    // A step into a scalar: absent, once the scalar is checked.
                    s.skip_value(0)?;
                    false
                }
                None => return Err(s.err("a value")),
            };
            if !found {
                return Ok(None);
            }
        }
    }
    let start = s.i;
    s.skip_value(0)?;
    let end = s.i;
    // What follows must close the value: a truncated `{"n":12` is an error, not 12.
    s.ws();
    match (s.peek(), path.is_empty()) {
        (None, true) | (Some(b',' | b'}' | b']'), false) => Ok(json.get(start..end)),
        (_, true) => Err(s.err("the end of the document")),
        (_, false) => Err(s.err("',' or the end of the container after the value")),
    }
}

/// A string value's contents (`"a\"b"` → `a"b`, borrowed when it has no escape); `None` if `raw`
/// is not a string.
pub fn as_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// A number value as `f64` (as `Value::as_f64`); `None` if `raw` is not a number.
pub fn as_f64(raw: &str) -> Option<f64> {
    is_number(raw).then(|| raw.parse::<f64>().ok())?
}

/// An integer value as `i64` (as `Value::as_i64`: `3` yes, `3.0` and `1e2` no).
pub fn as_i64(raw: &str) -> Option<i64> {
    is_number(raw).then(|| raw.parse::<i64>().ok())?
}

/// `true` / `false`.
pub fn as_bool(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Whether `raw` starts like a JSON number (what [`lookup_raw`] returns is then one).
pub fn is_number(raw: &str) -> bool {
    matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// What [`Scanner::next_member`] expects after an object's member.
const OBJECT_MEMBER: &str = "',' or '}' in an object";
/// What [`Scanner::next_member`] expects after an array's element.
const ARRAY_MEMBER: &str = "',' or ']' in an array";

impl Scanner<'_> {
    fn err(&self, what: &'static str) -> RawError {
        RawError {
            offset: self.i,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// At a container's opening byte: moves past it; when `close` follows (an empty container),
    /// past that too, and true.
    fn open_is_empty(&mut self, close: u8) -> bool {
        self.i += 1;
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.i += 1;
        }
        empty
    }

    /// After a container's member: moves past the `,` before the next one (true) or past the
    /// container's `close` (false).
    fn next_member(&mut self, close: u8, what: &'static str) -> Result<bool, RawError> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.err(what)),
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), RawError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// At `"`: skips the string; returns its raw contents and whether it has an escape.
    fn string(&mut self) -> Result<(usize, usize, bool), RawError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("a string"));
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Jump to the next quote or backslash; everything else is content.
            match self.b[self.i.min(self.b.len())..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            {
                None => {
                    self.i = self.b.len();
                    return Err(self.err("the end of a string"));
                }
                Some(n) => {
                    self.i += n;
                    match self.b[self.i] {
                        b'"' => {
                            let end = self.i;
                            self.i += 1;
                            return Ok((start, end, escaped));
                        }
                        b'\\' => {
                            escaped = true;
                            // The escaped character (a `\uXXXX`'s hex digits are plain content).
                            if self.i + 1 >= self.b.len() {
                                self.i = self.b.len();
                                return Err(self.err("the end of a string"));
                            }
                            self.i += 2;
                        }
                        _ => return Err(self.err("no control character in a string")),
                    }
                }
            }
        }
    }

    /// Skips one value (the caller skipped whitespace before it).
    fn skip_value(&mut self, depth: usize) -> Result<(), RawError> {
        if depth > MAX_DEPTH {
            return Err(self.err("at most 128 levels of nesting"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => {
                if self.open_is_empty(b'}') {
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.expect(b':', "':' after a key")?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    if !self.next_member(b'}', OBJECT_MEMBER)? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                if self.open_is_empty(b']') {
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    if !self.next_member(b']', ARRAY_MEMBER)? {
                        return Ok(());
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("a value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), RawError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("true, false or null"))
        }
    }

    /// A number per RFC 8259: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), RawError> {
        let digits = |s: &mut Self| {
            let from = s.i;
            while let Some(b'0'..=b'9') = s.peek() {
                s.i += 1;
            }
            s.i > from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        if self.peek() == Some(b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err("a digit"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("a digit in the exponent"));
            }
        }
        Ok(())
    }

    /// At `{`: moves to the value of `key` (true) or past the object (false).
    fn find_key(&mut self, key: &str) -> Result<bool, RawError> {
        if self.open_is_empty(b'}') {
            return Ok(false);
        }
        loop {
            self.ws();
            let (start, end, escaped) = self.string()?;
            let raw = &self.b[start..end];
            let hit = if escaped {
                // Decode only keys with an escape (rare) to compare them.
                std::str::from_utf8(&self.b[start - 1..end + 1])
                    .ok()
                    .and_then(|q| serde_json::from_str::<String>(q).ok())
                    .is_some_and(|k| k == key)
            } else {
                raw == key.as_bytes()
            };
            self.expect(b':', "':' after a key")?;
            self.ws();
            if hit {
                return Ok(true);
            }
            self.skip_value(1)?;
            if !self.next_member(b'}', OBJECT_MEMBER)? {
                return Ok(false);
            }
        }
    }

    /// At `[`: moves to element `n` (true) or past the array (false).
    fn find_index(&mut self, n: usize) -> Result<bool, RawError> {
        if self.open_is_empty(b']') {
            return Ok(false);
        }
        let mut k = 0;
        loop {
            self.ws();
            if k == n {
                return Ok(true);
            }
            self.skip_value(1)?;
            if !self.next_member(b']', ARRAY_MEMBER)? {
                return Ok(false);
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields_and_array_elements() {
        let j = r#" {"id":"fps", "device" : {"game":"g 1","os":"iOS"},"data":{"fps":16.70,"l":[1,{"x":[true]}]}} "#;
        assert_eq!(lookup_raw(j, "id"), Ok(Some(r#""fps""#)));
        assert_eq!(lookup_raw(j, "device.os"), Ok(Some(r#""iOS""#)));
        assert_eq!(lookup_raw(j, "data.fps"), Ok(Some("16.70")));
        assert_eq!(lookup_raw(j, "data.l.1.x.0"), Ok(Some("true")));
        assert_eq!(lookup_raw(j, "data.l.1"), Ok(Some(r#"{"x":[true]}"#)));
        assert_eq!(lookup_raw(j, ""), Ok(Some(j.trim())));
        assert_eq!(as_f64("16.70"), Some(16.7));
    }

    #[test]
    fn missing_fields_are_none() {
        let j = r#"{"a":{"b":1},"c":[1,2],"s":"x"}"#;
        for path in ["z", "a.z", "a.b.c", "c.2", "c.x", "s.0", "a.b.0"] {
            assert_eq!(lookup_raw(j, path), Ok(None), "{path}");
        }
        assert_eq!(lookup_raw("{}", "a"), Ok(None));
        assert_eq!(lookup_raw("[]", "0"), Ok(None));
    }

    #[test]
    fn escapes_and_unicode() {
        let j = r#"{"k\"ey":"v\\\"","caf\u00e9":"ok","日本":{"名":"é\n"},"s":"a\"b"}"#;
        assert_eq!(lookup_raw(j, "k\"ey"), Ok(Some(r#""v\\\"""#)));
        assert_eq!(lookup_raw(j, "café"), Ok(Some(r#""ok""#)));
        assert_eq!(lookup_raw(j, "日本.名"), Ok(Some(r#""é\n""#)));
        assert_eq!(
            lookup_raw(j, "日本.名")
                .unwrap()
                .and_then(as_str)
                .as_deref(),
            Some("é\n")
        );
        assert_eq!(
            lookup_raw(j, "s").unwrap().and_then(as_str).as_deref(),
            Some("a\"b")
        );
        assert_eq!(as_str(r#""plain""#), Some(Cow::Borrowed("plain")));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "   ",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\" 1}",
            "{\"a\":1,",
            "{\"a\":1 \"b\":2}",
            "{\"x\":\"unterminated",
            "{\"x\":\"ends in a backslash\\",
            "{\"x\":[1,2}",
            "{\"x\":tru}",
            "{\"x\":-}",
            "{\"x\":1.}",
            "{\"x\":1e}",
            "{\"x\":\"tab\tinside\"}",
            "{1:2}",
            "nul",
        ] {
            let r = lookup_raw(bad, "z");
            assert!(r.is_err(), "{bad:?} gave {r:?}");
            assert!(
                r.unwrap_err()
                    .to_string()
                    .starts_with("malformed JSON at byte")
            );
        }
        let deep = "[".repeat(1000);
        assert!(lookup_raw(&deep, "a").is_err());
        assert!(lookup_raw(&format!("{{\"a\":1,\"b\":{deep}"), "a").is_ok());
    }

    #[test]
    fn typed_reads_match_serde_json() {
        assert_eq!(as_i64("3"), Some(3));
        assert_eq!(as_i64("3.0"), None);
        assert_eq!(as_i64("1e2"), None);
        assert_eq!(as_i64("\"3\""), None);
        assert_eq!(as_f64("-1.5e2"), Some(-150.0));
        assert_eq!(as_f64("true"), None);
        assert_eq!(as_bool("false"), Some(false));
        assert_eq!(as_str("3"), None);
    }
}
