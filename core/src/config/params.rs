//! Parameter schemas and validated parameter values.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CoreError, Result};

/// A parameter value from an agent file (TOML without dates).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// An array.
    List(Vec<ParamValue>),
    /// A table.
    Table(BTreeMap<String, ParamValue>),
}

impl ParamValue {
    /// The TOML name of the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Int(_) => "integer",
            ParamValue::Float(_) => "float",
            ParamValue::Bool(_) => "boolean",
            ParamValue::Str(_) => "string",
            ParamValue::List(_) => "array",
            ParamValue::Table(_) => "table",
        }
    }
    /// The value as a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => write!(f, "{s:?}"),
            ParamValue::List(_) | ParamValue::Table(_) => f.write_str(&serde_json::to_string(self).unwrap_or_default()),
        }
    }
}

/// The type (and range) a parameter accepts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParamType {
    /// An integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A finite number in `min..=max` (integers accepted).
    Float {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// A string, one of `choices` unless empty.
    Str {
        /// Accepted values (empty: any).
        choices: Vec<String>,
    },
    /// An array of finite numbers with `min_len..=max_len` entries.
    FloatList {
        /// Fewest entries.
        min_len: usize,
        /// Most entries.
        max_len: usize,
    },
    /// Structured data (tables, arrays) that the implementation checks when
    /// it is built; `what` describes the expected shape.
    Structured {
        /// The expected shape, in words.
        what: String,
    },
}

impl ParamType {
    /// An integer in `min..=max`.
    pub fn int(min: i64, max: i64) -> Self {
        ParamType::Int { min, max }
    }
    /// A float in `min..=max`.
    pub fn float(min: f64, max: f64) -> Self {
        ParamType::Float { min, max }
    }
    /// Any string.
    pub fn string() -> Self {
        ParamType::Str { choices: Vec::new() }
    }

    /// Checks `v`; returns the value to use (integers become floats where a
    /// float is expected) or the problem kind and a message.
    fn check(&self, v: &ParamValue) -> std::result::Result<ParamValue, (bool, String)> {
        // (true, msg): wrong type; (false, msg): out of range.
        match (self, v) {
            (ParamType::Int { min, max }, ParamValue::Int(i)) => {
                if i < min || i > max {
                    Err((false, format!("must be in {min}..={max}, got {i}")))
                } else {
                    Ok(v.clone())
                }
            }
            (ParamType::Float { min, max }, ParamValue::Int(_) | ParamValue::Float(_)) => {
                let x = v.as_f64().unwrap_or(f64::NAN);
                if !x.is_finite() || x < *min || x > *max {
                    Err((false, format!("must be a finite number in [{min}, {max}], got {x}")))
                } else {
                    Ok(ParamValue::Float(x))
                }
            }
            (ParamType::Bool, ParamValue::Bool(_)) => Ok(v.clone()),
            (ParamType::Str { choices }, ParamValue::Str(s)) => {
                if choices.is_empty() || choices.iter().any(|c| c == s) {
                    Ok(v.clone())
                } else {
                    Err((false, format!("must be one of {}, got {s:?}", choices.join(", "))))
                }
            }
            (ParamType::FloatList { min_len, max_len }, ParamValue::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (k, it) in items.iter().enumerate() {
                    match it.as_f64() {
                        Some(x) if x.is_finite() => out.push(ParamValue::Float(x)),
                        Some(x) => return Err((false, format!("entry {k} must be finite, got {x}"))),
                        None => return Err((true, format!("entry {k} must be a number, got a {}", it.type_name()))),
                    }
                }
                if out.len() < *min_len || out.len() > *max_len {
                    return Err((false, format!("must have {min_len}..={max_len} entries, got {}", out.len())));
                }
                Ok(ParamValue::List(out))
            }
            (ParamType::Structured { .. }, ParamValue::List(_) | ParamValue::Table(_)) => Ok(v.clone()),
            (t, v) => Err((true, format!("expected {t}, got a {}", v.type_name()))),
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Int { min, max } => write!(f, "an integer in {min}..={max}"),
            ParamType::Float { min, max } => write!(f, "a number in [{min}, {max}]"),
            ParamType::Bool => f.write_str("a boolean"),
            ParamType::Str { choices } if choices.is_empty() => f.write_str("a string"),
            ParamType::Str { choices } => write!(f, "one of the strings {}", choices.join(", ")),
            ParamType::FloatList { min_len, max_len } => write!(f, "an array of {min_len}..={max_len} numbers"),
            ParamType::Structured { what } => f.write_str(what),
        }
    }
}

/// One parameter an implementation accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Parameter name.
    pub name: String,
    /// Accepted type and range.
    pub ty: ParamType,
    /// Value used when the file does not set it (`None`: the parameter is
    /// optional without a default, unless `required`).
    pub default: Option<ParamValue>,
    /// Whether the file must set it.
    pub required: bool,
    /// One line of documentation.
    pub doc: String,
}

