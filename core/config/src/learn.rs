//! Learning in agent files: the `learned` world model, the `world_model`
//! trainer node that fits it from the memory between episodes, and the
//! exploration a planning actor does before it has a model worth planning
//! with.
//!
//! A trainer trains when an episode starts (in `reset`), on everything the
//! memory holds, and publishes the new model to the world model's handle
//! before the episode's first tick, so every reader sees one model for a
//! whole episode and the learned weights are the same bit for bit in the
//! sequential and the parallel executor.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ami_core::Critic as _;
use ami_core::{ActionSpace, Actor, CoreError, Cost, MemoryHandle, ModelHandle, Params, Plan, Result, RunPhase};
use ami_graph::{Inputs, Node, NodePorts, Outputs, PortType, TickContext};
use ami_learn::{
    fit, fit_critic, io, Activation, AdamConfig, Chunking, CriticData, CriticFitConfig, Dataset, Ensemble, EnsembleSpec, FitConfig, FitReport, LearnedModel,
    MlpCritic, Propagation, Trainer,
};
use ami_planners::kernels::pool::Pool;
use ndarray::{Array1, ArrayView1};
use rand::Rng;

use crate::nodes::{fingerprint, ModelNode};
use crate::registry::{BuildContext, Built, Implementation, ModuleKind};
use ami_core::{ParamSpec, ParamType, ParamValue};

/// The parameters of the `learned` world model.
fn learned_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("width", ParamType::int(1, 4096), "width of each hidden layer").default(ParamValue::Int(200)),
        ParamSpec::new("layers", ParamType::int(1, 16), "number of hidden layers").default(ParamValue::Int(3)),
        ParamSpec::new("activation", ParamType::string(), "hidden activation: relu (plans on the fused SIMD kernels) or silu")
            .default(ParamValue::Str("relu".into())),
        ParamSpec::new("members", ParamType::int(1, 64), "ensemble members (PETS: 5)").default(ParamValue::Int(1)),
        ParamSpec::new("probabilistic", ParamType::Bool, "predict a log-variance too and train on the Gaussian NLL").default(ParamValue::Bool(false)),
        ParamSpec::new(
            "propagation",
            ParamType::string(),
            "how an ensemble predicts: ts1 (trajectory sampling, one rollout per member, members taken in turn each step), ts_inf (each rollout stays with one member) or mean",
        )
        .default(ParamValue::Str("ts1".into())),
        ParamSpec::new("risk", ParamType::float(-100.0, 100.0), "weight of the members' energy spread added to their mean (ts1 and ts_inf)")
            .default(ParamValue::Float(0.0)),
        ParamSpec::new("load", ParamType::string(), "start from these weights (safetensors, PyTorch layout; the file sets the shape)"),
        ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the initial weights").default(ParamValue::Int(0)),
        ParamSpec::new(
            "dims",
            ParamType::FloatList { min_len: 1, max_len: 4096 },
            "the model of a planning level: its state is these coordinates of the agent's state (default: all of them)",
        ),
        ParamSpec::new(
            "step_ticks",
            ParamType::int(1, 1_000_000),
            "the model of a planning level: one step stands for this many agent steps, its action the mean of theirs (the trainer fits it to such chunks of the memory)",
        )
        .default(ParamValue::Int(1)),
    ]
}

/// What one step of a `learned` node's model stands for (`dims`,
/// `step_ticks`), checked against the agent's state.
fn learned_chunking(p: &Params, state_dim: usize) -> Result<Chunking> {
    let c = Chunking { dims: crate::nodes::coordinates(p, "dims")?.unwrap_or_else(|| (0..state_dim).collect()), ticks: p.usize("step_ticks")? };
    c.check(state_dim)?;
    Ok(c)
}

/// The shape a `learned` node's parameters describe.
fn learned_spec(ctx: &BuildContext<'_>, p: &Params, chunking: &Chunking) -> Result<EnsembleSpec> {
    let task = ctx.task()?;
    Ok(EnsembleSpec {
        state_dim: chunking.dims.len(),
        action_dim: task.action_dim,
        hidden: vec![p.usize("width")?; p.usize("layers")?],
        activation: Activation::parse(p.str_opt("activation")?.unwrap_or("relu"))?,
        members: p.usize("members")?,
        probabilistic: p.bool("probabilistic")?,
        min_logvar: -10.0,
        max_logvar: 0.5,
    })
}

