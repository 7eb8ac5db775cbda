//! Limits of a planning call: where actions may go ([`ActionSpace`]: a
//! [`Bounds`] box or a finite set of [`Choices`]) and how much work a call
//! may do ([`Budget`]). All are plain data, shared by the planners, the
//! configurator's modulations and the environments.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Box bounds on each action dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Lower bound per dimension.
    pub low: Vec<f32>,
    /// Upper bound per dimension.
    pub high: Vec<f32>,
}

impl Bounds {
    /// Bounds from per-dimension vectors; `low <= high` everywhere.
    pub fn new(low: Vec<f32>, high: Vec<f32>) -> Result<Self> {
        if low.len() != high.len() {
            return Err(CoreError::config("bounds", format!("low has {} dimensions, high has {}", low.len(), high.len())));
        }
        if let Some(i) = (0..low.len()).find(|&i| low[i] > high[i] || !low[i].is_finite() || !high[i].is_finite()) {
            return Err(CoreError::config(format!("bounds[{i}]"), format!("need finite low <= high, got [{}, {}]", low[i], high[i])));
        }
        Ok(Self { low, high })
    }
    /// `[-limit, limit]` on each of `dim` dimensions.
    pub fn symmetric(dim: usize, limit: f32) -> Self {
        Self { low: vec![-limit; dim], high: vec![limit; dim] }
    }
    /// Number of action dimensions.
    pub fn dim(&self) -> usize {
        self.low.len()
    }
    /// Clamps `x` (one action) in place.
    pub fn clamp(&self, x: &mut [f32]) {
        for ((v, &lo), &hi) in x.iter_mut().zip(&self.low).zip(&self.high) {
            *v = v.clamp(lo, hi);
        }
    }
}

/// A finite set of actions: `len()` rows of `dim()` values each, as the
/// world model and the environment take them (a Gymnasium `Discrete(2)`
/// is `[[0], [1]]`, or `[[-10], [10]]` when the model takes CartPole's
/// forces). Discrete planners search over the row indices and emit rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<f32>>", into = "Vec<Vec<f32>>")]
pub struct Choices {
    rows: Vec<Vec<f32>>,
    envelope: Bounds,
}

impl Choices {
    /// Choices from rows: at least one, all of the same width (at least 1),
    /// finite.
    pub fn new(rows: Vec<Vec<f32>>) -> Result<Self> {
        let Some(first) = rows.first() else {
            return Err(CoreError::config("choices", "need at least one action"));
        };
        let dim = first.len();
        if dim == 0 {
            return Err(CoreError::config("choices[0]", "an action needs at least one entry"));
        }
        for (i, r) in rows.iter().enumerate() {
            if r.len() != dim {
                return Err(CoreError::config(format!("choices[{i}]"), format!("has {} entries, choices[0] has {dim}", r.len())));
            }
            if let Some(j) = r.iter().position(|v| !v.is_finite()) {
                return Err(CoreError::config(format!("choices[{i}][{j}]"), format!("must be finite, got {}", r[j])));
            }
        }
        let low = (0..dim).map(|j| rows.iter().map(|r| r[j]).fold(f32::INFINITY, f32::min)).collect();
        let high = (0..dim).map(|j| rows.iter().map(|r| r[j]).fold(f32::NEG_INFINITY, f32::max)).collect();
        Ok(Self { rows, envelope: Bounds { low, high } })
    }
    /// `[[0], [1], ..., [n - 1]]`: Gymnasium's `Discrete(n)` as indices.
    pub fn indices(n: usize) -> Result<Self> {
        Self::new((0..n).map(|k| vec![k as f32]).collect())
    }
    /// Number of actions.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// Always `false`: a set of choices has at least one action.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Width of an action.
    pub fn dim(&self) -> usize {
        self.envelope.dim()
    }
    /// Action `k`.
    pub fn row(&self, k: usize) -> &[f32] {
        &self.rows[k]
    }
    /// All actions.
    pub fn rows(&self) -> &[Vec<f32>] {
        &self.rows
    }
    /// The smallest box holding every action.
    pub fn envelope(&self) -> &Bounds {
        &self.envelope
    }
    /// Index of the action nearest `x` (Euclidean; ties to the lower
    /// index).
    pub fn nearest(&self, x: &[f32]) -> usize {
        let d = |r: &[f32]| r.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
        let mut best = (0, f32::INFINITY);
        for (k, r) in self.rows.iter().enumerate() {
            let dk = d(r);
            if dk < best.1 {
                best = (k, dk);
            }
        }
        best.0
    }
}

