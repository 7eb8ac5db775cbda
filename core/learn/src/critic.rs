//! A learned critic: an MLP estimate `V(s)` of the intrinsic cost still to
//! come from state `s` (paper §3.2-3.3), trained from the transitions in
//! memory by fitted value iteration on TD(lambda) targets ([`crate::targets`])
//! against a target network, and used by the planners as the terminal cost
//! of their rollouts, so a short horizon sees far.

use std::sync::Arc;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{CostContext, Critic, ShortTermMemory, TransitionBatch};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::ensemble::{forward, forward_normalized, input_gradient, Acts, Ensemble};
use crate::fit::{fit, Dataset, FitConfig, FitReport};
use crate::spec::{Activation, EnsembleSpec};
use crate::targets::{td_lambda, End};
use crate::train::Trainer;

/// An MLP critic over `state_dim` inputs with one output, the value in
/// cost units (normalisation included). Held as a one-member [`Ensemble`]
/// whose "state" is the value and whose "actions" are the states, so it
/// trains with the same [`Trainer`] and kernels as the world models.
#[derive(Debug, Clone)]
pub struct MlpCritic {
    name: String,
    net: Arc<Ensemble>,
    /// The network as the kernels' value (ReLU critics), for the planners'
    /// fused path.
    fast: Option<Arc<ami_kernels::ValueMlp>>,
}

impl MlpCritic {
    /// The ensemble shape of a critic over `state_dim` inputs.
    pub fn spec(state_dim: usize, hidden: Vec<usize>, activation: Activation) -> Result<EnsembleSpec> {
        if state_dim == 0 {
            return Err(CoreError::config("critic", "needs at least one state dimension"));
        }
        Ok(EnsembleSpec { activation, ..EnsembleSpec::new(1, state_dim - 1, hidden) })
    }
    /// A critic with fresh weights from `seed` (outputs near 0 until
    /// trained).
    pub fn new(name: impl Into<String>, state_dim: usize, hidden: Vec<usize>, activation: Activation, seed: u64) -> Result<Self> {
        Self::from_ensemble(name, Ensemble::new(Self::spec(state_dim, hidden, activation)?, seed)?)
    }
    /// A critic over a trained network (of [`MlpCritic::spec`]'s shape).
    pub fn from_ensemble(name: impl Into<String>, net: Ensemble) -> Result<Self> {
        let s = net.spec();
        if s.state_dim != 1 || s.members != 1 || s.probabilistic {
            return Err(CoreError::config("critic", "a critic network has one deterministic member with one output"));
        }
        let fast = net.to_value_mlp(0).map(Arc::new);
        Ok(Self { name: name.into(), net: Arc::new(net), fast })
    }
    /// The network.
    pub fn ensemble(&self) -> &Ensemble {
        &self.net
    }
    /// State width.
    pub fn state_dim(&self) -> usize {
        self.net.spec().input_dim()
    }
    /// `dV/ds` for every row of `states` (`[n, S]`).
    pub fn value_gradients(&self, states: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut x = states.to_owned();
        let norm = self.net.norm();
        norm.normalize_inputs(&mut x.view_mut());
        let isa = ami_kernels::Isa::detect();
        let mut acts = Acts::default();
        forward(isa, self.net.spec(), self.net.member(0), None, x.view(), &mut acts);
        // V = f(x) sd_t + mu_t with x = (s - mu) / sd: dV/ds = sd_t (df/dx) / sd.
        let mut g = Array2::from_elem((states.nrows(), 1), norm.target_std[0]);
        let mut d = input_gradient(isa, self.net.spec(), self.net.member(0), &acts, &mut g);
        for mut row in d.rows_mut() {
            for (v, sd) in row.iter_mut().zip(&norm.input_std) {
                *v /= sd;
            }
        }
        d
    }
    /// `V(s)` for every row of `states`.
    pub fn values(&self, states: ArrayView2<'_, f32>) -> Array1<f32> {
        let mut x = states.to_owned();
        let norm = self.net.norm();
        norm.normalize_inputs(&mut x.view_mut());
        let out = forward_normalized(&self.net, 0, x.view());
        out.column(0).mapv(|v| v * norm.target_std[0] + norm.target_mean[0])
    }
}

impl Critic for MlpCritic {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_value(&self, _ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, mut out: ArrayViewMut1<'_, f32>) -> Result<()> {
        if states.ncols() != self.state_dim() {
            // The planner checked the widths when the agent was built; a
            // mismatch here is a bug, reported rather than a panic.
            return Err(CoreError::shape(format!("critic `{}`", self.name), format!("states [*, {}]", self.state_dim()), format!("[*, {}]", states.ncols())));
        }
        out.scaled_add(weight, &self.values(states));
        Ok(())
    }
    fn train(&mut self, _batch: &TransitionBatch, _discount: f32) -> Result<f32> {
        Err(CoreError::module(self.name.clone(), "an MLP critic is trained by a `critic` trainer node (ami_learn::critic::fit_critic), not by Critic::train"))
    }
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }
    fn has_gradient(&self) -> bool {
        true
    }
    fn accelerated(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.fast.clone().map(|v| v as Arc<dyn std::any::Any + Send + Sync>)
    }
    fn add_value_gradient(&self, _ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, mut grad: ArrayViewMut2<'_, f32>) -> Result<()> {
        if states.ncols() != self.state_dim() || grad.dim() != states.dim() {
            return Err(CoreError::shape(
                "MlpCritic::add_value_gradient",
                format!("states and gradient [rows, {}]", self.state_dim()),
                format!("{:?} and {:?}", states.dim(), grad.dim()),
            ));
        }
        grad.scaled_add(weight, &self.value_gradients(states));
        Ok(())
    }
}