/// `world_model` implementation `learned`.
pub fn learned_model() -> Implementation {
    Implementation::new(
        ModuleKind::WorldModel,
        "learned",
        "a residual MLP ensemble learned from memory by a trainer node (deterministic or probabilistic, PETS trajectory sampling)",
        ModelNode::ports_for("model"),
        learned_params(),
        |ctx, p| {
            let propagation = Propagation::parse(p.str_opt("propagation")?.unwrap_or("ts1"))?;
            let risk = p.f32("risk")?;
            let task = ctx.task()?;
            let chunking = learned_chunking(p, task.obs_dim)?;
            let ens = match p.str_opt("load")? {
                Some(path) => {
                    let path = ctx.path(path);
                    let e = io::load(&path).map_err(|e| CoreError::config("load", e.to_string()))?;
                    if (e.spec().state_dim, e.spec().action_dim) != (chunking.dims.len(), task.action_dim) {
                        return Err(CoreError::config(
                            "load",
                            format!(
                                "{}: the model's states and actions are {} and {} wide, and this node's {} (dims {:?}) and {} (the environment's)",
                                path.display(),
                                e.spec().state_dim,
                                e.spec().action_dim,
                                chunking.dims.len(),
                                chunking.dims,
                                task.action_dim
                            ),
                        ));
                    }
                    e
                }
                None => Ensemble::new(learned_spec(ctx, p, &chunking)?, p.usize("seed")? as u64)?,
            };
            let mut learned = LearnedModel::new(ens, propagation, risk);
            if !chunking.is_identity(task.obs_dim) {
                learned = learned.with_chunking(chunking);
            }
            let model = ModelHandle::of(learned);
            Ok(Built { model: Some(model.clone()), ..Built::node(ModelNode::new(model, "model")) })
        },
    )
}

/// One fit a trainer ran.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRecord {
    /// The episode the fit ran in (counting learning episodes from 0).
    pub episode: usize,
    /// The tick it ran at: 0 for the fit at the episode's start, else a
    /// fit during the episode (`every_ticks`).
    pub tick: u64,
    /// Transitions in the memory.
    pub experience: usize,
    /// What the fit did.
    pub report: FitReport,
}

/// A trainer's history, readable while and after the agent runs.
#[derive(Debug, Clone, Default)]
pub struct TrainerHandle {
    records: Arc<Mutex<Vec<TrainRecord>>>,
}

impl TrainerHandle {
    /// Every fit so far.
    pub fn records(&self) -> Vec<TrainRecord> {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// The last fit.
    pub fn last(&self) -> Option<TrainRecord> {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).last().cloned()
    }
    pub(crate) fn push(&self, r: TrainRecord) {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
}

/// The `world_model` trainer as a node (see the module docs).
pub struct TrainerNode {
    trainer: Trainer,
    model: ModelHandle,
    memory: MemoryHandle,
    phase: RunPhase,
    cfg: FitConfig,
    min_transitions: usize,
    every: usize,
    every_ticks: u64,
    rate: usize,
    reinit: bool,
    seed: u64,
    save_path: Option<PathBuf>,
    propagation: Propagation,
    risk: f32,
    /// The model's step in agent steps and coordinates, if not one step
    /// of the whole state.
    chunking: Option<Chunking>,
    episodes: usize,
    fits: u64,
    trained_on: (usize, Option<u64>),
    handle: TrainerHandle,
}

impl TrainerNode {
    /// The history handle.
    pub fn handle(&self) -> TrainerHandle {
        self.handle.clone()
    }
    /// The ports: the world model and the memory it reads (reference
    /// ports), and the number of fits so far.
    pub fn ports() -> NodePorts {
        NodePorts::new().input("model", PortType::Model, false).input("memory", PortType::Memory, false).output("fits", PortType::Scalar)
    }

