//! Graph nodes over the module contracts: each wraps one module and maps
//! its calls to ports. The nodes own no policy of their own; what they do
//! per tick is documented on each.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ami_core::{
    Actor, Configurator, CoreError, CostSettings, Decision, Environment, Handle, MemoryHandle, Perception, Plan, Result, TransitionRef, WorldModel,
};
use ami_graph::{Inputs, Node, NodePorts, Outputs, PortType, TickContext};
use ndarray::{Array1, Axis};

/// A cost shared by the nodes that evaluate it (the cost node, actors that
/// refer to it) and changed by modulations.
pub type SharedCost = ami_core::Shared<ami_core::Cost>;

/// Perception as a node: `observation` -> `state`. Goals given as
/// observations (an environment's `goal` port: a goal image) arrive on
/// `goal` and leave encoded on `goal`, so the configurator sets them on
/// costs in the state's space; other modulations pass through.
pub struct PerceptionNode {
    perception: Arc<dyn Perception>,
}

impl PerceptionNode {
    /// Wraps a perception module.
    pub fn new(perception: Arc<dyn Perception>) -> Self {
        Self { perception }
    }
    /// The ports of every perception node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("observation", PortType::Observation, true)
            .input("goal", PortType::Modulation, false)
            .output("state", PortType::State)
            .output("goal", PortType::Modulation)
    }
}

impl Node for PerceptionNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let obs = inputs.vector(0)?;
        let s = self.perception.encode(obs.insert_axis(Axis(0)))?;
        outputs.set_vector(0, s.row(0));
        let given = inputs.modulations(1)?;
        if given.is_empty() {
            outputs.set_modulations(1, Vec::new());
        } else {
            let out = given
                .iter()
                .map(|m| match m {
                    ami_core::Modulation::Goal(Some(g)) if g.len() == self.perception.obs_dim() => {
                        let z = self.perception.encode(ndarray::ArrayView1::from(g.as_slice()).insert_axis(Axis(0)))?;
                        Ok(ami_core::Modulation::Goal(Some(z.row(0).to_vec())))
                    }
                    other => Ok(other.clone()),
                })
                .collect::<Result<Vec<_>>>()?;
            outputs.set_modulations(1, out);
        }
        Ok(())
    }
}

/// The configurator as a node: `state` -> `modulation` messages. Goals an
/// environment sets per episode arrive on `goal` and are passed on first,
/// so the configurator's own messages of the same tick override them.
pub struct ConfiguratorNode {
    configurator: Box<dyn Configurator>,
}

impl ConfiguratorNode {
    /// Wraps a configurator.
    pub fn new(configurator: Box<dyn Configurator>) -> Self {
        Self { configurator }
    }
    /// The ports of every configurator node.
    pub fn ports() -> NodePorts {
        NodePorts::new().input("state", PortType::State, true).input("goal", PortType::Modulation, false).output("modulation", PortType::Modulation)
    }
}

impl Node for ConfiguratorNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        self.configurator.reset(seed);
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let own = self.configurator.configure(ctx.tick, inputs.vector(0)?);
        let given = inputs.modulations(1)?;
        if given.is_empty() {
            outputs.set_modulations(0, own);
        } else {
            outputs.set_modulations(0, given.iter().cloned().chain(own).collect());
        }
        Ok(())
    }
}

/// What an actor node reports after each decision, readable from outside
/// the graph through an [`ActorHandle`].
#[derive(Debug, Clone, Default)]
pub struct ActorStats {
    /// Decisions since the handle was made.
    pub decisions: u64,
    /// Total wall time of those decisions, milliseconds.
    pub total_ms: f64,
    /// Decisions made by Mode-1 (a policy, no planning).
    pub reactive: u64,
    /// Wall time of the Mode-1 decisions, milliseconds.
    pub reactive_ms: f64,
    /// Decisions made by Mode-2 (planned).
    pub planned: u64,
    /// Exploration actions (neither mode: uniform in the action bounds).
    pub explored: u64,
    /// World-model evaluations (one state stepped once) of the planned
    /// decisions: sequences evaluated times the horizon.
    pub evaluations: u64,
    /// The last action.
    pub last_action: Option<Array1<f32>>,
    /// The last plan, for planning actors.
    pub last_plan: Option<Plan>,
    /// The modules whose outputs were non-finite while planning (their
    /// samples skipped), with row counts, since the handle was made.
    pub non_finite: ami_core::modules::NonFiniteTally,
}

