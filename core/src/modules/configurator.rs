use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::bounds::Budget;
use crate::error::{CoreError, Result};

/// A change the configurator makes to another module's settings while the
/// agent runs [paper §6]. The configurator is the only module that writes
/// other modules' settings, and it does so only through these messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Modulation {
    /// Set the weight `u_i` / `v_j` of a cost term.
    CostWeight {
        /// Term name.
        term: String,
        /// New weight.
        weight: f32,
    },
    /// Set (or clear) the goal of goal-relative cost terms.
    Goal(Option<Vec<f32>>),
    /// Set (or clear) the subgoal of subgoal terms
    /// ([`SubgoalDistance`](crate::SubgoalDistance)): a vector of the
    /// state's width, NaN where the subgoal leaves a coordinate free. A
    /// higher planning level (a `level` node) sets it.
    Subgoal(Option<Vec<f32>>),
    /// Set the planner's budget.
    Budget(Budget),
    /// Set the planner's horizon.
    Horizon(usize),
    /// Set how an actor with a policy and a planner decides (Mode-1 /
    /// Mode-2 switching).
    Mode(ActMode),
    /// Switch Mode-1 / Mode-2 by the rule ([`ActMode::Switch`]), each
    /// field left `None` keeping the actor's own (its agent file's
    /// `switch_margin`, `switch_tolerance`, `max_policy_ticks`).
    Switch {
        /// Relative margin.
        margin: Option<f32>,
        /// Absolute margin, in energy units.
        tolerance: Option<f32>,
        /// Most Mode-1 ticks in a row (0: no limit).
        max_policy_ticks: Option<usize>,
    },
}

/// The configurator [paper §6]: sets up the other modules for the task at
/// hand and modulates them while the agent runs.
pub trait Configurator: Send {
    /// Called once per tick with the current state; returns the modulations
    /// to apply (usually none).
    fn configure(&mut self, tick: u64, state: ArrayView1<'_, f32>) -> Vec<Modulation>;
    /// Starts a new episode.
    fn reset(&mut self, _seed: u64) {}
}

/// A configurator that emits fixed modulations at fixed ticks of every
/// episode (e.g. the task's goal and weights at tick 0).
#[derive(Debug, Clone, Default)]
pub struct ScheduleConfigurator {
    schedule: Vec<(u64, Modulation)>,
}

impl ScheduleConfigurator {
    /// Emits each `(tick, modulation)` at its tick.
    pub fn new(schedule: Vec<(u64, Modulation)>) -> Self {
        Self { schedule }
    }
    /// Emits `modulations` at tick 0 only.
    pub fn at_start(modulations: Vec<Modulation>) -> Self {
        Self::new(modulations.into_iter().map(|m| (0, m)).collect())
    }
}

impl Configurator for ScheduleConfigurator {
    fn configure(&mut self, tick: u64, _state: ArrayView1<'_, f32>) -> Vec<Modulation> {
        self.schedule.iter().filter(|(t, _)| *t == tick).map(|(_, m)| m.clone()).collect()
    }
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
