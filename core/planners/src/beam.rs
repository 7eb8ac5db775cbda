//! Beam search over a finite set of actions: the tree of action sequences
//! expanded one step at a time through the world model, keeping the
//! `width` partial sequences of lowest energy at every depth.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::common::{check_request, choice_indices, discrete_start, update_settings, Deadline};
use crate::declaration::{build_from_settings, FromSettings, PlannerDecl};
use ami_core::error::{CoreError, Result};
use ami_core::{ActionSpace, Budget, Choices, Params, Plan, PlanRequest, Planner, Settings};

/// Settings of beam search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeamConfig {
    /// Planning horizon in steps (the depth of the tree).
    pub horizon: usize,
    /// Partial sequences kept at each depth.
    pub width: usize,
    /// Rank partial sequences by their energy so far plus the cost's
    /// terminal (critic) energy of their last state, when the cost has
    /// one: the critic's value-to-go guides the beam, not only the end.
    pub value_to_go: bool,
    /// Also score the previous plan shifted by one step (or a proposal
    /// given through `Planner::propose`), and return it when it beats the
    /// beam's best: a receding-horizon plan never gets worse for lack of
    /// width.
    pub warm_start: bool,
    /// Merge children whose predicted states (every particle) are equal
    /// bit for bit, keeping the one of lowest energy: with a deterministic
    /// model whose states recur (a grid, a graph of rooms) the beam holds
    /// distinct states, and a width at least the number of states makes
    /// the search exact (dynamic programming over the horizon).
    pub merge: bool,
    /// Optional wall-clock deadline per call, in milliseconds: once it has
    /// passed, the remaining depths keep one sequence (greedy). Trades
    /// bit-exact determinism for a time bound.
    pub deadline_ms: Option<f64>,
}

impl Default for BeamConfig {
    /// Horizon 16, width 64, value-to-go on.
    fn default() -> Self {
        Self { horizon: 16, width: 64, value_to_go: true, warm_start: true, merge: false, deadline_ms: None }
    }
}

ami_core::settings!(BeamConfig {
    horizon [1, 1000]: "planning horizon in steps (the depth of the tree)",
    width [1, 65_536]: "partial sequences kept at each depth",
    value_to_go: "rank partial sequences by energy so far plus the critic's energy of their last state",
    warm_start: "also score the previous plan shifted by one step (or a proposal) and keep it if it is better",
    merge: "merge children whose predicted states are equal bit for bit, keeping the lowest energy (exact search over recurring states)",
    deadline_ms [1e-3, 1e9]: "wall-clock deadline per planning call (ms); after it the beam narrows to one sequence",
});

const NAME: &str = "beam";

/// Beam search: from the current state, every kept sequence is extended
/// by every choice, the children are rolled one step through the world
/// model in one batch, and the `width` children of lowest energy (sum of
/// step energies so far, plus the critic's value of the last state with
/// `value_to_go`) are kept; at the horizon the lowest total energy,
/// terminal energy included, is the plan. With `width >= choices^horizon`
/// the search is exhaustive. With `warm_start`, the previous plan shifted
/// by one step (or a proposal) is scored too and kept when it is better.
/// It draws no random numbers: plans depend on the state and the previous
/// plan only. Models with several particles
/// ([`WorldModel::particles`](ami_core::WorldModel::particles)) score a
/// sequence as [`Rollout`](crate::Rollout) does: the particles' mean
/// energy plus the risk weight times their standard deviation.
pub struct Beam {
    cfg: BeamConfig,
    initial: BeamConfig,
    choices: Choices,
    scratch: Scratch,
    /// The previous plan as choice indices, and a proposal.
    warm: Option<Vec<usize>>,
    proposal: Option<Vec<usize>>,
}

/// The most rows (children times particles, times the state width) one
/// depth may hold: about 256 MB of f32 states.
pub const MAX_BEAM_VALUES: usize = 1 << 26;

/// Buffers reused across calls.
#[derive(Default)]
struct Scratch {
    /// Kept nodes' particle states `[B * P, S]` and energies `[B * P]`.
    cur: Array2<f32>,
    cur_e: Vec<f32>,
    /// Children: states before and after the step, actions, energies.
    from: Array2<f32>,
    next: Array2<f32>,
    acts: Array2<f32>,
    step: Array1<f32>,
    child_e: Vec<f32>,
    terminal: Array1<f32>,
    score: Vec<f32>,
    order: Vec<usize>,
    /// Choice index per depth of every kept node (`[B, depth]`) and of
    /// every child.
    hist: Vec<usize>,
    child_hist: Vec<usize>,
}

