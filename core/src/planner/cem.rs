use std::time::Instant;

use std::sync::Arc;

use ami_kernels::rng::derive_key;
use ami_kernels::{Cpu, Sampling, SeqBatch};
use ndarray::{Array1, Array2, Array3, Axis};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::fast::{self, FastProblem};
use super::{check_request, initial_mean, update_settings, Bounds, Budget, Plan, PlanRequest, Planner, Rollout};
use crate::error::{CoreError, Result};
use crate::rng::{rng, AmiRng};

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
    /// Lowest-energy samples the distribution is refit on.
    pub elites: usize,
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
    /// Optional wall-clock deadline per call, in milliseconds.
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
            elites: 64,
            init_std: 0.5,
            min_std: 0.0,
            momentum: 0.0,
            warm_start: true,
            return_best: false,
            deadline_ms: None,
        }
    }
}

impl CemConfig {
    fn validate(&self) -> Result<()> {
        let bad = |f: &str, r: String| Err(CoreError::config(format!("cem.{f}"), r));
        if self.horizon == 0 {
            return bad("horizon", "must be at least 1".into());
        }
        if self.samples == 0 {
            return bad("samples", "must be at least 1".into());
        }
        if self.elites == 0 || self.elites > self.samples {
            return bad("elites", format!("must be in 1..={} (samples), got {}", self.samples, self.elites));
        }
        if !(self.init_std >= 0.0 && self.init_std.is_finite()) {
            return bad("init_std", format!("must be finite and >= 0, got {}", self.init_std));
        }
        if !(self.min_std >= 0.0 && self.min_std.is_finite()) {
            return bad("min_std", format!("must be finite and >= 0, got {}", self.min_std));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("must be in [0, 1), got {}", self.momentum));
        }
        if let Some(d) = self.deadline_ms {
            if !(d > 0.0 && d.is_finite()) {
                return bad("deadline_ms", format!("must be positive, got {d}"));
            }
        }
        Ok(())
    }
}

/// The cross-entropy method: sample action sequences from a diagonal
/// Gaussian (clipped to the bounds), keep the `elites` lowest-energy ones,
/// refit mean and standard deviation (ddof = 0) on them; return the mean.
pub struct Cem {
    cfg: CemConfig,
    bounds: Bounds,
    rng: AmiRng,
    warm: Option<Array2<f32>>,
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
            cfg,
            bounds,
            rng: rng(0),
            warm: None,
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

