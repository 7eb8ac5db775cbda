//! Integration tests across the ami crates; the tests live in `tests/`.
//! This library holds their shared helpers.

use ndarray::{Array1, Array2};

/// Solves `m x = b` by Gaussian elimination with partial pivoting (f64).
/// Panics on a singular matrix (test helper).
pub fn solve(mut m: Array2<f64>, mut b: Array1<f64>) -> Array1<f64> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| m[[i, col]].abs().total_cmp(&m[[j, col]].abs())).expect("non-empty");
        assert!(m[[piv, col]].abs() > 1e-12, "singular matrix");
        for k in 0..n {
            m.swap([col, k], [piv, k]);
        }
        b.swap(col, piv);
        for r in col + 1..n {
            let f = m[[r, col]] / m[[col, col]];
            for k in col..n {
                m[[r, k]] -= f * m[[col, k]];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = Array1::zeros(n);
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| m[[r, k]] * x[k]).sum();
        x[r] = (b[r] - s) / m[[r, r]];
    }
    x
}
