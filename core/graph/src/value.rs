use ndarray::{Array1, ArrayView1};
use serde::{Deserialize, Serialize};

use ami_core::error::{CoreError, Result};
use ami_core::modules::Modulation;

/// The type of a port. An edge may only connect ports of the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PortType {
    /// A raw observation vector.
    Observation,
    /// A state (estimated or predicted) vector.
    State,
    /// An action vector.
    Action,
    /// An energy / cost scalar.
    Cost,
    /// A reward scalar from the environment.
    Reward,
    /// An end-of-episode flag.
    Done,
    /// A subgoal vector (from a higher planning level): the state's width,
    /// NaN where a coordinate is left free.
    Subgoal,
    /// A lower level's report on the subgoal it pursues, for the level
    /// above (bottom-up feedback): `[achieved cost, ticks spent, the
    /// subgoal as held...]`.
    Progress,
    /// Configurator modulation messages.
    Modulation,
    /// Any other scalar (timings, statistics).
    Scalar,
    /// A reference to a shared world model (or critic, policy): the value
    /// is the version number of its handle. An edge from a model node to a
    /// planner records that the planner uses the model, orders the planner
    /// after whoever publishes new versions, and shows in `ami graph`.
    Model,
    /// A reference to a shared short-term memory (its length as a scalar),
    /// for nodes that read the memory (trainers).
    Memory,
}

impl PortType {
    /// The value kind that flows through ports of this type.
    pub fn value_kind(self) -> &'static str {
        match self {
            PortType::Observation | PortType::State | PortType::Action | PortType::Subgoal | PortType::Progress => "vector",
            PortType::Cost | PortType::Reward | PortType::Scalar | PortType::Model | PortType::Memory => "scalar",
            PortType::Done => "flag",
            PortType::Modulation => "modulations",
        }
    }
}

impl std::fmt::Display for PortType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            PortType::Observation => "observation",
            PortType::State => "state",
            PortType::Action => "action",
            PortType::Cost => "cost",
            PortType::Reward => "reward",
            PortType::Done => "done",
            PortType::Subgoal => "subgoal",
            PortType::Progress => "progress",
            PortType::Modulation => "modulation",
            PortType::Scalar => "scalar",
            PortType::Model => "model",
            PortType::Memory => "memory",
        };
        f.write_str(s)
    }
}

/// A value on a port for one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Nothing yet (before the first write, or a delayed edge on tick 0).
    #[default]
    Empty,
    /// A vector (observation, state, action, subgoal).
    Vector(Array1<f32>),
    /// A scalar (cost, reward, statistics).
    Scalar(f64),
    /// A flag (done).
    Flag(bool),
    /// Modulation messages (empty when the configurator has nothing to say).
    Modulations(Vec<Modulation>),
}

impl Value {
    /// The vector, if this is one.
    pub fn as_vector(&self) -> Option<ArrayView1<'_, f32>> {
        match self {
            Value::Vector(v) => Some(v.view()),
            _ => None,
        }
    }
    /// The scalar, if this is one.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            Value::Scalar(v) => Some(*v),
            _ => None,
        }
    }
    /// The flag, if this is one.
    pub fn as_flag(&self) -> Option<bool> {
        match self {
            Value::Flag(v) => Some(*v),
            _ => None,
        }
    }
    /// The modulations, if these are.
    pub fn as_modulations(&self) -> Option<&[Modulation]> {
        match self {
            Value::Modulations(v) => Some(v),
            _ => None,
        }
    }
    /// Copies `other` into `self`, reusing `self`'s buffers where possible
    /// (no allocation when a vector keeps its length).
    pub fn copy_from(&mut self, other: &Value) {
        match (self as &mut Value, other) {
            (Value::Vector(dst), Value::Vector(src)) if dst.len() == src.len() => dst.assign(src),
            (Value::Modulations(dst), Value::Modulations(src)) => dst.clone_from(src),
            (dst, src) => *dst = src.clone(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Value::Empty => "nothing",
            Value::Vector(_) => "vector",
            Value::Scalar(_) => "scalar",
            Value::Flag(_) => "flag",
            Value::Modulations(_) => "modulations",
        }
    }
}

/// Where a node input reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// Not connected.
    None,
    /// Output `port` of node `node`, this tick.
    Current { node: usize, port: usize },
    /// Output `port` of node `node`, previous tick (delayed edge).
    Delayed { node: usize, port: usize },
}

