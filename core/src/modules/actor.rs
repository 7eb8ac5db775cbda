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
}

/// How an actor that has both a Mode-1 policy and a Mode-2 planner
/// decides each tick; the configurator can change it
/// ([`Modulation::Mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActMode {
    /// Plan every tick (Mode-2), starting from the policy's proposal when
    /// its energy is lower than the standing plan's.
    Plan,
    /// Act from the policy alone (Mode-1); never plan.
    Policy,
    /// Plan every tick only to label the state (the teacher of DAgger) and
    /// act from the policy.
    Label,
    /// Act from the policy when the energy of its proposal is within
    /// `margin * |E| + tolerance` of the energy `E` of the planner's
    /// standing plan (its last plan, shifted to now), and for at most
    /// `max_policy_ticks` ticks in a row (0: no limit); plan otherwise.
    Switch {
        /// Relative margin.
        margin: f32,
        /// Absolute margin, in energy units.
        tolerance: f32,
        /// Most consecutive Mode-1 ticks (0: no limit).
        max_policy_ticks: usize,
    },
}

impl ActMode {
    /// The name in agent files: `plan`, `policy`, `label` or `switch`.
    pub fn name(&self) -> &'static str {
        match self {
            ActMode::Plan => "plan",
            ActMode::Policy => "policy",
            ActMode::Label => "label",
            ActMode::Switch { .. } => "switch",
        }
    }
    /// Checks the switch rule's numbers; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if let ActMode::Switch { margin, tolerance, .. } = *self {
            if !(margin.is_finite() && margin >= 0.0) {
                return Err(CoreError::config("switch_margin", format!("must be finite and at least 0, got {margin}")));
            }
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return Err(CoreError::config("switch_tolerance", format!("must be finite and at least 0, got {tolerance}")));
            }
        }
        Ok(())
    }
    /// The switch rule: whether the policy acts, given the energy of its
    /// proposal, the energy of the standing plan (`None`: there is none)
    /// and how many ticks in a row the policy has acted. Any non-finite
    /// energy plans.
    pub fn policy_acts(&self, proposal: f32, standing: Option<f32>, policy_ticks: usize) -> bool {
        match *self {
            ActMode::Plan => false,
            ActMode::Policy | ActMode::Label => true,
            ActMode::Switch { margin, tolerance, max_policy_ticks } => {
                let Some(e) = standing else { return false };
                if max_policy_ticks > 0 && policy_ticks >= max_policy_ticks {
                    return false;
                }
                proposal.is_finite() && e.is_finite() && proposal <= e + margin * e.abs() + tolerance
            }
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
