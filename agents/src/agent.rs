//! Ready-made planning agents: a built-in task wired as a dataflow graph
//! (environment, perception, configurator, actor, cost, memory), built from
//! an agent file (or in code) and run episode by episode by an executor.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ami_core::config::AgentGraph;
use ami_core::graph::{
    executor, shared_cost, ActorNode, ConfiguratorNode, CostNode, Executor, ExecutorKind, GraphBuilder, Inputs, MemoryNode, Node, NodePorts, Outputs,
    PerceptionNode, PortType, TickContext, TickExecutor, Value,
};
use ami_core::{CemConfig, CoreError, IdentityPerception, Modulation, MppiConfig, Planner, PlanningActor, RingMemory, ScheduleConfigurator};
use ndarray::Array1;

use crate::env::Environment;
use crate::tasks::TaskKind;

/// Which Mode-2 planner an agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannerKind {
    /// Cross-entropy method.
    Cem,
    /// Model-predictive path integral.
    Mppi,
}

impl FromStr for PlannerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cem" => Ok(PlannerKind::Cem),
            "mppi" => Ok(PlannerKind::Mppi),
            _ => Err(format!("unknown planner `{s}` (expected one of: cem, mppi)")),
        }
    }
}

impl std::fmt::Display for PlannerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlannerKind::Cem => "cem",
            PlannerKind::Mppi => "mppi",
        })
    }
}

/// The planner settings ami uses by default for each built-in task.
pub fn default_cem(task: TaskKind) -> CemConfig {
    match task {
        TaskKind::Pendulum => CemConfig {
            horizon: 30,
            samples: 256,
            iterations: 6,
            elites: 24,
            init_std: 1.0,
            min_std: 0.05,
            momentum: 0.1,
            return_best: true,
            ..CemConfig::default()
        },
        TaskKind::CartPole => CemConfig {
            horizon: 25,
            samples: 128,
            iterations: 4,
            elites: 16,
            init_std: 5.0,
            min_std: 0.5,
            momentum: 0.1,
            return_best: true,
            ..CemConfig::default()
        },
        TaskKind::PointMass => CemConfig {
            horizon: 20,
            samples: 128,
            iterations: 4,
            elites: 16,
            init_std: 0.5,
            min_std: 0.05,
            momentum: 0.1,
            return_best: true,
            ..CemConfig::default()
        },
    }
}

/// The MPPI settings ami uses by default for each built-in task.
pub fn default_mppi(task: TaskKind) -> MppiConfig {
    match task {
        TaskKind::Pendulum => MppiConfig { horizon: 30, samples: 256, iterations: 6, temperature: 0.5, noise_std: 1.0, ..MppiConfig::default() },
        TaskKind::CartPole => MppiConfig { horizon: 25, samples: 128, iterations: 4, temperature: 0.5, noise_std: 5.0, ..MppiConfig::default() },
        TaskKind::PointMass => MppiConfig { horizon: 20, samples: 128, iterations: 4, temperature: 0.1, noise_std: 0.5, ..MppiConfig::default() },
    }
}

/// The environment as a graph node: `action` (fed back through a delayed
/// edge) -> `observation`, `reward`, `done`. On the first tick of an
/// episode it resets the environment with the episode seed.
pub struct EnvNode {
    env: Box<dyn Environment>,
    episode_return: f64,
    steps: usize,
    done: bool,
}

impl EnvNode {
    /// Wraps an environment.
    pub fn new(env: Box<dyn Environment>) -> Self {
        Self { env, episode_return: 0.0, steps: 0, done: false }
    }
    /// Sum of rewards since the episode began.
    pub fn episode_return(&self) -> f64 {
        self.episode_return
    }
    /// Steps taken since the episode began.
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.done
    }
}

