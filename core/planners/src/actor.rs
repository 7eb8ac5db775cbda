//! The receding-horizon Mode-2 actor.

use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array1, ArrayView1};

use ami_core::error::Result;
use ami_core::modules::{Actor, Cost, Modulation, WorldModel};
use ami_core::{ModelHandle, Plan, PlanRequest, Planner};

/// A Mode-2 actor: at every call it plans through the world model from the
/// current state (warm-started from the previous plan shifted one step),
/// and acts the first action of the plan — receding-horizon control.
///
/// The world model is held through a [`ModelHandle`]: each call plans with
/// the version current when it starts, so a trainer can publish new
/// weights between calls.
pub struct PlanningActor {
    planner: Box<dyn Planner>,
    model: ModelHandle,
    last: Option<Plan>,
    plan_calls: u64,
    plan_seconds: f64,
}

impl PlanningActor {
    /// An actor that plans with `planner` through `model`.
    pub fn new(planner: Box<dyn Planner>, model: Arc<dyn WorldModel>) -> Self {
        Self::with_handle(planner, ModelHandle::new(model))
    }
    /// An actor that plans with `planner` through whatever version `model`
    /// holds when each call starts.
    pub fn with_handle(planner: Box<dyn Planner>, model: ModelHandle) -> Self {
        Self { planner, model, last: None, plan_calls: 0, plan_seconds: 0.0 }
    }
    /// The handle of the world model it plans with.
    pub fn model(&self) -> &ModelHandle {
        &self.model
    }
    /// The planner.
    pub fn planner(&self) -> &dyn Planner {
        self.planner.as_ref()
    }
    /// Number of planning calls and their mean wall time in milliseconds.
    pub fn plan_stats(&self) -> (u64, f64) {
        let mean = if self.plan_calls == 0 { 0.0 } else { self.plan_seconds * 1e3 / self.plan_calls as f64 };
        (self.plan_calls, mean)
    }
}

impl Actor for PlanningActor {
    fn action_dim(&self) -> usize {
        self.planner.action_dim()
    }
    fn reset(&mut self, seed: u64) {
        self.planner.reset(seed);
        self.last = None;
    }
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>> {
        let t0 = Instant::now();
        let model = self.model.get();
        let plan = self.planner.plan(&PlanRequest::new(model.as_ref(), cost, state))?;
        self.plan_seconds += t0.elapsed().as_secs_f64();
        self.plan_calls += 1;
        let a = plan.actions.row(0).to_owned();
        self.last = Some(plan);
        Ok(a)
    }
    fn last_plan(&self) -> Option<&Plan> {
        self.last.as_ref()
    }
    fn modulate(&mut self, m: &Modulation) -> Result<()> {
        match m {
            Modulation::Budget(b) => self.planner.set_budget(*b),
            Modulation::Horizon(h) => self.planner.set_horizon(*h),
            _ => Ok(()),
        }
    }
}
