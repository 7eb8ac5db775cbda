//! Fused residual-MLP rollouts over one block of samples (the lanes), with
//! activations kept feature-major (`[row][lane]`) so every element-wise step
//! is lane-parallel and every layer is a small GEMM whose weights are
//! broadcast from packed panels. A block runs all steps and layers before
//! the next block starts, so its activations stay in L1/L2.
//!
//! Each lane's arithmetic is the same whatever the block width and the
//! thread that runs it, so results do not depend on the partition.
//!
//! Without a SIMD instruction set the dispatchers fall back to the scalar
//! reference in [`crate::scalar`], which every path here must match.

use crate::isa::Isa;
use crate::mlp::{QuadEnergy, ResidualMlp, PANEL};
use crate::scalar;
pub(crate) use crate::scratch::Scratch;

/// Runs `t` steps over one block: reads `sc.acts` and the initial states in
/// the state rows of `sc.x0`; leaves the final states there and, with a cost,
/// the energies in `sc.e`. With `store`, keeps what [`backward`] needs.
pub(crate) fn forward(isa: Isa, m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch, store: bool) {
    debug_assert!(nb == 16 || nb == 32);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: the backend only selects Avx512 after checking the CPU
            // has avx512f (Cpu::new); the scratch was sized by ensure().
            unsafe { x86::forward_avx512(m, c, t, nb, sc, store) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: Avx2 is selected only after checking avx2 and fma.
            unsafe { x86::forward_avx2(m, c, t, nb, sc, store) }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // SAFETY: Neon is selected only after checking neon.
            unsafe { arm::forward_neon(m, c, t, nb, sc, store) }
        }
        _ => scalar::forward(m, c, t, nb, sc, store),
    }
}

/// Backpropagates through the `t` steps of the last [`forward`] (which must
/// have run with `store`): starts from `sc.gs` (dL/d final state; zero when
/// only the cost matters), adds the cost's gradient at every step, writes
/// dL/d actions into `sc.grads` and leaves dL/d initial state in `sc.gs`.
pub(crate) fn backward(isa: Isa, m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as in forward().
            unsafe { x86::backward_avx512(m, c, t, nb, sc) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: as in forward().
            unsafe { x86::backward_avx2(m, c, t, nb, sc) }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // SAFETY: as in forward().
            unsafe { arm::backward_neon(m, c, t, nb, sc) }
        }
        _ => scalar::backward(m, c, t, nb, sc),
    }
}

/// One dense layer over a block, feature-major: `y[0..out][nb] =
/// act(W x + b)` from `x[0..inp][nb]`, with `layer`'s packed panels
/// (`panels`, `bias` padded to the panel height).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_block(isa: Isa, layer: &crate::mlp::Layer, panels: &[f32], bias: &[f32], relu: bool, nb: usize, x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() >= layer.inp * nb && y.len() >= layer.out * nb && (nb == 16 || nb == 32));
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: Avx512 is selected only on CPUs with avx512f; the
            // buffer sizes are checked above.
            unsafe { x86::dense_avx512(panels, bias, layer.inp, layer.out, relu, nb, x, y) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: Avx2 is selected only on CPUs with avx2 and fma.
            unsafe { x86::dense_avx2(panels, bias, layer.inp, layer.out, relu, nb, x, y) }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // SAFETY: Neon is selected only on CPUs with neon.
            unsafe { arm::dense_neon(panels, bias, layer.inp, layer.out, relu, nb, x, y) }
        }
        _ => scalar::dense_block(layer, relu, nb, x, y),
    }
}

/// The SIMD kernels, generic over the vector type.
mod simd_impl {
    use super::*;
    use crate::simd::Simd;

    pub(super) const EPI_STORE: u8 = 0;
    pub(super) const EPI_RELU: u8 = 1;
    pub(super) const EPI_ADD: u8 = 2;
    pub(super) const EPI_MASK: u8 = 3;