    /// Fits to the memory's first `rows` transitions (all of them: `None`)
    /// if they are new and enough; at an episode start (`tick` 0) publishes
    /// the model, during an episode stages it under the new `fits` count
    /// for the model node to commit (see [`TrainerNode::tick`]).
    fn train(&mut self, rows: Option<usize>, tick: u64) -> Result<()> {
        let (data, seen) = {
            let mem = self.memory.lock();
            let n = rows.unwrap_or(mem.len()).min(mem.len());
            // A background run may read the memory up to `rate` ticks late:
            // refuse (deterministically, from n) once it could have filled.
            if rows.is_some() && n + self.rate > mem.capacity() {
                return Err(CoreError::config(
                    "every_ticks",
                    format!(
                        "fits during an episode read the memory while it records, which needs a memory that never fills: {n} transitions of its capacity of {} are used (raise the memory's `capacity`)",
                        mem.capacity()
                    ),
                ));
            }
            // New data: more transitions, or (a full ring) a different
            // newest one, compared bit for bit (NaN costs compare equal).
            let newest = n.checked_sub(1).and_then(|i| mem.get(i)).map(|t| fingerprint(&t));
            let seen = (n, newest);
            if n < self.min_transitions || seen == self.trained_on {
                return Ok(());
            }
            let data = match &self.chunking {
                Some(c) => Dataset::from_memory_chunks(&**mem, n, c)?,
                None => Dataset::from_memory_prefix(&**mem, n)?,
            };
            if let (Some(c), true) = (&self.chunking, data.len() < self.min_transitions) {
                if data.is_empty() {
                    return Err(CoreError::config(
                        "step_ticks",
                        format!(
                            "the memory holds {n} transitions but no run of {} consecutive ones of one episode (episodes shorter than `step_ticks`, or a memory node of rate above 1?): nothing to fit the model to",
                            c.ticks
                        ),
                    ));
                }
                return Ok(());
            }
            (data, seen)
        };
        self.fits += 1;
        if self.reinit {
            let spec = self.trainer.ensemble().spec().clone();
            self.trainer.reset_to(Ensemble::new(spec, ami_core::rng::derive_seed(self.seed, &format!("init {}", self.fits)))?)?;
        }
        let cfg = FitConfig { seed: ami_core::rng::derive_seed(self.seed, &format!("fit {}", self.fits)), ..self.cfg.clone() };
        let report = fit(&mut self.trainer, &data, &cfg, &mut |_, _, _| {})?;
        let ens = self.trainer.ensemble().clone();
        if let Some(p) = &self.save_path {
            io::save(&ens, p)?;
        }
        let mut model = LearnedModel::new(ens, self.propagation, self.risk);
        if let Some(c) = &self.chunking {
            model = model.with_chunking(c.clone());
        }
        let model = Arc::new(model);
        if tick == 0 {
            self.model.publish_model(model)?;
        } else {
            self.model.stage_model(self.fits, model)?;
        }
        self.trained_on = seen;
        let episode = if tick == 0 { self.episodes } else { self.episodes.saturating_sub(1) };
        self.handle.records.lock().unwrap_or_else(|p| p.into_inner()).push(TrainRecord { episode, tick, experience: data.len(), report });
        Ok(())
    }
}

impl Node for TrainerNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    /// Trains when a learning episode is due (every `every`-th). Before an
    /// evaluation episode it runs the fit the next learning episode would
    /// run (if that one is due and the memory has grown), so the
    /// evaluation sees a model of all the experience so far and learning
    /// gives the same weights with or without evaluations. Evaluation
    /// episodes are not counted.
    fn reset(&mut self, _seed: u64) -> Result<()> {
        let evaluating = self.phase.is_evaluating();
        // A fit staged too late in the last episode for its commit: the
        // newest model, so it takes over now (and is what this reset's fit,
        // if the memory has grown, continues from).
        self.model.commit_latest();
        if self.episodes.is_multiple_of(self.every) {
            self.train(None, 0)?;
        }
        if !evaluating {
            self.episodes += 1;
        }
        Ok(())
    }
    /// With `every_ticks` = N, fits again at ticks N, 2N, ... of learning
    /// episodes, on the transitions the memory held at that tick (its
    /// `memory` input). The new model is staged, not published: its number
    /// goes out on `fits`, and the model node commits it when that value
    /// reaches its `update` input (an edge `trainer.fits -> model.update`),
    /// so the planner switches models at a tick fixed by the graph (the
    /// trainer's `rate` later for a background trainer, the next tick over
    /// a delayed edge), the same in both executors and whatever the fit's
    /// duration.
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        if self.every_ticks > 0 && ctx.tick > 0 && ctx.tick.is_multiple_of(self.every_ticks) && !self.phase.is_evaluating() {
            let rows = inputs.scalar_opt(1)?.map(|n| n as usize);
            if rows.is_none() {
                return Err(CoreError::config("every_ticks", "fits during an episode need the memory's length on the trainer's `memory` input"));
            }
            self.train(rows, ctx.tick)?;
        }
        outputs.set_scalar(0, self.fits as f64);
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// `trainer` implementation `world_model`.
pub fn world_model_trainer() -> Implementation {
    Implementation::new(
        ModuleKind::Trainer,
        "world_model",
        "fits a `learned` world model to the memory when an episode starts, and every `every_ticks` ticks during episodes (bootstrapped ensemble members, held-out early stopping, NaN guard)",
        TrainerNode::ports(),
        vec![
            ParamSpec::new("model", ParamType::node("world_model"), "the `learned` world model node to train").required(),
            ParamSpec::new("memory", ParamType::node("memory"), "the memory node to learn from").required(),
            ParamSpec::new("epochs", ParamType::int(1, 100_000), "passes over the data per fit").default(ParamValue::Int(50)),
            ParamSpec::new("batch", ParamType::int(1, 65_536), "rows per member per Adam step").default(ParamValue::Int(256)),
            ParamSpec::new("max_steps", ParamType::int(0, i64::MAX), "at most this many Adam steps per fit (0: no limit)").default(ParamValue::Int(0)),
            ParamSpec::new("lr", ParamType::float(1e-9, 10.0), "Adam's learning rate").default(ParamValue::Float(1e-3)),
            ParamSpec::new("weight_decay", ParamType::float(0.0, 10.0), "L2 penalty added to the gradient").default(ParamValue::Float(0.0)),
            ParamSpec::new("holdout", ParamType::float(0.0, 0.89), "fraction of the data held out for validation").default(ParamValue::Float(0.1)),
            ParamSpec::new("keep_best", ParamType::Bool, "keep the epoch with the best held-out loss").default(ParamValue::Bool(true)),
            ParamSpec::new("bootstrap", ParamType::Bool, "each member trains on its own bootstrap resample").default(ParamValue::Bool(true)),
            ParamSpec::new("reinit", ParamType::Bool, "start every fit from fresh weights instead of the last model").default(ParamValue::Bool(false)),
            ParamSpec::new("min_transitions", ParamType::int(2, i64::MAX), "train once the memory holds this many transitions (a level's model: this many runs of `step_ticks`)")
                .default(ParamValue::Int(100)),
            ParamSpec::new("every", ParamType::int(1, 1_000_000), "train at the start of every N-th episode").default(ParamValue::Int(1)),
            ParamSpec::new(
                "every_ticks",
                ParamType::int(0, i64::MAX),
                "also train at every N-th tick of learning episodes, the model switching when `fits` reaches the model's `update` input (0: only at episode starts)",
            )
            .default(ParamValue::Int(0)),
            ParamSpec::new("threads", ParamType::int(0, 256), "training threads (0: one per core)").default(ParamValue::Int(0)),
            ParamSpec::new("save_path", ParamType::string(), "write the weights here after every fit (safetensors, relative to the agent file)"),
            ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the splits, resamples and batch order").default(ParamValue::Int(0)),
        ],
        |ctx, p| {
            let model = ctx.world_model(p, "model")?;
            let memory = ctx.memory(p, "memory")?;
            let current = model.get();
            let Some(learned) = current.as_any().and_then(|a| a.downcast_ref::<LearnedModel>()) else {
                return Err(CoreError::config("model", "the trainer trains `learned` world models only: set that node's implementation = \"learned\""));
            };
            let threads = threads_param(p)?;
            let adam = AdamConfig { lr: p.f32("lr")?, weight_decay: p.f32("weight_decay")?, ..AdamConfig::default() };
            let cfg = FitConfig {
                epochs: p.usize("epochs")?,
                batch: p.usize("batch")?,
                holdout: p.f32("holdout")?,
                bootstrap: p.bool("bootstrap")?,
                keep_best: p.bool("keep_best")?,
                max_steps: p.usize("max_steps")?,
                seed: 0,
            };
            let every_ticks = p.usize("every_ticks")? as u64;
            if every_ticks > 0 && !every_ticks.is_multiple_of(u64::from(ctx.rate.max(1))) {
                return Err(CoreError::config(
                    "every_ticks",
                    format!("{every_ticks} is not a multiple of the node's rate ({}): the trainer only runs every `rate` ticks (set rate = every_ticks)", ctx.rate),
                ));
            }
            let save_path = save_path_param(ctx, p)?;
            let node = TrainerNode {
                trainer: Trainer::with_pool(learned.ensemble().clone(), adam, Arc::new(Pool::new(threads))),
                propagation: learned.propagation(),
                risk: learned.risk(),
                chunking: learned.chunking().cloned(),
                model,
                memory,
                phase: ctx.phase.clone(),
                cfg,
                min_transitions: p.usize("min_transitions")?,
                every: p.usize("every")?,
                every_ticks,
                rate: ctx.rate.max(1) as usize,
                reinit: p.bool("reinit")?,
                seed: p.usize("seed")? as u64,
                save_path,
                episodes: 0,
                fits: 0,
                trained_on: (0, None),
                handle: TrainerHandle::default(),
            };
            Ok(Built::node(node))
        },
    )
}

/// The exploration parameters every planning actor takes.
pub fn exploration_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("explore_episodes", ParamType::int(0, 1_000_000), "act by exploring instead of planning in the first N learning episodes")
            .default(ParamValue::Int(0)),
        ParamSpec::new(
            "explore",
            ParamType::string(),
            "how to explore: random (uniform in the action bounds, or a uniform choice of discrete actions) or noisy (the plan's action plus Gaussian noise, then the nearest discrete action)",
        )
        .default(ParamValue::Str("random".into())),
        ParamSpec::new("explore_noise", ParamType::float(0.0, 1e6), "noise std of `noisy` exploration, as a fraction of each action's range")
            .default(ParamValue::Float(0.3)),
        ParamSpec::new(
            "explore_hold",
            ParamType::int(1, 1_000_000),
            "`random` exploration holds each action this many ticks (data for a planning level's model, whose step is many ticks)",
        )
        .default(ParamValue::Int(1)),
    ]
}

