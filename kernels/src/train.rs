//! Element-wise kernels of MLP training (bias and activation, their
//! backward, column sums, the Gaussian NLL's gradient, Adam), written once
//! as plain branch-free Rust and compiled three times: for AVX-512, for
//! AVX2+FMA (each inside a `#[target_feature]` function, where the
//! compiler vectorises it at that width) and for the baseline target. The
//! matrix products ([`matmul`]) run on ami's own register-blocked AVX-512
//! kernel for the shapes of MLP training (no packing: 8 x 48 tiles held in
//! registers, masked column tails), and otherwise on the `gemm` crate's
//! packed SIMD kernels, behind one bounds-checked safe interface. Results
//! of the builds may differ in the last bits (FMA contraction, summation
//! order), never in more. With [`Isa::Avx512`], and reductions of at most
//! 1,024 (layers up to 1,024 wide, up to 2,048 rows per member and step),
//! every product and element-wise step of a training step is ami's own and
//! fixed, so learned weights are bit-identical on any AVX-512 machine and
//! thread count; with larger shapes or the other
//! instruction sets `gemm` chooses its kernels and cache blocking from the
//! CPU, so weights are bit-identical on one machine (any thread count).

use crate::isa::Isa;

/// A strided view of a matrix: element `(r, c)` is
/// `data[r * row_stride + c * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }
    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }
    /// Whether every element is inside `data` and every offset fits an
    /// `isize` (no arithmetic wraps).
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.row_stride).and_then(|r| (self.cols - 1).checked_mul(self.col_stride).and_then(|c| r.checked_add(c)));
        last.is_some_and(|l| l < self.data.len()) && isize::try_from(self.row_stride).is_ok() && isize::try_from(self.col_stride).is_ok()
    }
}

/// Reductions up to this long go to the register-blocked kernel (its
/// panel of `b`, `k x 48` floats, then stays in L1/L2).
const SMALL_K: usize = 1024;

