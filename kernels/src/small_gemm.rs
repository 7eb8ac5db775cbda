//! A register-blocked matrix product for the small, skinny shapes of MLP
//! training (a few hundred rows and columns), where the `gemm` crate's
//! packing costs as much as it saves: `c = a b` with `b` and `c`
//! unit-stride along their columns and `a` read in any layout (each of its
//! elements is broadcast, never loaded as a vector, so a transposed `a`
//! costs nothing). AVX-512 only: a tile of 8 rows x 48 columns of `c`
//! lives in 24 registers for the whole reduction, the column tail is
//! masked, so nothing is packed, padded or copied.
//!
//! Each element of `c` is the sum over `k` in increasing order, with one
//! fused multiply-add per term (the reduction runs in chunks of 128 whose
//! partial sums go through `c`, which changes no rounding), whatever the
//! tile: results do not depend on the thread that runs the product.

/// Rows of `c` per tile.
const ROWS: usize = 8;
/// Lanes per vector.
const LANES: usize = 16;
/// Most vectors of columns per tile.
const VECS: usize = 3;
/// Reduction steps per pass over a panel.
const KC: usize = 128;

/// `c[i * cs + j] = sum_kk a[i * ams + kk * aks] * b[kk * bks + j]` for
/// `i < m`, `j < n`.
///
/// # Safety
/// The CPU has AVX-512F; every `a` and `b` offset that formula reads for
/// `i < m`, `kk < k`, `j < n` is inside its allocation, as is every `c`
/// offset it writes; `c` aliases neither input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_avx512(m: usize, n: usize, k: usize, a: *const f32, ams: usize, aks: usize, b: *const f32, bks: usize, c: *mut f32, cs: usize) {
    let mut j = 0;
    while j < n {
        let w = (n - j).min(VECS * LANES);
        let v = w.div_ceil(LANES);
        let last = w - (v - 1) * LANES;
        let mask: u16 = if last == LANES { u16::MAX } else { (1u16 << last) - 1 };
        // The reduction in chunks of KC, so the panel of `b` (KC x 48
        // floats) stays in L1 while every row tile passes over it.
        let mut k0 = 0;
        while k0 < k.max(1) {
            let kc = (k - k0).min(KC);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(ROWS);
                // SAFETY: rows i..i + rows <= m, columns j..j + w <= n and
                // reduction steps k0..k0 + kc <= k are inside the caller's
                // ranges; the tile reads nothing else.
                unsafe {
                    let (at, bt, ct) = (a.add(i * ams + k0 * aks), b.add(k0 * bks + j), c.add(i * cs + j));
                    let acc = k0 > 0;
                    match v {
                        3 => tile::<3>(kc, at, ams, aks, bt, bks, ct, cs, rows, mask, acc),
                        2 => tile::<2>(kc, at, ams, aks, bt, bks, ct, cs, rows, mask, acc),
                        _ => tile::<1>(kc, at, ams, aks, bt, bks, ct, cs, rows, mask, acc),
                    }
                }
                i += ROWS;
            }
            k0 += KC;
        }
        j += VECS * LANES;
    }
}

/// One tile: `rows` (at most 8) rows x `V` vectors of columns, the last
/// vector masked by `mask`; with `accumulate`, the sums start from what
/// `c` holds.
///
/// # Safety
/// As [`matmul_avx512`], for the tile's rows and columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const V: usize>(
    k: usize,
    a: *const f32,
    ams: usize,
    aks: usize,
    b: *const f32,
    bks: usize,
    c: *mut f32,
    cs: usize,
    rows: usize,
    mask: u16,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: rows past `rows` repeat the last valid row (their results
    // are not stored), so every `a` read is a valid row; the last vector's
    // loads and stores are masked to the valid columns, and masked-off
    // lanes are never accessed.
    unsafe {
        let mut ap = [a; ROWS];
        for (r, p) in ap.iter_mut().enumerate() {
            *p = a.add(r.min(rows - 1) * ams);
        }
        let mut acc = [[_mm512_setzero_ps(); V]; ROWS];
        if accumulate {
            // Continue the sums of the earlier reduction chunks.
            for r in 0..rows {
                let cr = c.add(r * cs);
                for v in 0..V {
                    acc[r][v] = if v + 1 == V { _mm512_maskz_loadu_ps(mask, cr.add(v * LANES)) } else { _mm512_loadu_ps(cr.add(v * LANES)) };
                }
            }
        }
        let mut bp = b;
        for kk in 0..k {
            let mut bv = [_mm512_setzero_ps(); V];
            for v in 0..V {
                bv[v] = if v + 1 == V { _mm512_maskz_loadu_ps(mask, bp.add(v * LANES)) } else { _mm512_loadu_ps(bp.add(v * LANES)) };
            }
            let off = kk * aks;
            for r in 0..ROWS {
                let x = _mm512_set1_ps(*ap[r].add(off));
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
                }
            }
            // wrapping: after the last step the pointer is never read.
            bp = bp.wrapping_add(bks);
        }
        for r in 0..rows {
            let cr = c.add(r * cs);
            for v in 0..V {
                if v + 1 == V {
                    _mm512_mask_storeu_ps(cr.add(v * LANES), mask, acc[r][v]);
                } else {
                    _mm512_storeu_ps(cr.add(v * LANES), acc[r][v]);
                }
            }
        }
    }
}

/// `dst[c * rows + r] = src[r * cols + c]` for `r < rows`, `c < cols`:
/// 8 x 8 blocks transposed in registers, the edges element by element.
///
/// # Safety
/// The CPU has AVX; `src` and `dst` hold at least `rows * cols` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub(crate) unsafe fn transpose_avx(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    debug_assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    // SAFETY: every block reads rows r0..r0 + 8 <= rows and columns
    // c0..c0 + 8 <= cols of `src`, and writes the mirror block of `dst`.
    unsafe {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        for r0 in (0..r8).step_by(8) {
            for c0 in (0..c8).step_by(8) {
                let ld = |i: usize| _mm256_loadu_ps(s.add((r0 + i) * cols + c0));
                let (a0, a1, a2, a3, a4, a5, a6, a7) = (ld(0), ld(1), ld(2), ld(3), ld(4), ld(5), ld(6), ld(7));
                let (t0, t1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
                let (t2, t3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
                let (t4, t5) = (_mm256_unpacklo_ps(a4, a5), _mm256_unpackhi_ps(a4, a5));
                let (t6, t7) = (_mm256_unpacklo_ps(a6, a7), _mm256_unpackhi_ps(a6, a7));
                let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
                let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
                let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
                let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
                let st = |i: usize, v: __m256| _mm256_storeu_ps(d.add((c0 + i) * rows + r0), v);
                st(0, _mm256_permute2f128_ps::<0x20>(u0, u4));
                st(1, _mm256_permute2f128_ps::<0x20>(u1, u5));
                st(2, _mm256_permute2f128_ps::<0x20>(u2, u6));
                st(3, _mm256_permute2f128_ps::<0x20>(u3, u7));
                st(4, _mm256_permute2f128_ps::<0x31>(u0, u4));
                st(5, _mm256_permute2f128_ps::<0x31>(u1, u5));
                st(6, _mm256_permute2f128_ps::<0x31>(u2, u6));
                st(7, _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
    }
    // The edges: columns past c8 of every row, rows past r8 of the rest.
    for r in 0..rows {
        let from = if r < r8 { c8 } else { 0 };
        for c in from..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}
