//! # sampling — an ami plugin
//!
//! `sampling/predictive`: predictive sampling (Howell et al., 2022), a
//! derivative-free Mode-2 planner. Each iteration perturbs the nominal plan
//! with Gaussian noise, rolls every candidate (and the nominal itself)
//! through the **host's** world model, scores it with the host's cost, and
//! keeps the best as the new nominal. The plan is warm-started from the
//! previous call shifted by one step.
//!
//! It shows how a plugin planner calls back into the host: the world model
//! and cost it optimises may themselves be built-in modules or other
//! plugins.

use std::time::{Duration, Instant};

use ami_plugin_abi::prelude::*;

/// The predictive-sampling planner.
#[derive(Debug, Clone)]
pub struct PredictiveSampling {
    horizon: usize,
    samples: usize,
    iterations: usize,
    noise: f32,
    deadline: Option<Duration>,
    rng: u64,
    nominal: Vec<f32>,
    cand: Vec<f32>,
    cur: Vec<f32>,
    next: Vec<f32>,
    step_a: Vec<f32>,
    step_e: Vec<f32>,
    energy: Vec<f32>,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn normal(state: &mut u64) -> f32 {
    let u1 = ((splitmix(state) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

impl Module for PredictiveSampling {
    const NAME: &'static str = "predictive";
    const DESCRIPTION: &'static str = "predictive sampling: perturb the nominal plan, keep the best rollout under the host's model and cost";
    const PARAMS: &'static [Param] = &[
        Param::new("horizon", "integer", "20", "planning horizon in steps"),
        Param::new("samples", "integer", "128", "candidate sequences per iteration (the nominal is one of them)"),
        Param::new("iterations", "integer", "4", "iterations per planning call"),
        Param::new("noise", "number", "0.5", "noise standard deviation as a fraction of half the action range"),
    ];
    fn create(config: &Config) -> Result<Self, Error> {
        let horizon = config.usize_or("horizon", 20)?;
        let samples = config.usize_or("samples", 128)?;
        let iterations = config.usize_or("iterations", 4)?;
        let noise = config.f32_or("noise", 0.5)?;
        if horizon == 0 || samples < 2 || iterations == 0 {
            return Err(Error::new(format!("need horizon >= 1, samples >= 2, iterations >= 1; got {horizon}, {samples}, {iterations}")));
        }
        if !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::new(format!("parameter `noise`: must be finite and >= 0, got {noise}")));
        }
        Ok(Self {
            horizon,
            samples,
            iterations,
            noise,
            deadline: None,
            rng: 0,
            nominal: Vec::new(),
            cand: Vec::new(),
            cur: Vec::new(),
            next: Vec::new(),
            step_a: Vec::new(),
            step_e: Vec::new(),
            energy: Vec::new(),
        })
    }
    fn reset(&mut self, seed: u64) -> Result<(), Error> {
        self.rng = seed;
        self.nominal.clear();
        Ok(())
    }
}

impl PredictiveSampling {
    /// Energies of the `samples` candidates in `self.cand` (`[n][t][a]`).
    fn evaluate(&mut self, p: &Problem<'_>) -> Result<(), Error> {
        let (n, h, s, a) = (self.samples, self.horizon, p.state_dim(), p.action_dim());
        self.cur.resize(n * s, 0.0);
        self.next.resize(n * s, 0.0);
        self.step_a.resize(n * a, 0.0);
        self.step_e.resize(n, 0.0);
        self.energy.clear();
        self.energy.resize(n, 0.0);
        for row in self.cur.chunks_mut(s) {
            row.copy_from_slice(p.state());
        }
        let cost = p.cost();
        for t in 0..h {
            for k in 0..n {
                let src = &self.cand[(k * h + t) * a..(k * h + t + 1) * a];
                self.step_a[k * a..(k + 1) * a].copy_from_slice(src);
            }
            let cur = Tensor::from_slice(&self.cur, n, s)?;
            let act = Tensor::from_slice(&self.step_a, n, a)?;
            {
                let mut next = TensorMut::from_slice(&mut self.next, n, s)?;
                p.predict(cur, act, &mut next)?;
            }
            cost.step_energy(t, cur, act, Tensor::from_slice(&self.next, n, s)?, &mut self.step_e)?;
            for (e, de) in self.energy.iter_mut().zip(&self.step_e) {
                *e += de;
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        if cost.has_terminal() {
            cost.terminal_energy(h, Tensor::from_slice(&self.cur, n, s)?, &mut self.energy)?;
        }
        Ok(())
    }
}

impl Planner for PredictiveSampling {
    fn horizon(&self) -> usize {
        self.horizon
    }
    fn plan(&mut self, p: &Problem<'_>, mut plan: TensorMut<'_>) -> Result<PlanInfo, Error> {
        let t0 = Instant::now();
        let (h, a) = (self.horizon, p.action_dim());
        if plan.rows() != h || plan.cols() != a {
            return Err(Error::new(format!("plan buffer is [{}, {}], expected [{h}, {a}]", plan.rows(), plan.cols())));
        }
        let (low, high) = (p.low(), p.high());
        if self.nominal.len() != h * a {
            self.nominal = (0..h * a).map(|i| 0.5 * (low[i % a] + high[i % a])).collect();
        } else {
            // Warm start: shift one step, repeat the last action.
            self.nominal.copy_within(a.., 0);
        }
        let mut best_e = f32::INFINITY;
        let mut info = PlanInfo::default();
        for _ in 0..self.iterations {
            if self.deadline.is_some_and(|d| t0.elapsed() >= d) && info.iterations > 0 {
                break;
            }
            self.cand.resize(self.samples * h * a, 0.0);
            for k in 0..self.samples {
                for i in 0..h * a {
                    let d = i % a;
                    let v = if k == 0 { self.nominal[i] } else { self.nominal[i] + self.noise * 0.5 * (high[d] - low[d]) * normal(&mut self.rng) };
                    self.cand[k * h * a + i] = v.clamp(low[d], high[d]);
                }
            }
            self.evaluate(p)?;
            let (k, e) =
                self.energy.iter().copied().enumerate().filter(|(_, e)| e.is_finite()).fold((usize::MAX, f32::INFINITY), |b, x| if x.1 < b.1 { x } else { b });
            if k == usize::MAX {
                return Err(Error::new(format!("all {} candidates had non-finite energy", self.samples)));
            }
            if e <= best_e {
                best_e = e;
                self.nominal.copy_from_slice(&self.cand[k * h * a..(k + 1) * h * a]);
            }
            info.iterations += 1;
            info.evaluated += self.samples;
        }
        for t in 0..h {
            plan.row_mut(t).copy_from_slice(&self.nominal[t * a..(t + 1) * a]);
        }
        info.energy = best_e;
        Ok(info)
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<(), Error> {
        if horizon == 0 {
            return Err(Error::new("horizon must be at least 1"));
        }
        self.horizon = horizon;
        self.nominal.clear();
        Ok(())
    }
    fn set_budget(&mut self, iterations: usize, deadline: Option<Duration>) -> Result<(), Error> {
        if iterations == 0 {
            return Err(Error::new("iterations must be at least 1"));
        }
        self.iterations = iterations;
        self.deadline = deadline;
        Ok(())
    }
}

ami_plugin_abi::declare_plugin! {
    name: "sampling",
    version: env!("CARGO_PKG_VERSION"),
    modules: [planner: PredictiveSampling],
}
