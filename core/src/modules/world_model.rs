//! The world model contract [paper §3, §4]: `s' = Pred(s, a, z)`, batched,
//! with an optional differentiable capability for gradient planners.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::error::{check_shape2, CoreError, Result};

/// World model [paper §3, §4]: predicts the next state of the world from the
/// current state and an action, `s' = Pred(s, a, z)`.
///
/// Calls are batched: `states` is `[batch, state_dim]`, `actions`
/// `[batch, action_dim]`, and the prediction is written into `next`
/// (`[batch, state_dim]`), so planners can reuse buffers and allocate nothing
/// per call. Planners call this thousands of times per decision.
pub trait WorldModel: Send + Sync {
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Width of the latent variable `z` (0: deterministic model).
    fn latent_dim(&self) -> usize {
        0
    }
    /// Predicts `next[b] = f(states[b], actions[b])` for every row `b`.
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, next: ArrayViewMut2<'_, f32>) -> Result<()>;
    /// Predicts with a latent sample per row (`latents` is
    /// `[batch, latent_dim]`). The default ignores latents of width 0 and
    /// refuses any other width.
    fn predict_with_latents(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        latents: ArrayView2<'_, f32>,
        next: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        if latents.ncols() != 0 {
            return Err(CoreError::shape("WorldModel::predict_with_latents(latents)", "width 0 (model has no latent)", format!("width {}", latents.ncols())));
        }
        self.predict(states, actions, next)
    }
    /// The differentiable capability, for gradient planners; `None` if the
    /// model cannot give vector-Jacobian products.
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        None
    }
    /// How planners should evaluate an action sequence through this model:
    /// the default is one rollout. An ensemble asks for one rollout per
    /// member (PETS' trajectory sampling): the planner repeats each
    /// sequence [`Particles::count`] times in consecutive rows, the model
    /// predicts row `r` with member `r % members`, and the sequence's
    /// energy is the particles' mean plus [`Particles::risk`] times their
    /// standard deviation. With [`Particles::reassign`], each particle
    /// moves on to the next member after every step (PETS' TS-1).
    fn particles(&self) -> Particles {
        Particles::default()
    }
    /// The model as `Any`, so the module that made it (a trainer) can
    /// recognise its own type behind a handle; `None` by default.
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
    /// An accelerated form of the model that a planner may know how to
    /// run faster than through `predict`, if the model has one; `None` (the
    /// default) otherwise. The contract does not say what the type is, so
    /// this crate depends on no kernel: `ami-planners` downcasts it to
    /// `ami_kernels::ResidualMlp` and then rolls the model out in its fused
    /// SIMD kernels (a model returning one promises that `predict` computes
    /// the same function).
    fn accelerated(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

/// How many rollouts a planner makes of each action sequence through a
/// model, and how it combines their energies (see
/// [`WorldModel::particles`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Particles {
    /// Rollouts per sequence (at least 1).
    pub count: usize,
    /// Weight of the particles' standard deviation added to their mean
    /// energy (0: risk-neutral; positive: pessimistic).
    pub risk: f32,
    /// After every step, each rollout moves to the next row of its
    /// sequence's group, so with one particle per member a trajectory is
    /// predicted by member `(j - t) mod count` at step `t` (PETS' TS-1,
    /// the members taken in turn rather than drawn at random); `false`
    /// keeps every trajectory on one member (TS-inf).
    pub reassign: bool,
}

impl Default for Particles {
    fn default() -> Self {
        Self { count: 1, risk: 0.0, reassign: false }
    }
}

/// A world model that gives vector-Jacobian products, so a gradient planner
/// can backpropagate the energy through an unrolled rollout.
pub trait DifferentiableWorldModel: WorldModel {
    /// Given `grad_next = dL/d next` for the batch, **adds** `dL/d states` to
    /// `grad_states` and `dL/d actions` to `grad_actions`.
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        grad_states: ArrayViewMut2<'_, f32>,
        grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()>;
}

