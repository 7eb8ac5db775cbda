//! Graph nodes wrapping the module contracts.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ndarray::{Array1, Axis};

use super::Node;
use super::{Inputs, NodePorts, Outputs, PortType, TickContext};
use crate::error::{CoreError, Result};
use crate::modules::{Actor, Configurator, Cost, Perception, ShortTermMemory, TransitionRef};

/// A cost shared between the nodes that read it (actor, cost node) and the
/// modulations that change its weights and goal.
pub type SharedCost = Arc<RwLock<Cost>>;

/// Wraps a cost for sharing.
pub fn shared_cost(cost: Cost) -> SharedCost {
    Arc::new(RwLock::new(cost))
}

fn read(cost: &SharedCost) -> std::sync::RwLockReadGuard<'_, Cost> {
    cost.read().unwrap_or_else(|p| p.into_inner())
}

fn write(cost: &SharedCost) -> std::sync::RwLockWriteGuard<'_, Cost> {
    cost.write().unwrap_or_else(|p| p.into_inner())
}

/// Perception as a node: `observation` -> `state`.
pub struct PerceptionNode {
    perception: Arc<dyn Perception>,
}

impl PerceptionNode {
    /// Wraps a perception module.
    pub fn new(perception: Arc<dyn Perception>) -> Self {
        Self { perception }
    }
}

impl Node for PerceptionNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("observation", PortType::Observation, true).output("state", PortType::State)
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let obs = inputs.vector(0)?;
        let s = self.perception.encode(obs.insert_axis(Axis(0)))?;
        outputs.set_vector(0, s.row(0));
        Ok(())
    }
}

/// The configurator as a node: `state` -> `modulation` messages.
pub struct ConfiguratorNode {
    configurator: Box<dyn Configurator>,
}

impl ConfiguratorNode {
    /// Wraps a configurator.
    pub fn new(configurator: Box<dyn Configurator>) -> Self {
        Self { configurator }
    }
}

impl Node for ConfiguratorNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("state", PortType::State, true).output("modulation", PortType::Modulation)
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        self.configurator.reset(seed);
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let m = self.configurator.configure(ctx.tick, inputs.vector(0)?);
        outputs.set_modulations(0, m);
        Ok(())
    }
}

/// The actor as a node: `state` (+ `modulation`, `done`) -> `action`, and
/// the wall time of the decision in `plan_ms`.
///
/// Modulations are applied before acting, so a change made by the
/// configurator on tick t shapes the action of tick t: cost weights and goal
/// go to the shared cost, budget and horizon to the actor. When `done` is
/// true the actor does not act (the episode is over) and repeats its last
/// action.
pub struct ActorNode {
    actor: Box<dyn Actor>,
    cost: SharedCost,
    last: Array1<f32>,
}

impl ActorNode {
    /// Wraps an actor acting under `cost`.
    pub fn new(actor: Box<dyn Actor>, cost: SharedCost) -> Self {
        let last = Array1::zeros(actor.action_dim());
        Self { actor, cost, last }
    }
    /// The wrapped actor.
    pub fn actor(&self) -> &dyn Actor {
        self.actor.as_ref()
    }
}

impl Node for ActorNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("modulation", PortType::Modulation, false)
            .input("done", PortType::Done, false)
            .output("action", PortType::Action)
            .output("plan_ms", PortType::Scalar)
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        self.actor.reset(seed);
        self.last.fill(0.0);
        Ok(())
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        for m in inputs.modulations(1)? {
            if !write(&self.cost).apply(m)? {
                self.actor.modulate(m)?;
            }
        }
        if inputs.flag_opt(2)? == Some(true) {
            outputs.set_vector(0, self.last.view());
            outputs.set_scalar(1, 0.0);
            return Ok(());
        }
        let state = inputs.vector(0)?;
        let t0 = std::time::Instant::now();
        let a = self.actor.act(state, &read(&self.cost))?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if a.iter().any(|x| !x.is_finite()) {
            return Err(CoreError::module("actor", "produced a non-finite action"));
        }
        self.last.assign(&a);
        outputs.set_vector(0, a.view());
        outputs.set_scalar(1, ms);
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The intrinsic cost of the last observed transition as a node:
/// (`prev_state`, `prev_action`, `state`) -> `cost`. Wire `prev_*` with
/// delayed edges; on the first tick of an episode nothing is written.
/// Cost modulations (weights, goal) arriving on `modulation` are applied
/// before the cost is evaluated.
pub struct CostNode {
    cost: SharedCost,
    out: Array1<f32>,
}

impl CostNode {
    /// A node evaluating `cost`'s intrinsic terms.
    pub fn new(cost: SharedCost) -> Self {
        Self { cost, out: Array1::zeros(1) }
    }
}

impl Node for CostNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("prev_state", PortType::State, false)
            .input("prev_action", PortType::Action, false)
            .input("modulation", PortType::Modulation, false)
            .output("cost", PortType::Cost)
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        for m in inputs.modulations(3)? {
            write(&self.cost).apply(m)?;
        }
        let (Some(prev), Some(action)) = (inputs.vector_opt(1)?, inputs.vector_opt(2)?) else {
            return Ok(());
        };
        let next = inputs.vector(0)?;
        read(&self.cost).step_energy(0, prev.insert_axis(Axis(0)), action.insert_axis(Axis(0)), next.insert_axis(Axis(0)), self.out.view_mut());
        outputs.set_scalar(0, f64::from(self.out[0]));
        Ok(())
    }
}

/// Short-term memory as a node: records each observed transition
/// (`prev_state`, `prev_action`, `cost`, `state`), and saves itself to
/// `save_path` (if set) when the run finishes.
pub struct MemoryNode {
    memory: Box<dyn ShortTermMemory>,
    save_path: Option<PathBuf>,
}

impl MemoryNode {
    /// Wraps a memory; `save_path` is written atomically at finish.
    pub fn new(memory: Box<dyn ShortTermMemory>, save_path: Option<PathBuf>) -> Self {
        Self { memory, save_path }
    }
    /// The memory.
    pub fn memory(&self) -> &dyn ShortTermMemory {
        self.memory.as_ref()
    }
}

impl Node for MemoryNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("state", PortType::State, true).input("prev_state", PortType::State, false).input("prev_action", PortType::Action, false).input(
            "cost",
            PortType::Cost,
            false,
        )
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, _outputs: &mut Outputs<'_>) -> Result<()> {
        let (Some(prev), Some(action)) = (inputs.vector_opt(1)?, inputs.vector_opt(2)?) else {
            return Ok(());
        };
        let cost = inputs.scalar_opt(3)?.unwrap_or(f64::NAN) as f32;
        let next = inputs.vector(0)?;
        self.memory.push(&TransitionRef { t: ctx.tick.saturating_sub(1), state: prev, action, cost, next_state: next, imagined: false })
    }
    fn finish(&mut self) -> Result<()> {
        match &self.save_path {
            Some(p) => self.memory.save(p),
            None => Ok(()),
        }
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
