use std::sync::Arc;

use ami_kernels::rng::derive_key;
use ami_kernels::{Cpu, Sampling, SeqBatch};
use ndarray::{Array1, Array2, Array3, Axis};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::common::{check_request, final_plan, start_plan, tally_fused, update_settings, Deadline};
use crate::declaration::{build_from_settings, FromSettings, PlannerDecl};
use crate::fast::{self, FastProblem};
use crate::rollout::Rollout;
use ami_core::error::{CoreError, Result};
use ami_core::rng::{rng, AmiRng};
use ami_core::{ActionSpace, Bounds, Budget, Params, Plan, PlanRequest, Planner, Settings};

/// Settings of the cross-entropy method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CemConfig {
    /// Planning horizon in steps.
    pub horizon: usize,
    /// Action sequences sampled per iteration.
    pub samples: usize,
    /// Iterations per planning call.
    pub iterations: usize,
    /// Lowest-energy samples the distribution is refit on (`None`: an
    /// eighth of `samples`, at least 1, so a smaller `samples` never
    /// inherits more elites than it has).
    pub elites: Option<usize>,
    /// Initial standard deviation (relative to nothing: in action units).
    pub init_std: f32,
    /// Floor on the refit standard deviation (0: none).
    pub min_std: f32,
    /// Smoothing of the refit: `new = momentum * old + (1 - momentum) * fit`.
    pub momentum: f32,
    /// Start from the previous plan shifted by one step.
    pub warm_start: bool,
    /// Return the best sample seen instead of the final mean.
    pub return_best: bool,
    /// Optional wall-clock deadline per call, in milliseconds. A deadline
    /// trades bit-exact determinism for a wall-clock bound: how many
    /// iterations run depends on the machine's speed and load, so the same
    /// seed may give different plans. Iteration-only budgets (the default)
    /// are bit-exact.
    pub deadline_ms: Option<f64>,
}

impl Default for CemConfig {
    /// WORKLOAD.md's CEM: 512 samples, 6 iterations, 64 elites, std 0.5,
    /// horizon 16.
    fn default() -> Self {
        Self {
            horizon: 16,
            samples: 512,
            iterations: 6,
            elites: None,
            init_std: 0.5,
            min_std: 0.0,
            momentum: 0.0,
            warm_start: true,
            return_best: false,
            deadline_ms: None,
        }
    }
}

ami_core::settings!(CemConfig {
    horizon [1, 1000]: "planning horizon in steps",
    samples [1, 65_536]: "action sequences sampled per iteration",
    iterations [1, 1000]: "iterations per planning call",
    elites [1, 65_536]: "lowest-energy samples the distribution is refit on (<= samples; default samples / 8)",
    init_std [0.0, 1e6]: "initial standard deviation, in action units",
    min_std [0.0, 1e6]: "floor on the refit standard deviation",
    momentum [0.0, 0.999]: "smoothing of the refit: new = momentum * old + (1 - momentum) * fit",
    warm_start: "start from the previous plan shifted by one step",
    return_best: "return the best sample seen instead of the final mean",
    deadline_ms [1e-3, 1e9]: "wall-clock deadline per planning call (ms); trades bit-exact determinism for a time bound",
});

impl CemConfig {
    /// The elites used: `elites`, or an eighth of `samples` (at least 1).
    pub fn elite_count(&self) -> usize {
        self.elites.unwrap_or((self.samples / 8).max(1))
    }
    fn validate(&self) -> Result<()> {
        self.check("cem")?;
        if self.elite_count() > self.samples {
            return Err(CoreError::config("cem.elites", format!("must be in 1..={} (samples), got {}", self.samples, self.elite_count())));
        }
        Ok(())
    }
}

/// The cross-entropy method: sample action sequences from a diagonal
/// Gaussian (clipped to the bounds), keep the `elites` lowest-energy ones,
/// refit mean and standard deviation (ddof = 0) on them; return the mean.
pub struct Cem {
    cfg: CemConfig,
    /// The settings it was built with: `reset` returns to them.
    initial: CemConfig,
    bounds: Bounds,
    rng: AmiRng,
    warm: Option<Array2<f32>>,
    proposal: Option<Array2<f32>>,
    samples: Array3<f32>,
    energies: Array1<f32>,
    order: Vec<usize>,
    rollout: Rollout,
    backend: Option<Arc<Cpu>>,
    fast_path: bool,
    batch: SeqBatch,
}