/// How an actor explores.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Explore {
    Random,
    Noisy(f32),
}

/// An actor that explores in its first learning episodes and acts like
/// the actor it wraps afterwards and in every evaluation episode.
pub struct ExploringActor {
    inner: Box<dyn Actor>,
    space: ActionSpace,
    explore: Explore,
    /// Ticks a random action is held.
    hold: usize,
    /// The random action held and the ticks it has been acted.
    held: Option<(Array1<f32>, usize)>,
    episodes: usize,
    seen: usize,
    exploring: bool,
    /// Whether the wrapped actor ran in the last call.
    inner_acted: bool,
    phase: RunPhase,
    rng: ami_core::rng::AmiRng,
}

impl ExploringActor {
    /// Wraps `inner` as the parameters of [`exploration_params`] say;
    /// returns `inner` itself when it never explores.
    pub fn wrap(inner: Box<dyn Actor>, space: ActionSpace, p: &Params, phase: &RunPhase) -> Result<Box<dyn Actor>> {
        let episodes = p.usize("explore_episodes")?;
        if episodes == 0 {
            return Ok(inner);
        }
        let explore = match p.str_opt("explore")?.unwrap_or("random") {
            "random" => Explore::Random,
            "noisy" => Explore::Noisy(p.f32("explore_noise")?),
            other => return Err(CoreError::config("explore", format!("`{other}` is not an exploration (random or noisy)"))),
        };
        let hold = p.usize("explore_hold")?;
        if hold > 1 && explore != Explore::Random {
            return Err(CoreError::config("explore_hold", "holds random actions only: set explore = \"random\" (or explore_hold = 1)"));
        }
        Ok(Box::new(Self {
            inner,
            space,
            explore,
            hold,
            held: None,
            episodes,
            seen: 0,
            exploring: false,
            inner_acted: false,
            phase: phase.clone(),
            rng: ami_core::rng::rng(0),
        }))
    }
}