/// Transitions in order, with where each episode ends: what a critic is
/// fitted to.
#[derive(Debug, Clone)]
pub struct CriticData {
    /// `s_t`, `[n, S]`.
    pub states: Array2<f32>,
    /// `c_t`, the intrinsic cost of each transition.
    pub costs: Vec<f32>,
    /// `s_{t+1}`, `[n, S]`.
    pub next_states: Array2<f32>,
    /// How each transition relates to the next.
    pub ends: Vec<End>,
}

impl CriticData {
    /// The memory's perceived transitions, oldest first. A transition
    /// flagged `terminated` ends its episode at a terminal state (nothing
    /// is bootstrapped after it: the pole fell). Otherwise a transition is
    /// the last of its episode, cut by a time limit, when the next one
    /// does not follow it (another episode starts) or it is the last in
    /// memory: the value after it is bootstrapped, right for time-limited
    /// tasks such as Pendulum. Transitions with a non-finite cost are left
    /// out.
    pub fn from_memory(memory: &dyn ShortTermMemory) -> Result<Self> {
        let rows: Vec<_> = (0..memory.len()).filter_map(|i| memory.get(i)).filter(|t| !t.imagined).collect();
        let sd = memory.state_dim();
        let keep: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].cost.is_finite()).collect();
        let mut states = Array2::zeros((keep.len(), sd));
        let mut next_states = Array2::zeros((keep.len(), sd));
        let mut costs = Vec::with_capacity(keep.len());
        let mut ends = Vec::with_capacity(keep.len());
        for (r, &i) in keep.iter().enumerate() {
            let t = &rows[i];
            states.row_mut(r).assign(&ndarray::ArrayView1::from(&t.state[..]));
            next_states.row_mut(r).assign(&ndarray::ArrayView1::from(&t.next_state[..]));
            costs.push(t.cost);
            let continues = rows.get(i + 1).is_some_and(|n| n.t == t.t + 1) && keep.get(r + 1) == Some(&(i + 1));
            ends.push(if t.terminated {
                End::Terminated
            } else if continues {
                End::Continues
            } else {
                End::Truncated
            });
        }
        Ok(Self { states, costs, next_states, ends })
    }
    /// Number of transitions.
    pub fn len(&self) -> usize {
        self.costs.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.costs.is_empty()
    }
}

/// How to fit a critic.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticFitConfig {
    /// Rounds of fitted value iteration: targets from the target network,
    /// a fit, then the target network becomes the fitted critic.
    pub rounds: usize,
    /// Discount of future cost.
    pub discount: f32,
    /// TD(lambda)'s lambda (0: one-step targets, 1: returns to the
    /// episode's end).
    pub lambda: f32,
    /// Each round's regression fit.
    pub fit: FitConfig,
}

impl Default for CriticFitConfig {
    fn default() -> Self {
        Self { rounds: 5, discount: 0.97, lambda: 0.9, fit: FitConfig { epochs: 20, batch: 256, ..FitConfig::default() } }
    }
}

/// Fits the trainer's critic network to `data` (see the module docs),
/// starting from (and bootstrapping the first round's targets on) its
/// current weights; returns the last round's report.
pub fn fit_critic(trainer: &mut Trainer, data: &CriticData, cfg: &CriticFitConfig) -> Result<FitReport> {
    if data.len() < 2 {
        return Err(CoreError::config("critic", format!("needs at least 2 transitions, the memory has {}", data.len())));
    }
    if cfg.rounds == 0 {
        return Err(CoreError::config("rounds", "must be at least 1"));
    }
    let mut report = None;
    for round in 0..cfg.rounds {
        let target = MlpCritic::from_ensemble("target", trainer.ensemble().clone())?;
        let next_v = target.values(data.next_states.view());
        let y = td_lambda(&data.costs, next_v.as_slice().expect("contiguous"), &data.ends, cfg.discount, cfg.lambda)?;
        let set = Dataset { inputs: data.states.clone(), targets: Array2::from_shape_vec((y.len(), 1), y).expect("one target per row") };
        let fc = FitConfig { seed: ami_core::rng::derive_seed(cfg.fit.seed, &format!("critic round {round}")), ..cfg.fit.clone() };
        report = Some(fit(trainer, &set, &fc, &mut |_, _, _| {})?);
    }
    Ok(report.expect("at least one round"))
}