impl Cem {
    /// A CEM planner with the given settings and action bounds.
    pub fn new(cfg: CemConfig, bounds: Bounds) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            initial: cfg,
            bounds,
            rng: rng(0),
            warm: None,
            proposal: None,
            samples: Array3::zeros((0, 0, 0)),
            energies: Array1::zeros(0),
            order: Vec::new(),
            rollout: Rollout::new(),
            backend: None,
            fast_path: true,
            batch: SeqBatch::new(0, 0, 0),
        })
    }
    /// The settings.
    pub fn config(&self) -> &CemConfig {
        &self.cfg
    }
    /// Runs the fused fast path on `cpu` (default: [`Cpu::shared`], the best
    /// instruction set on all cores).
    pub fn set_backend(&mut self, cpu: Arc<Cpu>) {
        self.backend = Some(cpu);
    }
    /// Allows (default) or forbids the fused fast path. It is taken when
    /// the world model is a residual MLP and the cost one quadratic form;
    /// its noise comes from per-sample counter-based streams, so its plans
    /// differ from the generic path's for the same seed (both are
    /// deterministic, and independent of the thread count).
    pub fn set_fast_path(&mut self, enabled: bool) {
        self.fast_path = enabled;
    }

    fn plan_fast(&mut self, fp: &FastProblem<'_>, mean: Array2<f32>, deadline: &Deadline) -> Result<Plan> {
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        let cpu = fast::backend(&self.backend);
        let key = self.rng.next_u64();
        fast::ensure_batch(&mut self.batch, t_len, a_dim, n);
        if self.energies.len() != n {
            self.energies = Array1::zeros(n);
        }
        let mut mean: Vec<f32> = mean.iter().copied().collect();
        let mut std = vec![self.cfg.init_std; t_len * a_dim];
        let mut best: Option<(f32, Vec<f32>)> = None;
        let (mut iterations, mut evaluated) = (0, 0);
        let mut tally = ami_core::modules::NonFiniteTally::default();
        for it in 0..self.cfg.iterations {
            if deadline.expired(iterations) {
                break;
            }
            let spec = Sampling { mean: &mean, std: &std, low: &self.bounds.low, high: &self.bounds.high, key: derive_key(key, it as u64) };
            let e = self.energies.as_slice_mut().expect("contiguous");
            cpu.sample_energies(fp.net, &fp.cost, &fp.s0, &spec, &mut self.batch, e).map_err(|e| fast::kernel_err("cem", e))?;
            tally_fused(&mut tally, e);
            evaluated += n;
            iterations += 1;
            let Some(k) = lowest_k(&self.energies, self.cfg.elite_count(), &mut self.order) else {
                return Err(CoreError::non_finite("cem", n, &tally));
            };
            if self.cfg.return_best {
                let i0 = self.order[0];
                if best.as_ref().is_none_or(|(e, _)| self.energies[i0] < *e) {
                    best = Some((self.energies[i0], self.batch.sequence(i0)));
                }
            }
            let batch = &self.batch;
            refit(&mut mean, &mut std, a_dim, &self.order, k, &self.cfg, |t, j| ndarray::ArrayView1::from(batch.row(t, j)));
        }
        let actions = fast::to_plan(t_len, a_dim, mean);
        let energy = fast::plan_energy("cem", &cpu, fp, &actions)?;
        let best = best.map(|(e, b)| (e, fast::to_plan(t_len, a_dim, b)));
        let plan = final_plan("cem", (actions, energy), best, iterations, evaluated, tally)?;
        self.warm = Some(plan.actions.clone());
        Ok(plan)
    }
}

/// Refits the sampling distribution on the `k` elites in `order`: per step
/// `t` and action dimension `j`, the elites' mean and standard deviation
/// (ddof = 0, floored at `min_std`), smoothed by `momentum`. `row(t, j)`
/// gives every sample's value at step `t`, dimension `j`, indexed by sample;
/// `mean` and `std` are `[T * A]`, row-major. The
/// fused and generic paths share it, so they refit identically.
fn refit<R: std::ops::Index<usize, Output = f32>>(
    mean: &mut [f32],
    std: &mut [f32],
    a_dim: usize,
    order: &[usize],
    k: usize,
    cfg: &CemConfig,
    row: impl Fn(usize, usize) -> R,
) {
    let inv_k = 1.0 / k as f32;
    let m = cfg.momentum;
    for t in 0..mean.len() / a_dim.max(1) {
        for j in 0..a_dim {
            let x = row(t, j);
            let mut mu = 0.0f32;
            for &i in order {
                mu += x[i];
            }
            mu *= inv_k;
            let mut var = 0.0f32;
            for &i in order {
                let d = x[i] - mu;
                var += d * d;
            }
            let sd = (var * inv_k).sqrt().max(cfg.min_std);
            let r = t * a_dim + j;
            mean[r] = m * mean[r] + (1.0 - m) * mu;
            std[r] = m * std[r] + (1.0 - m) * sd;
        }
    }
}

