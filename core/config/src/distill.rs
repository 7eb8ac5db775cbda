//! Mode-1 policies in agent files: the `learned` policy (an MLP), the
//! `policy` trainer node that distils the planner into it, and the
//! parameters with which a planning actor uses a policy (acting from it
//! alone, labelling for it, starting plans from its proposals, switching
//! between Mode-1 and Mode-2 by a rule).
//!
//! Distillation is dataflow: the planning actor outputs, on `teacher`, the
//! planner's first action whenever it planned (NaNs otherwise); the
//! trainer collects `(state, teacher)` pairs during learning episodes and
//! refits the policy when an episode starts, publishing it through the
//! policy's handle. With the actor in `label` mode the policy acts and the
//! planner only labels the states it visits (DAgger).

use std::path::PathBuf;
use std::sync::Arc;

use ami_core::{ActMode, ActionSpace, CoreError, ParamSpec, ParamType, ParamValue, Params, Policy, PolicyHandle, Result, RunPhase};
use ami_graph::{Inputs, Node, NodePorts, Outputs, PortType, TickContext};
use ami_learn::{fit_policy, io, Activation, AdamConfig, FitConfig, MlpPolicy, PolicyData, Trainer};
use ami_planners::kernels::pool::Pool;
use ami_planners::PolicyUse;
use ndarray::{Array2, ArrayView2};

use crate::learn::{save_path_param, threads_param, TrainRecord, TrainerHandle};
use crate::nodes::HandleNode;
use crate::registry::{BuildContext, Built, Implementation, ModuleKind};

/// `policy` implementation `learned`.
pub fn learned_policy() -> Implementation {
    Implementation::new(
        ModuleKind::Policy,
        "learned",
        "an MLP Mode-1 policy a = pi(s), clamped into the action bounds (the nearest action of a discrete space), distilled from the planner by a `policy` trainer node",
        HandleNode::<dyn ami_core::Policy>::ports_for("policy"),
        vec![
            ParamSpec::new("width", ParamType::int(1, 4096), "width of each hidden layer").default(ParamValue::Int(64)),
            ParamSpec::new("layers", ParamType::int(1, 16), "number of hidden layers").default(ParamValue::Int(2)),
            ParamSpec::new("activation", ParamType::string(), "hidden activation: relu or silu").default(ParamValue::Str("relu".into())),
            ParamSpec::new(
                "load",
                ParamType::string(),
                "start from these weights (safetensors, as `ami train --policy` or a policy trainer's `save_path` writes them; the file sets the shape)",
            ),
            ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the initial weights").default(ParamValue::Int(0)),
        ],
        |ctx, p| {
            let task = ctx.task()?;
            let state_dim = task.state_dim();
            let policy = match p.str_opt("load")? {
                Some(path) => {
                    let path = ctx.path(path);
                    let net = io::load(&path).map_err(|e| CoreError::config("load", e.to_string()))?;
                    MlpPolicy::from_ensemble(ctx.node, net, state_dim, task.space.bounds())
                        .map_err(|e| CoreError::config("load", format!("{}: {e}", path.display())))?
                }
                None => {
                    let hidden = vec![p.usize("width")?; p.usize("layers")?];
                    let activation = Activation::parse(p.str_opt("activation")?.unwrap_or("relu"))?;
                    MlpPolicy::new(ctx.node, state_dim, task.space.bounds(), hidden, activation, p.usize("seed")? as u64)?
                }
            };
            let handle: PolicyHandle = ami_core::Handle::new(Arc::new(policy));
            Ok(Built { policy: Some(handle.clone()), ..Built::node(HandleNode::new(handle, "policy")) })
        },
    )
}

/// The `policy` trainer as a node: in learning episodes it collects the
/// `(state, teacher)` pairs of every tick the planner labelled (skipping
/// states that are not finite), and when an episode starts (every `every`
/// learning episodes and before each evaluation, once it holds `min_pairs`
/// pairs and has new ones) it fits the `learned` policy to all
/// of them ([`fit_policy`]) and publishes it.
pub struct PolicyTrainerNode {
    trainer: Trainer,
    policy: PolicyHandle,
    template: MlpPolicy,
    data: PolicyData,
    capacity: usize,
    phase: RunPhase,
    cfg: FitConfig,
    min_pairs: usize,
    every: usize,
    save_path: Option<PathBuf>,
    episodes: usize,
    fits: u64,
    trained_on: usize,
    added: usize,
    skipped: u64,
    handle: TrainerHandle,
}