impl ActorStats {
    /// Mean wall time of a decision, milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            self.total_ms / self.decisions as f64
        }
    }
}

/// A handle on an actor node's [`ActorStats`] (cloning shares it).
#[derive(Debug, Clone, Default)]
pub struct ActorHandle(Arc<Mutex<ActorStats>>);

impl ActorHandle {
    /// A copy of the statistics now.
    pub fn stats(&self) -> ActorStats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn update(&self, f: impl FnOnce(&mut ActorStats)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The actor as a node: `state` (+ `modulation`, `done`, `model`,
/// `subgoal` from a `level` node, set on its cost) ->
/// `action`, the wall time of the decision in `plan_ms`, which mode chose
/// it in `mode` (1: Mode-1, a policy; 2: Mode-2, planned; 3: an
/// exploration action; 0: no decision, the episode is over) and, in `teacher`, the planner's first action when
/// it planned this tick (NaNs when it did not): the label a policy
/// trainer learns from, even when the policy acted.
///
/// Modulations are applied before acting, so a change made by the
/// configurator on tick t shapes the action of tick t: cost weights and goal
/// go to the shared cost, budget and horizon to the actor. When `done` is
/// true the actor does not act (the episode is over) and repeats its last
/// action. `model`, `cost`, `critic` and `policy` are the reference edges
/// from the shared modules the actor uses: they order the actor after the
/// node that holds the module (a cost node applies its modulations to a
/// shared cost before the actor plans under it; a trainer publishes new
/// weights before the planner reads them).
pub struct ActorNode {
    actor: Box<dyn Actor>,
    cost: SharedCost,
    initial: CostSettings,
    last: Array1<f32>,
    handle: ActorHandle,
    /// Whether this episode's planning already warned of skipped samples.
    warned: bool,
}

impl ActorNode {
    /// Wraps an actor acting under `cost`.
    pub fn new(actor: Box<dyn Actor>, cost: SharedCost) -> Self {
        let last = Array1::zeros(actor.action_dim());
        let initial = cost.read().settings();
        Self { actor, cost, initial, last, handle: ActorHandle::default(), warned: false }
    }
    /// The ports of every actor node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("modulation", PortType::Modulation, false)
            .input("done", PortType::Done, false)
            .input("model", PortType::Model, false)
            .input("cost", PortType::Model, false)
            .input("critic", PortType::Model, false)
            .input("policy", PortType::Model, false)
            .input("subgoal", PortType::Subgoal, false)
            .output("action", PortType::Action)
            .output("plan_ms", PortType::Scalar)
            .output("mode", PortType::Scalar)
            .output("teacher", PortType::Action)
    }
    /// The wrapped actor.
    pub fn actor(&self) -> &dyn Actor {
        self.actor.as_ref()
    }
    /// A handle on the node's statistics and last plan.
    pub fn handle(&self) -> ActorHandle {
        self.handle.clone()
    }
}

impl Node for ActorNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    /// Starts an episode: the cost's weights and goal and the planner's
    /// budget and horizon return to what they were when the agent was
    /// built, so an episode depends only on its seed.
    fn reset(&mut self, seed: u64) -> Result<()> {
        self.cost.write().restore(&self.initial);
        self.actor.reset(seed);
        self.last.fill(0.0);
        self.warned = false;
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        for m in inputs.modulations(1)? {
            if !self.cost.write().apply(m)? {
                self.actor.modulate(m)?;
            }
        }
        take_subgoal(&self.cost, inputs.vector_opt(7)?)?;
        if inputs.flag_opt(2)? == Some(true) {
            outputs.set_vector(0, self.last.view());
            outputs.set_scalar(1, 0.0);
            outputs.set_scalar(2, 0.0);
            outputs.put_vector(3, Array1::from_elem(self.last.len(), f32::NAN));
            return Ok(());
        }
        let state = inputs.vector(0)?;
        let t0 = std::time::Instant::now();
        let a = self.actor.act(state, &self.cost.read())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if a.iter().any(|x| !x.is_finite()) {
            return Err(CoreError::module("actor", "produced a non-finite action"));
        }
        self.last.assign(&a);
        let plan = self.actor.last_plan().cloned();
        let decision = self.actor.last_decision();
        let evaluations = match (&plan, decision) {
            (Some(p), Decision::Planned) => p.model_steps(),
            _ => 0,
        };
        let skipped = match (&plan, decision) {
            (Some(p), Decision::Planned) if !p.non_finite.is_empty() => Some(p.non_finite.clone()),
            _ => None,
        };
        if let Some(t) = &skipped {
            // Once per episode: the counts are in the run's summary.
            if !std::mem::replace(&mut self.warned, true) {
                tracing::warn!(
                    "actor: planning skipped samples with non-finite energy at tick {} (episode seed {}), from {}; warned once per episode",
                    ctx.tick,
                    ctx.seed,
                    t.describe()
                );
            }
        }
        self.handle.update(|s| {
            s.decisions += 1;
            s.total_ms += ms;
            match decision {
                Decision::Reactive => {
                    s.reactive += 1;
                    s.reactive_ms += ms;
                }
                Decision::Planned => {
                    s.planned += 1;
                    s.evaluations += evaluations;
                }
                Decision::Explored => s.explored += 1,
            }
            s.last_action = Some(a.clone());
            s.last_plan = plan;
            if let Some(t) = &skipped {
                s.non_finite.merge(t);
            }
        });
        outputs.set_vector(0, a.view());
        outputs.set_scalar(1, ms);
        outputs.set_scalar(2, decision.code());
        let label = self.actor.teacher_action().filter(|l| l.len() == a.len()).unwrap_or_else(|| Array1::from_elem(a.len(), f32::NAN));
        outputs.put_vector(3, label);
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
/// before the cost is evaluated. `shared` is the reference port actors that
/// plan under this (shared) cost are wired from.
///
/// Hierarchy: a subgoal arriving on `subgoal` (from a `level` node) is set
/// on the cost ([`Modulation::Subgoal`](ami_core::Modulation::Subgoal)),
/// and while one is set `progress` reports on it to the level above:
/// `[subgoal energy of the current state, ticks since the subgoal last
/// changed, the subgoal...]` (wire it back with a delayed edge).
pub struct CostNode {
    cost: SharedCost,
    initial: CostSettings,
    out: Array1<f32>,
    since: u64,
    progress: Array1<f32>,
}

/// Whether two vectors are equal bit for bit (so NaN, a free coordinate,
/// equals NaN): how subgoals are compared.
pub(crate) fn same_bits(a: ndarray::ArrayView1<'_, f32>, b: ndarray::ArrayView1<'_, f32>) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Writes a progress report, `[achieved cost, ticks spent, subgoal...]`,
/// into `buf` (resized only when the subgoal's width changes).
pub(crate) fn write_progress(buf: &mut Array1<f32>, cost: f32, spent: u64, subgoal: ndarray::ArrayView1<'_, f32>) {
    if buf.len() != 2 + subgoal.len() {
        *buf = Array1::zeros(2 + subgoal.len());
    }
    buf[0] = cost;
    buf[1] = spent as f32;
    buf.iter_mut().skip(2).zip(subgoal.iter()).for_each(|(d, &v)| *d = v);
}

/// Applies a subgoal from a `subgoal` port to `cost` when it differs from
/// the one set (bit for bit: NaN marks a free coordinate); returns whether
/// it changed.
pub(crate) fn take_subgoal(cost: &SharedCost, subgoal: Option<ndarray::ArrayView1<'_, f32>>) -> Result<bool> {
    let Some(g) = subgoal else { return Ok(false) };
    let same = cost.read().subgoal().is_some_and(|c| same_bits(c, g));
    if !same {
        cost.write().apply(&ami_core::Modulation::Subgoal(Some(g.to_vec())))?;
    }
    Ok(!same)
}

impl CostNode {
    /// A node evaluating `cost`'s intrinsic terms.
    pub fn new(cost: SharedCost) -> Self {
        let initial = cost.read().settings();
        Self { cost, initial, out: Array1::zeros(1), since: 0, progress: Array1::zeros(0) }
    }
    /// The ports of every cost node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("prev_state", PortType::State, false)
            .input("prev_action", PortType::Action, false)
            .input("modulation", PortType::Modulation, false)
            .input("subgoal", PortType::Subgoal, false)
            .output("cost", PortType::Cost)
            .output("shared", PortType::Model)
            .output("progress", PortType::Progress)
    }
    /// The cost it evaluates (shared).
    pub fn cost(&self) -> &SharedCost {
        &self.cost
    }
}

impl Node for CostNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    /// Starts an episode with the cost's weights and goal as built.
    fn reset(&mut self, _seed: u64) -> Result<()> {
        self.cost.write().restore(&self.initial);
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        for m in inputs.modulations(3)? {
            if matches!(m, ami_core::Modulation::Subgoal(_)) {
                self.since = ctx.tick;
            }
            self.cost.write().apply(m)?;
        }
        if take_subgoal(&self.cost, inputs.vector_opt(4)?)? || ctx.tick == 0 {
            self.since = ctx.tick;
        }
        let next = inputs.vector(0)?;
        {
            let cost = self.cost.read();
            if let (Some(g), Some(e)) = (cost.subgoal(), cost.subgoal_energy(next)?) {
                write_progress(&mut self.progress, e, ctx.tick - self.since, g);
                outputs.set_vector(2, self.progress.view());
            }
        }
        let (Some(prev), Some(action)) = (inputs.vector_opt(1)?, inputs.vector_opt(2)?) else {
            return Ok(());
        };
        self.cost.read().step_energy(0, prev.insert_axis(Axis(0)), action.insert_axis(Axis(0)), next.insert_axis(Axis(0)), self.out.view_mut())?;
        outputs.set_scalar(0, f64::from(self.out[0]));
        Ok(())
    }
}

/// Short-term memory as a node: records each observed transition
/// (`prev_state`, `prev_action`, `cost`, `state`, and whether `state` is
/// terminal from `terminated`, wired from the environment), reports its length on
/// `memory` (the reference port trainers read it through), and saves
/// itself to `save_path` (if set) when the run finishes. The memory is
/// shared: [`MemoryNode::memory`] is a handle others read.
pub struct MemoryNode {
    memory: MemoryHandle,
    save_path: Option<PathBuf>,
    phase: Option<ami_core::RunPhase>,
}

impl MemoryNode {
    /// Wraps a memory; `save_path` is written atomically at finish.
    pub fn new(memory: Box<dyn ami_core::ShortTermMemory>, save_path: Option<PathBuf>) -> Self {
        Self::shared(MemoryHandle::new(memory), save_path)
    }
    /// A node writing a memory shared with others.
    pub fn shared(memory: MemoryHandle, save_path: Option<PathBuf>) -> Self {
        Self { memory, save_path, phase: None }
    }
    /// Records nothing while `phase` is evaluating (evaluation episodes
    /// are not experience).
    pub fn with_phase(mut self, phase: ami_core::RunPhase) -> Self {
        self.phase = Some(phase);
        self
    }
    /// The ports of every memory node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("prev_state", PortType::State, false)
            .input("prev_action", PortType::Action, false)
            .input("cost", PortType::Cost, false)
            .input("terminated", PortType::Done, false)
            .output("memory", PortType::Memory)
    }
    /// The memory (a shared handle).
    pub fn memory(&self) -> &MemoryHandle {
        &self.memory
    }
}

