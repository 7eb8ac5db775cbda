//! The cross-entropy method over a finite set of actions (Rubinstein's CE
//! for combinatorial problems): at every step of the horizon a categorical
//! distribution over the choices, sampled, scored through the world model,
//! and refit on the elites' frequencies.

use ndarray::{Array1, Array2, Array3};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::cem::lowest_k;
use crate::common::{check_request, choice_indices, discrete_start, update_settings, Deadline};
use crate::declaration::{build_from_settings, FromSettings, PlannerDecl};
use crate::rollout::Rollout;
use ami_core::error::{CoreError, Result};
use ami_core::rng::{rng, AmiRng};
use ami_core::{ActionSpace, Budget, Choices, Params, Plan, PlanRequest, Planner, Settings};

/// Settings of the categorical cross-entropy method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscreteCemConfig {
    /// Planning horizon in steps.
    pub horizon: usize,
    /// Action sequences sampled per iteration.
    pub samples: usize,
    /// Iterations per planning call.
    pub iterations: usize,
    /// Lowest-energy samples the distribution is refit on (`None`: an
    /// eighth of `samples`, at least 1).
    pub elites: Option<usize>,
    /// Smoothing of the refit: `p = momentum * p + (1 - momentum) *
    /// elite frequency`.
    pub momentum: f32,
    /// Floor on every choice's probability after a refit (0: none), so no
    /// choice is ruled out for good.
    pub min_prob: f32,
    /// Start from the previous plan shifted by one step: its choice at
    /// each step gets probability `warm_prob` (the rest is shared equally),
    /// and the shifted plan itself is one of the first samples.
    pub warm_start: bool,
    /// Probability of the warm plan's choice at each step of the first
    /// distribution (at least `1 / choices`: never below uniform).
    pub warm_prob: f32,
    /// Optional wall-clock deadline per call, in milliseconds (trades
    /// bit-exact determinism for a time bound, as for `cem`).
    pub deadline_ms: Option<f64>,
}

impl Default for DiscreteCemConfig {
    /// 256 samples, 4 iterations, 32 elites, horizon 16, momentum 0.2,
    /// the warm plan's choices at probability 0.8.
    fn default() -> Self {
        Self { horizon: 16, samples: 256, iterations: 4, elites: None, momentum: 0.2, min_prob: 0.0, warm_start: true, warm_prob: 0.8, deadline_ms: None }
    }
}

ami_core::settings!(DiscreteCemConfig {
    horizon [1, 1000]: "planning horizon in steps",
    samples [1, 65_536]: "action sequences sampled per iteration",
    iterations [1, 1000]: "iterations per planning call",
    elites [1, 65_536]: "lowest-energy samples the distributions are refit on (<= samples; default samples / 8)",
    momentum [0.0, 0.999]: "smoothing of the refit: p = momentum * p + (1 - momentum) * elite frequency",
    min_prob [0.0, 0.5]: "floor on each choice's probability after a refit (0: none)",
    warm_start: "start from the previous plan shifted by one step",
    warm_prob [0.0, 1.0]: "probability of the warm plan's choice at each step of the first distribution (at least 1 / choices)",
    deadline_ms [1e-3, 1e9]: "wall-clock deadline per planning call (ms); trades bit-exact determinism for a time bound",
});

impl DiscreteCemConfig {
    /// The elites used: `elites`, or an eighth of `samples` (at least 1).
    pub fn elite_count(&self) -> usize {
        self.elites.unwrap_or((self.samples / 8).max(1))
    }
    fn validate(&self) -> Result<()> {
        self.check(NAME)?;
        if self.elite_count() > self.samples {
            return Err(CoreError::config(format!("{NAME}.elites"), format!("must be in 1..={} (samples), got {}", self.samples, self.elite_count())));
        }
        Ok(())
    }
}

const NAME: &str = "cem-discrete";