/// Indices of the `k` lowest finite energies (ties broken by index), or
/// `None` if no energy is finite.
pub(crate) fn lowest_k(energies: &Array1<f32>, k: usize, order: &mut Vec<usize>) -> Option<usize> {
    order.clear();
    order.extend((0..energies.len()).filter(|&i| energies[i].is_finite()));
    if order.is_empty() {
        return None;
    }
    let k = k.min(order.len());
    let cmp = |a: &usize, b: &usize| energies[*a].total_cmp(&energies[*b]).then(a.cmp(b));
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, cmp);
        order.truncate(k);
    }
    order.sort_unstable_by(cmp);
    Some(k)
}

impl Cem {
    /// CEM's declaration.
    pub fn declaration() -> PlannerDecl {
        fn work(p: &Params) -> Result<f64> {
            let c = CemConfig::from_params(p)?;
            Ok((c.samples * c.iterations * c.horizon) as f64)
        }
        PlannerDecl {
            name: "cem",
            summary: "Mode-2 planning with the cross-entropy method",
            schema: CemConfig::schema,
            build: build_from_settings::<Cem>,
            work,
        }
    }
}

impl FromSettings for Cem {
    type Settings = CemConfig;
    fn from_settings(settings: CemConfig, space: &ActionSpace) -> Result<Self> {
        Self::new(settings, space.require_box("cem")?.clone())
    }
    fn use_backend(&mut self, cpu: Arc<Cpu>) {
        self.set_backend(cpu);
    }
}

impl Planner for Cem {
    fn name(&self) -> &str {
        "cem"
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
        update_settings(&mut self.cfg, CemConfig::validate, |c| {
            c.iterations = budget.iterations;
            c.deadline_ms = budget.deadline_ms();
        })
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        update_settings(&mut self.cfg, CemConfig::validate, |c| c.horizon = horizon)?;
        self.warm = None;
        Ok(())
    }

    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let deadline = Deadline::start(self.cfg.deadline_ms);
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        check_request("cem", t_len, &self.bounds, req)?;
        let mut mean = start_plan(self.proposal.take(), self.warm.take(), self.cfg.warm_start, t_len, &self.bounds);
        if self.fast_path {
            if let Some(fp) = fast::problem(req) {
                return self.plan_fast(&fp, mean, &deadline);
            }
        }
        // Counts from a call that failed part-way are not this call's.
        self.rollout.take_tally();
        let mut std = Array2::from_elem((t_len, a_dim), self.cfg.init_std);
        if self.samples.dim() != (t_len, n, a_dim) {
            self.samples = Array3::zeros((t_len, n, a_dim));
        }
        let mut best: Option<(f32, Array2<f32>)> = None;
        let mut iterations = 0;
        let mut evaluated = 0;
        for _ in 0..self.cfg.iterations {
            if deadline.expired(iterations) {
                break;
            }
            for t in 0..t_len {
                for i in 0..n {
                    for j in 0..a_dim {
                        let eps: f32 = StandardNormal.sample(&mut self.rng);
                        let v = mean[[t, j]] + std[[t, j]] * eps;
                        self.samples[[t, i, j]] = v.clamp(self.bounds.low[j], self.bounds.high[j]);
                    }
                }
            }
            self.rollout.energies(req.model, req.cost, req.state, self.samples.view(), &mut self.energies)?;
            evaluated += n;
            iterations += 1;
            let Some(k) = lowest_k(&self.energies, self.cfg.elite_count(), &mut self.order) else {
                return Err(CoreError::non_finite("cem", n, &self.rollout.take_tally()));
            };
            if self.cfg.return_best {
                let i0 = self.order[0];
                if best.as_ref().is_none_or(|(e, _)| self.energies[i0] < *e) {
                    best = Some((self.energies[i0], self.samples.index_axis(Axis(1), i0).to_owned()));
                }
            }
            let samples = &self.samples;
            let (mean_s, std_s) = (mean.as_slice_mut().expect("standard layout"), std.as_slice_mut().expect("standard layout"));
            refit(mean_s, std_s, a_dim, &self.order, k, &self.cfg, |t, j| samples.index_axis(ndarray::Axis(0), t).index_axis_move(ndarray::Axis(1), j));
        }
        let energy = Rollout::energy_of(req.model, req.cost, req.state, &mean)?;
        let plan = final_plan("cem", (mean, energy), best, iterations, evaluated, self.rollout.take_tally())?;
        self.warm = Some(plan.actions.clone());
        Ok(plan)
    }
}
