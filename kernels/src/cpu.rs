//! The CPU backend: fused rollouts, gradients, sampling and Adam over blocks
//! of samples, spread over a persistent thread pool.

use std::sync::{Arc, Mutex, OnceLock};

use crate::fused::{backward, dense_block, forward, Scratch};
use crate::isa::Isa;
use crate::mlp::{PackedDense, QuadEnergy, ResidualMlp};
use crate::pool::Pool;
use crate::rng::SplitMix64;
use crate::value::{add_terminal, seed_gradient};
use crate::KernelError;

/// Lane padding of a [`SeqBatch`] row (the widest block).
pub const LANE_PAD: usize = 32;

/// A batch of `n` action sequences stored feature-major: `[T][A][stride]`
/// (`stride` = `n` rounded up to [`LANE_PAD`]), so each step's action rows
/// are contiguous over samples, the layout the fused kernels read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqBatch {
    horizon: usize,
    action_dim: usize,
    n: usize,
    stride: usize,
    data: Vec<f32>,
}

impl SeqBatch {
    /// `n` all-zero sequences of `horizon` steps of `action_dim` actions.
    pub fn new(horizon: usize, action_dim: usize, n: usize) -> Self {
        let stride = n.div_ceil(LANE_PAD) * LANE_PAD;
        Self { horizon, action_dim, n, stride, data: vec![0.0; horizon * action_dim * stride] }
    }
    /// Horizon `T`.
    pub fn horizon(&self) -> usize {
        self.horizon
    }
    /// Action width `A`.
    pub fn action_dim(&self) -> usize {
        self.action_dim
    }
    /// Number of sequences `N`.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Whether there are no sequences.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// Action `j` of step `t` of sequence `i`.
    #[inline]
    pub fn get(&self, t: usize, j: usize, i: usize) -> f32 {
        self.data[(t * self.action_dim + j) * self.stride + i]
    }
    /// Sets action `j` of step `t` of sequence `i`.
    #[inline]
    pub fn set(&mut self, t: usize, j: usize, i: usize, v: f32) {
        self.data[(t * self.action_dim + j) * self.stride + i] = v;
    }
    /// Action `j` of step `t` across all sequences.
    pub fn row(&self, t: usize, j: usize) -> &[f32] {
        let o = (t * self.action_dim + j) * self.stride;
        &self.data[o..o + self.n]
    }
    /// Mutable [`SeqBatch::row`].
    pub fn row_mut(&mut self, t: usize, j: usize) -> &mut [f32] {
        let o = (t * self.action_dim + j) * self.stride;
        &mut self.data[o..o + self.n]
    }
    /// Sequence `i` as `[T][A]` row-major.
    pub fn sequence(&self, i: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.horizon * self.action_dim);
        for t in 0..self.horizon {
            for j in 0..self.action_dim {
                v.push(self.get(t, j, i));
            }
        }
        v
    }
    /// Sets sequence `i` from `[T][A]` row-major.
    pub fn set_sequence(&mut self, i: usize, seq: &[f32]) {
        for t in 0..self.horizon {
            for j in 0..self.action_dim {
                self.set(t, j, i, seq[t * self.action_dim + j]);
            }
        }
    }
}

/// How [`Cpu::sample_energies`] draws sequence `i`: action `j` of step `t`
/// is `clamp(mean[t][j] + std[t][j] * eps, low[j], high[j])`, with `eps`
/// standard normal from the stream `SplitMix64::stream(key, i)` in `(t, j)`
/// order.
#[derive(Debug, Clone, Copy)]
pub struct Sampling<'a> {
    /// `[T][A]` means.
    pub mean: &'a [f32],
    /// `[T][A]` standard deviations.
    pub std: &'a [f32],
    /// Lower bounds `[A]`.
    pub low: &'a [f32],
    /// Upper bounds `[A]`.
    pub high: &'a [f32],
    /// Noise key (one per call and iteration).
    pub key: u64,
}

/// Adam on action sequences (the update of `torch.optim.Adam`), clamped to
/// the bounds after each step.
#[derive(Debug, Clone, Copy)]
pub struct AdamSpec<'a> {
    /// Number of steps.
    pub steps: usize,
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Lower bounds `[A]`.
    pub low: &'a [f32],
    /// Upper bounds `[A]`.
    pub high: &'a [f32],
}