    /// Microkernel: `R` output rows (of a panel of `PANEL`) x `V` vectors
    /// of lanes. `acc[r] = bias[r] + sum_k pan[k][r] * x[k]`, then the
    /// epilogue writes the first `rv` rows of `y` (row stride `ys`).
    ///
    /// # Safety
    /// `pan` holds `k * PANEL` floats, `bias` (if not null) `R`, `x`
    /// `k` rows of stride `xs` with `V * LANES` valid floats each, `y` and
    /// `aux` `rv` rows of stride `ys` likewise.
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn mk<S: Simd, const R: usize, const V: usize, const EPI: u8>(
        k: usize,
        pan: *const f32,
        bias: *const f32,
        x: *const f32,
        xs: usize,
        y: *mut f32,
        ys: usize,
        rv: usize,
        aux: *const f32,
    ) {
        // SAFETY: the caller guarantees every pointer range (see above).
        unsafe {
            let mut acc = [[S::zero(); V]; R];
            if !bias.is_null() {
                for r in 0..R {
                    let b = S::splat(*bias.add(r));
                    for v in 0..V {
                        acc[r][v] = b;
                    }
                }
            }
            let mut xp = x;
            let mut wp = pan;
            for _ in 0..k {
                let mut xv = [S::zero(); V];
                for v in 0..V {
                    xv[v] = S::load(xp.add(v * S::LANES));
                }
                for r in 0..R {
                    let w = S::splat(*wp.add(r));
                    for v in 0..V {
                        acc[r][v] = S::fma(w, xv[v], acc[r][v]);
                    }
                }
                xp = xp.add(xs);
                wp = wp.add(PANEL);
            }
            for r in 0..rv {
                for v in 0..V {
                    let yp = y.add(r * ys + v * S::LANES);
                    let val = match EPI {
                        EPI_RELU => S::relu(acc[r][v]),
                        EPI_ADD => S::add(acc[r][v], S::load(yp)),
                        EPI_MASK => S::mask_pos(acc[r][v], S::load(aux.add(r * ys + v * S::LANES))),
                        _ => acc[r][v],
                    };
                    S::store(yp, val);
                }
            }
        }
    }

