//! Gradient-based Mode-2 planning: energy minimisation by Adam on a batch
//! of action sequences, gradients by backpropagation through the unrolled
//! world model [paper §3.1.2].

use std::sync::Arc;

use ami_kernels::rng::SplitMix64;
use ami_kernels::{AdamSpec, Cpu, SeqBatch};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3, Axis};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::common::{check_request, start_plan, update_settings, Deadline};
use crate::declaration::{build_from_settings, FromSettings, PlannerDecl};
use crate::fast::{self, FastProblem};
use crate::rollout::Rollout;
use ami_core::error::{CoreError, Result};
use ami_core::modules::{Cost, DifferentiableWorldModel};
use ami_core::rng::{rng, AmiRng};
use ami_core::{ActionSpace, Bounds, Budget, Params, Plan, PlanRequest, Planner, Settings};

/// Settings of the gradient planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GdConfig {
    /// Planning horizon in steps.
    pub horizon: usize,
    /// Action sequences optimised in parallel (the best one is returned).
    pub samples: usize,
    /// Adam steps per planning call.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Standard deviation of the (unclipped) Gaussian initial sequences.
    pub init_std: f32,
    /// Adam first-moment decay.
    pub beta1: f32,
    /// Adam second-moment decay.
    pub beta2: f32,
    /// Adam epsilon.
    pub eps: f32,
    /// Start sequence 0 from the previous plan shifted by one step.
    pub warm_start: bool,
    /// Optional wall-clock deadline per call, in milliseconds (checked
    /// between Adam steps on the generic path; the fused path runs all
    /// its steps, which take microseconds each).
    pub deadline_ms: Option<f64>,
}

impl Default for GdConfig {
    /// WORKLOAD.md's GD: 32 sequences from N(0, 0.3), 25 Adam steps,
    /// lr 0.05, horizon 16.
    fn default() -> Self {
        Self { horizon: 16, samples: 32, steps: 25, lr: 0.05, init_std: 0.3, beta1: 0.9, beta2: 0.999, eps: 1e-8, warm_start: true, deadline_ms: None }
    }
}

ami_core::settings!(GdConfig {
    horizon [1, 1000]: "planning horizon in steps",
    samples [1, 65_536]: "action sequences optimised in parallel (the best is returned)",
    steps [1, 100_000]: "Adam steps per planning call",
    lr [1e-9, 1e6]: "Adam learning rate",
    init_std [0.0, 1e6]: "standard deviation of the Gaussian initial sequences",
    beta1 [0.0, 0.999_999]: "Adam first-moment decay",
    beta2 [0.0, 0.999_999]: "Adam second-moment decay",
    eps [1e-30, 1.0]: "Adam epsilon",
    warm_start: "start sequence 0 from the previous plan shifted by one step",
    deadline_ms [1e-3, 1e9]: "wall-clock deadline per planning call (ms), checked between Adam steps of the generic path (the fused path runs all its steps, microseconds each); trades bit-exact determinism for a time bound",
});

impl GdConfig {
    fn validate(&self) -> Result<()> {
        self.check("gd")
    }
}

/// Energy minimisation by gradient descent: `samples` sequences start from
/// `N(0, init_std)` (sequence 0 from the warm start when there is one), take
/// `steps` Adam steps on the sum of their energies (each sequence gets its
/// own gradient) with the actions clamped to the bounds after each step,
/// and the lowest-energy one is returned.
///
/// With a residual-MLP world model and a quadratic cost everything runs in
/// the fused kernels; otherwise the world model must be differentiable
/// ([`WorldModel::differentiable`](ami_core::modules::WorldModel::differentiable))
/// and every cost term must have a gradient
/// ([`IntrinsicCost::differentiable`](ami_core::IntrinsicCost::differentiable)).
pub struct Gd {
    cfg: GdConfig,
    /// The settings it was built with: `reset` returns to them.
    initial: GdConfig,
    bounds: Bounds,
    rng: AmiRng,
    warm: Option<Array2<f32>>,
    proposal: Option<Array2<f32>>,
    backend: Option<Arc<Cpu>>,
    fast_path: bool,
    batch: SeqBatch,
    energies: Vec<f32>,
}

