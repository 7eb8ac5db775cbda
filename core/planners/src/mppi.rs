use std::sync::Arc;

use ami_kernels::rng::derive_key;
use ami_kernels::{Cpu, Sampling, SeqBatch};
use ndarray::{Array1, Array2, Array3};
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

/// Settings of model-predictive path integral control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MppiConfig {
    /// Planning horizon in steps.
    pub horizon: usize,
    /// Action sequences sampled per iteration.
    pub samples: usize,
    /// Iterations per planning call.
    pub iterations: usize,
    /// Temperature `lambda` of the softmax weights.
    pub temperature: f32,
    /// Standard deviation of the sampling noise.
    pub noise_std: f32,
    /// Start from the previous plan shifted by one step.
    pub warm_start: bool,
    /// Scale `temperature` by the standard deviation of each iteration's
    /// finite energies (then `temperature` is unitless: 1 weighs a sample
    /// one spread worse than the best by `e^-1`). Off by default: the
    /// temperature is in energy units, and a good value is about the spread
    /// of the energies, which depends on the cost's scale.
    pub relative_temperature: bool,
    /// Optional wall-clock deadline per call, in milliseconds. A deadline
    /// trades bit-exact determinism for a wall-clock bound (see
    /// [`CemConfig::deadline_ms`](crate::CemConfig::deadline_ms)).
    pub deadline_ms: Option<f64>,
}

impl Default for MppiConfig {
    /// WORKLOAD.md's MPPI: 512 samples, 6 iterations, lambda 1, noise 0.5,
    /// horizon 16.
    fn default() -> Self {
        Self { horizon: 16, samples: 512, iterations: 6, temperature: 1.0, noise_std: 0.5, warm_start: true, relative_temperature: false, deadline_ms: None }
    }
}

ami_core::settings!(MppiConfig {
    horizon [1, 1000]: "planning horizon in steps",
    samples [1, 65_536]: "action sequences sampled per iteration",
    iterations [1, 1000]: "iterations per planning call",
    temperature [1e-9, 1e9]: "temperature lambda of the softmax weights, in energy units (rule of thumb: about the spread of the samples' energies; see `relative_temperature`)",
    noise_std [0.0, 1e6]: "standard deviation of the sampling noise",
    warm_start: "start from the previous plan shifted by one step",
    relative_temperature: "scale lambda by the standard deviation of each iteration's finite energies, so `temperature` is unitless",
    deadline_ms [1e-3, 1e9]: "wall-clock deadline per planning call (ms); trades bit-exact determinism for a time bound",
});

impl MppiConfig {
    fn validate(&self) -> Result<()> {
        self.check("mppi")
    }
}

/// MPPI: sample clipped perturbations of the mean sequence, weight them by
/// `softmax(-(E - min E) / lambda)` and move the mean to the weighted
/// average. Samples with non-finite energy get weight 0.
pub struct Mppi {
    cfg: MppiConfig,
    /// The settings it was built with: `reset` returns to them.
    initial: MppiConfig,
    bounds: Bounds,
    rng: AmiRng,
    warm: Option<Array2<f32>>,
    proposal: Option<Array2<f32>>,
    samples: Array3<f32>,
    energies: Array1<f32>,
    weights: Vec<f32>,
    rollout: Rollout,
    backend: Option<Arc<Cpu>>,
    fast_path: bool,
    batch: SeqBatch,
}

impl Mppi {
    /// An MPPI planner with the given settings and action bounds.
    pub fn new(cfg: MppiConfig, bounds: Bounds) -> Result<Self> {
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
            weights: Vec::new(),
            rollout: Rollout::new(),
            backend: None,
            fast_path: true,
            batch: SeqBatch::new(0, 0, 0),
        })
    }
    /// The settings.
    pub fn config(&self) -> &MppiConfig {
        &self.cfg
    }
    /// Runs the fused fast path on `cpu` (default: [`Cpu::shared`]).
    pub fn set_backend(&mut self, cpu: Arc<Cpu>) {
        self.backend = Some(cpu);
    }
    /// Allows (default) or forbids the fused fast path (see
    /// [`Cem::set_fast_path`](super::Cem::set_fast_path)).
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
        let std = vec![self.cfg.noise_std; t_len * a_dim];
        let (mut iterations, mut evaluated) = (0, 0);
        let mut tally = ami_core::modules::NonFiniteTally::default();
        for it in 0..self.cfg.iterations {
            if deadline.expired(iterations) {
                break;
            }
            let spec = Sampling { mean: &mean, std: &std, low: &self.bounds.low, high: &self.bounds.high, key: derive_key(key, it as u64) };
            let e = self.energies.as_slice_mut().expect("contiguous");
            cpu.sample_energies(fp.net, &fp.cost, &fp.s0, &spec, &mut self.batch, e).map_err(|e| fast::kernel_err("mppi", e))?;
            tally_fused(&mut tally, e);
            evaluated += n;
            iterations += 1;
            let batch = &self.batch;
            update(&self.cfg, &self.energies, &mut self.weights, &mut mean, a_dim, |t, j| ndarray::ArrayView1::from(batch.row(t, j)))
                .map_err(|e| e.with_sources(&tally))?;
        }
        let mean = fast::to_plan(t_len, a_dim, mean);
        let energy = fast::plan_energy("mppi", &cpu, fp, &mean)?;
        let plan = final_plan("mppi", (mean, energy), None, iterations, evaluated, tally)?;
        self.warm = Some(plan.actions.clone());
        Ok(plan)
    }
}

