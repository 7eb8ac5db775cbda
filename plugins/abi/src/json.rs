//! A small JSON reader for module configuration (the ABI crate has no
//! dependencies, so it carries its own; plugins may use serde_json instead
//! through [`Config::text`]).

use std::fmt::Write as _;

use crate::types::Error;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in document order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text.
    pub fn parse(text: &str) -> Result<Json, Error> {
        let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters after the JSON value"));
        }
        Ok(v)
    }
    /// The JSON type in words.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
    /// Writes the value as compact JSON text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) if n.is_finite() => {
                let _ = write!(out, "{n}");
            }
            Json::Number(_) => out.push_str("null"),
            Json::String(s) => write_string(out, s),
            Json::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> Error {
        Error::new(format!("invalid JSON at byte {}: {msg}", self.i))
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &str) -> Result<(), Error> {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.err(&format!("expected `{lit}`")))
        }
    }
    fn value(&mut self) -> Result<Json, Error> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(self.err("nested too deeply"));
        }
        let v = match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.eat("null").map(|_| Json::Null),
            Some(b't') => self.eat("true").map(|_| Json::Bool(true)),
            Some(b'f') => self.eat("false").map(|_| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        a.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `]`")),
                        }
                    }
                }
                Ok(Json::Array(a))
            }
            Some(b'{') => {
                self.i += 1;
                let mut o = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err(self.err("expected a string key"));
                        }
                        let k = self.string()?;
                        self.ws();
                        self.eat(":")?;
                        self.ws();
                        let v = self.value()?;
                        o.push((k, v));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `}`")),
                        }
                    }
                }
                Ok(Json::Object(o))
            }
            Some(_) => self.number(),
        };
        self.depth -= 1;
        v
    }
    fn number(&mut self) -> Result<Json, Error> {
        let start = self.i;
        while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("bad number"))?;
        if text.is_empty() {
            return Err(self.err("unexpected character"));
        }
        text.parse::<f64>().map(Json::Number).map_err(|_| self.err(&format!("bad number `{text}`")))
    }
    fn string(&mut self) -> Result<String, Error> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("string is not UTF-8"))?);
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or_else(|| self.err("unterminated escape"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("short \\u escape"))?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16).map_err(|_| self.err("bad \\u escape"))?;
                            self.i += 4;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
            }
        }
    }
}

/// A module's configuration: a JSON object (`{}` when the user gave none),
/// with typed getters that name the key in their errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    text: String,
    entries: Vec<(String, Json)>,
}

impl Config {
    /// Parses configuration text; empty text means `{}`.
    pub fn parse(text: &str) -> Result<Config, Error> {
        if text.trim().is_empty() {
            return Ok(Config { text: "{}".into(), entries: Vec::new() });
        }
        match Json::parse(text)? {
            Json::Object(entries) => Ok(Config { text: text.to_string(), entries }),
            other => Err(Error::new(format!("configuration must be a JSON object, found {}", other.type_name()))),
        }
    }
    /// The original JSON text (to parse with serde_json, say).
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn wrong(key: &str, want: &str, v: &Json) -> Error {
        Error::new(format!("parameter `{key}`: expected {want}, found {}", v.type_name()))
    }
    /// A number, or `default` when absent.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, Error> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Number(n)) => Ok(*n),
            Some(v) => Err(Self::wrong(key, "a number", v)),
        }
    }
    /// A number as `f32`, or `default` when absent.
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32, Error> {
        self.f64_or(key, f64::from(default)).map(|v| v as f32)
    }
    /// A non-negative integer, or `default` when absent.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, Error> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= usize::MAX as f64 => Ok(*n as usize),
            Some(Json::Number(n)) => Err(Error::new(format!("parameter `{key}`: expected a non-negative integer, found {n}"))),
            Some(v) => Err(Self::wrong(key, "an integer", v)),
        }
    }
    /// A boolean, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(v) => Err(Self::wrong(key, "a boolean", v)),
        }
    }
    /// A string, or `default` when absent.
    pub fn str_or(&self, key: &str, default: &str) -> Result<String, Error> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(default.to_string()),
            Some(Json::String(s)) => Ok(s.clone()),
            Some(v) => Err(Self::wrong(key, "a string", v)),
        }
    }
    /// An array of numbers, or `None` when absent.
    pub fn f32s(&self, key: &str) -> Result<Option<Vec<f32>>, Error> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Json::Number(n) => Ok(*n as f32),
                    v => Err(Self::wrong(key, "an array of numbers", v)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(Self::wrong(key, "an array of numbers", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        let c = Config::parse(r#" {"dt": 0.2, "n": 3, "on": true, "s": "a\"b\u0041", "v": [1, -2.5e1], "x": null} "#).unwrap();
        assert_eq!(c.f64_or("dt", 0.0).unwrap(), 0.2);
        assert_eq!(c.usize_or("n", 0).unwrap(), 3);
        assert!(c.bool_or("on", false).unwrap());
        assert_eq!(c.str_or("s", "").unwrap(), "a\"bA");
        assert_eq!(c.f32s("v").unwrap(), Some(vec![1.0, -25.0]));
        assert_eq!(c.f64_or("x", 4.0).unwrap(), 4.0);
        assert_eq!(c.f64_or("missing", 5.0).unwrap(), 5.0);
        assert!(c.usize_or("dt", 0).unwrap_err().0.contains("parameter `dt`"));
        assert!(c.bool_or("dt", false).unwrap_err().0.contains("expected a boolean, found number"));
        assert!(Config::parse("[1]").unwrap_err().0.contains("must be a JSON object"));
        assert!(Config::parse("{\"a\": }").is_err());
        assert!(Config::parse("{} x").is_err());
        assert_eq!(Config::parse("").unwrap().keys().count(), 0);
        let j = Json::parse(r#"{"a":[1,"x\n",null,true]}"#).unwrap();
        assert_eq!(Json::parse(&j.to_text()).unwrap(), j);
    }
}