/// `c = beta * c + a b` for row-major `c` (`a.rows x b.cols`, `c.len()`
/// at least that), single-threaded (parallelism belongs to the caller).
/// `beta` is 0 (overwrite; `c` is not read) or 1 (accumulate).
///
/// With [`Isa::Avx512`] on a CPU that has it, an overwriting product whose
/// `b` is unit-stride along its columns and whose reduction is at most
/// 1,024 long runs on ami's own register-blocked kernel (the small shapes
/// of MLP training, where it is faster than packing); everything else on
/// the `gemm` crate.
pub fn matmul(isa: Isa, a: Mat<'_>, b: Mat<'_>, beta: f32, c: &mut [f32]) -> Result<(), crate::KernelError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if beta != 0.0 && beta != 1.0 {
        return Err(crate::KernelError::Shape(format!("matmul: beta must be 0 or 1, found {beta}")));
    }
    let mn = m.checked_mul(n).filter(|&mn| isize::try_from(mn).is_ok());
    if b.rows != k || !a.fits() || !b.fits() || mn.is_none_or(|mn| c.len() < mn) {
        return Err(crate::KernelError::Shape(format!(
            "matmul: a {}x{} (strides {}, {}; {} floats), b {}x{} (strides {}, {}; {} floats), c {} floats",
            a.rows,
            a.cols,
            a.row_stride,
            a.col_stride,
            a.data.len(),
            b.rows,
            b.cols,
            b.row_stride,
            b.col_stride,
            b.data.len(),
            c.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if beta == 0.0 {
            c[..m * n].fill(0.0);
        }
        return Ok(());
    }
    let accumulate = beta != 0.0;
    #[cfg(target_arch = "x86_64")]
    if !accumulate && b.col_stride == 1 && k <= SMALL_K && isa == Isa::Avx512 && isa.is_available() {
        // SAFETY: the CPU has AVX-512F (checked just now); `fits` bounds
        // every offset of `a` and `b` the product reads, and `c[..m * n]`
        // (row stride n) is inside `c`, a unique borrow.
        unsafe {
            crate::small_gemm::matmul_avx512(m, n, k, a.data.as_ptr(), a.row_stride, a.col_stride, b.data.as_ptr(), b.row_stride, c.as_mut_ptr(), n);
        }
        return Ok(());
    }
    let _ = (isa, SMALL_K);
    // SAFETY: every index the product reads is inside `a.data` / `b.data`
    // (checked by `fits`: the largest offset is below the length), every
    // index it writes is inside `c[..m * n]` (row-major, strides n and 1);
    // `c` is a unique borrow, so it aliases neither input; with
    // `read_dst == false` gemm never reads `c`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// Writes the transpose of the row-major `rows x cols` matrix `src` into
/// `dst` (`cols x rows`, row-major): in 8 x 8 register blocks where the CPU
/// has AVX ([`Isa::Avx2`] or [`Isa::Avx512`]), element by element
/// otherwise; the result is the same either way (a copy).
pub fn transpose(isa: Isa, src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) -> Result<(), crate::KernelError> {
    let n = rows.checked_mul(cols).filter(|&n| n <= src.len() && n <= dst.len());
    if n.is_none() {
        return Err(crate::KernelError::Shape(format!("transpose: {rows}x{cols} from {} floats into {}", src.len(), dst.len())));
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) && isa.is_available() {
        // SAFETY: the CPU has AVX (implied by AVX2 and AVX-512F, checked just
        // now); both buffers hold rows * cols floats (checked above).
        unsafe { crate::small_gemm::transpose_avx(src, rows, cols, dst) };
        return Ok(());
    }
    let _ = isa;
    for (r, row) in src[..rows * cols].chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
    Ok(())
}

/// The hidden layers' activation of a trainable MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `max(x, 0)`.
    Relu,
    /// `x * sigmoid(x)`.
    Silu,
    /// No activation (the output layer).
    Identity,
}

/// `e^x` for `x` clamped to `[-87, 88]`, relative error below 3e-7: range
/// reduction to `2^n e^r` and a degree-6 polynomial, branch-free so it
/// vectorises.
#[inline(always)]
#[allow(clippy::manual_clamp)] // `clamp` would not vectorise here (it asserts, and keeps NaN)
pub fn exp(x: f32) -> f32 {
    let x = x.max(-87.0).min(88.0);
    // Round to nearest by adding 1.5 * 2^23: `t`'s low mantissa bits then
    // hold n as an integer (`f32::round` is a libm call on the baseline
    // x86-64 target, and a float-to-int `as` does not vectorise).
    const SHIFTER: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFTER;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4b40_0000);
    let n = t - SHIFTER;
    let r = x - n * 0.693_145_75;
    let r = r - n * 1.428_606_8e-6;
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    p * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

/// `ln(x)` for positive normal `x`, absolute error below 1e-6 for
/// `x in [1, 2]` (what [`softplus`] needs): exponent split and an atanh
/// series of the mantissa.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
                                                                // Centre the mantissa on 1: m in [0.75, 1.5).
    let big = (m > std::f32::consts::SQRT_2) as i32;
    let m = m * (1.0 - 0.5 * big as f32);
    let e = (e + big) as f32;
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let p = 1.0 / 11.0;
    let p = p * t2 + 1.0 / 9.0;
    let p = p * t2 + 1.0 / 7.0;
    let p = p * t2 + 1.0 / 5.0;
    let p = p * t2 + 1.0 / 3.0;
    let p = p * t2 + 1.0;
    2.0 * t * p + e * std::f32::consts::LN_2
}

/// The logistic sigmoid `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `ln(1 + e^x)` as `max(x, 0) + ln(1 + e^-|x|)`.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + ln(1.0 + exp(-x.abs()))
}

/// Adam's hyper-parameters for one step (bias corrections included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bias2_sqrt: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator floor.
    pub eps: f32,
    /// L2 coefficient added to the gradient.
    pub weight_decay: f32,
}

/// The soft bounds of a log-variance head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogvarBounds {
    /// Lower bound.
    pub min: f32,
    /// Upper bound.
    pub max: f32,
}

impl LogvarBounds {
    /// `lv1 = max - softplus(max - raw)`, `lv = min + softplus(lv1 - min)`
    /// and `d lv / d raw`.
    #[inline(always)]
    pub fn apply(self, raw: f32) -> (f32, f32) {
        let lv1 = self.max - softplus(self.max - raw);
        let lv = self.min + softplus(lv1 - self.min);
        (lv, sigmoid(self.max - raw) * sigmoid(lv1 - self.min))
    }
}

