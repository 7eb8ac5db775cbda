//! The environment contract: the world an agent acts in.

use ndarray::{Array1, ArrayView1};

use ami_core::Bounds;

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
pub trait Environment: Send {
    /// Task name (`pendulum`, `cartpole`, `pointmass`, ...).
    fn name(&self) -> &str;
    /// Width of an observation.
    fn obs_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Bounds of the action.
    fn action_bounds(&self) -> Bounds;
    /// Steps after which an episode is truncated.
    fn max_steps(&self) -> usize;
    /// Starts an episode drawn with `seed`; returns the first observation.
    fn reset(&mut self, seed: u64) -> Array1<f32>;
    /// Applies `action` (clipped to the bounds) and advances one step.
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Step;
}
