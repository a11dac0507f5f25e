//! A small JSON reader and writer for the benchmark report: enough for
//! criterion's `estimates.json` and `benchmark.json` and for the files the
//! report itself keeps (`memory.json`, `instructions.json`), without a crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A parsed JSON value. Objects keep their keys sorted, which is all the
/// report needs (it only ever looks keys up).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number, as `f64` (criterion's estimates are floats anyway).
    Number(f64),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object.
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parses a whole document; trailing non-whitespace is an error.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.at != parser.bytes.len() {
            return Err(parser.error("trailing characters"));
        }
        Ok(value)
    }

    /// The value at `path` of object keys, if every step exists.
    pub fn get(&self, path: &[&str]) -> Option<&Json> {
        path.iter().try_fold(self, |value, key| match value {
            Json::Object(map) => map.get(*key),
            _ => None,
        })
    }

    /// The number at `path`, if there is one.
    pub fn number(&self, path: &[&str]) -> Option<f64> {
        match self.get(path)? {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The string at `path`, if there is one (`null` gives `None`).
    pub fn string(&self, path: &[&str]) -> Option<&str> {
        match self.get(path)? {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Nesting deeper than this is rejected rather than risking the stack on a
/// corrupt file.
const MAX_DEPTH: usize = 64;

/// A recursive-descent parser over the document's bytes.
struct Parser<'a> {
    /// The whole document.
    bytes: &'a [u8],
    /// The next byte to read.
    at: usize,
}

impl Parser<'_> {
    /// An error message that says where parsing stopped.
    fn error(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.at)
    }

    /// Skips JSON whitespace.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Consumes `literal` if the input continues with it.
    fn eat(&mut self, literal: &str) -> bool {
        let found = self.bytes[self.at..].starts_with(literal.as_bytes());
        if found {
            self.at += literal.len();
        }
        found
    }

    /// Parses one value, `depth` levels inside arrays and objects.
    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_whitespace();
        match self.bytes.get(self.at) {
            None => Err(self.error("unexpected end")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) if self.eat("null") => Ok(Json::Null),
            Some(_) if self.eat("true") => Ok(Json::Bool(true)),
            Some(_) if self.eat("false") => Ok(Json::Bool(false)),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    /// Parses an object, the input being at its `{`.
    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.at += 1;
        let mut map = BTreeMap::new();
        self.skip_whitespace();
        if self.eat("}") {
            return Ok(Json::Object(map));
        }
        loop {
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if !self.eat(":") {
                return Err(self.error("expected `:`"));
            }
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            self.skip_whitespace();
            if self.eat("}") {
                return Ok(Json::Object(map));
            }
            if !self.eat(",") {
                return Err(self.error("expected `,` or `}`"));
            }
        }
    }

    /// Parses an array, the input being at its `[`.
    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            if !self.eat(",") {
                return Err(self.error("expected `,` or `]`"));
            }
        }
    }

    /// Parses a string, the input being at its opening quote.
    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters up to the next quote or escape
            // in one go; the input is a `&str`, so the run is valid UTF-8.
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.at += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.at])
                    .map_err(|_| self.error("invalid UTF-8"))?,
            );
            match self.bytes.get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.at += 1;
                    let escaped = self.bytes.get(self.at).copied();
                    self.at += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
            }
        }
    }

    /// Reads the four hex digits after `\u` (and a following low surrogate
    /// escape if they are a high surrogate) as one character.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) && self.eat("\\u") {
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("invalid surrogate pair"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    /// Four hex digits as a number.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("expected four hex digits"))?;
        self.at += 4;
        Ok(digits)
    }

    /// Parses a number with Rust's float parser, after taking the longest run
    /// of characters a JSON number can contain.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
        text.parse::<f64>()
            .map(Json::Number)
            .map_err(|_| self.error("invalid number"))
    }
}

/// Writes `text` as a JSON string literal, quotes included.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real criterion `benchmark.json` and the fields the report uses.
    #[test]
    fn parses_criterion_benchmark_json() {
        let json = Json::parse(
            r#"{"group_id":"switch","function_id":"sure/call-ret","value_str":null,
               "throughput":null,"full_id":"switch/sure/call-ret"}"#,
        )
        .unwrap();
        assert_eq!(json.string(&["group_id"]), Some("switch"));
        assert_eq!(json.string(&["function_id"]), Some("sure/call-ret"));
        assert_eq!(json.string(&["value_str"]), None);
        assert_eq!(json.get(&["throughput"]), Some(&Json::Null));
    }

    /// Nested objects, arrays, escapes and number forms.
    #[test]
    fn parses_every_kind_of_value() {
        let json = Json::parse(
            r#" {"mean": {"point_estimate": 6.4e0, "ci": [-1, 2.5E+1, 0.125]},
                 "s": "a\"b\\c\/d\n\u00e9\ud83d\ude00", "t": true, "f": false} "#,
        )
        .unwrap();
        assert_eq!(json.number(&["mean", "point_estimate"]), Some(6.4));
        assert_eq!(
            json.get(&["mean", "ci"]),
            Some(&Json::Array(vec![
                Json::Number(-1.0),
                Json::Number(25.0),
                Json::Number(0.125)
            ]))
        );
        assert_eq!(json.string(&["s"]), Some("a\"b\\c/d\né😀"));
        assert_eq!(json.get(&["t"]), Some(&Json::Bool(true)));
        assert_eq!(json.get(&["f"]), Some(&Json::Bool(false)));
        assert_eq!(json.number(&["missing", "x"]), None);
    }

    /// Broken documents are errors, not panics.
    #[test]
    fn rejects_invalid_documents() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "\"abc",
            "nul",
            "1 2",
            "\"\\x\"",
            "-",
            "\"\\u12\"",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "[".repeat(1000);
        assert!(Json::parse(&deep).is_err());
    }

    /// What `quote` writes parses back to the same string.
    #[test]
    fn quote_round_trips() {
        let text = "tab\there \"quoted\" back\\slash \u{1} é";
        assert_eq!(
            Json::parse(&quote(text)).unwrap(),
            Json::String(text.into())
        );
    }
}
