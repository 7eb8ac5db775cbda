//! The terminal value of the fused rollouts: a [`ValueMlp`] evaluated on a
//! block's final states (the state rows the rollout leaves in `x0`), added
//! to the energies, and differentiated into the gradient the backward pass
//! starts from. Feature-major like the rollout, on the same dense
//! microkernels ([`dense_block`]), so every instruction set matches the
//! scalar reference.

use crate::fused::{dense_block, Scratch};
use crate::isa::Isa;
use crate::mlp::{QuadEnergy, ValueMlp};

/// `V` of the block's final states into `sc.vo`, hidden activations kept
/// in `sc.vh`.
fn value_forward(isa: Isa, v: &ValueMlp, nb: usize, sc: &mut Scratch) {
    sc.ensure_value(v, nb);
    let layers = v.layers();
    let n = layers.len();
    for (l, layer) in layers.iter().enumerate() {
        let last = l + 1 == n;
        let (w, b) = (&v.fwd[l], &v.fwd_bias[l]);
        match (l, last) {
            (0, true) => dense_block(isa, layer, w, b, false, nb, &sc.x0, &mut sc.vo),
            (0, false) => dense_block(isa, layer, w, b, true, nb, &sc.x0, &mut sc.vh[v.hid_off[0] * nb..]),
            (_, true) => dense_block(isa, layer, w, b, false, nb, &sc.vh[v.hid_off[l - 1] * nb..], &mut sc.vo),
            (_, false) => {
                let (prev, cur) = sc.vh.split_at_mut(v.hid_off[l] * nb);
                dense_block(isa, layer, w, b, true, nb, &prev[v.hid_off[l - 1] * nb..], cur);
            }
        }
    }
}

/// Adds `weight * V(s_T)` of the energy's terminal value (if any) to the
/// block's energies `sc.e`; call right after the rollout's forward pass.
pub(crate) fn add_terminal(isa: Isa, c: &QuadEnergy, nb: usize, sc: &mut Scratch) {
    let Some(t) = &c.terminal else { return };
    value_forward(isa, &t.value, nb, sc);
    for l in 0..nb {
        sc.e[l] += t.weight * sc.vo[l];
    }
}

/// Sets `sc.gs`, the gradient the backward pass starts from, to
/// `weight * dV/ds_T` of the terminal value (zero without one); call
/// between the forward pass (run with `store`) and the backward pass.
pub(crate) fn seed_gradient(isa: Isa, c: &QuadEnergy, state_dim: usize, nb: usize, sc: &mut Scratch) {
    sc.gs[..state_dim * nb].fill(0.0);
    let Some(t) = &c.terminal else { return };
    let v = &t.value;
    value_forward(isa, v, nb, sc);
    let width = v.max_width * nb;
    let (mut ga, mut gb) = sc.vg.split_at_mut(width);
    ga[..nb].fill(t.weight);
    for l in (0..v.layers().len()).rev() {
        let bl = &v.bwd_layers[l];
        if l == 0 {
            dense_block(isa, bl, &v.bwd[0], &v.bwd_bias[0], false, nb, ga, &mut sc.gs);
        } else {
            dense_block(isa, bl, &v.bwd[l], &v.bwd_bias[l], false, nb, ga, gb);
            // Through the ReLU of layer l - 1 (no gradient where it is off).
            let h = &sc.vh[v.hid_off[l - 1] * nb..(v.hid_off[l - 1] + bl.out) * nb];
            for (g, &x) in gb[..bl.out * nb].iter_mut().zip(h) {
                if x <= 0.0 || x.is_nan() {
                    *g = 0.0;
                }
            }
            std::mem::swap(&mut ga, &mut gb);
        }
    }
}