/// The inputs of a node for one tick, by input index.
pub struct Inputs<'a> {
    pub(crate) node: &'a str,
    pub(crate) names: &'a [String],
    pub(crate) bindings: &'a [Binding],
    pub(crate) current: &'a [Vec<Value>],
    pub(crate) previous: &'a [Vec<Value>],
}

impl<'a> Inputs<'a> {
    /// Number of input ports.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }
    /// Whether the node has no input ports.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
    /// The value on input `i`; `Value::Empty` when unconnected or not yet
    /// produced.
    pub fn get(&self, i: usize) -> &'a Value {
        static EMPTY: Value = Value::Empty;
        match self.bindings.get(i) {
            Some(Binding::Current { node, port }) => &self.current[*node][*port],
            Some(Binding::Delayed { node, port }) => &self.previous[*node][*port],
            _ => &EMPTY,
        }
    }
    /// Whether input `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        !matches!(self.bindings.get(i), None | Some(Binding::None))
    }
    fn wrong(&self, i: usize, want: &str, v: &Value) -> CoreError {
        let port = self.names.get(i).map_or("?", |s| s.as_str());
        CoreError::module(self.node, format!("input `{}.{port}`: expected a {want}, got {}", self.node, v.kind()))
    }
    /// Vector on input `i`, or an error naming the port if absent.
    pub fn vector(&self, i: usize) -> Result<ArrayView1<'a, f32>> {
        let v = self.get(i);
        v.as_vector().ok_or_else(|| self.wrong(i, "vector", v))
    }
    /// Vector on input `i`, `None` if nothing is there yet.
    pub fn vector_opt(&self, i: usize) -> Result<Option<ArrayView1<'a, f32>>> {
        match self.get(i) {
            Value::Empty => Ok(None),
            v => v.as_vector().map(Some).ok_or_else(|| self.wrong(i, "vector", v)),
        }
    }
    /// Scalar on input `i`, `None` if nothing is there yet.
    pub fn scalar_opt(&self, i: usize) -> Result<Option<f64>> {
        match self.get(i) {
            Value::Empty => Ok(None),
            v => v.as_scalar().map(Some).ok_or_else(|| self.wrong(i, "scalar", v)),
        }
    }
    /// Flag on input `i`, `None` if nothing is there yet.
    pub fn flag_opt(&self, i: usize) -> Result<Option<bool>> {
        match self.get(i) {
            Value::Empty => Ok(None),
            v => v.as_flag().map(Some).ok_or_else(|| self.wrong(i, "flag", v)),
        }
    }
    /// Modulations on input `i` (empty if none).
    pub fn modulations(&self, i: usize) -> Result<&'a [Modulation]> {
        match self.get(i) {
            Value::Empty => Ok(&[]),
            v => v.as_modulations().ok_or_else(|| self.wrong(i, "modulations", v)),
        }
    }
}

/// The outputs a node writes for one tick, by output index.
pub struct Outputs<'a> {
    pub(crate) values: &'a mut [Value],
}

impl Outputs<'_> {
    /// Number of output ports.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether the node has no output ports.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Writes a vector into output `i`, reusing its buffer.
    pub fn set_vector(&mut self, i: usize, v: ArrayView1<'_, f32>) {
        match &mut self.values[i] {
            Value::Vector(dst) if dst.len() == v.len() => dst.assign(&v),
            slot => *slot = Value::Vector(v.to_owned()),
        }
    }
    /// Moves an owned vector into output `i`.
    pub fn put_vector(&mut self, i: usize, v: Array1<f32>) {
        self.values[i] = Value::Vector(v);
    }
    /// Writes a scalar.
    pub fn set_scalar(&mut self, i: usize, v: f64) {
        self.values[i] = Value::Scalar(v);
    }
    /// Writes a flag.
    pub fn set_flag(&mut self, i: usize, v: bool) {
        self.values[i] = Value::Flag(v);
    }
    /// Writes modulations (reusing the buffer).
    pub fn set_modulations(&mut self, i: usize, m: Vec<Modulation>) {
        self.values[i] = Value::Modulations(m);
    }
    /// Direct access to output `i`.
    pub fn get_mut(&mut self, i: usize) -> &mut Value {
        &mut self.values[i]
    }
}