impl Gd {
    /// A gradient planner with the given settings and action bounds.
    pub fn new(cfg: GdConfig, bounds: Bounds) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            initial: cfg,
            bounds,
            rng: rng(0),
            warm: None,
            proposal: None,
            backend: None,
            fast_path: true,
            batch: SeqBatch::new(0, 0, 0),
            energies: Vec::new(),
        })
    }
    /// The settings.
    pub fn config(&self) -> &GdConfig {
        &self.cfg
    }
    /// Runs the fused fast path on `cpu` (default: [`Cpu::shared`]).
    pub fn set_backend(&mut self, cpu: Arc<Cpu>) {
        self.backend = Some(cpu);
    }
    /// Allows (default) or forbids the fused fast path. Both paths start
    /// from the same sequences for the same seed.
    pub fn set_fast_path(&mut self, enabled: bool) {
        self.fast_path = enabled;
    }

    /// Adam on `self.batch` through the generic differentiable calls.
    fn run_generic(&mut self, req: &PlanRequest<'_>, deadline: &Deadline) -> Result<usize> {
        let diff = req.model.differentiable().ok_or_else(|| {
            CoreError::config(
                "gd",
                "the world model is not differentiable (WorldModel::differentiable() is None) and is not a residual MLP the fused path runs",
            )
        })?;
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        let mut acts = Array3::<f32>::zeros((t_len, n, a_dim));
        for ((t, i, j), v) in acts.indexed_iter_mut() {
            *v = self.batch.get(t, j, i);
        }
        let mut m = Array3::<f32>::zeros(acts.dim());
        let mut v = Array3::<f32>::zeros(acts.dim());
        let (b1, b2, lr, eps) = (self.cfg.beta1, self.cfg.beta2, self.cfg.lr, self.cfg.eps);
        let mut steps = 0;
        for step in 1..=self.cfg.steps {
            if deadline.expired(steps) {
                break;
            }
            let (_, g) = energy_gradient(diff, req.cost, req.state, acts.view())?;
            let bc1 = 1.0 - (b1 as f64).powi(step as i32) as f32;
            let bc2 = 1.0 - (b2 as f64).powi(step as i32) as f32;
            for (((_, _, j), a), ((gv, mv), vv)) in acts.indexed_iter_mut().zip(g.iter().zip(m.iter_mut()).zip(v.iter_mut())) {
                *mv = b1 * *mv + (1.0 - b1) * gv;
                *vv = b2 * *vv + (1.0 - b2) * gv * gv;
                let mhat = *mv / bc1;
                let vhat = *vv / bc2;
                *a = (*a - lr * mhat / (vhat.sqrt() + eps)).clamp(self.bounds.low[j], self.bounds.high[j]);
            }
            steps += 1;
        }
        let mut e = Array1::zeros(n);
        Rollout::new().energies(req.model, req.cost, req.state, acts.view(), &mut e)?;
        for ((t, i, j), &x) in acts.indexed_iter() {
            self.batch.set(t, j, i, x);
        }
        self.energies = e.to_vec();
        Ok(steps)
    }

    fn run_fast(&mut self, fp: &FastProblem<'_>) -> Result<usize> {
        let cpu = fast::backend(&self.backend);
        let spec = AdamSpec {
            steps: self.cfg.steps,
            lr: self.cfg.lr,
            beta1: self.cfg.beta1,
            beta2: self.cfg.beta2,
            eps: self.cfg.eps,
            low: &self.bounds.low,
            high: &self.bounds.high,
        };
        cpu.gd(fp.net, &fp.cost, &fp.s0, &spec, &mut self.batch, &mut self.energies).map_err(|e| fast::kernel_err("gd", e))?;
        Ok(self.cfg.steps)
    }
}

