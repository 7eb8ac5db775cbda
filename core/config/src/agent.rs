//! Agents: the standard agent graph (written once, here), the
//! [`AgentBuilder`] that composes one in code from any modules, and the
//! [`Agent`] runner that plays episodes through an executor.
//!
//! The standard agent is
//!
//! ```text
//! env.observation -> perception.observation
//! env.goal -> configurator.goal
//! perception.state -> actor.state, configurator.state, cost.state, memory.state
//! configurator.modulation -> actor.modulation, cost.modulation
//! env.done -> actor.done
//! cost.cost -> memory.cost
//! actor.action -> env.action, cost.prev_action, memory.prev_action   (delayed)
//! perception.state -> cost.prev_state, memory.prev_state             (delayed)
//! ```
//!
//! [`STANDARD_EDGES`] is that list; the builder wires it in code and
//! [`standard_agent_toml`] writes it into agent files (`ami run --task`,
//! `--plugin-task` and the examples), so the three cannot drift.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ami_core::{
    Actor, Configurator, CoreError, Cost, Environment, IdentityPerception, MemoryHandle, ModelHandle, Modulation, ParamValue, Perception, Planner, Result,
    RingMemory, ScheduleConfigurator, Shared, ShortTermMemory, WorldModel,
};
use ami_graph::{executor, Executor, ExecutorKind, GraphBuilder, Value};
use ami_planners::PlanningActor;

use crate::load::AgentGraph;
use crate::nodes::SharedCost;
use crate::nodes::{ActorHandle, ActorNode, ConfiguratorNode, CostNode, EnvHandle, EnvNode, MemoryNode, ModelNode, PerceptionNode};

/// The edges of the standard agent: `(from, to..., delayed)`.
pub const STANDARD_EDGES: &[(&str, &[&str], bool)] = &[
    ("env.observation", &["perception.observation"], false),
    ("env.goal", &["configurator.goal"], false),
    ("perception.state", &["actor.state", "configurator.state", "cost.state", "memory.state"], false),
    ("configurator.modulation", &["actor.modulation", "cost.modulation"], false),
    ("env.done", &["actor.done"], false),
    ("env.terminated", &["memory.terminated"], false),
    ("cost.cost", &["memory.cost"], false),
    ("actor.action", &["env.action", "cost.prev_action", "memory.prev_action"], true),
    ("perception.state", &["cost.prev_state", "memory.prev_state"], true),
];