impl Actor for ExploringActor {
    fn action_dim(&self) -> usize {
        self.inner.action_dim()
    }
    fn reset(&mut self, seed: u64) {
        self.inner.reset(seed);
        self.exploring = !self.phase.is_evaluating() && self.seen < self.episodes;
        if !self.phase.is_evaluating() {
            self.seen += 1;
        }
        self.rng = ami_core::rng::rng(ami_core::rng::derive_seed(seed, "explore"));
        self.held = None;
    }
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>> {
        self.inner_acted = !(self.exploring && self.explore == Explore::Random);
        if !self.exploring {
            return self.inner.act(state, cost);
        }
        if let Some((a, age)) = self.held.as_mut().filter(|(_, age)| *age < self.hold) {
            *age += 1;
            return Ok(a.clone());
        }
        let (lo, hi) = (&self.space.bounds().low, &self.space.bounds().high);
        let random = match (self.explore, self.space.choices()) {
            (Explore::Random, None) => (0..lo.len()).map(|j| if lo[j] < hi[j] { self.rng.gen_range(lo[j]..=hi[j]) } else { lo[j] }).collect(),
            // A discrete space: one of its actions, uniformly.
            (Explore::Random, Some(c)) => Array1::from(c.row(self.rng.gen_range(0..c.len())).to_vec()),
            (Explore::Noisy(std), _) => {
                let mut a = self.inner.act(state, cost)?.to_vec();
                for (j, v) in a.iter_mut().enumerate() {
                    let n: f32 = self.rng.sample(rand_distr::StandardNormal);
                    *v += std * (hi[j] - lo[j]) * n;
                }
                // Clamped into the box, or moved to the nearest choice.
                self.space.project(&mut a);
                return Ok(Array1::from(a));
            }
        };
        if self.hold > 1 {
            self.held = Some((random.clone(), 1));
        }
        Ok(random)
    }
    fn modulate(&mut self, m: &ami_core::Modulation) -> Result<()> {
        self.inner.modulate(m)
    }
    fn last_plan(&self) -> Option<&Plan> {
        self.inner.last_plan()
    }
    fn last_decision(&self) -> ami_core::Decision {
        if self.inner_acted {
            self.inner.last_decision()
        } else {
            ami_core::Decision::Explored
        }
    }
    fn teacher_action(&self) -> Option<Array1<f32>> {
        self.inner_acted.then(|| self.inner.teacher_action()).flatten()
    }
}