impl Node for EnvNode {
    fn ports(&self) -> NodePorts {
        NodePorts::new()
            .input("action", PortType::Action, false)
            .output("observation", PortType::Observation)
            .output("reward", PortType::Reward)
            .output("done", PortType::Done)
    }
    fn reset(&mut self, _seed: u64) -> ami_core::Result<()> {
        self.episode_return = 0.0;
        self.steps = 0;
        self.done = false;
        Ok(())
    }
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> ami_core::Result<()> {
        if ctx.tick == 0 {
            let obs = self.env.reset(ctx.seed);
            outputs.set_vector(0, obs.view());
            outputs.set_scalar(1, 0.0);
            outputs.set_flag(2, false);
            return Ok(());
        }
        if self.done {
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
        let step = self.env.step(action.view());
        self.episode_return += step.reward;
        self.steps += 1;
        self.done = step.terminated || step.truncated;
        outputs.set_vector(0, step.observation.view());
        outputs.set_scalar(1, step.reward);
        outputs.set_flag(2, self.done);
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
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
}

/// A planning agent: a dataflow graph with an environment node, run episode
/// by episode by an [`Executor`].
pub struct Agent {
    exec: Box<dyn Executor>,
    env: String,
    done: (usize, usize),
    reward: (usize, usize),
    plan_ms: Option<(usize, usize)>,
    interrupt: Option<Arc<AtomicBool>>,
}

/// Builds the standard agent graph for `task` with `planner` and the task's
/// default planner settings, through the same agent-file machinery as
/// `ami run FILE` (the file is [`crate::config::task_agent_toml`]):
///
/// ```text
/// env.observation -> perception.observation
/// perception.state -> actor.state, configurator.state, cost.state, memory.state
/// configurator.modulation -> actor.modulation, cost.modulation
/// env.done -> actor.done
/// cost.cost -> memory.cost
/// actor.action -> env.action, cost.prev_action, memory.prev_action   (delayed)
/// perception.state -> cost.prev_state, memory.prev_state             (delayed)
/// ```
pub fn build_agent(task: TaskKind, planner: PlannerKind) -> ami_core::Result<Agent> {
    let text = crate::config::task_agent_toml(task, planner);
    let graph = crate::config::load_str(&text, &format!("<{task}-{planner}>"))?;
    Agent::from_agent_graph(graph, ExecutorKind::Sequential)
}

/// Builds the standard agent graph from its parts, in code (one cost shared
/// by the actor and the cost node), run by the sequential executor.
pub fn build_agent_with(
    env: Box<dyn Environment>,
    model: Arc<dyn ami_core::WorldModel>,
    cost: ami_core::Cost,
    goal: Option<Vec<f32>>,
    planner: Box<dyn Planner>,
) -> ami_core::Result<Agent> {
    let obs_dim = env.obs_dim();
    let action_dim = env.action_dim();
    let state_dim = model.state_dim();
    let cost = shared_cost(cost);
    let mut b = GraphBuilder::new();
    b.add_node("env", EnvNode::new(env));
    b.add_node("perception", PerceptionNode::new(Arc::new(IdentityPerception::new(obs_dim))));
    let start: Vec<Modulation> = goal.map(|g| vec![Modulation::Goal(Some(g))]).unwrap_or_default();
    b.add_node("configurator", ConfiguratorNode::new(Box::new(ScheduleConfigurator::at_start(start))));
    b.add_node("actor", ActorNode::new(Box::new(PlanningActor::new(planner, model)), cost.clone()));
    b.add_node("cost", CostNode::new(cost));
    b.add_node("memory", MemoryNode::new(Box::new(RingMemory::new(state_dim, action_dim, 10_000)?), None));
    b.connect("env.observation", "perception.observation");
    for to in ["actor.state", "configurator.state", "cost.state", "memory.state"] {
        b.connect("perception.state", to);
    }
    b.connect("configurator.modulation", "actor.modulation");
    b.connect("env.done", "actor.done");
    b.connect_delayed("actor.action", "env.action");
    b.connect_delayed("perception.state", "cost.prev_state");
    b.connect_delayed("perception.state", "memory.prev_state");
    b.connect_delayed("actor.action", "cost.prev_action");
    b.connect_delayed("actor.action", "memory.prev_action");
    b.connect("cost.cost", "memory.cost");
    Agent::new(Box::new(TickExecutor::new(b.build()?)), "env", Some("actor"))
}

impl Agent {
    /// An agent over `exec`, whose environment node `env` has outputs
    /// `reward` and `done`; `actor` (if any) reports `plan_ms`.
    pub fn new(exec: Box<dyn Executor>, env: &str, actor: Option<&str>) -> ami_core::Result<Self> {
        let port = |p: &str| {
            exec.output_index(env, p).ok_or_else(|| CoreError::module("agent", format!("the graph has no environment node `{env}` with an output `{p}`")))
        };
        let done = port("done")?;
        let reward = port("reward")?;
        let plan_ms = actor.and_then(|a| exec.output_index(a, "plan_ms"));
        Ok(Self { exec, env: env.to_string(), done, reward, plan_ms, interrupt: None })
    }

    /// An agent from a validated agent file, run by the executor `kind`.
    pub fn from_agent_graph(graph: AgentGraph, kind: ExecutorKind) -> ami_core::Result<Self> {
        let AgentGraph { graph, environment, actors, .. } = graph;
        Self::new(executor(graph, kind), &environment, actors.first().map(String::as_str))
    }

    /// Wraps a sequential executor whose graph has an [`EnvNode`] named
    /// `env` and an actor node named `actor`.
    pub fn from_executor(exec: TickExecutor) -> ami_core::Result<Self> {
        Self::new(Box::new(exec), "env", Some("actor"))
    }

    /// The executor.
    pub fn executor(&self) -> &dyn Executor {
        self.exec.as_ref()
    }

    /// The name of the environment node.
    pub fn environment(&self) -> &str {
        &self.env
    }

    /// Stops episodes when `flag` becomes true (checked after every tick):
    /// the episode ends with an error after every node's `finish` ran.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// Runs one episode with `seed` until the environment reports done.
    /// `on_tick` is called after every tick (for progress display).
    pub fn run_episode(&mut self, seed: u64, mut on_tick: impl FnMut(u64)) -> ami_core::Result<EpisodeResult> {
        self.run_episode_with(seed, |t, _| on_tick(t))
    }

    /// Like [`Agent::run_episode`], with the executor passed to `on_tick`
    /// (to read outputs, e.g. the actions, after every tick).
    pub fn run_episode_with(&mut self, seed: u64, mut on_tick: impl FnMut(u64, &dyn Executor)) -> ami_core::Result<EpisodeResult> {
        self.exec.reset(seed)?;
        let mut plan_ms = 0.0;
        let mut decisions = 0u64;
        let mut episode_return = 0.0f64;
        loop {
            self.exec.tick()?;
            on_tick(self.exec.ticks(), self.exec.as_ref());
            let read = |(n, p): (usize, usize)| self.exec.output_at(n, p);
            episode_return += read(self.reward).and_then(Value::as_scalar).unwrap_or(0.0);
            if read(self.done).and_then(Value::as_flag) == Some(true) {
                break;
            }
            if let Some(ms) = self.plan_ms.and_then(read).and_then(Value::as_scalar) {
                plan_ms += ms;
                decisions += 1;
            }
            if self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                self.exec.finish()?;
                return Err(CoreError::module("agent", format!("interrupted at tick {} of the episode with seed {seed}", self.exec.ticks())));
            }
        }
        self.exec.finish()?;
        Ok(EpisodeResult {
            seed,
            episode_return,
            steps: self.exec.ticks().saturating_sub(1) as usize,
            mean_plan_ms: if decisions == 0 { 0.0 } else { plan_ms / decisions as f64 },
        })
    }

    /// Number of transitions in the agent's memory node (if it has one
    /// named `memory`).
    pub fn memory_len(&self) -> Option<usize> {
        let mut len = None;
        self.exec.inspect("memory", &mut |n| len = n.as_any().and_then(|a| a.downcast_ref::<MemoryNode>()).map(|m| m.memory().len()));
        len
    }
}