/// The cross-entropy method over categorical distributions: one
/// distribution over the choices per step of the horizon, starting uniform
/// (or peaked on the warm plan), sampled independently per step; the
/// `elites` lowest-energy sequences refit each step's distribution to
/// their frequencies. The plan is the lowest-energy sequence seen, so a
/// call never returns worse than the warm plan it was seeded with.
pub struct DiscreteCem {
    cfg: DiscreteCemConfig,
    initial: DiscreteCemConfig,
    choices: Choices,
    rng: AmiRng,
    /// The previous plan as choice indices.
    warm: Option<Vec<usize>>,
    proposal: Option<Vec<usize>>,
    probs: Vec<f32>,
    picks: Vec<usize>,
    samples: Array3<f32>,
    energies: Array1<f32>,
    order: Vec<usize>,
    rollout: Rollout,
}

impl DiscreteCem {
    /// A categorical CEM over `choices`.
    pub fn new(cfg: DiscreteCemConfig, choices: Choices) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            initial: cfg,
            choices,
            rng: rng(0),
            warm: None,
            proposal: None,
            probs: Vec::new(),
            picks: Vec::new(),
            samples: Array3::zeros((0, 0, 0)),
            energies: Array1::zeros(0),
            order: Vec::new(),
            rollout: Rollout::new(),
        })
    }
    /// The settings.
    pub fn config(&self) -> &DiscreteCemConfig {
        &self.cfg
    }

    /// The categorical CEM's declaration.
    pub fn declaration() -> PlannerDecl {
        fn work(p: &Params) -> Result<f64> {
            let c = DiscreteCemConfig::from_params(p)?;
            Ok((c.samples * c.iterations * c.horizon) as f64)
        }
        PlannerDecl {
            name: NAME,
            summary: "Mode-2 planning over discrete actions: the cross-entropy method on one categorical distribution per step",
            schema: DiscreteCemConfig::schema,
            build: build_from_settings::<DiscreteCem>,
            work,
        }
    }

    /// The first distribution of a call: uniform, or peaked on `start`.
    fn initial_probs(&mut self, start: Option<&[usize]>) {
        let (t_len, n) = (self.cfg.horizon, self.choices.len());
        self.probs.clear();
        self.probs.resize(t_len * n, 1.0 / n as f32);
        if let (Some(start), true) = (start, n > 1) {
            let w = self.cfg.warm_prob.max(1.0 / n as f32);
            let rest = (1.0 - w) / (n - 1) as f32;
            for (t, &k) in start.iter().enumerate().take(t_len) {
                for (j, p) in self.probs[t * n..(t + 1) * n].iter_mut().enumerate() {
                    *p = if j == k { w } else { rest };
                }
            }
        }
    }

    /// Draws every sample's choice per step (sample 0 is `start` in the
    /// first iteration, when there is one) and writes the actions.
    fn sample(&mut self, start: Option<&[usize]>) {
        let (t_len, n, k) = (self.cfg.horizon, self.cfg.samples, self.choices.len());
        self.picks.resize(t_len * n, 0);
        for t in 0..t_len {
            let p = &self.probs[t * k..(t + 1) * k];
            for i in 0..n {
                let pick = match start {
                    Some(s) if i == 0 => s[t],
                    _ => {
                        let u: f32 = self.rng.gen();
                        let mut acc = 0.0;
                        // Rounding can leave `acc` below `u`: the last
                        // choice with any probability then.
                        let mut pick = p.iter().rposition(|&pj| pj > 0.0).unwrap_or(k - 1);
                        for (j, &pj) in p.iter().enumerate() {
                            acc += pj;
                            if u < acc {
                                pick = j;
                                break;
                            }
                        }
                        pick
                    }
                };
                self.picks[t * n + i] = pick;
                for (j, &v) in self.choices.row(pick).iter().enumerate() {
                    self.samples[[t, i, j]] = v;
                }
            }
        }
    }

    /// Refits each step's distribution on the `elites` samples in `order`.
    fn refit(&mut self, elites: usize) {
        let (t_len, n, k) = (self.cfg.horizon, self.cfg.samples, self.choices.len());
        let (m, floor) = (self.cfg.momentum, self.cfg.min_prob);
        let inv = 1.0 / elites as f32;
        let mut freq = vec![0.0f32; k];
        for t in 0..t_len {
            freq.iter_mut().for_each(|f| *f = 0.0);
            for &i in &self.order[..elites] {
                freq[self.picks[t * n + i]] += inv;
            }
            let p = &mut self.probs[t * k..(t + 1) * k];
            for (pj, &fj) in p.iter_mut().zip(&freq) {
                *pj = m * *pj + (1.0 - m) * fj;
            }
            if floor > 0.0 {
                p.iter_mut().for_each(|pj| *pj = pj.max(floor));
                let total: f32 = p.iter().sum();
                p.iter_mut().for_each(|pj| *pj /= total);
            }
        }
    }
}

