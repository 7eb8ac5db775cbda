//! The plain-Rust scalar reference of the fused kernels: one lane at a
//! time, unpacked weights, every sum in input order then the bias.
//!
//! This is the portable fallback [`crate::fused`] dispatches to when no SIMD
//! instruction set is selected ([`crate::Isa::Scalar`]), and, above all, the
//! reference every backend is tested against and must match: the AVX-512,
//! AVX2+FMA and NEON paths now, a CUDA backend later. Keep it simple and
//! obviously correct; speed belongs in the backends. It works on the same
//! feature-major block buffers ([`Scratch`]) as the SIMD paths, with the
//! same contracts as [`crate::fused::forward`], [`crate::fused::backward`]
//! and [`crate::fused::dense_block`].
#![allow(clippy::needless_range_loop)]

use crate::mlp::{Layer, QuadEnergy, ResidualMlp};
use crate::scratch::Scratch;

/// One dense layer over a block of `nb` lanes, feature-major:
/// `y[0..out][nb] = act(W x + b)` from `x[0..inp][nb]`, with `layer`'s
/// unpacked weights (the reference of [`crate::fused::dense_block`]).
pub(crate) fn dense_block(layer: &Layer, relu: bool, nb: usize, x: &[f32], y: &mut [f32]) {
    for l in 0..nb {
        for o in 0..layer.out {
            let mut acc = 0.0f32;
            for k in 0..layer.inp {
                acc += layer.w[o * layer.inp + k] * x[k * nb + l];
            }
            acc += layer.b[o];
            y[o * nb + l] = if relu { acc.max(0.0) } else { acc };
        }
    }
}

/// Runs `t_len` steps over one block (the reference of [`crate::fused::forward`]).
pub(crate) fn forward(m: &ResidualMlp, c: Option<&QuadEnergy>, t_len: usize, nb: usize, sc: &mut Scratch, store: bool) {
    let (s, a) = (m.state_dim(), m.action_dim());
    let layers = m.layers();
    let nl = layers.len();
    let ht = m.hid_total.max(1);
    let mut x = vec![0.0f32; s + a];
    let mut y = vec![0.0f32; m.max_width];
    for lane in 0..nb {
        let mut e = 0.0f32;
        for i in 0..s {
            x[i] = sc.x0[i * nb + lane];
        }
        for t in 0..t_len {
            for j in 0..a {
                x[s + j] = sc.acts[(t * a + j) * nb + lane];
            }
            let slot = if store { t } else { 0 };
            let mut inp: Vec<f32> = x.clone();
            for (l, layer) in layers.iter().enumerate() {
                for o in 0..layer.out {
                    let row = &layer.w[o * layer.inp..(o + 1) * layer.inp];
                    let mut acc = 0.0f32;
                    for k in 0..layer.inp {
                        acc += row[k] * inp[k];
                    }
                    acc += layer.b[o];
                    y[o] = if l + 1 < nl { acc.max(0.0) } else { acc };
                }
                if l + 1 < nl {
                    let off = (slot * ht + m.hid_off[l]) * nb;
                    for o in 0..layer.out {
                        sc.hid[off + o * nb + lane] = y[o];
                    }
                }
                inp = y[..layer.out].to_vec();
            }
            for i in 0..s {
                x[i] += inp[i];
            }
            if let Some(c) = c {
                for i in 0..s {
                    let d = x[i] - c.goal[i];
                    e += c.q[i] * d * d;
                }
                for j in 0..a {
                    e += c.r[j] * x[s + j] * x[s + j];
                }
            }
            if store {
                for i in 0..s {
                    sc.st[(t * s + i) * nb + lane] = x[i];
                }
            }
        }
        for i in 0..s + a {
            sc.x0[i * nb + lane] = x[i];
        }
        sc.e[lane] = e;
    }
}

/// Backpropagates through the last [`forward`] (the reference of
/// [`crate::fused::backward`]).
pub(crate) fn backward(m: &ResidualMlp, c: Option<&QuadEnergy>, t_len: usize, nb: usize, sc: &mut Scratch) {
    let (s, a) = (m.state_dim(), m.action_dim());
    let layers = m.layers();
    let nl = layers.len();
    let ht = m.hid_total.max(1);
    for lane in 0..nb {
        let mut gs: Vec<f32> = (0..s).map(|i| sc.gs[i * nb + lane]).collect();
        for t in (0..t_len).rev() {
            if let Some(c) = c {
                for i in 0..s {
                    gs[i] += 2.0 * c.q[i] * (sc.st[(t * s + i) * nb + lane] - c.goal[i]);
                }
            }
            let mut g = gs.clone();
            for l in (0..nl).rev() {
                let layer = &layers[l];
                let mut gin = vec![0.0f32; layer.inp];
                for (k, gk) in gin.iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for o in 0..layer.out {
                        acc += layer.w[o * layer.inp + k] * g[o];
                    }
                    *gk = acc;
                }
                if l > 0 {
                    let off = (t * ht + m.hid_off[l - 1]) * nb;
                    for (k, gk) in gin.iter_mut().enumerate() {
                        if sc.hid[off + k * nb + lane] <= 0.0 || sc.hid[off + k * nb + lane].is_nan() {
                            *gk = 0.0;
                        }
                    }
                }
                g = gin;
            }
            for j in 0..a {
                let mut gj = g[s + j];
                if let Some(c) = c {
                    let aj = sc.acts[(t * a + j) * nb + lane];
                    gj += 2.0 * c.r[j] * aj;
                }
                sc.grads[(t * a + j) * nb + lane] = gj;
            }
            for i in 0..s {
                gs[i] += g[i];
            }
        }
        for i in 0..s {
            sc.gs[i * nb + lane] = gs[i];
        }
    }
}
