use std::time::Instant;

use std::sync::Arc;

use ami_kernels::rng::derive_key;
use ami_kernels::{Cpu, Sampling, SeqBatch};
use ndarray::{Array1, Array2, Array3};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::fast::{self, FastProblem};
use super::{check_request, initial_mean, update_settings, Bounds, Budget, Plan, PlanRequest, Planner, Rollout};
use crate::error::{CoreError, Result};
use crate::rng::{rng, AmiRng};

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
    /// Optional wall-clock deadline per call, in milliseconds.
    pub deadline_ms: Option<f64>,
}

impl Default for MppiConfig {
    /// WORKLOAD.md's MPPI: 512 samples, 6 iterations, lambda 1, noise 0.5,
    /// horizon 16.
    fn default() -> Self {
        Self { horizon: 16, samples: 512, iterations: 6, temperature: 1.0, noise_std: 0.5, warm_start: true, deadline_ms: None }
    }
}

impl MppiConfig {
    fn validate(&self) -> Result<()> {
        let bad = |f: &str, r: String| Err(CoreError::config(format!("mppi.{f}"), r));
        if self.horizon == 0 {
            return bad("horizon", "must be at least 1".into());
        }
        if self.samples == 0 {
            return bad("samples", "must be at least 1".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature", format!("must be positive and finite, got {}", self.temperature));
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return bad("noise_std", format!("must be finite and >= 0, got {}", self.noise_std));
        }
        if let Some(d) = self.deadline_ms {
            if !(d > 0.0 && d.is_finite()) {
                return bad("deadline_ms", format!("must be positive, got {d}"));
            }
        }
        Ok(())
    }
}

/// MPPI: sample clipped perturbations of the mean sequence, weight them by
/// `softmax(-(E - min E) / lambda)` and move the mean to the weighted
/// average. Samples with non-finite energy get weight 0.
pub struct Mppi {
    cfg: MppiConfig,
    bounds: Bounds,
    rng: AmiRng,
    warm: Option<Array2<f32>>,
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
            cfg,
            bounds,
            rng: rng(0),
            warm: None,
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

    fn plan_fast(&mut self, fp: &FastProblem<'_>, mean: Array2<f32>, start: Instant) -> Result<Plan> {
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
        for it in 0..self.cfg.iterations {
            if let Some(d) = self.cfg.deadline_ms {
                if iterations > 0 && start.elapsed().as_secs_f64() * 1e3 >= d {
                    break;
                }
            }
            let spec = Sampling { mean: &mean, std: &std, low: &self.bounds.low, high: &self.bounds.high, key: derive_key(key, it as u64) };
            let e = self.energies.as_slice_mut().expect("contiguous");
            cpu.sample_energies(fp.net, &fp.cost, &fp.s0, &spec, &mut self.batch, e).map_err(|e| fast::kernel_err("mppi", e))?;
            evaluated += n;
            iterations += 1;
            if !softmax_weights(&self.energies, self.cfg.temperature, &mut self.weights) {
                return Err(CoreError::NonFinite { planner: "mppi".into(), samples: n });
            }
            for t in 0..t_len {
                for j in 0..a_dim {
                    let row = self.batch.row(t, j);
                    let mut acc = 0.0f32;
                    for (&w, &x) in self.weights.iter().zip(row) {
                        if w != 0.0 {
                            acc += w * x;
                        }
                    }
                    mean[t * a_dim + j] = acc;
                }
            }
        }
        let mean = fast::to_plan(t_len, a_dim, mean);
        let energy = fast::plan_energy("mppi", &cpu, fp, &mean)?;
        if mean.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { planner: "mppi".into(), samples: evaluated });
        }
        self.warm = Some(mean.clone());
        Ok(Plan { actions: mean, energy, iterations, evaluated })
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
        self.rng = rng(seed);
        self.warm = None;
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
        let start = Instant::now();
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        check_request("mppi", t_len, &self.bounds, req)?;
        let mut mean = initial_mean(self.warm.take(), self.cfg.warm_start, t_len, &self.bounds);
        if self.fast_path {
            if let Some(fp) = fast::problem(req) {
                return self.plan_fast(&fp, mean, start);
            }
        }
        if self.samples.dim() != (t_len, n, a_dim) {
            self.samples = Array3::zeros((t_len, n, a_dim));
        }
        let sigma = self.cfg.noise_std;
        let mut iterations = 0;
        let mut evaluated = 0;
        for _ in 0..self.cfg.iterations {
            if let Some(d) = self.cfg.deadline_ms {
                if iterations > 0 && start.elapsed().as_secs_f64() * 1e3 >= d {
                    break;
                }
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
            if !softmax_weights(&self.energies, self.cfg.temperature, &mut self.weights) {
                return Err(CoreError::NonFinite { planner: "mppi".into(), samples: n });
            }
            for t in 0..t_len {
                for j in 0..a_dim {
                    let mut acc = 0.0f32;
                    for (i, &w) in self.weights.iter().enumerate() {
                        if w != 0.0 {
                            acc += w * self.samples[[t, i, j]];
                        }
                    }
                    mean[[t, j]] = acc;
                }
            }
        }
        let energy = Rollout::energy_of(req.model, req.cost, req.state, &mean)?;
        if mean.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { planner: "mppi".into(), samples: evaluated });
        }
        self.warm = Some(mean.clone());
        Ok(Plan { actions: mean, energy, iterations, evaluated })
    }
}