impl Node for MemoryNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let recording = !self.phase.as_ref().is_some_and(|p| p.is_evaluating());
        if let (true, Some(prev), Some(action)) = (recording, inputs.vector_opt(1)?, inputs.vector_opt(2)?) {
            let cost = inputs.scalar_opt(3)?.unwrap_or(f64::NAN) as f32;
            let next = inputs.vector(0)?;
            let terminated = inputs.flag_opt(4)? == Some(true);
            self.memory.lock().push(&TransitionRef {
                t: ctx.tick.saturating_sub(1),
                state: prev,
                action,
                cost,
                next_state: next,
                imagined: false,
                terminated,
            })?;
        }
        let len = self.memory.lock().len();
        outputs.set_scalar(0, len as f64);
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        match &self.save_path {
            Some(p) => self.memory.lock().save(p),
            None => Ok(()),
        }
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A shared module as a node that others refer to (a world model, a
/// critic, a policy): it holds the module's [`Handle`] (shared with the
/// nodes that name it) and writes the handle's version on its one output
/// (`model`, `critic` or `policy`) every tick, so the reference edges show
/// in the graph and order the readers after it. Its optional input
/// `update` takes a tag (a trainer's `fits`): when it grows, the node
/// commits the value staged under it ([`Handle::commit`]) before any reader
/// runs in that tick.
pub struct HandleNode<T: ?Sized> {
    handle: Handle<T>,
    port: &'static str,
    committed: u64,
}

/// A world model as a node (`kind = "world_model"`).
pub type ModelNode = HandleNode<dyn WorldModel>;

impl<T: ?Sized + Send + Sync + 'static> HandleNode<T> {
    /// A node for `handle` with output port `port`.
    pub fn new(handle: Handle<T>, port: &'static str) -> Self {
        Self { handle, port, committed: 0 }
    }
    /// The ports of a node whose output is `port`.
    pub fn ports_for(port: &str) -> NodePorts {
        NodePorts::new().input("update", PortType::Scalar, false).output(port, PortType::Model)
    }
    /// The handle.
    pub fn handle(&self) -> &Handle<T> {
        &self.handle
    }
}