impl PolicyTrainerNode {
    /// The history handle.
    pub fn handle(&self) -> TrainerHandle {
        self.handle.clone()
    }
    /// The pairs collected so far.
    pub fn data(&self) -> &PolicyData {
        &self.data
    }
    /// Labelled ticks skipped because their state was not finite.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
    /// The ports: the state and the planner's label of it, the policy
    /// (reference port), and the number of fits so far.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("teacher", PortType::Action, true)
            .input("policy", PortType::Model, false)
            .output("fits", PortType::Scalar)
    }
    fn train(&mut self) -> Result<()> {
        if self.data.len() < self.min_pairs || self.added == self.trained_on {
            return Ok(());
        }
        self.fits += 1;
        let cfg = FitConfig { seed: ami_core::rng::derive_seed(self.cfg.seed, &format!("policy fit {}", self.fits)), ..self.cfg.clone() };
        let report = fit_policy(&mut self.trainer, &self.data, &cfg)?;
        if let Some(p) = &self.save_path {
            io::save(self.trainer.ensemble(), p)?;
        }
        let policy = MlpPolicy::from_ensemble(self.template.name(), self.trainer.ensemble().clone(), self.template.state_dim(), self.template.bounds())?;
        self.policy.publish(Arc::new(policy));
        self.trained_on = self.added;
        self.handle.push(TrainRecord { episode: self.episodes, tick: 0, experience: self.data.len(), report });
        Ok(())
    }
}

