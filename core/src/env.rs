//! The environment contract: the world an agent acts in, with Gymnasium's
//! reset/step semantics.
//!
//! Both calls are fallible: an environment behind a pipe (the Gymnasium
//! bridge) or a plugin can fail, and that failure must reach the runner as
//! an error naming the environment, not as a NaN observation or a line in a
//! global log. `terminated` (a terminal state: the pole fell) and
//! `truncated` (cut off by a time limit) are kept apart, because a critic
//! bootstraps from a truncated step but not from a terminated one.

use ndarray::{Array1, ArrayView1};

use crate::bounds::{ActionSpace, Bounds};
use crate::error::Result;

/// The outcome of one environment step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Observation after the step.
    pub observation: Array1<f32>,
    /// Reward of the step (Gymnasium's convention: higher is better).
    pub reward: f64,
    /// The episode ended in a terminal state (e.g. the pole fell).
    pub terminated: bool,
    /// The episode was cut off by its step limit.
    pub truncated: bool,
}

/// A task environment with Gymnasium's reset/step semantics.
///
/// The runner calls `reset` once per episode, then `step` until a step is
/// `terminated` or `truncated`, or [`Environment::max_steps`] steps were
/// taken (the runner then ends the episode as truncated itself, so an
/// environment that never sets `truncated` cannot loop forever).
pub trait Environment: Send {
    /// Task name (`pendulum`, `cartpole`, `pointmass`, ...).
    fn name(&self) -> &str;
    /// Width of an observation.
    fn obs_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Bounds of the action (for a discrete space, the smallest box
    /// holding every choice).
    fn action_bounds(&self) -> Bounds;
    /// Where actions may go: the box of [`Environment::action_bounds`]
    /// (the default), or a finite set of actions, which discrete planners
    /// search.
    fn action_space(&self) -> ActionSpace {
        ActionSpace::Box(self.action_bounds())
    }
    /// Steps after which an episode is truncated.
    fn max_steps(&self) -> usize;
    /// Starts an episode drawn with `seed`; returns the first observation.
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>>;
    /// Applies `action` (clipped to the bounds) and advances one step.
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step>;
    /// The goal of the episode begun by the last `reset`, for goal-
    /// conditioned tasks (in the state space the cost compares it with);
    /// `None` (the default) when the task has no per-episode goal.
    fn goal(&self) -> Option<Array1<f32>> {
        None
    }
    /// The width of the goals [`Environment::goal`] returns, if the task
    /// has per-episode goals, so an agent can check it against its cost
    /// when it is built (default: `None`).
    fn goal_dim(&self) -> Option<usize> {
        None
    }
    /// Whether the episode begun by the last `reset` has succeeded so far,
    /// for tasks with a success criterion (a maze: the goal was reached);
    /// `None` (the default) when the task has none. Runners report it per
    /// episode and as a success rate.
    fn success(&self) -> Option<bool> {
        None
    }
    /// The true state as far as a person looking at a run wants it (the
    /// agent's position in a task observed as images), for traces and
    /// plots only: the standard agent never wires it to a module. `None`
    /// (the default): the observation says it.
    fn diagnostics(&self) -> Option<Array1<f32>> {
        None
    }
}
