//! Parameter schemas and validated parameter values: how an implementation
//! (a planner, an environment, a world model, ...) declares the parameters
//! it accepts, with types, ranges, defaults and docs, next to its type.
//!
//! The agent-file loader, the command line and the docs all read the same
//! [`ParamSpec`]s, so a range is written once. [`Params::validate`] checks
//! given values against a schema and reports every issue; constructors then
//! read typed values ([`Params::usize`], [`Params::f32`], ...) that can no
//! longer be out of range.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, IntoDeserializer};
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
            ParamValue::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    write!(f, "{}{v}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("]")
            }
            ParamValue::Table(t) => {
                f.write_str("{")?;
                for (i, (k, v)) in t.iter().enumerate() {
                    write!(f, "{}{k} = {v}", if i == 0 { " " } else { ", " })?;
                }
                f.write_str(" }")
            }
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
    /// The name of another node of the agent, of module kind `kind` (for
    /// instance the `world_model` node a planner rolls out). The loader
    /// checks that the node exists and has that kind, and records the
    /// reference in the graph.
    Node {
        /// The module kind the named node must have (`world_model`, `cost`).
        kind: String,
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
    /// The name of a node of module kind `kind`.
    pub fn node(kind: &str) -> Self {
        ParamType::Node { kind: kind.into() }
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
                    Err((false, format!("must be a finite number in [{}, {}], got {}", number(*min), number(*max), number(x))))
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
                        // Lists are read as f32: 1e300 would become inf.
                        Some(x) if x.is_finite() && x.abs() <= f64::from(f32::MAX) => out.push(ParamValue::Float(x)),
                        Some(x) => return Err((false, format!("entry {k} must be a finite 32-bit number (at most 3.4e38 in size), got {}", number(x)))),
                        None => return Err((true, format!("entry {k} must be a number, got a {}", it.type_name()))),
                    }
                }
                if out.len() < *min_len || out.len() > *max_len {
                    return Err((false, format!("must have {min_len}..={max_len} entries, got {}", out.len())));
                }
                Ok(ParamValue::List(out))
            }
            (ParamType::Node { .. }, ParamValue::Str(s)) if !s.is_empty() => Ok(v.clone()),
            (ParamType::Structured { .. }, ParamValue::List(_) | ParamValue::Table(_)) => Ok(v.clone()),
            (t, v) => Err((true, format!("expected {t}, got a {}", v.type_name()))),
        }
    }
}

/// A number as a person writes it: `1000`, `0.05`, `1e300` (not 301
/// digits), `-inf`.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Int { min, max } => write!(f, "an integer in {min}..={max}"),
            ParamType::Float { min, max } => write!(f, "a number in [{}, {}]", number(*min), number(*max)),
            ParamType::Bool => f.write_str("a boolean"),
            ParamType::Str { choices } if choices.is_empty() => f.write_str("a string"),
            ParamType::Str { choices } => write!(f, "one of the strings {}", choices.join(", ")),
            ParamType::FloatList { min_len, max_len } => write!(f, "an array of {min_len}..={max_len} numbers"),
            ParamType::Node { kind } => write!(f, "the name of a {kind} node"),
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
#[non_exhaustive]
pub enum ParamIssue {
    /// The schema has no parameter of this name.
    Unknown(String),
    /// The value has the wrong type (name, message).
    WrongType(String, String),
    /// The value is out of range (name, message).
    OutOfRange(String, String),
    /// A required parameter is not set.
    Missing(String),
}

impl fmt::Display for ParamIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamIssue::Unknown(n) => write!(f, "unknown parameter `{n}`"),
            ParamIssue::WrongType(n, m) | ParamIssue::OutOfRange(n, m) => write!(f, "parameter `{n}`: {m}"),
            ParamIssue::Missing(n) => write!(f, "missing required parameter `{n}`"),
        }
    }
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
    pub fn validate(schema: &[ParamSpec], given: &[(String, ParamValue)]) -> std::result::Result<Params, Vec<ParamIssue>> {
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
            Some(ParamValue::List(_)) => Ok(self.f64_list_opt(name)?.map(|v| v.into_iter().map(|x| x as f32).collect())),
            Some(v) => Err(Self::wrong(name, "an array of numbers", v)),
            None => Ok(None),
        }
    }
    /// Optional array of numbers as `f64` (as written: error messages that
    /// quote them show `0.9`, not the `f32` rounding `0.8999999761581421`).
    pub fn f64_list_opt(&self, name: &str) -> Result<Option<Vec<f64>>> {
        match self.get(name) {
            Some(ParamValue::List(items)) => items.iter().map(|v| v.as_f64().ok_or_else(|| Self::wrong(name, "numbers", v))).collect::<Result<_>>().map(Some),
            Some(v) => Err(Self::wrong(name, "an array of numbers", v)),
            None => Ok(None),
        }
    }
    /// Deserializes a structured parameter with serde.
    pub fn deserialize<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => T::deserialize(ValueDeserializer(v)).map(Some).map_err(|e| CoreError::config(name, e.to_string())),
        }
    }
    /// The parameters as a map (for serialising, e.g. as JSON across the
    /// plugin boundary).
    pub fn values(&self) -> &BTreeMap<String, ParamValue> {
        &self.values
    }
    /// Iterates over the parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Reads a [`ParamValue`] as serde data (so structured parameters
