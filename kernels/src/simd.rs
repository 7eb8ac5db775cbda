//! A minimal vector abstraction over the instruction sets, so the fused
//! kernels are written once. Every method is `#[inline(always)]`: the generic
//! kernels are instantiated inside `#[target_feature]` entry points and the
//! intrinsics inline into them.

/// One SIMD instruction set: `LANES` f32 lanes per vector.
pub(crate) trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// Most lane-vectors per microkernel row the register file allows with 8
    /// accumulator rows.
    const MAX_V: usize;
    /// Whether the microkernel should cover a panel's 8 rows as two
    /// halves of 4 rows x 2 vectors (for 16-register files).
    const HALF_ROWS: bool = false;
    /// The vector type.
    type V: Copy;
    /// All zeros.
    unsafe fn zero() -> Self::V;
    /// `x` in every lane.
    unsafe fn splat(x: f32) -> Self::V;
    /// Unaligned load of `LANES` floats.
    unsafe fn load(p: *const f32) -> Self::V;
    /// Unaligned store of `LANES` floats.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a * b + c` (fused).
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `max(a, 0)`; NaN becomes 0 (as `f32::max(a, 0.0)`).
    unsafe fn relu(a: Self::V) -> Self::V;
    /// `g` where `h > 0`, else 0 (the ReLU derivative applied to `g`).
    unsafe fn mask_pos(g: Self::V, h: Self::V) -> Self::V;
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX-512F, 16 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    // SAFETY (whole impl): every method is only called from code compiled
    // with `avx512f` enabled, behind a run-time check of the CPU feature;
    // pointers are valid for LANES floats (callers' contract).
    impl Simd for Avx512 {
        const LANES: usize = 16;
        const MAX_V: usize = 2;
        type V = __m512;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            // SAFETY: avx512f is enabled in every caller (see impl comment).
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            // SAFETY: as above.
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            // SAFETY: `p` is valid for 16 floats (caller's contract).
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            // SAFETY: `p` is valid for 16 floats (caller's contract).
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            // SAFETY: avx512f enabled.
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            // SAFETY: avx512f enabled.
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            // SAFETY: avx512f enabled.
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            // SAFETY: avx512f enabled.
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn relu(a: __m512) -> __m512 {
            // SAFETY: avx512f enabled. MAXPS returns the second operand when
            // either is NaN, so NaN becomes 0 like f32::max(a, 0.0).
            unsafe { _mm512_max_ps(a, _mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn mask_pos(g: __m512, h: __m512) -> __m512 {
            // SAFETY: avx512f enabled.
            unsafe {
                let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(h, _mm512_setzero_ps());
                _mm512_maskz_mov_ps(m, g)
            }
        }
    }

    /// AVX2 + FMA, 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;

    impl Simd for Avx2 {
        const LANES: usize = 8;
        const MAX_V: usize = 1;
        const HALF_ROWS: bool = true;
        type V = __m256;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            // SAFETY: avx2 and fma are enabled in every caller.
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            // SAFETY: as above.
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            // SAFETY: `p` is valid for 8 floats (caller's contract).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            // SAFETY: `p` is valid for 8 floats (caller's contract).
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            // SAFETY: fma enabled.
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            // SAFETY: avx enabled.
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            // SAFETY: avx enabled.
            unsafe { _mm256_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            // SAFETY: avx enabled.
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn relu(a: __m256) -> __m256 {
            // SAFETY: avx enabled; NaN in `a` gives the second operand (0).
            unsafe { _mm256_max_ps(a, _mm256_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn mask_pos(g: __m256, h: __m256) -> __m256 {
            // SAFETY: avx enabled.
            unsafe { _mm256_and_ps(g, _mm256_cmp_ps::<_CMP_GT_OQ>(h, _mm256_setzero_ps())) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    /// NEON, 4 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Neon;

    impl Simd for Neon {
        const LANES: usize = 4;
        const MAX_V: usize = 2;
        type V = float32x4_t;
        #[inline(always)]
        unsafe fn zero() -> float32x4_t {
            // SAFETY: neon enabled in every caller.
            unsafe { vdupq_n_f32(0.0) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe { vdupq_n_f32(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> float32x4_t {
            // SAFETY: `p` valid for 4 floats.
            unsafe { vld1q_f32(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: float32x4_t) {
            // SAFETY: `p` valid for 4 floats.
            unsafe { vst1q_f32(p, v) }
        }
        #[inline(always)]
        unsafe fn fma(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe { vfmaq_f32(c, a, b) }
        }
        #[inline(always)]
        unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe { vaddq_f32(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe { vsubq_f32(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe { vmulq_f32(a, b) }
        }
        #[inline(always)]
        unsafe fn relu(a: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled. vmaxnm returns the number when one
            // operand is NaN, like f32::max.
            unsafe { vmaxnmq_f32(a, vdupq_n_f32(0.0)) }
        }
        #[inline(always)]
        unsafe fn mask_pos(g: float32x4_t, h: float32x4_t) -> float32x4_t {
            // SAFETY: neon enabled.
            unsafe {
                let m = vcgtq_f32(h, vdupq_n_f32(0.0));
                vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(g), m))
            }
        }
    }
}
