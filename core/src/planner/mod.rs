//! Mode-2 planning [paper §3.1.2, §5]: find the action sequence whose
//! predicted future has the lowest energy under the cost, act its first
//! action, and plan again at the next tick (receding horizon).
//!
//! The planners here are generic over any [`WorldModel`] and [`Cost`]: they
//! only use the batched `predict` and energy calls (see [`Rollout`]).

mod actor;
mod cem;
mod fast;
mod gd;
mod mppi;
mod rollout;

use std::time::Duration;

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

pub use actor::PlanningActor;
pub use cem::{Cem, CemConfig};
pub use gd::{energy_gradient, Gd, GdConfig};
pub use mppi::{Mppi, MppiConfig};
pub use rollout::Rollout;

use crate::error::{CoreError, Result};
use crate::modules::{Cost, WorldModel};

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

/// One planning problem: plan from `state` through `model` under `cost`.
#[derive(Clone, Copy)]
pub struct PlanRequest<'a> {
    /// The world model to roll out.
    pub model: &'a dyn WorldModel,
    /// The energy to minimise.
    pub cost: &'a Cost,
    /// The current state.
    pub state: ArrayView1<'a, f32>,
}

impl<'a> PlanRequest<'a> {
    /// A request.
    pub fn new(model: &'a dyn WorldModel, cost: &'a Cost, state: ArrayView1<'a, f32>) -> Self {
        Self { model, cost, state }
    }
}

/// The result of a planning call.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The action sequence `[horizon, action_dim]`; row 0 is executed.
    pub actions: Array2<f32>,
    /// Energy of `actions` under the model and cost.
    pub energy: f32,
    /// Iterations done.
    pub iterations: usize,
    /// Action sequences evaluated.
    pub evaluated: usize,
}

/// A Mode-2 planner: minimises the energy of an action sequence.
pub trait Planner: Send {
    /// The planner's name (`cem`, `mppi`, ...).
    fn name(&self) -> &str;
    /// Planning horizon (steps).
    fn horizon(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Forgets the warm start and reseeds the planner's random stream.
    fn reset(&mut self, seed: u64);
    /// Plans from `req.state`. Successive calls warm-start from the previous
    /// plan shifted by one step.
    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan>;
    /// Changes the budget.
    fn set_budget(&mut self, budget: Budget) -> Result<()>;
    /// Changes the horizon (the warm start is dropped).
    fn set_horizon(&mut self, horizon: usize) -> Result<()>;
}

pub(crate) fn check_request(name: &str, horizon: usize, bounds: &Bounds, req: &PlanRequest<'_>) -> Result<()> {
    if req.model.action_dim() != bounds.dim() {
        return Err(CoreError::shape(
            format!("{name}: world model action_dim"),
            format!("{} (the bounds' dimension)", bounds.dim()),
            req.model.action_dim().to_string(),
        ));
    }
    if req.state.len() != req.model.state_dim() {
        return Err(CoreError::shape(
            format!("{name}: state"),
            format!("length {} (the model's state_dim)", req.model.state_dim()),
            format!("length {}", req.state.len()),
        ));
    }
    if horizon == 0 {
        return Err(CoreError::config(format!("{name}.horizon"), "must be at least 1"));
    }
    Ok(())
}

/// Changes a planner's settings on a copy and keeps the copy only if it
/// validates, so a refused change leaves the planner as it was.
pub(crate) fn update_settings<C: Clone>(cfg: &mut C, validate: fn(&C) -> Result<()>, change: impl FnOnce(&mut C)) -> Result<()> {
    let mut next = cfg.clone();
    change(&mut next);
    validate(&next)?;
    *cfg = next;
    Ok(())
}

impl Budget {
    /// The deadline in milliseconds, as the planner settings hold it.
    pub fn deadline_ms(&self) -> Option<f64> {
        self.deadline.map(|d| d.as_secs_f64() * 1e3)
    }
}

/// The mean a sampling planner starts from: the previous plan shifted one
/// step earlier when warm starting (and its shape still fits), otherwise
/// zero actions clamped into the bounds.
pub(crate) fn initial_mean(warm: Option<Array2<f32>>, warm_start: bool, horizon: usize, bounds: &Bounds) -> Array2<f32> {
    match warm {
        Some(mut w) if warm_start && w.dim() == (horizon, bounds.dim()) => {
            shift_plan(&mut w);
            w
        }
        _ => {
            let mut m = Array2::<f32>::zeros((horizon, bounds.dim()));
            for mut row in m.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = v.clamp(bounds.low[j], bounds.high[j]);
                }
            }
            m
        }
    }
}

/// Shifts a `[T, A]` plan one step earlier, repeating the last action.
pub(crate) fn shift_plan(plan: &mut Array2<f32>) {
    let t = plan.nrows();
    for i in 1..t {
        let (mut dst, src) = plan.multi_slice_mut((ndarray::s![i - 1, ..], ndarray::s![i, ..]));
        dst.assign(&src);
    }
}