impl Node for PolicyTrainerNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    /// Fits when an episode starts (an evaluation episode too, so it is
    /// judged on every label the learning episodes gathered); counts
    /// learning episodes only.
    fn reset(&mut self, _seed: u64) -> Result<()> {
        if self.phase.is_evaluating() || self.episodes.is_multiple_of(self.every) {
            self.train()?;
        }
        if !self.phase.is_evaluating() {
            self.episodes += 1;
        }
        Ok(())
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let label = inputs.vector(1)?;
        // Evaluation episodes teach nothing; a tick without a plan has no
        // label (NaNs).
        if !self.phase.is_evaluating() && label.iter().all(|v| v.is_finite()) {
            let state = inputs.vector(0)?;
            if state.iter().any(|v| !v.is_finite()) {
                // A diverged state teaches nothing; the fit never sees it.
                self.skipped += 1;
                if self.skipped == 1 {
                    tracing::warn!("policy trainer: skipping labelled states that are not finite (first at episode {})", self.episodes);
                }
                outputs.set_scalar(0, self.fits as f64);
                return Ok(());
            }
            if self.data.len() >= self.capacity {
                return Err(CoreError::config(
                    "capacity",
                    format!("the policy trainer holds {} labelled states, its capacity: raise `capacity` or label fewer episodes", self.capacity),
                ));
            }
            self.data.push(state, label)?;
            self.added += 1;
        }
        outputs.set_scalar(0, self.fits as f64);
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// `trainer` implementation `policy`.
pub fn policy_trainer() -> Implementation {
    Implementation::new(
        ModuleKind::Trainer,
        "policy",
        "distils the planner into a `learned` policy: collects the actor's `teacher` labels in learning episodes and refits the policy when an episode starts",
        PolicyTrainerNode::ports(),
        vec![
            ParamSpec::new("policy", ParamType::node("policy"), "the `learned` policy node to train").required(),
            ParamSpec::new("epochs", ParamType::int(1, 100_000), "passes over the labelled states per fit").default(ParamValue::Int(30)),
            ParamSpec::new("batch", ParamType::int(1, 65_536), "rows per Adam step").default(ParamValue::Int(256)),
            ParamSpec::new("lr", ParamType::float(1e-9, 10.0), "Adam's learning rate").default(ParamValue::Float(1e-3)),
            ParamSpec::new("holdout", ParamType::float(0.0, 0.89), "fraction of the pairs held out for validation").default(ParamValue::Float(0.1)),
            ParamSpec::new("min_pairs", ParamType::int(2, i64::MAX), "fit once this many labelled states are held").default(ParamValue::Int(100)),
            ParamSpec::new("capacity", ParamType::int(2, 10_000_000), "most labelled states held (more is an error, never a silent drop)")
                .default(ParamValue::Int(1_000_000)),
            ParamSpec::new("every", ParamType::int(1, 1_000_000), "fit at the start of every N-th learning episode").default(ParamValue::Int(1)),
            ParamSpec::new("threads", ParamType::int(0, 256), "training threads (0: one per core)").default(ParamValue::Int(0)),
            ParamSpec::new("save_path", ParamType::string(), "write the policy's weights here after every fit (safetensors, relative to the agent file)"),
            ParamSpec::new("seed", ParamType::int(0, i64::MAX), "seed of the splits and batch order").default(ParamValue::Int(0)),
        ],
        |ctx, p| {
            let policy = ctx.policy(p, "policy")?;
            let current = policy.get();
            let Some(mlp) = current.as_any().and_then(|a| a.downcast_ref::<MlpPolicy>()) else {
                return Err(CoreError::config("policy", "the policy trainer trains `learned` policies only: set that node's implementation = \"learned\""));
            };
            let adam = AdamConfig { lr: p.f32("lr")?, ..AdamConfig::default() };
            let cfg = FitConfig {
                epochs: p.usize("epochs")?,
                batch: p.usize("batch")?,
                holdout: p.f32("holdout")?,
                bootstrap: false,
                keep_best: true,
                max_steps: 0,
                seed: p.usize("seed")? as u64,
            };
            let node = PolicyTrainerNode {
                trainer: Trainer::with_pool(mlp.ensemble().clone(), adam, Arc::new(Pool::new(threads_param(p)?))),
                data: PolicyData::new(mlp.state_dim(), mlp.bounds().dim()),
                template: mlp.clone(),
                policy: policy.clone(),
                capacity: p.usize("capacity")?,
                phase: ctx.phase.clone(),
                cfg,
                min_pairs: p.usize("min_pairs")?,
                every: p.usize("every")?,
                save_path: save_path_param(ctx, p)?,
                episodes: 0,
                fits: 0,
                trained_on: 0,
                added: 0,
                skipped: 0,
                handle: TrainerHandle::default(),
            };
            Ok(Built::node(node))
        },
    )
}

/// The parameters with which a planning actor uses a Mode-1 policy.
pub fn policy_use_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("policy", ParamType::node("policy"), "Mode-1 policy node: proposes plans, and acts in modes `policy`, `label` and `switch`"),
        ParamSpec::new(
            "mode",
            ParamType::string(),
            "with a policy: plan (Mode-2 every tick), policy (Mode-1 only), label (the policy acts, the planner labels every state: DAgger) or switch (Mode-1 when the policy's proposal is within the margin of the standing plan's energy)",
        )
        .default(ParamValue::Str("plan".into())),
        ParamSpec::new("eval_mode", ParamType::string(), "the mode in evaluation episodes (default: `mode`)"),
        ParamSpec::new("teacher_episodes", ParamType::int(0, 1_000_000), "in `label` mode, the planner acts in the first N learning episodes (behaviour cloning)")
            .default(ParamValue::Int(0)),
        ParamSpec::new("propose", ParamType::Bool, "start each plan from the policy's proposal when its energy is lower than the standing plan's")
            .default(ParamValue::Bool(true)),
        ParamSpec::new("switch_margin", ParamType::float(0.0, 1e9), "`switch`: the policy acts when E_policy <= E_plan + margin * |E_plan| + tolerance")
            .default(ParamValue::Float(0.1)),
        ParamSpec::new("switch_tolerance", ParamType::float(0.0, 1e12), "`switch`: the absolute part of the margin, in energy units").default(ParamValue::Float(0.0)),
        ParamSpec::new("max_policy_ticks", ParamType::int(0, 1_000_000), "`switch`: plan after this many Mode-1 ticks in a row (0: no limit)")
            .default(ParamValue::Int(0)),
    ]
}