/// `critic` implementation `learned`.
pub fn learned_critic() -> Implementation {
    Implementation::new(
        ModuleKind::Critic,
        "learned",
        "an MLP estimate of the intrinsic cost still to come, fitted to the memory by a `critic` trainer node: the planners' terminal cost",
        crate::nodes::HandleNode::<dyn ami_core::Critic>::ports_for("critic"),
        vec![
            ParamSpec::new("width", ParamType::int(1, 4096), "width of each hidden layer").default(ParamValue::Int(64)),
            ParamSpec::new("layers", ParamType::int(1, 16), "number of hidden layers").default(ParamValue::Int(2)),
            ParamSpec::new("activation", ParamType::string(), "hidden activation: relu or silu").default(ParamValue::Str("relu".into())),
            ParamSpec::new(
                "load",
                ParamType::string(),
                "start from these weights (safetensors, as `ami train --critic` or a critic trainer's `save_path` writes them; the file sets the shape)",
            ),
            ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the initial weights").default(ParamValue::Int(0)),
        ],
        |ctx, p| {
            let task = ctx.task()?;
            let state_dim = task.state_dim();
            let critic = match p.str_opt("load")? {
                Some(path) => {
                    let path = ctx.path(path);
                    let net = io::load(&path).map_err(|e| CoreError::config("load", e.to_string()))?;
                    let critic = MlpCritic::from_ensemble(ctx.node, net).map_err(|e| CoreError::config("load", format!("{}: {e}", path.display())))?;
                    if critic.state_dim() != state_dim {
                        return Err(CoreError::config(
                            "load",
                            format!("{}: the critic reads states {} wide, the agent's are {state_dim}", path.display(), critic.state_dim()),
                        ));
                    }
                    critic
                }
                None => {
                    let hidden = vec![p.usize("width")?; p.usize("layers")?];
                    let activation = Activation::parse(p.str_opt("activation")?.unwrap_or("relu"))?;
                    MlpCritic::new(ctx.node, state_dim, hidden, activation, p.usize("seed")? as u64)?
                }
            };
            let handle: ami_core::CriticHandle = ami_core::Handle::new(Arc::new(critic));
            Ok(Built { critic: Some(handle.clone()), ..Built::node(crate::nodes::HandleNode::new(handle, "critic")) })
        },
    )
}