    fn plan_fast(&mut self, fp: &FastProblem<'_>, mean: Array2<f32>, start: Instant) -> Result<Plan> {
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
        for it in 0..self.cfg.iterations {
            if let Some(d) = self.cfg.deadline_ms {
                if iterations > 0 && start.elapsed().as_secs_f64() * 1e3 >= d {
                    break;
                }
            }
            let spec = Sampling { mean: &mean, std: &std, low: &self.bounds.low, high: &self.bounds.high, key: derive_key(key, it as u64) };
            let e = self.energies.as_slice_mut().expect("contiguous");
            cpu.sample_energies(fp.net, &fp.cost, &fp.s0, &spec, &mut self.batch, e).map_err(|e| fast::kernel_err("cem", e))?;
            evaluated += n;
            iterations += 1;
            let Some(k) = lowest_k(&self.energies, self.cfg.elites, &mut self.order) else {
                return Err(CoreError::NonFinite { planner: "cem".into(), samples: n });
            };
            if self.cfg.return_best {
                let i0 = self.order[0];
                if best.as_ref().is_none_or(|(e, _)| self.energies[i0] < *e) {
                    best = Some((self.energies[i0], self.batch.sequence(i0)));
                }
            }
            let inv_k = 1.0 / k as f32;
            let m = self.cfg.momentum;
            for t in 0..t_len {
                for j in 0..a_dim {
                    let row = self.batch.row(t, j);
                    let mut mu = 0.0f32;
                    for &i in &self.order {
                        mu += row[i];
                    }
                    mu *= inv_k;
                    let mut var = 0.0f32;
                    for &i in &self.order {
                        let d = row[i] - mu;
                        var += d * d;
                    }
                    let sd = (var * inv_k).sqrt().max(self.cfg.min_std);
                    let r = t * a_dim + j;
                    mean[r] = m * mean[r] + (1.0 - m) * mu;
                    std[r] = m * std[r] + (1.0 - m) * sd;
                }
            }
        }
        let mut actions = fast::to_plan(t_len, a_dim, mean);
        let mut energy = fast::plan_energy("cem", &cpu, fp, &actions)?;
        if let Some((e, b)) = best {
            if e < energy || !energy.is_finite() {
                actions = fast::to_plan(t_len, a_dim, b);
                energy = e;
            }
        }
        if actions.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { planner: "cem".into(), samples: evaluated });
        }
        self.warm = Some(actions.clone());
        Ok(Plan { actions, energy, iterations, evaluated })
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
        self.rng = rng(seed);
        self.warm = None;
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
        let start = Instant::now();
        let (t_len, a_dim, n) = (self.cfg.horizon, self.bounds.dim(), self.cfg.samples);
        check_request("cem", t_len, &self.bounds, req)?;
        let mut mean = initial_mean(self.warm.take(), self.cfg.warm_start, t_len, &self.bounds);
        if self.fast_path {
            if let Some(fp) = fast::problem(req) {
                return self.plan_fast(&fp, mean, start);
            }
        }
        let mut std = Array2::from_elem((t_len, a_dim), self.cfg.init_std);
        if self.samples.dim() != (t_len, n, a_dim) {
            self.samples = Array3::zeros((t_len, n, a_dim));
        }
        let mut best: Option<(f32, Array2<f32>)> = None;
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
                        let v = mean[[t, j]] + std[[t, j]] * eps;
                        self.samples[[t, i, j]] = v.clamp(self.bounds.low[j], self.bounds.high[j]);
                    }
                }
            }
            self.rollout.energies(req.model, req.cost, req.state, self.samples.view(), &mut self.energies)?;
            evaluated += n;
            iterations += 1;
            let Some(k) = lowest_k(&self.energies, self.cfg.elites, &mut self.order) else {
                return Err(CoreError::NonFinite { planner: "cem".into(), samples: n });
            };
            if self.cfg.return_best {
                let i0 = self.order[0];
                if best.as_ref().is_none_or(|(e, _)| self.energies[i0] < *e) {
                    best = Some((self.energies[i0], self.samples.index_axis(Axis(1), i0).to_owned()));
                }
            }
            let inv_k = 1.0 / k as f32;
            let m = self.cfg.momentum;
            for t in 0..t_len {
                for j in 0..a_dim {
                    let mut mu = 0.0f32;
                    for &i in &self.order {
                        mu += self.samples[[t, i, j]];
                    }
                    mu *= inv_k;
                    let mut var = 0.0f32;
                    for &i in &self.order {
                        let d = self.samples[[t, i, j]] - mu;
                        var += d * d;
                    }
                    let sd = (var * inv_k).sqrt().max(self.cfg.min_std);
                    mean[[t, j]] = m * mean[[t, j]] + (1.0 - m) * mu;
                    std[[t, j]] = m * std[[t, j]] + (1.0 - m) * sd;
                }
            }
        }
        let mut actions = mean;
        let mut energy = Rollout::energy_of(req.model, req.cost, req.state, &actions)?;
        if let Some((e, b)) = best {
            if e < energy || !energy.is_finite() {
                actions = b;
                energy = e;
            }
        }
        if actions.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { planner: "cem".into(), samples: evaluated });
        }
        self.warm = Some(actions.clone());
        Ok(Plan { actions, energy, iterations, evaluated })
    }
}