mod imp {
    use super::*;

    #[inline(always)]
    pub fn bias_act(z: &mut [f32], cols: usize, bias: &[f32], act: Act, h: &mut [f32]) {
        for zr in z.chunks_exact_mut(cols) {
            for (v, b) in zr.iter_mut().zip(bias) {
                *v += b;
            }
        }
        match act {
            Act::Relu => h.iter_mut().zip(z.iter()).for_each(|(h, &z)| *h = z.max(0.0)),
            Act::Silu => h.iter_mut().zip(z.iter()).for_each(|(h, &z)| *h = z * sigmoid(z)),
            Act::Identity => h.copy_from_slice(z),
        }
    }

    #[inline(always)]
    pub fn act_backward(g: &mut [f32], z: &[f32], act: Act) {
        match act {
            Act::Relu => g.iter_mut().zip(z).for_each(|(g, &z)| *g = if z > 0.0 { *g } else { 0.0 }),
            Act::Silu => g.iter_mut().zip(z).for_each(|(g, &z)| {
                let s = sigmoid(z);
                *g *= s * (1.0 + z * (1.0 - s));
            }),
            Act::Identity => {}
        }
    }

    #[inline(always)]
    pub fn bias_silu_keep(z: &mut [f32], cols: usize, bias: &[f32], h: &mut [f32], sig: &mut [f32]) {
        for ((zr, hr), sr) in z.chunks_exact_mut(cols).zip(h.chunks_exact_mut(cols)).zip(sig.chunks_exact_mut(cols)) {
            for (((z, h), s), b) in zr.iter_mut().zip(hr.iter_mut()).zip(sr.iter_mut()).zip(bias) {
                *z += b;
                *s = sigmoid(*z);
                *h = *z * *s;
            }
        }
    }

    #[inline(always)]
    pub fn silu_backward_kept(g: &mut [f32], z: &[f32], sig: &[f32]) {
        for ((g, &z), &s) in g.iter_mut().zip(z).zip(sig) {
            *g *= s * (1.0 + z * (1.0 - s));
        }
    }

    #[inline(always)]
    pub fn all_finite(v: &[f32]) -> bool {
        // An all-ones exponent is NaN or infinity; an OR of integers is a
        // reduction the compiler vectorises (a float sum is not).
        let mut bad = 0u32;
        for &x in v {
            bad |= u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        }
        bad == 0
    }

    #[inline(always)]
    pub fn col_sums(g: &[f32], cols: usize, out: &mut [f32]) {
        out.fill(0.0);
        for r in g.chunks_exact(cols) {
            for (o, v) in out.iter_mut().zip(r) {
                *o += v;
            }
        }
    }

    #[inline(always)]
    pub fn nll(out: &[f32], y: &[f32], s: usize, scale: f32, bounds: Option<LogvarBounds>, g: &mut [f32]) -> f64 {
        let mut total = 0.0f64;
        match bounds {
            Some(b) => {
                // Per-element losses first (a lane-parallel loop), then their
                // sum: an in-order float reduction would keep the loop scalar.
                let mut lbuf = vec![0.0f32; s];
                for ((o, yr), gr) in out.chunks_exact(2 * s).zip(y.chunks_exact(s)).zip(g.chunks_exact_mut(2 * s)) {
                    let (gm, gl) = gr.split_at_mut(s);
                    let (om, ol) = o.split_at(s);
                    for (((((om, ol), y), gm), gl), lb) in om.iter().zip(ol).zip(yr).zip(gm.iter_mut()).zip(gl.iter_mut()).zip(lbuf.iter_mut()) {
                        let (lv, dlv) = b.apply(*ol);
                        let inv = exp(-lv);
                        let d = om - y;
                        *lb = d * d * inv + lv;
                        *gm = scale * 2.0 * d * inv;
                        *gl = scale * (1.0 - d * d * inv) * dlv;
                    }
                    total += f64::from(lbuf.iter().sum::<f32>());
                }
            }
            None => {
                for ((o, yr), gr) in out.chunks_exact(s).zip(y.chunks_exact(s)).zip(g.chunks_exact_mut(s)) {
                    let mut row = 0.0f32;
                    for ((o, y), g) in o.iter().zip(yr).zip(gr.iter_mut()) {
                        let d = o - y;
                        row += d * d;
                        *g = scale * 2.0 * d;
                    }
                    total += f64::from(row);
                }
            }
        }
        total
    }

