//! A trained ensemble as a planner's [`WorldModel`].

use std::sync::Arc;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{check_predict_shapes, check_vjp_shapes, DifferentiableWorldModel, Particles, WorldModel};
use ami_kernels::{Cpu, ResidualMlp};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::ensemble::Ensemble;
use crate::fit::Chunking;

/// How an ensemble predicts a batch of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Trajectory sampling with the members taken in turn (PETS' TS-1):
    /// planners roll every sequence out once per member
    /// ([`WorldModel::particles`]), row `r` is predicted by member `r % K`,
    /// and after each step every trajectory moves on to the next member, so
    /// each one mixes all members' errors instead of compounding one's.
    #[default]
    TrajectorySampling1,
    /// Trajectory sampling (PETS' TS-inf): as TS-1, but each trajectory
    /// stays with one member for the whole horizon.
    TrajectorySampling,
    /// Every row gets the mean of the members' predictions.
    Mean,
}

impl Propagation {
    /// Parses `ts1`, `ts_inf` (also `ts`) or `mean`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ts1" => Ok(Self::TrajectorySampling1),
            "ts_inf" | "ts" => Ok(Self::TrajectorySampling),
            "mean" => Ok(Self::Mean),
            other => Err(CoreError::config("propagation", format!("`{other}` is not a propagation (ts1, ts_inf or mean)"))),
        }
    }
    /// Whether rows are predicted by member `r % K` (either kind of
    /// trajectory sampling).
    pub fn is_trajectory_sampling(self) -> bool {
        matches!(self, Self::TrajectorySampling1 | Self::TrajectorySampling)
    }
}

/// A snapshot of a trained ensemble that planners roll out. ReLU members
/// run on the fused SIMD kernels (normalisation folded into their weights);
/// a single ReLU member is also the planners' fast-path model
/// ([`WorldModel::accelerated`]).
#[derive(Debug, Clone)]
pub struct LearnedModel {
    ens: Arc<Ensemble>,
    propagation: Propagation,
    risk: f32,
    fast: Vec<ResidualMlp>,
    chunking: Option<Chunking>,
}

impl LearnedModel {
    /// A model over `ens`.
    pub fn new(ens: Ensemble, propagation: Propagation, risk: f32) -> Self {
        let fast = (0..ens.spec().members).map_while(|k| ens.to_residual_mlp(k)).collect();
        Self { ens: Arc::new(ens), propagation, risk, fast, chunking: None }
    }
    /// The model of a planning level: one step stands for `chunking.ticks`
    /// agent steps over the coordinates `chunking.dims` (what a trainer
    /// fits it to: [`crate::Dataset::from_memory_chunks`]).
    pub fn with_chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = Some(chunking);
        self
    }
    /// What one step stands for, if not one agent step over the whole state.
    pub fn chunking(&self) -> Option<&Chunking> {
        self.chunking.as_ref()
    }
    /// The ensemble.
    pub fn ensemble(&self) -> &Ensemble {
        &self.ens
    }
    /// Weight of the members' energy spread (trajectory sampling).
    pub fn risk(&self) -> f32 {
        self.risk
    }
    /// How rows are predicted.
    pub fn propagation(&self) -> Propagation {
        self.propagation
    }

    fn predict_member(&self, k: usize, s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        match self.fast.get(k) {
            Some(net) => {
                let s = s.as_standard_layout();
                let a = a.as_standard_layout();
                let mut out = vec![0.0; next.len()];
                Cpu::shared()
                    .predict(net, s.as_slice().expect("standard layout"), a.as_slice().expect("standard layout"), &mut out)
                    .map_err(|e| CoreError::module("LearnedModel", e.to_string()))?;
                for (d, v) in next.iter_mut().zip(out) {
                    *d = v;
                }
            }
            None => self.ens.predict_member(k, s, a, next, None),
        }
        Ok(())
    }
}

/// The rows member `m` of `k` predicts under trajectory sampling: `m, m + k, ...` below `n`.
fn member_rows(m: usize, k: usize, n: usize) -> Vec<usize> {
    (m..n).step_by(k).collect()
}

impl LearnedModel {
    #[allow(clippy::too_many_arguments)] // the VJP's inputs and outputs, as in the contract
    fn vjp_member(
        &self,
        k: usize,
        s: ArrayView2<'_, f32>,
        a: ArrayView2<'_, f32>,
        g: ArrayView2<'_, f32>,
        scale: f32,
        mut gs: ArrayViewMut2<'_, f32>,
        mut ga: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let (s, a, g) = (s.as_standard_layout(), a.as_standard_layout(), g.as_standard_layout());
        let mut out_s = vec![0.0; s.len()];
        let mut out_a = vec![0.0; a.len()];
        Cpu::shared()
            .vjp(&self.fast[k], s.as_slice().expect("standard"), a.as_slice().expect("standard"), g.as_slice().expect("standard"), &mut out_s, &mut out_a)
            .map_err(|e| CoreError::module("LearnedModel", e.to_string()))?;
        for (d, v) in gs.iter_mut().zip(out_s) {
            *d += scale * v;
        }
        for (d, v) in ga.iter_mut().zip(out_a) {
            *d += scale * v;
        }
        Ok(())
    }
}

