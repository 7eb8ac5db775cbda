//! Limits of a planning call: where actions may go ([`Bounds`]) and how
//! much work a call may do ([`Budget`]). Both are plain data, shared by the
//! planners, the configurator's modulations and the environments.

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