/// A raw pointer that may cross threads: each block writes disjoint lanes.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: only used to write disjoint index ranges from different threads
// while the owner waits in Pool::run.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so closures capture the whole `SyncPtr`).
    #[inline]
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// The CPU backend: an instruction set, a thread pool and per-thread
/// scratch. Results are bit-identical for any thread count.
#[derive(Debug)]
pub struct Cpu {
    isa: Isa,
    pool: Pool,
    scratch: Vec<Mutex<Scratch>>,
}

impl Cpu {
    /// A backend on `isa` with `threads` threads (0: all available cores).
    /// Refuses an instruction set this CPU cannot run.
    pub fn new(isa: Isa, threads: usize) -> Result<Self, KernelError> {
        if !isa.is_available() {
            return Err(KernelError::Isa(format!("this CPU cannot run {isa} (available: {:?})", Isa::available())));
        }
        let threads = if threads == 0 { default_threads() } else { threads };
        let pool = Pool::new(threads);
        let scratch = (0..pool.threads()).map(|_| Mutex::new(Scratch::default())).collect();
        Ok(Self { isa, pool, scratch })
    }
    /// The best instruction set of this CPU with `threads` threads (0: all cores).
    pub fn with_threads(threads: usize) -> Self {
        Self::new(Isa::detect(), threads).expect("the detected instruction set is available")
    }
    /// The process-wide default backend: best instruction set, all cores.
    pub fn shared() -> Arc<Cpu> {
        static SHARED: OnceLock<Arc<Cpu>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(Cpu::with_threads(0))).clone()
    }
    /// The instruction set.
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// Threads used.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    fn block_width(&self, n: usize) -> usize {
        if self.threads() == 1 || n.div_ceil(32) >= 2 * self.threads() {
            32
        } else {
            16
        }
    }

    fn check(m: &ResidualMlp, c: Option<&QuadEnergy>, s0: &[f32], acts: &SeqBatch, out: Option<&[f32]>) -> Result<(), KernelError> {
        if let Some(c) = c {
            c.check(m)?;
        }
        if s0.len() != m.state_dim() {
            return Err(KernelError::Shape(format!("initial state: expected {} floats, found {}", m.state_dim(), s0.len())));
        }
        if acts.action_dim != m.action_dim() || acts.horizon == 0 {
            return Err(KernelError::Shape(format!(
                "action batch: expected action width {} and horizon >= 1, found width {} and horizon {}",
                m.action_dim(),
                acts.action_dim,
                acts.horizon
            )));
        }
        if let Some(out) = out {
            if out.len() < acts.n {
                return Err(KernelError::Shape(format!("energies: expected {} floats, found {}", acts.n, out.len())));
            }
        }
        Ok(())
    }

    /// Runs `job(scratch, lane0, nb)` for each block of `nb` lanes.
    fn blocks(&self, n: usize, job: &(dyn Fn(&mut Scratch, usize, usize) + Sync)) {
        let nb = self.block_width(n);
        let nblk = n.div_ceil(nb);
        self.pool.run(nblk, &|b, thread| {
            let mut sc = self.scratch[thread].lock().unwrap_or_else(|e| e.into_inner());
            job(&mut sc, b * nb, nb);
        });
    }

    /// Energy of each sequence of `acts` from `s0` under `c`, into `out[..n]`.
    pub fn energies(&self, m: &ResidualMlp, c: &QuadEnergy, s0: &[f32], acts: &SeqBatch, out: &mut [f32]) -> Result<(), KernelError> {
        Self::check(m, Some(c), s0, acts, Some(out))?;
        let (isa, t, n) = (self.isa, acts.horizon, acts.n);
        let e_out = SyncPtr(out.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, t, nb, false);
            load_block(sc, acts, lane0, nb);
            init_states(sc, s0, nb);
            forward(isa, m, Some(c), t, nb, sc, false);
            add_terminal(isa, c, nb, sc);
            for l in 0..nb.min(n - lane0) {
                // SAFETY: lane0 + l < n <= out.len(); blocks write disjoint lanes.
                unsafe { *e_out.get().add(lane0 + l) = sc.e[l] };
            }
        });
        Ok(())
    }

    /// Energies (into `out`) and their gradients w.r.t. every action (into
    /// `grads`, same shape as `acts`).
    pub fn energies_grad(
        &self,
        m: &ResidualMlp,
        c: &QuadEnergy,
        s0: &[f32],
        acts: &SeqBatch,
        out: &mut [f32],
        grads: &mut SeqBatch,
    ) -> Result<(), KernelError> {
        Self::check(m, Some(c), s0, acts, Some(out))?;
        if grads.horizon != acts.horizon || grads.action_dim != acts.action_dim || grads.n != acts.n {
            return Err(KernelError::Shape("gradient batch: must have the shape of the action batch".into()));
        }
        let (isa, t, n, a) = (self.isa, acts.horizon, acts.n, acts.action_dim);
        let stride = grads.stride;
        let e_out = SyncPtr(out.as_mut_ptr());
        let g_out = SyncPtr(grads.data.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, t, nb, true);
            load_block(sc, acts, lane0, nb);
            init_states(sc, s0, nb);
            forward(isa, m, Some(c), t, nb, sc, true);
            add_terminal(isa, c, nb, sc);
            seed_gradient(isa, c, m.state_dim(), nb, sc);
            backward(isa, m, Some(c), t, nb, sc);
            for l in 0..nb.min(n - lane0) {
                // SAFETY: in bounds as in energies(); disjoint lanes.
                unsafe { *e_out.get().add(lane0 + l) = sc.e[l] };
                for r in 0..t * a {
                    // SAFETY: r < T*A rows of `stride` floats; lane0 + l < n <= stride.
                    unsafe { *g_out.get().add(r * stride + lane0 + l) = sc.grads[r * nb + l] };
                }
            }
        });
        Ok(())
    }

    /// Draws `acts.len()` sequences as `spec` says (writing them into `acts`)
    /// and their energies into `out`: the sampling step of CEM and MPPI fused
    /// with the rollout.
    pub fn sample_energies(
        &self,
        m: &ResidualMlp,
        c: &QuadEnergy,
        s0: &[f32],
        spec: &Sampling<'_>,
        acts: &mut SeqBatch,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        Self::check(m, Some(c), s0, acts, Some(out))?;
        let (isa, t, n, a) = (self.isa, acts.horizon, acts.n, acts.action_dim);
        if spec.mean.len() != t * a || spec.std.len() != t * a || spec.low.len() != a || spec.high.len() != a {
            return Err(KernelError::Shape(format!("sampling: mean and std need {} floats, bounds {}", t * a, a)));
        }
        let stride = acts.stride;
        let e_out = SyncPtr(out.as_mut_ptr());
        let a_out = SyncPtr(acts.data.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, t, nb, false);
            let valid = nb.min(n - lane0);
            for l in 0..nb {
                if l < valid {
                    let mut rng = SplitMix64::stream(spec.key, (lane0 + l) as u64);
                    for tt in 0..t {
                        for j in 0..a {
                            let r = tt * a + j;
                            let eps = rng.normal();
                            sc.acts[r * nb + l] = (spec.mean[r] + spec.std[r] * eps).clamp(spec.low[j], spec.high[j]);
                        }
                    }
                } else {
                    for r in 0..t * a {
                        sc.acts[r * nb + l] = spec.mean[r].clamp(spec.low[r % a], spec.high[r % a]);
                    }
                }
            }
            init_states(sc, s0, nb);
            forward(isa, m, Some(c), t, nb, sc, false);
            add_terminal(isa, c, nb, sc);
            for l in 0..valid {
                // SAFETY: in bounds as in energies(); disjoint lanes.
                unsafe { *e_out.get().add(lane0 + l) = sc.e[l] };
            }
            for r in 0..t * a {
                // SAFETY: row r has `stride` >= lane0 + valid floats; disjoint lanes.
                unsafe { std::ptr::copy_nonoverlapping(sc.acts.as_ptr().add(r * nb), a_out.get().add(r * stride + lane0), valid) };
            }
        });
        Ok(())
    }

    /// Gradient descent with Adam on every sequence of `acts` (each one
    /// independently: the loss is the sum of the energies), clamped to the
    /// bounds after each step; `acts` holds the starting sequences and gets
    /// the final ones, `out` their energies.
    pub fn gd(&self, m: &ResidualMlp, c: &QuadEnergy, s0: &[f32], spec: &AdamSpec<'_>, acts: &mut SeqBatch, out: &mut [f32]) -> Result<(), KernelError> {
        Self::check(m, Some(c), s0, acts, Some(out))?;
        let (isa, t, n, a) = (self.isa, acts.horizon, acts.n, acts.action_dim);
        if spec.low.len() != a || spec.high.len() != a {
            return Err(KernelError::Shape(format!("adam: bounds need {a} floats")));
        }
        let stride = acts.stride;
        let e_out = SyncPtr(out.as_mut_ptr());
        // Each block reads its own lanes of `acts` first and writes the same
        // lanes at the end; blocks never touch each other's lanes.
        let a_out = SyncPtr(acts.data.as_mut_ptr());
        let (b1, b2, lr, eps) = (spec.beta1, spec.beta2, spec.lr, spec.eps);
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, t, nb, true);
            sc.ensure_adam(t, a, nb);
            for r in 0..t * a {
                // SAFETY: row r holds `stride` >= lane0 + nb floats.
                unsafe { std::ptr::copy_nonoverlapping(a_out.get().add(r * stride + lane0), sc.acts.as_mut_ptr().add(r * nb), nb) };
            }
            let len = t * a * nb;
            sc.m[..len].fill(0.0);
            sc.v[..len].fill(0.0);
            for step in 1..=spec.steps {
                init_states(sc, s0, nb);
                forward(isa, m, Some(c), t, nb, sc, true);
                seed_gradient(isa, c, m.state_dim(), nb, sc);
                backward(isa, m, Some(c), t, nb, sc);
                let bc1 = 1.0 - (b1 as f64).powi(step as i32) as f32;
                let bc2 = 1.0 - (b2 as f64).powi(step as i32) as f32;
                for r in 0..t * a {
                    let (lo, hi) = (spec.low[r % a], spec.high[r % a]);
                    let o = r * nb;
                    let (am, gm, mm, vm) = (&mut sc.acts[o..o + nb], &sc.grads[o..o + nb], &mut sc.m[o..o + nb], &mut sc.v[o..o + nb]);
                    for l in 0..nb {
                        let g = gm[l];
                        mm[l] = b1 * mm[l] + (1.0 - b1) * g;
                        vm[l] = b2 * vm[l] + (1.0 - b2) * g * g;
                        let mhat = mm[l] / bc1;
                        let vhat = vm[l] / bc2;
                        am[l] = (am[l] - lr * mhat / (vhat.sqrt() + eps)).clamp(lo, hi);
                    }
                }
            }
            init_states(sc, s0, nb);
            forward(isa, m, Some(c), t, nb, sc, false);
            add_terminal(isa, c, nb, sc);
            let valid = nb.min(n - lane0);
            for l in 0..valid {
                // SAFETY: in bounds as in energies(); disjoint lanes.
                unsafe { *e_out.get().add(lane0 + l) = sc.e[l] };
            }
            for r in 0..t * a {
                // SAFETY: as in sample_energies().
                unsafe { std::ptr::copy_nonoverlapping(sc.acts.as_ptr().add(r * nb), a_out.get().add(r * stride + lane0), valid) };
            }
        });
        Ok(())
    }

    /// A batched dense layer, sample-major: `y[n][out] = act(x[n][in] W^T + b)`
    /// with `act` ReLU or the identity.
    pub fn dense(&self, layer: &PackedDense, relu: bool, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
        let (inp, outw) = (layer.layer().inp, layer.layer().out);
        let n = x.len() / inp;
        if x.len() != n * inp || y.len() != n * outw {
            return Err(KernelError::Shape(format!("dense: x has {} floats, y {}; the layer is [{outw}, {inp}]", x.len(), y.len())));
        }
        let isa = self.isa;
        let out = SyncPtr(y.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            let valid = nb.min(n - lane0);
            fit_len(&mut sc.gx, inp * nb);
            fit_len(&mut sc.gh, outw * nb);
            for l in 0..nb {
                for k in 0..inp {
                    sc.gx[k * nb + l] = if l < valid { x[(lane0 + l) * inp + k] } else { 0.0 };
                }
            }
            dense_block(isa, layer.layer(), &layer.panels, &layer.bias, relu, nb, &sc.gx, &mut sc.gh);
            for l in 0..valid {
                for o in 0..outw {
                    // SAFETY: (lane0 + l) < n and o < out: inside y; disjoint samples.
                    unsafe { *out.get().add((lane0 + l) * outw + o) = sc.gh[o * nb + l] };
                }
            }
        });
        Ok(())
    }

    /// One model step for `n` samples, sample-major: `states` `[n][S]`,
    /// `actions` `[n][A]`, `next` `[n][S]`.
    pub fn predict(&self, m: &ResidualMlp, states: &[f32], actions: &[f32], next: &mut [f32]) -> Result<(), KernelError> {
        let (s, a) = (m.state_dim(), m.action_dim());
        let n = states.len() / s;
        if states.len() != n * s || actions.len() != n * a || next.len() != n * s {
            return Err(KernelError::Shape(format!(
                "predict: states {} / actions {} / next {} floats do not hold n samples of widths {s} / {a} / {s}",
                states.len(),
                actions.len(),
                next.len()
            )));
        }
        let isa = self.isa;
        let out = SyncPtr(next.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, 1, nb, false);
            let valid = nb.min(n - lane0);
            load_sample_major(sc, states, actions, s, a, lane0, nb, valid);
            forward(isa, m, None, 1, nb, sc, false);
            for l in 0..valid {
                for i in 0..s {
                    // SAFETY: (lane0 + l) < n, i < s: inside next; disjoint samples.
                    unsafe { *out.get().add((lane0 + l) * s + i) = sc.x0[i * nb + l] };
                }
            }
        });
        Ok(())
    }

    /// Vector-Jacobian product of one model step, sample-major: **adds**
    /// `dL/d states` to `grad_states` and `dL/d actions` to `grad_actions`,
    /// given `grad_next = dL/d next`.
    pub fn vjp(
        &self,
        m: &ResidualMlp,
        states: &[f32],
        actions: &[f32],
        grad_next: &[f32],
        grad_states: &mut [f32],
        grad_actions: &mut [f32],
    ) -> Result<(), KernelError> {
        let (s, a) = (m.state_dim(), m.action_dim());
        let n = states.len() / s;
        if states.len() != n * s || actions.len() != n * a || grad_next.len() != n * s || grad_states.len() != n * s || grad_actions.len() != n * a {
            return Err(KernelError::Shape(format!("vjp: buffers do not hold {n} samples of widths {s} / {a}")));
        }
        let isa = self.isa;
        let gs_out = SyncPtr(grad_states.as_mut_ptr());
        let ga_out = SyncPtr(grad_actions.as_mut_ptr());
        self.blocks(n, &|sc, lane0, nb| {
            sc.ensure(m, 1, nb, true);
            let valid = nb.min(n - lane0);
            load_sample_major(sc, states, actions, s, a, lane0, nb, valid);
            forward(isa, m, None, 1, nb, sc, true);
            for l in 0..nb {
                for i in 0..s {
                    sc.gs[i * nb + l] = if l < valid { grad_next[(lane0 + l) * s + i] } else { 0.0 };
                }
            }
            backward(isa, m, None, 1, nb, sc);
            for l in 0..valid {
                for i in 0..s {
                    // SAFETY: inside grad_states; disjoint samples.
                    unsafe { *gs_out.get().add((lane0 + l) * s + i) += sc.gs[i * nb + l] };
                }
                for j in 0..a {
                    // SAFETY: inside grad_actions; disjoint samples.
                    unsafe { *ga_out.get().add((lane0 + l) * a + j) += sc.grads[j * nb + l] };
                }
            }
        });
        Ok(())
    }
}

fn fit_len(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Copies the block's lanes of every action row into the scratch.
fn load_block(sc: &mut Scratch, acts: &SeqBatch, lane0: usize, nb: usize) {
    for r in 0..acts.horizon * acts.action_dim {
        let o = r * acts.stride + lane0;
        sc.acts[r * nb..(r + 1) * nb].copy_from_slice(&acts.data[o..o + nb]);
    }
}

/// Broadcasts `s0` into the state rows of every lane.
fn init_states(sc: &mut Scratch, s0: &[f32], nb: usize) {
    for (i, &v) in s0.iter().enumerate() {
        sc.x0[i * nb..(i + 1) * nb].fill(v);
    }
}

#[allow(clippy::too_many_arguments)]
fn load_sample_major(sc: &mut Scratch, states: &[f32], actions: &[f32], s: usize, a: usize, lane0: usize, nb: usize, valid: usize) {
    for l in 0..nb {
        for i in 0..s {
            sc.x0[i * nb + l] = if l < valid { states[(lane0 + l) * s + i] } else { 0.0 };
        }
        for j in 0..a {
            sc.acts[j * nb + l] = if l < valid { actions[(lane0 + l) * a + j] } else { 0.0 };
        }
    }
}
