//! One training step of an ensemble: forward, backward and Adam, spread
//! over a persistent thread pool.
//!
//! Each member's batch is cut into a fixed number of row blocks
//! ([`BLOCKS`]), one task each; a task runs its block forward and backward
//! and writes its own weight gradients. Adam then runs as one task per
//! block of each member's parameters and sums the blocks' gradients in a
//! fixed order. The partition does not depend on the number of threads,
//! so the learned weights are the same bit for bit with 1 or 16 threads.

use std::sync::{Arc, Mutex};

use ami_core::error::{CoreError, Result};
use ami_kernels::pool::Pool;
use ami_kernels::train::{adam, AdamStep};
use ami_kernels::Isa;
use ndarray::{Array2, ArrayView3, Axis, Slice};

use crate::ensemble::{backward, forward, loss_grad, transpose_weights, Acts, Ensemble};

/// Row blocks per member batch (tasks per member and step).
pub const BLOCKS: usize = 2;

/// Adam's settings (PyTorch's `torch.optim.Adam`, with L2 weight decay
/// added to the gradient as PyTorch's `weight_decay` does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator floor.
    pub eps: f32,
    /// L2 penalty coefficient (0: none).
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

#[derive(Default)]
struct Task {
    acts: Acts,
    g: Array2<f32>,
    tmp: Array2<f32>,
    grad: Vec<f32>,
    finite: bool,
    loss: f64,
}

/// Writes every member's weights transposed into `wt`, one task per member.
fn transpose_all(isa: Isa, pool: &Pool, ens: &Ensemble, wt: &mut [f32]) {
    let per = ens.spec().member_params();
    let pieces: Vec<Mutex<&mut [f32]>> = wt.chunks_mut(per).map(Mutex::new).collect();
    pool.run(pieces.len(), &|k, _| {
        let mut wt = pieces[k].lock().unwrap_or_else(|p| p.into_inner());
        transpose_weights(isa, ens.spec(), ens.member(k), &mut wt);
    });
}

/// Trains an [`Ensemble`] with Adam; see the module docs.
pub struct Trainer {
    ens: Ensemble,
    adam: AdamConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u64,
    pool: Arc<Pool>,
    isa: Isa,
    tasks: Vec<Mutex<Task>>,
    /// The weights transposed (`transpose_weights`), kept in step with
    /// `ens` by every method that changes it.
    wt: Vec<f32>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("spec", self.ens.spec()).field("adam", &self.adam).field("steps", &self.steps).finish()
    }
}