    /// One dense layer over the block: `y[0..rows] = epi(W x + b)` with
    /// packed `panels` (`ceil(rows / PANEL)` panels of `[k][PANEL]`).
    ///
    /// # Safety
    /// As [`mk`], for all panels; `aux` may equal `y` when unused.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dense<S: Simd, const NB: usize, const EPI: u8>(
        panels: &[f32],
        bias: *const f32,
        k: usize,
        rows: usize,
        x: *const f32,
        y: *mut f32,
        aux: *const f32,
    ) {
        debug_assert!(panels.len() >= rows.div_ceil(PANEL) * k * PANEL);
        // SAFETY: the caller guarantees the buffers; offsets stay inside them.
        unsafe {
            for p in 0..rows.div_ceil(PANEL) {
                let rv = (rows - p * PANEL).min(PANEL);
                let pan = panels.as_ptr().add(p * k * PANEL);
                let b = if bias.is_null() { bias } else { bias.add(p * PANEL) };
                let yo = y.add(p * PANEL * NB);
                let ao = aux.wrapping_add(p * PANEL * NB);
                if S::HALF_ROWS && NB >= 2 * S::LANES {
                    // Few registers (AVX2): 4 rows x 2 vectors, twice.
                    let mut rc = 0;
                    while rc < rv {
                        let bc = if b.is_null() { b } else { b.add(rc) };
                        let mut l = 0;
                        while l < NB {
                            let (yc, ac) = (yo.add(rc * NB + l), ao.wrapping_add(rc * NB + l));
                            mk::<S, 4, 2, EPI>(k, pan.add(rc), bc, x.add(l), NB, yc, NB, (rv - rc).min(4), ac);
                            l += 2 * S::LANES;
                        }
                        rc += 4;
                    }
                } else if S::MAX_V >= 2 && NB >= 2 * S::LANES {
                    let mut l = 0;
                    while l < NB {
                        mk::<S, PANEL, 2, EPI>(k, pan, b, x.add(l), NB, yo.add(l), NB, rv, ao.wrapping_add(l));
                        l += 2 * S::LANES;
                    }
                } else {
                    let mut l = 0;
                    while l < NB {
                        mk::<S, PANEL, 1, EPI>(k, pan, b, x.add(l), NB, yo.add(l), NB, rv, ao.wrapping_add(l));
                        l += S::LANES;
                    }
                }
            }
        }
    }

    /// # Safety
    /// `x` holds `k` rows and `y` `rows` rows of `NB` floats; the CPU runs `S`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_layer<S: Simd, const NB: usize>(panels: &[f32], bias: &[f32], k: usize, rows: usize, relu: bool, x: &[f32], y: &mut [f32]) {
        let yp = y.as_mut_ptr();
        // SAFETY: forwarded contract.
        unsafe {
            if relu {
                dense::<S, NB, EPI_RELU>(panels, bias.as_ptr(), k, rows, x.as_ptr(), yp, yp);
            } else {
                dense::<S, NB, EPI_STORE>(panels, bias.as_ptr(), k, rows, x.as_ptr(), yp, yp);
            }
        }
    }

    /// # Safety
    /// `sc` was sized by `Scratch::ensure(m, t, NB, store)`; the CPU runs `S`.
    #[inline(always)]
    pub(super) unsafe fn forward<S: Simd, const NB: usize>(m: &ResidualMlp, c: Option<&QuadEnergy>, t_len: usize, sc: &mut Scratch, store: bool) {
        let (s, a) = (m.state_dim(), m.action_dim());
        let nl = m.layers().len();
        let ht = m.hid_total.max(1);
        let x0 = sc.x0.as_mut_ptr();
        let hid = sc.hid.as_mut_ptr();
        let e = sc.e.as_mut_ptr();
        let acts = sc.acts.as_ptr();
        let st = sc.st.as_mut_ptr();
        // SAFETY: all offsets below stay within the sizes ensure() gave.
        unsafe {
            let mut l = 0;
            while l < NB {
                S::store(e.add(l), S::zero());
                l += S::LANES;
            }
            for t in 0..t_len {
                std::ptr::copy_nonoverlapping(acts.add(t * a * NB), x0.add(s * NB), a * NB);
                let slot = if store { t } else { 0 };
                let mut inp = x0 as *const f32;
                let mut k = s + a;
                for li in 0..nl - 1 {
                    let layer = &m.layers()[li];
                    let out = hid.add((slot * ht + m.hid_off[li]) * NB);
                    dense::<S, NB, EPI_RELU>(&m.fwd[li], m.fwd_bias[li].as_ptr(), k, layer.out, inp, out, out);
                    inp = out;
                    k = layer.out;
                }
                dense::<S, NB, EPI_ADD>(&m.fwd[nl - 1], m.fwd_bias[nl - 1].as_ptr(), k, s, inp, x0, x0);
                if let Some(c) = c {
                    let mut l = 0;
                    while l < NB {
                        let mut acc = S::load(e.add(l));
                        for i in 0..s {
                            let d = S::sub(S::load(x0.add(i * NB + l)), S::splat(c.goal[i]));
                            acc = S::fma(S::mul(S::splat(c.q[i]), d), d, acc);
                        }
                        for j in 0..a {
                            let av = S::load(x0.add((s + j) * NB + l));
                            acc = S::fma(S::mul(S::splat(c.r[j]), av), av, acc);
                        }
                        S::store(e.add(l), acc);
                        l += S::LANES;
                    }
                }
                if store {
                    std::ptr::copy_nonoverlapping(x0, st.add(t * s * NB), s * NB);
                }
            }
        }
    }

    /// # Safety
    /// As [`forward`], after a forward with `store`.
    #[inline(always)]
    pub(super) unsafe fn backward<S: Simd, const NB: usize>(m: &ResidualMlp, c: Option<&QuadEnergy>, t_len: usize, sc: &mut Scratch) {
        let (s, a) = (m.state_dim(), m.action_dim());
        let layers = m.layers();
        let nl = layers.len();
        let ht = m.hid_total.max(1);
        let gs = sc.gs.as_mut_ptr();
        let gx = sc.gx.as_mut_ptr();
        let gh = sc.gh.as_mut_ptr();
        let half = m.max_width.div_ceil(PANEL) * PANEL * NB;
        let hid = sc.hid.as_ptr();
        let st = sc.st.as_ptr();
        let acts = sc.acts.as_ptr();
        let grads = sc.grads.as_mut_ptr();
        // SAFETY: all offsets below stay within the sizes ensure() gave.
        unsafe {
            for t in (0..t_len).rev() {
                if let Some(c) = c {
                    for i in 0..s {
                        let two_q = S::splat(2.0 * c.q[i]);
                        let g = S::splat(c.goal[i]);
                        let mut l = 0;
                        while l < NB {
                            let d = S::sub(S::load(st.add((t * s + i) * NB + l)), g);
                            let p = gs.add(i * NB + l);
                            S::store(p, S::fma(two_q, d, S::load(p)));
                            l += S::LANES;
                        }
                    }
                }
                let mut gout = gs as *const f32;
                let mut ping = 0;
                for li in (1..nl).rev() {
                    let layer = &layers[li];
                    let gin = gh.add(ping * half);
                    let mask = hid.add((t * ht + m.hid_off[li - 1]) * NB);
                    dense::<S, NB, EPI_MASK>(&m.bwd[li], std::ptr::null(), layer.out, layer.inp, gout, gin, mask);
                    gout = gin;
                    ping ^= 1;
                }
                dense::<S, NB, EPI_STORE>(&m.bwd[0], std::ptr::null(), layers[0].out, s + a, gout, gx, gx);
                for j in 0..a {
                    let mut l = 0;
                    while l < NB {
                        let mut g = S::load(gx.add((s + j) * NB + l));
                        if let Some(c) = c {
                            let av = S::load(acts.add((t * a + j) * NB + l));
                            g = S::fma(S::splat(2.0 * c.r[j]), av, g);
                        }
                        S::store(grads.add((t * a + j) * NB + l), g);
                        l += S::LANES;
                    }
                }
                for i in 0..s {
                    let mut l = 0;
                    while l < NB {
                        let p = gs.add(i * NB + l);
                        S::store(p, S::add(S::load(p), S::load(gx.add(i * NB + l))));
                        l += S::LANES;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::simd::x86::{Avx2, Avx512};

    /// # Safety
    /// The CPU supports `avx512f`; buffers as [`simd_impl::dense_layer`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_avx512(panels: &[f32], bias: &[f32], k: usize, rows: usize, relu: bool, nb: usize, x: &[f32], y: &mut [f32]) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::dense_layer::<Avx512, 16>(panels, bias, k, rows, relu, x, y)
            } else {
                simd_impl::dense_layer::<Avx512, 32>(panels, bias, k, rows, relu, x, y)
            }
        }
    }
    /// # Safety
    /// The CPU supports `avx2,fma`; buffers as [`simd_impl::dense_layer`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_avx2(panels: &[f32], bias: &[f32], k: usize, rows: usize, relu: bool, nb: usize, x: &[f32], y: &mut [f32]) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::dense_layer::<Avx2, 16>(panels, bias, k, rows, relu, x, y)
            } else {
                simd_impl::dense_layer::<Avx2, 32>(panels, bias, k, rows, relu, x, y)
            }
        }
    }

    /// # Safety
    /// The CPU has avx512f; `sc` sized by ensure().
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_avx512(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch, store: bool) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::forward::<Avx512, 16>(m, c, t, sc, store)
            } else {
                simd_impl::forward::<Avx512, 32>(m, c, t, sc, store)
            }
        }
    }
    /// # Safety
    /// As [`forward_avx512`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn backward_avx512(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::backward::<Avx512, 16>(m, c, t, sc)
            } else {
                simd_impl::backward::<Avx512, 32>(m, c, t, sc)
            }
        }
    }
    /// # Safety
    /// The CPU has avx2 and fma; `sc` sized by ensure().
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch, store: bool) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::forward::<Avx2, 16>(m, c, t, sc, store)
            } else {
                simd_impl::forward::<Avx2, 32>(m, c, t, sc, store)
            }
        }
    }
    /// # Safety
    /// As [`forward_avx2`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn backward_avx2(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::backward::<Avx2, 16>(m, c, t, sc)
            } else {
                simd_impl::backward::<Avx2, 32>(m, c, t, sc)
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::*;
    use crate::simd::arm::Neon;

    /// # Safety
    /// The CPU supports `neon`; buffers as [`simd_impl::dense_layer`].
    #[target_feature(enable = "neon")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_neon(panels: &[f32], bias: &[f32], k: usize, rows: usize, relu: bool, nb: usize, x: &[f32], y: &mut [f32]) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::dense_layer::<Neon, 16>(panels, bias, k, rows, relu, x, y)
            } else {
                simd_impl::dense_layer::<Neon, 32>(panels, bias, k, rows, relu, x, y)
            }
        }
    }

    /// # Safety
    /// The CPU has neon; `sc` sized by ensure().
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn forward_neon(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch, store: bool) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::forward::<Neon, 16>(m, c, t, sc, store)
            } else {
                simd_impl::forward::<Neon, 32>(m, c, t, sc, store)
            }
        }
    }
    /// # Safety
    /// As [`forward_neon`].
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn backward_neon(m: &ResidualMlp, c: Option<&QuadEnergy>, t: usize, nb: usize, sc: &mut Scratch) {
        // SAFETY: forwarded contract.
        unsafe {
            if nb == 16 {
                simd_impl::backward::<Neon, 16>(m, c, t, sc)
            } else {
                simd_impl::backward::<Neon, 32>(m, c, t, sc)
            }
        }
    }
}