/// deserialize into the implementation's own types).
struct ValueDeserializer<'a>(&'a ParamValue);

impl<'de> IntoDeserializer<'de, serde::de::value::Error> for ValueDeserializer<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> serde::Deserializer<'de> for ValueDeserializer<'_> {
    type Error = serde::de::value::Error;
    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, Self::Error> {
        use serde::de::value::{MapDeserializer, SeqDeserializer};
        match self.0 {
            ParamValue::Int(i) => visitor.visit_i64(*i),
            ParamValue::Float(x) => visitor.visit_f64(*x),
            ParamValue::Bool(b) => visitor.visit_bool(*b),
            ParamValue::Str(s) => visitor.visit_str(s),
            ParamValue::List(items) => visitor.visit_seq(SeqDeserializer::new(items.iter().map(ValueDeserializer))),
            ParamValue::Table(t) => visitor.visit_map(MapDeserializer::new(t.iter().map(|(k, v)| (k.as_str(), ValueDeserializer(v))))),
        }
    }
    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Settings that declare their own parameter schema: a struct of plain
/// fields whose [`Default`] gives the defaults, with one line per field
/// giving its range and doc (written with [`settings!`](crate::settings)).
///
/// The schema is then the only place a range is written: agent files are
/// checked against [`Settings::schema`], and code that builds the struct
/// directly is checked against the same ranges by [`Settings::check`].
pub trait Settings: Sized + Default {
    /// The parameters, their types and ranges, defaults and docs.
    fn schema() -> Vec<ParamSpec>;
    /// The settings from validated parameters.
    fn from_params(p: &Params) -> Result<Self>;
    /// The settings as parameters (unset options left out).
    fn to_params(&self) -> Vec<(String, ParamValue)>;
    /// Checks every field against the schema's ranges; errors name
    /// `{prefix}.{field}`.
    fn check(&self, prefix: &str) -> Result<()> {
        match Params::validate(&Self::schema(), &self.to_params()) {
            Ok(_) => Ok(()),
            Err(issues) => {
                let first = &issues[0];
                let (field, msg) = match first {
                    ParamIssue::Unknown(n) | ParamIssue::Missing(n) => (n.clone(), first.to_string()),
                    ParamIssue::WrongType(n, m) | ParamIssue::OutOfRange(n, m) => (n.clone(), m.clone()),
                };
                Err(CoreError::config(format!("{prefix}.{field}"), msg))
            }
        }
    }
    /// Parameters given as `(name, value)` pairs over the defaults,
    /// validated against the schema (for code and tests).
    fn with(values: &[(&str, ParamValue)]) -> Result<Self> {
        let given: Vec<(String, ParamValue)> = values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let p = Params::validate(&Self::schema(), &given)
            .map_err(|issues| CoreError::config("settings", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")))?;
        Self::from_params(&p)
    }
}

/// A field type a [`Settings`] struct may have.
pub trait ParamField: Sized {
    /// The parameter type for a field with the given inclusive range.
    fn param_type(range: Option<(f64, f64)>) -> ParamType;
    /// The field's value (`None` for an unset option).
    fn to_value(&self) -> Option<ParamValue>;
    /// Reads the field from validated parameters.
    fn read(p: &Params, name: &str) -> Result<Self>;
}

impl ParamField for usize {
    fn param_type(range: Option<(f64, f64)>) -> ParamType {
        let (lo, hi) = range.unwrap_or((0.0, i64::MAX as f64));
        ParamType::int(lo as i64, hi as i64)
    }
    fn to_value(&self) -> Option<ParamValue> {
        Some(ParamValue::Int(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
    fn read(p: &Params, name: &str) -> Result<Self> {
        p.usize(name)
    }
}

impl ParamField for f64 {
    fn param_type(range: Option<(f64, f64)>) -> ParamType {
        let (lo, hi) = range.unwrap_or((f64::MIN, f64::MAX));
        ParamType::float(lo, hi)
    }
    fn to_value(&self) -> Option<ParamValue> {
        Some(ParamValue::Float(*self))
    }
    fn read(p: &Params, name: &str) -> Result<Self> {
        p.f64(name)
    }
}

impl ParamField for f32 {
    fn param_type(range: Option<(f64, f64)>) -> ParamType {
        f64::param_type(range)
    }
    /// The shortest decimal that reads back as this `f32` (`0.05`, not
    /// `0.05000000074505806`), so defaults print and range-check as written.
    fn to_value(&self) -> Option<ParamValue> {
        let decimal: f64 = self.to_string().parse().unwrap_or(f64::from(*self));
        Some(ParamValue::Float(if decimal as f32 == *self { decimal } else { f64::from(*self) }))
    }
    fn read(p: &Params, name: &str) -> Result<Self> {
        p.f32(name)
    }
}

impl ParamField for bool {
    fn param_type(_: Option<(f64, f64)>) -> ParamType {
        ParamType::Bool
    }
    fn to_value(&self) -> Option<ParamValue> {
        Some(ParamValue::Bool(*self))
    }
    fn read(p: &Params, name: &str) -> Result<Self> {
        p.bool(name)
    }
}

impl<T: ParamField> ParamField for Option<T> {
    fn param_type(range: Option<(f64, f64)>) -> ParamType {
        T::param_type(range)
    }
    fn to_value(&self) -> Option<ParamValue> {
        self.as_ref().and_then(T::to_value)
    }
    fn read(p: &Params, name: &str) -> Result<Self> {
        p.get(name).map(|_| T::read(p, name)).transpose()
    }
}

/// The [`ParamSpec`] of a settings field whose default value is `default`
/// (used by [`settings!`](crate::settings)).
pub fn field_spec<T: ParamField>(default: &T, name: &str, range: Option<(f64, f64)>, doc: &str) -> ParamSpec {
    let spec = ParamSpec::new(name, T::param_type(range), doc);
    match default.to_value() {
        Some(v) => spec.default(v),
        None => spec,
    }
}

/// Implements [`Settings`] for a struct: one line per field, in the form
/// `field [min, max]: "doc"` (the range is inclusive; leave it out for
/// booleans). The struct's [`Default`] gives the defaults; every field must
/// be listed (the generated constructor names them all).
///
/// ```
/// use ami_core::params::{Settings, ParamValue};
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Search { depth: usize, temperature: f32, greedy: bool, deadline_ms: Option<f64> }
/// impl Default for Search {
///     fn default() -> Self { Self { depth: 4, temperature: 1.0, greedy: false, deadline_ms: None } }
/// }
/// ami_core::settings!(Search {
///     depth [1, 64]: "how deep to search",
///     temperature [1e-6, 1e6]: "softmax temperature",
///     greedy: "take the best child only",
///     deadline_ms [1e-3, 1e9]: "wall-clock limit per call (ms)",
/// });
///
/// let s = Search::with(&[("depth", ParamValue::Int(8))]).unwrap();
/// assert_eq!(s, Search { depth: 8, ..Search::default() });
/// let err = Search { depth: 0, ..Search::default() }.check("search").unwrap_err();
/// assert!(err.to_string().contains("search.depth: must be in 1..=64, got 0"), "{err}");
/// assert_eq!(Search::schema().len(), 4);
/// ```
#[macro_export]
macro_rules! settings {
    ($ty:ident { $($field:ident $([$lo:expr, $hi:expr])? : $doc:literal),* $(,)? }) => {
        impl $crate::params::Settings for $ty {
            fn schema() -> ::std::vec::Vec<$crate::params::ParamSpec> {
                let d = <$ty as ::std::default::Default>::default();
                ::std::vec![$( $crate::params::field_spec(&d.$field, stringify!($field), $crate::settings!(@range $($lo, $hi)?), $doc) ),*]
            }
            fn from_params(p: &$crate::params::Params) -> $crate::Result<Self> {
                Ok(Self { $( $field: $crate::params::ParamField::read(p, stringify!($field))? ),* })
            }
            fn to_params(&self) -> ::std::vec::Vec<(::std::string::String, $crate::params::ParamValue)> {
                let mut v = ::std::vec::Vec::new();
                $( if let Some(x) = $crate::params::ParamField::to_value(&self.$field) { v.push((stringify!($field).to_string(), x)); } )*
                v
            }
        }
    };
    (@range $lo:expr, $hi:expr) => { Some(($lo as f64, $hi as f64)) };
    (@range) => { None };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_people_write_them() {
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(1e12), "1e12");
        assert_eq!(number(-1e-7), "-1e-7");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(ParamType::float(0.0, 1e12).to_string(), "a number in [0, 1e12]");
        // A range error quotes the bounds the same way, not in 301 digits.
        let spec = ParamSpec::new("w", ParamType::float(-1e300, 1e300), "a weight");
        let issues = Params::validate(std::slice::from_ref(&spec), &[("w".into(), ParamValue::Float(f64::INFINITY))]).unwrap_err();
        let err = issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ");
        assert!(err.contains("[-1e300, 1e300], got inf"), "{err}");
        // A list entry that would overflow the f32 it is read as.
        let spec = ParamSpec::new("goal", ParamType::FloatList { min_len: 1, max_len: 4 }, "a goal");
        let list = ParamValue::List(vec![ParamValue::Float(0.5), ParamValue::Float(1e300)]);
        let issues = Params::validate(std::slice::from_ref(&spec), &[("goal".into(), list)]).unwrap_err();
        let err = issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ");
        assert!(err.contains("entry 1 must be a finite 32-bit number (at most 3.4e38 in size), got 1e300"), "{err}");
    }
}