impl Gd {
    /// GD's declaration.
    pub fn declaration() -> PlannerDecl {
        fn work(p: &Params) -> Result<f64> {
            let c = GdConfig::from_params(p)?;
            Ok(3.0 * (c.samples * c.steps * c.horizon) as f64)
        }
        PlannerDecl {
            name: "gd",
            summary: "Mode-2 planning by gradient descent (Adam) on the action sequences through a differentiable world model",
            schema: GdConfig::schema,
            build: build_from_settings::<Gd>,
            work,
        }
    }
}

impl FromSettings for Gd {
    type Settings = GdConfig;
    fn from_settings(settings: GdConfig, space: &ActionSpace) -> Result<Self> {
        Self::new(settings, space.require_box("gd")?.clone())
    }
    fn use_backend(&mut self, cpu: Arc<Cpu>) {
        self.set_backend(cpu);
    }
}

impl Planner for Gd {
    fn name(&self) -> &str {
        "gd"
    }
    fn needs_gradients(&self) -> bool {
        true
    }
    fn horizon(&self) -> usize {
        self.cfg.horizon
    }
    fn action_dim(&self) -> usize {
        self.bounds.dim()
    }
    fn reset(&mut self, seed: u64) {
        self.cfg = self.initial.clone();
        self.rng = rng(seed);
        self.warm = None;
        self.proposal = None;
    }
    fn propose(&mut self, plan: Array2<f32>) {
        self.proposal = Some(plan);
    }
    fn supports_proposals(&self) -> bool {
        true
    }
    fn warm_starts(&self) -> bool {
        self.cfg.warm_start
    }
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        update_settings(&mut self.cfg, GdConfig::validate, |c| {
            c.steps = budget.iterations;
            c.deadline_ms = budget.deadline_ms();
        })
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        update_settings(&mut self.cfg, GdConfig::validate, |c| c.horizon = horizon)?;
        self.warm = None;
        Ok(())
    }

    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let deadline = Deadline::start(self.cfg.deadline_ms);
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        check_request("gd", t_len, &self.bounds, req)?;
        fast::ensure_batch(&mut self.batch, t_len, a_dim, n);
        self.energies.resize(n, 0.0);
        let key = self.rng.next_u64();
        for i in 0..n {
            let mut r = SplitMix64::stream(key, i as u64);
            for t in 0..t_len {
                for j in 0..a_dim {
                    self.batch.set(t, j, i, self.cfg.init_std * r.normal());
                }
            }
        }
        let proposal = self.proposal.take().filter(|p| p.dim() == (t_len, a_dim));
        let warm = self.warm.take().filter(|w| self.cfg.warm_start && w.dim() == (t_len, a_dim));
        if proposal.is_some() || warm.is_some() {
            // Sequence 0 starts from the proposal, else the shifted plan.
            for ((t, j), &x) in start_plan(proposal, warm, true, t_len, &self.bounds).indexed_iter() {
                self.batch.set(t, j, 0, x.clamp(self.bounds.low[j], self.bounds.high[j]));
            }
        }
        let fp = if self.fast_path { fast::problem(req) } else { None };
        let steps = match &fp {
            Some(fp) => self.run_fast(fp)?,
            None => self.run_generic(req, &deadline)?,
        };
        let best = (0..n).filter(|&i| self.energies[i].is_finite()).min_by(|&a, &b| self.energies[a].total_cmp(&self.energies[b]).then(a.cmp(&b)));
        let Some(best) = best else {
            return Err(CoreError::non_finite("gd", n, &Default::default()));
        };
        let actions = fast::to_plan(t_len, a_dim, self.batch.sequence(best));
        if actions.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::non_finite("gd", n, &Default::default()));
        }
        self.warm = Some(actions.clone());
        Ok(Plan { actions, energy: self.energies[best], iterations: steps, evaluated: n * steps, non_finite: Default::default() })
    }
}