/// A parameter value in TOML syntax (floats always with a decimal point, so
/// they read back as floats).
pub fn toml_value(v: &ParamValue) -> String {
    match v {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(x) => format!("{x:?}"),
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Str(s) => format!("{s:?}"),
        ParamValue::List(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        ParamValue::Table(t) => format!("{{ {} }}", t.iter().map(|(k, v)| format!("{k} = {}", toml_value(v))).collect::<Vec<_>>().join(", ")),
    }
}

fn params_table(params: &[(String, ParamValue)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let body: Vec<String> = params.iter().map(|(k, v)| format!("{k} = {}", toml_value(v))).collect();
    format!("[nodes.params]\n{}\n", body.join("\n"))
}

/// One node of a generated agent file: implementation and parameters.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    /// The implementation name (`pendulum`, `cem`, `plugin:acrobot/env`).
    pub implementation: String,
    /// Its parameters, in the order written.
    pub params: Vec<(String, ParamValue)>,
}

impl NodeSpec {
    /// An implementation with parameters.
    pub fn new(implementation: &str, params: Vec<(String, ParamValue)>) -> Self {
        Self { implementation: implementation.into(), params }
    }
}

/// The standard agent (see the module docs) as agent-file text: its
/// environment node, its actor node, the built-in perception,
/// configurator, cost and memory, and [`STANDARD_EDGES`]; `[plugins]` is
/// written when `plugins` is not empty (library paths to load).
pub fn standard_agent_toml(name: &str, env: &NodeSpec, actor: &NodeSpec, plugins: &[String]) -> String {
    let mut out = String::new();
    if !plugins.is_empty() {
        out.push_str(&format!("[plugins]\nload = [{}]\n\n", plugins.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")));
    }
    out.push_str(&format!("[agent]\nname = {name:?}\nseed = 0\nepisodes = 10\n\n"));
    let node = |name: &str, kind: &str, spec: &NodeSpec| {
        format!("[[nodes]]\nname = \"{name}\"\nkind = \"{kind}\"\nimplementation = {:?}\n{}\n", spec.implementation, params_table(&spec.params))
    };
    out.push_str(&node("env", "environment", env));
    out.push_str(&node("perception", "perception", &NodeSpec::new("identity", vec![])));
    out.push_str(&node("configurator", "configurator", &NodeSpec::new("schedule", vec![])));
    out.push_str(&node("actor", "actor", actor));
    out.push_str(&node("cost", "cost", &NodeSpec::new("task", vec![])));
    out.push_str(&node("memory", "memory", &NodeSpec::new("ring", vec![("capacity".into(), ParamValue::Int(10_000))])));
    out.push_str(&standard_edges_toml());
    out
}

/// [`STANDARD_EDGES`] in agent-file form.
pub fn standard_edges_toml() -> String {
    let mut out = String::new();
    for (from, to, delayed) in STANDARD_EDGES {
        let to = if to.len() == 1 { format!("{:?}", to[0]) } else { format!("[{}]", to.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ")) };
        out.push_str(&format!("[[edges]]\nfrom = {from:?}\nto = {to}\n"));
        if *delayed {
            out.push_str("delayed = true\n");
        }
        out.push('\n');
    }
    out
}

/// Outcome of one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeResult {
    /// The episode seed.
    pub seed: u64,
    /// Sum of rewards.
    pub episode_return: f64,
    /// Environment steps.
    pub steps: usize,
    /// Mean wall time of a decision of the actor, milliseconds.
    pub mean_plan_ms: f64,
    /// Decisions made by Mode-1 (a policy acted, no planning) and their
    /// mean wall time, milliseconds.
    pub reactive: (u64, f64),
    /// Decisions made by Mode-2 (planned) and their mean wall time.
    pub planned: (u64, f64),
    /// Exploration actions (neither mode) and their mean wall time.
    pub explored: (u64, f64),
    /// Whether the episode succeeded, for tasks with a success criterion
    /// ([`ami_core::Environment::success`]).
    pub success: Option<bool>,
    /// World-model evaluations (one state stepped once) of the episode's
    /// planning, by the actor and every `level` node together.
    pub evaluations: u64,
    /// The modules whose outputs were non-finite while the actor planned
    /// this episode (those samples were skipped), with row counts.
    pub non_finite: ami_core::modules::NonFiniteTally,
}

impl EpisodeResult {
    /// World-model evaluations per decision of the actor (0 without
    /// decisions).
    pub fn evaluations_per_decision(&self) -> f64 {
        let decisions = self.reactive.0 + self.planned.0 + self.explored.0;
        if decisions == 0 {
            0.0
        } else {
            self.evaluations as f64 / decisions as f64
        }
    }
}

/// Typed handles on an agent's modules, readable while and after it runs
/// (no downcasts): the environment's episode status, the actor's statistics
/// and last plan, the memory, and (agents built in code) the world model
/// and the cost.
#[derive(Debug, Clone)]
pub struct Handles {
    /// The environment node's episode status (`None` if the environment
    /// node is not an [`EnvNode`]).
    pub env: Option<EnvHandle>,
    /// The first actor node's statistics and last plan.
    pub actor: Option<ActorHandle>,
    /// The `level` nodes' statistics and subgoals, by node name.
    pub levels: std::collections::BTreeMap<String, crate::level::LevelHandle>,
    /// The first memory node's memory.
    pub memory: Option<MemoryHandle>,
    /// The world model the planner rolls out (agents built in code).
    pub model: Option<ModelHandle>,
    /// The `world_model` nodes' handles by node name (agents from files;
    /// `world_model` for agents built in code).
    pub models: std::collections::BTreeMap<String, ModelHandle>,
    /// The `policy` nodes' handles by node name (agents from files).
    pub policies: std::collections::BTreeMap<String, ami_core::PolicyHandle>,
    /// The cost the actor plans under (agents built in code).
    pub cost: Option<SharedCost>,
    /// The trainer nodes' histories, by node name.
    pub trainers: std::collections::BTreeMap<String, crate::learn::TrainerHandle>,
    /// Learning or evaluating (see [`Agent::set_evaluating`]).
    pub phase: ami_core::RunPhase,
}

/// A planning agent: a dataflow graph with an environment node, run episode
/// by episode by an [`Executor`].
pub struct Agent {
    exec: Box<dyn Executor>,
    env: String,
    done: (usize, usize),
    reward: (usize, usize),
    plan_ms: Option<(usize, usize)>,
    mode: Option<(usize, usize)>,
    interrupt: Option<Arc<AtomicBool>>,
    handles: Handles,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("env", &self.env).field("nodes", &self.exec.node_names()).finish()
    }
}

impl Agent {
    /// An agent over `exec`, whose environment node `env` has outputs
    /// `reward` and `done`; `actor` (if any) reports `plan_ms`.
    pub fn new(exec: Box<dyn Executor>, env: &str, actor: Option<&str>) -> Result<Self> {
        let port = |p: &str| {
            exec.output_index(env, p).ok_or_else(|| CoreError::module("agent", format!("the graph has no environment node `{env}` with an output `{p}`")))
        };
        let done = port("done")?;
        let reward = port("reward")?;
        let plan_ms = actor.and_then(|a| exec.output_index(a, "plan_ms"));
        let mode = actor.and_then(|a| exec.output_index(a, "mode"));
        let mut env_handle = None;
        let (mut actor_handle, mut memory) = (None, None);
        let mut trainers = std::collections::BTreeMap::new();
        let mut levels = std::collections::BTreeMap::new();
        for name in exec.node_names().to_vec() {
            exec.inspect(&name, &mut |n| {
                let Some(any) = n.as_any() else { return };
                if let Some(e) = any.downcast_ref::<EnvNode>() {
                    if name == env {
                        env_handle = Some(e.handle());
                    }
                } else if let Some(a) = any.downcast_ref::<ActorNode>() {
                    if actor_handle.is_none() || Some(name.as_str()) == actor {
                        actor_handle = Some(a.handle());
                    }
                } else if let Some(m) = any.downcast_ref::<MemoryNode>() {
                    memory.get_or_insert_with(|| m.memory().clone());
                } else if let Some(l) = any.downcast_ref::<crate::level::LevelNode>() {
                    levels.insert(name.clone(), l.handle());
                } else if let Some(t) = any.downcast_ref::<crate::learn::TrainerNode>() {
                    trainers.insert(name.clone(), t.handle());
                } else if let Some(t) = any.downcast_ref::<crate::learn::CriticTrainerNode>() {
                    trainers.insert(name.clone(), t.handle());
                } else if let Some(t) = any.downcast_ref::<crate::distill::PolicyTrainerNode>() {
                    trainers.insert(name.clone(), t.handle());
                }
            });
        }
        let handles = Handles {
            env: env_handle,
            actor: actor_handle,
            levels,
            memory,
            model: None,
            models: Default::default(),
            policies: Default::default(),
            cost: None,
            trainers,
            phase: ami_core::RunPhase::new(),
        };
        Ok(Self { exec, env: env.to_string(), done, reward, plan_ms, mode, interrupt: None, handles })
    }

    /// An agent from a validated agent file, run by the executor `kind`.
    pub fn from_agent_graph(graph: AgentGraph, kind: ExecutorKind) -> Result<Self> {
        let AgentGraph { graph, environment, actors, models, policies, phase, .. } = graph;
        let mut agent = Self::new(executor(graph, kind), &environment, actors.first().map(String::as_str))?;
        agent.handles.models = models;
        agent.handles.policies = policies;
        agent.handles.phase = phase;
        Ok(agent)
    }

    /// The executor.
    pub fn executor(&self) -> &dyn Executor {
        self.exec.as_ref()
    }

    /// The name of the environment node.
    pub fn environment(&self) -> &str {
        &self.env
    }

    /// The actor's count of non-finite outputs since the agent was built.
    fn non_finite(&self) -> ami_core::modules::NonFiniteTally {
        self.handles.actor.as_ref().map(|a| a.stats().non_finite).unwrap_or_default()
    }

    /// World-model evaluations of the actor and the levels since the agent
    /// was built.
    fn evaluations(&self) -> u64 {
        self.handles.actor.as_ref().map_or(0, |a| a.stats().evaluations) + self.handles.levels.values().map(|l| l.stats().evaluations).sum::<u64>()
    }

    /// Typed handles on the agent's modules.
    pub fn handles(&self) -> &Handles {
        &self.handles
    }

    /// The memory (the first memory node's), to sample from or save.
    pub fn memory(&self) -> Option<&MemoryHandle> {
        self.handles.memory.as_ref()
    }

    /// Switches the agent between learning episodes (the default: trainers
    /// train, the memory records, actors explore as configured) and
    /// evaluation episodes (none of that). Call between episodes.
    pub fn set_evaluating(&mut self, on: bool) {
        self.handles.phase.set_evaluating(on);
    }

    /// Stops episodes when `flag` becomes true (checked after every tick):
    /// the episode ends with an error after every node's `finish` ran.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// Ends the run: every node's `finish` (memories with a `save_path` are
    /// written, once, however many episodes ran). Call it when the last
    /// episode is done; dropping the agent finishes it too, but then an
    /// error (a full disk) is lost. An episode that fails or is
    /// interrupted finishes the agent itself before returning its error.
    pub fn finish(&mut self) -> Result<()> {
        self.exec.finish()
    }

    /// Runs one episode with `seed` until the environment reports done.
    /// `on_tick` is called after every tick (for progress display).
    pub fn run_episode(&mut self, seed: u64, mut on_tick: impl FnMut(u64)) -> Result<EpisodeResult> {
        self.run_episode_with(seed, |t, _| on_tick(t))
    }

    /// Like [`Agent::run_episode`], with the executor passed to `on_tick`
    /// (to read outputs, e.g. the actions, after every tick).
    pub fn run_episode_with(&mut self, seed: u64, mut on_tick: impl FnMut(u64, &dyn Executor)) -> Result<EpisodeResult> {
        self.exec.reset(seed)?;
        let evaluations_before = self.evaluations();
        let non_finite_before = self.non_finite();
        let mut plan_ms = 0.0;
        let mut decisions = 0u64;
        // (count, total ms) of Mode-1 and Mode-2 decisions.
        let mut modes = [(0u64, 0.0f64); 3];
        let mut episode_return = 0.0f64;
        loop {
            if let Err(e) = self.exec.tick() {
                // Whatever the nodes must not lose (the memory) is flushed
                // before the error is reported.
                let _ = self.exec.finish();
                return Err(e);
            }
            on_tick(self.exec.ticks(), self.exec.as_ref());
            let read = |(n, p): (usize, usize)| self.exec.output_at(n, p);
            episode_return += read(self.reward).and_then(Value::as_scalar).unwrap_or(0.0);
            if read(self.done).and_then(Value::as_flag) == Some(true) {
                break;
            }
            if let Some(ms) = self.plan_ms.and_then(read).and_then(Value::as_scalar) {
                plan_ms += ms;
                decisions += 1;
                let mode = self.mode.and_then(read).and_then(Value::as_scalar).unwrap_or(2.0);
                let m = &mut modes[if mode > 2.5 { 2 } else { usize::from(mode < 1.5) }];
                m.0 += 1;
                m.1 += ms;
            }
            if self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                self.exec.finish()?;
                return Err(CoreError::module("agent", format!("interrupted at tick {} of the episode with seed {seed}", self.exec.ticks())));
            }
        }
        // Background runs still in flight count in this episode.
        self.exec.settle()?;
        let success = self.handles.env.as_ref().and_then(|e| e.status().success);
        Ok(EpisodeResult {
            success,
            evaluations: self.evaluations() - evaluations_before,
            non_finite: self.non_finite().since(&non_finite_before),
            seed,
            episode_return,
            steps: self.exec.ticks().saturating_sub(1) as usize,
            mean_plan_ms: if decisions == 0 { 0.0 } else { plan_ms / decisions as f64 },
            reactive: (modes[1].0, modes[1].1 / modes[1].0.max(1) as f64),
            planned: (modes[0].0, modes[0].1 / modes[0].0.max(1) as f64),
            explored: (modes[2].0, modes[2].1 / modes[2].0.max(1) as f64),
        })
    }
}

enum ActorChoice {
    None,
    Planner(Box<dyn Planner>),
    Actor(Box<dyn Actor>),
}

/// Composes the standard agent in code, from any modules: every part but
/// the environment and the actor has a default, and each can be replaced.
///
/// ```
/// use ami_config::AgentBuilder;
/// use ami_core::{Bounds, Cost, Environment, GoalDistance, LinearModel, Step};
/// use ami_planners::{Cem, CemConfig};
/// use ndarray::{array, Array1, Array2, ArrayView1};
///
/// // A 1-D integrator that must reach 3.0.
/// struct Line(f32, usize);
/// impl Environment for Line {
///     fn name(&self) -> &str { "line" }
///     fn obs_dim(&self) -> usize { 1 }
///     fn action_dim(&self) -> usize { 1 }
///     fn action_bounds(&self) -> Bounds { Bounds::symmetric(1, 1.0) }
///     fn max_steps(&self) -> usize { 20 }
///     fn reset(&mut self, _seed: u64) -> ami_core::Result<Array1<f32>> { self.0 = 0.0; self.1 = 0; Ok(array![0.0]) }
///     fn step(&mut self, a: ArrayView1<'_, f32>) -> ami_core::Result<Step> {
///         self.0 += a[0].clamp(-1.0, 1.0);
///         self.1 += 1;
///         Ok(Step { observation: array![self.0], reward: -f64::from((self.0 - 3.0).abs()), terminated: false, truncated: false })
///     }
/// }
///
/// let mut cost = Cost::new();
/// cost.add_intrinsic(std::sync::Arc::new(GoalDistance::new(1)), 1.0).unwrap();
/// let cem = Cem::new(CemConfig { horizon: 5, samples: 64, iterations: 3, ..CemConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap();
/// let mut agent = AgentBuilder::new(Line(0.0, 0))
///     .model(LinearModel::new(Array2::eye(1), Array2::eye(1)).unwrap())
///     .cost(cost)
///     .goal(vec![3.0])
///     .planner(cem)
///     .build()
///     .unwrap();
/// let r = agent.run_episode(0, |_| {}).unwrap();
/// assert_eq!(r.steps, 20); // the runner enforces max_steps
/// let memory = agent.memory().unwrap();
/// assert_eq!(memory.lock().len(), 20);
/// assert!((agent.handles().actor.as_ref().unwrap().stats().last_action.unwrap()[0]).abs() < 0.5);
/// ```
pub struct AgentBuilder {
    env: Box<dyn Environment>,
    perception: Option<Arc<dyn Perception>>,
    configurator: Option<Box<dyn Configurator>>,
    memory: Option<Box<dyn ShortTermMemory>>,
    actor: ActorChoice,
    model: Option<ModelHandle>,
    cost: Option<Cost>,
    goal: Option<Vec<f32>>,
    executor: ExecutorKind,
}

impl AgentBuilder {
    /// Starts an agent acting in `env`.
    pub fn new(env: impl Environment + 'static) -> Self {
        Self::boxed(Box::new(env))
    }
    /// Starts an agent acting in a boxed environment.
    pub fn boxed(env: Box<dyn Environment>) -> Self {
        Self {
            env,
            perception: None,
            configurator: None,
            memory: None,
            actor: ActorChoice::None,
            model: None,
            cost: None,
            goal: None,
            executor: ExecutorKind::Sequential,
        }
    }
    /// Perception (default: the identity on observations).
    pub fn perception(mut self, p: impl Perception + 'static) -> Self {
        self.perception = Some(Arc::new(p));
        self
    }
    /// Configurator (default: one that sets [`AgentBuilder::goal`] at tick 0).
    pub fn configurator(mut self, c: impl Configurator + 'static) -> Self {
        self.configurator = Some(Box::new(c));
        self
    }
    /// Short-term memory (default: a ring of 10 000 transitions).
    pub fn memory(mut self, m: impl ShortTermMemory + 'static) -> Self {
        self.memory = Some(Box::new(m));
        self
    }
    /// A Mode-2 planner: the actor plans with it through the world model.
    pub fn planner(mut self, p: impl Planner + 'static) -> Self {
        self.actor = ActorChoice::Planner(Box::new(p));
        self
    }
    /// A boxed planner.
    pub fn boxed_planner(mut self, p: Box<dyn Planner>) -> Self {
        self.actor = ActorChoice::Planner(p);
        self
    }
    /// Any actor instead of a planner (a Mode-1 policy, a plugin's actor).
    pub fn actor(mut self, a: impl Actor + 'static) -> Self {
        self.actor = ActorChoice::Actor(Box::new(a));
        self
    }
    /// The world model the planner rolls out.
    pub fn model(mut self, m: impl WorldModel + 'static) -> Self {
        self.model = Some(ModelHandle::of(m));
        self
    }
    /// The world model as a shared handle (publish new versions to it while
    /// the agent runs).
    pub fn model_handle(mut self, m: ModelHandle) -> Self {
        self.model = Some(m);
        self
    }
    /// The cost the actor plans under and the cost node evaluates.
    pub fn cost(mut self, c: Cost) -> Self {
        self.cost = Some(c);
        self
    }
    /// The goal set at tick 0 (checked against the cost's terms).
    pub fn goal(mut self, g: Vec<f32>) -> Self {
        self.goal = Some(g);
        self
    }
    /// The executor (default: sequential; both give the same actions).
    pub fn executor(mut self, kind: ExecutorKind) -> Self {
        self.executor = kind;
        self
    }

    /// Checks the parts against each other and wires the standard agent.
    /// Refused here, not at tick 0: a planner without a world model, widths
    /// that disagree (the model's actions against the environment's bounds,
    /// the model's states against perception's), a gradient planner with a
    /// model or a cost term without gradients, a goal whose width the cost's
    /// terms do not read.
    pub fn build(self) -> Result<Agent> {
        let AgentBuilder { env, perception, configurator, memory, actor, model, cost, goal, executor: kind } = self;
        let bad = |field: &str, m: String| Err(CoreError::config(field, m));
        let action_dim = env.action_dim();
        let bounds = env.action_bounds();
        if bounds.dim() != action_dim {
            return bad("environment", format!("`{}` has bounds of width {} and actions of width {action_dim}", env.name(), bounds.dim()));
        }
        let perception = perception.unwrap_or_else(|| Arc::new(IdentityPerception::new(env.obs_dim())));
        if perception.obs_dim() != env.obs_dim() {
            return bad(
                "perception",
                format!("reads observations of width {}, the environment `{}` gives {}", perception.obs_dim(), env.name(), env.obs_dim()),
            );
        }
        let state_dim = perception.state_dim();
        let cost = cost.unwrap_or_default();
        if let Some(g) = &goal {
            cost.check_goal(g.len())?;
        }
        if let Some(d) = env.goal_dim() {
            cost.check_goal(d).map_err(|e| CoreError::config("goal", format!("the environment `{}` sets goals of width {d} per episode: {e}", env.name())))?;
        }
        let actor: Box<dyn Actor> = match actor {
            ActorChoice::None => return bad("actor", "the agent has no actor: call .planner(...) or .actor(...)".into()),
            ActorChoice::Actor(a) => a,
            ActorChoice::Planner(p) => {
                let Some(model) = &model else { return bad("model", "a planner needs a world model: call .model(...)".into()) };
                if cost.term_names().is_empty() {
                    return bad("cost", "a planner needs a cost to minimise (this one has no terms): call .cost(...)".into());
                }
                let m = model.get();
                crate::builtins::check_planner_fits(p.as_ref(), m.as_ref(), &cost, action_dim)?;
                if m.state_dim() != state_dim {
                    return bad("model", format!("the world model's states have width {}, perception's {state_dim}", m.state_dim()));
                }
                Box::new(PlanningActor::with_handle(p, model.clone()))
            }
        };
        if actor.action_dim() != action_dim {
            return bad("actor", format!("acts with width {}, the environment takes {action_dim}", actor.action_dim()));
        }
        let memory = match memory {
            Some(m) => m,
            None => Box::new(RingMemory::new(state_dim, action_dim, 10_000)?),
        };
        let configurator =
            configurator.unwrap_or_else(|| Box::new(ScheduleConfigurator::at_start(goal.map(|g| vec![Modulation::Goal(Some(g))]).unwrap_or_default())));
        let cost = Shared::of(cost);
        let memory = MemoryHandle::new(memory);
        let mut b = GraphBuilder::new();
        b.add_node("env", EnvNode::new(env));
        b.add_node("perception", PerceptionNode::new(perception));
        b.add_node("configurator", ConfiguratorNode::new(configurator));
        b.add_node("actor", ActorNode::new(actor, cost.clone()));
        b.add_node("cost", CostNode::new(cost.clone()));
        b.add_node("memory", MemoryNode::shared(memory, None));
        if let Some(m) = &model {
            b.add_node("world_model", ModelNode::new(m.clone(), "model"));
            b.connect("world_model.model", "actor.model");
        }
        for (from, to, delayed) in STANDARD_EDGES {
            for t in *to {
                if *delayed {
                    b.connect_delayed(from, t);
                } else {
                    b.connect(from, t);
                }
            }
        }
        let mut agent = Agent::new(executor(b.build()?, kind), "env", Some("actor"))?;
        if let Some(m) = &model {
            agent.handles.models.insert("world_model".into(), m.clone());
        }
        agent.handles.model = model;
        agent.handles.cost = Some(cost);
        Ok(agent)
    }
}
