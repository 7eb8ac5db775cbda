use ndarray::{Array1, Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::modules::{Cost, Modulation};
use crate::planner::Plan;

/// The actor [paper §3.1, §5]: proposes the action to take in a state.
/// Mode-1 actors are reactive policies; Mode-2 actors
/// (`ami_planners::PlanningActor`) plan by minimising the energy of an
/// action sequence under the world model and the cost.
pub trait Actor: Send {
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Starts a new episode with a seed for any randomness.
    fn reset(&mut self, seed: u64);
    /// The action to take in `state` under `cost`.
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>>;
    /// Applies a configurator modulation that concerns the actor (budget,
    /// horizon). Others are ignored.
    fn modulate(&mut self, _m: &Modulation) -> Result<()> {
        Ok(())
    }
    /// The plan behind the last action, for actors that plan (`None`, the
    /// default, for the others).
    fn last_plan(&self) -> Option<&Plan> {
        None
    }
    /// Which mode chose the last action. Default: Mode-2 when the actor
    /// has a plan ([`Actor::last_plan`]), Mode-1 otherwise.
    fn last_decision(&self) -> Decision {
        if self.last_plan().is_some() {
            Decision::Planned
        } else {
            Decision::Reactive
        }
    }
    /// The planner's first action if it planned in the last call: the
    /// teacher's label of that state for a policy learning from the
    /// planner (DAgger), even when the policy acted. Default: `None`.
    fn teacher_action(&self) -> Option<Array1<f32>> {
        None
    }
}

/// Which mode chose an action [paper §3.1.3].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Mode-1: a reactive policy, no planning.
    Reactive,
    /// Mode-2: planned by energy minimisation.
    Planned,
    /// Neither: an exploration action (uniform in the bounds) taken
    /// before there is a model worth planning with.
    Explored,
}

impl Decision {
    /// The number an actor node writes on its `mode` output: 1 for
    /// Mode-1, 2 for Mode-2, 3 for exploration (0 means no decision).
    pub fn code(self) -> f64 {
        match self {
            Decision::Reactive => 1.0,
            Decision::Planned => 2.0,
            Decision::Explored => 3.0,
        }
    }
}

/// A Mode-1 policy: a reactive map from a batch of states to actions.
pub trait Policy: Send + Sync {
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Actions `[batch, action_dim]` for states `[batch, state_dim]`.
    fn act_batch(&self, states: ndarray::ArrayView2<'_, f32>) -> Result<Array2<f32>>;
    /// The concrete policy, for code that trains or saves a known kind
    /// (a distillation trainer finds its MLP policy this way). Default:
    /// `None`.
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

/// A linear feedback policy `a = clip(K (s - s_ref), low, high)`.
#[derive(Debug, Clone)]
pub struct LinearPolicy {
    gain: Array2<f32>,
    reference: Array1<f32>,
    low: f32,
    high: f32,
}

impl LinearPolicy {
    /// `gain` is `[action_dim, state_dim]`.
    pub fn new(gain: Array2<f32>, reference: Array1<f32>, low: f32, high: f32) -> Result<Self> {
        if reference.len() != gain.ncols() {
            return Err(CoreError::shape("LinearPolicy::new(reference)", format!("length {}", gain.ncols()), format!("length {}", reference.len())));
        }
        Ok(Self { gain, reference, low, high })
    }
}

impl Policy for LinearPolicy {
    fn action_dim(&self) -> usize {
        self.gain.nrows()
    }
    fn act_batch(&self, states: ndarray::ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if states.ncols() != self.gain.ncols() {
            return Err(CoreError::shape("LinearPolicy::act_batch(states)", format!("width {}", self.gain.ncols()), format!("width {}", states.ncols())));
        }
        let d = &states - &self.reference;
        Ok(d.dot(&self.gain.t()).mapv(|a| a.clamp(self.low, self.high)))
    }
}

/// A Mode-1 actor: acts with a [`Policy`] on the batch of one state.
pub struct PolicyActor<P: Policy> {
    policy: P,
}

impl<P: Policy> PolicyActor<P> {
    /// Wraps a policy.
    pub fn new(policy: P) -> Self {
        Self { policy }
    }
}

impl<P: Policy> Actor for PolicyActor<P> {
    fn action_dim(&self) -> usize {
        self.policy.action_dim()
    }
    fn reset(&mut self, _seed: u64) {}
    fn act(&mut self, state: ArrayView1<'_, f32>, _cost: &Cost) -> Result<Array1<f32>> {
        let s = state.insert_axis(ndarray::Axis(0));
        Ok(self.policy.act_batch(s)?.row(0).to_owned())
    }
    fn last_decision(&self) -> Decision {
        Decision::Reactive
    }
}