impl Beam {
    /// A beam search over `choices`.
    pub fn new(cfg: BeamConfig, choices: Choices) -> Result<Self> {
        cfg.check(NAME)?;
        Ok(Self { cfg: cfg.clone(), initial: cfg, choices, scratch: Scratch::default(), warm: None, proposal: None })
    }
    /// The settings.
    pub fn config(&self) -> &BeamConfig {
        &self.cfg
    }

    /// Beam search's declaration.
    pub fn declaration() -> PlannerDecl {
        fn work(p: &Params) -> Result<f64> {
            // Per depth `width` sequences times the number of choices; the
            // choices are not known from the parameters, so this counts
            // two (the smallest discrete space).
            let c = BeamConfig::from_params(p)?;
            Ok((2 * c.width * c.horizon) as f64)
        }
        PlannerDecl {
            name: NAME,
            summary: "Mode-2 planning over discrete actions: beam search through the world model, the critic as value-to-go",
            schema: BeamConfig::schema,
            build: build_from_settings::<Beam>,
            work,
        }
    }
}

impl FromSettings for Beam {
    type Settings = BeamConfig;
    fn from_settings(settings: BeamConfig, space: &ActionSpace) -> Result<Self> {
        Self::new(settings, space.require_choices(NAME)?.clone())
    }
}

/// Mean plus `risk` times the standard deviation of a group of particle
/// energies (the energy itself for one particle).
fn score(e: &[f32], risk: f32) -> f32 {
    if e.len() == 1 {
        return e[0];
    }
    let p = e.len() as f64;
    let mean = e.iter().map(|&v| f64::from(v)).sum::<f64>() / p;
    let var = e.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / p;
    (mean + f64::from(risk) * var.sqrt()) as f32
}