impl ParamSpec {
    /// An optional parameter without default.
    pub fn new(name: &str, ty: ParamType, doc: &str) -> Self {
        Self { name: name.into(), ty, default: None, required: false, doc: doc.into() }
    }
    /// Sets the default.
    pub fn default(mut self, v: ParamValue) -> Self {
        self.default = Some(v);
        self
    }
    /// Makes the parameter required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// Why a parameter was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParamIssue {
    Unknown(String),
    WrongType(String, String),
    OutOfRange(String, String),
    Missing(String),
}

/// Validated parameters of one node: every value checked against the
/// implementation's schema, defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

impl Params {
    /// Checks `given` against `schema`, returning the parameters or every
    /// issue found.
    pub(crate) fn validate(schema: &[ParamSpec], given: &[(String, ParamValue)]) -> std::result::Result<Params, Vec<ParamIssue>> {
        let mut issues = Vec::new();
        let mut values = BTreeMap::new();
        for (name, v) in given {
            match schema.iter().find(|s| &s.name == name) {
                None => issues.push(ParamIssue::Unknown(name.clone())),
                Some(spec) => match spec.ty.check(v) {
                    Ok(v) => {
                        values.insert(name.clone(), v);
                    }
                    Err((true, m)) => issues.push(ParamIssue::WrongType(name.clone(), m)),
                    Err((false, m)) => issues.push(ParamIssue::OutOfRange(name.clone(), m)),
                },
            }
        }
        for spec in schema {
            if values.contains_key(&spec.name) || given.iter().any(|(n, _)| n == &spec.name) {
                continue;
            }
            if spec.required {
                issues.push(ParamIssue::Missing(spec.name.clone()));
            } else if let Some(d) = &spec.default {
                values.insert(spec.name.clone(), d.clone());
            }
        }
        if issues.is_empty() {
            Ok(Params { values })
        } else {
            Err(issues)
        }
    }

    /// Parameters from already-checked values (tests, code).
    pub fn from_values(values: impl IntoIterator<Item = (String, ParamValue)>) -> Self {
        Self { values: values.into_iter().collect() }
    }

    /// The value of `name`, if set (or defaulted).
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }
    fn missing(name: &str) -> CoreError {
        CoreError::config(name, "missing")
    }
    fn wrong(name: &str, want: &str, v: &ParamValue) -> CoreError {
        CoreError::config(name, format!("expected {want}, got a {}", v.type_name()))
    }
    /// Integer parameter as `usize`.
    pub fn usize(&self, name: &str) -> Result<usize> {
        match self.get(name) {
            Some(ParamValue::Int(i)) => usize::try_from(*i).map_err(|_| CoreError::config(name, format!("must be >= 0, got {i}"))),
            Some(v) => Err(Self::wrong(name, "an integer", v)),
            None => Err(Self::missing(name)),
        }
    }
    /// Optional integer parameter as `usize`.
    pub fn usize_opt(&self, name: &str) -> Result<Option<usize>> {
        self.get(name).map(|_| self.usize(name)).transpose()
    }
    /// Number parameter as `f64`.
    pub fn f64(&self, name: &str) -> Result<f64> {
        match self.get(name) {
            Some(v) => v.as_f64().ok_or_else(|| Self::wrong(name, "a number", v)),
            None => Err(Self::missing(name)),
        }
    }
    /// Optional number parameter.
    pub fn f64_opt(&self, name: &str) -> Result<Option<f64>> {
        self.get(name).map(|_| self.f64(name)).transpose()
    }
    /// Number parameter as `f32`.
    pub fn f32(&self, name: &str) -> Result<f32> {
        self.f64(name).map(|x| x as f32)
    }
    /// Boolean parameter.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            Some(ParamValue::Bool(b)) => Ok(*b),
            Some(v) => Err(Self::wrong(name, "a boolean", v)),
            None => Err(Self::missing(name)),
        }
    }
    /// Optional string parameter.
    pub fn str_opt(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name) {
            Some(ParamValue::Str(s)) => Ok(Some(s)),
            Some(v) => Err(Self::wrong(name, "a string", v)),
            None => Ok(None),
        }
    }
    /// Optional array of numbers as `f32`.
    pub fn f32_list_opt(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.get(name) {
            Some(ParamValue::List(items)) => {
                items.iter().map(|v| v.as_f64().map(|x| x as f32).ok_or_else(|| Self::wrong(name, "numbers", v))).collect::<Result<_>>().map(Some)
            }
            Some(v) => Err(Self::wrong(name, "an array of numbers", v)),
            None => Ok(None),
        }
    }
    /// Deserializes a structured parameter with serde (through JSON).
    pub fn deserialize<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let json = serde_json::to_value(v).map_err(|e| CoreError::config(name, e.to_string()))?;
                serde_json::from_value(json).map(Some).map_err(|e| CoreError::config(name, e.to_string()))
            }
        }
    }
    /// All parameters as one JSON object (how configuration crosses the
    /// plugin boundary).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.values).unwrap_or_else(|_| "{}".into())
    }
    /// Iterates over the parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}