/// Checks the shapes of a `vjp` call against a model: `states` and
/// `grad_next`/`grad_states` are `[batch, state_dim]`, `actions` and
/// `grad_actions` `[batch, action_dim]`; errors name `{name}::vjp(argument)`.
pub fn check_vjp_shapes(
    model: &dyn WorldModel,
    name: &str,
    states: &ArrayView2<'_, f32>,
    actions: &ArrayView2<'_, f32>,
    grad_next: &ArrayView2<'_, f32>,
    grad_states: &ArrayViewMut2<'_, f32>,
    grad_actions: &ArrayViewMut2<'_, f32>,
) -> Result<()> {
    let (b, sd, ad) = (states.nrows(), model.state_dim(), model.action_dim());
    if states.ncols() == sd && actions.dim() == (b, ad) && grad_next.dim() == (b, sd) && grad_states.dim() == (b, sd) && grad_actions.dim() == (b, ad) {
        return Ok(());
    }
    check_shape2(&format!("{name}::vjp(states)"), [b, sd], states.shape())?;
    check_shape2(&format!("{name}::vjp(actions)"), [b, ad], actions.shape())?;
    check_shape2(&format!("{name}::vjp(grad_next)"), [b, sd], grad_next.shape())?;
    check_shape2(&format!("{name}::vjp(grad_states)"), [b, sd], grad_states.shape())?;
    check_shape2(&format!("{name}::vjp(grad_actions)"), [b, ad], grad_actions.shape())
}

/// Checks the shapes of a `predict` call against a model: `states` and
/// `next` are `[batch, state_dim]`, `actions` `[batch, action_dim]`;
/// errors name `{name}::predict(argument)`. Allocates nothing when the
/// shapes are right (the hot path).
pub fn check_predict_shapes(
    model: &dyn WorldModel,
    name: &str,
    states: &ArrayView2<'_, f32>,
    actions: &ArrayView2<'_, f32>,
    next: &ArrayViewMut2<'_, f32>,
) -> Result<()> {
    let b = states.nrows();
    let (sd, ad) = (model.state_dim(), model.action_dim());
    if states.ncols() == sd && actions.dim() == (b, ad) && next.dim() == (b, sd) {
        return Ok(());
    }
    check_shape2(&format!("{name}::predict(states)"), [b, sd], states.shape())?;
    check_shape2(&format!("{name}::predict(actions)"), [b, ad], actions.shape())?;
    check_shape2(&format!("{name}::predict(next)"), [b, sd], next.shape())
}

/// A linear world model `s' = A s + B a` (with `A: [S, S]`, `B: [S, A]`).
/// Useful as a known-optimum test problem and as a local model.
#[derive(Debug, Clone)]
pub struct LinearModel {
    a: Array2<f32>,
    b: Array2<f32>,
}

impl LinearModel {
    /// Builds the model; `a` must be square and `b` must have as many rows.
    pub fn new(a: Array2<f32>, b: Array2<f32>) -> Result<Self> {
        if a.nrows() != a.ncols() {
            return Err(CoreError::shape("LinearModel::new(a)", "square", format!("{:?}", a.shape())));
        }
        if b.nrows() != a.nrows() {
            return Err(CoreError::shape("LinearModel::new(b)", format!("{} rows", a.nrows()), format!("{:?}", b.shape())));
        }
        Ok(Self { a, b })
    }
    /// The state matrix `A`.
    pub fn a(&self) -> &Array2<f32> {
        &self.a
    }
    /// The input matrix `B`.
    pub fn b(&self) -> &Array2<f32> {
        &self.b
    }
}

impl WorldModel for LinearModel {
    fn state_dim(&self) -> usize {
        self.a.nrows()
    }
    fn action_dim(&self) -> usize {
        self.b.ncols()
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        check_predict_shapes(self, "LinearModel", &states, &actions, &next)?;
        ndarray::linalg::general_mat_mul(1.0, &states, &self.a.t(), 0.0, &mut next);
        ndarray::linalg::general_mat_mul(1.0, &actions, &self.b.t(), 1.0, &mut next);
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for LinearModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        check_vjp_shapes(self, "LinearModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        ndarray::linalg::general_mat_mul(1.0, &grad_next, &self.a, 1.0, &mut grad_states);
        ndarray::linalg::general_mat_mul(1.0, &grad_next, &self.b, 1.0, &mut grad_actions);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn linear_model_predicts_and_refuses_bad_shapes() {
        let m = LinearModel::new(array![[1.0, 0.1], [0.0, 1.0]], array![[0.0], [0.1]]).unwrap();
        let s = array![[1.0, 2.0], [0.0, 0.0]];
        let a = array![[1.0], [-1.0]];
        let mut next = Array2::zeros((2, 2));
        m.predict(s.view(), a.view(), next.view_mut()).unwrap();
        assert_eq!(next, array![[1.2, 2.1], [0.0, -0.1]]);
        let bad = array![[1.0, 2.0]];
        let err = m.predict(s.view(), bad.view(), next.view_mut()).unwrap_err();
        assert!(err.to_string().contains("LinearModel::predict(actions)"), "{err}");
    }
}
