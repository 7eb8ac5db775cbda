//! The fused fast path: when the world model is a residual MLP
//! ([`WorldModel::accelerated`](ami_core::WorldModel::accelerated)), the
//! intrinsic cost is one quadratic form
//! ([`Cost::intrinsic_as_quadratic`](ami_core::modules::Cost::intrinsic_as_quadratic))
//! and the critic, if there is one, is an MLP the kernels can run
//! ([`Critic::accelerated`](ami_core::Critic::accelerated): a `ValueMlp`,
//! the rollout's terminal value), planners sample, roll out, score (and
//! differentiate) inside ami-kernels.

use std::sync::Arc;

use ami_kernels::{Cpu, KernelError, QuadEnergy, ResidualMlp, SeqBatch, Terminal, ValueMlp};
use ndarray::Array2;

use ami_core::error::{CoreError, Result};
use ami_core::PlanRequest;

/// The model as a residual MLP the fused kernels can run, if its
/// accelerated form is one.
pub fn residual_mlp(model: &dyn ami_core::WorldModel) -> Option<&ResidualMlp> {
    model.accelerated()?.downcast_ref::<ResidualMlp>()
}

/// A planning problem the kernels can run.
pub(crate) struct FastProblem<'a> {
    pub net: &'a ResidualMlp,
    pub cost: QuadEnergy,
    pub s0: Vec<f32>,
}

/// The fast-path form of `req`, if it has one.
pub(crate) fn problem<'a>(req: &PlanRequest<'a>) -> Option<FastProblem<'a>> {
    let net = residual_mlp(req.model)?;
    if req.model.latent_dim() != 0 {
        return None;
    }
    let (s, a) = (net.state_dim(), net.action_dim());
    let (q, r) = req.cost.intrinsic_as_quadratic(s, a)?;
    // At most one critic, and one the kernels can evaluate (an MLP).
    let mut critics = req.cost.weighted_critics();
    let terminal = match (critics.next(), critics.next()) {
        (None, _) => None,
        (Some((critic, weight)), None) => {
            let value = critic.accelerated()?.downcast::<ValueMlp>().ok()?;
            if value.state_dim() != s {
                return None;
            }
            Some(Terminal { value, weight })
        }
        (Some(_), Some(_)) => return None,
    };
    let goal = (0..s).map(|i| req.cost.goal().and_then(|g| g.get(i).copied()).unwrap_or(0.0)).collect();
    Some(FastProblem { net, cost: QuadEnergy { q, r, goal, terminal }, s0: req.state.iter().copied().collect() })
}

/// The energies of `actions` (`[T, N, A]`) from the request's state as the
/// fused path computes them (on [`Cpu::shared`]), or `None` when the
/// request has no fused form: to check the fast path against the generic
/// [`Rollout`](crate::Rollout), and to see whether planners will take it.
pub fn fused_energies(req: &PlanRequest<'_>, actions: ndarray::ArrayView3<'_, f32>) -> Option<Result<ndarray::Array1<f32>>> {
    let fp = problem(req)?;
    let (t, n, a) = actions.dim();
    let mut batch = SeqBatch::new(t, a, n);
    for ((tt, i, j), &v) in actions.indexed_iter() {
        batch.set(tt, j, i, v);
    }
    let mut e = vec![0.0; n];
    Some(Cpu::shared().energies(fp.net, &fp.cost, &fp.s0, &batch, &mut e).map(|()| ndarray::Array1::from(e)).map_err(|e| kernel_err("fused path", e)))
}

pub(crate) fn kernel_err(planner: &str, e: KernelError) -> CoreError {
    CoreError::module(planner, e.to_string())
}

/// The backend a planner uses: its own, or the shared default.
pub(crate) fn backend(own: &Option<Arc<Cpu>>) -> Arc<Cpu> {
    own.clone().unwrap_or_else(Cpu::shared)
}

/// Makes `batch` hold `n` sequences of `t` steps of width `a`, reusing it
/// when it already has that shape.
pub(crate) fn ensure_batch(batch: &mut SeqBatch, t: usize, a: usize, n: usize) {
    if batch.len() != n || batch.horizon() != t || batch.action_dim() != a {
        *batch = SeqBatch::new(t, a, n);
    }
}

/// Energy of one `[T, A]` plan through the kernels.
pub(crate) fn plan_energy(planner: &str, cpu: &Cpu, fp: &FastProblem<'_>, plan: &Array2<f32>) -> Result<f32> {
    let (t, a) = plan.dim();
    let mut b = SeqBatch::new(t, a, 1);
    b.set_sequence(0, &plan.iter().copied().collect::<Vec<_>>());
    let mut e = [0.0];
    cpu.energies(fp.net, &fp.cost, &fp.s0, &b, &mut e).map_err(|e| kernel_err(planner, e))?;
    Ok(e[0])
}

/// `[T, A]` array from a row-major vector.
pub(crate) fn to_plan(t: usize, a: usize, v: Vec<f32>) -> Array2<f32> {
    Array2::from_shape_vec((t, a), v).expect("T * A values")
}