impl Planner for Beam {
    fn name(&self) -> &str {
        NAME
    }
    fn horizon(&self) -> usize {
        self.cfg.horizon
    }
    fn action_dim(&self) -> usize {
        self.choices.dim()
    }
    fn reset(&mut self, _seed: u64) {
        self.cfg = self.initial.clone();
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
    /// Applies the budget's deadline. Its iteration count does not apply:
    /// beam search expands every depth once (its work is set by `width`).
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        update_settings(&mut self.cfg, |c| c.check(NAME), |c| c.deadline_ms = budget.deadline_ms())
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        update_settings(&mut self.cfg, |c| c.check(NAME), |c| c.horizon = horizon)?;
        self.warm = None;
        Ok(())
    }

    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let deadline = Deadline::start(self.cfg.deadline_ms);
        let t_len = self.cfg.horizon;
        check_request(NAME, t_len, self.choices.envelope(), req)?;
        let (k, a_dim, s_dim) = (self.choices.len(), self.choices.dim(), req.state.len());
        let particles = req.model.particles();
        let p = particles.count.max(1);
        let widest = self.cfg.width.saturating_mul(k).saturating_mul(p).saturating_mul(s_dim.max(a_dim));
        if widest > MAX_BEAM_VALUES {
            return Err(CoreError::config(
                format!("{NAME}.width"),
                format!(
                    "width {} x {k} choices x {p} particles x width {} is more than {MAX_BEAM_VALUES} values a depth: lower `width`",
                    self.cfg.width,
                    s_dim.max(a_dim)
                ),
            ));
        }
        // The sequence to beat: a proposal, else the previous plan shifted.
        let start = discrete_start(self.proposal.take(), self.warm.take(), self.cfg.warm_start, t_len);
        let terminal = req.cost.has_terminal();
        let sc = &mut self.scratch;
        // The root: one node, its particles all at the current state.
        sc.cur = Array2::zeros((p, s_dim));
        for mut row in sc.cur.rows_mut() {
            row.assign(&req.state);
        }
        sc.cur_e.clear();
        sc.cur_e.resize(p, 0.0);
        sc.hist.clear();
        let mut nodes = 1;
        let mut expanded = 0;
        for t in 0..t_len {
            let children = nodes * k;
            let rows = children * p;
            if sc.from.dim() != (rows, s_dim) {
                sc.from = Array2::zeros((rows, s_dim));
                sc.next = Array2::zeros((rows, s_dim));
                sc.acts = Array2::zeros((rows, a_dim));
                sc.step = Array1::zeros(rows);
                sc.terminal = Array1::zeros(rows);
            }
            // Child c = node (c / k) extended by choice (c % k).
            for c in 0..children {
                let (b, choice) = (c / k, c % k);
                for q in 0..p {
                    sc.from.row_mut(c * p + q).assign(&sc.cur.row(b * p + q));
                    sc.acts.row_mut(c * p + q).assign(&ndarray::ArrayView1::from(self.choices.row(choice)));
                }
            }
            req.model.predict(sc.from.view(), sc.acts.view(), sc.next.view_mut())?;
            req.cost.step_energy(t, sc.from.view(), sc.acts.view(), sc.next.view(), sc.step.view_mut())?;
            expanded += children;
            sc.child_e.clear();
            sc.child_e.extend((0..rows).map(|r| sc.cur_e[(r / (k * p)) * p + r % p] + sc.step[r]));
            if particles.reassign && p > 1 {
                // As in `Rollout`: the trajectory in row q + 1 of each
                // group moves to row q (the model's next member).
                let next = sc.next.as_slice_mut().expect("standard layout");
                for g in next.chunks_exact_mut(p * s_dim) {
                    g.rotate_left(s_dim);
                }
                for e in sc.child_e.chunks_exact_mut(p) {
                    e.rotate_left(1);
                }
            }
            let last = t + 1 == t_len;
            let with_terminal = terminal && (last || self.cfg.value_to_go);
            if with_terminal {
                sc.terminal.fill(0.0);
                req.cost.add_terminal_energy(t + 1, sc.next.view(), sc.terminal.view_mut())?;
            }
            sc.score.clear();
            let mut group = vec![0.0f32; p];
            for c in 0..children {
                for (q, g) in group.iter_mut().enumerate() {
                    *g = sc.child_e[c * p + q] + if with_terminal { sc.terminal[c * p + q] } else { 0.0 };
                }
                sc.score.push(score(&group, particles.risk));
            }
            let keep = if last || deadline.expired(t) { 1 } else { self.cfg.width };
            sc.order.clear();
            sc.order.extend((0..children).filter(|&c| sc.score[c].is_finite()));
            if sc.order.is_empty() {
                return Err(CoreError::non_finite(NAME, children, &Default::default()));
            }
            let cmp = |a: &usize, b: &usize| sc.score[*a].total_cmp(&sc.score[*b]).then(a.cmp(b));
            if self.cfg.merge {
                sc.order.sort_unstable_by(cmp);
                let next = &sc.next;
                let mut seen = std::collections::HashSet::new();
                sc.order.retain(|&c| {
                    seen.insert(
                        next.rows().into_iter().skip(c * p).take(p).flat_map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()).collect::<Vec<u32>>(),
                    )
                });
                sc.order.truncate(keep);
            } else {
                if keep < sc.order.len() {
                    sc.order.select_nth_unstable_by(keep - 1, cmp);
                    sc.order.truncate(keep);
                }
                sc.order.sort_unstable_by(cmp);
            }
            // The kept children become the nodes of the next depth.
            nodes = sc.order.len();
            let mut cur = Array2::zeros((nodes * p, s_dim));
            let mut cur_e = Vec::with_capacity(nodes * p);
            sc.child_hist.clear();
            for (i, &c) in sc.order.iter().enumerate() {
                for q in 0..p {
                    cur.row_mut(i * p + q).assign(&sc.next.row(c * p + q));
                    cur_e.push(sc.child_e[c * p + q]);
                }
                let b = c / k;
                sc.child_hist.extend_from_slice(&sc.hist[b * t..(b + 1) * t]);
                sc.child_hist.push(c % k);
            }
            sc.cur = cur;
            sc.cur_e = cur_e;
            std::mem::swap(&mut sc.hist, &mut sc.child_hist);
        }
        // One node is left: the best full sequence, unless the warm start
        // is better.
        let mut energy = sc.score[sc.order[0]];
        let mut picks = sc.hist[..t_len].to_vec();
        let rows = |picks: &[usize]| {
            let mut actions = Array2::zeros((t_len, a_dim));
            for (t, &choice) in picks.iter().enumerate() {
                actions.row_mut(t).assign(&ndarray::ArrayView1::from(self.choices.row(choice)));
            }
            actions
        };
        if let Some(w) = start {
            let e = crate::Rollout::energy_of(req.model, req.cost, req.state, &rows(&w))?;
            expanded += t_len;
            if e < energy {
                energy = e;
                picks = w;
            }
        }
        let actions = rows(&picks);
        self.warm = Some(picks);
        // `evaluated` counts whole sequences: model steps over the horizon.
        Ok(Plan { actions, energy, iterations: 1, evaluated: expanded.div_ceil(t_len), non_finite: Default::default() })
    }
}
