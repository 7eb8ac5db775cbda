//! A learned Mode-1 policy (paper §3.1.3): an MLP `a = π(s)` distilled
//! from the Mode-2 planner's decisions, so the agent can act in
//! microseconds where planning takes milliseconds, or start planning from
//! the policy's proposal.
//!
//! The policy is trained by regression on `(state, planned action)` pairs
//! ([`PolicyData`]): behaviour cloning when the planner acted, DAgger when
//! the policy acted and the planner only labelled the states it visited
//! (the states the policy itself reaches are the ones it must get right).

use std::sync::Arc;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{Policy, ShortTermMemory};
use ami_core::Bounds;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};

use crate::ensemble::{forward, input_gradient, Acts, Ensemble};
use crate::fit::{fit, Dataset, FitConfig, FitReport};
use crate::spec::{Activation, EnsembleSpec};
use crate::train::Trainer;

/// An MLP policy from `state_dim` inputs to `action_dim` actions, clamped
/// into the action bounds (normalisation included). Held as a one-member
/// [`Ensemble`] whose "state" is the action and whose "actions" are the
/// state's columns, so it trains with the same [`Trainer`] and kernels as
/// the world models and critics. When a state is not wider than an action
/// the input is padded with constant zero columns (which the normalisation
/// leaves at zero, so they change nothing).
#[derive(Debug, Clone)]
pub struct MlpPolicy {
    name: String,
    net: Arc<Ensemble>,
    state_dim: usize,
    bounds: Bounds,
}

/// Zero columns padded onto a state so the network's input is wider than
/// its output (what [`EnsembleSpec`] needs).
fn padding(state_dim: usize, action_dim: usize) -> usize {
    (action_dim + 1).saturating_sub(state_dim)
}

impl MlpPolicy {
    /// The ensemble shape of a policy from `state_dim` to `action_dim`.
    pub fn spec(state_dim: usize, action_dim: usize, hidden: Vec<usize>, activation: Activation) -> Result<EnsembleSpec> {
        if state_dim == 0 || action_dim == 0 {
            return Err(CoreError::config("policy", format!("needs states and actions at least 1 wide (found {state_dim} and {action_dim})")));
        }
        let inputs = state_dim + padding(state_dim, action_dim);
        Ok(EnsembleSpec { activation, ..EnsembleSpec::new(action_dim, inputs - action_dim, hidden) })
    }
    /// A policy with fresh weights from `seed` (actions near the middle of
    /// the bounds' range until trained).
    pub fn new(name: impl Into<String>, state_dim: usize, bounds: &Bounds, hidden: Vec<usize>, activation: Activation, seed: u64) -> Result<Self> {
        let net = Ensemble::new(Self::spec(state_dim, bounds.dim(), hidden, activation)?, seed)?;
        Self::from_ensemble(name, net, state_dim, bounds)
    }
    /// A policy over a trained network of [`MlpPolicy::spec`]'s shape for
    /// `state_dim` and the bounds' width.
    pub fn from_ensemble(name: impl Into<String>, net: Ensemble, state_dim: usize, bounds: &Bounds) -> Result<Self> {
        let s = net.spec();
        let a = bounds.dim();
        if s.members != 1 || s.probabilistic {
            return Err(CoreError::config("policy", "a policy network has one deterministic member"));
        }
        if s.state_dim != a || s.input_dim() != state_dim + padding(state_dim, a) {
            return Err(CoreError::config(
                "policy",
                format!(
                    "the network maps {} inputs to {} actions; a policy for states {state_dim} wide and actions {a} wide needs {} inputs and {a} outputs",
                    s.input_dim(),
                    s.state_dim,
                    state_dim + padding(state_dim, a)
                ),
            ));
        }
        Ok(Self { name: name.into(), net: Arc::new(net), state_dim, bounds: bounds.clone() })
    }
    /// The name (the agent file's node).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The network.
    pub fn ensemble(&self) -> &Ensemble {
        &self.net
    }
    /// State width.
    pub fn state_dim(&self) -> usize {
        self.state_dim
    }
    /// The bounds the actions are clamped into.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }
    /// Normalised, padded network inputs for `states`.
    fn inputs(&self, states: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut x = Array2::zeros((states.nrows(), self.net.spec().input_dim()));
        x.slice_axis_mut(Axis(1), Slice::from(..self.state_dim)).assign(&states);
        self.net.norm().normalize_inputs(&mut x.view_mut());
        x
    }
    /// The network's actions before clamping, and the forward pass.
    fn raw(&self, states: ArrayView2<'_, f32>) -> (Array2<f32>, Acts) {
        let x = self.inputs(states);
        let mut acts = Acts::default();
        forward(ami_kernels::Isa::detect(), self.net.spec(), self.net.member(0), None, x.view(), &mut acts);
        let norm = self.net.norm();
        let mut out = acts.output().clone();
        for mut row in out.rows_mut() {
            for ((v, m), sd) in row.iter_mut().zip(&norm.target_mean).zip(&norm.target_std) {
                *v = *v * sd + m;
            }
        }
        (out, acts)
    }
    /// Actions `[n, A]` for the rows of `states` (`[n, S]`), clamped into
    /// the bounds.
    pub fn actions(&self, states: ArrayView2<'_, f32>) -> Array2<f32> {
        let (mut out, _) = self.raw(states);
        for mut row in out.rows_mut() {
            self.bounds.clamp(row.as_slice_mut().expect("standard layout"));
        }
        out
    }
    /// The action for one state.
    pub fn action(&self, state: ArrayView1<'_, f32>) -> Array1<f32> {
        self.actions(state.insert_axis(Axis(0))).row(0).to_owned()
    }
    /// Vector-Jacobian products `u_i^T (da/ds)(s_i)` for every row `s_i` of
    /// `states` and `u_i` of `upstream` (`[n, A]`): the gradient of
    /// `sum_i u_i . π(s_i)` with respect to the states. A clamped action
    /// coordinate has no gradient.
    pub fn state_gradients(&self, states: ArrayView2<'_, f32>, upstream: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let a = self.bounds.dim();
        if states.ncols() != self.state_dim || upstream.dim() != (states.nrows(), a) {
            return Err(CoreError::shape(
                "MlpPolicy::state_gradients",
                format!("states [n, {}] and upstream [n, {a}]", self.state_dim),
                format!("{:?} and {:?}", states.dim(), upstream.dim()),
            ));
        }
        let (raw, acts) = self.raw(states);
        let norm = self.net.norm();
        // a = clamp(f(x) sd_t + mu_t) with x = (s - mu) / sd.
        let mut g = upstream.to_owned();
        for (mut gr, rr) in g.rows_mut().into_iter().zip(raw.rows()) {
            for j in 0..a {
                gr[j] = if rr[j] < self.bounds.low[j] || rr[j] > self.bounds.high[j] { 0.0 } else { gr[j] * norm.target_std[j] };
            }
        }
        let d = input_gradient(ami_kernels::Isa::detect(), self.net.spec(), self.net.member(0), &acts, &mut g);
        let mut out = d.slice_axis(Axis(1), Slice::from(..self.state_dim)).to_owned();
        for mut row in out.rows_mut() {
            for (v, sd) in row.iter_mut().zip(&norm.input_std) {
                *v /= sd;
            }
        }
        Ok(out)
    }
}