impl TryFrom<Vec<Vec<f32>>> for Choices {
    type Error = CoreError;
    fn try_from(rows: Vec<Vec<f32>>) -> Result<Self> {
        Self::new(rows)
    }
}

impl From<Choices> for Vec<Vec<f32>> {
    fn from(c: Choices) -> Self {
        c.rows
    }
}

/// Where actions may go: a box (continuous planners: CEM, MPPI, GD) or a
/// finite set of actions (discrete planners: `cem-discrete`, `beam`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActionSpace {
    /// Any action inside the box.
    Box(Bounds),
    /// One of a finite set of actions.
    Discrete(Choices),
}

impl From<Bounds> for ActionSpace {
    fn from(b: Bounds) -> Self {
        ActionSpace::Box(b)
    }
}

impl ActionSpace {
    /// Width of an action.
    pub fn dim(&self) -> usize {
        self.bounds().dim()
    }
    /// The box, or the smallest box holding every choice.
    pub fn bounds(&self) -> &Bounds {
        match self {
            ActionSpace::Box(b) => b,
            ActionSpace::Discrete(c) => c.envelope(),
        }
    }
    /// The choices of a discrete space.
    pub fn choices(&self) -> Option<&Choices> {
        match self {
            ActionSpace::Box(_) => None,
            ActionSpace::Discrete(c) => Some(c),
        }
    }
    /// Whether the space is a finite set of actions.
    pub fn is_discrete(&self) -> bool {
        matches!(self, ActionSpace::Discrete(_))
    }
    /// Moves `x` into the space: clamped into the box, or replaced by the
    /// nearest choice.
    pub fn project(&self, x: &mut [f32]) {
        match self {
            ActionSpace::Box(b) => b.clamp(x),
            ActionSpace::Discrete(c) => {
                let k = c.nearest(x);
                x.copy_from_slice(c.row(k));
            }
        }
    }
    /// The box of a continuous space, or an error for `planner` (a
    /// continuous planner) naming the discrete planners to use instead.
    pub fn require_box(&self, planner: &str) -> Result<&Bounds> {
        match self {
            ActionSpace::Box(b) => Ok(b),
            ActionSpace::Discrete(_) => Err(CoreError::config(
                planner,
                format!("`{planner}` searches a continuous box, but the actions are {}: use a discrete planner (`cem-discrete` or `beam`)", self.words()),
            )),
        }
    }
    /// The choices of a discrete space, or an error for `planner` (a
    /// discrete planner) naming the continuous planners to use instead.
    pub fn require_choices(&self, planner: &str) -> Result<&Choices> {
        match self {
            ActionSpace::Discrete(c) => Ok(c),
            ActionSpace::Box(_) => Err(CoreError::config(
                planner,
                format!("`{planner}` searches a finite set of actions, but the actions are a continuous {}: use `cem`, `mppi` or `gd`", self.words()),
            )),
        }
    }
    /// The space in words: `box [-2, 2]`, `2 choices [[-10], [10]]`.
    pub fn words(&self) -> String {
        let list = |v: &[f32]| format!("[{}]", v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(", "));
        match self {
            ActionSpace::Box(b) if b.dim() == 1 => format!("box [{}, {}]", b.low[0], b.high[0]),
            ActionSpace::Box(b) => format!("box low {} high {}", list(&b.low), list(&b.high)),
            ActionSpace::Discrete(c) if c.len() <= 8 => {
                format!("{} discrete choices [{}]", c.len(), c.rows().iter().map(|r| list(r)).collect::<Vec<_>>().join(", "))
            }
            ActionSpace::Discrete(c) => format!("{} discrete choices of width {}", c.len(), c.dim()),
        }
    }
}

/// How much work a planning call may do: at most `iterations` refinement
/// iterations, and, if set, no new iteration after `deadline` has passed
/// (the best plan so far is returned).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Maximum number of iterations.
    pub iterations: usize,
    /// Wall-clock limit per planning call.
    pub deadline: Option<Duration>,
}

impl Budget {
    /// A budget of `iterations` iterations and no deadline.
    pub fn iterations(iterations: usize) -> Self {
        Self { iterations, deadline: None }
    }
}

impl Budget {
    /// The deadline in milliseconds, as the planner settings hold it.
    pub fn deadline_ms(&self) -> Option<f64> {
        self.deadline.map(|d| d.as_secs_f64() * 1e3)
    }
}