    #[inline(always)]
    pub fn adam(a: AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g0: &[f32], g1: Option<&[f32]>) {
        let step = |p: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            let g = g + a.weight_decay * *p;
            *m = a.beta1 * *m + (1.0 - a.beta1) * g;
            *v = a.beta2 * *v + (1.0 - a.beta2) * g * g;
            *p -= a.step_size * *m / (v.sqrt() / a.bias2_sqrt + a.eps);
        };
        match g1 {
            Some(g1) => {
                for ((((p, m), v), g0), g1) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g0).zip(g1) {
                    step(p, m, v, g0 + g1);
                }
            }
            None => {
                for (((p, m), v), g0) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g0) {
                    step(p, m, v, *g0);
                }
            }
        }
    }
}

/// Defines a dispatcher `$name` over the three builds of `imp::$name`.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)?) => {
        $(#[$doc])*
        pub fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { imp::$name($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { imp::$name($($arg),*) }
                // `is_available` is a cached feature test: an `Isa` the CPU
                // cannot run falls back to the baseline build.
                match isa {
                    // SAFETY: the CPU has avx512f, avx2 and fma (checked just now).
                    Isa::Avx512 if isa.is_available() && Isa::Avx2.is_available() => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU has avx2 and fma (checked just now).
                    Isa::Avx2 if isa.is_available() => return unsafe { avx2($($arg),*) },
                    _ => {}
                }
            }
            let _ = isa;
            imp::$name($($arg),*)
        }
    };
}

