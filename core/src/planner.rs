//! The Mode-2 planner contract [paper §3.1.2, §5]: find the action sequence
//! whose predicted future has the lowest energy under the cost. The
//! planners themselves (CEM, MPPI, GD) live in `ami-planners`; this file is
//! what every planner, built in or shipped in a plugin, implements.

use ndarray::{Array2, ArrayView1};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::bounds::Budget;
use crate::error::Result;
use crate::modules::{Cost, WorldModel};

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

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks every planning call in the process to return after its current
/// iteration (a Ctrl-C handler calls it): a long call (thousands of
/// iterations, a slow model) ends in one iteration's time with its best
/// plan so far, and the runner, which checks its own flag between ticks,
/// stops the episode.
pub fn request_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`request_interrupt`] was called (planners check it between
/// iterations, as they check their deadline).
pub fn interrupt_requested() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
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
    /// The modules whose outputs were non-finite during the call, with the
    /// rows each made so (their samples were skipped); empty when none.
    pub non_finite: crate::modules::NonFiniteTally,
}

impl Plan {
    /// World-model evaluations the call made (one state stepped once):
    /// sequences evaluated times the horizon.
    pub fn model_steps(&self) -> u64 {
        (self.evaluated * self.actions.nrows()) as u64
    }
}

/// A Mode-2 planner: minimises the energy of an action sequence.
pub trait Planner: Send {
    /// The planner's name (`cem`, `mppi`, ...).
    fn name(&self) -> &str;
    /// Planning horizon (steps).
    fn horizon(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Starts an episode: settings changed by [`Planner::set_budget`] and
    /// [`Planner::set_horizon`] return to those the planner was built with,
    /// the warm start is forgotten and the random stream reseeded, so an
    /// episode's plans depend only on its seed, not on the episodes before.
    fn reset(&mut self, seed: u64);
    /// Plans from `req.state`. Successive calls warm-start from the previous
    /// plan shifted by one step.
    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan>;
    /// Changes the budget.
    fn set_budget(&mut self, budget: Budget) -> Result<()>;
    /// Changes the horizon (the warm start is dropped).
    fn set_horizon(&mut self, horizon: usize) -> Result<()>;
    /// Whether the planner needs gradients (a differentiable world model
    /// and cost); agents refuse such a planner without them when they are
    /// built. Default: `false`.
    fn needs_gradients(&self) -> bool {
        false
    }
    /// Seeds the next call with `plan` (`[horizon, action_dim]`), for
    /// instance a Mode-1 policy's proposal rolled out through the world
    /// model (TD-MPC2's warm start): a sampling planner centres its first
    /// samples on it, a gradient planner starts one sequence from it. For
    /// that call it replaces the shifted previous plan; a plan of another
    /// shape is ignored. Default: ignored, and
    /// [`Planner::supports_proposals`] says so.
    fn propose(&mut self, _plan: Array2<f32>) {}
    /// Whether [`Planner::propose`] is used. Default: `false`.
    fn supports_proposals(&self) -> bool {
        false
    }
    /// Whether each call starts from the previous call's plan shifted by
    /// one step. A caller that lets ticks pass without planning (an actor
    /// whose Mode-1 policy acted meanwhile) proposes the plan shifted by
    /// as many steps instead, so the start is never stale. Default:
    /// `false`.
    fn warm_starts(&self) -> bool {
        false
    }
}