impl Trainer {
    /// A trainer for `ens` running on `threads` threads (the caller's
    /// included).
    pub fn new(ens: Ensemble, adam: AdamConfig, threads: usize) -> Self {
        Self::with_pool(ens, adam, Arc::new(Pool::new(threads)))
    }
    /// A trainer sharing an existing pool.
    pub fn with_pool(ens: Ensemble, adam: AdamConfig, pool: Arc<Pool>) -> Self {
        let n = ens.params().len();
        let tasks = (0..ens.spec().members * BLOCKS).map(|_| Mutex::new(Task::default())).collect();
        let mut t = Self { ens, adam, m: vec![0.0; n], v: vec![0.0; n], steps: 0, pool, isa: Isa::detect(), tasks, wt: vec![0.0; n] };
        t.transpose();
        t
    }
    /// Refreshes `wt` from the weights.
    fn transpose(&mut self) {
        transpose_all(self.isa, &self.pool, &self.ens, &mut self.wt);
    }
    /// The ensemble as trained so far.
    pub fn ensemble(&self) -> &Ensemble {
        &self.ens
    }
    /// Replaces the normalisation (the weights and Adam state are kept).
    pub fn set_norm(&mut self, norm: crate::Normalizer) {
        self.ens.set_norm(norm);
    }
    /// Replaces the weights (a checkpoint), resetting Adam's state.
    pub fn reset_to(&mut self, ens: Ensemble) -> Result<()> {
        if ens.spec() != self.ens.spec() {
            return Err(CoreError::config("trainer", "the replacement ensemble has another shape"));
        }
        self.ens = ens;
        self.m.fill(0.0);
        self.v.fill(0.0);
        self.steps = 0;
        self.transpose();
        Ok(())
    }
    /// Replaces the weights and normalisation, keeping Adam's state (a
    /// snapshot of this trainer's own ensemble restored).
    pub fn replace_weights(&mut self, ens: Ensemble) -> Result<()> {
        if ens.spec() != self.ens.spec() {
            return Err(CoreError::config("trainer", "the replacement ensemble has another shape"));
        }
        self.ens = ens;
        self.transpose();
        Ok(())
    }
    /// Adam steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// Adam's settings.
    pub fn adam(&self) -> &AdamConfig {
        &self.adam
    }
    /// Runs the element-wise kernels with this instruction set (default
    /// [`Isa::detect`]); for bit-identical weights across machines.
    pub fn set_isa(&mut self, isa: Isa) -> Result<()> {
        if !isa.is_available() {
            return Err(CoreError::config("isa", format!("this CPU cannot run {isa}")));
        }
        self.isa = isa;
        Ok(())
    }
    /// Threads of the pool.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    fn check(&self, x: &ArrayView3<'_, f32>, y: &ArrayView3<'_, f32>) -> Result<()> {
        let spec = self.ens.spec();
        let (k, b, i) = x.dim();
        if k != spec.members || i != spec.input_dim() || y.dim() != (k, b, spec.state_dim) || b == 0 {
            return Err(CoreError::shape(
                "Trainer::step(batch)",
                format!("inputs [{}, B, {}] and targets [{}, B, {}] with B >= 1", spec.members, spec.input_dim(), spec.members, spec.state_dim),
                format!("{:?} and {:?}", x.shape(), y.shape()),
            ));
        }
        Ok(())
    }

    /// Forward and backward over the batch: fills every task's gradient and
    /// loss; returns the mean loss.
    fn gradients(&self, x: &ArrayView3<'_, f32>, y: &ArrayView3<'_, f32>, want_grad: bool) -> f64 {
        let spec = self.ens.spec();
        let (members, b, _) = x.dim();
        let scale = 1.0 / (members * b * spec.state_dim) as f32;
        let blocks = BLOCKS.min(b);
        let job = |task: usize, _thread: usize| {
            let (k, c) = (task / BLOCKS, task % BLOCKS);
            let mut t = self.tasks[task].lock().unwrap_or_else(|p| p.into_inner());
            if c >= blocks {
                t.loss = 0.0;
                t.grad.clear();
                t.finite = true;
                return;
            }
            let (r0, r1) = (c * b / blocks, (c + 1) * b / blocks);
            let xs = x.index_axis(Axis(0), k);
            let ys = y.index_axis(Axis(0), k);
            let p = self.ens.member(k);
            let per = spec.member_params();
            let t = &mut *t;
            forward(self.isa, spec, p, Some(&self.wt[k * per..(k + 1) * per]), xs.slice_axis(Axis(0), Slice::from(r0..r1)), &mut t.acts);
            t.loss = loss_grad(self.isa, spec, t.acts.output(), ys.slice_axis(Axis(0), Slice::from(r0..r1)), scale, &mut t.g);
            if want_grad {
                t.grad.resize(spec.member_params(), 0.0);
                backward(self.isa, spec, p, &t.acts, &mut t.g, &mut t.tmp, &mut t.grad);
                t.finite = ami_kernels::train::all_finite(self.isa, &t.grad);
            }
        };
        self.pool.run(members * BLOCKS, &job);
        let total: f64 = self.tasks.iter().map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).loss).sum();
        total * f64::from(scale)
    }

    /// The mean loss of `x` `[K, B, S + A]` (normalised inputs, member `k`
    /// sees row block `k`) against `y` `[K, B, S]` (normalised targets),
    /// without training.
    pub fn loss(&self, x: ArrayView3<'_, f32>, y: ArrayView3<'_, f32>) -> Result<f64> {
        self.check(&x, &y)?;
        Ok(self.gradients(&x, &y, false))
    }

    /// One Adam step on the batch (shapes as in [`Trainer::loss`]); returns
    /// the batch's mean loss before the step. A non-finite loss or gradient
    /// leaves the weights untouched and is an error.
    pub fn step(&mut self, x: ArrayView3<'_, f32>, y: ArrayView3<'_, f32>) -> Result<f64> {
        self.check(&x, &y)?;
        let loss = self.gradients(&x, &y, true);
        if !loss.is_finite() {
            return Err(CoreError::module("trainer", format!("non-finite loss {loss} at step {}: the weights were not updated", self.steps + 1)));
        }
        let members = self.ens.spec().members;
        let per = self.ens.spec().member_params();
        let blocks = BLOCKS.min(x.dim().1);
        let grads: Vec<std::sync::MutexGuard<'_, Task>> = self.tasks.iter().map(|t| t.lock().unwrap_or_else(|p| p.into_inner())).collect();
        if grads.iter().any(|t| !t.finite) {
            return Err(CoreError::module("trainer", format!("non-finite gradient at step {}: the weights were not updated", self.steps + 1)));
        }
        self.steps += 1;
        let a = self.adam;
        let t = self.steps as i32;
        let hyper = AdamStep {
            step_size: a.lr / (1.0 - a.beta1.powi(t)),
            bias2_sqrt: (1.0 - a.beta2.powi(t)).sqrt(),
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            weight_decay: a.weight_decay,
        };
        // One piece per (member, parameter block): contiguous, disjoint.
        let piece = per.div_ceil(BLOCKS);
        let mut pieces = Vec::with_capacity(members * BLOCKS);
        {
            let mut p_rest = self.ens.params_mut().as_mut_slice();
            let mut m_rest = self.m.as_mut_slice();
            let mut v_rest = self.v.as_mut_slice();
            for k in 0..members {
                for c in 0..BLOCKS {
                    let len = piece.min(per - (c * piece).min(per));
                    let (p, pr) = p_rest.split_at_mut(len);
                    let (m, mr) = m_rest.split_at_mut(len);
                    let (v, vr) = v_rest.split_at_mut(len);
                    (p_rest, m_rest, v_rest) = (pr, mr, vr);
                    pieces.push(Mutex::new((k, c * piece, p, m, v)));
                }
            }
        }
        let grads = &grads;
        let isa = self.isa;
        let job = |task: usize, _thread: usize| {
            let mut guard = pieces[task].lock().unwrap_or_else(|p| p.into_inner());
            let (k, start, p, m, v) = &mut *guard;
            let range = *start..*start + p.len();
            let g0 = &grads[*k * BLOCKS].grad[range.clone()];
            // BLOCKS is 2: the second block's gradient, when the batch had two.
            let g1 = (blocks > 1).then(|| &grads[*k * BLOCKS + 1].grad[range]);
            adam(isa, hyper, p, m, v, g0, g1);
        };
        self.pool.run(members * BLOCKS, &job);
        drop(pieces);
        transpose_all(self.isa, &self.pool, &self.ens, &mut self.wt);
        Ok(loss)
    }

    /// The gradient of the mean loss with respect to every parameter
    /// (layout of [`Ensemble::params`]), for checks against finite
    /// differences and other frameworks.
    pub fn gradient(&self, x: ArrayView3<'_, f32>, y: ArrayView3<'_, f32>) -> Result<(f64, Vec<f32>)> {
        self.check(&x, &y)?;
        let loss = self.gradients(&x, &y, true);
        let per = self.ens.spec().member_params();
        let blocks = BLOCKS.min(x.dim().1);
        let mut out = vec![0.0; self.ens.params().len()];
        for (k, chunk) in out.chunks_mut(per).enumerate() {
            for c in 0..blocks {
                let t = self.tasks[k * BLOCKS + c].lock().unwrap_or_else(|p| p.into_inner());
                for (o, g) in chunk.iter_mut().zip(&t.grad) {
                    *o += g;
                }
            }
        }
        Ok((loss, out))
    }
}