impl<T: ?Sized + Send + Sync + 'static> Node for HandleNode<T> {
    fn ports(&self) -> NodePorts {
        Self::ports_for(self.port)
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        if let Some(tag) = inputs.scalar_opt(0)? {
            let tag = tag as u64;
            if tag > self.committed {
                // Nothing staged under the tag (a fit published directly
                // at an episode start) is not an error.
                self.handle.commit(tag);
                self.committed = tag;
            }
        }
        outputs.set_scalar(0, self.handle.version() as f64);
        Ok(())
    }
}

/// What an environment node reports about the current episode, readable
/// from outside the graph through an [`EnvHandle`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EpisodeStatus {
    /// Sum of rewards since the episode began.
    pub episode_return: f64,
    /// Steps taken since the episode began.
    pub steps: usize,
    /// The last step was terminal.
    pub terminated: bool,
    /// The episode was cut off (by the environment or by its step limit).
    pub truncated: bool,
    /// Whether the episode has succeeded so far, for tasks with a success
    /// criterion ([`Environment::success`]).
    pub success: Option<bool>,
}

impl EpisodeStatus {
    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A handle on an environment node's [`EpisodeStatus`] (cloning shares
/// it).
#[derive(Debug, Clone, Default)]
pub struct EnvHandle(Arc<Mutex<EpisodeStatus>>);

impl EnvHandle {
    /// The status now.
    pub fn status(&self) -> EpisodeStatus {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, s: EpisodeStatus) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// The longest episode the runner lets an environment run (one without a
/// step limit, such as a Gymnasium environment with no `TimeLimit`, is
/// truncated there rather than run for ever).
pub const MAX_EPISODE_STEPS: usize = 1_000_000;

/// The environment as a graph node: `action` (fed back through a delayed
/// edge) -> `observation`, `reward`, `done`, `goal` (the episode's goal
/// as a modulation on tick 0, for goal-conditioned environments) and
/// `terminated` (the step reached a terminal state, as opposed to a time
/// limit: what a memory records for its critic) and `diagnostics` (the
/// true state for traces, when the environment offers one:
/// [`Environment::diagnostics`]). On the
/// first tick of an episode it resets the environment with the episode
/// seed. It ends the episode as truncated after
/// [`Environment::max_steps`] steps even if the environment never says
/// so (and after [`MAX_EPISODE_STEPS`] when it declares no limit), and refuses an action of the wrong width or a non-finite
/// observation with an error naming the environment.
pub struct EnvNode {
    env: Box<dyn Environment>,
    status: EpisodeStatus,
    handle: EnvHandle,
}

impl EnvNode {
    /// Wraps an environment.
    pub fn new(env: Box<dyn Environment>) -> Self {
        Self { env, status: EpisodeStatus::default(), handle: EnvHandle::default() }
    }
    /// The ports of every environment node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("action", PortType::Action, false)
            .output("observation", PortType::Observation)
            .output("reward", PortType::Reward)
            .output("done", PortType::Done)
            .output("goal", PortType::Modulation)
            .output("terminated", PortType::Done)
            .output("diagnostics", PortType::Observation)
    }
    /// Sum of rewards since the episode began.
    pub fn episode_return(&self) -> f64 {
        self.status.episode_return
    }
    /// Steps taken since the episode began.
    pub fn steps(&self) -> usize {
        self.status.steps
    }
    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.status.done()
    }
    /// A handle on the episode's status.
    pub fn handle(&self) -> EnvHandle {
        self.handle.clone()
    }
    fn check_obs(&self, obs: &Array1<f32>, what: &str) -> Result<()> {
        if obs.len() != self.env.obs_dim() {
            return Err(CoreError::shape(
                format!("environment `{}`: {what} observation", self.env.name()),
                format!("length {}", self.env.obs_dim()),
                format!("length {}", obs.len()),
            ));
        }
        if obs.iter().any(|x| !x.is_finite()) {
            return Err(CoreError::module(self.env.name(), format!("{what} returned a non-finite observation {obs}")));
        }
        Ok(())
    }
}