/// The `critic` trainer as a node: when an episode starts (every `every`
/// learning episodes, once the memory holds `min_transitions` new ones) it
/// fits the `learned` critic to the memory by fitted value iteration on
/// TD(lambda) targets ([`ami_learn::fit_critic`]) and publishes it, so the
/// planners' terminal cost changes between episodes only.
pub struct CriticTrainerNode {
    trainer: Trainer,
    critic: ami_core::CriticHandle,
    name: String,
    memory: MemoryHandle,
    phase: RunPhase,
    cfg: CriticFitConfig,
    min_transitions: usize,
    every: usize,
    save_path: Option<PathBuf>,
    episodes: usize,
    fits: u64,
    trained_on: (usize, Option<u64>),
    handle: TrainerHandle,
}

impl CriticTrainerNode {
    /// The history handle.
    pub fn handle(&self) -> TrainerHandle {
        self.handle.clone()
    }
    /// The ports: the critic and the memory it reads (reference ports), and
    /// the number of fits so far.
    pub fn ports() -> NodePorts {
        NodePorts::new().input("critic", PortType::Model, false).input("memory", PortType::Memory, false).output("fits", PortType::Scalar)
    }
    fn train(&mut self) -> Result<()> {
        let (data, seen) = {
            let mem = self.memory.lock();
            let newest = mem.len().checked_sub(1).and_then(|i| mem.get(i)).map(|t| fingerprint(&t));
            let seen = (mem.len(), newest);
            if mem.len() < self.min_transitions || seen == self.trained_on {
                return Ok(());
            }
            (CriticData::from_memory(&**mem)?, seen)
        };
        self.fits += 1;
        let cfg = CriticFitConfig {
            fit: FitConfig { seed: ami_core::rng::derive_seed(self.cfg.fit.seed, &format!("critic fit {}", self.fits)), ..self.cfg.fit.clone() },
            ..self.cfg.clone()
        };
        let report = fit_critic(&mut self.trainer, &data, &cfg)?;
        if let Some(p) = &self.save_path {
            io::save(self.trainer.ensemble(), p)?;
        }
        self.critic.publish(Arc::new(MlpCritic::from_ensemble(self.name.clone(), self.trainer.ensemble().clone())?));
        self.trained_on = seen;
        self.handle.records.lock().unwrap_or_else(|p| p.into_inner()).push(TrainRecord { episode: self.episodes, tick: 0, experience: data.len(), report });
        Ok(())
    }
}