impl DifferentiableWorldModel for LearnedModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        check_vjp_shapes(self, "LearnedModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        if self.fast.len() != self.ens.spec().members {
            return Err(CoreError::module("LearnedModel", "vector-Jacobian products need ReLU members (the kernels' model)"));
        }
        let k = self.fast.len();
        let n = states.nrows();
        match (k, self.propagation) {
            (1, _) => self.vjp_member(0, states, actions, grad_next, 1.0, grad_states, grad_actions),
            (_, Propagation::Mean) => {
                for m in 0..k {
                    self.vjp_member(m, states, actions, grad_next, 1.0 / k as f32, grad_states.view_mut(), grad_actions.view_mut())?;
                }
                Ok(())
            }
            (_, Propagation::TrajectorySampling | Propagation::TrajectorySampling1) => {
                for m in 0..k.min(n) {
                    let rows = member_rows(m, k, n);
                    let pick = |v: &ArrayView2<'_, f32>| v.select(ndarray::Axis(0), &rows);
                    let (s, a, g) = (pick(&states), pick(&actions), pick(&grad_next));
                    let mut gs = Array2::zeros(s.dim());
                    let mut ga = Array2::zeros(a.dim());
                    self.vjp_member(m, s.view(), a.view(), g.view(), 1.0, gs.view_mut(), ga.view_mut())?;
                    for (i, &r) in rows.iter().enumerate() {
                        let mut row = grad_states.row_mut(r);
                        row += &gs.row(i);
                        let mut row = grad_actions.row_mut(r);
                        row += &ga.row(i);
                    }
                }
                Ok(())
            }
        }
    }
}

impl WorldModel for LearnedModel {
    fn state_dim(&self) -> usize {
        self.ens.spec().state_dim
    }
    fn action_dim(&self) -> usize {
        self.ens.spec().action_dim
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        check_predict_shapes(self, "LearnedModel", &states, &actions, &next)?;
        let k = self.ens.spec().members;
        let n = states.nrows();
        if k == 1 {
            return self.predict_member(0, states, actions, next);
        }
        match self.propagation {
            Propagation::TrajectorySampling | Propagation::TrajectorySampling1 => {
                // Gather each member's rows, predict, scatter back.
                for m in 0..k.min(n) {
                    let rows = member_rows(m, k, n);
                    let s = states.select(ndarray::Axis(0), &rows);
                    let a = actions.select(ndarray::Axis(0), &rows);
                    let mut out = Array2::zeros((rows.len(), self.state_dim()));
                    self.predict_member(m, s.view(), a.view(), out.view_mut())?;
                    for (i, &r) in rows.iter().enumerate() {
                        next.row_mut(r).assign(&out.row(i));
                    }
                }
            }
            Propagation::Mean => {
                let mut acc = Array2::<f32>::zeros(next.dim());
                let mut out = Array2::zeros(next.dim());
                for m in 0..k {
                    self.predict_member(m, states, actions, out.view_mut())?;
                    acc += &out;
                }
                acc /= k as f32;
                next.assign(&acc);
            }
        }
        Ok(())
    }
    /// Vector-Jacobian products (for gradient planners) when every member
    /// runs on the kernels (ReLU) and predictions do not depend on the row
    /// (one member, or `mean` propagation: the members' VJPs averaged). An
    /// ensemble with trajectory sampling has none: a gradient planner would
    /// optimise each sequence under one member only.
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        let k = self.ens.spec().members;
        let rows_agnostic = k == 1 || self.propagation == Propagation::Mean;
        (self.fast.len() == k && rows_agnostic).then_some(self as &dyn DifferentiableWorldModel)
    }
    fn particles(&self) -> Particles {
        let k = self.ens.spec().members;
        if k > 1 && self.propagation.is_trajectory_sampling() {
            Particles { count: k, risk: self.risk, reassign: self.propagation == Propagation::TrajectorySampling1 }
        } else {
            Particles::default()
        }
    }
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }
    fn accelerated(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        match self.fast.as_slice() {
            [one] if self.ens.spec().members == 1 => Some(one),
            _ => None,
        }
    }
}