impl Node for EnvNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    fn reset(&mut self, _seed: u64) -> Result<()> {
        self.status = EpisodeStatus::default();
        self.handle.set(self.status);
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        if ctx.tick == 0 {
            let obs = self.env.reset(ctx.seed)?;
            self.check_obs(&obs, "reset")?;
            self.status.success = self.env.success();
            self.handle.set(self.status);
            outputs.set_vector(0, obs.view());
            outputs.set_scalar(1, 0.0);
            outputs.set_flag(2, false);
            outputs.set_flag(4, false);
            if let Some(g) = self.env.goal() {
                outputs.set_modulations(3, vec![ami_core::Modulation::Goal(Some(g.to_vec()))]);
            }
            if let Some(d) = self.env.diagnostics() {
                outputs.set_vector(5, d.view());
            }
            return Ok(());
        }
        if self.status.done() {
            return Err(CoreError::module(self.env.name(), "stepped after the episode ended"));
        }
        let action = match inputs.vector_opt(0)? {
            Some(a) => a.to_owned(),
            None => Array1::zeros(self.env.action_dim()),
        };
        if action.len() != self.env.action_dim() {
            return Err(CoreError::shape(
                format!("{}: action", self.env.name()),
                format!("length {}", self.env.action_dim()),
                format!("length {}", action.len()),
            ));
        }
        let step = self.env.step(action.view())?;
        self.check_obs(&step.observation, "step")?;
        self.status.episode_return += step.reward;
        self.status.steps += 1;
        self.status.terminated = step.terminated;
        self.status.truncated = step.truncated || self.status.steps >= self.env.max_steps().min(MAX_EPISODE_STEPS);
        self.status.success = self.env.success();
        self.handle.set(self.status);
        outputs.set_vector(0, step.observation.view());
        outputs.set_scalar(1, step.reward);
        outputs.set_flag(2, self.status.done());
        outputs.set_flag(4, step.terminated);
        if let Some(d) = self.env.diagnostics() {
            outputs.set_vector(5, d.view());
        }
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A transition's identity, bit for bit.
pub(crate) fn fingerprint(t: &ami_core::Transition) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        h ^= x;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(t.t);
    eat(u64::from(t.cost.to_bits()));
    for v in t.state.iter().chain(&t.action).chain(&t.next_state) {
        eat(u64::from(v.to_bits()));
    }
    h
}

/// A list of state coordinates (`dims`): whole numbers from 0, if given.
pub(crate) fn coordinates(p: &ami_core::Params, name: &str) -> Result<Option<Vec<usize>>> {
    let Some(list) = p.f32_list_opt(name)? else { return Ok(None) };
    list.iter()
        .enumerate()
        .map(|(i, &d)| {
            if d >= 0.0 && d.fract() == 0.0 {
                Ok(d as usize)
            } else {
                Err(CoreError::config(format!("{name}[{i}]"), format!("must be a coordinate index (an integer from 0), got {d}")))
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