/// Energies `[B]` of the action sequences `actions` (`[T, B, A]`) from `s0`
/// and their gradients w.r.t. every action (`[T, B, A]`), by
/// backpropagation through the unrolled model with the generic calls
/// (`predict` and `vjp`). Every cost term must have a gradient
/// ([`IntrinsicCost::differentiable`](ami_core::IntrinsicCost::differentiable)).
pub fn energy_gradient(
    model: &dyn DifferentiableWorldModel,
    cost: &Cost,
    s0: ArrayView1<'_, f32>,
    actions: ArrayView3<'_, f32>,
) -> Result<(Array1<f32>, Array3<f32>)> {
    let (t_len, b, a_dim) = actions.dim();
    let s_dim = model.state_dim();
    if s0.len() != s_dim || a_dim != model.action_dim() {
        return Err(CoreError::shape(
            "energy_gradient",
            format!("state {s_dim} and action {} wide", model.action_dim()),
            format!("state {} and action {a_dim}", s0.len()),
        ));
    }
    // A cost that is one quadratic form keeps its closed form (the sum of
    // its terms' weights folded first), so its gradients stay what they
    // always were; any other differentiable cost adds its terms' gradients.
    let quad = cost.as_quadratic(s_dim, a_dim);
    if quad.is_none() && !cost.is_differentiable() {
        return Err(CoreError::config(
            "gd",
            "gradient planning needs a cost whose terms and critics all have gradients (IntrinsicCost::differentiable, Critic::has_gradient)",
        ));
    }
    let goal: Vec<f32> = (0..s_dim).map(|i| cost.goal().and_then(|g| g.get(i).copied()).unwrap_or(0.0)).collect();
    let mut states = Vec::with_capacity(t_len + 1);
    states.push(Array2::from_shape_fn((b, s_dim), |(_, i)| s0[i]));
    let mut energies = Array1::<f32>::zeros(b);
    let mut step = Array1::<f32>::zeros(b);
    for t in 0..t_len {
        let a = actions.index_axis(Axis(0), t);
        let mut next = Array2::zeros((b, s_dim));
        model.predict(states[t].view(), a, next.view_mut())?;
        cost.step_energy(t, states[t].view(), a, next.view(), step.view_mut())?;
        energies += &step;
        states.push(next);
    }
    let mut grads = Array3::<f32>::zeros((t_len, b, a_dim));
    let mut gs = Array2::<f32>::zeros((b, s_dim));
    if cost.has_terminal() {
        // The critics' value of the final states, and its gradient.
        cost.add_terminal_energy(t_len, states[t_len].view(), energies.view_mut())?;
        cost.add_terminal_gradient(t_len, states[t_len].view(), gs.view_mut())?;
    }
    let (mut cs, mut ca) = (Array2::<f32>::zeros((b, s_dim)), Array2::<f32>::zeros((b, a_dim)));
    for t in (0..t_len).rev() {
        let st = &states[t + 1];
        let a = actions.index_axis(Axis(0), t);
        match &quad {
            Some((q, _)) => {
                for ((k, i), g) in gs.indexed_iter_mut() {
                    *g += 2.0 * q[i] * (st[[k, i]] - goal[i]);
                }
            }
            None => {
                cs.fill(0.0);
                ca.fill(0.0);
                cost.add_step_gradient(t, states[t].view(), a, st.view(), cs.view_mut(), ca.view_mut(), gs.view_mut())?;
            }
        }
        let mut gprev = Array2::<f32>::zeros((b, s_dim));
        let mut ga = Array2::<f32>::zeros((b, a_dim));
        model.vjp(states[t].view(), a, gs.view(), gprev.view_mut(), ga.view_mut())?;
        match &quad {
            Some((_, r)) => {
                for ((k, j), g) in ga.indexed_iter_mut() {
                    *g += 2.0 * r[j] * a[[k, j]];
                }
            }
            None => {
                ga += &ca;
                gprev += &cs;
            }
        }
        grads.index_axis_mut(Axis(0), t).assign(&ga);
        gs = gprev;
    }
    Ok((energies, grads))
}
