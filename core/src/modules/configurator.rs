use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::bounds::Budget;

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
    /// Set the planner's budget.
    Budget(Budget),
    /// Set the planner's horizon.
    Horizon(usize),
    /// Set how an actor with a policy and a planner decides (Mode-1 /
    /// Mode-2 switching).
    Mode(crate::modules::ActMode),
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
