//! [`Scratch`]: the per-thread, feature-major block buffers that the fused
//! kernels and the scalar reference both work on.

use crate::mlp::{ResidualMlp, ValueMlp, PANEL};

/// Per-thread work buffers of one block (`nb` lanes).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// `[s + a][nb]`: the state rows then the current action rows.
    pub x0: Vec<f32>,
    /// Hidden activations `[t][hid_total][nb]` (only slot 0 when not storing).
    pub hid: Vec<f32>,
    /// States after each step `[t][s][nb]` (when storing).
    pub st: Vec<f32>,
    /// Gradient w.r.t. the current state `[s][nb]`.
    pub gs: Vec<f32>,
    /// Gradient w.r.t. the first layer's input `[s + a][nb]`.
    pub gx: Vec<f32>,
    /// Two ping-pong gradient buffers of `[max_width][nb]`.
    pub gh: Vec<f32>,
    /// Energies `[nb]`.
    pub e: Vec<f32>,
    /// Actions `[t][a][nb]`.
    pub acts: Vec<f32>,
    /// Action gradients `[t][a][nb]`.
    pub grads: Vec<f32>,
    /// Adam moments `[t][a][nb]`.
    pub m: Vec<f32>,
    /// Adam second moments `[t][a][nb]`.
    pub v: Vec<f32>,
    /// Terminal value: hidden activations `[hid_total][nb]`.
    pub vh: Vec<f32>,
    /// Terminal value: two ping-pong gradient buffers `[max_width][nb]`.
    pub vg: Vec<f32>,
    /// Terminal value: the values `[nb]`.
    pub vo: Vec<f32>,
}

fn fit(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

impl Scratch {
    /// Grows the buffers for `t` steps of `nb` lanes.
    pub fn ensure(&mut self, m: &ResidualMlp, t: usize, nb: usize, store: bool) {
        let (s, a) = (m.state_dim(), m.action_dim());
        fit(&mut self.x0, (s + a) * nb);
        fit(&mut self.hid, if store { t } else { 1 } * m.hid_total.max(1) * nb);
        fit(&mut self.e, nb);
        fit(&mut self.acts, t * a * nb);
        if store {
            fit(&mut self.st, t * s * nb);
            fit(&mut self.gs, s * nb);
            fit(&mut self.gx, (s + a) * nb);
            fit(&mut self.gh, 2 * m.max_width.div_ceil(PANEL) * PANEL * nb);
            fit(&mut self.grads, t * a * nb);
        }
    }
    /// Grows the terminal value's buffers.
    pub fn ensure_value(&mut self, v: &ValueMlp, nb: usize) {
        fit(&mut self.vh, v.hid_total.max(1) * nb);
        fit(&mut self.vg, 2 * v.max_width * nb);
        fit(&mut self.vo, nb);
    }
    /// Grows the Adam buffers.
    pub fn ensure_adam(&mut self, t: usize, a: usize, nb: usize) {
        fit(&mut self.m, t * a * nb);
        fit(&mut self.v, t * a * nb);
    }
}
