//! The residual MLP as a dfdx network (CPU autodiff): a
//! [`DifferentiableWorldModel`] whose vector-Jacobian products come from
//! dfdx's tape. It is the reference the fused kernels' gradients are tested
//! against, and the shape of world models that learn (dfdx trains them).

use ::dfdx::prelude::*;
use ami_kernels::ResidualMlp;
use ndarray::{ArrayView2, ArrayViewMut2};

use ami_core::error::Result;
use ami_core::modules::{check_predict_shapes, DifferentiableWorldModel, WorldModel};

type T2 = Tensor<(usize, usize), f32, Cpu>;
type T1 = Tensor<(usize,), f32, Cpu>;

/// A residual MLP held as dfdx tensors (runtime-sized). The first layer is
/// split into its state and action columns, so no concatenation is needed.
pub struct DfdxMlp {
    dev: Cpu,
    state_dim: usize,
    action_dim: usize,
    /// First layer: `W_s^T` `[S, H1]`, `W_a^T` `[A, H1]`.
    w0s: T2,
    w0a: T2,
    /// Transposed weights `[in, out]` of layers 1.., and all biases.
    wt: Vec<T2>,
    b: Vec<T1>,
}

impl std::fmt::Debug for DfdxMlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DfdxMlp").field("state_dim", &self.state_dim).field("action_dim", &self.action_dim).field("layers", &self.b.len()).finish()
    }
}

impl DfdxMlp {
    /// The dfdx copy of a network's weights.
    pub fn from_net(net: &ResidualMlp) -> Self {
        let dev = Cpu::default();
        let (s, a) = (net.state_dim(), net.action_dim());
        let l0 = &net.layers()[0];
        let mut w0s = vec![0.0; s * l0.out];
        let mut w0a = vec![0.0; a * l0.out];
        for o in 0..l0.out {
            for k in 0..s {
                w0s[k * l0.out + o] = l0.w[o * l0.inp + k];
            }
            for j in 0..a {
                w0a[j * l0.out + o] = l0.w[o * l0.inp + s + j];
            }
        }
        let wt = net.layers()[1..]
            .iter()
            .map(|l| {
                let mut t = vec![0.0; l.inp * l.out];
                for o in 0..l.out {
                    for k in 0..l.inp {
                        t[k * l.out + o] = l.w[o * l.inp + k];
                    }
                }
                dev.tensor_from_vec(t, (l.inp, l.out))
            })
            .collect();
        let b = net.layers().iter().map(|l| dev.tensor_from_vec(l.b.clone(), (l.out,))).collect();
        Self { w0s: dev.tensor_from_vec(w0s, (s, l0.out)), w0a: dev.tensor_from_vec(w0a, (a, l0.out)), wt, b, state_dim: s, action_dim: a, dev }
    }

    /// `s'` for a batch, taped from the leaf tensors `s` and `a`.
    fn forward(&self, s: &T2, a: &T2) -> Tensor<(usize, usize), f32, Cpu, OwnedTape<f32, Cpu>> {
        let batch = s.shape().0;
        let nl = self.b.len();
        let s_t = s.leaky_trace();
        let a_t = a.retaped::<OwnedTape<f32, Cpu>>();
        let h1 = self.b[0].shape().0;
        let mut h = s_t.retaped::<OwnedTape<f32, Cpu>>().matmul(self.w0s.clone())
            + a_t.matmul(self.w0a.clone())
            + self.b[0].clone().broadcast_like::<_, Axis<0>>(&(batch, h1));
        for l in 1..nl {
            h = h.relu();
            let out = self.b[l].shape().0;
            h = h.matmul(self.wt[l - 1].clone()) + self.b[l].clone().broadcast_like::<_, Axis<0>>(&(batch, out));
        }
        s_t + h
    }

    fn tensor(&self, v: ArrayView2<'_, f32>) -> T2 {
        let (r, c) = v.dim();
        self.dev.tensor_from_vec(v.iter().copied().collect(), (r, c))
    }
}

impl WorldModel for DfdxMlp {
    fn state_dim(&self) -> usize {
        self.state_dim
    }
    fn action_dim(&self) -> usize {
        self.action_dim
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        check_predict_shapes(self, "DfdxMlp", &states, &actions, &next)?;
        let out = self.forward(&self.tensor(states), &self.tensor(actions)).as_vec();
        for (d, v) in next.iter_mut().zip(out) {
            *d = v;
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for DfdxMlp {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        ami_core::modules::check_vjp_shapes(self, "DfdxMlp", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        let s = self.tensor(states);
        let a = self.tensor(actions);
        let g = self.tensor(grad_next);
        let next = self.forward(&s, &a);
        let grads = (next * g).sum::<Rank0, _>().backward();
        for (d, v) in grad_states.iter_mut().zip(grads.get(&s).as_vec()) {
            *d += v;
        }
        for (d, v) in grad_actions.iter_mut().zip(grads.get(&a).as_vec()) {
            *d += v;
        }
        Ok(())
    }
}