dispatch!(
    /// Adds `bias` (`cols` wide) to every row of `z` (row-major) and writes
    /// `h = act(z)`.
    bias_act(z: &mut [f32], cols: usize, bias: &[f32], act: Act, h: &mut [f32])
);
dispatch!(
    /// Multiplies the gradient `g` by `act'(z)` element-wise.
    act_backward(g: &mut [f32], z: &[f32], act: Act)
);
dispatch!(
    /// SiLU with the bias added, keeping the sigmoid for the backward pass:
    /// `z += bias` (per row), `sig = sigmoid(z)`, `h = z * sig`.
    bias_silu_keep(z: &mut [f32], cols: usize, bias: &[f32], h: &mut [f32], sig: &mut [f32])
);
dispatch!(
    /// SiLU's backward from a kept sigmoid: `g *= sig (1 + z (1 - sig))`.
    silu_backward_kept(g: &mut [f32], z: &[f32], sig: &[f32])
);
dispatch!(
    /// Whether every value is finite.
    all_finite(v: &[f32]) -> bool
);
dispatch!(
    /// Column sums of the row-major `g` (`cols` wide) into `out`.
    col_sums(g: &[f32], cols: usize, out: &mut [f32])
);
dispatch!(
    /// The loss of output rows `out` against targets `y` (`s` wide) and its
    /// gradient times `scale` into `g`; returns the unscaled sum. With
    /// `bounds`, rows are `[mean, raw log-variance]` (`2 s` wide) and the
    /// loss is the Gaussian NLL without constants `(mean - y)^2 e^-lv + lv`;
    /// without, the squared error.
    nll(out: &[f32], y: &[f32], s: usize, scale: f32, bounds: Option<LogvarBounds>, g: &mut [f32]) -> f64
);
dispatch!(
    /// One Adam update of `p` with moments `m`, `v` and the gradient
    /// `g0 (+ g1)` (PyTorch's formula, weight decay as L2 on the gradient).
    adam(a: AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g0: &[f32], g1: Option<&[f32]>)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_ln_sigmoid_softplus_against_f64() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            worst = worst.max(((f64::from(exp(x)) - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 3e-7, "exp: worst relative error {worst}");
        for i in 1..2000 {
            let x = i as f32 * 0.01;
            assert!((f64::from(ln(x)) - f64::from(x).ln()).abs() < 2e-6, "ln({x})");
        }
        for i in -300..=300 {
            let x = i as f32 * 0.1;
            let xd = f64::from(x);
            assert!((f64::from(sigmoid(x)) - 1.0 / (1.0 + (-xd).exp())).abs() < 1e-6, "sigmoid({x})");
            let sp = xd.max(0.0) + (-xd.abs()).exp().ln_1p();
            assert!((f64::from(softplus(x)) - sp).abs() < 2e-6 * sp.max(1.0), "softplus({x})");
        }
    }

    #[test]
    fn every_isa_matches_the_scalar_build() {
        let n = 37 * 5;
        let z0: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 * 0.07 - 3.5).collect();
        let bias: Vec<f32> = (0..5).map(|i| i as f32 * 0.1 - 0.2).collect();
        for isa in Isa::available() {
            for act in [Act::Relu, Act::Silu, Act::Identity] {
                let (mut z_ref, mut h_ref) = (z0.clone(), vec![0.0; n]);
                bias_act(Isa::Scalar, &mut z_ref, 5, &bias, act, &mut h_ref);
                let (mut z, mut h) = (z0.clone(), vec![0.0; n]);
                bias_act(isa, &mut z, 5, &bias, act, &mut h);
                for (a, b) in h.iter().zip(&h_ref) {
                    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{isa} {act:?}: {a} vs {b}");
                }
                let (mut g_ref, mut g) = (z0.clone(), z0.clone());
                act_backward(Isa::Scalar, &mut g_ref, &z_ref, act);
                act_backward(isa, &mut g, &z, act);
                for (a, b) in g.iter().zip(&g_ref) {
                    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{isa} {act:?} backward");
                }
            }
            let y: Vec<f32> = (0..n / 2).map(|i| (i % 7) as f32 * 0.3).collect();
            let out: Vec<f32> = z0[..(n / 2) * 2 / 2 * 2].to_vec();
            let s = 1;
            let b = Some(LogvarBounds { min: -10.0, max: 0.5 });
            let (mut g_ref, mut g) = (vec![0.0; out.len()], vec![0.0; out.len()]);
            let l_ref = nll(Isa::Scalar, &out, &y[..out.len() / 2], s, 0.5, b, &mut g_ref);
            let l = nll(isa, &out, &y[..out.len() / 2], s, 0.5, b, &mut g);
            assert!((l - l_ref).abs() <= 1e-5 * l_ref.abs().max(1.0), "{isa} nll");
            let mut sums = [0.0f32; 5];
            col_sums(isa, &z0, 5, &mut sums);
            let want: Vec<f64> = (0..5).map(|c| z0.iter().skip(c).step_by(5).map(|&v| f64::from(v)).sum()).collect();
            for (a, b) in sums.iter().zip(&want) {
                assert!((f64::from(*a) - b).abs() < 1e-4, "{isa} col_sums");
            }
        }
    }

    #[test]
    fn nll_gradient_matches_finite_differences() {
        let b = LogvarBounds { min: -10.0, max: 0.5 };
        let y = [0.3f32, -0.7];
        let out = [0.1f32, 0.9, -1.2, 0.2]; // one row of S = 2: mean 0.1, 0.9; raw lv -1.2, 0.2
        let mut g = [0.0f32; 4];
        nll(Isa::Scalar, &out, &y, 2, 1.0, Some(b), &mut g);
        for i in 0..4 {
            let h = 1e-3f32;
            let (mut up, mut dn) = (out, out);
            up[i] += h;
            dn[i] -= h;
            let mut scratch = [0.0f32; 4];
            let fd =
                (nll(Isa::Scalar, &up, &y, 2, 1.0, Some(b), &mut scratch) - nll(Isa::Scalar, &dn, &y, 2, 1.0, Some(b), &mut scratch)) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g[i])).abs() < 2e-3 * fd.abs().max(1.0), "d/d out[{i}]: fd {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn matmul_matches_a_scalar_product_for_every_layout_shape_and_isa() {
        // Shapes around the register tile (8 rows x 48 columns) and its
        // masked column tail, and the training shapes themselves.
        for (m, k, n) in [(7, 5, 9), (1, 1, 1), (8, 3, 48), (17, 33, 49), (9, 200, 16), (130, 200, 34), (200, 128, 23)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 13) % 17) as f32 * 0.1 - 0.8).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0).collect();
            let want = |ta: bool, tb: bool| -> Vec<f64> {
                let at = |r: usize, c: usize| f64::from(if ta { a[c * m + r] } else { a[r * k + c] });
                let bt = |r: usize, c: usize| f64::from(if tb { b[c * k + r] } else { b[r * n + c] });
                (0..m * n).map(|i| (0..k).map(|j| at(i / n, j) * bt(j, i % n)).sum()).collect()
            };
            let tol = 1e-5 * k as f64;
            for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.is_available()) {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let am = if ta { Mat::rows(&a, k, m).t() } else { Mat::rows(&a, m, k) };
                    let bm = if tb { Mat::rows(&b, n, k).t() } else { Mat::rows(&b, k, n) };
                    // One float past the product must survive (no write past m x n).
                    let mut c = vec![1.0f32; m * n + 1];
                    matmul(isa, am, bm, 0.0, &mut c).unwrap();
                    for (x, y) in c.iter().zip(want(ta, tb)) {
                        assert!((f64::from(*x) - y).abs() < tol, "{isa} {m}x{k}x{n} {ta} {tb}: {x} vs {y}");
                    }
                    assert_eq!(c[m * n], 1.0, "{isa} {m}x{k}x{n}: wrote past the product");
                    matmul(isa, am, bm, 1.0, &mut c).unwrap();
                    for (x, y) in c.iter().zip(want(ta, tb)) {
                        assert!((f64::from(*x) - 2.0 * y).abs() < 2.0 * tol, "accumulate {isa} {ta} {tb}");
                    }
                }
            }
            let short = &a[..m * k - 1];
            assert!(matmul(Isa::Avx512, Mat::rows(short, m, k), Mat::rows(&b, k, n), 0.0, &mut vec![0.0; m * n]).is_err());
            assert!(matmul(Isa::Avx512, Mat::rows(&a, m, k), Mat::rows(&b, k, n), 0.0, &mut vec![0.0; m * n - 1]).is_err());
        }
    }

    #[test]
    fn all_finite_finds_any_nan_or_infinity_at_any_position() {
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.is_available()) {
            let mut v: Vec<f32> = (0..37).map(|i| i as f32 * 1e30 - 3e31).collect();
            v.push(f32::MAX);
            v.push(f32::MIN_POSITIVE / 4.0); // subnormal: finite
            assert!(all_finite(isa, &v), "{isa}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, 15, 16, 38] {
                    let mut w = v.clone();
                    w[at] = bad;
                    assert!(!all_finite(isa, &w), "{isa}: {bad} at {at}");
                }
            }
        }
    }

    #[test]
    fn transpose_is_the_same_copy_on_every_isa_and_shape() {
        for (rows, cols) in [(1, 1), (8, 8), (23, 200), (200, 34), (9, 17), (0, 5)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.is_available()) {
                let mut dst = vec![-1.0f32; rows * cols + 1];
                transpose(isa, &src, rows, cols, &mut dst).unwrap();
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(dst[c * rows + r], src[r * cols + c], "{isa} {rows}x{cols} at ({r}, {c})");
                    }
                }
                assert_eq!(dst[rows * cols], -1.0, "{isa}: wrote past the transpose");
            }
        }
        assert!(transpose(Isa::Scalar, &[0.0; 5], 2, 3, &mut [0.0; 6]).is_err());
    }

    #[test]
    fn adam_follows_pytorchs_formula() {
        let a = AdamStep { step_size: 1e-3 / (1.0 - 0.9), bias2_sqrt: (1.0f32 - 0.999).sqrt(), beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
        let (mut p, mut m, mut v) = ([1.0f32, -2.0], [0.0f32; 2], [0.0f32; 2]);
        adam(Isa::Scalar, a, &mut p, &mut m, &mut v, &[0.5, -0.25], Some(&[0.5, 0.0]));
        // The first step moves every weight by lr against the gradient's sign.
        assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-6 && (p[1] - (-2.0 + 1e-3)).abs() < 1e-6, "{p:?}");
    }
}