/// Parses a mode name with the switch rule's parameters.
pub fn act_mode(name: &str, p: &Params, param: &str) -> Result<ActMode> {
    Ok(match name {
        "plan" => ActMode::Plan,
        "policy" => ActMode::Policy,
        "label" => ActMode::Label,
        "switch" => ActMode::Switch { margin: p.f32("switch_margin")?, tolerance: p.f32("switch_tolerance")?, max_policy_ticks: p.usize("max_policy_ticks")? },
        other => return Err(CoreError::config(param, format!("`{other}` is not a mode (plan, policy, label or switch)"))),
    })
}

/// The policy a planning actor uses and how, if its `policy` is set;
/// refuses the policy parameters without a policy, and a `learned` policy
/// of another state width than the actor's world model (`state_dim`).
pub fn policy_use(ctx: &BuildContext<'_>, p: &Params, state_dim: usize) -> Result<Option<(PolicyHandle, PolicyUse)>> {
    if p.str_opt("policy")?.is_none() {
        if p.str_opt("eval_mode")?.is_some() {
            return Err(CoreError::config("eval_mode", "needs a policy: set `policy` to a policy node"));
        }
        if p.usize("teacher_episodes")? > 0 {
            return Err(CoreError::config("teacher_episodes", "needs a policy: set `policy` to a policy node"));
        }
        if p.str_opt("mode")?.is_some_and(|m| m != "plan") {
            return Err(CoreError::config("mode", "modes other than `plan` need a policy: set `policy` to a policy node"));
        }
        return Ok(None);
    }
    let policy = ctx.policy(p, "policy")?;
    if let Some(mlp) = policy.get().as_any().and_then(|a| a.downcast_ref::<MlpPolicy>()) {
        if mlp.state_dim() != state_dim {
            return Err(CoreError::config(
                "policy",
                format!("policy `{}` reads states of width {}, the actor's world model predicts states of width {state_dim}", mlp.name(), mlp.state_dim()),
            ));
        }
    }
    let mode = act_mode(p.str_opt("mode")?.unwrap_or("plan"), p, "mode")?;
    let eval_mode = match p.str_opt("eval_mode")? {
        Some(m) => act_mode(m, p, "eval_mode")?,
        None => mode,
    };
    let teacher_episodes = p.usize("teacher_episodes")?;
    if teacher_episodes > 0 && mode != ActMode::Label {
        return Err(CoreError::config("teacher_episodes", format!("applies to mode `label` only (the mode is `{}`)", mode.name())));
    }
    let switch_rule = act_mode("switch", p, "switch_margin")?;
    let policy = on_space(policy, &ctx.task()?.space);
    Ok(Some((policy, PolicyUse { mode, eval_mode, teacher_episodes, propose: p.bool("propose")?, switch_rule })))
}

/// A policy whose every action is moved to the nearest action of a
/// discrete space: what the environment would execute is what the actor
/// emits, the memory records and proposals roll out.
struct OnChoices {
    inner: PolicyHandle,
    space: ActionSpace,
}

impl Policy for OnChoices {
    fn action_dim(&self) -> usize {
        self.inner.get().action_dim()
    }
    fn act_batch(&self, states: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut a = self.inner.get().act_batch(states)?;
        for mut row in a.rows_mut() {
            match row.as_slice_mut() {
                Some(r) => self.space.project(r),
                None => {
                    let mut r = row.to_vec();
                    self.space.project(&mut r);
                    row.assign(&ndarray::ArrayView1::from(&r));
                }
            }
        }
        Ok(a)
    }
}

/// `policy` as the actor uses it in `space`: itself for a box (it clamps
/// its own actions), its actions moved to the nearest choice for a
/// discrete space. The wrapper reads `policy`'s handle on every call, so
/// weights a trainer publishes reach it.
pub(crate) fn on_space(policy: PolicyHandle, space: &ActionSpace) -> PolicyHandle {
    if !space.is_discrete() {
        return policy;
    }
    PolicyHandle::new(Arc::new(OnChoices { inner: policy, space: space.clone() }))
}