/// Moves the mean to the softmax-weighted average of the samples
/// (`row(t, j)` gives every sample's value at step `t`, dimension `j`;
/// `mean` is `[T * A]`). The fused
/// and generic paths share it.
fn update<R: std::ops::Index<usize, Output = f32>>(
    cfg: &MppiConfig,
    energies: &Array1<f32>,
    weights: &mut Vec<f32>,
    mean: &mut [f32],
    a_dim: usize,
    row: impl Fn(usize, usize) -> R,
) -> Result<()> {
    let lambda = if cfg.relative_temperature { cfg.temperature * energy_spread(energies) } else { cfg.temperature };
    if !softmax_weights(energies, lambda, weights) {
        return Err(CoreError::non_finite("mppi", energies.len(), &Default::default()));
    }
    for t in 0..mean.len() / a_dim.max(1) {
        for j in 0..a_dim {
            let x = row(t, j);
            let mut acc = 0.0f32;
            for (i, &w) in weights.iter().enumerate() {
                if w != 0.0 {
                    acc += w * x[i];
                }
            }
            mean[t * a_dim + j] = acc;
        }
    }
    Ok(())
}

/// The standard deviation of the finite energies (1 when there are fewer
/// than two or they are all equal, so a relative temperature stays
/// positive).
fn energy_spread(energies: &Array1<f32>) -> f32 {
    let (mut n, mut sum) = (0usize, 0.0f64);
    for &e in energies.iter().filter(|e| e.is_finite()) {
        n += 1;
        sum += f64::from(e);
    }
    if n < 2 {
        return 1.0;
    }
    let mean = sum / n as f64;
    let var = energies.iter().filter(|e| e.is_finite()).map(|&e| (f64::from(e) - mean).powi(2)).sum::<f64>() / n as f64;
    let sd = var.sqrt() as f32;
    if sd > 0.0 && sd.is_finite() {
        sd
    } else {
        1.0
    }
}

/// Softmax weights `exp(-(E - min E) / lambda)` normalised, 0 for
/// non-finite energies. Returns `false` if no energy is finite.
pub(crate) fn softmax_weights(energies: &Array1<f32>, lambda: f32, w: &mut Vec<f32>) -> bool {
    let min = energies.iter().copied().filter(|e| e.is_finite()).fold(f32::INFINITY, f32::min);
    if !min.is_finite() {
        return false;
    }
    w.clear();
    w.extend(energies.iter().map(|&e| if e.is_finite() { (-(e - min) / lambda).exp() } else { 0.0 }));
    let z: f32 = w.iter().sum();
    for x in w.iter_mut() {
        *x /= z;
    }
    true
}

impl Mppi {
    /// MPPI's declaration.
    pub fn declaration() -> PlannerDecl {
        fn work(p: &Params) -> Result<f64> {
            let c = MppiConfig::from_params(p)?;
            Ok((c.samples * c.iterations * c.horizon) as f64)
        }
        PlannerDecl {
            name: "mppi",
            summary: "Mode-2 planning with model-predictive path integral control",
            schema: MppiConfig::schema,
            build: build_from_settings::<Mppi>,
            work,
        }
    }
}

impl FromSettings for Mppi {
    type Settings = MppiConfig;
    fn from_settings(settings: MppiConfig, space: &ActionSpace) -> Result<Self> {
        Self::new(settings, space.require_box("mppi")?.clone())
    }
    fn use_backend(&mut self, cpu: Arc<Cpu>) {
        self.set_backend(cpu);
    }
}

impl Planner for Mppi {
    fn name(&self) -> &str {
        "mppi"
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
        update_settings(&mut self.cfg, MppiConfig::validate, |c| {
            c.iterations = budget.iterations;
            c.deadline_ms = budget.deadline_ms();
        })
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        update_settings(&mut self.cfg, MppiConfig::validate, |c| c.horizon = horizon)?;
        self.warm = None;
        Ok(())
    }

    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let deadline = Deadline::start(self.cfg.deadline_ms);
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        check_request("mppi", t_len, &self.bounds, req)?;
        let mut mean = start_plan(self.proposal.take(), self.warm.take(), self.cfg.warm_start, t_len, &self.bounds);
        if self.fast_path {
            if let Some(fp) = fast::problem(req) {
                return self.plan_fast(&fp, mean, &deadline);
            }
        }
        // Counts from a call that failed part-way are not this call's.
        self.rollout.take_tally();
        if self.samples.dim() != (t_len, n, a_dim) {
            self.samples = Array3::zeros((t_len, n, a_dim));
        }
        let sigma = self.cfg.noise_std;
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
                        self.samples[[t, i, j]] = (mean[[t, j]] + sigma * eps).clamp(self.bounds.low[j], self.bounds.high[j]);
                    }
                }
            }
            self.rollout.energies(req.model, req.cost, req.state, self.samples.view(), &mut self.energies)?;
            evaluated += n;
            iterations += 1;
            let samples = &self.samples;
            update(&self.cfg, &self.energies, &mut self.weights, mean.as_slice_mut().expect("standard layout"), a_dim, |t, j| {
                samples.index_axis(ndarray::Axis(0), t).index_axis_move(ndarray::Axis(1), j)
            })
            .map_err(|e| e.with_sources(&self.rollout.take_tally()))?;
        }
        let energy = Rollout::energy_of(req.model, req.cost, req.state, &mean)?;
        let plan = final_plan("mppi", (mean, energy), None, iterations, evaluated, self.rollout.take_tally())?;
        self.warm = Some(plan.actions.clone());
        Ok(plan)
    }
}
