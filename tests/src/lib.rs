//! Integration tests across the ami crates; the tests live in `tests/`.
//! This library holds their shared helpers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ndarray::{Array1, Array2};

/// Builds the plugin libraries once per test binary (debug profile, shared
/// target directory) and returns the directory holding them.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = std::process::Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "ami-plugin-acrobot", "-p", "ami-plugin-sampling", "-p", "ami-plugin-testkit"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo build for the plugins");
        assert!(st.success(), "building the plugins failed");
        target.join("debug")
    })
}

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