impl Policy for MlpPolicy {
    fn action_dim(&self) -> usize {
        self.bounds.dim()
    }
    fn act_batch(&self, states: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if states.ncols() != self.state_dim {
            return Err(CoreError::shape(format!("policy `{}`: states", self.name), format!("width {}", self.state_dim), format!("width {}", states.ncols())));
        }
        Ok(self.actions(states))
    }
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }
}

/// `(state, action)` pairs a policy is fitted to: the planner's decision
/// (the teacher's label) in each state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyData {
    /// States, `[n, S]` row-major.
    states: Vec<f32>,
    /// Actions, `[n, A]` row-major.
    actions: Vec<f32>,
    state_dim: usize,
    action_dim: usize,
}

impl PolicyData {
    /// No pairs yet, for states `state_dim` wide and actions `action_dim`.
    pub fn new(state_dim: usize, action_dim: usize) -> Self {
        Self { states: Vec::new(), actions: Vec::new(), state_dim, action_dim }
    }
    /// The perceived transitions of `memory`, each state with the action
    /// taken in it: behaviour cloning of whatever acted (the planner, when
    /// no exploration or policy acted).
    pub fn from_memory(memory: &dyn ShortTermMemory) -> Self {
        let mut d = Self::new(memory.state_dim(), memory.action_dim());
        for t in (0..memory.len()).filter_map(|i| memory.get(i)).filter(|t| !t.imagined) {
            // Widths are the memory's own, so the push cannot fail.
            let _ = d.push(ArrayView1::from(&t.state[..]), ArrayView1::from(&t.action[..]));
        }
        d
    }
    /// Adds a pair; refuses widths that differ from the data's and
    /// non-finite values (a failed plan is no label).
    pub fn push(&mut self, state: ArrayView1<'_, f32>, action: ArrayView1<'_, f32>) -> Result<()> {
        if state.len() != self.state_dim || action.len() != self.action_dim {
            return Err(CoreError::shape(
                "PolicyData::push",
                format!("state {} and action {} wide", self.state_dim, self.action_dim),
                format!("{} and {}", state.len(), action.len()),
            ));
        }
        if state.iter().chain(action.iter()).any(|v| !v.is_finite()) {
            return Err(CoreError::module("policy data", "a state or action is not finite"));
        }
        self.states.extend(state.iter());
        self.actions.extend(action.iter());
        Ok(())
    }
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.actions.len() / self.action_dim.max(1)
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
    /// State width.
    pub fn state_dim(&self) -> usize {
        self.state_dim
    }
    /// The states, `[n, S]`.
    pub fn states(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.len(), self.state_dim), &self.states).expect("n * S floats")
    }
    /// The actions, `[n, A]`.
    pub fn actions(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.len(), self.action_dim), &self.actions).expect("n * A floats")
    }
    /// The regression set of a policy network of `spec` (inputs padded as
    /// [`MlpPolicy`] pads them).
    pub fn dataset(&self, spec: &EnsembleSpec) -> Dataset {
        let mut inputs = Array2::zeros((self.len(), spec.input_dim()));
        inputs.slice_axis_mut(Axis(1), Slice::from(..self.state_dim)).assign(&self.states());
        Dataset { inputs, targets: self.actions().to_owned() }
    }
}

/// Fits the trainer's policy network (of [`MlpPolicy::spec`]'s shape) to
/// `data` by regression (mean squared error, in normalised action units),
/// starting from its current weights.
pub fn fit_policy(trainer: &mut Trainer, data: &PolicyData, cfg: &FitConfig) -> Result<FitReport> {
    if data.len() < 2 {
        return Err(CoreError::config("policy", format!("needs at least 2 labelled states, the data has {}", data.len())));
    }
    let set = data.dataset(trainer.ensemble().spec());
    fit(trainer, &set, cfg, &mut |_, _, _| {})
}