impl Node for CriticTrainerNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    fn reset(&mut self, _seed: u64) -> Result<()> {
        if self.episodes.is_multiple_of(self.every) {
            self.train()?;
        }
        if !self.phase.is_evaluating() {
            self.episodes += 1;
        }
        Ok(())
    }
    fn tick(&mut self, _ctx: &TickContext, _inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        outputs.set_scalar(0, self.fits as f64);
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// `trainer` implementation `critic`.
pub fn critic_trainer() -> Implementation {
    Implementation::new(
        ModuleKind::Trainer,
        "critic",
        "fits a `learned` critic to the memory when an episode starts (fitted value iteration on TD(lambda) targets of the recorded cost)",
        CriticTrainerNode::ports(),
        vec![
            ParamSpec::new("critic", ParamType::node("critic"), "the `learned` critic node to train").required(),
            ParamSpec::new("memory", ParamType::node("memory"), "the memory node to learn from").required(),
            ParamSpec::new("discount", ParamType::float(0.0, 1.0), "discount of future cost").default(ParamValue::Float(0.97)),
            ParamSpec::new("lambda", ParamType::float(0.0, 1.0), "TD(lambda)'s lambda (0: one-step targets, 1: returns to the episode's end)")
                .default(ParamValue::Float(0.9)),
            ParamSpec::new("rounds", ParamType::int(1, 10_000), "rounds of value iteration per fit (targets from the last round's critic)")
                .default(ParamValue::Int(5)),
            ParamSpec::new("epochs", ParamType::int(1, 100_000), "passes over the data per round").default(ParamValue::Int(20)),
            ParamSpec::new("batch", ParamType::int(1, 65_536), "rows per Adam step").default(ParamValue::Int(256)),
            ParamSpec::new("lr", ParamType::float(1e-9, 10.0), "Adam's learning rate").default(ParamValue::Float(1e-3)),
            ParamSpec::new("holdout", ParamType::float(0.0, 0.89), "fraction of the data held out for validation").default(ParamValue::Float(0.1)),
            ParamSpec::new("min_transitions", ParamType::int(2, i64::MAX), "train once the memory holds this many transitions").default(ParamValue::Int(100)),
            ParamSpec::new("every", ParamType::int(1, 1_000_000), "train at the start of every N-th episode").default(ParamValue::Int(1)),
            ParamSpec::new("threads", ParamType::int(0, 256), "training threads (0: one per core)").default(ParamValue::Int(0)),
            ParamSpec::new("save_path", ParamType::string(), "write the critic's weights here after every fit (safetensors, relative to the agent file)"),
            ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the splits and batch order").default(ParamValue::Int(0)),
        ],
        |ctx, p| {
            let critic = ctx.critic(p, "critic")?.ok_or_else(|| CoreError::config("critic", "missing: name the critic node"))?;
            let memory = ctx.memory(p, "memory")?;
            let current = critic.get();
            let Some(mlp) = current.as_any().and_then(|a| a.downcast_ref::<MlpCritic>()) else {
                return Err(CoreError::config("critic", "the critic trainer trains `learned` critics only: set that node's implementation = \"learned\""));
            };
            let threads = threads_param(p)?;
            let adam = AdamConfig { lr: p.f32("lr")?, ..AdamConfig::default() };
            let cfg = CriticFitConfig {
                rounds: p.usize("rounds")?,
                discount: p.f32("discount")?,
                lambda: p.f32("lambda")?,
                fit: FitConfig {
                    epochs: p.usize("epochs")?,
                    batch: p.usize("batch")?,
                    holdout: p.f32("holdout")?,
                    bootstrap: false,
                    keep_best: true,
                    max_steps: 0,
                    seed: p.usize("seed")? as u64,
                },
            };
            let node = CriticTrainerNode {
                trainer: Trainer::with_pool(mlp.ensemble().clone(), adam, Arc::new(Pool::new(threads))),
                name: mlp.name().to_string(),
                critic,
                memory,
                phase: ctx.phase.clone(),
                cfg,
                min_transitions: p.usize("min_transitions")?,
                every: p.usize("every")?,
                save_path: save_path_param(ctx, p)?,
                episodes: 0,
                fits: 0,
                trained_on: (0, None),
                handle: TrainerHandle::default(),
            };
            Ok(Built::node(node))
        },
    )
}

/// A trainer's `threads`: the number given, or one per core for 0.
pub(crate) fn threads_param(p: &Params) -> Result<usize> {
    Ok(match p.usize("threads")? {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    })
}

/// A trainer's `save_path`, resolved against the agent file, its directory
/// checked to exist.
pub(crate) fn save_path_param(ctx: &BuildContext<'_>, p: &Params) -> Result<Option<PathBuf>> {
    let save_path = p.str_opt("save_path")?.map(|s| ctx.path(s));
    if let Some(dir) = save_path.as_ref().and_then(|s| s.parent()).filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(CoreError::config("save_path", format!("directory {} does not exist", dir.display())));
        }
    }
    Ok(save_path)
}