impl FromSettings for DiscreteCem {
    type Settings = DiscreteCemConfig;
    fn from_settings(settings: DiscreteCemConfig, space: &ActionSpace) -> Result<Self> {
        Self::new(settings, space.require_choices(NAME)?.clone())
    }
}

impl Planner for DiscreteCem {
    fn name(&self) -> &str {
        NAME
    }
    fn horizon(&self) -> usize {
        self.cfg.horizon
    }
    fn action_dim(&self) -> usize {
        self.choices.dim()
    }
    fn reset(&mut self, seed: u64) {
        self.cfg = self.initial.clone();
        self.rng = rng(seed);
        self.warm = None;
        self.proposal = None;
    }
    fn propose(&mut self, plan: Array2<f32>) {
        self.proposal = choice_indices(&self.choices, &plan, self.cfg.horizon);
    }
    fn supports_proposals(&self) -> bool {
        true
    }
    fn warm_starts(&self) -> bool {
        self.cfg.warm_start
    }
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        update_settings(&mut self.cfg, DiscreteCemConfig::validate, |c| {
            c.iterations = budget.iterations;
            c.deadline_ms = budget.deadline_ms();
        })
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        update_settings(&mut self.cfg, DiscreteCemConfig::validate, |c| c.horizon = horizon)?;
        self.warm = None;
        Ok(())
    }

    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let deadline = Deadline::start(self.cfg.deadline_ms);
        let (t_len, n, a_dim) = (self.cfg.horizon, self.cfg.samples, self.choices.dim());
        check_request(NAME, t_len, self.choices.envelope(), req)?;
        let start = discrete_start(self.proposal.take(), self.warm.take(), self.cfg.warm_start, t_len);
        self.initial_probs(start.as_deref());
        if self.samples.dim() != (t_len, n, a_dim) {
            self.samples = Array3::zeros((t_len, n, a_dim));
        }
        let mut best: Option<(f32, Vec<usize>)> = None;
        let (mut iterations, mut evaluated) = (0, 0);
        // Counts from a call that failed part-way are not this call's.
        self.rollout.take_tally();
        for it in 0..self.cfg.iterations {
            if deadline.expired(iterations) {
                break;
            }
            self.sample(if it == 0 { start.as_deref() } else { None });
            self.rollout.energies(req.model, req.cost, req.state, self.samples.view(), &mut self.energies)?;
            evaluated += n;
            iterations += 1;
            let Some(k) = lowest_k(&self.energies, self.cfg.elite_count(), &mut self.order) else {
                return Err(CoreError::non_finite(NAME, n, &self.rollout.take_tally()));
            };
            let i0 = self.order[0];
            if best.as_ref().is_none_or(|(e, _)| self.energies[i0] < *e) {
                best = Some((self.energies[i0], (0..t_len).map(|t| self.picks[t * n + i0]).collect()));
            }
            self.refit(k);
        }
        let (energy, picks) = best.expect("at least one iteration ran and had a finite energy");
        let mut actions = Array2::zeros((t_len, a_dim));
        for (t, &k) in picks.iter().enumerate() {
            actions.row_mut(t).assign(&ndarray::ArrayView1::from(self.choices.row(k)));
        }
        self.warm = Some(picks);
        Ok(Plan { actions, energy, iterations, evaluated, non_finite: self.rollout.take_tally() })
    }
}
